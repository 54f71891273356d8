/*
 * The dispatcher against the fake provider: completion exactly once, attempts and
 * fallback, blocklist, impossible budgets, concurrency, pacing, cooldowns, cancellation,
 * dedup and the cache. Every test checks that each task ended exactly once.
 */
#include "integration/dispatch_harness.h"
#include "fake_provider/fake_raw.h"
#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "unit/test_util.h"

#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "sluice/status.h"

#define WAIT_MS 30000

static harness *start(const harness_opts *o) {
    harness_opts def;
    memset(&def, 0, sizeof def);
    return harness_new(o ? o : &def);
}

/* Every task in [first, first+n) ended exactly once. */
static void assert_exactly_once(harness *h, uint64_t first, size_t n) {
    for (size_t i = 0; i < n; i++) {
        harness_result *r = &h->results[first + i];
        CU_ASSERT_EQUAL(r->times, 1);
    }
}

static harness_result *res(harness *h, uint64_t id) {
    return &h->results[id];
}

static void test_hundred_tasks_complete_once(void) {
    harness *h = start(NULL);
    dsession *s = harness_session(h, "m-a,m-b,m-c,m-g", 0, 0, 0, 0, CACHE_MODE_OFF);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    const char *texts[100];
    char buf[100][32];
    for (int i = 0; i < 100; i++) {
        snprintf(buf[i], sizeof buf[i], "prompt number %d", i);
        texts[i] = buf[i];
    }
    uint64_t first = harness_submit_texts(h, s, texts, 100, 100);
    CU_ASSERT_EQUAL(harness_wait(h, 100, WAIT_MS), 100);
    assert_exactly_once(h, first, 100);
    for (int i = 0; i < 100; i++) {
        harness_result *r = res(h, first + i);
        CU_ASSERT_EQUAL(r->final, DTASK_DONE);
        CU_ASSERT_FALSE(r->resp->is_error);
        CU_ASSERT_PTR_NOT_NULL(r->resp->completion);
        CU_ASSERT_PTR_NOT_NULL(strstr(r->resp->completion, buf[i]));
        CU_ASSERT_EQUAL(r->resp->n_attempts, 1);
        CU_ASSERT_TRUE(r->resp->cost > 0);
    }
    dsession_status st;
    dsession_status_get(s, clock_now_ms(), &st);
    CU_ASSERT_EQUAL(st.total, 100);
    CU_ASSERT_EQUAL(st.started, 100);
    CU_ASSERT_EQUAL(st.succeeded, 100);
    CU_ASSERT_EQUAL(st.in_progress, 0);
    CU_ASSERT_EQUAL(st.queued, 0);
    CU_ASSERT_EQUAL(st.attempts, 100);
    CU_ASSERT_TRUE(st.input_tokens > 0 && st.output_tokens > 0);
    fake_counters fc;
    fake_provider_counters(h->fake, &fc);
    CU_ASSERT_EQUAL(fc.total, 100);
    CU_ASSERT_TRUE(h->state_events >= 200); /* WAITING and IN_FLIGHT for each */
    dispatcher_session_close(h->d, s, NULL, NULL);
    dsession_unref(s);
    harness_free(h);
}

static void test_exactly_max_attempts_then_error(void) {
    harness_opts o;
    memset(&o, 0, sizeof o);
    o.dcfg.backoff_base_ms = 10;
    o.dcfg.backoff_max_ms = 20;
    harness *h = start(&o);
    dsession *s = harness_session(h, "m-a", 0, 0, 0, 3, CACHE_MODE_OFF);
    const char *t[] = {"always failing [[status:500]]"};
    uint64_t id = harness_submit_texts(h, s, t, 1, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 1, WAIT_MS), 1);
    harness_result *r = res(h, id);
    CU_ASSERT_EQUAL(r->times, 1);
    CU_ASSERT_EQUAL(r->final, DTASK_FAILED);
    CU_ASSERT_TRUE(r->resp->is_error);
    CU_ASSERT_EQUAL(r->resp->n_attempts, 3);
    CU_ASSERT_EQUAL(r->resp->status_code, 500);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->resp->error_message, "giving up after 3 attempts"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r->resp->error_message, "server error"));
    fake_model_counters mc;
    fake_provider_model_counters(h->fake, "up-a", &mc);
    CU_ASSERT_EQUAL(mc.requests, 3);
    dsession_status st;
    dsession_status_get(s, clock_now_ms(), &st);
    CU_ASSERT_EQUAL(st.failed, 1);
    CU_ASSERT_EQUAL(st.attempts, 3);
    CU_ASSERT_EQUAL(st.in_progress, 0);
    dispatcher_session_close(h->d, s, NULL, NULL);
    dsession_unref(s);
    harness_free(h);
}

static void test_transient_failures_then_success(void) {
    harness_opts o;
    memset(&o, 0, sizeof o);
    o.dcfg.backoff_base_ms = 10;
    harness *h = start(&o);
    dsession *s = harness_session(h, "m-a", 0, 0, 0, 5, CACHE_MODE_OFF);
    const char *t[] = {"flaky [[fail-first:2]]", "cut [[truncate]]", "junk [[malformed]]",
                       "dropped [[reset]]"};
    uint64_t first = harness_submit_texts(h, s, t, 4, 4);
    CU_ASSERT_EQUAL(harness_wait(h, 4, WAIT_MS), 4);
    assert_exactly_once(h, first, 4);
    CU_ASSERT_EQUAL(res(h, first)->final, DTASK_DONE);
    CU_ASSERT_EQUAL(res(h, first)->resp->n_attempts, 3);
    CU_ASSERT_EQUAL(res(h, first)->resp->attempts[0].status_code, 500);
    /* The others fail every time: never a success, always retried to the end. */
    for (int i = 1; i < 4; i++) {
        harness_result *r = res(h, first + i);
        CU_ASSERT_EQUAL(r->final, DTASK_FAILED);
        CU_ASSERT_EQUAL(r->resp->n_attempts, 5);
    }
    dispatcher_session_close(h->d, s, NULL, NULL);
    dsession_unref(s);
    harness_free(h);
}

static void test_fallback_on_503(void) {
    harness *h = start(NULL);
    fake_provider_force_status(h->fake, "up-a", 503);
    dsession *s = harness_session(h, "m-a:1,m-b:0", 0, 0, 0, 3, CACHE_MODE_OFF);
    const char *t[] = {"fall back please"};
    uint64_t id = harness_submit_texts(h, s, t, 1, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 1, WAIT_MS), 1);
    harness_result *r = res(h, id);
    CU_ASSERT_EQUAL(r->final, DTASK_DONE);
    CU_ASSERT_STRING_EQUAL(r->resp->model_requested, "m-a");
    CU_ASSERT_STRING_EQUAL(r->resp->model_used, "m-b");
    CU_ASSERT_EQUAL(r->resp->n_attempts, 2);
    CU_ASSERT_EQUAL(r->resp->attempts[0].status_code, 503);
    CU_ASSERT_STRING_EQUAL(r->resp->attempts[0].model, "m-a");
    CU_ASSERT_STRING_EQUAL(r->resp->attempts[1].model, "m-b");
    CU_ASSERT_PTR_NOT_NULL(strstr(r->resp->completion, "echo[up-b]"));
    dispatcher_session_close(h->d, s, NULL, NULL);
    dsession_unref(s);
    harness_free(h);
}

