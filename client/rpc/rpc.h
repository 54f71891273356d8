/*
 * rpc.h - the client call runtime that protoc-gen-sluice's typed stubs drive.
 *
 * A thin, generic layer over the gRPC C core: a channel (target, TLS or plaintext,
 * per-call metadata such as a bearer token, message size limit) and calls of the four
 * kinds described by a sluice_rpc_method (rpc_method.h). It packs and unpacks messages
 * with the method's protobuf-c descriptors, so the generated stubs contain no marshalling
 * of their own.
 *
 * A call has its own completion queue. It can be driven two ways:
 *  - blocking: sluice_rpc_call_write / _read / _finish wait for their own operation;
 *  - event-driven: start a write and a read together (sluice_rpc_call_start_write,
 *    sluice_rpc_call_start_read) and take completions with sluice_rpc_call_next. A bidi
 *    client must keep a read pending while it writes, or a server applying backpressure
 *    and a client blocked in write wait on each other forever.
 * The two styles may be mixed: a blocking wait that sees the other operation complete
 * keeps that completion for the next call that asks for it.
 *
 * Errors: functions return SLUICE_OK or a negative sluice_status; the gRPC status of a
 * finished call is in sluice_rpc_status (code + details). Nothing here prints or aborts.
 *
 * Thread safety: a channel may be shared by any number of threads. A call belongs to one
 * thread at a time, except sluice_rpc_call_cancel, which any thread may call.
 */
#ifndef SLUICE_RPC_H
#define SLUICE_RPC_H

#include "client/rpc/rpc_method.h"
#include "sluice/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sluice_rpc_channel sluice_rpc_channel;
typedef struct sluice_rpc_call sluice_rpc_call;

typedef struct sluice_rpc_channel_opts {
    /* PEM root certificates to verify the server; NULL with use_tls = system roots. */
    const char *tls_root_certs_pem;
    /* Use TLS (default plaintext). */
    bool use_tls;
    /* Override the name checked against the server certificate (tests); may be NULL. */
    const char *tls_server_name;
    /* Bearer token sent as "authorization: Bearer <token>" on every call; may be NULL. */
    const char *bearer_token;
    /* Largest message sent or received, bytes; 0 = 4 MiB; above INT_MAX gives
     * SLUICE_EINVAL. Exceeding it fails the call with RESOURCE_EXHAUSTED. */
    size_t max_message_bytes;
    /* Keepalive pings while calls are open: after keepalive_time_ms without activity
     * (0 = none), the connection dropped when one is not acknowledged within
     * keepalive_timeout_ms (0 = gRPC's 20 s). They go on however long a call stays quiet
     * (no cap on pings without data). */
    uint32_t keepalive_time_ms;
    uint32_t keepalive_timeout_ms;
} sluice_rpc_channel_opts;

/* The final status of a call: a grpc_status_code value and its details text. */
typedef struct sluice_rpc_status {
    int code;          /* GRPC_STATUS_OK (0) ... */
    char details[512]; /* NUL-terminated, possibly truncated */
} sluice_rpc_status;

/* Per-call options. */
typedef struct sluice_rpc_call_opts {
    /* Deadline relative to the call's start in milliseconds; 0 = none. */
    uint32_t timeout_ms;
} sluice_rpc_call_opts;

/* Creates a channel to `target` ("host:port"). opts may be NULL (plaintext, no token).
 * Strings in opts are copied. Calls grpc_init (balanced by _free). Returns SLUICE_OK,
 * SLUICE_EINVAL or SLUICE_ENOMEM. The channel connects lazily. Any thread. */
int sluice_rpc_channel_new(const char *target, const sluice_rpc_channel_opts *opts,
                           sluice_rpc_channel **out);
/* Frees a channel. Every call on it must have been freed first. NULL-safe. */
void sluice_rpc_channel_free(sluice_rpc_channel *ch);

/* Maps a gRPC status code to a sluice_status (OK -> SLUICE_OK, NOT_FOUND ->
 * SLUICE_ENOTFOUND, ...). */
int sluice_rpc_status_to_error(int grpc_code);

/* ---- unary (the whole call in one function) ----------------------------------------- */

