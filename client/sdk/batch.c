/*
 * Batches over the BatchProcess bidi stream, driven event by event: one write and one read
 * are kept pending at all times, so the client reads results while it sends prompts and a
 * server applying backpressure never deadlocks with us. Prompts go out many per message
 * (PromptBatch); results arrive in completion order, grouped in BatchResults events, each
 * carrying the prompt's index; the blocking forms put them back in input order. The
 * server's heartbeats (sent while the stream is otherwise silent) are read and dropped.
 */
#include "sdk_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A running batch, shared with sluice_batch_cancel. */
typedef struct run {
    pthread_mutex_t mu;
    sluice_rpc_call *call;
    bool cancelled;
} run;

/* Where the sending side is; whether a write or read is pending is the call's own state
 * (sluice_rpc_call_write_pending / _read_pending). */
typedef struct stream_state {
    size_t next; /* next prompt to send */
    bool header_sent, end_sent;
    bool eof;
} stream_state;

static int write_header(sluice_client *c, sluice_rpc_call *call, const sluice_batch_options *o,
                        bool completions_only, size_t n, const char *session) {
    Sluice__V1__BatchHeader h = SLUICE__V1__BATCH_HEADER__INIT;
    if (session)
        h.session_id = (char *)session;
    else
        h.config = c->config;
    h.show_progress = o && (o->show_progress || o->on_progress);
    h.progress_interval_ms = o ? o->progress_interval_ms : 0;
    h.return_completions_only = completions_only;
    h.omit_text_parts = true; /* the SDK reads the text from completion only */
    h.expected_prompts = n;
    Sluice__V1__BatchRequest req = SLUICE__V1__BATCH_REQUEST__INIT;
    req.kind_case = SLUICE__V1__BATCH_REQUEST__KIND_HEADER;
    req.header = &h;
    return sluice__v1__sluice__batch_process__start_write(call, &req);
}

/* Prompts per BatchRequest: up to CHUNK_PROMPTS or CHUNK_BYTES of packed prompts. */
#define CHUNK_PROMPTS 256
#define CHUNK_BYTES (1u << 20)

/* Starts writing the next prompts as one PromptBatch (each with its position as index).
 * The callers' prompts are only read: each goes out as a shallow copy carrying the index
 * (packing happens before the write call returns). */
static int write_prompts(sluice_rpc_call *call, stream_state *s, sluice_prompt *const *prompts,
                         size_t n) {
    Sluice__V1__Prompt copy[CHUNK_PROMPTS];
    Sluice__V1__Prompt *chunk[CHUNK_PROMPTS];
    size_t k = 0, bytes = 0;
    while (s->next < n && k < CHUNK_PROMPTS && (k == 0 || bytes < CHUNK_BYTES)) {
        copy[k] = *prompts[s->next]->msg;
        copy[k].index = s->next++;
        bytes += protobuf_c_message_get_packed_size(&copy[k].base);
        chunk[k] = &copy[k];
        k++;
    }
    Sluice__V1__PromptBatch pb = SLUICE__V1__PROMPT_BATCH__INIT;
    pb.prompts = chunk;
    pb.n_prompts = k;
    Sluice__V1__BatchRequest req = SLUICE__V1__BATCH_REQUEST__INIT;
    req.kind_case = SLUICE__V1__BATCH_REQUEST__KIND_PROMPTS;
    req.prompts = &pb;
    return sluice__v1__sluice__batch_process__start_write(call, &req);
}

static int write_next(sluice_client *c, sluice_rpc_call *call, stream_state *s,
                      sluice_prompt *const *prompts, size_t n, const sluice_batch_options *o,
                      bool completions_only, const char *session) {
    int rc;
    if (!s->header_sent) {
        rc = write_header(c, call, o, completions_only, n, session);
        s->header_sent = true;
    } else if (s->next < n) {
        rc = write_prompts(call, s, prompts, n);
    } else {
        Sluice__V1__BatchEnd end = SLUICE__V1__BATCH_END__INIT;
        Sluice__V1__BatchRequest req = SLUICE__V1__BATCH_REQUEST__INIT;
        req.kind_case = SLUICE__V1__BATCH_REQUEST__KIND_END;
        req.end = &end;
        rc = sluice__v1__sluice__batch_process__start_write(call, &req);
        s->end_sent = true;
    }
    return rc;
}

static void deliver_progress(const sluice_batch_options *o, const Sluice__V1__ProgressSnapshot *p) {
    if (!o || !o->on_progress)
        return;
    sluice_tracker t;
    sdk_tracker_from(&t, p->status);
    o->on_progress(o->progress_ud, &t, p->batch_done, p->batch_expected, p->rate_per_s);
}

