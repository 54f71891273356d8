/*
 * health.c - grpc.health.v1.Health served through the transport's handler interface.
 *
 * Owns the set of known service names, one serving flag and the list of open Watch calls.
 * Everything is guarded by one mutex, which is held while sending to Watch calls; a
 * call's mutex is therefore always taken after it, and the transport never runs a
 * callback with a call mutex held, so on_done (which takes this mutex to unlink a Watch)
 * cannot deadlock against health_set_serving. A Watch is unlinked in on_done, so the list
 * only ever holds calls whose on_done has not yet returned: no extra references needed.
 * Bounds: a Watch whose client stops reading hits the call's outbound bound; the change is
 * then re-sent from on_writable (only the latest status matters).
 */
#include "server/transport/health.h"

#include "grpc/health/v1/health.pb-c.h"
#include "grpc/health/v1/health.sluice.h"
#include "server/common/alloc.h"
#include "server/common/log.h"
#include "sluice/status.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef Grpc__Health__V1__HealthCheckResponse__ServingStatus serving_status;

#define ST_SERVING GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
#define ST_NOT_SERVING GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
#define ST_UNKNOWN GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN

typedef struct watch {
    tcall *call;
    char *service;
    int last_sent; /* serving_status last queued, -1 before the first */
    struct watch *next;
} watch;

struct health {
    pthread_mutex_t mu;
    char **names;
    size_t n_names;
    bool serving;
    bool draining;
    watch *watches;
    transport_handler handlers[2];
};

static bool known(const health *h, const char *name) {
    for (size_t i = 0; i < h->n_names; i++) {
        if (strcmp(h->names[i], name) == 0)
            return true;
    }
    return false;
}

static serving_status status_of(const health *h, const char *name) {
    if (!known(h, name))
        return ST_UNKNOWN;
    return h->serving ? ST_SERVING : ST_NOT_SERVING;
}

/* Queues the current status on a Watch if it differs from what it was last sent. */
static void watch_push_locked(health *h, watch *w) {
    serving_status st = status_of(h, w->service);
    if ((int)st == w->last_sent)
        return;
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    resp.status = st;
    int rc = tcall_send(w->call, &resp.base);
    if (rc == SLUICE_OK)
        w->last_sent = (int)st;
    else if (rc != SLUICE_ELIMIT && rc != SLUICE_ECLOSED)
        LOG_WARN("transport", "health watch send failed: %s", sluice_strerror(rc));
}

static void watch_end_locked(watch *w) {
    tcall_finish(w->call, GRPC_STATUS_UNAVAILABLE, "server is shutting down");
}

static void check_on_message(tcall *call, ProtobufCMessage *msg, void *ctx) {
    health *h = ctx;
    Grpc__Health__V1__HealthCheckRequest *req = (Grpc__Health__V1__HealthCheckRequest *)msg;
    pthread_mutex_lock(&h->mu);
    serving_status st = status_of(h, req->service);
    pthread_mutex_unlock(&h->mu);
    protobuf_c_message_free_unpacked(msg, NULL);
    if (st == ST_UNKNOWN) {
        tcall_finish(call, GRPC_STATUS_NOT_FOUND, "unknown service");
        return;
    }
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    resp.status = st;
    tcall_reply(call, &resp.base);
}

static void watch_on_message(tcall *call, ProtobufCMessage *msg, void *ctx) {
    health *h = ctx;
    Grpc__Health__V1__HealthCheckRequest *req = (Grpc__Health__V1__HealthCheckRequest *)msg;
    watch *w = XNEW(watch);
    w->call = call;
    w->service = xstrdup(req->service);
    w->last_sent = -1;
    protobuf_c_message_free_unpacked(msg, NULL);
    tcall_set_user(call, w);
    pthread_mutex_lock(&h->mu);
    w->next = h->watches;
    h->watches = w;
    watch_push_locked(h, w);
    if (h->draining)
        watch_end_locked(w);
    pthread_mutex_unlock(&h->mu);
}

static void watch_on_writable(tcall *call, void *ctx) {
    health *h = ctx;
    pthread_mutex_lock(&h->mu);
    watch *w = tcall_user(call);
    if (w)
        watch_push_locked(h, w);
    pthread_mutex_unlock(&h->mu);
}

static void watch_on_done(tcall *call, bool cancelled, void *ctx) {
    health *h = ctx;
    watch *w = tcall_user(call);
    if (!w)
        return;
    pthread_mutex_lock(&h->mu);
    for (watch **p = &h->watches; *p; p = &(*p)->next) {
        if (*p == w) {
            *p = w->next;
            break;
        }
    }
    pthread_mutex_unlock(&h->mu);
    tcall_set_user(call, NULL);
    free(w->service);
    free(w);
}

health *health_new(void) {
    health *h = XNEW(health);
    pthread_mutex_init(&h->mu, NULL);
    health_add_service(h, "");
    h->handlers[0] = (transport_handler){
        .method = &grpc__health__v1__health__check__method,
        .on_message = check_on_message,
        .ctx = h,
    };
    h->handlers[1] = (transport_handler){
        .method = &grpc__health__v1__health__watch__method,
        .on_message = watch_on_message,
        .on_writable = watch_on_writable,
        .on_done = watch_on_done,
        .ctx = h,
    };
    return h;
}

void health_free(health *h) {
    if (!h)
        return;
    for (size_t i = 0; i < h->n_names; i++)
        free(h->names[i]);
    free(h->names);
    /* Watches unlink themselves in on_done; after drain none is left. */
    pthread_mutex_destroy(&h->mu);
    free(h);
}

void health_add_service(health *h, const char *name) {
    pthread_mutex_lock(&h->mu);
    if (!known(h, name)) {
        h->names = xrealloc(h->names, (h->n_names + 1) * sizeof *h->names);
        h->names[h->n_names++] = xstrdup(name);
    }
    pthread_mutex_unlock(&h->mu);
}

const transport_handler *health_handlers(health *h, size_t *n) {
    *n = sizeof h->handlers / sizeof h->handlers[0];
    return h->handlers;
}

const sluice_rpc_service *health_service(void) {
    return &grpc__health__v1__health__rpc_service;
}

void health_set_serving(health *h, bool serving) {
    pthread_mutex_lock(&h->mu);
    if (h->draining)
        serving = false;
    if (h->serving != serving) {
        h->serving = serving;
        LOG_INFO("transport", "health: %s", serving ? "SERVING" : "NOT_SERVING");
        for (watch *w = h->watches; w; w = w->next)
            watch_push_locked(h, w);
    }
    pthread_mutex_unlock(&h->mu);
}

void health_drain(health *h) {
    health_set_serving(h, false);
    pthread_mutex_lock(&h->mu);
    h->draining = true;
    for (watch *w = h->watches; w; w = w->next)
        watch_end_locked(w);
    pthread_mutex_unlock(&h->mu);
}
