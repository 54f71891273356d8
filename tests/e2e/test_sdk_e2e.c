/*
 * End to end: the C SDK -> sluiced (the real binary) -> the fake provider. Every RPC, the
 * seed's regression (a batch and start/wait_for_all in parallel on one session), retries
 * and fallback, cancel, deadlines, tenancy and bad inputs. Each test ends by checking that
 * sluiced drained on SIGTERM and exited 0 (under ASan that also means no leak).
 */
#include "e2e/sluiced_harness.h"
#include "sluice/sluice.h"
#include "unit/test_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static sluiced_proc P;

static void start(const sluiced_opts *o) {
    CU_ASSERT_EQUAL_FATAL(sluiced_start(&P, o), 0);
}

static void stop(void) {
    CU_ASSERT_EQUAL(sluiced_stop(&P), 0);
    sluiced_cleanup(&P);
}

static sluice_client *client_with(const char *const *models, const double *weights, size_t n,
                                  const char *token, sluice_cache_mode mode) {
    sluice_model ms[4];
    memset(ms, 0, sizeof ms);
    for (size_t i = 0; i < n; i++) {
        ms[i].name = models[i];
        ms[i].weight = weights ? weights[i] : 1;
    }
    sluice_client_options o;
    memset(&o, 0, sizeof o);
    o.models = ms;
    o.n_models = n;
    o.auth_token = token;
    o.cache_mode = mode;
    o.max_attempts = 3;
    sluice_client *c = NULL;
    CU_ASSERT_EQUAL(sluice_client_new(P.target, &o, &c), 0);
    return c;
}

static sluice_client *client(void) {
    const char *m[] = {"m-a", "m-b"};
    return client_with(m, NULL, 2, NULL, SLUICE_CACHE_READ_WRITE);
}

/* n prompts "<prefix> <i>". */
static sluice_prompt **texts(const char *prefix, size_t n) {
    sluice_prompt **ps = calloc(n, sizeof *ps);
    for (size_t i = 0; i < n; i++) {
        char buf[128];
        snprintf(buf, sizeof buf, "%s %d", prefix, (int)i);
        ps[i] = sluice_prompt_text(buf);
    }
    return ps;
}

static void free_prompts(sluice_prompt **ps, size_t n) {
    for (size_t i = 0; i < n; i++)
        sluice_prompt_free(ps[i]);
    free(ps);
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_list_models(void) {
    start(NULL);
    sluice_client *c = client();
    sluice_model_info *m = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(sluice_list_models(c, &m, &n), 0);
    CU_ASSERT_EQUAL(n, 4);
    bool gemini = false;
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_TRUE(m[i].available);
        if (strcmp(m[i].name, "m-g") == 0) {
            gemini = true;
            CU_ASSERT_STRING_EQUAL(m[i].provider, "gemini");
            CU_ASSERT_STRING_EQUAL(m[i].upstream_model, "up-g");
        }
    }
    CU_ASSERT_TRUE(gemini);
    free(m);
    sluice_client_free(c);
    stop();
}