/* Performs a unary call. On SLUICE_OK *resp holds the response (free with
 * protobuf_c_message_free_unpacked(*resp, NULL)). On a non-OK gRPC status returns
 * sluice_rpc_status_to_error(code) and fills *status (status may be NULL).
 * Local errors: SLUICE_EINVAL (NULL argument, not a unary method, req not of the
 * method's input type), SLUICE_ENOMEM; *status then has code GRPC_STATUS_UNKNOWN and the
 * error's name as details. An OK status without a decodable response gives SLUICE_EPROTO
 * (status OK). Blocks the calling thread until the call ends; any thread. */
int sluice_rpc_unary(sluice_rpc_channel *ch, const sluice_rpc_method *m,
                     const ProtobufCMessage *req, ProtobufCMessage **resp,
                     const sluice_rpc_call_opts *opts, sluice_rpc_status *status);

/* ---- many unary calls in flight from one thread ------------------------------------- */

/* A completion queue for unary calls started without waiting: start any number with
 * sluice_rpc_async_unary, collect them in completion order with sluice_rpc_async_next.
 * Belongs to one thread. The channels it is used with must outlive its calls. */
typedef struct sluice_rpc_async sluice_rpc_async;

/* Most calls one queue keeps in flight; one more gives SLUICE_ELIMIT. */
#define SLUICE_RPC_ASYNC_MAX_IN_FLIGHT 4096

/* Creates a queue (calls grpc_init, balanced by _free). SLUICE_OK, SLUICE_EINVAL or
 * SLUICE_ENOMEM. */
int sluice_rpc_async_new(sluice_rpc_async **out);
/* Frees the queue, cancelling and draining calls still in flight. NULL-safe. */
void sluice_rpc_async_free(sluice_rpc_async *a);
/* Starts a unary call; `tag` comes back from _next with its result. req is packed before
 * this returns (the caller keeps it). SLUICE_OK, SLUICE_EINVAL (as sluice_rpc_unary),
 * SLUICE_ELIMIT (SLUICE_RPC_ASYNC_MAX_IN_FLIGHT reached) or SLUICE_ENOMEM. */
int sluice_rpc_async_unary(sluice_rpc_async *a, sluice_rpc_channel *ch, const sluice_rpc_method *m,
                           const ProtobufCMessage *req, const sluice_rpc_call_opts *opts,
                           void *tag);
/* Waits up to timeout_ms (negative = forever) for one call to finish. Returns SLUICE_OK
 * with *tag, *resp (caller frees; NULL unless the status is OK) and *status filled;
 * SLUICE_ETIMEDOUT when none finished in time; SLUICE_EINVAL when none is in flight.
 * SLUICE_EPROTO / SLUICE_ENOMEM: a call finished with an OK status but its response could
 * not be decoded; *tag and *status are filled and the call is no longer in flight.
 * status may be NULL. */
int sluice_rpc_async_next(sluice_rpc_async *a, int timeout_ms, void **tag, ProtobufCMessage **resp,
                          sluice_rpc_status *status);
/* Calls started and not yet returned by _next. */
size_t sluice_rpc_async_in_flight(const sluice_rpc_async *a);

/* ---- streaming calls ---------------------------------------------------------------- */

/* Starts a call of any streaming kind. For server-streaming methods `req` is the single
 * request (sent and half-closed at once); for client-streaming and bidi methods `req`
 * must be NULL and messages are sent with _write. Free the call with
 * sluice_rpc_call_free. Returns SLUICE_OK, SLUICE_EINVAL (wrong kind or message type) or
 * SLUICE_ENOMEM. Does not wait for the connection: a call that cannot be made fails in
 * its first wait, and _finish gives the status. *out belongs to the calling thread. */
int sluice_rpc_call_start(sluice_rpc_channel *ch, const sluice_rpc_method *m,
                          const ProtobufCMessage *req, const sluice_rpc_call_opts *opts,
                          sluice_rpc_call **out);

/* Sends one message and waits until it is written. Returns SLUICE_OK, SLUICE_ECLOSED if
 * the call is over (read the status with _finish), SLUICE_EBUSY if a write is pending,
 * SLUICE_EINVAL (not a client- or bidi-streaming call, msg of the wrong type). msg is
 * packed before this returns (the caller keeps it). */
int sluice_rpc_call_write(sluice_rpc_call *call, const ProtobufCMessage *msg);
/* Half-closes the sending side (no more writes). Waits for it. SLUICE_OK (also when
 * already closed), SLUICE_EBUSY while a started write has not been reported by _next. */
