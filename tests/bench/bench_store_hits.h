/* bench_store_hits.h - the dispatcher-level cache-hit figure of bench_store. */
#ifndef SLUICE_BENCH_STORE_HITS_H
#define SLUICE_BENCH_STORE_HITS_H

#include <stdint.h>

/* Fills a store in `dir` with n answers, replays the n prompts through a dispatcher on it
 * three times and prints the median cache_hits_per_s. Returns 0, or -1 (with a message on
 * stderr) when the rig cannot be set up or not every prompt ended within 120 s. */
int bench_cache_hits(const char *dir, uint64_t n);

#endif