static void test_batch_results_in_input_order(void) {
    start(NULL);
    sluice_client *c = client();
    size_t n = 60;
    sluice_prompt **ps = texts("ordered prompt", n);
    sluice_response **rs = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_process_prompts(c, ps, n, NULL, &rs), 0);
    for (size_t i = 0; i < n; i++) {
        char want[64];
        snprintf(want, sizeof want, "ordered prompt %d", (int)i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(rs[i]);
        CU_ASSERT_FALSE(sluice_response_is_error(rs[i]));
        CU_ASSERT_PTR_NOT_NULL(strstr(sluice_response_completion(rs[i]), want));
        CU_ASSERT_EQUAL(sluice_response_index(rs[i]), i);
        CU_ASSERT_TRUE(strlen(sluice_response_task_id(rs[i])) > 0);
    }
    sluice_responses_free(rs, n);
    /* completions only, same prompts: same texts, now from the cache */
    char **texts_out = NULL;
    CU_ASSERT_EQUAL(sluice_process_prompts_completions(c, ps, n, NULL, &texts_out), 0);
    for (size_t i = 0; i < n; i++) {
        char want[64];
        snprintf(want, sizeof want, "ordered prompt %d", (int)i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(texts_out[i]);
        CU_ASSERT_PTR_NOT_NULL(strstr(texts_out[i], want));
    }
    sluice_completions_free(texts_out, n);
    fake_counters fc;
    fake_provider_counters(P.fake, &fc);
    CU_ASSERT_EQUAL(fc.total, n); /* the second batch never went upstream */
    free_prompts(ps, n);
    sluice_client_free(c);
    stop();
}

/* Regression: the summary (and the end of the call) once overtook results another thread
 * had just taken to send, losing them. Many fast cached batches make the race likely. */
static void test_summary_never_overtakes_results(void) {
    start(NULL);
    sluice_client *c = client();
    size_t n = 300;
    sluice_prompt **ps = texts("race", n);
    sluice_response **rs = NULL;
    CU_ASSERT_EQUAL(sluice_process_prompts(c, ps, n, NULL, &rs), 0);
    sluice_responses_free(rs, n);
    usleep(200000); /* answers reach the cache */
    for (int round = 0; round < 30; round++) {
        char **out = NULL;
        CU_ASSERT_EQUAL(sluice_process_prompts_completions(c, ps, n, NULL, &out), 0);
        size_t missing = 0;
        for (size_t i = 0; i < n; i++)
            missing += out[i] == NULL;
        CU_ASSERT_EQUAL(missing, 0);
        sluice_completions_free(out, n);
    }
    free_prompts(ps, n);
    sluice_client_free(c);
    stop();
}

typedef struct collected {
    pthread_mutex_t mu;
    size_t n, progress;
    uint64_t seen[256];
} collected;

static void on_result(void *ud, sluice_response *r) {
    collected *c = ud;
    pthread_mutex_lock(&c->mu);
    if (c->n < 256)
        c->seen[c->n++] = sluice_response_index(r);
    pthread_mutex_unlock(&c->mu);
    sluice_response_free(r);
}

static void on_progress(void *ud, const sluice_tracker *t, uint64_t done, uint64_t expected,
                        double rate) {
    collected *c = ud;
    pthread_mutex_lock(&c->mu);
    c->progress++;
    pthread_mutex_unlock(&c->mu);
}

static void test_batch_callback_and_progress(void) {
    start(NULL);
    fake_provider_set_latency(P.fake, 100, 100);
    sluice_client *c = client();
    size_t n = 40;
    sluice_prompt **ps = texts("callback prompt", n);
    collected col;
    memset(&col, 0, sizeof col);
    pthread_mutex_init(&col.mu, NULL);
    sluice_batch_options o;
    memset(&o, 0, sizeof o);
    o.show_progress = true;
    o.progress_interval_ms = 20;
    o.on_progress = on_progress;
    o.progress_ud = &col;
    CU_ASSERT_EQUAL(sluice_process_prompts_cb(c, ps, n, &o, on_result, &col), 0);
    CU_ASSERT_EQUAL(col.n, n);
    bool seen[64] = {false};
    for (size_t i = 0; i < col.n; i++) {
        CU_ASSERT_TRUE(col.seen[i] < n);
        CU_ASSERT_FALSE(seen[col.seen[i]]); /* each index exactly once */
        seen[col.seen[i]] = true;
    }
    CU_ASSERT_TRUE(col.progress >= 1);
    free_prompts(ps, n);
    sluice_client_free(c);
    stop();
}

static void test_sessions_and_tracker(void) {
    start(NULL);
    sluice_client *c = client();
    sluice_tracker t;
    CU_ASSERT_EQUAL(sluice_client_status(c, &t), SLUICE_ECLOSED);
    CU_ASSERT_EQUAL(sluice_client_open(c), 0);
    CU_ASSERT_EQUAL(sluice_client_open(c), SLUICE_EBUSY);
    sluice_prompt **ps = texts("tracked", 10);
    sluice_response **rs = NULL;
    CU_ASSERT_EQUAL(sluice_process_prompts(c, ps, 10, NULL, &rs), 0);
    sluice_responses_free(rs, 10);
    CU_ASSERT_EQUAL(sluice_client_status(c, &t), 0);
    CU_ASSERT_EQUAL(t.total, 10);
    CU_ASSERT_EQUAL(t.succeeded, 10);
    CU_ASSERT_EQUAL(t.in_progress, 0);
    CU_ASSERT_TRUE(t.cost > 0);
    CU_ASSERT_TRUE(t.input_tokens > 0);
    sluice_tracker before;
    CU_ASSERT_EQUAL(sluice_client_reset_tracker(c, false, &before), 0);
    CU_ASSERT_EQUAL(before.succeeded, 10);
    CU_ASSERT_EQUAL(sluice_client_status(c, &t), 0);
    CU_ASSERT_EQUAL(t.total, 0);
    CU_ASSERT_EQUAL(t.succeeded, 0);
    /* the same prompts again: cached, counted once each */
    CU_ASSERT_EQUAL(sluice_process_prompts(c, ps, 10, NULL, &rs), 0);
    for (int i = 0; i < 10; i++)
        CU_ASSERT_TRUE(sluice_response_local_cache_hit(rs[i]));
    sluice_responses_free(rs, 10);
    sluice_tracker final;
    CU_ASSERT_EQUAL(sluice_client_close(c, &final), 0);
    CU_ASSERT_EQUAL(final.total, 10);
    CU_ASSERT_EQUAL(final.cached, 10);
    CU_ASSERT_EQUAL(final.succeeded, 10);
    CU_ASSERT_EQUAL(final.attempts, 0);
    CU_ASSERT_EQUAL(sluice_client_close(c, NULL), SLUICE_ECLOSED);
    free_prompts(ps, 10);
    sluice_client_free(c);
    stop();
}

/* ---- the seed's regression: batch and start/wait_for_all in parallel on one session -- */

typedef struct par_batch {
    sluice_client *c;
    sluice_prompt **ps;
    size_t n;
    int rc;
    sluice_response **rs;
} par_batch;

static void *batch_thread(void *arg) {
    par_batch *b = arg;
    b->rc = sluice_process_prompts(b->c, b->ps, b->n, NULL, &b->rs);
    return NULL;
}

static void test_batch_and_start_in_parallel(void) {
    start(NULL);
    fake_provider_set_latency(P.fake, 5, 10);
    sluice_client *c = client();
    CU_ASSERT_EQUAL_FATAL(sluice_client_open(c), 0);
    size_t n = 100;
    par_batch b = {c, texts("batch side", n), n, -1, NULL};
    pthread_t th;
    pthread_create(&th, NULL, batch_thread, &b);
    char **ids = calloc(n, sizeof *ids);
    sluice_prompt **sp = texts("start side", n);
    for (size_t i = 0; i < n; i++)
        CU_ASSERT_EQUAL(sluice_start_nowait(c, sp[i], &ids[i]), 0);
    sluice_response **ws = NULL;
    size_t nw = 0;
    CU_ASSERT_EQUAL(sluice_wait_for_all(c, (const char *const *)ids, n, 60000, &ws, &nw), 0);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(b.rc, 0);
    CU_ASSERT_EQUAL(nw, n);
    for (size_t i = 0; i < n; i++) {
        char want[64];
        snprintf(want, sizeof want, "start side %d", (int)i);
        CU_ASSERT_PTR_NOT_NULL(strstr(sluice_response_completion(ws[i]), want));
        CU_ASSERT_STRING_EQUAL(sluice_response_task_id(ws[i]), ids[i]);
        snprintf(want, sizeof want, "batch side %d", (int)i);
        CU_ASSERT_PTR_NOT_NULL(strstr(sluice_response_completion(b.rs[i]), want));
    }
    sluice_tracker t;
    CU_ASSERT_EQUAL(sluice_client_status(c, &t), 0);
    CU_ASSERT_EQUAL(t.total, 2 * n); /* never double counted */
    CU_ASSERT_EQUAL(t.succeeded, 2 * n);
    CU_ASSERT_EQUAL(t.in_progress, 0);
    CU_ASSERT_EQUAL(t.queued, 0);
    CU_ASSERT_EQUAL(t.cached, 0);
    /* again, both ways: every answer comes from the cache, the same text */
    sluice_response **again = NULL;
    CU_ASSERT_EQUAL(sluice_process_prompts(c, sp, n, NULL, &again), 0);
    char **only = NULL;
    CU_ASSERT_EQUAL(sluice_process_prompts_completions(c, b.ps, n, NULL, &only), 0);
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_TRUE(sluice_response_local_cache_hit(again[i]));
        CU_ASSERT_STRING_EQUAL(sluice_response_completion(again[i]),
                               sluice_response_completion(ws[i]));
        CU_ASSERT_STRING_EQUAL(only[i], sluice_response_completion(b.rs[i]));
    }
    sluice_tracker final;
    CU_ASSERT_EQUAL(sluice_client_close(c, &final), 0);
    CU_ASSERT_EQUAL(final.total, 4 * n);
    CU_ASSERT_EQUAL(final.cached, 2 * n);
    CU_ASSERT_EQUAL(final.succeeded, 4 * n);
    /* after close: results stay readable by id, nothing is left running */
    sluice_response *r = NULL;
    CU_ASSERT_EQUAL(sluice_wait_for(c, ids[0], 1000, &r), 0);
    CU_ASSERT_PTR_NOT_NULL(r);
    sluice_response_free(r);
    sluice_responses_free(ws, nw);
    sluice_responses_free(b.rs, n);
    sluice_responses_free(again, n);
    sluice_completions_free(only, n);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    free_prompts(sp, n);
    free_prompts(b.ps, n);
    sluice_client_free(c);
    stop();
}

