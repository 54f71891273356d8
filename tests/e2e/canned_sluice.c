/* The canned sluice.v1.Sluice server (see canned_sluice.h). */
#include "e2e/canned_sluice.h"

#include "server/common/timers.h"
#include "server/transport/transport.h"
#include "sluice/status.h"
#include "sluice/v1/sluice.sluice.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct canned_impl {
    canned_sluice *c;
    transport *t;
    timers *tm;
    atomic_uint waits;
    transport_handler handlers[3];
};

static void open_session(tcall *call, ProtobufCMessage *msg, void *ctx) {
    protobuf_c_message_free_unpacked(msg, NULL);
    Sluice__V1__OpenSessionResponse resp = SLUICE__V1__OPEN_SESSION_RESPONSE__INIT;
    resp.session_id = "local:s1";
    tcall_reply(call, &resp.base);
}

typedef struct late {
    struct canned_impl *impl;
    tcall *call;
} late;

static void answer_wait(void *arg) {
    late *l = arg;
    tcall_reply(l->call, &l->impl->c->wait->base);
    tcall_unref(l->call);
    free(l);
}

static void wait_rpc(tcall *call, ProtobufCMessage *msg, void *ctx) {
    struct canned_impl *impl = ctx;
    protobuf_c_message_free_unpacked(msg, NULL);
    atomic_fetch_add(&impl->waits, 1);
    if (!impl->c->wait) {
        tcall_finish(call, GRPC_STATUS_UNIMPLEMENTED, "no canned Wait answer");
        return;
    }
    late *l = calloc(1, sizeof *l);
    l->impl = impl;
    l->call = call;
    tcall_ref(call);
    timers_add(impl->tm, impl->c->wait_delay_ms, answer_wait, l);
}

static void as_completed(tcall *call, ProtobufCMessage *msg, void *ctx) {
    struct canned_impl *impl = ctx;
    protobuf_c_message_free_unpacked(msg, NULL);
    for (size_t i = 0; i < impl->c->n_stream; i++)
        tcall_send(call, &impl->c->stream[i]->base);
    tcall_finish(call, GRPC_STATUS_OK, NULL);
}

int canned_sluice_start(canned_sluice *c) {
    struct canned_impl *impl = calloc(1, sizeof *impl);
    impl->c = c;
    c->impl = impl;
    impl->tm = timers_new();
    const sluice_rpc_method *methods[] = {&sluice__v1__sluice__open_session__method,
                                          &sluice__v1__sluice__wait__method,
                                          &sluice__v1__sluice__as_completed__method};
    void (*fns[])(tcall *, ProtobufCMessage *, void *) = {open_session, wait_rpc, as_completed};
    for (size_t i = 0; i < 3; i++) {
        impl->handlers[i].method = methods[i];
        impl->handlers[i].on_message = fns[i];
        impl->handlers[i].ctx = impl;
    }
    transport_config tc;
    memset(&tc, 0, sizeof tc);
    tc.listen_addr = "127.0.0.1:0";
    tc.n_workers = 2;
    tc.max_message_bytes = 16u << 20;
    char err[256] = "transport_register failed";
    if (transport_new(&tc, &impl->t, err, sizeof err) != 0 ||
        transport_register(impl->t, &sluice__v1__sluice__rpc_service, impl->handlers, 3) != 0 ||
        transport_start(impl->t, err, sizeof err) != 0) {
        fprintf(stderr, "canned sluice: %s\n", err);
        return -1;
    }
    snprintf(c->target, sizeof c->target, "127.0.0.1:%d", transport_port(impl->t));
    return 0;
}

void canned_sluice_stop(canned_sluice *c) {
    struct canned_impl *impl = c->impl;
    if (!impl)
        return;
    transport_drain(impl->t, 0);
    timers_free(impl->tm); /* a late answer not sent yet: its call is over anyway */
    transport_free(impl->t);
    free(impl);
    c->impl = NULL;
}

unsigned canned_sluice_waits(const canned_sluice *c) {
    return atomic_load(&c->impl->waits);
}