static void test_blocklist_after_404_and_401(void) {
    harness *h = start(NULL);
    fake_provider_add_unknown_model(h->fake, "up-a");
    dsession *s = harness_session(h, "m-a:1,m-b:0", 0, 0, 0, 3, CACHE_MODE_OFF);
    const char *t[] = {"first"};
    uint64_t id = harness_submit_texts(h, s, t, 1, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 1, WAIT_MS), 1);
    CU_ASSERT_EQUAL(res(h, id)->final, DTASK_DONE);
    CU_ASSERT_STRING_EQUAL(res(h, id)->resp->model_used, "m-b");
    /* m-a is blocklisted now: ten more prompts never touch it. */
    const char *t2[] = {"second"};
    uint64_t id2 = harness_submit_texts(h, s, t2, 1, 10);
    CU_ASSERT_EQUAL(harness_wait(h, 11, WAIT_MS), 11);
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(res(h, id2 + i)->resp->n_attempts, 1);
    fake_model_counters mc;
    fake_provider_model_counters(h->fake, "up-a", &mc);
    CU_ASSERT_EQUAL(mc.requests, 1);

    /* A single-model session whose key is refused: a clear error, then every later prompt
     * fails at once without an upstream call, until the blocklist is cleared. Anthropic's
     * and Gemini's shapes alike. */
    static const char *const single[][2] = {{"m-c", "up-c"}, {"m-g", "up-g"}};
    uint64_t done = 11;
    for (size_t i = 0; i < 2; i++) {
        fake_provider_force_status(h->fake, single[i][1], 401);
        dsession *s2 = harness_session(h, single[i][0], 0, 0, 0, 3, CACHE_MODE_OFF);
        uint64_t id3 = harness_submit_texts(h, s2, t, 1, 1);
        done++;
        CU_ASSERT_EQUAL(harness_wait(h, done, WAIT_MS), done);
        CU_ASSERT_EQUAL(res(h, id3)->final, DTASK_FAILED);
        CU_ASSERT_EQUAL(res(h, id3)->resp->error_kind, LLM_ERR_NO_MODEL);
        uint64_t id4 = harness_submit_texts(h, s2, t, 1, 1);
        done++;
        CU_ASSERT_EQUAL(harness_wait(h, done, WAIT_MS), done);
        CU_ASSERT_EQUAL(res(h, id4)->resp->error_kind, LLM_ERR_NO_MODEL);
        CU_ASSERT_EQUAL(res(h, id4)->resp->n_attempts, 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(res(h, id4)->resp->error_message, "blocklisted"));
        fake_provider_force_status(h->fake, single[i][1], 0);
        dispatcher_session_clear_blocklist(h->d, s2);
        uint64_t id5 = harness_submit_texts(h, s2, t, 1, 1);
        done++;
        CU_ASSERT_EQUAL(harness_wait(h, done, WAIT_MS), done);
        CU_ASSERT_EQUAL(res(h, id5)->final, DTASK_DONE);
        dispatcher_session_close(h->d, s2, NULL, NULL);
        dsession_unref(s2);
    }
    dispatcher_session_close(h->d, s, NULL, NULL);
    dsession_unref(s);
    harness_free(h);
}

static void test_impossible_token_budget_fails_at_once(void) {
    harness *h = start(NULL);
    dsession *s = harness_session(h, "m-a", 0, 1000, 0, 3, CACHE_MODE_OFF);
    char *big = xmalloc(8001);
    memset(big, 'x', 8000);
    big[8000] = '\0';
    const char *t[] = {big};
    uint64_t id = harness_submit_texts(h, s, t, 1, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 1, WAIT_MS), 1);
    harness_result *r = res(h, id);
    CU_ASSERT_EQUAL(r->final, DTASK_FAILED);
    CU_ASSERT_EQUAL(r->resp->error_kind, LLM_ERR_INVALID_REQUEST);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->resp->error_message, "can never be fulfilled"));
    fake_counters fc;
    fake_provider_counters(h->fake, &fc);
    CU_ASSERT_EQUAL(fc.total, 0);
    free(big);
    dispatcher_session_close(h->d, s, NULL, NULL);
    dsession_unref(s);
    harness_free(h);
}

static void test_context_error_fails_after_one_attempt(void) {
    harness *h = start(NULL);
    dsession *s = harness_session(h, "m-a,m-c,m-g", 0, 0, 0, 5, CACHE_MODE_OFF);
    const char *t[] = {"too long [[context]]"};
    uint64_t id = harness_submit_texts(h, s, t, 1, 4);
    CU_ASSERT_EQUAL(harness_wait(h, 4, WAIT_MS), 4);
    for (int i = 0; i < 4; i++) {
        harness_result *r = res(h, id + i);
        CU_ASSERT_EQUAL(r->final, DTASK_FAILED);
        CU_ASSERT_EQUAL(r->resp->error_kind, LLM_ERR_INVALID_REQUEST);
        CU_ASSERT_EQUAL(r->resp->n_attempts, 1);
    }
    dispatcher_session_close(h->d, s, NULL, NULL);
    dsession_unref(s);
    harness_free(h);
}

static void test_concurrency_one_is_strict(void) {
    harness *h = start(NULL);
    fake_provider_set_latency(h->fake, 30, 0);
    dsession *s = harness_session(h, "m-a", 0, 0, 1, 3, CACHE_MODE_OFF);
    const char *t[] = {"one", "two", "three", "four", "five", "six"};
    uint64_t first = harness_submit_texts(h, s, t, 6, 12);
    CU_ASSERT_EQUAL(harness_wait(h, 12, WAIT_MS), 12);
    assert_exactly_once(h, first, 12);
    fake_counters fc;
    fake_provider_counters(h->fake, &fc);
    CU_ASSERT_EQUAL(fc.max_in_flight, 1);
    CU_ASSERT_EQUAL(fc.total, 12);
    dispatcher_session_close(h->d, s, NULL, NULL);
    dsession_unref(s);
    harness_free(h);
}

/* No window of one second ever saw more attempts go out than the limit allows, and 60
 * requests took the time the limit demands. Measured where sluice sends (the dispatcher's
 * launch of each attempt), not where the fake receives: on a loaded machine, a request held
 * up on its way (a TLS handshake, a starved thread) lands together with later ones. */
static void test_never_faster_than_limits(void) {
    harness_opts o;
    memset(&o, 0, sizeof o);
    o.key_rpm = 1200; /* 20/s, burst one second = 20 */
    harness *h = start(&o);
    fake_provider_set_limits(h->fake, "sk-test-a", 1200, 0, 1000);
    dsession *s = harness_session(h, "m-a", 0, 0, 0, 3, CACHE_MODE_OFF);
    const char *t[] = {"paced"};
    harness_submit_texts(h, s, t, 1, 60);
    CU_ASSERT_EQUAL(harness_wait(h, 60, WAIT_MS), 60);
    pthread_mutex_lock(&h->mu);
    size_t n = h->n_launches;
    uint64_t *at = h->launch_ms;
    CU_ASSERT_EQUAL(n, 60);
    for (size_t i = 0; i < n; i++) {
        size_t in_window = 0;
        for (size_t j = i; j < n && at[j] < at[i] + 1000; j++)
            in_window++;
        CU_ASSERT_TRUE(in_window <= 21); /* 20 plus one at a window's edge */
    }
    /* 60 requests at 20/s from an empty bucket take close to 3 s. */
    CU_ASSERT_TRUE(n == 60 && at[n - 1] - at[0] >= 2800);
    pthread_mutex_unlock(&h->mu);
    fake_log_entry log[128];
    CU_ASSERT_EQUAL(fake_provider_request_log(h->fake, "sk-test-a", log, 128), 60);
    dispatcher_session_close(h->d, s, NULL, NULL);
    dsession_unref(s);
    harness_free(h);
}