static void test_start_wait_as_completed_cancel(void) {
    start(NULL);
    fake_provider_set_latency(P.fake, 20, 40);
    sluice_client *c = client();
    size_t n = 20;
    sluice_prompt **ps = texts("as completed", n);
    char *ids[20];
    for (size_t i = 0; i < n; i++)
        CU_ASSERT_EQUAL(sluice_start_nowait(c, ps[i], &ids[i]), 0);
    sluice_iter *it = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_as_completed(c, (const char *const *)ids, n, &it), 0);
    size_t got = 0;
    bool seen[20] = {false};
    sluice_response *r;
    int rc;
    while ((rc = sluice_iter_next(it, &r)) == 0) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(sluice_response_task_id(r), ids[i]) == 0) {
                CU_ASSERT_FALSE(seen[i]);
                seen[i] = true;
            }
        }
        got++;
        sluice_response_free(r);
    }
    CU_ASSERT_EQUAL(rc, SLUICE_EEOF);
    CU_ASSERT_EQUAL(got, n);
    sluice_iter_free(it);
    /* blocking start */
    CU_ASSERT_EQUAL(sluice_start(c, ps[0], &r), 0);
    CU_ASSERT_FALSE(sluice_response_is_error(r));
    sluice_response_free(r);
    /* cancel a slow task */
    fake_provider_set_latency(P.fake, 5000, 0);
    sluice_prompt *slow = sluice_prompt_text("cancel me");
    char *sid = NULL;
    CU_ASSERT_EQUAL(sluice_start_nowait(c, slow, &sid), 0);
    size_t cancelled = 0;
    const char *one[] = {sid};
    CU_ASSERT_EQUAL(sluice_cancel(c, one, 1, &cancelled), 0);
    CU_ASSERT_EQUAL(cancelled, 1);
    CU_ASSERT_EQUAL(sluice_wait_for(c, sid, 10000, &r), 0);
    CU_ASSERT_TRUE(sluice_response_is_error(r));
    CU_ASSERT_EQUAL(sluice_response_error_kind(r), SLUICE_ERROR_CANCELLED);
    sluice_response_free(r);
    free(sid);
    sluice_prompt_free(slow);
    /* start_many: one call, ids in the order of the prompts */
    fake_provider_set_latency(P.fake, 0, 0);
    char **many = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_start_many(c, (const sluice_prompt *const *)ps, 5, &many), 0);
    sluice_response **rs = NULL;
    size_t n_rs = 0;
    CU_ASSERT_EQUAL(sluice_wait_for_all(c, (const char *const *)many, 5, 10000, &rs, &n_rs), 0);
    CU_ASSERT_EQUAL_FATAL(n_rs, 5);
    for (size_t i = 0; i < 5; i++) {
        char want[64];
        snprintf(want, sizeof want, "as completed %zu", i);
        CU_ASSERT_PTR_NOT_NULL(strstr(sluice_response_completion(rs[i]), want));
    }
    sluice_responses_free(rs, n_rs);
    sluice_task_ids_free(many, 5);
    CU_ASSERT_EQUAL(sluice_start_many(c, (const sluice_prompt *const *)ps, 0, &many),
                    SLUICE_EINVAL);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free_prompts(ps, n);
    sluice_client_free(c);
    stop();
}

