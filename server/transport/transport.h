/*
 * transport.h - sluiced's gRPC server transport over the gRPC C core.
 *
 * Owns the grpc_server, one completion queue shared by N worker threads, and a per-call
 * state machine. Services register handler tables built from the generated
 * sluice_rpc_method tables; the transport unpacks requests (refusing strings that are not
 * UTF-8), packs responses, keeps one SEND_MESSAGE in flight per call behind a bounded
 * outbound queue, sees cancellation and deadlines from the start of every call
 * (RECV_CLOSE_ON_SERVER is posted first), answers UNIMPLEMENTED for unknown methods, serves
 * grpc.health.v1.Health (Check and Watch), enforces optional bearer-token auth (tokens
 * file; health is exempt) and optional TLS.
 *
 * Threads: callbacks run on the transport's worker threads and must not block. The
 * tcall_* functions below may be called from any thread (the dispatcher thread answers
 * calls directly); they are serialised per call by the call's own mutex, and callbacks are
 * never invoked with that mutex held. Callbacks of one call never run concurrently and
 * arrive in order (on_start, messages, on_half_close; on_done always last), so per-call
 * handler state needs no lock of its own against the transport.
 *
 * Signals: the process must block SIGINT/SIGTERM (pthread_sigmask) before transport_new,
 * which calls grpc_init, so that gRPC's threads inherit the mask; main then takes them
 * with sigwait and calls transport_drain. Never drain from a signal handler.
 *
 * Logging: gRPC's own log lines (gpr_log, filtered by GRPC_VERBOSITY) are routed into
 * server/common/log.h under module "grpc" (gRPC ERROR -> warn, INFO -> info, DEBUG ->
 * debug).
 */
#ifndef SLUICE_TRANSPORT_H
#define SLUICE_TRANSPORT_H

#include "client/rpc/rpc_method.h"

#include <grpc/status.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct transport transport;
typedef struct tcall tcall;

typedef struct transport_config {
    /* "host:port"; port 0 picks a free port (read it back with transport_port). */
    const char *listen_addr;
    /* Completion-queue worker threads; 0 = number of cores (at most 64). */
    int n_workers;
    /* Largest message received or sent, in bytes; 0 = 4 MiB (at most INT_MAX). A bigger
     * request fails with RESOURCE_EXHAUSTED and the server keeps serving. */
    size_t max_message_bytes;
    /* Messages queued for sending on one call before tcall_send reports SLUICE_ELIMIT;
     * 0 = 1024. */
    size_t max_outbound_per_call;
    /* PEM files for TLS; both NULL = plaintext. */
    const char *tls_cert_file;
    const char *tls_key_file;
    /* Bearer tokens file, NULL = auth off. One "<tenant> <token>" pair per line; blank
     * lines and lines starting with '#' are ignored. With auth on, every RPC except
     * grpc.health.v1.Health answers UNAUTHENTICATED unless the request carries
     * "authorization: Bearer <token>" for a listed token. */
    const char *tokens_file;
    /* Server keepalive: a connection is pinged after keepalive_time_ms without activity
     * (0 = gRPC's default, two hours) and closed when the ping is not acknowledged within
     * keepalive_timeout_ms (0 = gRPC's default, 20 s), so a vanished client's calls end. */
    uint32_t keepalive_time_ms;
    uint32_t keepalive_timeout_ms;
    /* Ping policy: a client ping arriving less than this after the previous one, while the
     * server sent nothing, is a strike; after two strikes gRPC closes the connection with
     * GOAWAY "too_many_pings" (0 = gRPC's default, 5 minutes). */
    uint32_t min_client_ping_interval_ms;
    /* Accept client pings (and send keepalive pings) on connections without a call open;
     * false: gRPC's default, a ping there more often than every two hours is a strike. */
    bool keepalive_permit_without_calls;
} transport_config;

/* Handler of one method. Every callback gets the handler's ctx. */
typedef struct transport_handler {
    const sluice_rpc_method *method;
    /* A call arrived (auth already checked). Optional. */
    void (*on_start)(tcall *call, void *ctx);
    /* A request message arrived; the handler takes ownership of msg (free it with
     * protobuf_c_message_free_unpacked(msg, NULL)). For unary and server-streaming methods
     * it is called exactly once, followed by on_half_close. For client-streaming and bidi
     * methods the transport reads the first message by itself and every further one only
     * after the handler calls tcall_read_next (flow control: a handler that stops asking
     * stops the client). A request that does not decode, or a unary/server-streaming call
     * that half-closes without one, is answered INVALID_ARGUMENT by the transport (the
     * handler then sees only on_done). So is a request holding a string field that is not
     * valid UTF-8 (proto3 forbids it, protobuf-c does not check): the status names the
     * field, e.g. "prompts[3].custom_id: not valid UTF-8 (byte 0 is 0xff)" (msgcheck.h). */
    void (*on_message)(tcall *call, ProtobufCMessage *msg, void *ctx);
    /* The client half-closed: no more messages will arrive. Optional. */
    void (*on_half_close)(tcall *call, void *ctx);
    /* The outbound queue, which had reached the writable watermark (half of
     * max_outbound_per_call), drained below it; also each time a sent message leaves it
     * empty (for handlers that pace their reads by what they have queued). Optional; for
     * backpressure. */
    void (*on_writable)(tcall *call, void *ctx);
    /* The call is over: its status was sent (cancelled=false), or the client cancelled,
     * the deadline passed, or the server cancelled it at shutdown (cancelled=true).
     * Called exactly once per call that reached on_start, after which only
     * tcall_unref/tcall_user may be used by the handler on it. Optional (a handler that
     * keeps nothing per call needs none). */
    void (*on_done)(tcall *call, bool cancelled, void *ctx);
    void *ctx;
} transport_handler;

