/*
 * Attempts: launching one HTTP attempt of a task, reading its outcome, and deciding -
 * through the retry table (retry.c), the task's attempts left and its time budget - whether
 * the task is done, fails, or goes round again (same model after a backoff, another model
 * at once, or the same key after its cooldown). This is the only retry loop in sluice.
 * Loop thread only.
 */
#include "internal.h"

#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "server/common/log.h"
#include "server/dispatch/feedback.h"
#include "server/dispatch/models.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A provider that says "retry after 0" still gets a short pause. */
#define MIN_COOLDOWN_MS 1000u

static void on_http_done(void *ud, const http_response *resp);
static void handle_failure(dispatcher *d, dtask *t, retry_verdict v, llm_error_kind kind,
                           int status, const char *error, int64_t retry_after_ms);

static const model_info *cur_model(const dtask *t) {
    return t->sess->models[t->model];
}

static void record_attempt(dtask *t, int status, uint32_t retry_after_ms, const char *error) {
    uint32_t latency = (uint32_t)((dispatch_now_us() - t->attempt_start_us) / 1000);
    llm_response_add_attempt(t->resp, t->sess->cfg.models[t->model].name, status, latency,
                             retry_after_ms, error);
}

/* The attempt's HTTP timeout: the session's, cut to what is left of the task budget. */
static uint32_t attempt_timeout_ms(const dtask *t, uint64_t now_us) {
    uint64_t left_ms = t->deadline_us > now_us ? (t->deadline_us - now_us) / 1000 : 1;
    uint32_t timeout = t->sess->cfg.request_timeout_ms;
    return left_ms < timeout ? (uint32_t)(left_ms ? left_ms : 1) : timeout;
}

/* The task's time budget, as configured ("1.5 s", "30 s"). */
static void fmt_budget(const dtask *t, char *out, size_t n) {
    snprintf(out, n, "%g s", t->sess->cfg.task_timeout_ms / 1000.0);
}

/* Fails t, whose time budget ran out (`what`: how) after its attempts; `last` is the last
 * attempt's error, or NULL. */
static void fail_budget(dispatcher *d, dtask *t, const char *what, const char *last) {
    char budget[32], msg[1400];
    fmt_budget(t, budget, sizeof budget);
    snprintf(msg, sizeof msg, "the task's time budget of %s %s (%u attempt%s%s%s)", budget, what,
             t->attempts, t->attempts == 1 ? "" : "s", last ? "; last: " : "", last ? last : "");
    task_fail(d, t, LLM_ERR_TIMEOUT, 0, msg);
}

/* The last attempt's error, or NULL. */
static const char *last_error(const dtask *t) {
    const llm_response *r = t->resp;
    return r && r->n_attempts ? r->attempts[r->n_attempts - 1].error : NULL;
}

/* Counts an attempt of t: in the task, the tracker and, when m is set (a request went to
 * libcurl), the upstream-request metrics. */
static void count_attempt(dispatcher *d, dtask *t, const model_info *m) {
    if (t->attempts++ > 0)
        atomic_fetch_add(&d->retries, 1);
    task_track_counts(t, 1, 0);
    if (m) {
        atomic_fetch_add(&d->upstream_requests, 1);
        atomic_fetch_add_explicit(&stats_model(d, m)->requests, 1, memory_order_relaxed);
    }
}

