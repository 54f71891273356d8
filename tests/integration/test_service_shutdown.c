/*
 * service_shutdown against a real dispatcher, store and timers (in process, no transport):
 * what still references a session when sluiced stops keeps it alive until it lets go.
 * White-box (svc_internal.h): the test takes the references a batch or a persist tick
 * would hold. The point is the ASan build, which reports a use after free or a leak.
 */
#include "integration/dispatch_harness.h"
#include "server/service/svc_internal.h"
#include "unit/test_util.h"

#include "server/common/alloc.h"
#include "server/common/timers.h"

#include <string.h>

typedef struct fixture {
    harness *h;
    timers *tm;
    service *svc;
} fixture;

static int fixture_start(fixture *f) {
    harness_opts ho;
    memset(&ho, 0, sizeof ho);
    ho.with_store = true;
    f->h = harness_new(&ho);
    f->tm = timers_new();
    service_config cfg;
    memset(&cfg, 0, sizeof cfg);
    char err[256];
    if (!f->h || !f->tm ||
        service_new(&cfg, f->h->d, f->h->st, f->h->reg, f->tm, &f->svc, err, sizeof err) != 0)
        return -1;
    return 0;
}

/* main's order: the dispatcher stops, the service shuts down, the timers stop. */
static void fixture_stop(fixture *f) {
    service_free(f->svc);
    timers_free(f->tm);
    harness_free(f->h);
}

static svc_session *open_session(fixture *f, uint64_t id) {
    dsession *ds = harness_session(f->h, "m-a", 0, 0, 0, 1, CACHE_MODE_READ_WRITE);
    svc_session *ss = svc_session_new(f->svc, id, "", ds); /* the caller's reference */
    CU_ASSERT_TRUE(svc_session_add(f->svc, ss));           /* + the table's */
    return ss;
}

/* Regression: service_shutdown freed every session whatever its reference count, while a
 * BatchProcess (or a persist tick) could still hold one and put it later. */
static void test_shutdown_keeps_referenced_sessions(void) {
    fixture f;
    CU_ASSERT_EQUAL_FATAL(fixture_start(&f), 0);
    svc_session *held = open_session(&f, 7); /* stays referenced, like a batch's session */
    svc_session *idle = open_session(&f, 8);
    svc_session_put(f.svc, idle); /* only the table holds it */
    svc_session *looked_up = svc_session_get(f.svc, held->id_str, "");
    CU_ASSERT_PTR_EQUAL(looked_up, held);
    svc_session_put(f.svc, looked_up);
    dispatcher_stop(f.h->d);
    service_shutdown(f.svc);
    /* the holder's session is still whole; the service no longer lists it */
    CU_ASSERT_STRING_EQUAL(held->id_str, "local:s7");
    CU_ASSERT_EQUAL(held->refs, 1);
    CU_ASSERT_TRUE(held->closed);
    CU_ASSERT_PTR_NULL(svc_session_get(f.svc, "local:s7", ""));
    svc_session_put(f.svc, held); /* the last reference frees it (LeakSanitizer checks) */
    fixture_stop(&f);
}

/* A task still in memory at shutdown holds its session: both go, in either order. */
static void test_shutdown_frees_tasks_and_their_sessions(void) {
    fixture f;
    CU_ASSERT_EQUAL_FATAL(fixture_start(&f), 0);
    svc_session *ss = open_session(&f, 9);
    svc_task *t = XNEW(svc_task);
    t->id = 42;
    t->sess = ss;
    t->custom_id = xstrdup("c");
    dlist_init(&t->waiters);
    pthread_mutex_lock(&f.svc->mu);
    ss->refs++; /* the task's */
    u64map_put(&f.svc->tasks, t->id, t);
    dlist_push_back(&ss->tasks, &t->sess_link);
    pthread_mutex_unlock(&f.svc->mu);
    svc_session_put(f.svc, ss); /* the table and the task remain */
    dispatcher_stop(f.h->d);
    service_shutdown(f.svc); /* frees the task, then the session with its last reference */
    CU_ASSERT_EQUAL(f.svc->tasks.len, 0);
    CU_ASSERT_EQUAL(f.svc->sessions.len, 0);
    fixture_stop(&f);
}

int main(void) {
    static const test_case cases[] = {
        {"shutdown keeps referenced sessions", test_shutdown_keeps_referenced_sessions},
        {"shutdown frees tasks and their sessions", test_shutdown_frees_tasks_and_their_sessions},
        {NULL, NULL},
    };
    return test_run_suite("service_shutdown", cases);
}
