/*
 * fake_decide.h - decides the fake provider's reply to one provider API request.
 *
 * Input is what the HTTP layer read (API shape, the auth headers, the body); output is a
 * fake_reply (status, headers, body, delay, or reset/hang/truncate). Order: auth (401;
 * Gemini 403), anthropic-version (400), body size (413; Gemini 400), JSON shape (400), then
 * shared state (counters, unknown model 404, the key's rate limiter 429, scripts, forced
 * statuses), then markers in the prompt text, then the deterministic answer. Gateway-level refusals
 * (401/400/404/429) are immediate; model answers, injected errors and truncation wait for the drawn
 * latency. The clocks are parameters. Thread safety: any thread (fake_state locks itself).
 */
#ifndef SLUICE_TESTS_FAKE_DECIDE_H
#define SLUICE_TESTS_FAKE_DECIDE_H

#include "tests/fake_provider/fake_answer.h"
#include "tests/fake_provider/fake_reply.h"
#include "tests/fake_provider/fake_state.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fake_http_in {
    fake_api api;
    const char *model;             /* Gemini: the model its URL names; NULL for the others */
    const char *authorization;     /* "Authorization" header or NULL */
    const char *x_api_key;         /* "x-api-key" header or NULL */
    const char *x_goog_api_key;    /* "x-goog-api-key" header or NULL */
    const char *anthropic_version; /* "anthropic-version" header or NULL */
    const char *body;
    size_t body_len;
    bool body_too_large;
} fake_http_in;

/* now_ms: monotonic clock; wall_s: Unix seconds (for HTTP dates and RFC 3339 resets). */
void fake_decide(fake_state *st, const fake_http_in *in, uint64_t now_ms, int64_t wall_s,
                 fake_reply *out);

#endif
