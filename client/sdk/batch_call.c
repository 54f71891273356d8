/*
 * One BatchProcess call, driven event by event: one write and one read are kept pending at
 * all times, so the client reads results while it sends prompts and a server applying
 * backpressure never deadlocks with us. Prompts go out many per message (PromptBatch);
 * results arrive in completion order, grouped in BatchResults events, each carrying the
 * prompt's index (its position in the whole batch). The server's heartbeats (sent while the
 * stream is otherwise silent) are read and dropped.
 *
 * A call may have a byte budget (sluice_client_options.max_call_bytes): the request bytes
 * it sends - every message with gRPC's 5-byte prefix, which is what a proxy counts as the
 * request body - stay within it. It sends the header, then as many of the remaining prompts
 * as fit with room left for BatchEnd, then BatchEnd; the caller goes on with the rest in
 * another call (batch.c). Whether a prompt fits is decided from its exact packed size plus
 * the most its message framing can add, so the bytes sent never exceed the budget.
 */
#include "sdk_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Prompts per BatchRequest: up to CHUNK_PROMPTS or CHUNK_BYTES of packed prompts. */
#define CHUNK_PROMPTS 256
#define CHUNK_BYTES (1u << 20)
/* gRPC's message prefix (flag + length), and the most a PromptBatch message adds around
 * its prompts: the prefix, BatchRequest.prompts' tag and a length of up to 5 bytes. */
#define GRPC_PREFIX 5
#define CHUNK_OVERHEAD (GRPC_PREFIX + 1 + 5)
/* A BatchEnd message: the prefix, BatchRequest.end's tag and a zero length. */
#define END_BYTES (GRPC_PREFIX + 2)

/* Where the sending side is; whether a write or read is pending is the call's own state
 * (sluice_rpc_call_write_pending / _read_pending). */
typedef struct stream_state {
    size_t next; /* next prompt to send */
    size_t sent; /* request bytes sent so far (with a budget) */
    bool header_sent, end_sent;
    bool eof;
} stream_state;