static void test_retries_and_fallback_visible(void) {
    start(NULL);
    fake_provider_force_status(P.fake, "up-a", 503);
    const char *m[] = {"m-a", "m-b"};
    double w[] = {1, 0};
    sluice_client *c = client_with(m, w, 2, NULL, SLUICE_CACHE_OFF);
    sluice_prompt **ps = texts("fallback", 3);
    sluice_response **rs = NULL;
    CU_ASSERT_EQUAL(sluice_process_prompts(c, ps, 3, NULL, &rs), 0);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_STRING_EQUAL(sluice_response_model_requested(rs[i]), "m-a");
        CU_ASSERT_STRING_EQUAL(sluice_response_model_used(rs[i]), "m-b");
        CU_ASSERT_EQUAL(sluice_response_n_attempts(rs[i]), 2);
        sluice_attempt a = sluice_response_attempt(rs[i], 0);
        CU_ASSERT_EQUAL(a.status_code, 503);
        CU_ASSERT_STRING_EQUAL(a.model, "m-a");
    }
    sluice_responses_free(rs, 3);
    /* a prompt that always fails: an error response after max_attempts, not a call error */
    sluice_prompt *bad = sluice_prompt_text("doomed [[status:500]]");
    CU_ASSERT_EQUAL(sluice_process_prompts(c, &bad, 1, NULL, &rs), 0);
    CU_ASSERT_TRUE(sluice_response_is_error(rs[0]));
    CU_ASSERT_EQUAL(sluice_response_n_attempts(rs[0]), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(sluice_response_error_message(rs[0]), "giving up"));
    sluice_responses_free(rs, 1);
    sluice_prompt_free(bad);
    free_prompts(ps, 3);
    sluice_client_free(c);
    stop();
}

