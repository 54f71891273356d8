/*
 * Batch splitting (sluice_client_options.max_call_bytes) against the real sluiced.
 *
 * A proxy in front of sluiced may limit a request body (nginx client_max_body_size, 1 MiB by
 * default), which a BatchProcess call's whole request stream counts against: 20,000 short
 * prompts failed behind a default nginx. With max_call_bytes the SDK sends a large batch as
 * several calls on one session and the caller still sees one batch. sluiced stands in for
 * the proxy here with a limit that is also per call: limits.max_batch_prompts = 50, so a
 * batch of 400 prompts sent in one call is refused (RESOURCE_EXHAUSTED) and only calls of
 * at most 50 prompts get through. (The byte limit itself, counted as a proxy counts it, is
 * checked by cli_e2e test_run_splits_a_batch_for_a_proxy against a scripted server.)
 */
#include "e2e/sluiced_harness.h"
#include "sluice/sluice.h"
#include "unit/test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 400, PER_CALL_LIMIT = 50 };

/* Prompts of ~100 bytes: 4,000 bytes per call hold about 35 of them, under the limit. */
#define CALL_BYTES 4000

static sluiced_proc P;

static sluice_client *client(size_t max_call_bytes) {
    sluice_model m = {"m-a", 1, {0}};
    sluice_client_options o;
    memset(&o, 0, sizeof o);
    o.models = &m;
    o.n_models = 1;
    o.max_call_bytes = max_call_bytes;
    sluice_client *c = NULL;
    CU_ASSERT_EQUAL(sluice_client_new(P.target, &o, &c), 0);
    return c;
}

static sluice_prompt **prompts(const char *prefix) {
    sluice_prompt **ps = calloc(N, sizeof *ps);
    for (int i = 0; i < N; i++) {
        char text[160];
        snprintf(text, sizeof text, "%s %d: %s", prefix, i,
                 "seventy bytes of padding so that a call holds a few dozen prompts....");
        ps[i] = sluice_prompt_text(text);
    }
    return ps;
}

static void free_prompts(sluice_prompt **ps) {
    for (int i = 0; i < N; i++)
        sluice_prompt_free(ps[i]);
    free(ps);
}

/* Progress as the caller sees it. */
typedef struct seen {
    int events;
    uint64_t last_done, max_expected, min_expected;
    bool went_back;
} seen;

static void on_progress(void *ud, const sluice_tracker *t, uint64_t done, uint64_t expected,
                        double rate) {
    (void)t;
    (void)rate;
    seen *s = ud;
    s->went_back |= done < s->last_done;
    s->last_done = done;
    s->max_expected = expected > s->max_expected ? expected : s->max_expected;
    s->min_expected = s->events == 0 || expected < s->min_expected ? expected : s->min_expected;
    s->events++;
}

static void check_in_order(sluice_response **rs, const char *prefix) {
    for (int i = 0; i < N; i++) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(rs[i]);
        CU_ASSERT_FALSE(sluice_response_is_error(rs[i]));
        CU_ASSERT_EQUAL(sluice_response_index(rs[i]), (uint64_t)i);
        char want[64];
        snprintf(want, sizeof want, "%s %d:", prefix, i);
        CU_ASSERT_PTR_NOT_NULL(strstr(sluice_response_completion(rs[i]), want));
    }
}

/* Without splitting, the batch meets the per-call limit; with it, the batch completes in
 * input order, its progress counts the whole batch, and every call ran on the open session,
 * whose tracker counts each prompt once. */
static void test_split_batch_on_the_open_session(void) {
    sluice_prompt **ps = prompts("open session");
    sluice_client *whole = client(0);
    sluice_response **rs = NULL;
    CU_ASSERT_EQUAL(sluice_process_prompts(whole, ps, N, NULL, &rs), SLUICE_ELIMIT);
    CU_ASSERT_PTR_NOT_NULL(strstr(sluice_last_error(), "max_batch_prompts"));
    sluice_responses_free(rs, N);
    sluice_client_free(whole);

    sluice_client *c = client(CALL_BYTES);
    CU_ASSERT_EQUAL_FATAL(sluice_client_open(c), 0);
    fake_provider_set_latency(P.fake, 20, 20); /* a few progress events per call */
    seen s = {0};
    sluice_batch_options bo = {.show_progress = true,
                               .progress_interval_ms = 20,
                               .on_progress = on_progress,
                               .progress_ud = &s};
    rs = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_process_prompts(c, ps, N, &bo, &rs), 0);
    check_in_order(rs, "open session");
    sluice_responses_free(rs, N);
    fake_provider_set_latency(P.fake, 0, 0);
    fprintf(stderr, "\n  %d progress events, the last at %llu of %llu\n", s.events,
            (unsigned long long)s.last_done, (unsigned long long)s.max_expected);
    CU_ASSERT_FALSE(s.went_back);
    if (s.events) /* always the whole batch's count */
        CU_ASSERT_TRUE(s.min_expected == N && s.max_expected == N);
    sluice_tracker t;
    CU_ASSERT_EQUAL(sluice_client_close(c, &t), 0);
    CU_ASSERT_EQUAL(t.total, N);
    CU_ASSERT_EQUAL(t.succeeded, N);
    sluice_client_free(c);
    free_prompts(ps);
}

/* Without an open session, a split batch opens one for itself and closes it at the end (as
 * a batch's own session is closed); the blocking, completions-only and callback forms. */