/* A 429 cools the key down for the provider's Retry-After; a later, shorter one does not
 * shorten it. */
static void test_cooldown_honours_retry_after_and_never_shrinks(void) {
    harness *h = start(NULL);
    fake_provider_set_latency(h->fake, 50, 0);
    const char *h3[] = {"retry-after: 2"};
    const char *h1[] = {"retry-after-ms: 300"};
    fake_provider_script(h->fake, "up-a", 1, 429, h3, 1, NULL);
    fake_provider_script(h->fake, "up-a", 1, 429, h1, 1, NULL);
    dsession *s = harness_session(h, "m-a", 0, 0, 0, 3, CACHE_MODE_OFF);
    const char *t[] = {"first", "second"};
    uint64_t t0 = clock_now_ms();
    uint64_t first = harness_submit_texts(h, s, t, 2, 2);
    CU_ASSERT_EQUAL(harness_wait(h, 2, WAIT_MS), 2);
    assert_exactly_once(h, first, 2);
    for (int i = 0; i < 2; i++) {
        harness_result *r = res(h, first + i);
        CU_ASSERT_EQUAL(r->final, DTASK_DONE);
        CU_ASSERT_EQUAL(r->resp->n_attempts, 2);
        CU_ASSERT_EQUAL(r->resp->attempts[0].status_code, 429);
    }
    /* Both retries waited for the longer cooldown. */
    CU_ASSERT_TRUE(clock_now_ms() - t0 >= 2000);
    dsession_status st;
    dsession_status_get(s, clock_now_ms(), &st);
    CU_ASSERT_EQUAL(st.rate_limit_errors, 2);
    dispatcher_session_close(h->d, s, NULL, NULL);
    dsession_unref(s);
    harness_free(h);
}

static void test_retry_after_beyond_budget_fails_saying_why(void) {
    harness *h = start(NULL);
    const char *hd[] = {"retry-after: 3600"};
    fake_provider_script(h->fake, "up-a", 1, 429, hd, 1, NULL);
    dsession_config c;
    memset(&c, 0, sizeof c);
    dsession_model m = {"m-a", 1, {0}};
    c.models = &m;
    c.n_models = 1;
    c.task_timeout_ms = 5000;
    c.cache_mode = CACHE_MODE_OFF;
    dsession *s;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(dsession_new(h->reg, &c, clock_now_ms(), &s, err, sizeof err), 0);
    const char *t[] = {"wait forever"};
    uint64_t id = harness_submit_texts(h, s, t, 1, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 1, WAIT_MS), 1);
    harness_result *r = res(h, id);
    CU_ASSERT_EQUAL(r->final, DTASK_FAILED);
    CU_ASSERT_EQUAL(r->resp->error_kind, LLM_ERR_RATE_LIMITED);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->resp->error_message, "3600.0 s"));
    CU_ASSERT_EQUAL(r->resp->attempts[0].retry_after_ms, 3600000);
    dispatcher_session_close(h->d, s, NULL, NULL);
    dsession_unref(s);
    harness_free(h);
}

static void test_cancel_queued_and_in_flight(void) {
    harness *h = start(NULL);
    fake_provider_set_latency(h->fake, 2000, 0);
    dsession *s = harness_session(h, "m-a", 0, 0, 2, 3, CACHE_MODE_OFF);
    const char *t[] = {"a", "b", "c", "d", "e"};
    uint64_t first = harness_submit_texts(h, s, t, 5, 10);
    /* wait until two are in flight upstream */
    bool two_in_flight = false;
    for (int i = 0; i < 200 && !two_in_flight; i++) {
        fake_counters fc;
        fake_provider_counters(h->fake, &fc);
        two_in_flight = fc.in_flight == 2;
        if (!two_in_flight)
            usleep(10000);
    }
    CU_ASSERT_TRUE(two_in_flight); /* else this test would not cancel anything in flight */
    uint64_t ids[3] = {first, first + 5, first + 9};
    dispatcher_cancel_tasks(h->d, ids, 3);
    CU_ASSERT_EQUAL(harness_wait(h, 3, WAIT_MS), 3);
    CU_ASSERT_EQUAL(res(h, first)->final, DTASK_CANCELLED);
    CU_ASSERT_EQUAL(res(h, first + 5)->final, DTASK_CANCELLED);
    CU_ASSERT_EQUAL(res(h, first + 9)->final, DTASK_CANCELLED);
    dispatcher_cancel_session(h->d, s);
    CU_ASSERT_EQUAL(harness_wait(h, 10, WAIT_MS), 10);
    assert_exactly_once(h, first, 10);
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(res(h, first + i)->final, DTASK_CANCELLED);
    dsession_status st;
    dsession_status_get(s, clock_now_ms(), &st);
    CU_ASSERT_EQUAL(st.cancelled, 10);
    CU_ASSERT_EQUAL(st.in_progress, 0);
    CU_ASSERT_EQUAL(st.queued, 0);
    fake_counters fc;
    fake_provider_counters(h->fake, &fc);
    CU_ASSERT_TRUE(fc.total <= 3);
    dispatcher_session_close(h->d, s, NULL, NULL);
    dsession_unref(s);
    harness_free(h);
}

/* Whether the test's sink owner has given up (read by the loop thread). */
static atomic_bool g_owner_gone;

static bool owner_gone(void *ctx) {
    return atomic_load(&g_owner_gone);
}

/* Regression: held prompts of a cancelled batch were sent anyway when their submit reached
 * the dispatcher just after the batch's cancel (which only knew the ids already inside).
 * A submission whose sink's owner has given up by the time the loop takes it ends
 * CANCELLED at once; nothing of it is queued or sent. */
static void test_submit_overtaken_by_cancel_never_sent(void) {
    harness *h = start(NULL);
    h->sink.cancelled = owner_gone;
    atomic_store(&g_owner_gone, true);
    dsession *s = harness_session(h, "m-a", 0, 0, 0, 3, CACHE_MODE_OFF);
    const char *t[] = {"unwanted a", "unwanted b"};
    uint64_t first = harness_submit_texts(h, s, t, 2, 6);
    CU_ASSERT_EQUAL(harness_wait(h, 6, WAIT_MS), 6);
    assert_exactly_once(h, first, 6);
    for (int i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL(res(h, first + i)->final, DTASK_CANCELLED);
        CU_ASSERT_EQUAL(res(h, first + i)->resp->error_kind, LLM_ERR_CANCELLED);
        CU_ASSERT_EQUAL(res(h, first + i)->resp->n_attempts, 0);
    }
    dsession_status st;
    dsession_status_get(s, clock_now_ms(), &st);
    CU_ASSERT_EQUAL(st.total, 6);
    CU_ASSERT_EQUAL(st.cancelled, 6);
    CU_ASSERT_EQUAL(st.attempts, 0);
    CU_ASSERT_EQUAL(st.queued, 0);
    CU_ASSERT_EQUAL(st.in_progress, 0);
    /* the same sink's next submission, taken while its owner still wants it, runs */
    atomic_store(&g_owner_gone, false);
    const char *wanted[] = {"wanted"};
    uint64_t id = harness_submit_texts(h, s, wanted, 1, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 7, WAIT_MS), 7);
    CU_ASSERT_EQUAL(res(h, id)->final, DTASK_DONE);
    fake_counters fc;
    fake_provider_counters(h->fake, &fc);
    CU_ASSERT_EQUAL(fc.total, 1); /* counted on arrival, before the answer came back */
    dispatcher_session_close(h->d, s, NULL, NULL);
    dsession_unref(s);
    harness_free(h);
}

