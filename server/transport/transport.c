/*
 * transport.c - the gRPC server: lifecycle, completion queue workers, method registry,
 * drain.
 *
 * Owns the grpc_server, one CQ_NEXT completion queue and n_workers threads that take its
 * events and hand them to the call state machine (call.c). TRANSPORT_REQUEST_SLOTS
 * grpc_server_request_call are posted at start and each arriving call re-posts one, so the
 * number waiting stays constant. The method registry is a flat array filled before start
 * and read-only afterwards. Drain: health NOT_SERVING (Watch streams told), stop
 * accepting, wait up to the grace period for every call to retire, cancel the rest, wait
 * again; `active` (calls and slots not yet retired) and the shutdown tag are what it waits
 * for. Bounds: message size (gRPC args), outbound messages per call (call.c). Clock: the
 * monotonic clock for the grace period only. gRPC's own log lines are routed into log.h.
 */
#include "server/transport/internal.h"

#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "server/common/log.h"
#include "server/common/secret.h"
#include "sluice/status.h"

#include <errno.h>
#include <grpc/grpc_security.h>
#include <grpc/support/log.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TRANSPORT_REQUEST_SLOTS 64
#define TRANSPORT_MAX_WORKERS 64
#define TRANSPORT_DEFAULT_MESSAGE (4u * 1024u * 1024u)
#define TRANSPORT_DEFAULT_OUTBOUND 1024u
#define TRANSPORT_MAX_PEM (1024u * 1024u)

/* ---- gRPC's log lines ------------------------------------------------------------------ */

/* gRPC's ERROR lines are mostly about peers (handshake failures, resets) that the server
 * survives, so they become warnings; our own errors stay distinguishable. gRPC filters by
 * GRPC_VERBOSITY (default ERROR) before calling this. */
static void grpc_log_hook(gpr_log_func_args *a) {
    log_level lv = a->severity == GPR_LOG_SEVERITY_ERROR  ? LOG_LEVEL_WARN
                   : a->severity == GPR_LOG_SEVERITY_INFO ? LOG_LEVEL_INFO
                                                          : LOG_LEVEL_DEBUG;
    if (!log_enabled(lv))
        return;
    const char *file = a->file ? strrchr(a->file, '/') : NULL;
    file = file ? file + 1 : (a->file ? a->file : "?");
    log_write(lv, "grpc", "%s:%d %s", file, a->line, a->message ? a->message : "");
}

/* ---- configuration --------------------------------------------------------------------- */

/* A PEM file (the key is a secret: read and later freed as one). */
static int read_pem(const char *path, char **out, char *err, size_t errlen) {
    size_t n;
    int rc = secret_read_file(path, TRANSPORT_MAX_PEM, out, &n, err, errlen);
    if (rc == SLUICE_OK && n == 0) {
        secret_free(*out, 0);
        *out = NULL;
        snprintf(err, errlen, "%s: empty file", path);
        rc = SLUICE_EINVAL;
    }
    return rc;
}

static int copy_config(transport *t, const transport_config *cfg, char *err, size_t errlen) {
    if (!cfg->listen_addr || !*cfg->listen_addr) {
        snprintf(err, errlen, "listen_addr is required");
        return SLUICE_EINVAL;
    }
    if (!cfg->tls_cert_file != !cfg->tls_key_file) {
        snprintf(err, errlen, "tls_cert_file and tls_key_file must be given together");
        return SLUICE_EINVAL;
    }
    t->listen_addr = xstrdup(cfg->listen_addr);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    t->n_workers = cfg->n_workers > 0 ? cfg->n_workers : (cores > 0 ? (int)cores : 2);
    if (t->n_workers > TRANSPORT_MAX_WORKERS)
        t->n_workers = TRANSPORT_MAX_WORKERS;
    t->max_message_bytes =
        cfg->max_message_bytes ? cfg->max_message_bytes : TRANSPORT_DEFAULT_MESSAGE;
    if (t->max_message_bytes > INT_MAX)
        t->max_message_bytes = INT_MAX;
    t->max_outbound =
        cfg->max_outbound_per_call ? cfg->max_outbound_per_call : TRANSPORT_DEFAULT_OUTBOUND;
    t->keepalive_time_ms = cfg->keepalive_time_ms;
    t->keepalive_timeout_ms = cfg->keepalive_timeout_ms;
    t->min_client_ping_interval_ms = cfg->min_client_ping_interval_ms;
    t->keepalive_permit_without_calls = cfg->keepalive_permit_without_calls;
    int rc = SLUICE_OK;
    if (cfg->tls_cert_file) {
        rc = read_pem(cfg->tls_cert_file, &t->tls_cert_pem, err, errlen);
        if (rc == SLUICE_OK)
            rc = read_pem(cfg->tls_key_file, &t->tls_key_pem, err, errlen);
    }
    if (rc == SLUICE_OK && cfg->tokens_file)
        rc = auth_load(cfg->tokens_file, &t->auth, err, errlen);
    return rc;
}

