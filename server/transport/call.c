/*
 * call.c - the per-call state machine (tcall).
 *
 * A tcall is one heap object per request slot / call. Its lifecycle is tcall_state
 * (call.h); every transition goes through call_set_state(). Besides the state, a call
 * tracks:
 *  - `ops`: gRPC batches in flight plus a running callback loop. A call retires (its
 *    grpc_call released, t->active decremented) when it is DONE and ops is 0; only then
 *    can transport_drain return, so no callback or batch outlives the drain.
 *  - `refs`: memory. One reference belongs to the transport until retirement; handlers
 *    add their own with tcall_ref. A retired call owns no gRPC object, so a late
 *    tcall_send from another thread only sees state DONE and returns SLUICE_ECLOSED.
 *  - its send side (outbound.c): a bounded queue, one SEND_MESSAGE in flight;
 *  - the read side (idle / one RECV_MESSAGE pending / end of stream).
 * Callbacks are events (a bit mask plus at most one undelivered message, since reads are
 * flow-controlled) run by whichever thread finds the call's callback loop idle, in a fixed
 * order with on_done last, never with the call mutex held. Callbacks of one call therefore
 * never overlap. Completions only ever come from the CQ workers, so callbacks run there.
 * Threads: completions on the transport's workers; tcall_* from any thread; the per-call
 * mutex serialises grpc_call_start_batch as grpc.h requires.
 */
#include "server/transport/call.h"

#include "server/common/alloc.h"
#include "server/common/log.h"
#include "server/transport/msgcheck.h"
#include "sluice/status.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/time.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- state ---------------------------------------------------------------------------- */

static const char *const state_names[TCALL_NSTATES] = {
    "requested", "rejected", "open", "finishing", "failed", "done",
};

/* Allowed transitions: [from][to]. */
static const bool transitions[TCALL_NSTATES][TCALL_NSTATES] = {
    [TCALL_REQUESTED] = {[TCALL_REJECTED] = true, [TCALL_OPEN] = true, [TCALL_DONE] = true},
    [TCALL_REJECTED] = {[TCALL_DONE] = true},
    [TCALL_OPEN] = {[TCALL_FINISHING] = true, [TCALL_FAILED] = true, [TCALL_DONE] = true},
    [TCALL_FINISHING] = {[TCALL_FAILED] = true, [TCALL_DONE] = true},
    [TCALL_FAILED] = {[TCALL_DONE] = true},
};

void call_set_state(tcall *c, tcall_state s) {
    if (!transitions[c->state][s]) {
        LOG_ERROR("transport", "call state %s -> %s is not allowed", state_names[c->state],
                  state_names[s]);
        abort();
    }
    c->state = s;
}

bool call_live(const tcall *c) {
    return c->state == TCALL_OPEN || c->state == TCALL_FINISHING;
}

void call_queue_event_locked(tcall *c, unsigned ev) {
    if (c->h && c->state != TCALL_DONE)
        c->events |= ev;
}

/* ---- memory and retirement ------------------------------------------------------------ */

static void call_retire(tcall *c) {
    transport *t = c->t;
    if (c->call)
        grpc_call_unref(c->call);
    c->call = NULL;
    grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->md);
    pthread_mutex_lock(&c->mu);
    outbound_drop_locked(c); /* nothing is in flight any more */
    ProtobufCMessage *msg = c->pending_msg;
    c->pending_msg = NULL;
    pthread_mutex_unlock(&c->mu);
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
    tcall_unref(c);
    transport_call_retired(t);
}

void tcall_ref(tcall *call) {
    atomic_fetch_add(&call->refs, 1);
}

void tcall_unref(tcall *call) {
    if (!call || atomic_fetch_sub(&call->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&call->mu);
    if (call->q != call->q_inline)
        free(call->q);
    free(call->fin_details);
    free(call);
}

/* ---- callbacks ------------------------------------------------------------------------ */

static unsigned next_event_locked(tcall *c, ProtobufCMessage **msg) {
    for (unsigned ev = EV_START; ev <= EV_DONE; ev <<= 1) {
        if (!(c->events & ev))
            continue;
        c->events &= ~ev;
        if (ev == EV_MESSAGE) {
            *msg = c->pending_msg;
            c->pending_msg = NULL;
            if (c->read == READ_PENDING) /* delivered: the handler may ask for more */
                c->read = READ_IDLE;
        }
        return ev;
    }
    return 0;
}

static void run_event(tcall *c, unsigned ev, ProtobufCMessage *msg, bool cancelled) {
    const transport_handler *h = c->h;
    switch (ev) {
    case EV_START:
        if (h->on_start)
            h->on_start(c, h->ctx);
        break;
    case EV_MESSAGE:
        h->on_message(c, msg, h->ctx);
        break;
    case EV_HALF_CLOSE:
        if (h->on_half_close)
            h->on_half_close(c, h->ctx);
        break;
    case EV_WRITABLE:
        if (h->on_writable)
            h->on_writable(c, h->ctx);
        break;
    case EV_DONE:
        if (h->on_done)
            h->on_done(c, cancelled, h->ctx);
        break;
    }
}

/* Ends every completion handler: runs pending callbacks unless another thread is already
 * running them, then retires the call if it is finished. Entered with mu held; returns
 * with it released (the call may be freed). */
static void call_release(tcall *c) {
    if (c->events && !c->dispatching) {
        c->dispatching = true;
        c->ops++;
        ProtobufCMessage *msg = NULL;
        unsigned ev;
        while ((ev = next_event_locked(c, &msg)) != 0) {
            bool cancelled = c->done_cancelled;
            pthread_mutex_unlock(&c->mu);
            run_event(c, ev, msg, cancelled);
            msg = NULL;
            pthread_mutex_lock(&c->mu);
        }
        c->dispatching = false;
        c->ops--;
    }
    bool retire = c->state == TCALL_DONE && c->ops == 0;
    pthread_mutex_unlock(&c->mu);
    if (retire)
        call_retire(c);
}

/* ---- starting batches ----------------------------------------------------------------- */

bool call_start_batch_locked(tcall *c, const grpc_op *ops, size_t n, ttag *tag) {
    TTAG_RELEASE(tag);
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, tag, NULL);
    if (e == GRPC_CALL_OK) {
        c->ops++;
        return true;
    }
    /* A state-machine bug; end the call rather than leave it hanging. */
    LOG_ERROR("transport", "grpc_call_start_batch failed (%d) in state %s", (int)e,
              state_names[c->state]);
    grpc_call_cancel_with_status(c->call, GRPC_STATUS_INTERNAL, "internal error", NULL);
    return false;
}