static void test_dedup_hundred_identical_prompts(void) {
    harness *h = start(NULL);
    fake_provider_set_latency(h->fake, 200, 0);
    dsession *s = harness_session(h, "m-a", 0, 0, 0, 3, CACHE_MODE_READ_WRITE);
    const char *t[] = {"the same question"};
    uint64_t first = harness_submit_texts(h, s, t, 1, 100);
    CU_ASSERT_EQUAL(harness_wait(h, 100, WAIT_MS), 100);
    assert_exactly_once(h, first, 100);
    unsigned shared = 0;
    for (int i = 0; i < 100; i++) {
        harness_result *r = res(h, first + i);
        CU_ASSERT_EQUAL(r->final, DTASK_DONE);
        CU_ASSERT_STRING_EQUAL(r->resp->completion, res(h, first)->resp->completion);
        shared += r->resp->deduplicated;
    }
    CU_ASSERT_EQUAL(shared, 99);
    fake_counters fc;
    fake_provider_counters(h->fake, &fc);
    CU_ASSERT_EQUAL(fc.total, 1);
    dsession_status st;
    dsession_status_get(s, clock_now_ms(), &st);
    CU_ASSERT_EQUAL(st.succeeded, 100);
    CU_ASSERT_EQUAL(st.deduplicated, 99);
    CU_ASSERT_EQUAL(st.attempts, 1);
    dispatcher_session_close(h->d, s, NULL, NULL);
    dsession_unref(s);
    harness_free(h);
}

static void test_cache_modes_and_fallback_entries(void) {
    harness_opts o;
    memset(&o, 0, sizeof o);
    o.with_store = true;
    harness *h = start(&o);
    /* m-a refuses: the answer comes from m-b and is stored under m-b only. */
    fake_provider_force_status(h->fake, "up-a", 503);
    dsession *s1 = harness_session(h, "m-a:1,m-b:0", 0, 0, 0, 3, CACHE_MODE_READ_WRITE);
    const char *t[] = {"cache me"};
    harness_submit_texts(h, s1, t, 1, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 1, WAIT_MS), 1);
    store_flush(h->st);
    fake_provider_force_status(h->fake, "up-a", 0);
    fake_provider_reset(h->fake);

    dsession *only_b = harness_session(h, "m-b", 0, 0, 0, 3, CACHE_MODE_READ_WRITE);
    uint64_t id = harness_submit_texts(h, only_b, t, 1, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 2, WAIT_MS), 2);
    harness_result *r = res(h, id);
    CU_ASSERT_TRUE(r->resp->local_cache_hit);
    CU_ASSERT_EQUAL(r->resp->status_code, 0); /* no HTTP response for a hit (it said 200) */
    CU_ASSERT_EQUAL(r->resp->cost, 0);
    CU_ASSERT_TRUE(r->resp->cost_saved > 0);
    CU_ASSERT_EQUAL(r->resp->n_attempts, 0);

    dsession *only_a = harness_session(h, "m-a", 0, 0, 0, 3, CACHE_MODE_READ_WRITE);
    id = harness_submit_texts(h, only_a, t, 1, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 3, WAIT_MS), 3);
    CU_ASSERT_FALSE(res(h, id)->resp->local_cache_hit);
    CU_ASSERT_PTR_NOT_NULL(strstr(res(h, id)->resp->completion, "echo[up-a]"));

    /* write_only and off never serve hits; read_only serves but never stores. */
    dsession *wo = harness_session(h, "m-b", 0, 0, 0, 3, CACHE_MODE_WRITE_ONLY);
    id = harness_submit_texts(h, wo, t, 1, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 4, WAIT_MS), 4);
    CU_ASSERT_FALSE(res(h, id)->resp->local_cache_hit);
    dsession *off = harness_session(h, "m-b", 0, 0, 0, 3, CACHE_MODE_OFF);
    id = harness_submit_texts(h, off, t, 1, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 5, WAIT_MS), 5);
    CU_ASSERT_FALSE(res(h, id)->resp->local_cache_hit);
    dsession *ro = harness_session(h, "m-c", 0, 0, 0, 3, CACHE_MODE_READ_ONLY);
    const char *fresh[] = {"never stored"};
    harness_submit_texts(h, ro, fresh, 1, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 6, WAIT_MS), 6);
    store_flush(h->st);
    id = harness_submit_texts(h, ro, fresh, 1, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 7, WAIT_MS), 7);
    CU_ASSERT_FALSE(res(h, id)->resp->local_cache_hit);

    dsession_status st;
    dsession_status_get(only_b, clock_now_ms(), &st);
    CU_ASSERT_EQUAL(st.cached, 1);
    CU_ASSERT_EQUAL(st.succeeded, 1);
    CU_ASSERT_EQUAL(st.attempts, 0);
    dsession *all[] = {s1, only_b, only_a, wo, off, ro};
    for (int i = 0; i < 6; i++) {
        dispatcher_session_close(h->d, all[i], NULL, NULL);
        dsession_unref(all[i]);
    }
    harness_free(h);
}

/* A 10-prompt session is not stuck behind a 300-prompt one on the same key. */
static void test_sessions_share_a_key_fairly(void) {
    harness_opts o;
    memset(&o, 0, sizeof o);
    o.key_rpm = 6000; /* 100/s */
    harness *h = start(&o);
    dsession *big = harness_session(h, "m-a", 0, 0, 0, 3, CACHE_MODE_OFF);
    dsession *small = harness_session(h, "m-a", 0, 0, 0, 3, CACHE_MODE_OFF);
    const char *tb[] = {"big"};
    const char *ts[] = {"small"};
    harness_submit_texts(h, big, tb, 1, 300);
    usleep(50000);
    uint64_t sfirst = harness_submit_texts(h, small, ts, 1, 10);
    CU_ASSERT_EQUAL(harness_wait(h, 310, WAIT_MS), 310);
    uint64_t last = 0;
    for (int i = 0; i < 10; i++)
        if (res(h, sfirst + i)->order > last)
            last = res(h, sfirst + i)->order;
    /* Served alternately: the small session ends within its first ~20 turns. */
    CU_ASSERT_TRUE(last < 60);
    dispatcher_session_close(h->d, big, NULL, NULL);
    dispatcher_session_close(h->d, small, NULL, NULL);
    dsession_unref(big);
    dsession_unref(small);
    harness_free(h);
}

static void test_timeout_is_retryable_then_fails(void) {
    harness_opts o;
    memset(&o, 0, sizeof o);
    o.dcfg.backoff_base_ms = 10;
    harness *h = start(&o);
    dsession_config c;
    memset(&c, 0, sizeof c);
    dsession_model m = {"m-a", 1, {0}};
    c.models = &m;
    c.n_models = 1;
    c.max_attempts = 2;
    c.request_timeout_ms = 200;
    c.cache_mode = CACHE_MODE_OFF;
    dsession *s;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(dsession_new(h->reg, &c, clock_now_ms(), &s, err, sizeof err), 0);
    const char *t[] = {"silence [[hang]]"};
    uint64_t id = harness_submit_texts(h, s, t, 1, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 1, WAIT_MS), 1);
    harness_result *r = res(h, id);
    CU_ASSERT_EQUAL(r->final, DTASK_FAILED);
    CU_ASSERT_EQUAL(r->resp->error_kind, LLM_ERR_TRANSPORT);
    CU_ASSERT_EQUAL(r->resp->n_attempts, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->resp->attempts[0].error, "timed out"));
    dispatcher_session_close(h->d, s, NULL, NULL);
    dsession_unref(s);
    harness_free(h);
}

