/*
 * test_transport.c - the server transport driven through the generated TestService stubs.
 *
 * One in-process server (127.0.0.1:0, small message and outbound bounds so limits are
 * reachable) and one client channel for the whole suite: the four call kinds, status
 * codes, cancellation, deadlines, unknown methods, oversized messages, 1,000 concurrent
 * calls and backpressure. Server-side effects are read from the test service's counters,
 * polled with generous liveness bounds; nothing here asserts speed.
 */
#include "unit/test_util.h"
#include "tests/integration/testsvc.h"

#include "client/rpc/rpc.h"
#include "sluice/status.h"
#include "sluice_test.pb-c.h"
#include "sluice_test.sluice.h"

#include <CUnit/Basic.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SVC(x) sluice__test__v1__test_service__##x
#define MAX_MESSAGE (256u * 1024u)
#define MAX_OUTBOUND 8u
#define LIVENESS_MS 30000u

typedef Sluice__Test__V1__EchoRequest echo_req;
typedef Sluice__Test__V1__EchoResponse echo_resp;

static testsvc_server g_srv;
static sluice_rpc_channel *g_ch;
static const sluice_rpc_call_opts g_opts = {0};

static int suite_init(void) {
    transport_config cfg = {
        .n_workers = 2, .max_message_bytes = MAX_MESSAGE, .max_outbound_per_call = MAX_OUTBOUND};
    char err[256];
    if (testsvc_server_start(&cfg, &g_srv, err, sizeof err) != SLUICE_OK) {
        fprintf(stderr, "server: %s\n", err);
        return -1;
    }
    sluice_rpc_channel_opts o = {.max_message_bytes = 8u * 1024u * 1024u};
    return sluice_rpc_channel_new(g_srv.target, &o, &g_ch) == SLUICE_OK ? 0 : -1;
}

/* The server goes first: gRPC's last grpc_shutdown racing an in-process client channel's
 * asynchronous teardown can stall for ~10 s inside gRPC (Executor::ShutdownAll). */
static int suite_clean(void) {
    testsvc_server_stop(&g_srv, 1000);
    sluice_rpc_channel_free(g_ch);
    return 0;
}

static testsvc_stats stats(void) {
    testsvc_stats st;
    testsvc_get_stats(g_srv.svc, &st);
    return st;
}

static echo_req make_req(const char *text, int64_t number) {
    echo_req r;
    sluice__test__v1__echo_request__init(&r);
    r.text = (char *)text;
    r.number = number;
    return r;
}

/* ---- the four call kinds --------------------------------------------------------------- */

static void test_echo_unary(void) {
    echo_req req = make_req("hello", 42);
    echo_resp *resp = NULL;
    sluice_rpc_status st;
    CU_ASSERT_EQUAL_FATAL(SVC(echo__rpc)(g_ch, &req, &resp, &g_opts, &st), SLUICE_OK);
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(resp->text, "hello");
    CU_ASSERT_EQUAL(resp->number, 42);
    CU_ASSERT_STRING_EQUAL(resp->tenant, ""); /* auth off */
    sluice__test__v1__echo_response__free_unpacked(resp, NULL);
}

static void test_echo_fail_code(void) {
    echo_req req = make_req("precondition not met", 0);
    req.fail_code = GRPC_STATUS_FAILED_PRECONDITION;
    echo_resp *resp = NULL;
    sluice_rpc_status st;
    CU_ASSERT_NOT_EQUAL(SVC(echo__rpc)(g_ch, &req, &resp, &g_opts, &st), SLUICE_OK);
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_FAILED_PRECONDITION);
    CU_ASSERT_STRING_EQUAL(st.details, "precondition not met");
    CU_ASSERT_PTR_NULL(resp);
}

static void test_echo_delayed_from_timer_thread(void) {
    echo_req req = make_req("later", 7);
    req.delay_ms = 50;
    echo_resp *resp = NULL;
    sluice_rpc_status st;
    CU_ASSERT_EQUAL_FATAL(SVC(echo__rpc)(g_ch, &req, &resp, &g_opts, &st), SLUICE_OK);
    CU_ASSERT_EQUAL(resp->number, 7);
    sluice__test__v1__echo_response__free_unpacked(resp, NULL);
}