void task_launch(dispatcher *d, dtask *t, keystate *k) {
    uint64_t now = dispatch_now_us();
    theap_cancel(&d->timers, &t->timer);            /* its deadline, while it waited */
    if (t->attempts > 0 && now >= t->deadline_us) { /* admitted as its deadline passed */
        t->flight_key = k;
        sched_release(d, t);
        fail_budget(d, t, "ran out before its next attempt could start", last_error(t));
        return;
    }
    if (t->attempts == 0) {
        t->deadline_us = now + (uint64_t)t->sess->cfg.task_timeout_ms * 1000;
        sched_note_first_attempt(d, k);
    }
    t->attempt_start_us = now;
    t->flight_key = k;
    task_track_start(t);

    const model_info *m = cur_model(t);
    provider_request preq;
    memset(&preq, 0, sizeof preq);
    char err[256];
    if (provider_get(m->provider)
            ->build(m, k->key->secret, t->req, &t->eff, &preq, err, sizeof err) != 0) {
        provider_request_cleanup(&preq);
        sched_release(d, t);
        count_attempt(d, t, NULL); /* an attempt on this model, though nothing was sent */
        record_attempt(t, 0, 0, err);
        retry_verdict v = {RETRY_OTHER_OR_FAIL, "request not expressible", false, false};
        handle_failure(d, t, v, LLM_ERR_INVALID_REQUEST, 0, err, -1);
        return;
    }
    task_set_state(d, t, DTASK_IN_FLIGHT);
    t->http = http_client_submit(d->http, &preq, attempt_timeout_ms(t, now), on_http_done, t);
    if (http_request_started(t->http)) /* else it ends in attempt_not_sent, never counted */
        count_attempt(d, t, m);
}

/* Queues a retry and, while it waits (capacity, a cooldown, the retry budget), watches the
 * task's deadline. */
static void enqueue_retry(dispatcher *d, dtask *t) {
    sched_enqueue_retry(d, t);
    theap_schedule(&d->timers, &t->timer, t->deadline_us);
}

void task_on_timer(dispatcher *d, dtask *t) {
    if (t->state == DTASK_RETRY_WAIT) { /* the backoff is over */
        enqueue_retry(d, t);
        return;
    }
    const char *what = t->in_budget_wait ? "ran out while it waited for the retry budget"
                                         : "ran out while it waited for capacity or a cooldown";
    sched_unlink(d, t); /* its deadline passed while it waited in a queue */
    fail_budget(d, t, what, last_error(t));
}

static retry_failure failure_of(http_error e) {
    switch (e) {
    case HTTP_OK:
        return RETRY_FAILURE_NONE;
    case HTTP_ERR_TIMEOUT:
        return RETRY_FAILURE_TIMEOUT;
    case HTTP_ERR_CONNECT:
        return RETRY_FAILURE_CONNECT;
    case HTTP_ERR_RESET:
        return RETRY_FAILURE_RESET;
    case HTTP_ERR_TRUNCATED:
        return RETRY_FAILURE_TRUNCATED;
    case HTTP_ERR_TOO_LARGE:
        return RETRY_FAILURE_TOO_LARGE;
    default:
        return RETRY_FAILURE_OTHER;
    }
}

/* Reconciles the token estimate with the input the provider counted. Output stays charged
 * at max_new_tokens, which is how OpenAI meters tokens/min. */
static void reconcile_tokens(dtask *t, keystate *k, const llm_usage *u) {
    uint64_t actual_in = u->input_tokens;
    if (cur_model(t)->provider == PROVIDER_ANTHROPIC)
        actual_in += u->cache_read_tokens + u->cache_write_tokens;
    if (actual_in == 0)
        return;
    double delta = ((double)t->est_tokens - (double)t->eff.max_new_tokens) - (double)actual_in;
    uint64_t now = dispatch_now_us();
    rl_bucket_adjust(&k->tpm, delta, now);
    rl_bucket_adjust(&t->sess->tpm, delta, now);
}

/* What the provider's limit headers say: stop before it has to send a 429. */
static void apply_feedback(dispatcher *d, keystate *k, const feedback *fb) {
    uint64_t now = dispatch_now_us();
    if (fb->remaining_requests >= 0) {
        rl_bucket_clamp(&k->rpm, (double)fb->remaining_requests, now);
        if (fb->remaining_requests == 0 && fb->requests_reset_ms > 0)
            sched_cooldown(d, k, now + (uint64_t)fb->requests_reset_ms * 1000);
    }
    if (fb->remaining_tokens >= 0) {
        rl_bucket_clamp(&k->tpm, (double)fb->remaining_tokens, now);
        if (fb->remaining_tokens == 0 && fb->tokens_reset_ms > 0)
            sched_cooldown(d, k, now + (uint64_t)fb->tokens_reset_ms * 1000);
    }
}

