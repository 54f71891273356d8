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

#include <stdint.h>

/* Milliseconds on the monotonic clock (arbitrary origin). */
uint64_t clock_now_ms(void);
/* Microseconds on the monotonic clock. */
uint64_t clock_now_us(void);
/* Milliseconds since the Unix epoch (wall clock; may jump). */
uint64_t clock_wall_ms(void);

#endif
