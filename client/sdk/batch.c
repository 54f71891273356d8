/*
 * Batches over BatchProcess (one call: batch_call.c): the blocking forms put results back in
 * input order, the background form runs a batch on a thread of its own. A batch larger than
 * the client's max_call_bytes (a proxy's limit on a request body) goes out as several calls
 * on one session, one after another; its results keep their positions in the whole batch,
 * and progress counts the whole batch.
 */
#include "sdk_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Request bytes below which max_call_bytes cannot hold a header, one small prompt and the
 * end: a smaller value is a mistake, refused before anything is sent. */
#define MIN_CALL_BYTES 256

/* Every prompt's size in a call (plan->cost, to free). 0 or SLUICE_EINVAL/ENOMEM. */
static int plan_costs(sdk_call_plan *p) {
    if (p->max_bytes < MIN_CALL_BYTES)
        return sdk_fail(SLUICE_EINVAL, "max_call_bytes: %zu is too small (at least %d)",
                        p->max_bytes, MIN_CALL_BYTES);
    size_t *cost = malloc(p->n * sizeof *cost);
    if (!cost)
        return sdk_fail(SLUICE_ENOMEM, "out of memory");
    for (size_t i = 0; i < p->n; i++)
        cost[i] = sdk_prompt_cost(p->prompts[i], i);
    p->cost = cost;
    return 0;
}

/* Fails naming the first prompt that cannot go in a call of its own (header and end
 * included) on p's session. */
static int check_each_fits(sluice_client *c, const sdk_call_plan *p) {
    size_t fixed = sdk_call_fixed_bytes(c, p);
    for (size_t i = 0; i < p->n; i++)
        if (fixed + p->cost[i] > p->max_bytes)
            return sdk_fail(SLUICE_EINVAL,
                            "prompts[%zu]: %zu bytes, more than one call may carry with "
                            "max_call_bytes=%zu",
                            i, p->cost[i], p->max_bytes);
    return 0;
}

/* A batch too large for one call under max_call_bytes: several calls, one after another,
 * on one session - the client's, or one opened here and closed at the end (as a batch's
 * own session is). Each call ends with all its prompts answered before the next starts.
 * Takes session (may be NULL). */
static int run_split(sluice_client *c, sdk_call_plan *p, char *session, sdk_batch_run *r) {
    bool own = session == NULL;
    int rc = own ? sdk_open_session(c, &session) : 0;
    if (rc)
        return rc;
    p->session = session;
    rc = check_each_fits(c, p); /* nothing is sent when a prompt can never go */
    uint32_t timeout = p->timeout_ms;
    size_t calls = 0;
    while (rc == 0 && p->first < p->n) {
        double left_ms = timeout ? timeout - (sdk_monotonic_s() - p->t0) * 1000 : 0;
        bool cancelled = false;
        if (r) {
            pthread_mutex_lock(&r->mu);
            cancelled = r->cancelled;
            pthread_mutex_unlock(&r->mu);
        }
        size_t next = p->first;
        if (cancelled) {
            rc = sdk_fail(SLUICE_ECANCELLED, "BatchProcess: the batch was cancelled");
        } else if (timeout && left_ms < 1) {
            rc = sdk_fail(SLUICE_ETIMEDOUT, "BatchProcess: the batch's deadline passed");
        } else {
            p->timeout_ms = timeout ? (uint32_t)left_ms : 0;
            calls++;
            rc = sdk_batch_call(c, p, r, &next);
        }
        if (rc == 0 && next == p->first) /* cannot happen: every prompt was checked */
            rc = sdk_fail(SLUICE_EINTERNAL, "BatchProcess: prompt %zu did not fit a call", next);
        else if (rc && calls) {
            char why[768];
            snprintf(why, sizeof why, "%s", sluice_last_error());
            sdk_fail(rc, "%s (call %zu of the batch, prompts from %zu)", why, calls, p->first);
        }
        p->first = next;
    }
    if (own) { /* closing clears the error: keep the batch's */
        char why[1024];
        snprintf(why, sizeof why, "%s", rc ? sluice_last_error() : "");
        sdk_close_session(c, session, NULL);
        sdk_clear_error();
        if (rc)
            sdk_fail(rc, "%s", why);
    }
    free(session);
    return rc;
}

static int run_batch(sluice_client *c, sluice_prompt *const *prompts, size_t n,
                     const sluice_batch_options *o, bool completions_only, sluice_result_fn cb,
                     void *ud, sdk_batch_run *r) {
    sdk_clear_error();
    if (n == 0)
        return sdk_fail(SLUICE_EINVAL, "prompts: at least one prompt is required");
    for (size_t i = 0; i < n; i++)
        if (!prompts[i])
            return sdk_fail(SLUICE_EINVAL, "prompts[%zu] is NULL", i);
    pthread_mutex_lock(&c->mu);
    char *session = c->session_id ? sdk_strdup(c->session_id) : NULL;
    bool nomem = c->session_id && !session;
    pthread_mutex_unlock(&c->mu);
    if (nomem)
        return sdk_fail(SLUICE_ENOMEM, "out of memory");
    sdk_call_plan p = {.prompts = prompts,
                       .n = n,
                       .total = n,
                       .session = session,
                       .opts = o,
                       .completions_only = completions_only,
                       .cb = cb,
                       .ud = ud,
                       .t0 = sdk_monotonic_s(),
                       .timeout_ms = o ? o->timeout_ms : 0};
    int rc = 0;
    bool split = false;
    if (c->max_call_bytes) {
        p.max_bytes = c->max_call_bytes;
        rc = plan_costs(&p);
        split = rc == 0 && !sdk_call_fits_all(c, &p);
    }
    size_t next;
    if (rc == 0 && split)
        rc = run_split(c, &p, session, r); /* takes session */
    else if (rc == 0)
        rc = sdk_batch_call(c, &p, r, &next);
    if (!split)
        free(session);
    free((void *)p.cost);
    return rc;
}