static void release_config(transport *t) {
    free(t->listen_addr);
    free(t->tls_cert_pem);
    if (t->tls_key_pem)
        secret_free(t->tls_key_pem, strlen(t->tls_key_pem));
    auth_free(t->auth);
    free(t->methods);
    health_free(t->health);
}

static int register_methods(transport *t, const sluice_rpc_service *svc,
                            const transport_handler *handlers, size_t n, bool exempt);

int transport_new(const transport_config *cfg, transport **out, char *err, size_t errlen) {
    if (!cfg || !out) {
        snprintf(err, errlen, "no configuration");
        return SLUICE_EINVAL;
    }
    transport *t = XNEW(transport);
    int rc = copy_config(t, cfg, err, errlen);
    if (rc != SLUICE_OK) {
        release_config(t);
        free(t);
        return rc;
    }
    t->health = health_new();
    size_t n_health;
    const transport_handler *hh = health_handlers(t->health, &n_health);
    register_methods(t, health_service(), hh, n_health, true);
    atomic_init(&t->active, 0);
    atomic_init(&t->accepting, false);
    atomic_init(&t->draining, false);
    pthread_mutex_init(&t->mu, NULL);
    clock_cond_init(&t->cond);
    t->shutdown_tag.kind = TTAG_SHUTDOWN;
    gpr_set_log_function(grpc_log_hook);
    grpc_init();
    *out = t;
    return SLUICE_OK;
}

/* ---- registry -------------------------------------------------------------------------- */

static bool method_in_service(const sluice_rpc_service *svc, const sluice_rpc_method *m) {
    for (size_t i = 0; i < svc->n_methods; i++) {
        if (&svc->methods[i] == m || strcmp(svc->methods[i].path, m->path) == 0)
            return true;
    }
    return false;
}

static int register_methods(transport *t, const sluice_rpc_service *svc,
                            const transport_handler *handlers, size_t n, bool exempt) {
    for (size_t i = 0; i < n; i++) {
        const transport_handler *h = &handlers[i];
        if (!h->method || !h->on_message || !method_in_service(svc, h->method))
            return SLUICE_EINVAL;
        grpc_slice path = grpc_slice_from_static_string(h->method->path);
        if (transport_find_method(t, &path))
            return SLUICE_EINVAL;
    }
    t->methods = xrealloc(t->methods, (t->n_methods + n) * sizeof *t->methods);
    for (size_t i = 0; i < n; i++) {
        t->methods[t->n_methods++] = (tmethod){
            .path = handlers[i].method->path,
            .path_len = strlen(handlers[i].method->path),
            .handler = &handlers[i],
            .auth_exempt = exempt,
        };
    }
    health_add_service(t->health, svc->name);
    return SLUICE_OK;
}

int transport_register(transport *t, const sluice_rpc_service *svc,
                       const transport_handler *handlers, size_t n_handlers) {
    if (!t || !svc || !handlers || n_handlers == 0 || t->phase != TRANSPORT_NEW)
        return SLUICE_EINVAL;
    return register_methods(t, svc, handlers, n_handlers, false);
}