static void test_close_cancels_and_rejects(void) {
    harness *h = start(NULL);
    fake_provider_set_latency(h->fake, 1000, 0);
    dsession *s = harness_session(h, "m-a", 0, 0, 0, 3, CACHE_MODE_OFF);
    const char *t[] = {"x"};
    uint64_t first = harness_submit_texts(h, s, t, 1, 5);
    dispatcher_session_close(h->d, s, NULL, NULL);
    CU_ASSERT_EQUAL(harness_wait(h, 5, WAIT_MS), 5);
    assert_exactly_once(h, first, 5);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(res(h, first + i)->final, DTASK_CANCELLED);
    dispatcher_task_spec spec = {999, harness_text_request("late"), NULL};
    CU_ASSERT_EQUAL(dispatcher_submit(h->d, s, &spec, 1, &h->sink), SLUICE_ECLOSED);
    llm_request_free(spec.request);
    dsession_unref(s);
    harness_free(h);
}

/* ---- HTTP/2 over TLS, whatever the suite's wire: every request the fake counted is an
 * attempt sluice recorded, and nothing libcurl could not set up ever becomes one -------- */

typedef struct h2_run {
    harness *h;
    dsession *s;
    uint64_t first;
    size_t n;
} h2_run;

/* n distinct prompts through a session of concurrency `conc` on an HTTP/2 fake. */
static h2_run h2_start(uint32_t max_streams, uint32_t conc, uint32_t max_attempts, size_t n) {
    harness_opts o;
    memset(&o, 0, sizeof o);
    o.wire = FAKE_WIRE_H2_TLS;
    o.h2_max_streams = max_streams;
    o.dcfg.backoff_base_ms = 10;
    o.dcfg.backoff_max_ms = 20;
    h2_run r = {.h = start(&o), .n = n};
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.h);
    fake_provider_set_latency(r.h->fake, 3, 2); /* streams end while others are open */
    r.s = harness_session(r.h, "m-a", 0, 0, conc, max_attempts, CACHE_MODE_OFF);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.s);
    return r;
}

static void h2_submit(h2_run *r) {
    char *buf = xcalloc(r->n, 32);
    const char **texts = XNEWV(const char *, r->n);
    for (size_t i = 0; i < r->n; i++) {
        snprintf(buf + i * 32, 32, "h2 prompt %zu", i);
        texts[i] = buf + i * 32;
    }
    r->first = harness_submit_texts(r->h, r->s, texts, r->n, r->n);
    free(texts);
    free(buf);
    CU_ASSERT_EQUAL(harness_wait(r->h, r->n, 60000), r->n);
    assert_exactly_once(r->h, r->first, r->n);
}

/* Attempts of the run's prompts that ended before any answer and were not sent again
 * (a refused stream, one cut off by a GOAWAY): counted, but they never reached the fake. */
static uint64_t h2_lost_attempts(h2_run *r) {
    uint64_t lost = 0;
    for (size_t i = 0; i < r->n; i++) {
        const llm_response *resp = res(r->h, r->first + i)->resp;
        for (size_t a = 0; resp && a < resp->n_attempts; a++)
            lost += resp->attempts[a].error &&
                    strstr(resp->attempts[a].error, "request not sent again") != NULL;
    }
    return lost;
}

/* Checks every prompt succeeded and returns the session's attempts; fc gets the fake's view.
 * No request reached the fake that is not a recorded attempt. */
static uint64_t h2_finish(h2_run *r, fake_counters *fc) {
    size_t ok = 0;
    for (size_t i = 0; i < r->n; i++)
        ok += res(r->h, r->first + i)->final == DTASK_DONE;
    CU_ASSERT_EQUAL(ok, r->n);
    dsession_status st;
    dsession_status_get(r->s, clock_now_ms(), &st);
    fake_provider_counters(r->h->fake, fc);
    /* every request that reached the fake is an attempt; lost ones never reached it */
    CU_ASSERT(fc->total <= st.attempts);
    CU_ASSERT(fc->total + h2_lost_attempts(r) <= st.attempts);
    dispatcher_session_close(r->h->d, r->s, NULL, NULL);
    dsession_unref(r->s);
    harness_free(r->h);
    return st.attempts;
}

/* Answers with a Content-Length: every prompt multiplexed on one connection, none reset. */
static void test_h2_many_prompts_one_connection(void) {
    h2_run r = h2_start(0, 64, 1, 3000); /* max_attempts 1: any lost transfer fails a prompt */
    char err[128];
    CU_ASSERT_EQUAL(fake_provider_configure(r.h->fake, "{\"chunked\":false}", err, sizeof err), 0);
    h2_submit(&r);
    fake_counters fc;
    CU_ASSERT_EQUAL(h2_finish(&r, &fc), 3000);
    CU_ASSERT_EQUAL(fc.h2_connections, 1);
    CU_ASSERT_EQUAL(fc.client_resets, 0);
}

/* Answers without a Content-Length, in many DATA frames, as streaming servers send them.
 * libcurl 7.88 then resets each finished stream (RST_STREAM(STREAM_CLOSED)), and a server
 * with a rapid-reset limit (nghttp2's, in Debian's build: about 1,000 resets, then 33/s)
 * answers with GOAWAY(INTERNAL_ERROR); the streams past it end as counted attempts the
 * dispatcher retries. Every prompt must still be answered, and reach the provider, once. */
static void test_h2_answers_without_length(void) {
    h2_run r = h2_start(0, 64, 5, 3000);
    h2_submit(&r);
    fake_counters fc;
    CU_ASSERT(h2_finish(&r, &fc) >= 3000);
    CU_ASSERT_EQUAL(fc.total, 3000); /* each prompt reached the provider once */
}

/* The server allows 8 streams, sluice wants 64: streams libcurl opened before the server's
 * SETTINGS arrived are refused, counted and retried; every prompt is answered once. */
static void test_h2_stream_limit_below_concurrency(void) {
    h2_run r = h2_start(8, 64, 5, 1000);
    h2_submit(&r);
    fake_counters fc;
    CU_ASSERT(h2_finish(&r, &fc) >= 1000);
    CU_ASSERT_EQUAL(fc.total, 1000);
}

static void test_h2_goaway_mid_run(void) {
    h2_run r = h2_start(0, 64, 5, 1000);
    char err[128];
    CU_ASSERT_EQUAL(
        fake_provider_configure(r.h->fake, "{\"h2_goaway_after\":100}", err, sizeof err), 0);
    h2_submit(&r);
    fake_counters fc;
    CU_ASSERT(h2_finish(&r, &fc) >= 1000);
    CU_ASSERT_EQUAL(fc.total, 1000); /* streams cut off by a GOAWAY never reached it */
    CU_ASSERT(fc.goaways >= 9);
}

/* A refused stream was never processed, but its attempt is counted (libcurl does not say
 * why it wants to send it again), and the dispatcher retries it; the prompt is answered.
 * A stream refused before libcurl began its body is sent again by libcurl: nothing of it
 * was delivered, so that is no second request. */
