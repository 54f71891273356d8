/*
 * rpc_unary.c - unary calls: blocking (sluice_rpc_unary) and many in flight on one queue
 * (sluice_rpc_async).
 *
 * Both run the whole call as one six-op batch (send metadata, message and half-close;
 * receive metadata, message and status) described by an rpc_unary. The blocking form
 * gives every call its own completion queue and waits for that batch; an async queue
 * shares one completion queue among its calls, keeps them on a list so that _free can
 * cancel them, and bounds their number (SLUICE_RPC_ASYNC_MAX_IN_FLIGHT).
 */
#include "client/rpc/rpc_internal.h"

#include "sluice/status.h"

#include <grpc/byte_buffer.h>
#include <stdlib.h>
#include <string.h>

typedef struct rpc_unary {
    grpc_call *call;
    const sluice_rpc_method *method;
    rpc_metadata md;
    grpc_byte_buffer *send;
    grpc_byte_buffer *recv;
    grpc_metadata_array initial;
    grpc_metadata_array trailing;
    grpc_status_code code;
    grpc_slice details;
    void *tag;                     /* the caller's, for sluice_rpc_async_next */
    struct rpc_unary *prev, *next; /* an async queue's in-flight list */
} rpc_unary;

static int check_unary(const sluice_rpc_channel *ch, const sluice_rpc_method *m,
                       const ProtobufCMessage *req) {
    if (ch == NULL || m == NULL || m->client_streaming || m->server_streaming) {
        return SLUICE_EINVAL;
    }
    return rpc_same_type(req, m->input) ? SLUICE_OK : SLUICE_EINVAL;
}

/* Frees everything the call holds except u itself. */
static void unary_cleanup(rpc_unary *u) {
    if (u->call != NULL) {
        grpc_call_unref(u->call);
        u->call = NULL;
    }
    rpc_metadata_cleanup(&u->md);
    if (u->send != NULL) {
        grpc_byte_buffer_destroy(u->send);
        u->send = NULL;
    }
    if (u->recv != NULL) {
        grpc_byte_buffer_destroy(u->recv);
        u->recv = NULL;
    }
    grpc_metadata_array_destroy(&u->initial);
    grpc_metadata_array_destroy(&u->trailing);
    grpc_slice_unref(u->details);
    u->details = grpc_empty_slice();
}

/* Starts the call's single batch on cq with u as its tag. On error u holds nothing. */
static int unary_start(rpc_unary *u, sluice_rpc_channel *ch, const sluice_rpc_method *m,
                       const ProtobufCMessage *req, const sluice_rpc_call_opts *opts,
                       grpc_completion_queue *cq) {
    u->method = m;
    u->code = GRPC_STATUS_UNKNOWN;
    u->details = grpc_empty_slice();
    grpc_metadata_array_init(&u->initial);
    grpc_metadata_array_init(&u->trailing);
    rpc_metadata_init(&u->md, ch);
    int rc = rpc_pack(req, &u->send);
    if (rc == SLUICE_OK && (u->call = rpc_create_call(ch, m, opts, cq)) == NULL) {
        rc = SLUICE_ENOMEM;
    }
    if (rc != SLUICE_OK) {
        unary_cleanup(u);
        return rc;
    }
    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = u->md.count;
    ops[0].data.send_initial_metadata.metadata = u->md.items;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = u->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &u->initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &u->recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &u->trailing;
    ops[5].data.recv_status_on_client.status = &u->code;
    ops[5].data.recv_status_on_client.status_details = &u->details;
    if (grpc_call_start_batch(u->call, ops, 6, u, NULL) != GRPC_CALL_OK) {
        unary_cleanup(u);
        return SLUICE_EINTERNAL;
    }
    return SLUICE_OK;
}

/* Turns the finished batch into *resp and *status and frees the call's resources.
 * Returns the local result: SLUICE_OK, or SLUICE_EPROTO / SLUICE_ENOMEM when an OK
 * status came without a decodable response. */
static int unary_result(rpc_unary *u, ProtobufCMessage **resp, sluice_rpc_status *status) {
    *resp = NULL;
    rpc_status_set(status, u->code, u->details);
    int rc = SLUICE_OK;
    if (u->code == GRPC_STATUS_OK) {
        rc = u->recv != NULL ? rpc_unpack(u->method->output, u->recv, resp) : SLUICE_EPROTO;
    }
    unary_cleanup(u);
    return rc;
}

/* Shuts down a completion queue that has no work left and destroys it. */
static void destroy_idle_cq(grpc_completion_queue *cq) {
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
}

