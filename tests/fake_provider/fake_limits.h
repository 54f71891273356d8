/*
 * fake_limits.h - the fake provider's per-key rate limiter (pure: the clock is a parameter).
 *
 * Like a provider: a requests bucket and a tokens bucket per API key, each holding
 * `limit * window_ms / 60000` units (60 s worth by default), starting full and refilling
 * continuously at limit/60000 units per ms. A request is admitted only when both buckets
 * hold its cost (1 request, its estimated tokens); then both are charged.
 * Thread safety: none; the caller serialises (fake_state's lock).
 */
#ifndef SLUICE_TESTS_FAKE_LIMITS_H
#define SLUICE_TESTS_FAKE_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct fake_bucket {
    uint32_t limit; /* per minute; 0 = unlimited (the bucket is inert) */
    double capacity;
    double level;
    double rate_per_ms;
    uint64_t last_ms;
} fake_bucket;

/* Sets up a full bucket. window_ms 0 = 60000. */
void fake_bucket_init(fake_bucket *b, uint32_t limit, uint32_t window_ms, uint64_t now_ms);
/* Refills for the time passed since the last call. */
void fake_bucket_refill(fake_bucket *b, uint64_t now_ms);
/* Milliseconds until `cost` fits (0 = now); UINT64_MAX when it never can (cost > capacity).
 * Call after fake_bucket_refill. */
uint64_t fake_bucket_wait_ms(const fake_bucket *b, double cost);
/* Milliseconds until the bucket is full again. */
uint64_t fake_bucket_full_ms(const fake_bucket *b);

/* What the limiter decided for one request, with what the provider headers report. */
typedef struct fake_verdict {
    bool limited;     /* answer 429 */
    bool never_fits;  /* the cost exceeds a bucket's capacity */
    bool by_tokens;   /* the tokens bucket refused (else requests) */
    uint64_t wait_ms; /* until the request would fit */
    bool has_requests, has_tokens;
    uint32_t req_limit, tok_limit;
    uint64_t req_remaining, tok_remaining;
    uint64_t req_reset_ms, tok_reset_ms; /* until full */
} fake_verdict;

/* Refills both buckets, decides, and charges them when admitted. */
void fake_limits_admit(fake_bucket *req, fake_bucket *tok, uint64_t tokens, uint64_t now_ms,
                       fake_verdict *v);

#endif
