/*
 * rpc_call.c - streaming calls (server, client and bidi streaming) over one completion
 * queue per call.
 *
 * A call has five operation slots, each a batch with its own tag: start (send initial
 * metadata; for server streaming also the request and the half-close), write
 * (SEND_MESSAGE), close (SEND_CLOSE_FROM_CLIENT), read (RECV_MESSAGE, with
 * RECV_INITIAL_METADATA the first time) and status (RECV_STATUS_ON_CLIENT). gRPC allows one
 * batch of each kind in flight, which is exactly one per slot.
 *
 * Every wait goes through call_pump, which takes the next completion of the call's queue,
 * whichever slot it belongs to, and records it in that slot (done, ok, order). So a
 * blocking write that sees the pending read finish leaves that completion recorded for
 * sluice_rpc_call_next, and _next reports completions in the order they happened.
 * Messages are decoded only when a completion is reported.
 *
 * The call's life is one enum (call_state) moved only by call_set_state; a slot's owner
 * (a blocking function or the event API) decides who reports its completion. A call
 * belongs to one thread; sluice_rpc_call_cancel only calls grpc_call_cancel, which gRPC
 * allows from any thread. Freeing cancels an unfinished call and drains its queue, so no
 * gRPC operation ever writes into freed memory.
 */
#include "client/rpc/rpc_internal.h"

#include "sluice/status.h"

#include <grpc/byte_buffer.h>
#include <stdlib.h>
#include <string.h>

typedef enum call_state {
    CALL_OPEN,        /* messages may flow both ways */
    CALL_SEND_CLOSED, /* half-closed by us (or a write failed): reads only */
    CALL_RECV_CLOSED, /* the read side reached its end: writes only (they will fail soon) */
    CALL_DRAINED,     /* both sides closed: only the status is left */
    CALL_FINISHED,    /* the final status is known */
} call_state;

typedef enum op_state { OP_IDLE, OP_PENDING, OP_DONE } op_state;
typedef enum op_owner { OWNER_BLOCKING, OWNER_EVENT } op_owner;

typedef struct call_op {
    op_state state;
    op_owner owner;
    bool ok;        /* the batch's success flag, once done */
    uint64_t order; /* completion order, for sluice_rpc_call_next */
} call_op;

struct sluice_rpc_call {
    call_state state;
    const sluice_rpc_method *method;
    grpc_completion_queue *cq;
    grpc_call *call;
    rpc_metadata md;
    call_op start, write, close, read, status;
    grpc_byte_buffer *start_bb; /* request of a server-streaming call, until sent */
    grpc_byte_buffer *write_bb; /* until the write completes */
    grpc_byte_buffer *read_bb;  /* a received message until reported */
    bool initial_md_requested;
    grpc_metadata_array initial_md;
    grpc_metadata_array trailing_md;
    grpc_status_code code;
    grpc_slice details;
    sluice_rpc_status final; /* kept for repeated _finish */
    uint64_t completions;
};

static void call_set_state(sluice_rpc_call *c, call_state next) {
    c->state = next;
}

static bool send_closed(const sluice_rpc_call *c) {
    return c->state != CALL_OPEN && c->state != CALL_RECV_CLOSED;
}

static bool recv_closed(const sluice_rpc_call *c) {
    return c->state != CALL_OPEN && c->state != CALL_SEND_CLOSED;
}

static void close_send_side(sluice_rpc_call *c) {
    if (c->state == CALL_OPEN) {
        call_set_state(c, CALL_SEND_CLOSED);
    } else if (c->state == CALL_RECV_CLOSED) {
        call_set_state(c, CALL_DRAINED);
    }
}

static void close_recv_side(sluice_rpc_call *c) {
    if (c->state == CALL_OPEN) {
        call_set_state(c, CALL_RECV_CLOSED);
    } else if (c->state == CALL_SEND_CLOSED) {
        call_set_state(c, CALL_DRAINED);
    }
}

static void destroy_bb(grpc_byte_buffer **bb) {
    if (*bb != NULL) {
        grpc_byte_buffer_destroy(*bb);
        *bb = NULL;
    }
}

/* Takes one completion (waiting until deadline) and records it in its slot. Returns false
 * on timeout. */
static bool call_pump(sluice_rpc_call *c, gpr_timespec deadline) {
    grpc_event ev = grpc_completion_queue_next(c->cq, deadline, NULL);
    if (ev.type != GRPC_OP_COMPLETE) {
        return false;
    }
    call_op *op = ev.tag;
    op->state = OP_DONE;
    op->ok = ev.success != 0;
    op->order = ++c->completions;
    /* Sent buffers are no longer needed, whoever reports the completion. */
    if (op == &c->start) {
        destroy_bb(&c->start_bb);
    } else if (op == &c->write) {
        destroy_bb(&c->write_bb);
    }
    return true;
}