static void test_h2_refused_streams_are_retried(void) {
    h2_run r = h2_start(0, 16, 3, 200);
    fake_provider_refuse_streams(r.h->fake, 10);
    h2_submit(&r);
    uint64_t lost = h2_lost_attempts(&r);
    fake_counters fc;
    CU_ASSERT_EQUAL(h2_finish(&r, &fc), 200 + lost);
    CU_ASSERT_EQUAL(fc.total, 200);
    CU_ASSERT(lost <= 10);
    CU_ASSERT_EQUAL(fc.refused_streams, 10);
}

static void test_h2_internal_error_is_an_attempt(void) {
    h2_run r = h2_start(0, 16, 3, 100);
    fake_provider_reset_next(r.h->fake, 5); /* read and counted, then RST_STREAM(INTERNAL) */
    h2_submit(&r);
    size_t retried = 0;
    for (size_t i = 0; i < r.n; i++) {
        const llm_response *resp = res(r.h, r.first + i)->resp;
        if (resp->n_attempts == 2) {
            retried++;
            CU_ASSERT_PTR_NOT_NULL(strstr(resp->attempts[0].error, "INTERNAL_ERROR"));
        }
    }
    CU_ASSERT_EQUAL(retried, 5);
    fake_counters fc;
    CU_ASSERT_EQUAL(h2_finish(&r, &fc), 105);
    CU_ASSERT_EQUAL(fc.reset_streams, 5);
}

/* A transfer libcurl refuses to set up (a URL over its 8 MB input limit) was never sent:
 * it is no attempt, burns no retry budget, and fails the task at once saying why. */
static void test_setup_refusal_is_not_an_attempt(void) {
    size_t len = 9u << 20;
    char *url = xmalloc(len + 1);
    memset(url, 'a', len);
    url[len] = '\0';
    char *extra = xasprintf("\"m-huge\":{\"provider\":\"openai\",\"upstream\":\"up-h\","
                            "\"base_url\":\"http://127.0.0.1:1/%s\",\"key\":\"ka\","
                            "\"input_price\":1,\"output_price\":1,\"context_window\":1000}",
                            url);
    free(url);
    harness_opts o;
    memset(&o, 0, sizeof o);
    o.extra_models_json = extra;
    o.setup_failures = 1;
    harness *h = start(&o);
    free(extra);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    dsession *s = harness_session(h, "m-huge", 0, 0, 0, 5, CACHE_MODE_OFF);
    const char *t[] = {"never sent"};
    uint64_t id = harness_submit_texts(h, s, t, 1, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 1, WAIT_MS), 1);
    harness_result *r = res(h, id);
    CU_ASSERT_EQUAL(r->final, DTASK_FAILED);
    CU_ASSERT_EQUAL(r->resp->n_attempts, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->resp->error_message, "nothing was sent"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r->resp->error_message, "CURLOPT_URL"));
    dsession_status st;
    dsession_status_get(s, clock_now_ms(), &st);
    CU_ASSERT_EQUAL(st.attempts, 0);
    CU_ASSERT_EQUAL(st.failed, 1);
    dispatcher_stats ds;
    memset(&ds, 0, sizeof ds);
    dispatcher_get_stats(h->d, &ds);
    CU_ASSERT_EQUAL(ds.upstream_requests, 0);
    CU_ASSERT_EQUAL(ds.retries, 0);
    dispatcher_stats_cleanup(&ds);
    dispatcher_session_close(h->d, s, NULL, NULL);
    dsession_unref(s);
    harness_free(h);
}

/* A provider that answers the first request of each kept-alive connection and reads, then
 * drops, the next (FIN or TCP reset): every request that reaches it is an attempt sluice
 * recorded, never a hidden re-send by libcurl. */