/* Reads a Count stream to its end (whatever the status); returns the number of
 * messages, -1 on a gap or a read error. */
static int read_count_stream(sluice_rpc_call *call, sluice_rpc_status *st) {
    int n = 0;
    echo_resp *m = NULL;
    int rc;
    while ((rc = SVC(count__read)(call, &m)) == SLUICE_OK) {
        if (m->number != n)
            n = -1000000;
        n++;
        sluice__test__v1__echo_response__free_unpacked(m, NULL);
    }
    sluice_rpc_call_finish(call, NULL, st);
    return rc == SLUICE_EEOF && n >= 0 ? n : -1;
}

/* A Count call for req that streams req->count messages in order and ends OK. */
static void expect_count_stream(const echo_req *req) {
    sluice_rpc_call *call = NULL;
    sluice_rpc_status st;
    CU_ASSERT_EQUAL_FATAL(SVC(count__start)(g_ch, req, &g_opts, &call), SLUICE_OK);
    CU_ASSERT_EQUAL(read_count_stream(call, &st), (int)req->count);
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_OK);
    sluice_rpc_call_free(call);
}

static void test_count_server_stream(void) {
    echo_req req = make_req("tick", 0);
    req.count = 5;
    expect_count_stream(&req);
}

static void test_count_paced_and_empty(void) {
    echo_req req = make_req("slow", 0);
    req.count = 4;
    req.delay_ms = 10;
    expect_count_stream(&req);
    req.count = 0;
    expect_count_stream(&req);
}

static void test_sum_client_stream(void) {
    sluice_rpc_call *call = NULL;
    CU_ASSERT_EQUAL_FATAL(SVC(sum__start)(g_ch, &g_opts, &call), SLUICE_OK);
    for (int i = 1; i <= 10; i++) {
        echo_req req = make_req("n", i);
        CU_ASSERT_EQUAL(SVC(sum__write)(call, &req), SLUICE_OK);
    }
    echo_resp *resp = NULL;
    sluice_rpc_status st;
    CU_ASSERT_EQUAL_FATAL(SVC(sum__finish)(call, &resp, &st), SLUICE_OK);
    CU_ASSERT_EQUAL(resp->number, 55);
    sluice__test__v1__echo_response__free_unpacked(resp, NULL);
    sluice_rpc_call_free(call);

    /* no request messages at all */
    CU_ASSERT_EQUAL_FATAL(SVC(sum__start)(g_ch, &g_opts, &call), SLUICE_OK);
    resp = NULL;
    CU_ASSERT_EQUAL_FATAL(SVC(sum__finish)(call, &resp, &st), SLUICE_OK);
    CU_ASSERT_EQUAL(resp->number, 0);
    sluice__test__v1__echo_response__free_unpacked(resp, NULL);
    sluice_rpc_call_free(call);
}

/* Writes `n` Chat messages, reading each answer; returns answers matched. */
static int chat_round_trips(sluice_rpc_call *call, int n) {
    int ok = 0;
    for (int i = 0; i < n; i++) {
        echo_req req = make_req("chat", i);
        if (SVC(chat__write)(call, &req) != SLUICE_OK)
            break;
        echo_resp *m = NULL;
        if (SVC(chat__read)(call, &m) != SLUICE_OK)
            break;
        ok += m->number == i && strcmp(m->text, "chat") == 0;
        sluice__test__v1__echo_response__free_unpacked(m, NULL);
    }
    return ok;
}

static void test_chat_bidi(void) {
    sluice_rpc_call *call = NULL;
    CU_ASSERT_EQUAL_FATAL(SVC(chat__start)(g_ch, &g_opts, &call), SLUICE_OK);
    CU_ASSERT_EQUAL(chat_round_trips(call, 20), 20);
    CU_ASSERT_EQUAL(sluice_rpc_call_close_send(call), SLUICE_OK);
    echo_resp *m = NULL;
    CU_ASSERT_EQUAL(SVC(chat__read)(call, &m), SLUICE_EEOF);
    sluice_rpc_status st;
    CU_ASSERT_EQUAL(sluice_rpc_call_finish(call, NULL, &st), SLUICE_OK);
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_OK);
    sluice_rpc_call_free(call);
}

/* ---- endings --------------------------------------------------------------------------- */

