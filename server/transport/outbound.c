/*
 * outbound.c - the send side of a call.
 *
 * Owns the call's outbound ring of packed messages (inline storage for two, growing by
 * doubling up to max_outbound_per_call) and the send tag. gRPC allows one SEND_MESSAGE in
 * flight per call, so the next batch starts from the completion of the previous one; when
 * the call is finishing, the last message and the status share one batch (a unary reply is
 * a single {SEND_MESSAGE, SEND_STATUS_FROM_SERVER}). Messages are packed straight into a
 * gRPC slice before the lock is taken. A full queue answers SLUICE_ELIMIT and arms the
 * writable watermark (half the bound): when the queue drains below it, on_writable is
 * queued; so it is (for handlers that have one) each time a sent message empties it. Threads:
 * tcall_send/reply/finish from any thread, completions from the workers; everything here runs under
 * the call's mutex.
 */
#include "server/transport/call.h"

#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "sluice/status.h"

#include <grpc/byte_buffer.h>
#include <stdlib.h>
#include <string.h>

static size_t watermark(const tcall *c) {
    size_t wm = c->t->max_outbound / 2;
    return wm ? wm : 1;
}

void outbound_drop_locked(tcall *c) {
    size_t keep = c->msg_in_flight ? 1 : 0;
    while (c->q_len > keep) {
        size_t i = (c->q_head + c->q_len - 1) % c->q_cap;
        grpc_byte_buffer_destroy(c->q[i]);
        c->q_len--;
    }
}

static void queue_push_locked(tcall *c, grpc_byte_buffer *bb) {
    if (c->q_len == c->q_cap) {
        size_t cap = c->q_cap * 2;
        grpc_byte_buffer **q = xmalloc(cap * sizeof *q);
        for (size_t i = 0; i < c->q_len; i++)
            q[i] = c->q[(c->q_head + i) % c->q_cap];
        if (c->q != c->q_inline)
            free(c->q);
        c->q = q;
        c->q_cap = cap;
        c->q_head = 0;
    }
    c->q[(c->q_head + c->q_len) % c->q_cap] = bb;
    c->q_len++;
    c->n_queued_total++;
    c->last_queued_ms = clock_now_ms();
    if (c->q_len >= watermark(c))
        c->over_watermark = true;
}

static void fill_status_op(tcall *c, grpc_op *op) {
    c->fin_slice =
        c->fin_details ? grpc_slice_from_static_string(c->fin_details) : grpc_empty_slice();
    op->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    op->data.send_status_from_server.status = c->fin_code;
    op->data.send_status_from_server.status_details = &c->fin_slice;
}

/* Starts the next send batch if none is in flight: the head message, plus the status
 * when finishing and it is the last one. */
void outbound_kick_locked(tcall *c) {
    if (c->send_in_flight || c->status_started || !call_live(c))
        return;
    grpc_op ops[2];
    size_t n = 0;
    memset(ops, 0, sizeof ops);
    bool with_msg = c->q_len > 0;
    if (with_msg) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->q[c->q_head];
    }
    if (c->state == TCALL_FINISHING && c->q_len <= 1) {
        fill_status_op(c, &ops[n++]);
        c->status_started = true;
    }
    if (n == 0)
        return;
    c->send_in_flight = true;
    c->msg_in_flight = with_msg;
    if (!call_start_batch_locked(c, ops, n, &c->tag_send)) {
        c->send_in_flight = c->msg_in_flight = false;
        call_set_state(c, TCALL_FAILED);
        outbound_drop_locked(c);
    }
}

void outbound_reject_locked(tcall *c, grpc_status_code code, const char *why) {
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    c->fin_code = code;
    c->fin_details = xstrdup(why);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    fill_status_op(c, &ops[1]);
    c->status_started = true;
    c->send_in_flight = call_start_batch_locked(c, ops, 2, &c->tag_send);
}

/* Requests the status once the queue drains (caller checked the call is OPEN). */
void outbound_finish_locked(tcall *c, grpc_status_code code, const char *details) {
    c->fin_code = code;
    free(c->fin_details);
    c->fin_details = details && *details ? xstrdup(details) : NULL;
    call_set_state(c, TCALL_FINISHING);
    outbound_kick_locked(c);
}

void outbound_on_send_locked(tcall *c, bool ok) {
    c->send_in_flight = false;
    bool msg_done = c->msg_in_flight;
    if (c->msg_in_flight) {
        grpc_byte_buffer_destroy(c->q[c->q_head]);
        c->q_head = (c->q_head + 1) % c->q_cap;
        c->q_len--;
        c->msg_in_flight = false;
    }
    if (!ok) {
        outbound_drop_locked(c);
        if (call_live(c))
            call_set_state(c, TCALL_FAILED);
    } else {
        outbound_kick_locked(c);
    }
    bool below = c->over_watermark && c->q_len < watermark(c);
    if (below)
        c->over_watermark = false;
    bool emptied = msg_done && c->q_len == 0 && c->h && c->h->on_writable;
    if ((below || emptied) && call_live(c))
        call_queue_event_locked(c, EV_WRITABLE);
}

/* Queues a packed message and optionally requests the OK status after it. */
static int submit(tcall *c, const ProtobufCMessage *msg, bool finish) {
    if (!msg || !c->m || msg->descriptor != c->m->handler->method->output)
        return SLUICE_EINVAL;
    size_t len = protobuf_c_message_get_packed_size(msg);
    grpc_slice s = grpc_slice_malloc(len);
    protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);

    int rc = SLUICE_OK;
    pthread_mutex_lock(&c->mu);
    if (c->state != TCALL_OPEN) {
        rc = SLUICE_ECLOSED;
    } else if (!c->m->handler->method->server_streaming && c->n_queued_total > 0) {
        rc = SLUICE_EINVAL;
    } else if (c->q_len >= c->t->max_outbound) {
        c->over_watermark = true;
        rc = SLUICE_ELIMIT;
    } else {
        queue_push_locked(c, bb);
        bb = NULL;
        if (finish)
            outbound_finish_locked(c, GRPC_STATUS_OK, NULL);
        else
            outbound_kick_locked(c);
    }
    pthread_mutex_unlock(&c->mu);
    if (bb)
        grpc_byte_buffer_destroy(bb);
    return rc;
}

int tcall_send(tcall *call, const ProtobufCMessage *msg) {
    return submit(call, msg, false);
}

int tcall_reply(tcall *call, const ProtobufCMessage *msg) {
    return submit(call, msg, true);
}

int tcall_finish(tcall *call, grpc_status_code code, const char *details) {
    int rc = SLUICE_OK;
    pthread_mutex_lock(&call->mu);
    if (call->state == TCALL_OPEN)
        outbound_finish_locked(call, code, details);
    else
        rc = SLUICE_ECLOSED;
    pthread_mutex_unlock(&call->mu);
    return rc;
}

uint64_t tcall_last_queued_ms(const tcall *call) {
    tcall *c = (tcall *)call;
    pthread_mutex_lock(&c->mu);
    uint64_t ms = c->last_queued_ms;
    pthread_mutex_unlock(&c->mu);
    return ms;
}

size_t tcall_outbound_pending(const tcall *call) {
    tcall *c = (tcall *)call;
    pthread_mutex_lock(&c->mu);
    size_t n = c->q_len;
    pthread_mutex_unlock(&c->mu);
    return n;
}