static void no_hidden_resends(bool reset) {
    fake_raw_config rc = {.answer_per_connection = 1, .reset = reset};
    fake_raw *raw = fake_raw_start(&rc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
    char *extra = xasprintf("\"m-raw\":{\"provider\":\"openai\",\"upstream\":\"up-r\","
                            "\"base_url\":\"%s/v1\",\"key\":\"ka\",\"input_price\":1,"
                            "\"output_price\":1,\"context_window\":100000}",
                            fake_raw_url(raw));
    harness_opts o;
    memset(&o, 0, sizeof o);
    o.extra_models_json = extra;
    o.dcfg.backoff_base_ms = 5;
    o.dcfg.backoff_max_ms = 10;
    harness *h = start(&o);
    free(extra);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    /* one at a time, so every other request goes out on a kept-alive connection */
    dsession *once = harness_session(h, "m-raw", 0, 0, 1, 1, CACHE_MODE_OFF);
    const char *t[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
    uint64_t first = harness_submit_texts(h, once, t, 10, 20);
    CU_ASSERT_EQUAL(harness_wait(h, 20, WAIT_MS), 20);
    size_t failed = 0;
    for (size_t i = 0; i < 20; i++) {
        harness_result *r = res(h, first + i);
        CU_ASSERT_EQUAL(r->resp->n_attempts, 1);
        if (r->final == DTASK_FAILED) {
            failed++;
            CU_ASSERT_PTR_NOT_NULL(strstr(r->resp->error_message, "request not sent again"));
        }
    }
    CU_ASSERT_EQUAL(failed, 10); /* every other prompt was dropped, and not sent again */
    dsession_status st;
    dsession_status_get(once, clock_now_ms(), &st);
    CU_ASSERT_EQUAL(fake_raw_requests(raw), 20);
    CU_ASSERT_EQUAL(st.attempts, 20);
    /* with attempts to spare, the dispatcher retries: each send is a recorded attempt */
    dsession *thrice = harness_session(h, "m-raw", 0, 0, 1, 3, CACHE_MODE_OFF);
    const char *u[] = {"warm", "dropped then retried"};
    first = harness_submit_texts(h, thrice, u, 2, 2);
    CU_ASSERT_EQUAL(harness_wait(h, 22, WAIT_MS), 22);
    CU_ASSERT_EQUAL(res(h, first)->final, DTASK_DONE);
    CU_ASSERT_EQUAL(res(h, first + 1)->final, DTASK_DONE);
    CU_ASSERT_EQUAL(res(h, first + 1)->resp->n_attempts, 2);
    dsession_status_get(thrice, clock_now_ms(), &st);
    CU_ASSERT_EQUAL(st.attempts, 3);
    CU_ASSERT_EQUAL(fake_raw_requests(raw), 23);
    dispatcher_session_close(h->d, once, NULL, NULL);
    dispatcher_session_close(h->d, thrice, NULL, NULL);
    dsession_unref(once);
    dsession_unref(thrice);
    harness_free(h);
    fake_raw_stop(raw);
}

static void test_no_hidden_resends_after_close(void) {
    no_hidden_resends(false);
}

static void test_no_hidden_resends_after_reset(void) {
    no_hidden_resends(true);
}

/* A session over one model with a time budget. */
static dsession *budget_session(harness *h, char *model, uint32_t task_timeout_ms,
                                uint32_t max_attempts) {
    dsession_config c;
    memset(&c, 0, sizeof c);
    dsession_model m = {model, 1, {0}};
    c.models = &m;
    c.n_models = 1;
    c.task_timeout_ms = task_timeout_ms;
    c.request_timeout_ms = 5000;
    c.max_attempts = max_attempts;
    c.cache_mode = CACHE_MODE_OFF;
    dsession *s = NULL;
    char err[256];
    CU_ASSERT_EQUAL(dsession_new(h->reg, &c, clock_now_ms(), &s, err, sizeof err), 0);
    return s;
}

/* A retry whose backoff would end after the task's time budget is not sent (it used to go
 * out with a 1 ms HTTP timeout: billed, and its answer thrown away). The budget is named as
 * configured (1.5 s, not "2 s"). */
static void test_backoff_past_the_budget_is_not_sent(void) {
    harness_opts o;
    memset(&o, 0, sizeof o);
    o.dcfg.backoff_base_ms = 4000; /* the first backoff is 2-4 s */
    o.dcfg.backoff_max_ms = 4000;
    harness *h = start(&o);
    dsession *s = budget_session(h, (char *)"m-a", 1500, 5);
    const char *t[] = {"always failing [[status:500]]"};
    uint64_t id = harness_submit_texts(h, s, t, 1, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 1, WAIT_MS), 1);
    harness_result *r = res(h, id);
    CU_ASSERT_EQUAL(r->final, DTASK_FAILED);
    CU_ASSERT_EQUAL(r->resp->error_kind, LLM_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(r->resp->n_attempts, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->resp->error_message, "time budget of 1.5 s would run out"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r->resp->error_message, "server error"));
    fake_model_counters mc;
    fake_provider_model_counters(h->fake, "up-a", &mc);
    CU_ASSERT_EQUAL(mc.requests, 1);
    dispatcher_session_close(h->d, s, NULL, NULL);
    dsession_unref(s);
    harness_free(h);
}

/* Retries waiting for the key's retry budget fail at their deadline, not whenever the
 * budget frees up (before: 40 prompts with a 5 s budget took 44.7 s, and 43 of 103
 * requests went out after their budget had run out). Here the budget refills one retry
 * every 20 s: without the deadline, 30 prompts would take ten minutes. */
static void test_budget_wait_fails_at_the_deadline(void) {
    harness_opts o;
    memset(&o, 0, sizeof o);
    o.dcfg.backoff_base_ms = 10;
    o.dcfg.backoff_max_ms = 20;
    o.dcfg.retry_budget_ratio = 0.001;
    o.dcfg.retry_budget_min_per_s = 0.05;
    harness *h = start(&o);
    dsession *s = budget_session(h, (char *)"m-a", 1000, 10);
    const char *t[] = {"budget [[status:500]] a", "budget [[status:500]] b",
                       "budget [[status:500]] c"};
    uint64_t first = harness_submit_texts(h, s, t, 3, 30);
    CU_ASSERT_EQUAL(harness_wait(h, 30, WAIT_MS), 30);
    size_t waited = 0;
    for (size_t i = 0; i < 30; i++) {
        harness_result *r = res(h, first + i);
        CU_ASSERT_EQUAL(r->final, DTASK_FAILED);
        CU_ASSERT_EQUAL(r->resp->error_kind, LLM_ERR_TIMEOUT);
        waited += strstr(r->resp->error_message, "while it waited for the retry budget") != NULL;
    }
    CU_ASSERT(waited >= 10); /* the budget's 10 initial tokens let some go round first */
    fake_model_counters mc;
    fake_provider_model_counters(h->fake, "up-a", &mc);
    dsession_status st;
    dsession_status_get(s, clock_now_ms(), &st);
    /* an attempt started just before a deadline may time out before it reaches the fake */
    CU_ASSERT(mc.requests <= st.attempts);
    CU_ASSERT(st.attempts <= 30 + 10 + 1); /* first attempts, the budget's 10 initial tokens */
    dispatcher_session_close(h->d, s, NULL, NULL);
    dsession_unref(s);
    harness_free(h);
}

/* A model that refused a prompt (400/422) never gets that prompt again: it used to alternate
 * between the refusing model and the fallback until max_attempts. */
static void test_refusing_model_is_excluded_for_that_prompt(void) {
    harness *h = start(NULL);
    fake_provider_force_status(h->fake, "up-a", 400);
    fake_provider_force_status(h->fake, "up-b", 400);
    dsession *s = harness_session(h, "m-a,m-b", 0, 0, 0, 6, CACHE_MODE_OFF);
    const char *t[] = {"refused by both"};
    uint64_t id = harness_submit_texts(h, s, t, 1, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 1, WAIT_MS), 1);
    harness_result *r = res(h, id);
    CU_ASSERT_EQUAL(r->final, DTASK_FAILED);
    CU_ASSERT_EQUAL(r->resp->n_attempts, 2);
    CU_ASSERT_EQUAL(r->resp->status_code, 400);
    fake_model_counters a, b;
    fake_provider_model_counters(h->fake, "up-a", &a);
    fake_provider_model_counters(h->fake, "up-b", &b);
    CU_ASSERT_EQUAL(a.requests, 1);
    CU_ASSERT_EQUAL(b.requests, 1);
    /* a refusal, then an overloaded fallback: the retries stay on the fallback */
    fake_provider_force_status(h->fake, "up-b", 503);
    const char *u[] = {"refused, then overloaded"};
    id = harness_submit_texts(h, s, u, 1, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 2, WAIT_MS), 2);
    CU_ASSERT_EQUAL(res(h, id)->resp->n_attempts, 6);
    fake_provider_model_counters(h->fake, "up-a", &a);
    CU_ASSERT_EQUAL(a.requests, 2);
    dispatcher_session_close(h->d, s, NULL, NULL);
    dsession_unref(s);
    harness_free(h);
}

/* Waits (bounded) until the fake has `n` requests in flight; false when it never does. */
static bool wait_fake_in_flight(harness *h, uint64_t n) {
    for (int i = 0; i < 500; i++) {
        fake_counters fc;
        fake_provider_counters(h->fake, &fc);
        if (fc.in_flight == n)
            return true;
        usleep(10000);
    }
    return false;
}

/* Waits (bounded) until nothing is alive in the dispatcher, ghosts included. */
static bool wait_nothing_alive(harness *h) {
    for (int i = 0; i < 1000; i++) {
        dispatcher_stats st;
        memset(&st, 0, sizeof st);
        dispatcher_get_stats(h->d, &st);
        uint64_t alive = st.tasks_alive;
        dispatcher_stats_cleanup(&st);
        if (alive == 0)
            return true;
        usleep(10000);
    }
    return false;
}

/* Cancelling the task whose upstream call identical prompts wait on must not make them send
 * a second one: the call lives while any task wants its answer. */
static void test_dedup_leader_cancelled_keeps_the_call(void) {
    harness *h = start(NULL);
    fake_provider_set_latency(h->fake, 500, 0);
    dsession *s = harness_session(h, "m-a", 0, 0, 0, 3, CACHE_MODE_READ_WRITE);
    const char *t[] = {"shared question"};
    uint64_t leader = harness_submit_texts(h, s, t, 1, 1);
    CU_ASSERT_TRUE(wait_fake_in_flight(h, 1));
    uint64_t first = harness_submit_texts(h, s, t, 1, 2); /* followers of the leader's call */
    dispatcher_cancel_tasks(h->d, &leader, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 3, WAIT_MS), 3);
    CU_ASSERT_EQUAL(res(h, leader)->final, DTASK_CANCELLED);
    for (uint64_t i = first; i < first + 2; i++) {
        CU_ASSERT_EQUAL(res(h, i)->final, DTASK_DONE);
        CU_ASSERT_TRUE(res(h, i)->resp->deduplicated);
    }
    fake_counters fc;
    fake_provider_counters(h->fake, &fc);
    CU_ASSERT_EQUAL(fc.total, 1);
    dsession_status st;
    dsession_status_get(s, clock_now_ms(), &st);
    CU_ASSERT_EQUAL(st.cancelled, 1);
    CU_ASSERT_EQUAL(st.succeeded, 2);
    CU_ASSERT_EQUAL(st.attempts, 1);
    dispatcher_session_close(h->d, s, NULL, NULL);
    dsession_unref(s);
    harness_free(h);
}

