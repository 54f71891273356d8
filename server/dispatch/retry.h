/*
 * retry.h - the retry policy: one table per provider, a classifier and backoff (pure).
 *
 * After every attempt the dispatcher asks retry_classify what the outcome means. The
 * answer comes from data, not code paths: a per-provider table maps HTTP status ranges to
 * an action, transport failures (timeout, connection error, reset, truncated or malformed
 * body) are always retried on the same model with backoff, and a context-length message
 * (matched case-insensitively for every provider) fails the task at once. Whether a
 * retry happens at all is the dispatcher's business (attempts left, time budget, retry
 * budget); this module only says what kind of retry the outcome deserves.
 */
#ifndef SLUICE_DISPATCH_RETRY_H
#define SLUICE_DISPATCH_RETRY_H

#include "server/providers/registry.h"

#include <stdint.h>

typedef enum retry_action {
    RETRY_NONE = 0,      /* success: nothing to retry */
    RETRY_SAME,          /* retry the same model after a backoff with jitter */
    RETRY_OTHER,         /* retry at once on another model (same model with backoff if none) */
    RETRY_OTHER_OR_FAIL, /* retry at once on another model; fail if there is none */
    RETRY_BLOCKLIST,     /* blocklist the model for the session, retry on another one */
    RETRY_RATE_LIMITED,  /* cool the upstream key down (Retry-After), then retry */
    RETRY_FAIL,          /* cannot succeed: fail the task now */
} retry_action;

/* Failures below HTTP (mirrors http_error, kept separate so this module stays pure). */
typedef enum retry_failure {
    RETRY_FAILURE_NONE = 0, /* a complete HTTP answer arrived */
    RETRY_FAILURE_TIMEOUT,
    RETRY_FAILURE_CONNECT,
    RETRY_FAILURE_RESET,
    RETRY_FAILURE_TRUNCATED,
    RETRY_FAILURE_TOO_LARGE,
    RETRY_FAILURE_MALFORMED, /* 2xx whose body did not parse */
    RETRY_FAILURE_OTHER,
} retry_failure;

typedef struct retry_verdict {
    retry_action action;
    const char *why;       /* static text for logs and the attempt record */
    bool context_exceeded; /* the prompt is too long for the model */
    bool rate_limited;     /* counts as a rate-limit error in the tracker */
} retry_verdict;

/* Classifies one attempt. `status` is the HTTP status (0 when a failure prevented one),
 * `error_text` the provider's error message as its adapter's parse_error wrote it (may be
 * NULL); some rows of a provider's table also look for a status word in it. */
retry_verdict retry_classify(provider_kind provider, retry_failure failure, int status,
                             const char *error_text);

/* True when an error text says the prompt exceeds the model's context (case-insensitive:
 * "context length", "context_length_exceeded", "maximum context", "prompt is too long",
 * "too many tokens", "context window", Gemini's "exceeds the maximum number of tokens"). */
bool retry_is_context_error(const char *error_text);

/* Backoff before retry number `retry` (1 = first retry): min(max_ms, base_ms * 2^(retry-1))
 * scaled by a jitter factor in [0.5, 1.0) drawn from *rng (xorshift state, updated). */
uint32_t retry_backoff_ms(uint32_t retry, uint32_t base_ms, uint32_t max_ms, uint64_t *rng);

/* xorshift64* step: returns a uniformly distributed 64-bit value and advances *state
 * (which must not be 0). */
uint64_t retry_rng_next(uint64_t *state);
/* A double uniform in [0, 1). */
double retry_rng_unit(uint64_t *state);

#endif
