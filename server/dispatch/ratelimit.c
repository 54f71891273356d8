/*
 * Token buckets (see ratelimit.h). All arithmetic is in doubles of "units" and
 * microseconds; a bucket is touched only by the dispatcher thread.
 */
#include "ratelimit.h"

#include <math.h>

void rl_bucket_init(rl_bucket *b, uint64_t per_minute, uint32_t burst_ms, uint64_t now_us) {
    b->unlimited = per_minute == 0;
    b->rate_per_us = (double)per_minute / 60e6;
    b->capacity = b->rate_per_us * (double)(burst_ms ? burst_ms : 1000) * 1000.0;
    if (b->capacity < 1.0)
        b->capacity = 1.0;
    b->level = 0.0;
    b->last_us = now_us;
}

static void refill(rl_bucket *b, uint64_t now_us) {
    if (now_us > b->last_us) {
        b->level += b->rate_per_us * (double)(now_us - b->last_us);
        if (b->level > b->capacity)
            b->level = b->capacity;
        b->last_us = now_us;
    }
}

/* What must be available to admit `amount`: a request bigger than the bucket waits for
 * a full bucket and then goes into debt. */
static double needed(const rl_bucket *b, double amount) {
    return amount < b->capacity ? amount : b->capacity;
}

bool rl_bucket_can_take(rl_bucket *b, double amount, uint64_t now_us) {
    if (b->unlimited)
        return true;
    refill(b, now_us);
    /* A hair of tolerance so float rounding never costs a whole timer round trip. */
    return b->level + 1e-9 >= needed(b, amount);
}

void rl_bucket_take(rl_bucket *b, double amount, uint64_t now_us) {
    if (b->unlimited)
        return;
    refill(b, now_us);
    b->level -= amount;
}

uint64_t rl_bucket_wait_us(rl_bucket *b, double amount, uint64_t now_us) {
    if (b->unlimited)
        return 0;
    refill(b, now_us);
    double deficit = needed(b, amount) - b->level;
    if (deficit <= 1e-9)
        return 0;
    return (uint64_t)ceil(deficit / b->rate_per_us);
}

void rl_bucket_adjust(rl_bucket *b, double delta, uint64_t now_us) {
    if (b->unlimited)
        return;
    refill(b, now_us);
    b->level += delta;
    if (b->level > b->capacity)
        b->level = b->capacity;
}

void rl_bucket_clamp(rl_bucket *b, double max_level, uint64_t now_us) {
    if (b->unlimited)
        return;
    refill(b, now_us);
    if (b->level > max_level)
        b->level = max_level;
}

double rl_bucket_level(rl_bucket *b, uint64_t now_us) {
    refill(b, now_us);
    return b->level;
}
