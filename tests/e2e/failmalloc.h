/*
 * failmalloc.h - makes the n-th allocation of the calling thread fail.
 *
 * For programs linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup
 * (see failmalloc_wrap in tests/e2e/e2e.cmake): only calls made from the object files of
 * that link go through here - the code under test, compiled into the test - never those
 * libc, gRPC or protobuf-c make inside their own shared libraries. Counting is per thread,
 * so servers running in the same process (their own threads) are unaffected.
 *
 * Thread safety: every function acts on the calling thread only.
 */
#ifndef SLUICE_TESTS_FAILMALLOC_H
#define SLUICE_TESTS_FAILMALLOC_H

#include <stdbool.h>

/* From now on, this thread's n-th allocation (n >= 1) returns NULL; the ones after it
 * succeed again. n == 0 disarms. Resets the count and the failed flag. */
void failmalloc_arm(long n);
/* Disarms; returns how many allocations this thread made since failmalloc_arm. */
long failmalloc_disarm(void);
/* Whether the armed allocation has failed since failmalloc_arm. */
bool failmalloc_failed(void);

#endif