/* Waits for a blocking slot to complete, consumes it and returns its success flag. */
static bool call_wait(sluice_rpc_call *c, call_op *op) {
    while (op->state == OP_PENDING) {
        if (!call_pump(c, gpr_inf_future(GPR_CLOCK_MONOTONIC))) {
            op->ok = false; /* only a shut-down queue gives no event: never while in use */
            break;
        }
    }
    op->state = OP_IDLE;
    return op->ok;
}

static int call_batch(sluice_rpc_call *c, call_op *op, op_owner owner, const grpc_op *ops,
                      size_t n) {
    if (grpc_call_start_batch(c->call, ops, n, op, NULL) != GRPC_CALL_OK) {
        return SLUICE_EINTERNAL;
    }
    op->state = OP_PENDING;
    op->owner = owner;
    return SLUICE_OK;
}

static void call_destroy(sluice_rpc_call *c) {
    if (c->cq != NULL) {
        grpc_completion_queue_shutdown(c->cq);
        while (grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
               GRPC_QUEUE_SHUTDOWN) {
        }
    }
    if (c->call != NULL) {
        grpc_call_unref(c->call);
    }
    if (c->cq != NULL) {
        grpc_completion_queue_destroy(c->cq);
    }
    destroy_bb(&c->start_bb);
    destroy_bb(&c->write_bb);
    destroy_bb(&c->read_bb);
    rpc_metadata_cleanup(&c->md);
    grpc_metadata_array_destroy(&c->initial_md);
    grpc_metadata_array_destroy(&c->trailing_md);
    grpc_slice_unref(c->details);
    free(c);
}

/* Sends the initial metadata and, for server streaming, the request and the half-close. */
static int call_send_start(sluice_rpc_call *c, const ProtobufCMessage *req) {
    grpc_op ops[3];
    memset(ops, 0, sizeof(ops));
    size_t n = 0;
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].data.send_initial_metadata.count = c->md.count;
    ops[n++].data.send_initial_metadata.metadata = c->md.items;
    if (req != NULL) {
        int rc = rpc_pack(req, &c->start_bb);
        if (rc != SLUICE_OK) {
            return rc;
        }
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->start_bb;
        ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
        call_set_state(c, CALL_SEND_CLOSED);
    }
    return call_batch(c, &c->start, OWNER_BLOCKING, ops, n);
}

static int check_start(const sluice_rpc_channel *ch, const sluice_rpc_method *m,
                       const ProtobufCMessage *req, sluice_rpc_call **out) {
    if (out == NULL || ch == NULL || m == NULL || !(m->client_streaming || m->server_streaming)) {
        return SLUICE_EINVAL;
    }
    if (m->client_streaming) {
        return req == NULL ? SLUICE_OK : SLUICE_EINVAL;
    }
    return rpc_same_type(req, m->input) ? SLUICE_OK : SLUICE_EINVAL;
}

int sluice_rpc_call_start(sluice_rpc_channel *ch, const sluice_rpc_method *m,
                          const ProtobufCMessage *req, const sluice_rpc_call_opts *opts,
                          sluice_rpc_call **out) {
    int rc = check_start(ch, m, req, out);
    if (out != NULL) {
        *out = NULL;
    }
    if (rc != SLUICE_OK) {
        return rc;
    }
    sluice_rpc_call *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return SLUICE_ENOMEM;
    }
    c->method = m;
    c->code = GRPC_STATUS_UNKNOWN;
    c->details = grpc_empty_slice();
    grpc_metadata_array_init(&c->initial_md);
    grpc_metadata_array_init(&c->trailing_md);
    rpc_metadata_init(&c->md, ch);
    call_set_state(c, CALL_OPEN);
    c->cq = grpc_completion_queue_create_for_next(NULL);
    if (c->cq == NULL || (c->call = rpc_create_call(ch, m, opts, c->cq)) == NULL) {
        call_destroy(c);
        return SLUICE_ENOMEM;
    }
    rc = call_send_start(c, m->client_streaming ? NULL : req);
    if (rc != SLUICE_OK) {
        call_destroy(c);
        return rc;
    }
    *out = c;
    return SLUICE_OK;
}

int sluice_rpc_call_check(const sluice_rpc_call *call, const sluice_rpc_method *m) {
    return call != NULL && rpc_same_method(call->method, m) ? SLUICE_OK : SLUICE_EINVAL;
}

/* ---- writes ------------------------------------------------------------------------- */