const tmethod *transport_find_method(const transport *t, const grpc_slice *path) {
    size_t len = GRPC_SLICE_LENGTH(*path);
    const void *p = GRPC_SLICE_START_PTR(*path);
    for (size_t i = 0; i < t->n_methods; i++) {
        if (t->methods[i].path_len == len && memcmp(t->methods[i].path, p, len) == 0)
            return &t->methods[i];
    }
    return NULL;
}

/* ---- workers and slots ----------------------------------------------------------------- */

static void on_shutdown_tag(transport *t) {
    pthread_mutex_lock(&t->mu);
    t->shutdown_done = true;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->mu);
}

static void *worker_main(void *arg) {
    transport *t = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(t->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        ttag *tag = ev.tag;
        TTAG_ACQUIRE(tag);
        if (tag->kind == TTAG_SHUTDOWN)
            on_shutdown_tag(t);
        else
            call_on_tag(tag, ev.success != 0);
    }
    return NULL;
}

void transport_post_slot(transport *t) {
    if (atomic_load(&t->accepting))
        call_post_slot(t);
}

void transport_call_retired(transport *t) {
    if (atomic_fetch_sub(&t->active, 1) == 1 && atomic_load(&t->draining)) {
        pthread_mutex_lock(&t->mu);
        pthread_cond_broadcast(&t->cond);
        pthread_mutex_unlock(&t->mu);
    }
}

/* ---- start ----------------------------------------------------------------------------- */

static grpc_server_credentials *make_credentials(const transport *t) {
    if (!t->tls_cert_pem)
        return grpc_insecure_server_credentials_create();
    grpc_ssl_pem_key_cert_pair pair = {.private_key = t->tls_key_pem,
                                       .cert_chain = t->tls_cert_pem};
    return grpc_ssl_server_credentials_create(NULL, &pair, 1, 0, NULL);
}

static void destroy_cq(grpc_completion_queue *cq) {
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
}

static void add_int_arg(grpc_arg *args, size_t *n, const char *key, long v) {
    args[*n].type = GRPC_ARG_INTEGER;
    args[*n].key = (char *)key;
    args[(*n)++].value.integer = v > INT_MAX ? INT_MAX : (int)v;
}

/* The server's channel arguments: message limits, no SO_REUSEPORT, keepalive and the
 * client ping policy (0 leaves gRPC's default). Keepalive pings go on without data
 * (max_pings_without_data 0): a quiet stream is exactly what they are for. */