static void test_cancel_mid_batch_and_deadline(void) {
    start(NULL);
    /* answers take a minute: every prompt of the batch ends through the cancel */
    fake_provider_set_latency(P.fake, 60000, 0);
    sluice_client *c = client();
    CU_ASSERT_EQUAL(sluice_client_open(c), 0);
    size_t n = 30;
    sluice_prompt **ps = texts("slow batch", n);
    collected col;
    memset(&col, 0, sizeof col);
    pthread_mutex_init(&col.mu, NULL);
    sluice_batch *b = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_process_prompts_async(c, ps, n, NULL, on_result, &col, &b), 0);
    bool upstream = false;
    for (int i = 0; i < 3000 && !upstream; i++) { /* up to 30 s */
        fake_counters fc;
        fake_provider_counters(P.fake, &fc);
        upstream = fc.in_flight >= 5;
        if (!upstream)
            usleep(10000);
    }
    CU_ASSERT_TRUE(upstream); /* the cancel must meet tasks in flight upstream */
    sluice_batch_cancel(b);
    CU_ASSERT_EQUAL(sluice_batch_wait(b), SLUICE_ECANCELLED);
    sluice_batch_free(b);
    /* the server cancelled the batch's tasks (it learns of the cancel asynchronously):
     * nothing stays in progress */
    sluice_tracker t;
    for (int i = 0; i < 3000; i++) { /* up to 30 s */
        CU_ASSERT_EQUAL(sluice_client_status(c, &t), 0);
        if (t.in_progress == 0 && t.queued == 0)
            break;
        usleep(10000);
    }
    CU_ASSERT_EQUAL(t.in_progress, 0);
    CU_ASSERT_EQUAL(t.cancelled, n);
    /* a deadline shorter than the provider's latency */
    sluice_batch_options o;
    memset(&o, 0, sizeof o);
    o.timeout_ms = 300;
    sluice_response **rs = NULL;
    CU_ASSERT_EQUAL(sluice_process_prompts(c, ps, 2, &o, &rs), SLUICE_ETIMEDOUT);
    sluice_responses_free(rs, 2);
    fake_provider_set_latency(P.fake, 0, 0);
    sluice_prompt *fine = sluice_prompt_text("still serving");
    sluice_response *r = NULL;
    CU_ASSERT_EQUAL(sluice_start(c, fine, &r), 0);
    sluice_response_free(r);
    sluice_prompt_free(fine);
    free_prompts(ps, n);
    sluice_client_free(c);
    stop();
}

