/* The canned sluice.v1.Sluice server (see canned_sluice.h). */
#include "e2e/canned_sluice.h"

#include "server/common/timers.h"
#include "server/transport/transport.h"
#include "sluice/status.h"
#include "sluice/v1/sluice.sluice.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STREAM 16

struct canned_sluice {
    transport *t;
    timers *tm;
    char target[64];
    transport_handler handlers[3];
    pthread_mutex_t mu; /* guards everything below */
    const Sluice__V1__WaitResponse *wait;
    uint32_t wait_delay_ms;
    Sluice__V1__TaskResult *stream[MAX_STREAM];
    size_t n_stream;
    unsigned waits;
};

static void open_session(tcall *call, ProtobufCMessage *msg, void *ctx) {
    protobuf_c_message_free_unpacked(msg, NULL);
    Sluice__V1__OpenSessionResponse resp = SLUICE__V1__OPEN_SESSION_RESPONSE__INIT;
    resp.session_id = "local:s1";
    tcall_reply(call, &resp.base);
}

typedef struct late {
    canned_sluice *c;
    tcall *call;
} late;

static void answer_wait(void *arg) {
    late *l = arg;
    pthread_mutex_lock(&l->c->mu);
    if (l->c->wait)
        tcall_reply(l->call, &l->c->wait->base); /* packed now */
    else
        tcall_finish(l->call, GRPC_STATUS_UNIMPLEMENTED, "no canned Wait answer");
    pthread_mutex_unlock(&l->c->mu);
    tcall_unref(l->call);
    free(l);
}

static void wait_rpc(tcall *call, ProtobufCMessage *msg, void *ctx) {
    canned_sluice *c = ctx;
    protobuf_c_message_free_unpacked(msg, NULL);
    late *l = calloc(1, sizeof *l);
    l->c = c;
    l->call = call;
    tcall_ref(call);
    pthread_mutex_lock(&c->mu);
    c->waits++;
    uint32_t delay = c->wait_delay_ms;
    pthread_mutex_unlock(&c->mu);
    timers_add(c->tm, delay, answer_wait, l);
}

static void as_completed(tcall *call, ProtobufCMessage *msg, void *ctx) {
    canned_sluice *c = ctx;
    protobuf_c_message_free_unpacked(msg, NULL);
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n_stream; i++)
        tcall_send(call, &c->stream[i]->base);
    pthread_mutex_unlock(&c->mu);
    tcall_finish(call, GRPC_STATUS_OK, NULL);
}

canned_sluice *canned_sluice_start(void) {
    canned_sluice *c = calloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    c->tm = timers_new();
    const sluice_rpc_method *methods[] = {&sluice__v1__sluice__open_session__method,
                                          &sluice__v1__sluice__wait__method,
                                          &sluice__v1__sluice__as_completed__method};
    void (*fns[])(tcall *, ProtobufCMessage *, void *) = {open_session, wait_rpc, as_completed};
    for (size_t i = 0; i < 3; i++) {
        c->handlers[i].method = methods[i];
        c->handlers[i].on_message = fns[i];
        c->handlers[i].ctx = c;
    }
    transport_config tc;
    memset(&tc, 0, sizeof tc);
    tc.listen_addr = "127.0.0.1:0";
    tc.n_workers = 2;
    tc.max_message_bytes = 16u << 20;
    char err[256] = "transport_register failed";
    if (transport_new(&tc, &c->t, err, sizeof err) != 0 ||
        transport_register(c->t, &sluice__v1__sluice__rpc_service, c->handlers, 3) != 0 ||
        transport_start(c->t, err, sizeof err) != 0) {
        fprintf(stderr, "canned sluice: %s\n", err);
        canned_sluice_stop(c);
        return NULL;
    }
    snprintf(c->target, sizeof c->target, "127.0.0.1:%d", transport_port(c->t));
    return c;
}

void canned_sluice_stop(canned_sluice *c) {
    if (!c)
        return;
    if (c->t)
        transport_drain(c->t, 0);
    timers_free(c->tm); /* a late answer not sent yet: its call is over anyway */
    transport_free(c->t);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

const char *canned_sluice_target(const canned_sluice *c) {
    return c->target;
}

void canned_sluice_set_wait(canned_sluice *c, const Sluice__V1__WaitResponse *answer,
                            uint32_t delay_ms) {
    pthread_mutex_lock(&c->mu);
    c->wait = answer;
    c->wait_delay_ms = delay_ms;
    pthread_mutex_unlock(&c->mu);
}

void canned_sluice_set_stream(canned_sluice *c, Sluice__V1__TaskResult *const *results, size_t n) {
    pthread_mutex_lock(&c->mu);
    c->n_stream = n < MAX_STREAM ? n : MAX_STREAM;
    for (size_t i = 0; i < c->n_stream; i++)
        c->stream[i] = results[i];
    pthread_mutex_unlock(&c->mu);
}

unsigned canned_sluice_waits(canned_sluice *c) {
    pthread_mutex_lock(&c->mu);
    unsigned n = c->waits;
    pthread_mutex_unlock(&c->mu);
    return n;
}
