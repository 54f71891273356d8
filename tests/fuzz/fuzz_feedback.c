/*
 * Fuzz target: the provider feedback headers (server/dispatch/feedback.c).
 *
 * The whole input, as one header value, goes through each value parser (Go durations,
 * HTTP dates, RFC 3339 times, Retry-After in both headers); then the input is read as up
 * to 32 header lines "name: value" and given to feedback_parse, as the HTTP layer hands
 * them over (names lowercased, values trimmed). Checks the documented ranges: every
 * result is -1 (unknown) or a count/duration in [0, 9e15] (so the dispatcher's
 * milliseconds-to-microseconds arithmetic cannot overflow).
 */
#include "fuzz.h"

#include "server/dispatch/feedback.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define NOW_WALL_MS 1795000000000ull /* a fixed wall clock (late 2026) */
#define MAX_MS 9000000000000000ll

static void check(const char *what, int64_t v) {
    if (v < -1 || v > MAX_MS)
        fuzz_fail("%s returned %lld, outside -1 or [0, 9e15]", what, (long long)v);
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static void parse_headers(const uint8_t *data, size_t size) {
    size_t n;
    char **lines = fuzz_split(data, size, '\n', 32, &n);
    http_header h[32];
    size_t nh = 0;
    for (size_t i = 0; i < n; i++) {
        char *colon = strchr(lines[i], ':');
        if (!colon)
            continue;
        *colon = '\0';
        for (char *p = lines[i]; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        h[nh].name = trim(lines[i]);
        h[nh].value = trim(colon + 1);
        nh++;
    }
    feedback fb;
    feedback_parse(h, nh, NOW_WALL_MS, &fb);
    check("feedback_parse retry_after_ms", fb.retry_after_ms);
    check("feedback_parse remaining_requests", fb.remaining_requests);
    check("feedback_parse requests_reset_ms", fb.requests_reset_ms);
    check("feedback_parse remaining_tokens", fb.remaining_tokens);
    check("feedback_parse tokens_reset_ms", fb.tokens_reset_ms);
    fuzz_pieces_free(lines, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = fuzz_strndup(data, size);
    check("feedback_duration_ms", feedback_duration_ms(s));
    check("feedback_retry_after_ms(ms)", feedback_retry_after_ms(s, NULL, NOW_WALL_MS));
    check("feedback_retry_after_ms(s)", feedback_retry_after_ms(NULL, s, NOW_WALL_MS));
    check("feedback_retry_after_ms(s, now 0)", feedback_retry_after_ms(NULL, s, 0));
    /* Absolute times: -1 or milliseconds since the epoch (any non-negative value). */
    if (feedback_http_date_ms(s) < -1 || feedback_rfc3339_ms(s) < -1)
        fuzz_fail("a date parser returned below -1");
    free(s);
    parse_headers(data, size);
    return 0;
}
