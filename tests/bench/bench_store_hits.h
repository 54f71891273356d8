/* bench_store_hits.h - the dispatcher-level cache-hit figure of bench_store. */
#ifndef SLUICE_BENCH_STORE_HITS_H
#define SLUICE_BENCH_STORE_HITS_H

#include <stdint.h>

/* Fills a store in `dir` with n answers, replays the n prompts through a dispatcher on it
 * and prints cache_hits_per_s. */
void bench_cache_hits(const char *dir, uint64_t n);

#endif