static void test_client_cancel_mid_stream(void) {
    testsvc_stats before = stats();
    echo_req req = make_req("long", 0);
    req.count = 1000000;
    req.delay_ms = 5;
    sluice_rpc_call *call = NULL;
    CU_ASSERT_EQUAL_FATAL(SVC(count__start)(g_ch, &req, &g_opts, &call), SLUICE_OK);
    for (int i = 0; i < 3; i++) {
        echo_resp *m = NULL;
        CU_ASSERT_EQUAL_FATAL(SVC(count__read)(call, &m), SLUICE_OK);
        CU_ASSERT_EQUAL(m->number, i);
        sluice__test__v1__echo_response__free_unpacked(m, NULL);
    }
    sluice_rpc_call_cancel(call);
    sluice_rpc_status st;
    CU_ASSERT_NOT_EQUAL(sluice_rpc_call_finish(call, NULL, &st), SLUICE_OK);
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_CANCELLED);
    sluice_rpc_call_free(call);
    /* the server saw on_done(cancelled=true) */
    CU_ASSERT_TRUE(
        testsvc_wait_done(g_srv.svc, before.done + 1, before.done_cancelled + 1, LIVENESS_MS));
}

static void test_deadline_exceeded(void) {
    testsvc_stats before = stats();
    echo_req req = make_req("too slow", 0);
    req.delay_ms = 3000;
    sluice_rpc_call_opts opts = {.timeout_ms = 100};
    echo_resp *resp = NULL;
    sluice_rpc_status st;
    CU_ASSERT_EQUAL(SVC(echo__rpc)(g_ch, &req, &resp, &opts, &st), SLUICE_ETIMEDOUT);
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_DEADLINE_EXCEEDED);
    CU_ASSERT_PTR_NULL(resp);

    /* a stream that outlives its deadline */
    req.count = 1000;
    req.delay_ms = 10;
    sluice_rpc_call *call = NULL;
    CU_ASSERT_EQUAL_FATAL(SVC(count__start)(g_ch, &req, &opts, &call), SLUICE_OK);
    int n = read_count_stream(call, &st);
    CU_ASSERT_TRUE(n >= 0 && n < 1000);
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_DEADLINE_EXCEEDED);
    sluice_rpc_call_free(call);
    CU_ASSERT_TRUE(
        testsvc_wait_done(g_srv.svc, before.done + 2, before.done_cancelled + 2, LIVENESS_MS));
}

static void test_unknown_method_unimplemented(void) {
    const sluice_rpc_method nope = {
        .path = "/sluice.test.v1.TestService/Nope",
        .name = "Nope",
        .input = &sluice__test__v1__echo_request__descriptor,
        .output = &sluice__test__v1__echo_response__descriptor,
    };
    echo_req req = make_req("?", 0);
    ProtobufCMessage *resp = NULL;
    sluice_rpc_status st;
    CU_ASSERT_EQUAL(sluice_rpc_unary(g_ch, &nope, &req.base, &resp, &g_opts, &st),
                    SLUICE_EUNIMPLEMENTED);
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_UNIMPLEMENTED);
    CU_ASSERT_PTR_NULL(resp);
}

static void test_oversized_message_then_serving(void) {
    size_t big = MAX_MESSAGE + 1024;
    uint8_t *pad = calloc(1, big);
    echo_req req = make_req("big", 1);
    req.payload.data = pad;
    req.payload.len = big;
    echo_resp *resp = NULL;
    sluice_rpc_status st;
    CU_ASSERT_EQUAL(SVC(echo__rpc)(g_ch, &req, &resp, &g_opts, &st), SLUICE_ELIMIT);
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
    CU_ASSERT_PTR_NULL(resp);
    free(pad);
    /* the server keeps serving */
    req = make_req("small", 2);
    CU_ASSERT_EQUAL_FATAL(SVC(echo__rpc)(g_ch, &req, &resp, &g_opts, &st), SLUICE_OK);
    CU_ASSERT_EQUAL(resp->number, 2);
    sluice__test__v1__echo_response__free_unpacked(resp, NULL);
}

/* Regression: protobuf-c decodes a string that is not UTF-8 (proto3 forbids it) and the
 * server used to hand it on; one such name crashed sluiced. Now the transport refuses the
 * message like one that does not decode, naming the field, and keeps serving. */