static void start_close_locked(tcall *c) {
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->close_cancelled;
    if (!call_start_batch_locked(c, &op, 1, &c->tag_close))
        abort(); /* without the close op the call could never end */
}

static void start_recv_locked(tcall *c, bool with_initial_metadata) {
    grpc_op ops[2];
    size_t n = 0;
    memset(ops, 0, sizeof ops);
    if (with_initial_metadata)
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &c->recv_bb;
    c->read = call_start_batch_locked(c, ops, n, &c->tag_recv) ? READ_PENDING : READ_EOF;
}

/* ---- completions ---------------------------------------------------------------------- */

/* Returns the tenant, or NULL with *why set. */
static const char *authenticate(const tcall *c, const char **why) {
    const grpc_metadata_array *md = &c->md;
    for (size_t i = 0; i < md->count; i++) {
        if (grpc_slice_str_cmp(md->metadata[i].key, "authorization") == 0) {
            const grpc_slice *v = &md->metadata[i].value;
            return auth_check(c->t->auth, (const char *)GRPC_SLICE_START_PTR(*v),
                              GRPC_SLICE_LENGTH(*v), why);
        }
    }
    return auth_check(c->t->auth, NULL, 0, why);
}

static void log_rejected(const tcall *c, const char *why) {
    size_t len = GRPC_SLICE_LENGTH(c->details.method);
    LOG_INFO("transport", "rejected %.*s: %s", (int)(len > 200 ? 200 : len),
             (const char *)GRPC_SLICE_START_PTR(c->details.method), why);
}

static void on_new(tcall *c, bool ok) {
    transport *t = c->t;
    if (!ok) { /* the server is shutting down: the slot was never matched */
        pthread_mutex_lock(&c->mu);
        c->ops--;
        call_set_state(c, TCALL_DONE);
        call_release(c);
        return;
    }
    transport_post_slot(t);
    const char *why = NULL;
    grpc_status_code reject = GRPC_STATUS_OK;
    c->m = transport_find_method(t, &c->details.method);
    c->tenant = "";
    if (!c->m) {
        reject = GRPC_STATUS_UNIMPLEMENTED;
        why = "method not implemented";
    } else if (t->auth && !c->m->auth_exempt && !(c->tenant = authenticate(c, &why))) {
        reject = GRPC_STATUS_UNAUTHENTICATED;
    }
    if (reject != GRPC_STATUS_OK)
        log_rejected(c, why);
    pthread_mutex_lock(&c->mu);
    c->ops--;
    start_close_locked(c);
    if (reject != GRPC_STATUS_OK) {
        call_set_state(c, TCALL_REJECTED);
        outbound_reject_locked(c, reject, why);
    } else {
        c->h = c->m->handler;
        call_set_state(c, TCALL_OPEN);
        start_recv_locked(c, true);
        call_queue_event_locked(c, EV_START);
    }
    call_release(c);
}

/* Unpacks and consumes c->recv_bb. NULL when it does not decode or breaks a proto3 rule
 * protobuf-c does not check (a string that is not UTF-8): *why then says what is wrong. */
static ProtobufCMessage *unpack_request(tcall *c, char *why, size_t whylen) {
    grpc_byte_buffer *bb = c->recv_bb;
    const ProtobufCMessageDescriptor *desc = c->m->handler->method->input;
    ProtobufCMessage *msg = NULL;
    grpc_byte_buffer_reader r;
    c->recv_bb = NULL;
    if (grpc_byte_buffer_reader_init(&r, bb)) {
        /* One slice (the usual case) is decoded in place; more are joined first. */
        grpc_slice all = grpc_byte_buffer_reader_readall(&r);
        msg = protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(all),
                                        GRPC_SLICE_START_PTR(all));
        grpc_slice_unref(all);
        grpc_byte_buffer_reader_destroy(&r);
    }
    grpc_byte_buffer_destroy(bb);
    snprintf(why, whylen, "request message does not decode");
    if (msg && msgcheck_strings(msg, why, whylen) != SLUICE_OK) {
        protobuf_c_message_free_unpacked(msg, NULL);
        msg = NULL;
    }
    return msg;
}