static int start_write(sluice_rpc_call *c, const ProtobufCMessage *msg, op_owner owner) {
    if (c == NULL || !c->method->client_streaming || !rpc_same_type(msg, c->method->input)) {
        return SLUICE_EINVAL;
    }
    if (c->write.state != OP_IDLE) {
        return SLUICE_EBUSY;
    }
    if (send_closed(c)) {
        return SLUICE_ECLOSED;
    }
    int rc = rpc_pack(msg, &c->write_bb);
    if (rc != SLUICE_OK) {
        return rc;
    }
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = c->write_bb;
    rc = call_batch(c, &c->write, owner, &op, 1);
    if (rc != SLUICE_OK) {
        destroy_bb(&c->write_bb);
    }
    return rc;
}

int sluice_rpc_call_write(sluice_rpc_call *call, const ProtobufCMessage *msg) {
    int rc = start_write(call, msg, OWNER_BLOCKING);
    if (rc != SLUICE_OK) {
        return rc;
    }
    if (!call_wait(call, &call->write)) {
        close_send_side(call); /* the call is over: its status says why */
        return SLUICE_ECLOSED;
    }
    return SLUICE_OK;
}

int sluice_rpc_call_start_write(sluice_rpc_call *call, const ProtobufCMessage *msg) {
    return start_write(call, msg, OWNER_EVENT);
}

int sluice_rpc_call_close_send(sluice_rpc_call *call) {
    if (call == NULL) {
        return SLUICE_EINVAL;
    }
    if (send_closed(call)) {
        return SLUICE_OK;
    }
    if (call->write.state != OP_IDLE) {
        return SLUICE_EBUSY; /* half-close only after the pending write is reported */
    }
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    int rc = call_batch(call, &call->close, OWNER_BLOCKING, &op, 1);
    if (rc != SLUICE_OK) {
        return rc;
    }
    close_send_side(call);
    call_wait(call, &call->close); /* a failure here shows in the status */
    return SLUICE_OK;
}

/* ---- reads -------------------------------------------------------------------------- */

