/*
 * Retry policy tables: ordered lists of status ranges, the first matching row decides
 * (rows that need a word in the error text first, then Anthropic's own rows, then the
 * shared ones). The tables are the whole policy: changing how a status is handled is a
 * one-line edit here, and test_retry checks every row.
 *
 * Differences from lm-deluge, on purpose (lm-deluge-behaviour.md §4, §9.3):
 * - 5xx retries the same model with backoff instead of switching at once (a 500 is usually
 *   transient); 503 switches model because it usually means that model has no capacity.
 * - 429 and Anthropic's 529 cool the upstream key down for every provider, whatever the
 *   body says; context-length errors are matched case-insensitively for every provider.
 * - 401/403/404 blocklist the model for the session (and retry elsewhere); other 4xx that
 *   cannot succeed on retry fail at once, except 400/422, which another model may accept
 *   (they fail at once when the session has no other model).
 *
 * Gemini's statuses (google.rpc codes) on these rows: 429 RESOURCE_EXHAUSTED cools the key
 * down for the google.rpc.RetryInfo retryDelay of its body (the adapter reports it; the
 * dispatcher honours it as a Retry-After); 500 INTERNAL and 504 DEADLINE_EXCEEDED retry the
 * same model with backoff; 503 UNAVAILABLE (overloaded) moves to another model; 400
 * INVALID_ARGUMENT moves or fails like any 400, and fails at once when its message says the
 * input token count exceeds the model's maximum; 401 UNAUTHENTICATED, 403
 * PERMISSION_DENIED and 404 NOT_FOUND blocklist. Gemini answers 400 for a bad key too
 * (reason API_KEY_INVALID) and for a project that cannot use the API (FAILED_PRECONDITION:
 * billing, region): its adapter puts those words first in the error text, and the word rows
 * blocklist the model, since every prompt would meet the same refusal.
 */
#include "retry.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

typedef struct retry_rule {
    int lo, hi;
    retry_action action;
    const char *why;
} retry_rule;

#define RULES_END                                                                                  \
    { 0, 0, RETRY_NONE, NULL }

/* Every provider. */
static const retry_rule status_rules[] = {
    {200, 299, RETRY_NONE, "success"},
    {429, 429, RETRY_RATE_LIMITED, "rate limited (429)"},
    {401, 401, RETRY_BLOCKLIST, "unauthorized (401): bad API key"},
    {403, 403, RETRY_BLOCKLIST, "forbidden (403)"},
    {404, 404, RETRY_BLOCKLIST, "model not found (404)"},
    {400, 400, RETRY_OTHER_OR_FAIL, "bad request (400)"},
    {422, 422, RETRY_OTHER_OR_FAIL, "unprocessable request (422)"},
    {408, 409, RETRY_SAME, "request timeout or conflict"},
    {413, 413, RETRY_FAIL, "request too large (413)"},
    {503, 503, RETRY_OTHER, "service unavailable (503)"},
    {500, 599, RETRY_SAME, "server error (5xx)"},
    {400, 499, RETRY_FAIL, "client error (4xx) that cannot succeed on retry"},
    {100, 399, RETRY_SAME, "unexpected status"},
    RULES_END,
};

/* Anthropic only, consulted before status_rules. */
static const retry_rule anthropic_rules[] = {
    {529, 529, RETRY_RATE_LIMITED, "overloaded (529)"},
    RULES_END,
};

/* A row that applies to one provider's error texts holding `word` (the status or reason
 * word its adapter puts first), consulted before the others. */
typedef struct word_rule {
    provider_kind provider;
    const char *word;
    retry_rule rule;
} word_rule;

static const word_rule word_rules[] = {
    {PROVIDER_GEMINI,
     "API_KEY_INVALID",
     {400, 400, RETRY_BLOCKLIST, "invalid API key (400 API_KEY_INVALID)"}},
    {PROVIDER_GEMINI,
     "FAILED_PRECONDITION",
     {400, 400, RETRY_BLOCKLIST, "failed precondition (400): the project cannot use this model"}},
};

static const retry_rule *find_word_rule(provider_kind provider, int status, const char *text) {
    for (size_t i = 0; text && i < sizeof word_rules / sizeof *word_rules; i++) {
        const word_rule *w = &word_rules[i];
        if (w->provider == provider && status >= w->rule.lo && status <= w->rule.hi &&
            strstr(text, w->word))
            return &w->rule;
    }
    return NULL;
}

static const retry_rule *find_rule(const retry_rule *rules, int status) {
    for (const retry_rule *r = rules; r->why; r++)
        if (status >= r->lo && status <= r->hi)
            return r;
    return NULL;
}

/* The last is Gemini's: "The input token count (N) exceeds the maximum number of tokens
 * allowed (M)." */
static const char *const context_markers[] = {
    "context length",
    "context_length_exceeded",
    "maximum context",
    "prompt is too long",
    "too many tokens",
    "context window",
    "exceeds the maximum number of tokens",
};

bool retry_is_context_error(const char *error_text) {
    if (!error_text)
        return false;
    for (size_t i = 0; i < sizeof context_markers / sizeof *context_markers; i++)
        if (strcasestr(error_text, context_markers[i]))
            return true;
    return false;
}

static retry_verdict failure_verdict(retry_failure failure) {
    retry_verdict v = {RETRY_SAME, NULL, false, false};
    switch (failure) {
    case RETRY_FAILURE_TIMEOUT:
        v.why = "timed out";
        break;
    case RETRY_FAILURE_CONNECT:
        v.why = "connection failed";
        break;
    case RETRY_FAILURE_RESET:
        v.why = "connection reset";
        break;
    case RETRY_FAILURE_TRUNCATED:
        v.why = "truncated response";
        break;
    case RETRY_FAILURE_TOO_LARGE:
        v.why = "response too large";
        v.action = RETRY_FAIL;
        break;
    case RETRY_FAILURE_MALFORMED:
        v.why = "malformed response";
        break;
    default:
        v.why = "transport failure";
        break;
    }
    return v;
}

retry_verdict retry_classify(provider_kind provider, retry_failure failure, int status,
                             const char *error_text) {
    if (failure != RETRY_FAILURE_NONE)
        return failure_verdict(failure);
    retry_verdict v = {RETRY_SAME, "unexpected status", false, false};
    const retry_rule *r = find_word_rule(provider, status, error_text);
    if (!r && provider == PROVIDER_ANTHROPIC)
        r = find_rule(anthropic_rules, status);
    if (!r)
        r = find_rule(status_rules, status);
    if (r) {
        v.action = r->action;
        v.why = r->why;
    }
    v.rate_limited = v.action == RETRY_RATE_LIMITED;
    if (v.action != RETRY_NONE && status >= 400 && status < 500 &&
        retry_is_context_error(error_text)) {
        v.action = RETRY_FAIL;
        v.why = "context length exceeded";
        v.context_exceeded = true;
    }
    return v;
}

uint64_t retry_rng_next(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

double retry_rng_unit(uint64_t *state) {
    return (double)(retry_rng_next(state) >> 11) * (1.0 / 9007199254740992.0);
}

uint32_t retry_backoff_ms(uint32_t retry, uint32_t base_ms, uint32_t max_ms, uint64_t *rng) {
    double d = base_ms;
    for (uint32_t i = 1; i < retry && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    return (uint32_t)(d * (0.5 + 0.5 * retry_rng_unit(rng)));
}