static void test_split_batch_on_a_session_of_its_own(void) {
    double open_before = sluiced_metric(&P, "sluice_open_sessions");
    sluice_prompt **ps = prompts("own session");
    sluice_client *c = client(CALL_BYTES);
    sluice_response **rs = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_process_prompts(c, ps, N, NULL, &rs), 0);
    check_in_order(rs, "own session");
    sluice_responses_free(rs, N);
    char **texts = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_process_prompts_completions(c, ps, N, NULL, &texts), 0);
    for (int i = 0; i < N; i++)
        CU_ASSERT_TRUE(texts[i] && strstr(texts[i], "own session"));
    sluice_completions_free(texts, N);
    CU_ASSERT_PTR_NULL(sluice_client_session_id(c)); /* the client was left as it was */
    CU_ASSERT_EQUAL(sluiced_metric(&P, "sluice_open_sessions"), open_before);
    sluice_client_free(c);
    free_prompts(ps);
}

/* A prompt that cannot go in a call of its own fails the batch before anything is sent,
 * naming it; so does a limit too small for any call. */
static void test_prompt_larger_than_a_call_is_refused(void) {
    sluice_prompt **ps = prompts("too large");
    char big[CALL_BYTES + 100];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sluice_prompt_free(ps[7]);
    ps[7] = sluice_prompt_text(big);
    fake_counters before, after;
    fake_provider_counters(P.fake, &before);
    sluice_client *c = client(CALL_BYTES);
    sluice_response **rs = NULL;
    CU_ASSERT_EQUAL(sluice_process_prompts(c, ps, N, NULL, &rs), SLUICE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(sluice_last_error(), "prompts[7]"));
    sluice_responses_free(rs, N);
    fake_provider_counters(P.fake, &after);
    CU_ASSERT_EQUAL(after.total, before.total);
    sluice_client_free(c);
    c = client(100);
    CU_ASSERT_EQUAL(sluice_process_prompts(c, ps, 1, NULL, &rs), SLUICE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(sluice_last_error(), "max_call_bytes"));
    sluice_responses_free(rs, 1);
    sluice_client_free(c);
    free_prompts(ps);
}

/* A batch that fits in one call under the limit goes as one call, as without a limit. */
static void test_small_batch_is_one_call(void) {
    sluice_prompt **ps = prompts("small");
    sluice_client *c = client(1 << 20);
    sluice_response **rs = NULL;
    /* 400 prompts in one call: sluiced refuses more than 50, so only one call hits it */
    CU_ASSERT_EQUAL(sluice_process_prompts(c, ps, N, NULL, &rs), SLUICE_ELIMIT);
    sluice_responses_free(rs, N);
    CU_ASSERT_EQUAL(sluice_process_prompts(c, ps, PER_CALL_LIMIT, NULL, &rs), 0);
    sluice_responses_free(rs, PER_CALL_LIMIT);
    sluice_client_free(c);
    free_prompts(ps);
}

/* Regression: sluiced refusing a batch (here: more than max_batch_prompts in one call)
 * while the SDK still had a write pending made the batch fail with "BatchProcess: busy"
 * (SLUICE_EBUSY from finishing a call with a write unreported) instead of the server's
 * status; the CLI then printed that. Large messages, held by flow control once sluiced stops
 * reading, make a pending write likely. */
static void test_refused_batch_reports_the_limit_not_busy(void) {
    enum { MANY = 2000 };
    sluice_prompt **ps = calloc(MANY, sizeof *ps);
    for (int i = 0; i < MANY; i++) { /* 1 KB each: the writes wait for flow control */
        char text[1100];
        snprintf(text, sizeof text, "refused %d %01000d", i, 0);
        ps[i] = sluice_prompt_text(text);
    }
    for (int round = 0; round < 20; round++) {
        sluice_client *c = client(0); /* a new connection: small flow-control windows */
        sluice_response **rs = NULL;
        int rc = sluice_process_prompts(c, ps, MANY, NULL, &rs);
        if (rc != SLUICE_ELIMIT)
            fprintf(stderr, "\n  round %d: %d %s\n", round, rc, sluice_last_error());
        CU_ASSERT_EQUAL(rc, SLUICE_ELIMIT);
        CU_ASSERT_PTR_NOT_NULL(strstr(sluice_last_error(), "limit max_batch_prompts=50"));
        sluice_responses_free(rs, MANY);
        sluice_client_free(c);
    }
    for (int i = 0; i < MANY; i++)
        sluice_prompt_free(ps[i]);
    free(ps);
}

static int setup(void) {
    sluiced_opts o;
    memset(&o, 0, sizeof o);
    o.config_json = "{\"limits\": {\"max_batch_prompts\": 50}}";
    return sluiced_start(&P, &o);
}

static int teardown(void) {
    int rc = sluiced_stop(&P);
    sluiced_cleanup(&P);
    return rc;
}

int main(void) {
    static const test_case cases[] = {
        {"split_batch_on_the_open_session", test_split_batch_on_the_open_session},
        {"split_batch_on_a_session_of_its_own", test_split_batch_on_a_session_of_its_own},
        {"prompt_larger_than_a_call_is_refused", test_prompt_larger_than_a_call_is_refused},
        {"small_batch_is_one_call", test_small_batch_is_one_call},
        {"refused_batch_reports_the_limit_not_busy", test_refused_batch_reports_the_limit_not_busy},
        {NULL, NULL},
    };
    return test_run_suite_with("batch_split", setup, teardown, cases);
}