int sluice_rpc_call_close_send(sluice_rpc_call *call);
/* Waits for the next message. SLUICE_OK with *msg set (free with
 * protobuf_c_message_free_unpacked), SLUICE_EEOF at the end of the stream (then call
 * _finish), SLUICE_EPROTO for an undecodable message. Also SLUICE_EINVAL (not a server- or
 * bidi-streaming call) and SLUICE_EBUSY (a read started with _start_read is pending). */
int sluice_rpc_call_read(sluice_rpc_call *call, ProtobufCMessage **msg);
/* Waits for the final status. For client-streaming methods *resp receives the single
 * response (may be NULL for other kinds). Returns sluice_rpc_status_to_error(code).
 * Half-closes first if needed; messages not read yet are read and discarded. Returns
 * SLUICE_EBUSY while a started write or read has not been reported by _next, and
 * SLUICE_EPROTO when an OK status came without a decodable client-streaming response.
 * On SLUICE_EINVAL (NULL call) or SLUICE_EBUSY *status is a local one (code UNKNOWN).
 * May be called again: it returns the same status (and no response). */
int sluice_rpc_call_finish(sluice_rpc_call *call, ProtobufCMessage **resp,
                           sluice_rpc_status *status);
/* Cancels the call (the server sees it; the status becomes CANCELLED). Any thread. */
void sluice_rpc_call_cancel(sluice_rpc_call *call);
/* Frees the call, cancelling it first if it has not finished. NULL-safe. */
void sluice_rpc_call_free(sluice_rpc_call *call);
/* SLUICE_OK when `call` is a call of method m, else SLUICE_EINVAL (also for NULL). The
 * generated stubs use it so that a typed stub never decodes another method's messages. */
int sluice_rpc_call_check(const sluice_rpc_call *call, const sluice_rpc_method *m);

/* ---- event-driven use of a streaming call ------------------------------------------- */

typedef enum sluice_rpc_event_kind {
    SLUICE_RPC_EVENT_NONE = 0,   /* timed out: nothing completed */
    SLUICE_RPC_EVENT_WRITE_DONE, /* the pending write finished (ok tells if it was sent) */
    SLUICE_RPC_EVENT_READ_DONE,  /* the pending read finished: msg, or NULL at end */
} sluice_rpc_event_kind;

typedef struct sluice_rpc_event {
    sluice_rpc_event_kind kind;
    bool ok;               /* WRITE_DONE: sent; READ_DONE: a message or a clean end */
    ProtobufCMessage *msg; /* READ_DONE: owned by the caller (free it); NULL at end */
} sluice_rpc_event;

/* Starts sending a message without waiting. At most one write may be pending. Returns
 * SLUICE_OK, SLUICE_EBUSY or SLUICE_ECLOSED. msg is packed before this returns (the caller
 * keeps it). */
int sluice_rpc_call_start_write(sluice_rpc_call *call, const ProtobufCMessage *msg);
/* Starts waiting for a message without blocking. At most one read may be pending.
 * SLUICE_OK, SLUICE_EBUSY, SLUICE_EEOF (the stream already ended), SLUICE_EINVAL. */
int sluice_rpc_call_start_read(sluice_rpc_call *call);
/* Waits up to timeout_ms (negative = forever) for the next completion of a started write
 * or read and describes it in *ev. Returns SLUICE_OK (ev->kind NONE on timeout),
 * SLUICE_EINVAL when nothing is pending, or SLUICE_EPROTO for an undecodable message
 * (then ev->kind is READ_DONE with ok false and msg NULL; later reads may go on).
 * Completions are reported in the order they happened. READ_DONE with ok true and msg
 * NULL is the end of the stream, ok false a failed call: read its status with _finish.
 * WRITE_DONE with ok false means the call is over (later writes give SLUICE_ECLOSED). */
int sluice_rpc_call_next(sluice_rpc_call *call, int timeout_ms, sluice_rpc_event *ev);
/* True while a write / read started with _start_* has not been reported by _next. */
bool sluice_rpc_call_write_pending(const sluice_rpc_call *call);
bool sluice_rpc_call_read_pending(const sluice_rpc_call *call);

#endif
