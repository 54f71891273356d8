/*
 * clock.h - time sources.
 *
 * Pure modules (rate limiter, retry policy, cache TTL) never call these: they take a
 * `now_ms` argument so tests can drive them with a fake clock. Only threads that own a
 * loop (dispatcher, store writer, transport) read the clock.
 * Thread safety: any thread.
 */
#ifndef SLUICE_COMMON_CLOCK_H
#define SLUICE_COMMON_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds on the monotonic clock (arbitrary origin). */
uint64_t clock_now_ms(void);
/* Microseconds on the monotonic clock. */
uint64_t clock_now_us(void);
/* Milliseconds since the Unix epoch (wall clock; may jump). */
uint64_t clock_wall_ms(void);

/* Timed waits on the monotonic clock, immune to wall-clock jumps. */
/* Initialises `cv` so that its timed waits measure CLOCK_MONOTONIC. */
void clock_cond_init(pthread_cond_t *cv);
/* The CLOCK_MONOTONIC time `ms` from now, as an absolute deadline for
 * pthread_cond_timedwait on a condition variable from clock_cond_init. */
struct timespec clock_deadline_after_ms(uint64_t ms);
/* Waits on `cv` (from clock_cond_init; caller holds `mu`) for a signal or `ms` at most.
 * Returns pthread_cond_timedwait's result (ETIMEDOUT on time-out). */
int clock_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t ms);

#endif