static void test_invalid_utf8_refused_naming_the_field(void) {
    echo_req req = make_req("caf\xc3", 1); /* cut inside a character */
    echo_resp *resp = NULL;
    sluice_rpc_status st;
    CU_ASSERT_EQUAL(SVC(echo__rpc)(g_ch, &req, &resp, &g_opts, &st), SLUICE_EINVAL);
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.details, "text: not valid UTF-8"));
    CU_ASSERT_PTR_NULL(resp);
    /* mid-stream: the call ends with the same status, after the answers before it */
    sluice_rpc_call *call = NULL;
    CU_ASSERT_EQUAL_FATAL(SVC(chat__start)(g_ch, &g_opts, &call), SLUICE_OK);
    CU_ASSERT_EQUAL(chat_round_trips(call, 2), 2);
    req = make_req("\xff", 3);
    CU_ASSERT_EQUAL(SVC(chat__write)(call, &req), SLUICE_OK);
    CU_ASSERT_EQUAL(SVC(chat__read)(call, &resp), SLUICE_EEOF);
    CU_ASSERT_NOT_EQUAL(sluice_rpc_call_finish(call, NULL, &st), SLUICE_OK);
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.details, "text: not valid UTF-8 (byte 0 is 0xff)"));
    sluice_rpc_call_free(call);
    /* the server keeps serving, and valid non-ASCII text passes */
    req = make_req("caf\xc3\xa9 \xf0\x9f\x98\x80", 4);
    CU_ASSERT_EQUAL_FATAL(SVC(echo__rpc)(g_ch, &req, &resp, &g_opts, &st), SLUICE_OK);
    CU_ASSERT_STRING_EQUAL(resp->text, "caf\xc3\xa9 \xf0\x9f\x98\x80");
    sluice__test__v1__echo_response__free_unpacked(resp, NULL);
}

/* ---- load ------------------------------------------------------------------------------ */

#define N_ASYNC 1000
#define N_STREAMERS 4

static void *streamer(void *arg) {
    int *ok = arg;
    echo_req req = make_req("s", 0);
    req.count = 300;
    sluice_rpc_call *call = NULL;
    sluice_rpc_status st;
    if (SVC(count__start)(g_ch, &req, &g_opts, &call) == SLUICE_OK)
        *ok = read_count_stream(call, &st) == 300 && st.code == GRPC_STATUS_OK;
    sluice_rpc_call_free(call);
    call = NULL;
    if (*ok && SVC(chat__start)(g_ch, &g_opts, &call) == SLUICE_OK) {
        *ok = chat_round_trips(call, 30) == 30 && sluice_rpc_call_close_send(call) == SLUICE_OK &&
              sluice_rpc_call_finish(call, NULL, &st) == SLUICE_OK;
    }
    sluice_rpc_call_free(call);
    return NULL;
}

static void test_thousand_concurrent_calls(void) {
    testsvc_stats before = stats();
    pthread_t th[N_STREAMERS];
    int ok[N_STREAMERS] = {0};
    for (int i = 0; i < N_STREAMERS; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, streamer, &ok[i]), 0);

    const int n_calls = N_ASYNC;
    sluice_rpc_async *a = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_rpc_async_new(&a), SLUICE_OK);
    for (int i = 0; i < n_calls; i++) {
        echo_req req = make_req("many", i);
        req.delay_ms = 20; /* keeps them in flight together on the server */
        CU_ASSERT_EQUAL(SVC(echo__async)(a, g_ch, &req, &g_opts, (void *)(uintptr_t)(i + 1)),
                        SLUICE_OK);
    }
    static bool seen[N_ASYNC];
    memset(seen, 0, sizeof seen);
    int good = 0;
    for (int i = 0; i < n_calls; i++) {
        void *tag = NULL;
        ProtobufCMessage *m = NULL;
        sluice_rpc_status st;
        if (sluice_rpc_async_next(a, LIVENESS_MS, &tag, &m, &st) != SLUICE_OK)
            break;
        size_t idx = (uintptr_t)tag - 1;
        if (st.code == GRPC_STATUS_OK && m && idx < (size_t)n_calls && !seen[idx] &&
            ((echo_resp *)m)->number == (int64_t)idx) {
            seen[idx] = true;
            good++;
        }
        if (m)
            protobuf_c_message_free_unpacked(m, NULL);
    }
    CU_ASSERT_EQUAL(good, n_calls);
    CU_ASSERT_EQUAL(sluice_rpc_async_in_flight(a), 0);
    sluice_rpc_async_free(a);
    for (int i = 0; i < N_STREAMERS; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_TRUE(ok[i]);
    }
    /* every call ended on the server too, none cancelled */
    uint64_t n = (uint64_t)n_calls + 2 * N_STREAMERS;
    CU_ASSERT_TRUE(testsvc_wait_done(g_srv.svc, before.done + n, 0, LIVENESS_MS));
    CU_ASSERT_EQUAL(stats().done_cancelled, before.done_cancelled);
}