static size_t varint_len(size_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

size_t sdk_prompt_cost(const sluice_prompt *p, size_t i) {
    Sluice__V1__Prompt copy = *p->msg;
    copy.index = i;
    size_t packed = protobuf_c_message_get_packed_size(&copy.base);
    return 1 + varint_len(packed) + packed; /* PromptBatch.prompts: tag, length, message */
}

static void build_header(const sluice_client *c, const sdk_call_plan *p, Sluice__V1__BatchHeader *h,
                         Sluice__V1__BatchRequest *req) {
    const sluice_batch_options *o = p->opts;
    sluice__v1__batch_header__init(h);
    if (p->session)
        h->session_id = (char *)p->session;
    else
        h->config = c->config;
    h->show_progress = o && (o->show_progress || o->on_progress);
    h->progress_interval_ms = o ? o->progress_interval_ms : 0;
    h->return_completions_only = p->completions_only;
    h->omit_text_parts = true; /* the SDK reads the text from completion only */
    h->expected_prompts = p->n - p->first;
    sluice__v1__batch_request__init(req);
    req->kind_case = SLUICE__V1__BATCH_REQUEST__KIND_HEADER;
    req->header = h;
}

size_t sdk_call_fixed_bytes(const sluice_client *c, const sdk_call_plan *p) {
    Sluice__V1__BatchHeader h;
    Sluice__V1__BatchRequest req;
    build_header(c, p, &h, &req);
    return GRPC_PREFIX + protobuf_c_message_get_packed_size(&req.base) + CHUNK_OVERHEAD + END_BYTES;
}

bool sdk_call_fits_all(const sluice_client *c, const sdk_call_plan *p) {
    size_t total = sdk_call_fixed_bytes(c, p), k = 0, bytes = 0;
    for (size_t i = p->first; i < p->n; i++) {
        if (k == CHUNK_PROMPTS || (k > 0 && bytes >= CHUNK_BYTES)) { /* as write_prompts */
            total += CHUNK_OVERHEAD;
            k = bytes = 0;
        }
        total += p->cost[i];
        bytes += p->cost[i];
        k++;
        if (total > p->max_bytes)
            return false;
    }
    return true;
}

/* Whether prompt i still fits in the call after `pending` bytes of prompts already in the
 * message being built (0: it would start a new message). */
static bool fits(const sdk_call_plan *p, const stream_state *s, size_t i, size_t pending) {
    return !p->max_bytes ||
           s->sent + CHUNK_OVERHEAD + pending + p->cost[i] + END_BYTES <= p->max_bytes;
}

/* Starts writing the next prompts as one PromptBatch (each with its position as index).
 * The callers' prompts are only read: each goes out as a shallow copy carrying the index
 * (packing happens before the write call returns). */
static int write_prompts(sluice_rpc_call *call, stream_state *s, const sdk_call_plan *p) {
    Sluice__V1__Prompt copy[CHUNK_PROMPTS];
    Sluice__V1__Prompt *chunk[CHUNK_PROMPTS];
    size_t k = 0, bytes = 0;
    while (s->next < p->n && k < CHUNK_PROMPTS && (k == 0 || bytes < CHUNK_BYTES) &&
           fits(p, s, s->next, bytes)) {
        copy[k] = *p->prompts[s->next]->msg;
        copy[k].index = s->next;
        bytes +=
            p->max_bytes ? p->cost[s->next] : protobuf_c_message_get_packed_size(&copy[k].base);
        s->next++;
        chunk[k] = &copy[k];
        k++;
    }
    Sluice__V1__PromptBatch pb = SLUICE__V1__PROMPT_BATCH__INIT;
    pb.prompts = chunk;
    pb.n_prompts = k;
    Sluice__V1__BatchRequest req = SLUICE__V1__BATCH_REQUEST__INIT;
    req.kind_case = SLUICE__V1__BATCH_REQUEST__KIND_PROMPTS;
    req.prompts = &pb;
    if (p->max_bytes)
        s->sent += GRPC_PREFIX + protobuf_c_message_get_packed_size(&req.base);
    return sluice__v1__sluice__batch_process__start_write(call, &req);
}

static int write_next(sluice_client *c, sluice_rpc_call *call, stream_state *s,
                      const sdk_call_plan *p) {
    int rc;
    if (!s->header_sent) {
        Sluice__V1__BatchHeader h;
        Sluice__V1__BatchRequest req;
        build_header(c, p, &h, &req);
        s->sent += GRPC_PREFIX + protobuf_c_message_get_packed_size(&req.base);
        rc = sluice__v1__sluice__batch_process__start_write(call, &req);
        s->header_sent = true;
    } else if (s->next < p->n && fits(p, s, s->next, 0)) {
        rc = write_prompts(call, s, p);
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

double sdk_monotonic_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A snapshot of this call, reported for the whole batch: the prompts before this call's
 * first are done (earlier calls ended with all of theirs). */
static void deliver_progress(const sdk_call_plan *p, const Sluice__V1__ProgressSnapshot *snap) {
    const sluice_batch_options *o = p->opts;
    if (!o || !o->on_progress)
        return;
    sluice_tracker t;
    sdk_tracker_from(&t, snap->status);
    if (p->first == 0 && p->total == p->n) { /* the whole batch in this call */
        o->on_progress(o->progress_ud, &t, snap->batch_done, snap->batch_expected,
                       snap->rate_per_s);
        return;
    }
    uint64_t done = p->first + snap->batch_done;
    double elapsed = sdk_monotonic_s() - p->t0;
    o->on_progress(o->progress_ud, &t, done, p->total,
                   elapsed > 0 ? (double)done / elapsed : snap->rate_per_s);
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

static int handle_read(sluice_rpc_event *ev, stream_state *s, const sdk_call_plan *p) {
    if (!ev->msg) {
        s->eof = true;
        return 0;
    }
    Sluice__V1__BatchEvent *e = (Sluice__V1__BatchEvent *)ev->msg;
    int rc = 0;
    if (e->kind_case == SLUICE__V1__BATCH_EVENT__KIND_RESULTS)
        for (size_t i = 0; i < e->results->n_results && rc == 0; i++)
            rc = deliver_result(e->results->results[i], p->cb, p->ud);
    else if (e->kind_case == SLUICE__V1__BATCH_EVENT__KIND_PROGRESS)
        deliver_progress(p, e->progress);
    /* anything else (a heartbeat keeping an idle stream open through proxies, or a kind
     * this SDK does not know) carries nothing for the caller */
    protobuf_c_message_free_unpacked(ev->msg, NULL);
    return rc;
}

/* The event loop of one call. */
static int pump(sluice_client *c, sluice_rpc_call *call, stream_state *s, const sdk_call_plan *p) {
    bool send_open = true;
    while (!s->eof) {
        if (send_open && !sluice_rpc_call_write_pending(call) && !s->end_sent) {
            int wrc = write_next(c, call, s, p);
            if (wrc == SLUICE_ECLOSED)
                send_open = false; /* the call is over: read until its end */
            else if (wrc)
                return wrc; /* a local failure (out of memory): the call is abandoned */
        }
        if (send_open && s->end_sent && !sluice_rpc_call_write_pending(call)) {
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
        } else if (ev.kind == SLUICE_RPC_EVENT_READ_DONE && (rc = handle_read(&ev, s, p)) != 0) {
            return rc;
        }
    }
    /* The call may end (sluiced refused it) while a write is still pending: that write is
     * reported next, and must be, or finishing the call gives SLUICE_EBUSY instead of the
     * server's status (a refused batch read "BatchProcess: busy"). */
    while (sluice_rpc_call_write_pending(call)) {
        sluice_rpc_event ev;
        if (sluice_rpc_call_next(call, -1, &ev) != 0)
            break;
        if (ev.kind == SLUICE_RPC_EVENT_READ_DONE && ev.msg)
            protobuf_c_message_free_unpacked(ev.msg, NULL);
    }
    return 0;
}

int sdk_batch_call(sluice_client *c, const sdk_call_plan *p, sdk_batch_run *r, size_t *next) {
    sluice_rpc_call_opts copts = {p->timeout_ms};
    sluice_rpc_call *call = NULL;
    *next = p->first;
    int rc = sluice__v1__sluice__batch_process__start(c->ch, &copts, &call);
    if (rc)
        return sdk_fail(rc, "BatchProcess: could not start the call");
    if (r) {
        pthread_mutex_lock(&r->mu);
        r->call = call;
        if (r->cancelled)
            sluice_rpc_call_cancel(call);
        pthread_mutex_unlock(&r->mu);
    }
    stream_state s;
    memset(&s, 0, sizeof s);
    s.next = p->first;
    int prc = pump(c, call, &s, p);
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
    *next = s.next;
    if (prc == SLUICE_ENOMEM)
        return sdk_fail(prc, "out of memory");
    if (prc)
        return sdk_fail(prc, "BatchProcess: %s", sluice_strerror(prc));
    return rc ? sdk_rpc_fail(rc, &st, "BatchProcess") : 0;
}
