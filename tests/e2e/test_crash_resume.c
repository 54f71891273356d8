/*
 * Crash and resume: 1,000 durable tasks on a slow fake provider, sluiced killed with
 * SIGKILL mid-run, restarted on the same data directory. Every task completes; every
 * result a client saw before the crash is still there, unchanged; and no prompt whose
 * answer had been stored reached the provider again. Also: a broken batch re-sent in full
 * finishes from the cache.
 */
#include "e2e/sluiced_harness.h"
#include "sluice/sluice.h"
#include "unit/test_util.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_TASKS 1000

static sluice_client *make_client(const char *target, uint32_t concurrency) {
    sluice_model m = {"m-a", 1, {0}};
    sluice_client_options o;
    memset(&o, 0, sizeof o);
    o.models = &m;
    o.n_models = 1;
    o.max_concurrent_requests = concurrency;
    sluice_client *c = NULL;
    CU_ASSERT_EQUAL(sluice_client_new(target, &o, &c), 0);
    return c;
}

/* Per request body: arrivals and 2xx answers, from the fake's counters. */
static json_t *hash_counts(fake_provider *fp) {
    char *text = fake_provider_counters_json(fp, true);
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    json_t *h = json_incref(json_object_get(j, "hashes"));
    json_decref(j);
    return h;
}

static uint64_t count_ok(json_t *hashes) {
    uint64_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(hashes, k, v) n += json_integer_value(json_object_get(v, "ok")) > 0;
    return n;
}

/* Arrivals, after the crash, of bodies that had already been answered before it. */
static uint64_t resent_answered(json_t *before, json_t *after) {
    uint64_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(before, k, v) {
        if (json_integer_value(json_object_get(v, "ok")) == 0)
            continue;
        json_int_t a0 = json_integer_value(json_object_get(v, "arrivals"));
        json_int_t a1 = json_integer_value(json_object_get(json_object_get(after, k), "arrivals"));
        if (a1 > a0)
            n += (uint64_t)(a1 - a0);
    }
    return n;
}

/* Waits (up to 30 s) until a client can read at least `at_least` of the n results, and
 * returns them all (NULL for the unfinished; *finished counts the others). A tracker's
 * `succeeded` is no such measure: it counts a durable task before its result is stored,
 * and Wait shows a result only once it is. */
static sluice_response **wait_for_results(sluice_client *c, char **ids, size_t n, size_t at_least,
                                          size_t *finished) {
    for (int i = 0; i < 3000; i++) {
        sluice_response **seen = NULL;
        size_t n_seen = 0;
        sluice_wait_for_all(c, (const char *const *)ids, n, 1, &seen, &n_seen);
        *finished = 0;
        for (size_t k = 0; k < n_seen; k++)
            *finished += seen[k] != NULL;
        if (n_seen == n && *finished >= at_least)
            return seen;
        sluice_responses_free(seen, n_seen);
        usleep(10000);
    }
    CU_FAIL("no progress before the kill");
    return NULL;
}

/* Starts sluiced again on p's directory and returns a client attached to `session`, or
 * NULL (after failed assertions). */
static sluice_client *restart_and_attach(sluiced_proc *p, const char *session,
                                         uint32_t concurrency) {
    sluiced_opts again;
    memset(&again, 0, sizeof again);
    again.keep_dir = true;
    CU_ASSERT_EQUAL_FATAL(sluiced_start(p, &again), 0);
    sluice_client *c = make_client(p->target, concurrency);
    if (sluice_client_attach(c, session) != 0) {
        CU_FAIL("attach after the restart");
        sluice_client_free(c);
        return NULL;
    }
    return c;
}