/* ---- the blocking forms ------------------------------------------------------------- */

typedef struct ordered {
    sluice_response **out;
    size_t n;
} ordered;

static void place(void *ud, sluice_response *r) {
    ordered *o = ud;
    if (r->index < o->n && !o->out[r->index])
        o->out[r->index] = r;
    else
        sluice_response_free(r); /* a duplicate or an index we never sent */
}

int sluice_process_prompts(sluice_client *c, sluice_prompt *const *prompts, size_t n,
                           const sluice_batch_options *opts, sluice_response ***out) {
    ordered o = {calloc(n ? n : 1, sizeof(sluice_response *)), n};
    if (!o.out)
        return sdk_fail(SLUICE_ENOMEM, "out of memory");
    int rc = run_batch(c, prompts, n, opts, false, place, &o, NULL);
    *out = o.out;
    return rc;
}

int sluice_process_prompts_completions(sluice_client *c, sluice_prompt *const *prompts, size_t n,
                                       const sluice_batch_options *opts, char ***out) {
    ordered o = {calloc(n ? n : 1, sizeof(sluice_response *)), n};
    char **texts = calloc(n ? n : 1, sizeof *texts);
    if (!o.out || !texts) {
        free(o.out);
        free(texts);
        return sdk_fail(SLUICE_ENOMEM, "out of memory");
    }
    int rc = run_batch(c, prompts, n, opts, true, place, &o, NULL);
    bool nomem = false;
    for (size_t i = 0; i < n; i++) {
        if (o.out[i] && !sluice_response_is_error(o.out[i]) && o.out[i]->msg->completion)
            nomem |= !(texts[i] = sdk_strdup(o.out[i]->msg->completion));
        sluice_response_free(o.out[i]);
    }
    free(o.out);
    *out = texts;
    return nomem && !rc ? sdk_fail(SLUICE_ENOMEM, "out of memory") : rc;
}

void sluice_completions_free(char **completions, size_t n) {
    sdk_strings_free(completions, n);
}

int sluice_process_prompts_cb(sluice_client *c, sluice_prompt *const *prompts, size_t n,
                              const sluice_batch_options *opts, sluice_result_fn on_result,
                              void *ud) {
    if (!on_result)
        return sdk_fail(SLUICE_EINVAL, "on_result is required");
    return run_batch(c, prompts, n, opts, false, on_result, ud, NULL);
}

/* ---- the background form ------------------------------------------------------------ */

struct sluice_batch {
    sdk_batch_run r;
    pthread_t thread;
    bool joined;
    int status;
    char error[1024]; /* sluice_last_error() of the batch's thread, for sluice_batch_wait */
    sluice_client *c;
    sluice_prompt **prompts;
    size_t n;
    sluice_batch_options opts;
    sluice_result_fn cb;
    void *ud;
};

static void *batch_thread(void *arg) {
    sluice_batch *b = arg;
    b->status = run_batch(b->c, b->prompts, b->n, &b->opts, false, b->cb, b->ud, &b->r);
    snprintf(b->error, sizeof b->error, "%s", sluice_last_error());
    return NULL;
}

static void free_prompts(sluice_prompt **ps, size_t n) {
    for (size_t i = 0; ps && i < n; i++)
        sluice_prompt_free(ps[i]);
    free(ps);
}

int sluice_process_prompts_async(sluice_client *c, sluice_prompt *const *prompts, size_t n,
                                 const sluice_batch_options *opts, sluice_result_fn on_result,
                                 void *ud, sluice_batch **out) {
    sdk_clear_error();
    if (!on_result || n == 0)
        return sdk_fail(SLUICE_EINVAL, "need prompts and on_result");
    for (size_t i = 0; i < n; i++)
        if (!prompts[i])
            return sdk_fail(SLUICE_EINVAL, "prompts[%zu] is NULL", i);
    sluice_batch *b = calloc(1, sizeof *b);
    sluice_prompt **copies = calloc(n, sizeof *copies);
    bool ok = b && copies;
    for (size_t i = 0; ok && i < n; i++)
        ok = (copies[i] = calloc(1, sizeof *copies[i])) &&
             (copies[i]->msg = sdk_prompt_copy(prompts[i]->msg));
    if (!ok) {
        free_prompts(copies, n);
        free(b);
        return sdk_fail(SLUICE_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&b->r.mu, NULL);
    b->c = c;
    b->prompts = copies;
    b->n = n;
    if (opts)
        b->opts = *opts;
    b->cb = on_result;
    b->ud = ud;
    if (pthread_create(&b->thread, NULL, batch_thread, b) != 0) {
        free_prompts(copies, n);
        pthread_mutex_destroy(&b->r.mu);
        free(b);
        return sdk_fail(SLUICE_EINTERNAL, "could not start a thread");
    }
    *out = b;
    return 0;
}

int sluice_batch_wait(sluice_batch *b) {
    if (!b->joined) {
        pthread_join(b->thread, NULL);
        b->joined = true;
    }
    sdk_clear_error();
    return b->status ? sdk_fail(b->status, "%s", b->error) : 0;
}

void sluice_batch_cancel(sluice_batch *b) {
    pthread_mutex_lock(&b->r.mu);
    b->r.cancelled = true;
    if (b->r.call)
        sluice_rpc_call_cancel(b->r.call);
    pthread_mutex_unlock(&b->r.mu);
}

void sluice_batch_free(sluice_batch *b) {
    if (!b)
        return;
    sluice_batch_wait(b);
    free_prompts(b->prompts, b->n);
    pthread_mutex_destroy(&b->r.mu);
    free(b);
}
