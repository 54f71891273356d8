/*
 * internal.h - what the transport's own files (transport.c, call.c) share.
 *
 * Not for other modules: they see transport.h only. transport.c owns the server, the
 * completion queue, the worker threads, the method registry and drain; call.c owns the
 * per-call state machine. They meet here: call.c asks transport.c to resolve a method and
 * to re-post a request slot, and tells it when a call has retired (no gRPC operation
 * outstanding, on_done delivered), which is what transport_drain waits for.
 */
#ifndef SLUICE_TRANSPORT_INTERNAL_H
#define SLUICE_TRANSPORT_INTERNAL_H

#include "server/transport/auth.h"
#include "server/transport/health.h"
#include "server/transport/transport.h"

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdatomic.h>

/* ThreadSanitizer cannot see the happens-before edge through gRPC's completion queue
 * (gRPC and absl are not instrumented): whatever a thread wrote before handing a tag to
 * gRPC is visible to the worker that takes the tag back. These annotations tell it so;
 * they compile to nothing in other builds. */
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define TTAG_RELEASE(tag) __tsan_release(tag)
#define TTAG_ACQUIRE(tag) __tsan_acquire(tag)
#else
#define TTAG_RELEASE(tag) ((void)(tag))
#define TTAG_ACQUIRE(tag) ((void)(tag))
#endif

/* What a completion-queue tag stands for. Every tag handed to gRPC points at one of these,
 * embedded in the object it belongs to. */
typedef enum ttag_kind {
    TTAG_NEW = 1,  /* grpc_server_request_call matched a call (tcall) */
    TTAG_CLOSE,    /* RECV_CLOSE_ON_SERVER finished: the call is over (tcall) */
    TTAG_RECV,     /* a RECV_MESSAGE batch finished (tcall) */
    TTAG_SEND,     /* a SEND_MESSAGE and/or SEND_STATUS batch finished (tcall) */
    TTAG_SHUTDOWN, /* grpc_server_shutdown_and_notify finished (transport) */
} ttag_kind;

typedef struct ttag {
    ttag_kind kind;
} ttag;

/* One registered method. */
typedef struct tmethod {
    const char *path;
    size_t path_len;
    const transport_handler *handler;
    bool auth_exempt; /* grpc.health.v1.Health */
} tmethod;

typedef enum transport_phase {
    TRANSPORT_NEW = 0, /* created; registering */
    TRANSPORT_SERVING, /* started */
    TRANSPORT_DRAINED, /* transport_drain finished */
} transport_phase;

struct transport {
    /* configuration (copied) */
    char *listen_addr;
    int n_workers;
    size_t max_message_bytes;
    size_t max_outbound;
    uint32_t keepalive_time_ms, keepalive_timeout_ms, min_client_ping_interval_ms;
    bool keepalive_permit_without_calls;
    char *tls_cert_pem;
    char *tls_key_pem;
    auth *auth; /* NULL = auth off */

    tmethod *methods;
    size_t n_methods;
    health *health;

    grpc_server *server;
    grpc_completion_queue *cq;
    pthread_t *workers;
    int n_started_workers;
    int port;
    transport_phase phase;

    /* Calls not yet retired, request slots included. Drain waits for 0. */
    atomic_size_t active;
    atomic_bool accepting; /* re-post request slots */
    atomic_bool draining;  /* someone may wait on `cond` */
    pthread_mutex_t mu;    /* guards shutdown_done; with cond, the drain wait */
    pthread_cond_t cond;
    bool shutdown_done;
    ttag shutdown_tag;
};

/* ---- transport.c, for call.c -------------------------------------------------------- */

/* Finds the registered method for a wire path; NULL when unknown. Any thread. */
const tmethod *transport_find_method(const transport *t, const grpc_slice *path);
/* Posts one more grpc_server_request_call unless the transport stopped accepting. */
void transport_post_slot(transport *t);
/* A call or slot retired: no gRPC operation outstanding and no callback to come. */
void transport_call_retired(transport *t);

/* ---- call.c, for transport.c -------------------------------------------------------- */

/* Allocates a request slot (counted in t->active) and posts grpc_server_request_call for
 * it. Returns SLUICE_OK or SLUICE_EIO (the server refused: it is shutting down). */
int call_post_slot(transport *t);
/* Handles one completion of a tag that belongs to a call. Worker threads. */
void call_on_tag(ttag *tag, bool ok);

#endif