static void test_tenancy_isolation(void) {
    sluiced_opts o;
    memset(&o, 0, sizeof o);
    o.tokens = "alice tok-alice\nbob tok-bob\n";
    start(&o);
    const char *m[] = {"m-a"};
    sluice_client *alice = client_with(m, NULL, 1, "tok-alice", SLUICE_CACHE_READ_WRITE);
    sluice_client *bob = client_with(m, NULL, 1, "tok-bob", SLUICE_CACHE_READ_WRITE);
    sluice_client *nobody = client_with(m, NULL, 1, NULL, SLUICE_CACHE_READ_WRITE);
    sluice_client *wrong = client_with(m, NULL, 1, "tok-mallory", SLUICE_CACHE_READ_WRITE);
    CU_ASSERT_EQUAL_FATAL(sluice_client_open(alice), 0);
    sluice_prompt *p = sluice_prompt_text("alice's secret");
    char *id = NULL;
    CU_ASSERT_EQUAL(sluice_start_nowait(alice, p, &id), 0);
    sluice_response *r = NULL;
    CU_ASSERT_EQUAL(sluice_wait_for(alice, id, 10000, &r), 0);
    sluice_response_free(r);
    CU_ASSERT_EQUAL(sluice_wait_for(bob, id, 1000, &r), SLUICE_ENOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(sluice_last_error(), id));
    const char *ids[] = {id};
    size_t k;
    CU_ASSERT_EQUAL(sluice_client_open(bob), 0);
    CU_ASSERT_EQUAL(sluice_cancel(bob, ids, 1, &k), SLUICE_ENOTFOUND);
    CU_ASSERT_EQUAL(sluice_client_open(nobody), SLUICE_EAUTH);
    CU_ASSERT_EQUAL(sluice_client_open(wrong), SLUICE_EAUTH);
    /* bob asking for alice's prompt is not served alice's cached answer */
    CU_ASSERT_EQUAL(sluice_start(bob, p, &r), 0);
    CU_ASSERT_FALSE(sluice_response_local_cache_hit(r));
    sluice_response_free(r);
    free(id);
    sluice_prompt_free(p);
    sluice_client_free(alice);
    sluice_client_free(bob);
    sluice_client_free(nobody);
    sluice_client_free(wrong);
    stop();
}

static void test_bad_inputs_leave_server_serving(void) {
    start(NULL);
    sluice_client *c = client();
    sluice_response **rs = NULL;
    CU_ASSERT_EQUAL(sluice_process_prompts(c, NULL, 0, NULL, &rs), SLUICE_EINVAL);
    free(rs);
    const char *unknown[] = {"gpt-9000"};
    sluice_client *u = client_with(unknown, NULL, 1, NULL, SLUICE_CACHE_READ_WRITE);
    CU_ASSERT_EQUAL(sluice_client_open(u), SLUICE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(sluice_last_error(), "unknown model 'gpt-9000'"));
    sluice_client_free(u);
    /* a message without parts */
    sluice_prompt *bad = sluice_prompt_new();
    sluice_prompt_message(bad, SLUICE_ROLE_USER);
    char *id = NULL;
    CU_ASSERT_EQUAL(sluice_start_nowait(c, bad, &id), SLUICE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(sluice_last_error(), "messages[0]: message has no parts"));
    /* in a batch it is one error result among good ones */
    sluice_prompt *mix[2] = {bad, sluice_prompt_text("good one")};
    CU_ASSERT_EQUAL(sluice_process_prompts(c, mix, 2, NULL, &rs), 0);
    CU_ASSERT_TRUE(sluice_response_is_error(rs[0]));
    CU_ASSERT_EQUAL(sluice_response_error_kind(rs[0]), SLUICE_ERROR_INVALID_REQUEST);
    CU_ASSERT_FALSE(sluice_response_is_error(rs[1]));
    sluice_responses_free(rs, 2);
    /* an oversized message */
    size_t big = 20u << 20;
    char *huge = malloc(big + 1);
    memset(huge, 'x', big);
    huge[big] = '\0';
    sluice_prompt *hp = sluice_prompt_text(huge);
    free(huge);
    CU_ASSERT_EQUAL(sluice_start_nowait(c, hp, &id), SLUICE_ELIMIT);
    sluice_prompt_free(hp);
    /* an unknown task id */
    sluice_response *r = NULL;
    CU_ASSERT_EQUAL(sluice_wait_for(c, "local:t999999999", 100, &r), SLUICE_ENOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(sluice_last_error(), "local:t999999999"));
    CU_ASSERT_EQUAL(sluice_wait_for(c, "garbage", 100, &r), SLUICE_ENOTFOUND);
    /* still serving */
    CU_ASSERT_EQUAL(sluice_start(c, mix[1], &r), 0);
    CU_ASSERT_FALSE(sluice_response_is_error(r));
    sluice_response_free(r);
    sluice_prompt_free(bad);
    sluice_prompt_free(mix[1]);
    sluice_client_free(c);
    stop();
}

