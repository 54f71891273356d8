/*
 * test_transport_lifecycle.c - grpc.health.v1.Health and draining.
 *
 * Health Check and Watch through the generated health stubs against an in-process
 * server; then a second server drained while streams of every kind are open: the drain
 * returns, Watch sees NOT_SERVING then UNAVAILABLE, calls that finish within the grace
 * period succeed, the rest end UNAVAILABLE or CANCELLED, and every started call got its
 * on_done (nothing leaks; ASan/LSan builds check the memory side).
 */
#include "unit/test_util.h"
#include "tests/integration/testsvc.h"

#include "client/rpc/rpc.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/health/v1/health.sluice.h"
#include "sluice/status.h"
#include "sluice_test.pb-c.h"
#include "sluice_test.sluice.h"

#include <CUnit/Basic.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define HEALTH(x) grpc__health__v1__health__##x
#define SVC(x) sluice__test__v1__test_service__##x
#define LIVENESS_MS 30000u

typedef Grpc__Health__V1__HealthCheckRequest hc_req;
typedef Grpc__Health__V1__HealthCheckResponse hc_resp;
typedef Sluice__Test__V1__EchoRequest echo_req;
typedef Sluice__Test__V1__EchoResponse echo_resp;

enum {
    SERVING = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING,
    NOT_SERVING = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING,
    SERVICE_UNKNOWN = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN,
};

static testsvc_server g_srv;
static sluice_rpc_channel *g_ch;

static int suite_init(void) {
    char err[256];
    transport_config cfg = {.n_workers = 2};
    if (testsvc_server_start(&cfg, &g_srv, err, sizeof err) != SLUICE_OK) {
        fprintf(stderr, "server: %s\n", err);
        return -1;
    }
    return sluice_rpc_channel_new(g_srv.target, NULL, &g_ch) == SLUICE_OK ? 0 : -1;
}

/* The server goes first: gRPC's last grpc_shutdown racing an in-process client channel's
 * asynchronous teardown can stall for ~10 s inside gRPC (Executor::ShutdownAll). */
static int suite_clean(void) {
    testsvc_server_stop(&g_srv, 1000);
    sluice_rpc_channel_free(g_ch);
    return 0;
}

/* Returns the status Check reports, or -(gRPC code) when the call fails. */
static int check(sluice_rpc_channel *ch, const char *service) {
    hc_req req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)service;
    hc_resp *resp = NULL;
    sluice_rpc_status st;
    if (HEALTH(check__rpc)(ch, &req, &resp, NULL, &st) != SLUICE_OK)
        return -st.code;
    int status = resp->status;
    grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
    return status;
}

/* A Watch call with a liveness deadline, so that a status that never comes fails the test
 * instead of blocking its read forever. */
static sluice_rpc_call *watch(sluice_rpc_channel *ch, const char *service) {
    hc_req req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)service;
    const sluice_rpc_call_opts opts = {.timeout_ms = LIVENESS_MS};
    sluice_rpc_call *call = NULL;
    return HEALTH(watch__start)(ch, &req, &opts, &call) == SLUICE_OK ? call : NULL;
}

/* Next Watch status, or -1 at the end of the stream / on error. */
static int watch_next(sluice_rpc_call *call) {
    hc_resp *m = NULL;
    if (HEALTH(watch__read)(call, &m) != SLUICE_OK)
        return -1;
    int status = m->status;
    grpc__health__v1__health_check_response__free_unpacked(m, NULL);
    return status;
}

static void test_health_check(void) {
    CU_ASSERT_EQUAL(check(g_ch, ""), SERVING);
    CU_ASSERT_EQUAL(check(g_ch, "sluice.test.v1.TestService"), SERVING);
    CU_ASSERT_EQUAL(check(g_ch, "grpc.health.v1.Health"), SERVING);
    CU_ASSERT_EQUAL(check(g_ch, "no.such.Service"), -GRPC_STATUS_NOT_FOUND);
}

static void test_health_watch_follows_changes(void) {
    sluice_rpc_call *call = watch(g_ch, "sluice.test.v1.TestService");
    CU_ASSERT_PTR_NOT_NULL_FATAL(call);
    CU_ASSERT_EQUAL(watch_next(call), SERVING);
    transport_set_serving(g_srv.t, false);
    CU_ASSERT_EQUAL(watch_next(call), NOT_SERVING);
    CU_ASSERT_EQUAL(check(g_ch, ""), NOT_SERVING);
    transport_set_serving(g_srv.t, true);
    CU_ASSERT_EQUAL(watch_next(call), SERVING);
    CU_ASSERT_EQUAL(check(g_ch, ""), SERVING);
    sluice_rpc_call_cancel(call);
    sluice_rpc_status st;
    sluice_rpc_call_finish(call, NULL, &st);
    CU_ASSERT_EQUAL(st.code, GRPC_STATUS_CANCELLED);
    sluice_rpc_call_free(call);
}

static void test_health_watch_unknown_service(void) {
    sluice_rpc_call *call = watch(g_ch, "no.such.Service");
    CU_ASSERT_PTR_NOT_NULL_FATAL(call);
    CU_ASSERT_EQUAL(watch_next(call), SERVICE_UNKNOWN);
    sluice_rpc_call_free(call); /* cancels */
}

/* ---- drain with open streams ----------------------------------------------------------- */

typedef enum stream_kind { S_COUNT, S_CHAT, S_ECHO, S_WATCH } stream_kind;

typedef struct stream_job {
    stream_kind kind;
    sluice_rpc_channel *ch;
    atomic_bool ready; /* the call is known to be under way on the server */
    int last_health;   /* S_WATCH: last status seen */
    int code;          /* final gRPC status */
} stream_job;

