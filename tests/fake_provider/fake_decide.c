/*
 * fake_decide.c - the fake provider's decision for one provider request (see fake_decide.h).
 *
 * Mirrors how a real provider layers its answers: the gateway checks credentials and
 * shape, the account limiter answers 429 with retry hints, and only then does the "model"
 * answer, after its latency. Rate-limit headers ride on every answer the limiter saw, in
 * the provider's own style (OpenAI x-ratelimit-* with durations like "6m0s"; Anthropic
 * anthropic-ratelimit-* with RFC 3339 reset times), so the dispatcher's header parsing is
 * exercised by every test, not just the 429 ones. Gemini sends no rate-limit headers: its
 * 429s carry the delay in the body (google.rpc.RetryInfo), and so do the fake's, for the
 * limiter and for the retry-after markers alike.
 */
#include "tests/fake_provider/fake_decide.h"

#include "server/common/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *api_key(const fake_http_in *in) {
    if (in->api == FAKE_API_ANTHROPIC)
        return in->x_api_key && *in->x_api_key ? in->x_api_key : NULL;
    if (in->api == FAKE_API_GEMINI)
        return in->x_goog_api_key && *in->x_goog_api_key ? in->x_goog_api_key : NULL;
    const char *a = in->authorization;
    if (!a || strncasecmp(a, "Bearer ", 7) != 0)
        return NULL;
    a += 7;
    while (*a == ' ')
        a++;
    return *a ? a : NULL;
}

static void reply_error(fake_reply *out, fake_api api, int status, const char *type,
                        const char *msg) {
    fake_reply_set(out, status, fake_error_body(api, status, type, NULL, msg));
}

/* The refusal of a request without a key, in the provider's words. */
static void no_key(const fake_http_in *in, fake_reply *out) {
    switch (in->api) {
    case FAKE_API_OPENAI:
        reply_error(out, in->api, 401, "invalid_request_error",
                    "You didn't provide an API key. You need to provide your API key in an "
                    "Authorization header using Bearer auth (i.e. Authorization: Bearer "
                    "YOUR_KEY).");
        return;
    case FAKE_API_GEMINI:
        fake_reply_set(out, 403, fake_error_for_status(in->api, 403, NULL));
        return;
    case FAKE_API_ANTHROPIC:
        break;
    }
    reply_error(out, in->api, 401, "authentication_error", "x-api-key header is required");
}

/* Checks done before reading the body; true when the request was refused. */
static bool gateway_refusal(fake_state *st, const fake_http_in *in, fake_reply *out) {
    bool gemini = in->api == FAKE_API_GEMINI;
    if (!api_key(in))
        no_key(in, out);
    else if (in->api == FAKE_API_ANTHROPIC && !in->anthropic_version)
        reply_error(out, in->api, 400, NULL, "anthropic-version: header is required");
    else if (in->body_too_large)
        reply_error(out, in->api, gemini ? 400 : 413, NULL,
                    gemini ? "Request payload size exceeds the limit."
                           : "Request exceeds the maximum allowed number of bytes.");
    else
        return false;
    fake_state_rejected(st);
    return true;
}

static void fmt_duration(char *out, size_t n, uint64_t ms) {
    if (ms < 1000)
        snprintf(out, n, "%llums", (unsigned long long)ms);
    else if (ms < 60000)
        snprintf(out, n, "%gs", (double)ms / 1000.0);
    else
        snprintf(out, n, "%llum%llus", (unsigned long long)(ms / 60000),
                 (unsigned long long)((ms % 60000) / 1000));
}