/* ---- backpressure ---------------------------------------------------------------------- */

#define FLOOD 400
#define FLOOD_PAYLOAD (64u * 1024u)

static void test_backpressure_elimit_then_writable(void) {
    testsvc_stats before = stats();
    sluice_rpc_call *call = NULL;
    CU_ASSERT_EQUAL_FATAL(SVC(chat__start)(g_ch, &g_opts, &call), SLUICE_OK);
    uint8_t *pad = calloc(1, FLOOD_PAYLOAD);
    echo_req req = make_req("flood", 9);
    req.count = FLOOD;
    req.payload.data = pad;
    req.payload.len = FLOOD_PAYLOAD;
    CU_ASSERT_EQUAL_FATAL(SVC(chat__write)(call, &req), SLUICE_OK);
    free(pad);

    /* not reading: the server's queue fills to the bound and the pump blocks */
    testsvc_stats blocked;
    CU_ASSERT_TRUE_FATAL(testsvc_wait_blocked(g_srv.svc, before.elimit_hits + 1, MAX_OUTBOUND,
                                              LIVENESS_MS, &blocked));
    /* the queue never grows past the bound: ELIMIT came exactly at it */
    CU_ASSERT_EQUAL(blocked.pending_at_limit, MAX_OUTBOUND);

    /* reading again: on_writable resumes it and every copy arrives */
    int got = 0;
    for (int i = 0; i < FLOOD; i++) {
        echo_resp *m = NULL;
        if (SVC(chat__read)(call, &m) != SLUICE_OK)
            break;
        got += m->number == 9 && m->payload.len == FLOOD_PAYLOAD;
        sluice__test__v1__echo_response__free_unpacked(m, NULL);
    }
    CU_ASSERT_EQUAL(got, FLOOD);
    CU_ASSERT_TRUE(stats().writable_events > blocked.writable_events);
    CU_ASSERT_EQUAL(stats().blocked_now, 0);
    CU_ASSERT_EQUAL(sluice_rpc_call_close_send(call), SLUICE_OK);
    sluice_rpc_status st;
    CU_ASSERT_EQUAL(sluice_rpc_call_finish(call, NULL, &st), SLUICE_OK);
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_OK);
    sluice_rpc_call_free(call);
}

int main(void) {
    static const test_case tests[] = {
        {"echo unary", test_echo_unary},
        {"echo fail_code becomes the status", test_echo_fail_code},
        {"echo delayed, answered from the timer thread", test_echo_delayed_from_timer_thread},
        {"count server stream", test_count_server_stream},
        {"count paced from a non-CQ thread, and empty", test_count_paced_and_empty},
        {"sum client stream", test_sum_client_stream},
        {"chat bidi", test_chat_bidi},
        {"client cancel mid-stream", test_client_cancel_mid_stream},
        {"deadline exceeded", test_deadline_exceeded},
        {"unknown method is UNIMPLEMENTED", test_unknown_method_unimplemented},
        {"oversized message, then still serving", test_oversized_message_then_serving},
        {"invalid UTF-8 refused naming the field", test_invalid_utf8_refused_naming_the_field},
        {"1000 concurrent calls plus streams", test_thousand_concurrent_calls},
        {"backpressure: ELIMIT at the bound, on_writable after resume",
         test_backpressure_elimit_then_writable},
        {NULL, NULL},
    };
    return test_run_suite_with("transport", suite_init, suite_clean, tests);
}