static void *run_stream(void *arg) {
    stream_job *j = arg;
    sluice_rpc_call *call = NULL;
    sluice_rpc_status st = {.code = -1};
    echo_req req;
    sluice__test__v1__echo_request__init(&req);
    req.text = "drain";
    if (j->kind == S_WATCH) {
        call = watch(j->ch, "");
        int s;
        while (call && (s = watch_next(call)) >= 0) {
            j->last_health = s;
            atomic_store(&j->ready, true);
        }
    } else if (j->kind == S_ECHO) {
        req.delay_ms = 100; /* finishes within the grace period */
        echo_resp *resp = NULL;
        atomic_store(&j->ready, true);
        SVC(echo__rpc)(j->ch, &req, &resp, NULL, &st);
        if (resp)
            sluice__test__v1__echo_response__free_unpacked(resp, NULL);
    } else if (j->kind == S_COUNT) {
        req.count = 1000000;
        req.delay_ms = 20;
        if (SVC(count__start)(j->ch, &req, NULL, &call) == SLUICE_OK) {
            echo_resp *m = NULL;
            while (SVC(count__read)(call, &m) == SLUICE_OK) {
                sluice__test__v1__echo_response__free_unpacked(m, NULL);
                atomic_store(&j->ready, true);
            }
        }
    } else if (SVC(chat__start)(j->ch, NULL, &call) == SLUICE_OK) {
        echo_resp *m = NULL;
        if (SVC(chat__write)(call, &req) == SLUICE_OK && SVC(chat__read)(call, &m) == SLUICE_OK)
            atomic_store(&j->ready, true);
        if (m)
            sluice__test__v1__echo_response__free_unpacked(m, NULL);
        while (SVC(chat__read)(call, &m) == SLUICE_OK) /* ends at drain */
            sluice__test__v1__echo_response__free_unpacked(m, NULL);
    }
    if (call) {
        sluice_rpc_call_finish(call, NULL, &st);
        sluice_rpc_call_free(call);
    }
    j->code = st.code;
    return NULL;
}

/* True once j's call is under way; false when it is not within the liveness bound. */
static bool wait_ready(stream_job *j) {
    for (int i = 0; i < (int)LIVENESS_MS && !atomic_load(&j->ready); i++)
        nanosleep(&(struct timespec){.tv_nsec = 1000000L}, NULL);
    return atomic_load(&j->ready);
}

static void test_drain_with_open_streams(void) {
    testsvc_server srv;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(testsvc_server_start(NULL, &srv, err, sizeof err), SLUICE_OK);
    sluice_rpc_channel *ch = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_rpc_channel_new(srv.target, NULL, &ch), SLUICE_OK);
    stream_job jobs[] = {{.kind = S_WATCH},
                         {.kind = S_COUNT},
                         {.kind = S_COUNT},
                         {.kind = S_CHAT},
                         {.kind = S_ECHO}};
    enum { N = sizeof jobs / sizeof jobs[0] };
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        jobs[i].ch = ch;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, run_stream, &jobs[i]), 0);
    }
    for (int i = 0; i < N; i++)
        CU_ASSERT_TRUE(wait_ready(&jobs[i]));
    /* the 4 TestService calls reached the server */
    testsvc_stats st;
    for (int i = 0; i < (int)LIVENESS_MS; i++) {
        testsvc_get_stats(srv.svc, &st);
        if (st.started >= N - 1)
            break;
        nanosleep(&(struct timespec){.tv_nsec = 1000000L}, NULL);
    }
    CU_ASSERT_EQUAL(st.started, N - 1);

    transport_drain(srv.t, 2000); /* the Echo (100 ms) fits in the grace period */

    /* after drain every started call has had its on_done */
    testsvc_get_stats(srv.svc, &st);
    CU_ASSERT_EQUAL(st.started, st.done);
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    CU_ASSERT_EQUAL(jobs[0].last_health, NOT_SERVING);
    CU_ASSERT_EQUAL(jobs[0].code, GRPC_STATUS_UNAVAILABLE);
    for (int i = 1; i <= 3; i++) {
        CU_ASSERT_TRUE(jobs[i].code == GRPC_STATUS_UNAVAILABLE ||
                       jobs[i].code == GRPC_STATUS_CANCELLED);
    }
    CU_ASSERT_EQUAL(jobs[4].code, GRPC_STATUS_OK);
    /* nothing is accepted any more */
    CU_ASSERT_TRUE(check(ch, "") < 0);

    sluice_rpc_channel_free(ch);
    testsvc_stop(srv.svc);
    transport_free(srv.t);
    testsvc_free(srv.svc);
}

static void test_free_without_drain(void) {
    testsvc_server srv;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(testsvc_server_start(NULL, &srv, err, sizeof err), SLUICE_OK);
    sluice_rpc_channel *ch = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_rpc_channel_new(srv.target, NULL, &ch), SLUICE_OK);
    CU_ASSERT_EQUAL(check(ch, ""), SERVING);
    sluice_rpc_channel_free(ch);
    transport_free(srv.t); /* drains with grace 0 itself */
    testsvc_free(srv.svc);
}

int main(void) {
    static const test_case tests[] = {
        {"health Check", test_health_check},
        {"health Watch follows serving changes", test_health_watch_follows_changes},
        {"health Watch of an unknown service", test_health_watch_unknown_service},
        {"drain while streams are open", test_drain_with_open_streams},
        {"free without drain", test_free_without_drain},
        {NULL, NULL},
    };
    return test_run_suite_with("transport lifecycle", suite_init, suite_clean, tests);
}