/* Regression: a Wait whose results exceeded the message limit failed (RESOURCE_EXHAUSTED)
 * and withheld every result; sluiced now sends what fits and names the rest, and
 * wait_for_all fetches the rest by itself, within the client's own limit too. */
static void test_wait_for_all_beyond_the_message_limit(void) {
    sluiced_opts so;
    memset(&so, 0, sizeof so);
    so.config_json = "{\"max_message_bytes\": 4194304}";
    start(&so);
    sluice_client *c = client();
    CU_ASSERT_EQUAL_FATAL(sluice_client_open(c), 0);
    enum { N = 10 }; /* ~1.2 MB each: three per answer */
    sluice_prompt *ps[N];
    for (int i = 0; i < N; i++) {
        char text[64];
        snprintf(text, sizeof text, "big %d [[pad:600000]]", i);
        ps[i] = sluice_prompt_text(text);
    }
    char **ids = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_start_many(c, (const sluice_prompt *const *)ps, N, &ids), 0);
    sluice_response **rs = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(sluice_wait_for_all(c, (const char *const *)ids, N, 60000, &rs, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, N);
    for (int i = 0; i < N; i++) {
        char want[32];
        snprintf(want, sizeof want, "big %d", i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(rs[i]);
        CU_ASSERT_STRING_EQUAL(sluice_response_task_id(rs[i]), ids[i]);
        CU_ASSERT_PTR_NOT_NULL(strstr(sluice_response_completion(rs[i]), want));
        CU_ASSERT_TRUE(strlen(sluice_response_completion(rs[i])) > 600000);
    }
    sluice_responses_free(rs, n);
    /* a client that accepts less than the server sends (2 MiB): one result per answer */
    sluice_model m = {.name = "m-a", .weight = 1};
    sluice_client_options o;
    memset(&o, 0, sizeof o);
    o.models = &m;
    o.n_models = 1;
    o.max_message_bytes = 2u << 20;
    sluice_client *small = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_client_new(P.target, &o, &small), 0);
    CU_ASSERT_EQUAL(sluice_wait_for_all(small, (const char *const *)ids, N, 60000, &rs, &n), 0);
    CU_ASSERT_EQUAL(n, N);
    for (size_t i = 0; i < n; i++)
        CU_ASSERT_PTR_NOT_NULL(rs[i]);
    sluice_responses_free(rs, n);
    sluice_client_free(small);
    sluice_task_ids_free(ids, N);
    for (int i = 0; i < N; i++)
        sluice_prompt_free(ps[i]);
    sluice_client_free(c);
    stop();
}

int main(void) {
    static const test_case cases[] = {
        {"list_models", test_list_models},
        {"batch_results_in_input_order", test_batch_results_in_input_order},
        {"batch_callback_and_progress", test_batch_callback_and_progress},
        {"summary_never_overtakes_results", test_summary_never_overtakes_results},
        {"sessions_and_tracker", test_sessions_and_tracker},
        {"batch_and_start_in_parallel", test_batch_and_start_in_parallel},
        {"start_wait_as_completed_cancel", test_start_wait_as_completed_cancel},
        {"retries_and_fallback_visible", test_retries_and_fallback_visible},
        {"cancel_mid_batch_and_deadline", test_cancel_mid_batch_and_deadline},
        {"tenancy_isolation", test_tenancy_isolation},
        {"bad_inputs_leave_server_serving", test_bad_inputs_leave_server_serving},
        {"wait_for_all_beyond_the_message_limit", test_wait_for_all_beyond_the_message_limit},
        {NULL, NULL},
    };
    return test_run_suite("sdk_e2e", cases);
}