static void test_kill_9_and_resume(void) {
    sluiced_proc p;
    CU_ASSERT_EQUAL_FATAL(sluiced_start(&p, NULL), 0);
    fake_provider_set_latency(p.fake, 200, 300);
    sluice_client *c = make_client(p.target, 60);
    CU_ASSERT_EQUAL_FATAL(sluice_client_open(c), 0);
    char *session = strdup(sluice_client_session_id(c));
    char **ids = calloc(N_TASKS, sizeof *ids);
    for (int i = 0; i < N_TASKS; i++) {
        char text[64];
        snprintf(text, sizeof text, "durable prompt %d", i);
        sluice_prompt *pr = sluice_prompt_text(text);
        CU_ASSERT_EQUAL(sluice_start_nowait(c, pr, &ids[i]), 0);
        sluice_prompt_free(pr);
    }
    /* What a client has seen finished before the crash. */
    size_t finished = 0;
    sluice_response **seen = wait_for_results(c, ids, N_TASKS, 250, &finished);
    CU_ASSERT_PTR_NOT_NULL_FATAL(seen);
    sluiced_kill(&p);
    json_t *before = hash_counts(p.fake);
    uint64_t answered_before = count_ok(before);
    CU_ASSERT_TRUE(finished >= 250 && finished < N_TASKS);

    sluice_client *c2 = restart_and_attach(&p, session, 60);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
    sluice_response **all = NULL;
    size_t n_all = 0;
    CU_ASSERT_EQUAL(
        sluice_wait_for_all(c2, (const char *const *)ids, N_TASKS, 120000, &all, &n_all), 0);
    CU_ASSERT_EQUAL_FATAL(n_all, N_TASKS);
    for (int i = 0; i < N_TASKS; i++) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(all[i]);
        CU_ASSERT_FALSE(sluice_response_is_error(all[i]));
        char want[64];
        snprintf(want, sizeof want, "durable prompt %d", i);
        CU_ASSERT_PTR_NOT_NULL(strstr(sluice_response_completion(all[i]), want));
        if (seen[i]) /* nothing a client saw was lost or changed */
            CU_ASSERT_STRING_EQUAL(sluice_response_completion(all[i]),
                                   sluice_response_completion(seen[i]));
    }
    /* Stored answers never went upstream again: only answers that were in the air at the
     * kill (answered by the fake, not yet stored) may have been asked for again. */
    json_t *after = hash_counts(p.fake);
    uint64_t resent = resent_answered(before, after);
    fprintf(stderr,
            "\n  killed with %zu of %d seen finished, %llu answered upstream; %llu re-sent\n",
            finished, N_TASKS, (unsigned long long)answered_before, (unsigned long long)resent);
    CU_ASSERT_TRUE(resent + finished <= answered_before); /* a difference could wrap */
    fake_counters fc;
    fake_provider_counters(p.fake, &fc);
    CU_ASSERT_EQUAL(fc.distinct_requests, N_TASKS);
    sluice_tracker t;
    CU_ASSERT_EQUAL(sluice_client_close(c2, &t), 0);
    CU_ASSERT_EQUAL(t.in_progress, 0);
    json_decref(before);
    json_decref(after);
    sluice_responses_free(seen, N_TASKS);
    sluice_responses_free(all, n_all);
    for (int i = 0; i < N_TASKS; i++)
        free(ids[i]);
    free(ids);
    free(session);
    sluice_client_free(c);
    sluice_client_free(c2);
    CU_ASSERT_EQUAL(sluiced_stop(&p), 0);
    sluiced_cleanup(&p);
}

