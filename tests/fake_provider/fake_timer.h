/*
 * fake_timer.h - one thread that fires items at deadlines (the fake's delayed answers).
 *
 * Items are opaque pointers with a due time on the monotonic clock, kept in a min-heap.
 * `fire` runs on the timer thread with the timer's lock held, so it must be short and must
 * not call back into the timer. fake_timer_schedule runs a caller's `prepare` step (for the
 * fake: suspending the MHD connection) under the same lock, which makes "suspend + schedule"
 * atomic with respect to fake_timer_stop: an item is either scheduled and later fired, or
 * refused because the timer is stopping. Stopping fires every pending item at once with
 * stopping=true. Bounded by the number of connections the server accepts.
 * Thread safety: every function may be called from any thread.
 */
#ifndef SLUICE_TESTS_FAKE_TIMER_H
#define SLUICE_TESTS_FAKE_TIMER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct fake_timer fake_timer;

typedef void (*fake_timer_fire_fn)(void *item, bool stopping);
typedef void (*fake_timer_prepare_fn)(void *item);

/* Starts the thread. Returns NULL when the thread cannot be created. */
fake_timer *fake_timer_new(fake_timer_fire_fn fire);
/* Runs prepare(item) then schedules item for due_ms, atomically; returns false (without
 * calling prepare) when the timer is stopping. */
bool fake_timer_schedule(fake_timer *t, uint64_t due_ms, void *item, fake_timer_prepare_fn prepare);
/* Fires every pending item with stopping=true; later schedules are refused. */
void fake_timer_stop(fake_timer *t);
/* Stops (if needed), joins the thread and frees. NULL-safe. */
void fake_timer_free(fake_timer *t);

#endif