/* A task cancelled while its attempt is on its way ends CANCELLED at once, but the answer
 * that arrives still fills the cache: the same prompt sent again is answered from it. */
static void test_cancelled_in_flight_answer_fills_the_cache(void) {
    harness_opts o;
    memset(&o, 0, sizeof o);
    o.with_store = true;
    harness *h = start(&o);
    fake_provider_set_latency(h->fake, 300, 0);
    dsession *s = harness_session(h, "m-a", 0, 0, 0, 3, CACHE_MODE_READ_WRITE);
    const char *t[] = {"answer me anyway"};
    uint64_t id = harness_submit_texts(h, s, t, 1, 1);
    CU_ASSERT_TRUE(wait_fake_in_flight(h, 1));
    dispatcher_cancel_tasks(h->d, &id, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 1, WAIT_MS), 1);
    CU_ASSERT_EQUAL(res(h, id)->final, DTASK_CANCELLED);
    CU_ASSERT_TRUE(wait_nothing_alive(h)); /* the answer arrived and was stored */
    id = harness_submit_texts(h, s, t, 1, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 2, WAIT_MS), 2);
    CU_ASSERT_EQUAL(res(h, id)->final, DTASK_DONE);
    CU_ASSERT_TRUE(res(h, id)->resp->local_cache_hit);
    fake_counters fc;
    fake_provider_counters(h->fake, &fc);
    CU_ASSERT_EQUAL(fc.total, 1);
    dsession_status st;
    dsession_status_get(s, clock_now_ms(), &st);
    CU_ASSERT_TRUE(st.cost > 0); /* the cancelled task's answer was paid for */
    dispatcher_session_close(h->d, s, NULL, NULL);
    dsession_unref(s);
    harness_free(h);
}

/* A server that echoes the key it received (here in a 401 body) must not put the operator's
 * key into a tenant's result: every configured secret is masked in upstream text. */
static void test_provider_key_never_reaches_results(void) {
    harness *h = start(NULL);
    fake_provider_script(h->fake, "up-a", 1, 401, NULL, 0,
                         "{\"error\":{\"message\":\"Incorrect API key provided: sk-test-a. "
                         "Also tried sk-test-b.\",\"type\":\"invalid_request_error\","
                         "\"code\":\"invalid_api_key\"}}");
    dsession *s = harness_session(h, "m-a", 0, 0, 0, 1, CACHE_MODE_OFF);
    const char *t[] = {"any"};
    uint64_t id = harness_submit_texts(h, s, t, 1, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 1, WAIT_MS), 1);
    const llm_response *r = res(h, id)->resp;
    CU_ASSERT_TRUE(r->is_error);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->error_message, "Incorrect API key provided: *********."));
    CU_ASSERT_PTR_NULL(strstr(r->error_message, "sk-test-a"));
    CU_ASSERT_PTR_NULL(strstr(r->error_message, "sk-test-b"));
    CU_ASSERT_EQUAL_FATAL(r->n_attempts, 1);
    CU_ASSERT_PTR_NULL(strstr(r->attempts[0].error, "sk-test-a"));
    dispatcher_session_close(h->d, s, NULL, NULL);
    dsession_unref(s);
    harness_free(h);
}

/* An answer that arrived but cannot be used (malformed, cut short, reset mid-body) is a
 * transport failure, as the proto says, not a provider one, whatever its status line. */
static void test_unusable_answers_are_transport_errors(void) {
    harness *h = start(NULL);
    dsession *s = harness_session(h, "m-a", 0, 0, 0, 1, CACHE_MODE_OFF);
    const char *t[] = {"junk [[malformed]]", "cut [[truncate]]", "dropped [[reset]]"};
    uint64_t first = harness_submit_texts(h, s, t, 3, 3);
    CU_ASSERT_EQUAL(harness_wait(h, 3, WAIT_MS), 3);
    for (uint64_t i = first; i < first + 3; i++) {
        CU_ASSERT_EQUAL(res(h, i)->final, DTASK_FAILED);
        CU_ASSERT_EQUAL(res(h, i)->resp->error_kind, LLM_ERR_TRANSPORT);
    }
    dispatcher_session_close(h->d, s, NULL, NULL);
    dsession_unref(s);
    harness_free(h);
}

int main(void) {
    static const test_case cases[] = {
        {"hundred_tasks_complete_once", test_hundred_tasks_complete_once},
        {"exactly_max_attempts_then_error", test_exactly_max_attempts_then_error},
        {"transient_failures_then_success", test_transient_failures_then_success},
        {"fallback_on_503", test_fallback_on_503},
        {"blocklist_after_404_and_401", test_blocklist_after_404_and_401},
        {"impossible_token_budget_fails_at_once", test_impossible_token_budget_fails_at_once},
        {"context_error_fails_after_one_attempt", test_context_error_fails_after_one_attempt},
        {"concurrency_one_is_strict", test_concurrency_one_is_strict},
        {"never_faster_than_limits", test_never_faster_than_limits},
        {"cooldown_honours_retry_after_and_never_shrinks",
         test_cooldown_honours_retry_after_and_never_shrinks},
        {"retry_after_beyond_budget_fails_saying_why",
         test_retry_after_beyond_budget_fails_saying_why},
        {"cancel_queued_and_in_flight", test_cancel_queued_and_in_flight},
        {"submit_overtaken_by_cancel_never_sent", test_submit_overtaken_by_cancel_never_sent},
        {"dedup_hundred_identical_prompts", test_dedup_hundred_identical_prompts},
        {"cache_modes_and_fallback_entries", test_cache_modes_and_fallback_entries},
        {"sessions_share_a_key_fairly", test_sessions_share_a_key_fairly},
        {"timeout_is_retryable_then_fails", test_timeout_is_retryable_then_fails},
        {"close_cancels_and_rejects", test_close_cancels_and_rejects},
        {"setup_refusal_is_not_an_attempt", test_setup_refusal_is_not_an_attempt},
        {"provider_key_never_reaches_results", test_provider_key_never_reaches_results},
        {"unusable_answers_are_transport_errors", test_unusable_answers_are_transport_errors},
        {"dedup_leader_cancelled_keeps_the_call", test_dedup_leader_cancelled_keeps_the_call},
        {"cancelled_in_flight_answer_fills_the_cache",
         test_cancelled_in_flight_answer_fills_the_cache},
        {"backoff_past_the_budget_is_not_sent", test_backoff_past_the_budget_is_not_sent},
        {"budget_wait_fails_at_the_deadline", test_budget_wait_fails_at_the_deadline},
        {"refusing_model_is_excluded_for_that_prompt",
         test_refusing_model_is_excluded_for_that_prompt},
        {"no_hidden_resends_after_close", test_no_hidden_resends_after_close},
        {"no_hidden_resends_after_reset", test_no_hidden_resends_after_reset},
        {"h2_many_prompts_one_connection", test_h2_many_prompts_one_connection},
        {"h2_answers_without_length", test_h2_answers_without_length},
        {"h2_stream_limit_below_concurrency", test_h2_stream_limit_below_concurrency},
        {"h2_goaway_mid_run", test_h2_goaway_mid_run},
        {"h2_refused_streams_are_retried", test_h2_refused_streams_are_retried},
        {"h2_internal_error_is_an_attempt", test_h2_internal_error_is_an_attempt},
        {NULL, NULL},
    };
    return test_run_suite("dispatcher", cases);
}