static void count_status(dispatcher *d, amodel *m, const http_response *r) {
    atomic_uint_fast64_t *global, *model;
    if (r->error != HTTP_OK) {
        global = &d->upstream_failures;
        model = &m->failures;
    } else if (r->status >= 200 && r->status < 300) {
        global = &d->upstream_2xx;
        model = &m->s2xx;
    } else if (r->status == 429 || r->status == 529) {
        global = &d->upstream_429;
        model = &m->s429;
    } else if (r->status >= 500) {
        global = &d->upstream_5xx;
        model = &m->s5xx;
    } else {
        global = &d->upstream_other;
        model = &m->s4xx;
    }
    atomic_fetch_add_explicit(global, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(model, 1, memory_order_relaxed);
}

/* libcurl refused to set the transfer up, so nothing reached the provider and this was no
 * attempt (task_launch never counted it; a retry gets its budget token back), and the task
 * fails with the reason: a refusal on a fresh handle is a bug of ours or an out-of-memory,
 * and retrying would only spin. */
static void attempt_not_sent(dispatcher *d, dtask *t, keystate *k, const char *why) {
    if (t->attempts > 0) /* a retry: its budget token comes back */
        k->retry_tokens += 1.0;
    char msg[512];
    snprintf(msg, sizeof msg,
             "internal error: the request could not be set up, nothing was sent (%s)", why);
    task_fail(d, t, LLM_ERR_TRANSPORT, 0, msg);
}

/* Replaces every configured provider secret in msg (NUL-terminated, modified in place) with
 * "[redacted]": a server that echoes the key it received (in a 401 body, say) must not put
 * the operator's key into a tenant's result, a log line or the store. */
static void redact_secrets(const dispatcher *d, char *msg) {
    static const char mark[] = "[redacted]";
    for (size_t i = 0; i < d->reg->n_keys; i++) {
        const char *secret = d->reg->keys[i].secret;
        size_t n = secret ? strlen(secret) : 0;
        if (n < 4) /* too short to be a key, and to search for */
            continue;
        for (char *p = msg; (p = strstr(p, secret)) != NULL;) {
            if (n < sizeof mark - 1) { /* never longer than what it replaces */
                memset(p, '*', n);
                p += n;
                continue;
            }
            memmove(p + sizeof mark - 1, p + n, strlen(p + n) + 1);
            memcpy(p, mark, sizeof mark - 1);
            p += sizeof mark - 1;
        }
    }
}

/* Whether s holds a configured provider secret. */
static bool has_secret(const dispatcher *d, const char *s) {
    for (size_t i = 0; i < d->reg->n_keys; i++) {
        const char *secret = d->reg->keys[i].secret;
        if (secret && strlen(secret) >= 4 && strstr(s, secret))
            return true;
    }
    return false;
}

static void on_http_done(void *ud, const http_response *r) {
    dtask *t = ud;
    dispatcher *d = t->d;
    keystate *k = t->flight_key;
    t->http = NULL;
    sched_release(d, t);
    if (r->error == HTTP_ERR_SETUP) {
        attempt_not_sent(d, t, k, r->error_text);
        return;
    }
    count_status(d, stats_model(d, cur_model(t)), r);
    feedback fb;
    feedback_parse(r->headers, r->n_headers, clock_wall_ms(), &fb);
    apply_feedback(d, k, &fb);
    const model_info *m = cur_model(t);
    const provider_ops *ops = provider_get(m->provider);
    char msg[1024] = "";
    retry_failure failure = failure_of(r->error);
    llm_error_kind kind = LLM_ERR_PROVIDER; /* should this failure end the task */
    if (failure != RETRY_FAILURE_NONE) {
        snprintf(msg, sizeof msg, "%s", r->error_text[0] ? r->error_text : "no answer");
    } else if (r->status >= 200 && r->status < 300) {
        if (ops->parse_success(m, r->body, r->body_len, t->resp, msg, sizeof msg) == 0) {
            t->resp->status_code = r->status;
            reconcile_tokens(t, k, &t->resp->usage);
            record_attempt(t, r->status, 0, NULL);
            task_finish_success(d, t);
            return;
        }
        failure = RETRY_FAILURE_MALFORMED;
        if (has_secret(d, r->body)) /* the message may quote the body, cut anywhere */
            snprintf(msg, sizeof msg, "unusable answer (not quoted: it holds a provider key)");
    } else {
        /* Masked before parsing: the message quotes the body and may cut it inside a key. */
        char *masked = has_secret(d, r->body) ? xstrdup(r->body) : NULL;
        if (masked)
            redact_secrets(d, masked);
        ops->parse_error(r->status, masked ? masked : r->body,
                         masked ? strlen(masked) : r->body_len, msg, sizeof msg);
        free(masked);
        /* Gemini names its delay in the body (google.rpc.RetryInfo): a Retry-After all the
         * same, used when no header gave one. */
        if (fb.retry_after_ms < 0 && ops->retry_after_ms)
            fb.retry_after_ms = ops->retry_after_ms(r->status, r->body, r->body_len);
    }
    if (failure != RETRY_FAILURE_NONE) /* no usable answer: cut, empty, malformed, reset */
        kind = LLM_ERR_TRANSPORT;
    redact_secrets(d, msg);
    retry_verdict v = retry_classify(m->provider, failure, r->status, msg);
    int64_t ra = fb.retry_after_ms;
    char full[1200];
    snprintf(full, sizeof full, "%s: %s", v.why, msg);
    record_attempt(t, r->status, ra > 0 ? (uint32_t)(ra > UINT32_MAX ? UINT32_MAX : ra) : 0, full);
    if (v.rate_limited)
        task_track_counts(t, 0, 1);
    handle_failure(d, t, v, kind, r->status, full, ra);
}

/* ---- deciding what comes next ------------------------------------------------------- */

/* Another usable model: not blocklisted, not one that refused this prompt, not t's current
 * one and, when `max_cool_us` is set, on a key whose cooldown ends within it. -1 when none. */
static int other_model(dispatcher *d, dtask *t, uint64_t max_cool_us) {
    dsession *s = t->sess;
    bool mask[DSESSION_MAX_MODELS];
    uint64_t now = dispatch_now_us();
    for (size_t i = 0; i < s->cfg.n_models; i++) {
        const keystate *k = &d->keys[s->key_of_model[i]];
        uint64_t cool = k->cooldown_until_us > now ? k->cooldown_until_us - now : 0;
        mask[i] =
            s->blocked[i] || (t->refused_by & (1u << i)) || (max_cool_us && cool > max_cool_us);
    }
    return models_choose(s->weights, mask, s->cfg.n_models, t->model, &d->rng);
}

static void schedule_retry(dispatcher *d, dtask *t, uint32_t delay_ms) {
    if (delay_ms == 0) {
        enqueue_retry(d, t);
        return;
    }
    task_set_state(d, t, DTASK_RETRY_WAIT);
    theap_schedule(&d->timers, &t->timer, dispatch_now_us() + (uint64_t)delay_ms * 1000);
}

static uint32_t backoff(dispatcher *d, dtask *t) {
    return retry_backoff_ms(++t->same_retries, d->cfg.backoff_base_ms, d->cfg.backoff_max_ms,
                            &d->rng);
}

static void blocklist(dtask *t) {
    if (t->sess->blocked[t->model])
        return;
    t->sess->blocked[t->model] = true;
    LOG_WARN("dispatch", "session '%s': model '%s' blocklisted", t->sess->cfg.name,
             t->sess->cfg.models[t->model].name);
}

/* Cools t's key down after a 429: for the provider's Retry-After, or the default. */
static void cool_key(dispatcher *d, dtask *t, int64_t retry_after_ms) {
    keystate *k = &d->keys[t->sess->key_of_model[t->model]];
    uint64_t wait_ms = retry_after_ms >= 0 ? (uint64_t)retry_after_ms : d->cfg.default_cooldown_ms;
    if (wait_ms < MIN_COOLDOWN_MS)
        wait_ms = MIN_COOLDOWN_MS;
    sched_cooldown(d, k, dispatch_now_us() + wait_ms * 1000);
}

/* After a 429 (key already cooling): wait for the key if the task's budget allows, else
 * move to a model whose key is free soon enough, else fail. Returns the model index, or
 * -1 after failing the task. */
static int after_rate_limit(dispatcher *d, dtask *t, const char *error) {
    keystate *k = &d->keys[t->sess->key_of_model[t->model]];
    uint64_t now = dispatch_now_us();
    uint64_t cool = k->cooldown_until_us > now ? k->cooldown_until_us - now : 0;
    uint64_t left = t->deadline_us > now ? t->deadline_us - now : 0;
    if (cool <= left)
        return t->model;
    int o = other_model(d, t, left ? left : 1);
    if (o >= 0)
        return o;
    char msg[1400];
    snprintf(msg, sizeof msg,
             "rate limited: the provider asked to wait %.1f s, more than the %.1f s left of "
             "the task's time budget, and no other model is available (%s)",
             (double)cool / 1e6, (double)left / 1e6, error);
    task_fail(d, t, LLM_ERR_RATE_LIMITED, 429, msg);
    return -1;
}

/* Picks the next model for an action, or fails the task (returns -1). `delay` gets the
 * backoff to wait first. */
static int next_model(dispatcher *d, dtask *t, retry_verdict v, llm_error_kind kind, int status,
                      const char *error, uint32_t *delay) {
    int o;
    switch (v.action) {
    case RETRY_RATE_LIMITED:
        return after_rate_limit(d, t, error);
    case RETRY_OTHER:
        if ((o = other_model(d, t, 0)) >= 0)
            return o;
        *delay = backoff(d, t);
        return t->model;
    case RETRY_OTHER_OR_FAIL: /* this model refused this prompt: never again for it */
        t->refused_by |= 1u << t->model;
        if ((o = other_model(d, t, 0)) >= 0)
            return o;
        task_fail(d, t, kind, status, error);
        return -1;
    case RETRY_BLOCKLIST:
        if ((o = other_model(d, t, 0)) >= 0)
            return o;
        task_fail(d, t, LLM_ERR_NO_MODEL, status, error);
        return -1;
    default: /* RETRY_SAME */
        if (t->sess->blocked[t->model] && (o = other_model(d, t, 0)) >= 0)
            return o;
        *delay = backoff(d, t);
        return t->model;
    }
}

static void handle_failure(dispatcher *d, dtask *t, retry_verdict v, llm_error_kind kind,
                           int status, const char *error, int64_t retry_after_ms) {
    if (v.rate_limited)
        kind = LLM_ERR_RATE_LIMITED;
    if (v.action == RETRY_BLOCKLIST)
        blocklist(t);
    if (v.action == RETRY_RATE_LIMITED)
        cool_key(d, t, retry_after_ms);
    if (t->ghost) { /* its task is gone: no retries (identical prompts begin their own) */
        task_fail(d, t, LLM_ERR_CANCELLED, status, error);
        return;
    }
    if (v.action == RETRY_FAIL) {
        task_fail(d, t, v.context_exceeded ? LLM_ERR_INVALID_REQUEST : kind, status, error);
        return;
    }
    char msg[1400];
    if (t->attempts >= t->sess->cfg.max_attempts) {
        snprintf(msg, sizeof msg, "giving up after %u attempts; last: %s", t->attempts, error);
        task_fail(d, t, kind, status, msg);
        return;
    }
    if (dispatch_now_us() >= t->deadline_us) {
        fail_budget(d, t, "ran out", error);
        return;
    }
    uint32_t delay = 0;
    int next = next_model(d, t, v, kind, status, error, &delay);
    if (next < 0)
        return;
    if (dispatch_now_us() + (uint64_t)delay * 1000 >= t->deadline_us) {
        fail_budget(d, t, "would run out before its next attempt could start", error);
        return;
    }
    if (next != t->model) {
        t->same_retries = 0;
        task_use_model(t, next);
        if (task_never_fits(d, t))
            return;
    }
    schedule_retry(d, t, delay);
}
