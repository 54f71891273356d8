/*
 * bench_util.h - helpers shared by the benchmarks: child processes that print "port=N",
 * resident memory, percentiles, registry JSON pointing at a fake provider, and one-message
 * requests.
 * Benchmarks are programs, never ctest tests: they print `name=value target=...` lines.
 */
#ifndef SLUICE_BENCH_UTIL_H
#define SLUICE_BENCH_UTIL_H

#include "server/common/llm.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct child {
    pid_t pid;
    int port;
} child;

/* Starts argv (argv[0] a path) and reads "port=N" from the first line of its stdout. */
int bench_spawn(char *const argv[], child *out);
/* SIGTERM, then SIGKILL after 10 s; reaps. */
void bench_stop(child *c);
/* The directory of the running binary's build tree ($SLUICE_BINARY_DIR or argv0-based). */
const char *bench_build_dir(const char *argv0);
/* VmRSS / VmHWM of a process in MiB (pid 0 = self). */
double bench_rss_mb(pid_t pid);
double bench_hwm_mb(pid_t pid);
/* The p-th percentile (0..100) of n values (sorts them). */
double bench_percentile(double *v, size_t n, double p);
/* A registry whose model "m-a" (OpenAI shape, key "ka", env SLUICE_TEST_KEY_A) points at
 * base_url with the key limits given. Returned string: free(). Also sets the env key. */
char *bench_registry_json(const char *base_url, uint32_t rpm, uint64_t tpm, uint32_t conc);
/* A request of one user message; max_new_tokens 0 leaves the sampling unset. Free with
 * llm_request_free. */
llm_request *bench_text_request(const char *text, uint32_t max_new_tokens);
/* POSTs a JSON body to http://127.0.0.1:port/path (the fake's control API). */
int bench_fake_post(int port, const char *path, const char *json);
/* GETs http://127.0.0.1:port/path into a malloc'd string. */
char *bench_fake_get(int port, const char *path);

#endif