static size_t server_args(const transport *t, grpc_arg *args) {
    size_t n = 0;
    add_int_arg(args, &n, GRPC_ARG_ALLOW_REUSEPORT, 0);
    add_int_arg(args, &n, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, (long)t->max_message_bytes);
    add_int_arg(args, &n, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, (long)t->max_message_bytes);
    if (t->keepalive_time_ms) {
        add_int_arg(args, &n, GRPC_ARG_KEEPALIVE_TIME_MS, t->keepalive_time_ms);
        add_int_arg(args, &n, GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    }
    if (t->keepalive_timeout_ms)
        add_int_arg(args, &n, GRPC_ARG_KEEPALIVE_TIMEOUT_MS, t->keepalive_timeout_ms);
    if (t->min_client_ping_interval_ms)
        add_int_arg(args, &n, GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                    t->min_client_ping_interval_ms);
    add_int_arg(args, &n, GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
                t->keepalive_permit_without_calls);
    return n;
}

static int bind_server(transport *t, char *err, size_t errlen) {
    grpc_arg args[9];
    grpc_channel_args ca = {.num_args = server_args(t, args), .args = args};
    t->server = grpc_server_create(&ca, NULL);
    t->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(t->server, t->cq, NULL);
    grpc_server_credentials *cr = make_credentials(t);
    t->port = cr ? grpc_server_add_http2_port(t->server, t->listen_addr, cr) : 0;
    if (cr)
        grpc_server_credentials_release(cr);
    if (t->port > 0)
        return SLUICE_OK;
    snprintf(err, errlen, "cannot listen on %s (address in use, bad address or bad TLS key/cert)",
             t->listen_addr);
    grpc_server_destroy(t->server);
    t->server = NULL;
    destroy_cq(t->cq);
    t->cq = NULL;
    t->port = 0;
    return SLUICE_EIO;
}

int transport_start(transport *t, char *err, size_t errlen) {
    if (!t || t->phase != TRANSPORT_NEW) {
        snprintf(err, errlen, "transport already started");
        return SLUICE_EINVAL;
    }
    int rc = bind_server(t, err, errlen);
    if (rc != SLUICE_OK)
        return rc;
    grpc_server_start(t->server);
    t->phase = TRANSPORT_SERVING;
    t->workers = XNEWV(pthread_t, (size_t)t->n_workers);
    for (int i = 0; i < t->n_workers; i++) {
        if (pthread_create(&t->workers[i], NULL, worker_main, t) != 0) {
            LOG_ERROR("transport", "cannot start worker thread %d", i);
            abort();
        }
        char name[16];
        snprintf(name, sizeof name, "sluice-cq-%u", (unsigned)i % 100u);
        pthread_setname_np(t->workers[i], name);
        t->n_started_workers++;
    }
    atomic_store(&t->accepting, true);
    for (int i = 0; i < TRANSPORT_REQUEST_SLOTS; i++)
        call_post_slot(t);
    health_set_serving(t->health, true);
    LOG_INFO("transport", "listening on %s port %d (%s, auth %s, %d workers)", t->listen_addr,
             t->port, t->tls_cert_pem ? "tls" : "plaintext", t->auth ? "on" : "off", t->n_workers);
    return SLUICE_OK;
}

int transport_port(const transport *t) {
    return t ? t->port : 0;
}

void transport_set_serving(transport *t, bool serving) {
    health_set_serving(t->health, serving);
}

/* ---- drain and free -------------------------------------------------------------------- */

/* Waits until every call retired (and, with `with_shutdown`, the server reported its
 * shutdown), or until deadline (NULL = none). Returns true when that happened. */
static bool wait_idle(transport *t, bool with_shutdown, const struct timespec *deadline) {
    pthread_mutex_lock(&t->mu);
    for (;;) {
        bool idle = atomic_load(&t->active) == 0 && (!with_shutdown || t->shutdown_done);
        if (idle) {
            pthread_mutex_unlock(&t->mu);
            return true;
        }
        if (!deadline)
            pthread_cond_wait(&t->cond, &t->mu);
        else if (pthread_cond_timedwait(&t->cond, &t->mu, deadline) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&t->mu);
    return false;
}

/* The grace period is for calls, not connections: gRPC's shutdown tag also waits for idle
 * client connections to go away (seconds, at the client's pace), so once the calls are
 * done (or the grace is over) grpc_server_cancel_all_calls closes the connections too. */
void transport_drain(transport *t, uint32_t grace_ms) {
    if (!t || t->phase != TRANSPORT_SERVING) {
        if (t && t->phase == TRANSPORT_NEW)
            t->phase = TRANSPORT_DRAINED;
        return;
    }
    LOG_INFO("transport", "draining (grace %u ms)", grace_ms);
    health_drain(t->health);
    atomic_store(&t->accepting, false);
    atomic_store(&t->draining, true);
    TTAG_RELEASE(&t->shutdown_tag);
    grpc_server_shutdown_and_notify(t->server, t->cq, &t->shutdown_tag);
    struct timespec deadline = clock_deadline_after_ms(grace_ms);
    if (!wait_idle(t, false, &deadline))
        LOG_INFO("transport", "grace period over: cancelling %zu calls", atomic_load(&t->active));
    grpc_server_cancel_all_calls(t->server);
    wait_idle(t, true, NULL);
    t->phase = TRANSPORT_DRAINED;
    LOG_INFO("transport", "drained");
}

void transport_free(transport *t) {
    if (!t)
        return;
    if (t->phase == TRANSPORT_SERVING)
        transport_drain(t, 0);
    if (t->server)
        grpc_server_destroy(t->server);
    if (t->cq) {
        grpc_completion_queue_shutdown(t->cq);
        for (int i = 0; i < t->n_started_workers; i++)
            pthread_join(t->workers[i], NULL);
        grpc_completion_queue_destroy(t->cq);
    }
    free(t->workers);
    release_config(t);
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->mu);
    free(t);
    grpc_shutdown();
}