static void start_and_wait(sluice_client *c, const char *prefix, int n) {
    char **ids = calloc((size_t)n, sizeof *ids);
    for (int i = 0; i < n; i++) {
        char text[64];
        snprintf(text, sizeof text, "%s %d", prefix, i);
        sluice_prompt *pr = sluice_prompt_text(text);
        CU_ASSERT_EQUAL(sluice_start_nowait(c, pr, &ids[i]), 0);
        sluice_prompt_free(pr);
    }
    sluice_response **rs = NULL;
    size_t n_rs = 0;
    CU_ASSERT_EQUAL(sluice_wait_for_all(c, (const char *const *)ids, (size_t)n, 30000, &rs, &n_rs),
                    0);
    CU_ASSERT_EQUAL(n_rs, (size_t)n);
    sluice_responses_free(rs, n_rs);
    for (int i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

/* A session's tracker is persisted and restored by a graceful restart; a reset before the
 * restart is what comes back (the record is rewritten whenever the tracker changed). */
static void test_tracker_survives_restart(void) {
    sluiced_proc p;
    CU_ASSERT_EQUAL_FATAL(sluiced_start(&p, NULL), 0);
    sluice_client *c = make_client(p.target, 20);
    CU_ASSERT_EQUAL_FATAL(sluice_client_open(c), 0);
    char *session = strdup(sluice_client_session_id(c));
    start_and_wait(c, "tracked", 30);
    sluice_tracker t;
    CU_ASSERT_EQUAL(sluice_client_reset_tracker(c, false, &t), 0);
    CU_ASSERT_EQUAL(t.succeeded, 30); /* the counts before the reset */
    start_and_wait(c, "after reset", 7);
    CU_ASSERT_EQUAL(sluiced_stop(&p), 0);

    sluice_client *c2 = restart_and_attach(&p, session, 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
    CU_ASSERT_EQUAL(sluice_client_status(c2, &t), 0);
    CU_ASSERT_EQUAL(t.succeeded, 7);
    CU_ASSERT_EQUAL(t.total, 7);
    CU_ASSERT_EQUAL(t.in_progress, 0);
    start_and_wait(c2, "after restart", 3);
    CU_ASSERT_EQUAL(sluice_client_close(c2, &t), 0);
    CU_ASSERT_EQUAL(t.succeeded, 10);
    free(session);
    sluice_client_free(c);
    sluice_client_free(c2);
    CU_ASSERT_EQUAL(sluiced_stop(&p), 0);
    sluiced_cleanup(&p);
}

/* The session's tracker right after a restart (status read through a new client). */
static void status_after_restart(sluiced_proc *p, const char *session, sluice_tracker *t) {
    sluice_client *c = restart_and_attach(p, session, 100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(sluice_client_status(c, t), 0);
    sluice_client_detach(c);
    sluice_client_free(c);
}

/* Regression: a session's total grew on every restart by the number of tasks that resumed
 * (100 -> 199 -> 298 over two restarts: the resumed tasks were counted again when they
 * were submitted to the dispatcher), and elapsed started again from zero. Restarted twice,
 * once by kill -9 right after Start answered (before any periodic persist) and once by a
 * drain, the tracker still counts each task once and its clock goes on. */
static void test_restart_counts_each_task_once(void) {
    enum { N = 100 };
    sluiced_proc p;
    CU_ASSERT_EQUAL_FATAL(sluiced_start(&p, NULL), 0);
    fake_provider_set_latency(p.fake, 60000, 0); /* every task stays unfinished */
    sluice_client *c = make_client(p.target, 100);
    CU_ASSERT_EQUAL_FATAL(sluice_client_open(c), 0);
    char *session = strdup(sluice_client_session_id(c));
    sluice_prompt *ps[N];
    for (int i = 0; i < N; i++) {
        char text[64];
        snprintf(text, sizeof text, "counted once %d", i);
        ps[i] = sluice_prompt_text(text);
    }
    char **ids = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_start_many(c, (const sluice_prompt *const *)ps, N, &ids), 0);
    sluice_tracker t0, t1, t2;
    CU_ASSERT_EQUAL(sluice_client_status(c, &t0), 0);
    CU_ASSERT_EQUAL(t0.total, N);
    sluiced_kill(&p);

    status_after_restart(&p, session, &t1);
    CU_ASSERT_EQUAL(t1.total, N);
    CU_ASSERT_EQUAL(t1.in_progress + t1.queued, N); /* all of them resumed */
    CU_ASSERT_TRUE(t1.elapsed_s > t0.elapsed_s);
    CU_ASSERT_EQUAL(sluiced_stop(&p), 0); /* the drain leaves them unfinished */

    status_after_restart(&p, session, &t2);
    CU_ASSERT_EQUAL(t2.total, N);
    CU_ASSERT_TRUE(t2.elapsed_s > t1.elapsed_s);
    fprintf(stderr, "\n  total %llu -> %llu -> %llu, elapsed %.3f -> %.3f -> %.3f s\n",
            (unsigned long long)t0.total, (unsigned long long)t1.total,
            (unsigned long long)t2.total, t0.elapsed_s, t1.elapsed_s, t2.elapsed_s);

    CU_ASSERT_EQUAL(sluiced_stop(&p), 0);
    fake_provider_set_latency(p.fake, 0, 0);
    sluice_client *c3 = restart_and_attach(&p, session, 100); /* now they finish */
    CU_ASSERT_PTR_NOT_NULL_FATAL(c3);
    sluice_response **rs = NULL;
    size_t n_rs = 0;
    CU_ASSERT_EQUAL(sluice_wait_for_all(c3, (const char *const *)ids, N, 60000, &rs, &n_rs), 0);
    sluice_tracker fin;
    CU_ASSERT_EQUAL(sluice_client_close(c3, &fin), 0);
    CU_ASSERT_EQUAL(fin.total, N);
    CU_ASSERT_EQUAL(fin.succeeded, N);
    sluice_responses_free(rs, n_rs);
    sluice_task_ids_free(ids, N);
    for (int i = 0; i < N; i++)
        sluice_prompt_free(ps[i]);
    free(session);
    sluice_client_detach(c);
    sluice_client_free(c);
    sluice_client_free(c3);
    CU_ASSERT_EQUAL(sluiced_stop(&p), 0);
    sluiced_cleanup(&p);
}

/* What sluiced counted over all its tasks, from its metrics. */
typedef struct counted {
    uint64_t succeeded, cancelled, attempts;
} counted;

static uint64_t series(const sluiced_proc *p, const char *name) {
    double v = sluiced_metric(p, name);
    CU_ASSERT_TRUE(v >= 0);
    return v >= 0 ? (uint64_t)v : 0;
}

/* Waits (up to 30 s) until sluiced holds no task, then reads what it counted. */
static void counted_when_idle(const sluiced_proc *p, counted *c) {
    for (int i = 0; i < 3000 && sluiced_metric(p, "sluice_tasks_alive") != 0; i++)
        usleep(10000);
    CU_ASSERT_EQUAL(sluiced_metric(p, "sluice_tasks_alive"), 0);
    c->succeeded = series(p, "sluice_tasks_total{outcome=\"succeeded\"}");
    c->cancelled = series(p, "sluice_tasks_total{outcome=\"cancelled\"}");
    c->attempts = series(p, "sluice_attempts_total");
}

enum { RESEND_N = 200, RESEND_CONCURRENCY = 20 };

/* A batch's results, counted on the batch's thread and read on the test's. */
typedef struct delivered {
    atomic_size_t n;
    atomic_bool seen[RESEND_N]; /* by prompt index */
} delivered;

static void count_result(void *ud, sluice_response *r) {
    delivered *d = ud;
    uint64_t i = sluice_response_index(r);
    if (i < RESEND_N)
        atomic_store(&d->seen[i], true);
    atomic_fetch_add(&d->n, 1);
    sluice_response_free(r);
}

/* A batch whose stream broke is re-sent whole: what had finished comes from the cache, and
 * only what had not goes upstream, once.
 *
 * The counts are sluiced's own (its metrics), read once it holds no task of the broken
 * batch. The fake's counters serve only as bounds checked at the end: a request that
 * sluiced sent before it processed the cancel may reach the fake at any later time, so a
 * snapshot of them taken right after the cancel can miss some. */
static void test_resend_broken_batch(void) {
    enum { N = RESEND_N, CONC = RESEND_CONCURRENCY };
    sluiced_proc p;
    CU_ASSERT_EQUAL_FATAL(sluiced_start(&p, NULL), 0);
    fake_provider_set_latency(p.fake, 50, 400);
    sluice_client *c = make_client(p.target, CONC); /* each batch on a session of its own */
    sluice_prompt *ps[N];
    for (int i = 0; i < N; i++) {
        char text[64];
        snprintf(text, sizeof text, "resumable %d", i);
        ps[i] = sluice_prompt_text(text);
    }
    counted c0, c1, c2;
    counted_when_idle(&p, &c0);
    delivered got;
    atomic_init(&got.n, 0);
    for (int i = 0; i < N; i++)
        atomic_init(&got.seen[i], false);
    sluice_batch *b = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_process_prompts_async(c, ps, N, NULL, count_result, &got, &b), 0);
    for (int i = 0; i < 6000 && atomic_load(&got.n) < 60; i++) /* up to 30 s */
        usleep(5000);
    CU_ASSERT_TRUE(atomic_load(&got.n) >= 60);
    /* From here on a request waits a minute for its answer: the broken batch ends through
     * sluiced's cancel, not by running out of prompts. */
    fake_provider_set_latency(p.fake, 60000, 0);
    sluice_batch_cancel(b); /* the stream breaks */
    sluice_batch_free(b);
    size_t first_run = atomic_load(&got.n); /* the batch's thread is joined */

    counted_when_idle(&p, &c1); /* sluiced ended every task of the broken batch */
    uint64_t ok1 = c1.succeeded - c0.succeeded, cancelled1 = c1.cancelled - c0.cancelled;
    uint64_t sent1 = c1.attempts - c0.attempts;
    CU_ASSERT_EQUAL(ok1 + cancelled1, N);
    CU_ASSERT_TRUE(ok1 >= first_run && cancelled1 > 0); /* broken mid-way */
    /* Nothing was sent for a cancelled prompt: only those in flight when sluiced processed
     * the cancel (at most CONC) went upstream without finishing. */
    CU_ASSERT_TRUE(sent1 <= ok1 + CONC);

    fake_provider_set_latency(p.fake, 50, 400);
    sluice_response **rs = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_process_prompts(c, ps, N, NULL, &rs), 0);
    size_t cached = 0;
    for (int i = 0; i < N; i++) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(rs[i]);
        CU_ASSERT_FALSE(sluice_response_is_error(rs[i]));
        cached += sluice_response_local_cache_hit(rs[i]);
        if (atomic_load(&got.seen[i])) /* a result the client had is answered from the cache */
            CU_ASSERT_TRUE(sluice_response_local_cache_hit(rs[i]));
    }
    /* every prompt the broken batch finished, and those whose attempt was on its way when it
     * broke: already sent, their answers were let land in the cache */
    CU_ASSERT_TRUE(cached >= ok1 && cached <= sent1);
    counted_when_idle(&p, &c2);
    uint64_t sent2 = c2.attempts - c1.attempts;
    CU_ASSERT_EQUAL(sent2, N - cached); /* the rest, once each */
    fprintf(stderr, "\n  broken after %zu results: %llu finished, %llu cancelled, %llu re-sent\n",
            first_run, (unsigned long long)ok1, (unsigned long long)cancelled1,
            (unsigned long long)sent2);
    /* The provider saw every prompt, and no request sluiced did not count. */
    fake_counters fc;
    fake_provider_counters(p.fake, &fc);
    CU_ASSERT_EQUAL(fc.distinct_requests, N);
    CU_ASSERT_TRUE(fc.total <= sent1 + sent2);
    sluice_responses_free(rs, N);
    for (int i = 0; i < N; i++)
        sluice_prompt_free(ps[i]);
    sluice_client_free(c);
    CU_ASSERT_EQUAL(sluiced_stop(&p), 0);
    sluiced_cleanup(&p);
}

