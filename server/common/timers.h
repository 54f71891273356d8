/*
 * timers.h - one thread that runs callbacks at given times.
 *
 * The gRPC C core has no public alarm API, so the service layer schedules its timeouts
 * (Wait's timeout_ms, progress snapshots, tracker persistence) here. Callbacks run on the
 * timers thread, one at a time, without any lock held; they must not block.
 *
 * Thread safety: timers_add/timers_cancel from any thread (including from a callback).
 */
#ifndef SLUICE_COMMON_TIMERS_H
#define SLUICE_COMMON_TIMERS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct timers timers;
typedef void (*timer_fn)(void *arg);

/* Creates the timers thread. Returns NULL if the thread cannot start. */
timers *timers_new(void);
/* Stops the thread; pending timers are dropped without running. NULL-safe. */
void timers_free(timers *t);
/* Runs fn(arg) after delay_ms. Returns the timer's id (never 0). */
uint64_t timers_add(timers *t, uint64_t delay_ms, timer_fn fn, void *arg);
/* Removes a pending timer. Returns true if it was removed before running; false if it has
 * already run, is running now, or never existed. */
bool timers_cancel(timers *t, uint64_t id);

#endif