/* Turns a result event into a response handed to cb. Returns SLUICE_ENOMEM or 0. */
static int deliver_result(Sluice__V1__BatchResult *res, sluice_result_fn cb, void *ud) {
    Sluice__V1__Response *msg = res->response;
    res->response = NULL; /* the response takes it */
    sluice_response *r = sdk_response_new(msg, res->task_id, res->custom_id, res->index);
    if (!r)
        return SLUICE_ENOMEM;
    if (!msg) {
        /* completions only: the text (or nothing) and whether it failed */
        r->msg->is_error = res->is_error;
        if (res->completion) {
            r->msg->completion = sdk_strdup(res->completion->value);
            if (!r->msg->completion) {
                sluice_response_free(r);
                return SLUICE_ENOMEM;
            }
        }
    }
    cb(ud, r);
    return 0;
}

static int handle_read(sluice_rpc_event *ev, stream_state *s, const sluice_batch_options *o,
                       sluice_result_fn cb, void *ud) {
    if (!ev->msg) {
        s->eof = true;
        return 0;
    }
    Sluice__V1__BatchEvent *e = (Sluice__V1__BatchEvent *)ev->msg;
    int rc = 0;
    if (e->kind_case == SLUICE__V1__BATCH_EVENT__KIND_RESULTS)
        for (size_t i = 0; i < e->results->n_results && rc == 0; i++)
            rc = deliver_result(e->results->results[i], cb, ud);
    else if (e->kind_case == SLUICE__V1__BATCH_EVENT__KIND_PROGRESS)
        deliver_progress(o, e->progress);
    /* anything else (a heartbeat keeping an idle stream open through proxies, or a kind
     * this SDK does not know) carries nothing for the caller */
    protobuf_c_message_free_unpacked(ev->msg, NULL);
    return rc;
}

/* The event loop of one batch call. */
static int pump(sluice_client *c, sluice_rpc_call *call, sluice_prompt *const *prompts, size_t n,
                const sluice_batch_options *o, bool completions_only, const char *session,
                sluice_result_fn cb, void *ud) {
    stream_state s;
    memset(&s, 0, sizeof s);
    bool send_open = true;
    while (!s.eof) {
        if (send_open && !sluice_rpc_call_write_pending(call) && !s.end_sent) {
            int wrc = write_next(c, call, &s, prompts, n, o, completions_only, session);
            if (wrc == SLUICE_ECLOSED)
                send_open = false; /* the call is over: read until its end */
            else if (wrc)
                return wrc; /* a local failure (out of memory): the call is abandoned */
        }
        if (send_open && s.end_sent && !sluice_rpc_call_write_pending(call)) {
            sluice_rpc_call_close_send(call);
            send_open = false;
        }
        if (!sluice_rpc_call_read_pending(call) && sluice_rpc_call_start_read(call) != 0)
            break;
        sluice_rpc_event ev;
        int rc = sluice_rpc_call_next(call, -1, &ev);
        if (rc)
            return rc;
        if (ev.kind == SLUICE_RPC_EVENT_WRITE_DONE) {
            if (!ev.ok)
                send_open = false;
        } else if (ev.kind == SLUICE_RPC_EVENT_READ_DONE &&
                   (rc = handle_read(&ev, &s, o, cb, ud)) != 0) {
            return rc;
        }
    }
    return 0;
}

static int run_batch(sluice_client *c, sluice_prompt *const *prompts, size_t n,
                     const sluice_batch_options *o, bool completions_only, sluice_result_fn cb,
                     void *ud, run *r) {
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
    sluice_rpc_call_opts copts = {o ? o->timeout_ms : 0};
    sluice_rpc_call *call = NULL;
    int rc = sluice__v1__sluice__batch_process__start(c->ch, &copts, &call);
    if (rc) {
        free(session);
        return sdk_fail(rc, "BatchProcess: could not start the call");
    }
    if (r) {
        pthread_mutex_lock(&r->mu);
        r->call = call;
        if (r->cancelled)
            sluice_rpc_call_cancel(call);
        pthread_mutex_unlock(&r->mu);
    }
    int prc = pump(c, call, prompts, n, o, completions_only, session, cb, ud);
    /* After a local failure the call is abandoned (sluice_rpc_call_free cancels it):
     * finishing it would half-close and wait for every prompt already sent. */
    sluice_rpc_status st;
    rc = prc ? 0 : sluice_rpc_call_finish(call, NULL, &st);
    if (r) {
        pthread_mutex_lock(&r->mu);
        r->call = NULL;
        pthread_mutex_unlock(&r->mu);
    }
    sluice_rpc_call_free(call);
    free(session);
    if (prc == SLUICE_ENOMEM)
        return sdk_fail(prc, "out of memory");
    if (prc)
        return sdk_fail(prc, "BatchProcess: %s", sluice_strerror(prc));
    return rc ? sdk_rpc_fail(rc, &st, "BatchProcess") : 0;
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
    run r;
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