/* Regression: a drain while Start'ed tasks are still upstream and a batch (on a session of
 * its own) still streams. The tasks' responses leaked at shutdown (LeakSanitizer made the
 * ASan build exit 1), and sessions were freed whatever their references. sluiced must exit
 * 0 (the harness checks), and the unfinished tasks resume at the next start. */
static void test_drain_with_unfinished_tasks(void) {
    sluiced_proc p;
    sluiced_opts o;
    memset(&o, 0, sizeof o);
    o.config_json = "{\"drain_grace_ms\": 300}";
    CU_ASSERT_EQUAL_FATAL(sluiced_start(&p, &o), 0);
    fake_provider_set_latency(p.fake, 20000, 0);
    sluice_client *c = make_client(p.target, 100);
    CU_ASSERT_EQUAL_FATAL(sluice_client_open(c), 0);
    char *session = strdup(sluice_client_session_id(c));
    enum { N = 40, NB = 10 };
    sluice_prompt *ps[N + NB]; /* all different: none shares another's upstream call */
    for (int i = 0; i < N + NB; i++) {
        char text[64];
        snprintf(text, sizeof text, "unfinished at the drain %d", i);
        ps[i] = sluice_prompt_text(text);
    }
    char **ids = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_start_many(c, (const sluice_prompt *const *)ps, N, &ids), 0);
    sluice_client *bc = make_client(p.target, 100); /* not opened: a session of its own */
    delivered got;
    atomic_init(&got.n, 0);
    for (int i = 0; i < RESEND_N; i++)
        atomic_init(&got.seen[i], false);
    sluice_batch *b = NULL;
    CU_ASSERT_EQUAL_FATAL(
        sluice_process_prompts_async(bc, ps + N, NB, NULL, count_result, &got, &b), 0);
    fake_counters fc = {0};
    for (int i = 0; i < 3000 && fc.in_flight < N + NB; i++) { /* up to 30 s */
        fake_provider_counters(p.fake, &fc);
        usleep(10000);
    }
    CU_ASSERT_EQUAL(fc.in_flight, N + NB);
    CU_ASSERT_EQUAL(sluiced_stop(&p), 0);
    CU_ASSERT_NOT_EQUAL(sluice_batch_wait(b), 0); /* the drain ended it */
    CU_ASSERT_EQUAL(atomic_load(&got.n), 0);
    sluice_batch_free(b);
    sluice_client_free(bc);

    fake_provider_set_latency(p.fake, 0, 0);
    sluice_client *c2 = restart_and_attach(&p, session, 100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
    sluice_response **rs = NULL;
    size_t n_rs = 0;
    CU_ASSERT_EQUAL(sluice_wait_for_all(c2, (const char *const *)ids, N, 60000, &rs, &n_rs), 0);
    CU_ASSERT_EQUAL_FATAL(n_rs, N);
    for (int i = 0; i < N; i++) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(rs[i]);
        CU_ASSERT_FALSE(sluice_response_is_error(rs[i]));
    }
    sluice_responses_free(rs, n_rs);
    sluice_task_ids_free(ids, N);
    for (int i = 0; i < N + NB; i++)
        sluice_prompt_free(ps[i]);
    free(session);
    sluice_client_detach(c); /* its session is the one c2 uses */
    sluice_client_free(c);
    sluice_client_free(c2);
    CU_ASSERT_EQUAL(sluiced_stop(&p), 0);
    sluiced_cleanup(&p);
}

int main(void) {
    static const test_case cases[] = {
        {"kill_9_and_resume", test_kill_9_and_resume},
        {"resend_broken_batch", test_resend_broken_batch},
        {"tracker_survives_restart", test_tracker_survives_restart},
        {"drain_with_unfinished_tasks", test_drain_with_unfinished_tasks},
        {"restart_counts_each_task_once", test_restart_counts_each_task_once},
        {NULL, NULL},
    };
    return test_run_suite("crash_resume", cases);
}