static void fmt_rfc3339(char *out, size_t n, int64_t wall_s, uint64_t ms) {
    time_t t = (time_t)(wall_s + (int64_t)((ms + 999) / 1000));
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void fmt_http_date(char *out, size_t n, int64_t wall_s) {
    time_t t = (time_t)wall_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* The names of one limit's three headers, in its provider's style. */
typedef struct limit_header_names {
    const char *limit, *remaining, *reset;
} limit_header_names;

/* [0] the requests limit, [1] the tokens limit. */
static const limit_header_names openai_names[2] = {
    {"x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"},
    {"x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"},
};
static const limit_header_names anthropic_names[2] = {
    {"anthropic-ratelimit-requests-limit", "anthropic-ratelimit-requests-remaining",
     "anthropic-ratelimit-requests-reset"},
    {"anthropic-ratelimit-tokens-limit", "anthropic-ratelimit-tokens-remaining",
     "anthropic-ratelimit-tokens-reset"},
};

/* One limit's headers; the reset is a duration for OpenAI ("6m0s"), a time for Anthropic. */
static void limit_headers(fake_reply *out, fake_api api, const limit_header_names *names,
                          uint32_t limit, uint64_t remaining, uint64_t reset_ms, int64_t wall_s) {
    char reset[40];
    if (api == FAKE_API_OPENAI)
        fmt_duration(reset, sizeof reset, reset_ms);
    else
        fmt_rfc3339(reset, sizeof reset, wall_s, reset_ms);
    fake_reply_header(out, names->limit, "%u", limit);
    fake_reply_header(out, names->remaining, "%llu", (unsigned long long)remaining);
    fake_reply_header(out, names->reset, "%s", reset);
}

/* The headers of each limit the limiter applied to this request (Gemini sends none). */
static void rate_limit_headers(fake_reply *out, fake_api api, const fake_verdict *v,
                               int64_t wall_s) {
    if (api == FAKE_API_GEMINI)
        return;
    const limit_header_names *names = api == FAKE_API_OPENAI ? openai_names : anthropic_names;
    if (v->has_requests)
        limit_headers(out, api, &names[0], v->req_limit, v->req_remaining, v->req_reset_ms, wall_s);
    if (v->has_tokens)
        limit_headers(out, api, &names[1], v->tok_limit, v->tok_remaining, v->tok_reset_ms, wall_s);
}

/* Gemini's quota error: the delay in the body's RetryInfo, no header. */
static void gemini_limited_reply(fake_reply *out, const fake_parsed *p, const fake_verdict *v) {
    const char *what = v->by_tokens ? "input_token_count" : "requests";
    uint32_t limit = v->by_tokens ? v->tok_limit : v->req_limit;
    char msg[400];
    snprintf(msg, sizeof msg,
             "You exceeded your current quota, please check your plan and billing details.\n"
             "* Quota exceeded for metric: generativelanguage.googleapis.com/"
             "generate_content_paid_tier_%s, limit: %u, model: %s",
             what, limit, p->model);
    fake_reply_set(
        out, 429,
        fake_gemini_error(429, NULL, NULL, msg, v->never_fits ? -1 : (int64_t)v->wait_ms));
}

static void limited_reply(fake_reply *out, const fake_parsed *p, const fake_verdict *v) {
    if (p->api == FAKE_API_GEMINI) {
        gemini_limited_reply(out, p, v);
        return;
    }
    bool oa = p->api == FAKE_API_OPENAI;
    const char *what = v->by_tokens ? "tokens per min (TPM)" : "requests per min (RPM)";
    uint32_t limit = v->by_tokens ? v->tok_limit : v->req_limit;
    char msg[320];
    if (v->never_fits) {
        snprintf(msg, sizeof msg, "Request too large for %s on %s: Limit %u, Requested %llu.",
                 p->model, what, limit, (unsigned long long)p->est_tokens);
    } else {
        snprintf(msg, sizeof msg,
                 "Rate limit reached for %s on %s: Limit %u. Please try again in %llums.", p->model,
                 what, limit, (unsigned long long)v->wait_ms);
        fake_reply_header(out, "retry-after", "%llu",
                          (unsigned long long)((v->wait_ms + 999) / 1000));
        if (oa)
            fake_reply_header(out, "retry-after-ms", "%llu", (unsigned long long)v->wait_ms);
    }
    fake_reply_set(out, 429,
                   fake_error_body(p->api, 429, oa ? (v->by_tokens ? "tokens" : "requests") : NULL,
                                   oa ? "rate_limit_exceeded" : NULL, msg));
}

static void status_reply(fake_reply *out, const fake_parsed *p, int status) {
    if (status >= 200 && status < 300)
        fake_reply_set(out, status, fake_answer_success(p));
    else
        fake_reply_set(out, status, fake_error_for_status(p->api, status, p->model));
}

static void scripted_reply(fake_reply *out, const fake_parsed *p, const fake_script_reply *s) {
    if (s->body)
        fake_reply_set(out, s->status, xstrdup(s->body));
    else
        status_reply(out, p, s->status);
    for (size_t i = 0; i < s->n_headers; i++)
        fake_reply_header_line(out, s->headers[i]);
}

/* Gemini names a retry delay in the body (RetryInfo), never in a header; only the HTTP-date
 * marker, which Gemini has no form for, stays a header. */
static void gemini_marker_status(fake_reply *out, const fake_parsed *p, const fake_markers *m) {
    int64_t delay = m->retry_after_ms >= 0  ? m->retry_after_ms
                    : m->retry_after_s >= 0 ? (int64_t)m->retry_after_s * 1000
                                            : -1;
    if (m->status >= 200 && m->status < 300)
        status_reply(out, p, m->status);
    else
        fake_reply_set(out, m->status,
                       fake_error_for_status_delay(p->api, m->status, p->model, delay));
}

static void marker_status(fake_reply *out, const fake_parsed *p, const fake_markers *m,
                          int64_t wall_s) {
    if (p->api == FAKE_API_GEMINI) {
        gemini_marker_status(out, p, m);
    } else {
        status_reply(out, p, m->status);
        if (m->retry_after_s >= 0)
            fake_reply_header(out, "retry-after", "%d", m->retry_after_s);
        if (m->retry_after_ms >= 0)
            fake_reply_header(out, "retry-after-ms", "%d", m->retry_after_ms);
    }
    if (m->retry_after_date) {
        char date[64];
        fmt_http_date(date, sizeof date, wall_s + 3);
        fake_reply_header(out, "retry-after", "%s", date);
    }
}

static void model_answer(fake_reply *out, const fake_parsed *p, const fake_arrival *a,
                         int64_t wall_s) {
    out->delay_ms = a->delay_ms;
    if (a->reset) {
        out->action = FAKE_ACT_RESET;
        out->delay_ms = 0;
        return;
    }
    if (a->scripted) {
        scripted_reply(out, p, &a->script);
        return;
    }
    if (a->forced_status) {
        status_reply(out, p, a->forced_status);
        return;
    }
    fake_markers m;
    fake_markers_scan(p->prompt_text.data, &m);
    if (m.reset) {
        out->action = FAKE_ACT_RESET;
        out->delay_ms = 0;
    } else if (m.hang) {
        out->action = FAKE_ACT_HANG;
    } else if (m.truncate) {
        out->action = FAKE_ACT_TRUNCATE;
        fake_reply_set(out, 200, fake_answer_success(p));
    } else if (m.malformed) {
        fake_reply_set(out, 200, fake_answer_malformed(p->api));
    } else if (m.context) {
        fake_reply_set(out, 400, fake_error_context(p->api, p));
    } else if (m.status) {
        marker_status(out, p, &m, wall_s);
    } else if (m.fail_first && a->arrivals <= m.fail_first) {
        status_reply(out, p, 500);
    } else {
        fake_reply_set(out, 200, fake_answer_success(p));
    }
}

void fake_decide(fake_state *st, const fake_http_in *in, uint64_t now_ms, int64_t wall_s,
                 fake_reply *out) {
    if (gateway_refusal(st, in, out))
        return;
    fake_parsed p;
    char err[320];
    if (fake_parse(in->api, in->model, in->body, in->body_len, &p, err, sizeof err) != 0) {
        fake_state_rejected(st);
        reply_error(out, in->api, 400, NULL, err);
        return;
    }
    uint64_t body_key = fake_sha256_u64(in->body, in->body_len);
    fake_arrival a;
    fake_state_arrive(st, api_key(in), p.model, body_key, p.est_tokens, now_ms, &a);
    if (a.unknown_model)
        fake_reply_set(out, 404, fake_error_for_status(p.api, 404, p.model));
    else if (a.verdict.limited)
        limited_reply(out, &p, &a.verdict);
    else
        model_answer(out, &p, &a, wall_s);
    rate_limit_headers(out, p.api, &a.verdict, wall_s);
    if (p.api != FAKE_API_GEMINI)
        fake_reply_header(out, p.api == FAKE_API_OPENAI ? "x-request-id" : "request-id", "req_%s",
                          p.msg_hash);
    fake_state_answered(st, p.model, body_key, out->action == FAKE_ACT_RESPOND ? out->status : 0);
    fake_arrival_cleanup(&a);
    fake_parsed_cleanup(&p);
}