/* Starts a read without any kind check (finish also reads client-streaming responses). */
static int start_read_any(sluice_rpc_call *c, op_owner owner) {
    grpc_op ops[2];
    memset(ops, 0, sizeof(ops));
    size_t n = 0;
    if (!c->initial_md_requested) {
        ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[n++].data.recv_initial_metadata.recv_initial_metadata = &c->initial_md;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &c->read_bb;
    int rc = call_batch(c, &c->read, owner, ops, n);
    if (rc == SLUICE_OK) {
        c->initial_md_requested = true;
    }
    return rc;
}

static int start_read(sluice_rpc_call *c, op_owner owner) {
    if (c == NULL || !c->method->server_streaming) {
        return SLUICE_EINVAL;
    }
    if (c->read.state != OP_IDLE) {
        return SLUICE_EBUSY;
    }
    return recv_closed(c) ? SLUICE_EEOF : start_read_any(c, owner);
}

/* Reports a completed read: decodes its message into *msg (NULL at the end of the stream,
 * which closes the read side). Returns SLUICE_OK, SLUICE_EEOF, SLUICE_EPROTO or
 * SLUICE_ENOMEM. */
static int take_read(sluice_rpc_call *c, bool ok, ProtobufCMessage **msg) {
    *msg = NULL;
    if (!ok || c->read_bb == NULL) {
        destroy_bb(&c->read_bb);
        close_recv_side(c);
        return SLUICE_EEOF;
    }
    int rc = rpc_unpack(c->method->output, c->read_bb, msg);
    destroy_bb(&c->read_bb);
    return rc;
}

int sluice_rpc_call_read(sluice_rpc_call *call, ProtobufCMessage **msg) {
    if (msg == NULL) {
        return SLUICE_EINVAL;
    }
    *msg = NULL;
    int rc = start_read(call, OWNER_BLOCKING);
    if (rc != SLUICE_OK) {
        return rc;
    }
    bool ok = call_wait(call, &call->read);
    return take_read(call, ok, msg);
}

int sluice_rpc_call_start_read(sluice_rpc_call *call) {
    return start_read(call, OWNER_EVENT);
}

/* ---- events ------------------------------------------------------------------------- */

static bool event_op(const call_op *op, op_state state) {
    return op->owner == OWNER_EVENT && op->state == state;
}

bool sluice_rpc_call_write_pending(const sluice_rpc_call *call) {
    return call != NULL && call->write.owner == OWNER_EVENT && call->write.state != OP_IDLE;
}

bool sluice_rpc_call_read_pending(const sluice_rpc_call *call) {
    return call != NULL && call->read.owner == OWNER_EVENT && call->read.state != OP_IDLE;
}

/* Reports the earliest finished event-API slot into *ev. False when none has finished. */
static bool report_done(sluice_rpc_call *c, sluice_rpc_event *ev, int *rc) {
    bool w = event_op(&c->write, OP_DONE);
    bool r = event_op(&c->read, OP_DONE);
    if (w && (!r || c->write.order < c->read.order)) {
        c->write.state = OP_IDLE;
        ev->kind = SLUICE_RPC_EVENT_WRITE_DONE;
        ev->ok = c->write.ok;
        if (!ev->ok) {
            close_send_side(c);
        }
        *rc = SLUICE_OK;
        return true;
    }
    if (r) {
        c->read.state = OP_IDLE;
        ev->kind = SLUICE_RPC_EVENT_READ_DONE;
        bool ok = c->read.ok;
        int taken = take_read(c, ok, &ev->msg);
        ev->ok = taken == SLUICE_OK || (taken == SLUICE_EEOF && ok);
        *rc = taken == SLUICE_EEOF ? SLUICE_OK : taken;
        return true;
    }
    return false;
}

int sluice_rpc_call_next(sluice_rpc_call *call, int timeout_ms, sluice_rpc_event *ev) {
    if (call == NULL || ev == NULL) {
        return SLUICE_EINVAL;
    }
    memset(ev, 0, sizeof(*ev));
    if (!sluice_rpc_call_write_pending(call) && !sluice_rpc_call_read_pending(call)) {
        return SLUICE_EINVAL;
    }
    gpr_timespec deadline = rpc_deadline_ms(timeout_ms);
    int rc = SLUICE_OK;
    while (!report_done(call, ev, &rc)) {
        if (!call_pump(call, deadline)) {
            ev->kind = SLUICE_RPC_EVENT_NONE;
            return SLUICE_OK;
        }
    }
    return rc;
}

/* ---- the end ------------------------------------------------------------------------ */

/* Reads what is left: the single response of a client-streaming call (into *resp when
 * resp is not NULL), then discards messages up to the end of the stream. Returns the
 * response's decoding result: SLUICE_EPROTO when none came (meaningful only with an OK
 * status). */
static int drain_reads(sluice_rpc_call *c, ProtobufCMessage **resp) {
    bool want_response = !c->method->server_streaming;
    int rc = SLUICE_OK;
    while (!recv_closed(c) && start_read_any(c, OWNER_BLOCKING) == SLUICE_OK) {
        bool ok = call_wait(c, &c->read);
        if (want_response) {
            ProtobufCMessage *msg = NULL;
            rc = take_read(c, ok, &msg);
            rc = rc == SLUICE_EEOF ? SLUICE_EPROTO : rc;
            if (resp != NULL) {
                *resp = msg;
            } else {
                protobuf_c_message_free_unpacked(msg, NULL);
            }
            want_response = false;
        } else if (!ok || c->read_bb == NULL) {
            close_recv_side(c);
        } else {
            destroy_bb(&c->read_bb);
        }
    }
    return rc;
}

static void call_receive_status(sluice_rpc_call *c) {
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op.data.recv_status_on_client.trailing_metadata = &c->trailing_md;
    op.data.recv_status_on_client.status = &c->code;
    op.data.recv_status_on_client.status_details = &c->details;
    if (call_batch(c, &c->status, OWNER_BLOCKING, &op, 1) == SLUICE_OK) {
        call_wait(c, &c->status);
    }
    rpc_status_set(&c->final, c->code, c->details);
    call_set_state(c, CALL_FINISHED);
}

int sluice_rpc_call_finish(sluice_rpc_call *call, ProtobufCMessage **resp,
                           sluice_rpc_status *status) {
    if (resp != NULL) {
        *resp = NULL;
    }
    int rc = call == NULL ? SLUICE_EINVAL : SLUICE_OK;
    if (rc == SLUICE_OK &&
        (sluice_rpc_call_write_pending(call) || sluice_rpc_call_read_pending(call))) {
        rc = SLUICE_EBUSY;
    }
    if (rc != SLUICE_OK) {
        rpc_status_local(status, rc);
        return rc;
    }
    if (call->state != CALL_FINISHED) {
        sluice_rpc_call_close_send(call);
        rc = drain_reads(call, resp);
        call_receive_status(call);
    }
    if (status != NULL) {
        *status = call->final;
    }
    if (rc == SLUICE_OK || call->final.code != GRPC_STATUS_OK) {
        if (resp != NULL && call->final.code != GRPC_STATUS_OK) {
            protobuf_c_message_free_unpacked(*resp, NULL);
            *resp = NULL;
        }
        rc = sluice_rpc_status_to_error(call->final.code);
    }
    return rc;
}

void sluice_rpc_call_cancel(sluice_rpc_call *call) {
    if (call != NULL) {
        grpc_call_cancel(call->call, NULL);
    }
}

void sluice_rpc_call_free(sluice_rpc_call *call) {
    if (call == NULL) {
        return;
    }
    if (call->state != CALL_FINISHED) {
        grpc_call_cancel(call->call, NULL);
    }
    call_destroy(call);
}
