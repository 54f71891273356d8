/*
 * ratelimit.h - continuous token buckets for requests/min and tokens/min (pure).
 *
 * A bucket refills continuously at per_minute/60000 units per millisecond up to a
 * capacity of `burst_ms` worth of refill (default one second), and starts EMPTY: a fresh
 * limiter never sends an unthrottled first burst, and after an idle period at most one
 * burst window goes out at once, which is what a provider enforcing the limit over short
 * windows accepts. A request larger than the capacity is admitted once the bucket is full
 * and drives the level negative (debt), so the long-run rate is exact whatever the
 * request sizes. Estimates are reconciled later with rl_bucket_adjust.
 *
 * Every function takes the time as an argument (microseconds on any monotonic origin)
 * and does no I/O, so tests drive it with a fake clock. Not thread safe: a bucket belongs
 * to the dispatcher thread.
 */
#ifndef SLUICE_DISPATCH_RATELIMIT_H
#define SLUICE_DISPATCH_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct rl_bucket {
    double level;       /* units available now (negative = debt) */
    double capacity;    /* maximum level */
    double rate_per_us; /* refill rate */
    uint64_t last_us;   /* time of the last refill */
    bool unlimited;     /* per_minute == 0: never limits */
} rl_bucket;

/* Initialises an empty bucket for `per_minute` units (0 = unlimited) holding at most
 * burst_ms worth of refill (at least one unit). */
void rl_bucket_init(rl_bucket *b, uint64_t per_minute, uint32_t burst_ms, uint64_t now_us);
/* True when `amount` may be taken now: the level covers min(amount, capacity). */
bool rl_bucket_can_take(rl_bucket *b, double amount, uint64_t now_us);
/* Takes `amount` (the level may go negative). Call after rl_bucket_can_take. */
void rl_bucket_take(rl_bucket *b, double amount, uint64_t now_us);
/* Microseconds until rl_bucket_can_take(amount) becomes true (0 = now). */
uint64_t rl_bucket_wait_us(rl_bucket *b, double amount, uint64_t now_us);
/* Adds (refund, positive) or removes (extra charge, negative) units, keeping the level at
 * most the capacity. Used to reconcile an estimate with reported usage. */
void rl_bucket_adjust(rl_bucket *b, double delta, uint64_t now_us);
/* Lowers the level to at most `max_level` (the provider says fewer units remain). */
void rl_bucket_clamp(rl_bucket *b, double max_level, uint64_t now_us);
/* The level now (after refill). */
double rl_bucket_level(rl_bucket *b, uint64_t now_us);

/* A cap on things in flight. max == 0 means no cap. */
typedef struct rl_concurrency {
    uint32_t in_flight;
    uint32_t max;
} rl_concurrency;

static inline bool rl_concurrency_full(const rl_concurrency *c) {
    return c->max && c->in_flight >= c->max;
}

#endif
