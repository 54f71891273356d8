/*
 * Provider feedback headers (see feedback.h). Parsers are strict: anything they do not
 * fully understand yields -1 ("unknown"), so junk never shortens or cancels a cooldown.
 */
#include "feedback.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Parses a whole string as a finite double (leading/trailing blanks allowed). */
static int parse_number(const char *s, double *out) {
    if (!s)
        return -1;
    while (isspace((unsigned char)*s))
        s++;
    if (!*s)
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    while (isspace((unsigned char)*end))
        end++;
    if (errno || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* ms as a count of whole milliseconds in [0, 9e15]; NaN counts as 0 (no UB cast). */
static int64_t clamp_nonneg(double ms) {
    if (!(ms > 0))
        return 0;
    if (ms > 9e15)
        return (int64_t)9e15;
    return (int64_t)ceil(ms);
}

int64_t feedback_http_date_ms(const char *s) {
    if (!s)
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return -1;
    time_t t = timegm(&tm);
    return t < 0 ? -1 : (int64_t)t * 1000;
}

int64_t feedback_rfc3339_ms(const char *s) {
    if (!s)
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    double frac = 0;
    if (*p == '.') {
        char *end;
        frac = strtod(p, &end);
        if (end == p || !(frac >= 0 && frac < 1))
            return -1; /* ".", or an exponent that leaves [0, 1) */
        p = end;
    }
    long offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int hh, mm;
        if (strlen(p) != 6 || p[3] != ':' || !isdigit((unsigned char)p[1]) ||
            !isdigit((unsigned char)p[2]) || !isdigit((unsigned char)p[4]) ||
            !isdigit((unsigned char)p[5]))
            return -1;
        hh = (p[1] - '0') * 10 + (p[2] - '0');
        mm = (p[4] - '0') * 10 + (p[5] - '0');
        if (hh > 23 || mm > 59)
            return -1;
        offset_s = sign * (hh * 3600L + mm * 60L);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    time_t t = timegm(&tm);
    /* A positive offset can move the first day of 1970 before the epoch. */
    if (t < 0 || (int64_t)t - offset_s < 0)
        return -1;
    return ((int64_t)t - offset_s) * 1000 + (int64_t)(frac * 1000);
}

int64_t feedback_duration_ms(const char *s) {
    double secs;
    if (parse_number(s, &secs) == 0)
        return secs < 0 ? -1 : clamp_nonneg(secs * 1000);
    if (!s || !*s)
        return -1;
    double total_ms = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !isfinite(v) || v < 0) /* strtod takes "nan" and "inf" */
            return -1;
        p = end;
        double unit;
        if (strncmp(p, "ms", 2) == 0) {
            unit = 1;
            p += 2;
        } else if (*p == 'h') {
            unit = 3600e3;
            p++;
        } else if (*p == 'm') {
            unit = 60e3;
            p++;
        } else if (*p == 's') {
            unit = 1e3;
            p++;
        } else {
            return -1;
        }
        total_ms += v * unit;
    }
    return clamp_nonneg(total_ms);
}

int64_t feedback_retry_after_ms(const char *retry_after_ms, const char *retry_after,
                                uint64_t now_wall_ms) {
    double v; /* a negative delay is no delay at all: junk, like text */
    if (parse_number(retry_after_ms, &v) == 0 && v >= 0)
        return clamp_nonneg(v);
    if (parse_number(retry_after, &v) == 0)
        return v >= 0 ? clamp_nonneg(v * 1000) : -1;
    int64_t when = feedback_http_date_ms(retry_after ? retry_after : NULL);
    if (when >= 0)
        return clamp_nonneg((double)when - (double)now_wall_ms);
    return -1;
}

static const char *find(const http_header *h, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(h[i].name, name) == 0)
            return h[i].value;
    return NULL;
}

static int64_t parse_count(const char *s) {
    double v;
    if (parse_number(s, &v) || v < 0)
        return -1;
    return v > 9e15 ? (int64_t)9e15 : (int64_t)floor(v); /* never round a remaining count up */
}

/* Anthropic reset times are absolute; turn them into "from now". */
static int64_t reset_from_now(const char *s, uint64_t now_wall_ms) {
    int64_t when = feedback_rfc3339_ms(s);
    if (when < 0)
        return -1;
    return clamp_nonneg((double)when - (double)now_wall_ms);
}

/* Keeps the most restrictive (smallest remaining) token limit and its reset. */
static void take_tokens(feedback *f, int64_t remaining, int64_t reset_ms) {
    if (remaining < 0)
        return;
    if (f->remaining_tokens < 0 || remaining < f->remaining_tokens) {
        f->remaining_tokens = remaining;
        f->tokens_reset_ms = reset_ms;
    }
}

void feedback_parse(const http_header *h, size_t n, uint64_t now_wall_ms, feedback *out) {
    out->retry_after_ms = feedback_retry_after_ms(find(h, n, "retry-after-ms"),
                                                  find(h, n, "retry-after"), now_wall_ms);
    out->remaining_requests = parse_count(find(h, n, "x-ratelimit-remaining-requests"));
    out->requests_reset_ms = feedback_duration_ms(find(h, n, "x-ratelimit-reset-requests"));
    out->remaining_tokens = -1;
    out->tokens_reset_ms = -1;
    take_tokens(out, parse_count(find(h, n, "x-ratelimit-remaining-tokens")),
                feedback_duration_ms(find(h, n, "x-ratelimit-reset-tokens")));
    if (out->remaining_requests < 0) {
        out->remaining_requests = parse_count(find(h, n, "anthropic-ratelimit-requests-remaining"));
        out->requests_reset_ms =
            reset_from_now(find(h, n, "anthropic-ratelimit-requests-reset"), now_wall_ms);
    }
    static const char *const kinds[] = {"tokens", "input-tokens", "output-tokens"};
    for (size_t i = 0; i < 3; i++) {
        char rem[64], rst[64];
        snprintf(rem, sizeof rem, "anthropic-ratelimit-%s-remaining", kinds[i]);
        snprintf(rst, sizeof rst, "anthropic-ratelimit-%s-reset", kinds[i]);
        take_tokens(out, parse_count(find(h, n, rem)),
                    reset_from_now(find(h, n, rst), now_wall_ms));
    }
}