static void on_recv(tcall *c, bool ok) {
    bool got = ok && c->recv_bb;
    char why[600];
    ProtobufCMessage *msg = got ? unpack_request(c, why, sizeof why) : NULL;
    bool streaming_in = c->m->handler->method->client_streaming;
    pthread_mutex_lock(&c->mu);
    c->ops--;
    c->read = READ_EOF;
    if (got && !msg) {
        if (c->state == TCALL_OPEN)
            outbound_finish_locked(c, GRPC_STATUS_INVALID_ARGUMENT, why);
    } else if (msg && c->h && c->state != TCALL_DONE) {
        c->pending_msg = msg;
        call_queue_event_locked(c, streaming_in ? EV_MESSAGE : EV_MESSAGE | EV_HALF_CLOSE);
        c->read = streaming_in ? READ_PENDING : READ_EOF; /* until delivered */
        msg = NULL;
    } else if (ok && !got) {
        if (!streaming_in && c->state == TCALL_OPEN)
            outbound_finish_locked(c, GRPC_STATUS_INVALID_ARGUMENT, "missing request message");
        else
            call_queue_event_locked(c, EV_HALF_CLOSE);
    }
    call_release(c);
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
}

static void on_send(tcall *c, bool ok) {
    pthread_mutex_lock(&c->mu);
    c->ops--;
    outbound_on_send_locked(c, ok);
    call_release(c);
}

static void on_close(tcall *c, bool ok) {
    pthread_mutex_lock(&c->mu);
    c->ops--;
    bool started = c->h != NULL;
    c->done_cancelled = !ok || c->close_cancelled;
    outbound_drop_locked(c);
    call_set_state(c, TCALL_DONE);
    if (started)
        c->events |= EV_DONE;
    LOG_DEBUG("transport", "call %s done%s", c->m ? c->m->path : "(unknown)",
              c->done_cancelled ? " (cancelled)" : "");
    call_release(c);
}

void call_on_tag(ttag *tag, bool ok) {
    switch (tag->kind) {
    case TTAG_NEW:
        on_new(CALL_OF(tag, tag_new), ok);
        break;
    case TTAG_CLOSE:
        on_close(CALL_OF(tag, tag_close), ok);
        break;
    case TTAG_RECV:
        on_recv(CALL_OF(tag, tag_recv), ok);
        break;
    case TTAG_SEND:
        on_send(CALL_OF(tag, tag_send), ok);
        break;
    case TTAG_SHUTDOWN:
        break;
    }
}

int call_post_slot(transport *t) {
    tcall *c = XNEW(tcall);
    c->t = t;
    pthread_mutex_init(&c->mu, NULL);
    atomic_init(&c->refs, 1);
    atomic_init(&c->user, NULL);
    c->state = TCALL_REQUESTED;
    c->ops = 1;
    c->q = c->q_inline;
    c->q_cap = QUEUE_INLINE;
    c->fin_slice = grpc_empty_slice();
    c->tag_new.kind = TTAG_NEW;
    c->tag_close.kind = TTAG_CLOSE;
    c->tag_recv.kind = TTAG_RECV;
    c->tag_send.kind = TTAG_SEND;
    grpc_call_details_init(&c->details);
    grpc_metadata_array_init(&c->md);
    atomic_fetch_add(&t->active, 1);
    TTAG_RELEASE(&c->tag_new);
    grpc_call_error e = grpc_server_request_call(t->server, &c->call, &c->details, &c->md, t->cq,
                                                 t->cq, &c->tag_new);
    if (e == GRPC_CALL_OK)
        return SLUICE_OK;
    LOG_ERROR("transport", "grpc_server_request_call failed (%d)", (int)e);
    c->state = TCALL_DONE;
    c->ops = 0;
    call_retire(c);
    return SLUICE_EIO;
}

/* ---- the handler-facing API (transport.h) --------------------------------------------- */

void tcall_set_user(tcall *call, void *user) {
    atomic_store(&call->user, user);
}

void *tcall_user(const tcall *call) {
    return atomic_load(&((tcall *)call)->user);
}

const char *tcall_tenant(const tcall *call) {
    return call->tenant ? call->tenant : "";
}

int tcall_read_next(tcall *call) {
    int rc = SLUICE_OK;
    pthread_mutex_lock(&call->mu);
    if (call->state != TCALL_OPEN || call->read == READ_EOF)
        rc = SLUICE_ECLOSED;
    else if (call->read == READ_PENDING)
        rc = SLUICE_EBUSY;
    else
        start_recv_locked(call, false);
    pthread_mutex_unlock(&call->mu);
    return rc;
}