int sluice_rpc_unary(sluice_rpc_channel *ch, const sluice_rpc_method *m,
                     const ProtobufCMessage *req, ProtobufCMessage **resp,
                     const sluice_rpc_call_opts *opts, sluice_rpc_status *status) {
    int rc = resp != NULL ? check_unary(ch, m, req) : SLUICE_EINVAL;
    if (resp != NULL) {
        *resp = NULL;
    }
    grpc_completion_queue *cq = NULL;
    if (rc == SLUICE_OK && (cq = grpc_completion_queue_create_for_next(NULL)) == NULL) {
        rc = SLUICE_ENOMEM;
    }
    rpc_unary u;
    memset(&u, 0, sizeof(u));
    if (rc == SLUICE_OK && (rc = unary_start(&u, ch, m, req, opts, cq)) != SLUICE_OK) {
        destroy_idle_cq(cq);
    }
    if (rc != SLUICE_OK) {
        rpc_status_local(status, rc);
        return rc;
    }
    /* The batch is the queue's only work: its event is the one that comes back. */
    grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    grpc_status_code code = u.code;
    rc = unary_result(&u, resp, status);
    destroy_idle_cq(cq);
    return rc != SLUICE_OK ? rc : sluice_rpc_status_to_error((int)code);
}

/* ---- async queue -------------------------------------------------------------------- */

struct sluice_rpc_async {
    grpc_completion_queue *cq;
    rpc_unary *head; /* calls in flight */
    size_t in_flight;
};

int sluice_rpc_async_new(sluice_rpc_async **out) {
    if (out == NULL) {
        return SLUICE_EINVAL;
    }
    *out = NULL;
    sluice_rpc_async *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return SLUICE_ENOMEM;
    }
    grpc_init(); /* the queue may outlive every channel */
    a->cq = grpc_completion_queue_create_for_next(NULL);
    if (a->cq == NULL) {
        grpc_shutdown();
        free(a);
        return SLUICE_ENOMEM;
    }
    *out = a;
    return SLUICE_OK;
}

static void async_unlink(sluice_rpc_async *a, rpc_unary *u) {
    if (u->prev != NULL) {
        u->prev->next = u->next;
    } else {
        a->head = u->next;
    }
    if (u->next != NULL) {
        u->next->prev = u->prev;
    }
    a->in_flight--;
}

void sluice_rpc_async_free(sluice_rpc_async *a) {
    if (a == NULL) {
        return;
    }
    for (rpc_unary *u = a->head; u != NULL; u = u->next) {
        grpc_call_cancel(u->call, NULL);
    }
    grpc_completion_queue_shutdown(a->cq);
    grpc_event ev;
    while (
        (ev = grpc_completion_queue_next(a->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)).type !=
        GRPC_QUEUE_SHUTDOWN) {
        rpc_unary *u = ev.tag;
        async_unlink(a, u);
        unary_cleanup(u);
        free(u);
    }
    grpc_completion_queue_destroy(a->cq);
    free(a);
    grpc_shutdown();
}

int sluice_rpc_async_unary(sluice_rpc_async *a, sluice_rpc_channel *ch, const sluice_rpc_method *m,
                           const ProtobufCMessage *req, const sluice_rpc_call_opts *opts,
                           void *tag) {
    if (a == NULL) {
        return SLUICE_EINVAL;
    }
    int rc = check_unary(ch, m, req);
    if (rc != SLUICE_OK) {
        return rc;
    }
    if (a->in_flight >= SLUICE_RPC_ASYNC_MAX_IN_FLIGHT) {
        return SLUICE_ELIMIT;
    }
    rpc_unary *u = calloc(1, sizeof(*u));
    if (u == NULL) {
        return SLUICE_ENOMEM;
    }
    u->tag = tag;
    rc = unary_start(u, ch, m, req, opts, a->cq);
    if (rc != SLUICE_OK) {
        free(u);
        return rc;
    }
    u->next = a->head;
    if (a->head != NULL) {
        a->head->prev = u;
    }
    a->head = u;
    a->in_flight++;
    return SLUICE_OK;
}

int sluice_rpc_async_next(sluice_rpc_async *a, int timeout_ms, void **tag, ProtobufCMessage **resp,
                          sluice_rpc_status *status) {
    if (a == NULL || tag == NULL || resp == NULL || a->in_flight == 0) {
        return SLUICE_EINVAL;
    }
    grpc_event ev = grpc_completion_queue_next(a->cq, rpc_deadline_ms(timeout_ms), NULL);
    if (ev.type != GRPC_OP_COMPLETE) {
        return SLUICE_ETIMEDOUT; /* GRPC_QUEUE_TIMEOUT: shutdown only happens in _free */
    }
    rpc_unary *u = ev.tag;
    async_unlink(a, u);
    *tag = u->tag;
    int rc = unary_result(u, resp, status);
    free(u);
    return rc;
}

size_t sluice_rpc_async_in_flight(const sluice_rpc_async *a) {
    return a != NULL ? a->in_flight : 0;
}
