/*
 * call.h - the per-call object shared by the call's own files (not for other modules).
 *
 * call.c runs the call's life: request slots, the state machine, the close and receive
 * sides, callbacks and retirement. outbound.c runs its send side: the bounded outbound
 * queue with one send batch in flight, the status, the writable watermark, and the
 * tcall_send / tcall_reply / tcall_finish API. Every *_locked function expects the call's
 * mutex held.
 */
#ifndef SLUICE_TRANSPORT_CALL_H
#define SLUICE_TRANSPORT_CALL_H

#include "server/transport/internal.h"

#include <stddef.h>

typedef enum tcall_state {
    TCALL_REQUESTED = 0, /* a request slot waiting in grpc_server_request_call */
    TCALL_REJECTED,      /* answered without a handler (unknown method, auth failure) */
    TCALL_OPEN,          /* handler attached; messages flow both ways */
    TCALL_FINISHING,     /* status requested: the queued messages, then the status */
    TCALL_FAILED,        /* a send failed (client gone); waiting for the close op */
    TCALL_DONE,          /* the close op reported; on_done delivered or about to be */
    TCALL_NSTATES,
} tcall_state;

typedef enum tcall_read {
    READ_IDLE = 0, /* no RECV_MESSAGE posted; the handler may ask for one */
    READ_PENDING,  /* one RECV_MESSAGE in flight or its message not yet delivered */
    READ_EOF,      /* half-closed, failed, or the single request of a unary call read */
} tcall_read;

/* Pending callbacks, delivered in this bit order (on_done always last). */
enum {
    EV_START = 1u << 0,
    EV_MESSAGE = 1u << 1,
    EV_HALF_CLOSE = 1u << 2,
    EV_WRITABLE = 1u << 3,
    EV_DONE = 1u << 4,
};

/* Outbound slots stored in the call itself: a unary reply needs no extra allocation. */
#define QUEUE_INLINE 2

struct tcall {
    transport *t;
    const tmethod *m;           /* NULL until matched; NULL for unknown methods */
    const transport_handler *h; /* set when OPEN */
    pthread_mutex_t mu;
    atomic_uint refs;
    _Atomic(void *) user;

    /* all below guarded by mu */
    tcall_state state;
    int ops;                       /* batches in flight + a running callback loop */
    unsigned events;               /* EV_* not yet delivered */
    bool dispatching;              /* a thread is running this call's callbacks */
    bool done_cancelled;           /* on_done's argument */
    ProtobufCMessage *pending_msg; /* EV_MESSAGE's message */
    tcall_read read;
    /* outbound ring; q[q_head] is in flight while msg_in_flight */
    grpc_byte_buffer **q;
    grpc_byte_buffer *q_inline[QUEUE_INLINE];
    size_t q_head, q_len, q_cap;
    size_t n_queued_total;
    uint64_t last_queued_ms; /* clock_now_ms() of the last message queued; 0 = none */
    bool send_in_flight;     /* the send tag is in use */
    bool msg_in_flight;      /* ...and that batch carries q[q_head] */
    bool status_started;
    bool over_watermark;
    grpc_status_code fin_code;
    char *fin_details;
    grpc_slice fin_slice;

    /* written by gRPC */
    int close_cancelled;
    grpc_byte_buffer *recv_bb;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;

    const char *tenant;
    ttag tag_new, tag_close, tag_recv, tag_send;
};

#define CALL_OF(tag, field) ((tcall *)((char *)(tag)-offsetof(tcall, field)))

/* ---- call.c ------------------------------------------------------------------------- */

/* Moves the call to state s; aborts on a transition the state machine does not allow. */
void call_set_state(tcall *c, tcall_state s);
/* True in OPEN and FINISHING: batches may still be started. */
bool call_live(const tcall *c);
/* Queues callbacks (EV_* bits) unless the call is DONE or has no handler. */
void call_queue_event_locked(tcall *c, unsigned ev);
/* Starts a batch on the call and counts it in c->ops. On failure (a state-machine bug)
 * logs, cancels the call and returns false. */
bool call_start_batch_locked(tcall *c, const grpc_op *ops, size_t n, ttag *tag);

/* ---- outbound.c --------------------------------------------------------------------- */

/* Starts the next send batch when none is in flight. */
void outbound_kick_locked(tcall *c);
/* Requests the final status after the queued messages (the call must be OPEN). */
void outbound_finish_locked(tcall *c, grpc_status_code code, const char *details);
/* Answers a call that has no handler: initial metadata and the status in one batch. */
void outbound_reject_locked(tcall *c, grpc_status_code code, const char *why);
/* Destroys queued messages, except the one a batch in flight carries. */
void outbound_drop_locked(tcall *c);
/* Handles the completion of a send batch: frees the message it carried, starts the next
 * batch, queues on_writable when the queue drained below the watermark. */
void outbound_on_send_locked(tcall *c, bool ok);

#endif