/* Creates a transport. Calls grpc_init (balanced by transport_free). Returns SLUICE_OK, or
 * SLUICE_EINVAL/SLUICE_EIO with a message in err (unreadable TLS or tokens files, ...).
 * Thread: main, before transport_start. */
int transport_new(const transport_config *cfg, transport **out, char *err, size_t errlen);

/* Registers handlers for some methods of a service; the service is reported SERVING by
 * the health service. The table and handlers must outlive the transport (borrowed).
 * Call before transport_start. Returns SLUICE_OK or SLUICE_EINVAL. */
int transport_register(transport *t, const sluice_rpc_service *svc,
                       const transport_handler *handlers, size_t n_handlers);

/* Binds, starts the workers and starts serving (health SERVING). Returns SLUICE_OK or
 * SLUICE_EIO with a message (address in use, bad TLS material). */
int transport_start(transport *t, char *err, size_t errlen);

/* The bound port (valid after transport_start). */
int transport_port(const transport *t);

/* Sets the health status of every registered service and of "" (SERVING or
 * NOT_SERVING); Watch streams are told. Any thread. */
void transport_set_serving(transport *t, bool serving);

/* Graceful drain: health turns NOT_SERVING (Watch streams are sent NOT_SERVING, then end
 * with UNAVAILABLE), the server stops accepting calls, in-flight calls get up to grace_ms
 * to finish, then the rest are cancelled (their on_done runs with cancelled=true). It
 * waits for calls, not for idle client connections: once the calls are done it closes
 * the connections. Returns when every call is done. Call from main, once. After it
 * returns no handler callback runs again and no call holds a gRPC object any more
 * (tcall_send on a call still referenced returns SLUICE_ECLOSED without touching gRPC);
 * other threads must stop calling tcall_* and drop their references before
 * transport_free. */
void transport_drain(transport *t, uint32_t grace_ms);

/* Stops the workers, destroys the server and the queue, calls grpc_shutdown. Drains with
 * grace 0 first if transport_drain was not called. NULL-safe. Thread: main. */
void transport_free(transport *t);

/* ---- calls -------------------------------------------------------------------------- */

/* Keeps a call alive beyond on_done (for another thread that will answer it). Any thread.
 * The last tcall_unref frees it. */
void tcall_ref(tcall *call);
void tcall_unref(tcall *call);

/* Handler-private pointer, NULL until set. The transport never frees it. */
void tcall_set_user(tcall *call, void *user);
void *tcall_user(const tcall *call);

/* The caller's tenant: the name bound to its bearer token, or "" with auth off. Valid
 * for the call's life. */
const char *tcall_tenant(const tcall *call);

/* Queues a response message (packed now; the caller keeps msg). Returns SLUICE_OK,
 * SLUICE_ELIMIT when max_outbound_per_call messages are already queued, SLUICE_ECLOSED
 * when the call is over or finishing, SLUICE_EINVAL when msg is not the method's output
 * type or a unary method already has its response. Any thread. */
int tcall_send(tcall *call, const ProtobufCMessage *msg);
/* Messages queued and not yet sent (including the one in flight). */
size_t tcall_outbound_pending(const tcall *call);
/* When the last message was queued on the call (server/common/clock.h clock_now_ms()), 0
 * when none was: what stream heartbeats measure silence from. Any thread. */
uint64_t tcall_last_queued_ms(const tcall *call);
/* Ends the call with a status once every queued message is sent. `details` may be NULL
 * (copied). Returns SLUICE_OK or SLUICE_ECLOSED. Any thread. */
int tcall_finish(tcall *call, grpc_status_code code, const char *details);
/* tcall_send + tcall_finish(GRPC_STATUS_OK): the unary reply. */
int tcall_reply(tcall *call, const ProtobufCMessage *msg);
/* Asks for the next request message of a client-streaming or bidi call (see
 * on_message). Returns SLUICE_OK, SLUICE_EBUSY if a read is already pending (or its
 * message not yet delivered), or SLUICE_ECLOSED after half-close or end (always, for
 * unary and server-streaming calls once their request was read). Any thread. */
int tcall_read_next(tcall *call);

#endif
