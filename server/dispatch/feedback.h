/*
 * feedback.h - what a provider's response headers say about its limits (pure).
 *
 * Parses Retry-After (`retry-after-ms` wins over `retry-after`, which is seconds or an HTTP
 * date), OpenAI's `x-ratelimit-{remaining,reset}-{requests,tokens}` (reset as a Go-style
 * duration such as "6m0s" or "20ms") and Anthropic's
 * `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{remaining,reset}`
 * (reset as an RFC 3339 time). No clamping: a provider asking for a long wait gets it.
 * All functions are pure; the wall-clock time is an argument.
 */
#ifndef SLUICE_DISPATCH_FEEDBACK_H
#define SLUICE_DISPATCH_FEEDBACK_H

#include "server/http/http.h"

#include <stdint.h>

typedef struct feedback {
    int64_t retry_after_ms;     /* -1 = none given (or unparsable) */
    int64_t remaining_requests; /* -1 = unknown */
    int64_t requests_reset_ms;  /* from now; -1 = unknown */
    int64_t remaining_tokens;   /* -1 = unknown (the smallest of the token limits) */
    int64_t tokens_reset_ms;    /* from now; -1 = unknown */
} feedback;

/* Reads every header this module knows from a response. */
void feedback_parse(const http_header *headers, size_t n, uint64_t now_wall_ms, feedback *out);

/* Retry-After in milliseconds from the two header values (either may be NULL):
 * retry-after-ms as a number of milliseconds wins when it parses; else retry-after as
 * (possibly fractional) seconds or an HTTP date relative to now. A date in the past gives 0
 * ("now"); a negative number, junk or nothing gives -1 (no usable value: the caller's
 * default applies). */
int64_t feedback_retry_after_ms(const char *retry_after_ms, const char *retry_after,
                                uint64_t now_wall_ms);
/* "1h2m3.5s", "6m0s", "20ms", "1.5s", or a bare number of seconds -> milliseconds; -1 on
 * junk. */
int64_t feedback_duration_ms(const char *s);
/* "Sun, 06 Nov 1994 08:49:37 GMT" -> milliseconds since the epoch; -1 on junk. */
int64_t feedback_http_date_ms(const char *s);
/* "2026-11-26T13:29:02Z" / "...02.5+00:00" -> milliseconds since the epoch; -1 on junk. */
int64_t feedback_rfc3339_ms(const char *s);

#endif
