/*
 * The SDK at its edges, against a canned server in process (canned_sluice.h) and with
 * allocation failures injected into the SDK itself (failmalloc.h: the SDK's sources are
 * compiled into this test). Each test is a regression test of an SDK bug.
 */
#include "e2e/canned_sluice.h"
#include "e2e/failmalloc.h"
#include "sluice/sluice.h"
#include "unit/test_util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static canned_sluice *S;

static int suite_init(void) {
    S = canned_sluice_start();
    return S ? 0 : -1;
}

static int suite_clean(void) {
    canned_sluice_stop(S);
    return 0;
}

static sluice_client *client(void) {
    sluice_model m = {.name = "m-a", .weight = 1};
    sluice_client_options o;
    memset(&o, 0, sizeof o);
    o.models = &m;
    o.n_models = 1;
    sluice_client *c = NULL;
    CU_ASSERT_EQUAL(sluice_client_new(canned_sluice_target(S), &o, &c), 0);
    return c;
}

/* A finished task's result (malloc'd tree, as the canned server's answers are). */
static Sluice__V1__TaskResult *finished(const char *id, const char *completion) {
    Sluice__V1__TaskResult *tr = calloc(1, sizeof *tr);
    sluice__v1__task_result__init(tr);
    tr->task_id = strdup(id);
    tr->custom_id = strdup("c");
    tr->state = SLUICE__V1__TASK_STATE__TASK_STATE_SUCCEEDED;
    tr->response = calloc(1, sizeof *tr->response);
    sluice__v1__response__init(tr->response);
    tr->response->completion = strdup(completion);
    return tr;
}

/* A WaitResponse of n finished results t1.. (free with free_unpacked). */
static Sluice__V1__WaitResponse *answer(size_t n) {
    Sluice__V1__WaitResponse *w = calloc(1, sizeof *w);
    sluice__v1__wait_response__init(w);
    w->results = calloc(n, sizeof *w->results);
    w->n_results = n;
    w->all_done = true;
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "local:t%zu", i + 1);
        w->results[i] = finished(id, "done");
    }
    return w;
}

/* Regression: from_result returned NULL both for "not finished" and for out of memory, so
 * an allocation failure became SLUICE_ETIMEDOUT ("still running"). Every allocation of the
 * call fails in turn: each failure is SLUICE_ENOMEM with a message, never a timeout. */
static void test_wait_out_of_memory_is_enomem(void) {
    Sluice__V1__WaitResponse *w = answer(1);
    canned_sluice_set_wait(S, w, 0);
    sluice_client *c = client();
    const char *ids[] = {"local:t1"};
    bool done = false;
    for (long n = 1; n < 1000 && !done; n++) {
        sluice_response **rs = NULL;
        size_t k = 0;
        failmalloc_arm(n);
        int rc = sluice_wait_for_all(c, ids, 1, 0, &rs, &k);
        failmalloc_disarm();
        if (failmalloc_failed()) {
            CU_ASSERT_EQUAL(rc, SLUICE_ENOMEM);
            CU_ASSERT_TRUE(strlen(sluice_last_error()) > 0);
        } else {
            done = true;
            CU_ASSERT_EQUAL(rc, 0);
            CU_ASSERT_EQUAL(k, 1);
        }
        sluice_responses_free(rs, rc ? 0 : k);
    }
    CU_ASSERT_TRUE(done);
    sluice_client_free(c);
    canned_sluice_set_wait(S, NULL, 0);
    protobuf_c_message_free_unpacked(&w->base, NULL);
}

/* Regression: sluice_iter_next dropped the task whose response it could not allocate and
 * went on with the next one. Now SLUICE_ENOMEM keeps it for the next call; a failure that
 * ends the stream is returned by every later call (never a plain end). */
static void test_iter_next_out_of_memory_keeps_the_task(void) {
    Sluice__V1__TaskResult *stream[2] = {finished("local:t1", "one"), finished("local:t2", "two")};
    canned_sluice_set_stream(S, stream, 2);
    sluice_client *c = client();
    const char *ids[] = {"local:t1", "local:t2"};
    bool done = false;
    for (long n = 1; n < 1000 && !done; n++) {
        sluice_iter *it = NULL;
        CU_ASSERT_EQUAL_FATAL(sluice_as_completed(c, ids, 2, &it), 0);
        sluice_response *r = NULL;
        failmalloc_arm(n);
        int rc = sluice_iter_next(it, &r);
        failmalloc_disarm();
        bool failed = failmalloc_failed();
        size_t seen = rc == 0, ended_by_error = 0;
        if (rc == 0)
            sluice_response_free(r);
        if (failed)
            CU_ASSERT_EQUAL(rc, SLUICE_ENOMEM);
        for (;;) { /* the rest, without failures */
            rc = sluice_iter_next(it, &r);
            if (rc != 0) {
                ended_by_error = rc != SLUICE_EEOF;
                break;
            }
            seen++;
            sluice_response_free(r);
        }
        /* both tasks, or an error that says the iteration is incomplete */
        CU_ASSERT_TRUE(seen == 2 || ended_by_error);
        if (ended_by_error)
            CU_ASSERT_NOT_EQUAL(sluice_iter_next(it, &r), SLUICE_EEOF);
        sluice_iter_free(it);
        done = !failed;
    }
    CU_ASSERT_TRUE(done);
    sluice_client_free(c);
    canned_sluice_set_stream(S, NULL, 0);
    for (int i = 0; i < 2; i++)
        protobuf_c_message_free_unpacked(&stream[i]->base, NULL);
}

/* Regression: the Wait call's deadline, timeout + 10 s, wrapped for timeouts near
 * UINT32_MAX: UINT32_MAX - 9000 gave a deadline of 999 ms, and a task answered 1.5 s
 * later was reported as SLUICE_ETIMEDOUT. */
static void test_wait_timeout_near_uint32_max_does_not_wrap(void) {
    Sluice__V1__WaitResponse *w = answer(1);
    canned_sluice_set_wait(S, w, 1500);
    sluice_client *c = client();
    sluice_response *r = NULL;
    unsigned before = canned_sluice_waits(S);
    CU_ASSERT_EQUAL(sluice_wait_for(c, "local:t1", UINT32_MAX - 9000, &r), 0);
    CU_ASSERT_PTR_NOT_NULL(r);
    CU_ASSERT_EQUAL(canned_sluice_waits(S), before + 1);
    sluice_response_free(r);
    sluice_client_free(c);
    canned_sluice_set_wait(S, NULL, 0);
    protobuf_c_message_free_unpacked(&w->base, NULL);
}

/* Regression: a server answering more results than ids asked for made sluice_wait_for
 * leak them (and return SLUICE_OK with no response). Such an answer is SLUICE_EPROTO. */
static void test_extra_results_are_eproto_without_leak(void) {
    Sluice__V1__WaitResponse *w = answer(2);
    canned_sluice_set_wait(S, w, 0);
    sluice_client *c = client();
    sluice_response *r = (sluice_response *)&r; /* not NULL: must be cleared */
    CU_ASSERT_EQUAL(sluice_wait_for(c, "local:t1", 1000, &r), SLUICE_EPROTO);
    CU_ASSERT_PTR_NULL(r);
    CU_ASSERT_PTR_NOT_NULL(strstr(sluice_last_error(), "2 results for 1 ids"));
    sluice_response **rs = NULL;
    size_t n = 0;
    const char *ids[] = {"local:t1"};
    CU_ASSERT_EQUAL(sluice_wait_for_all(c, ids, 1, 1000, &rs, &n), SLUICE_EPROTO);
    CU_ASSERT_PTR_NULL(rs);
    CU_ASSERT_EQUAL(n, 0);
    sluice_client_free(c);
    canned_sluice_set_wait(S, NULL, 0);
    protobuf_c_message_free_unpacked(&w->base, NULL);
}

/* Regression: sluice_wait_for_all with n > 0 and NULL ids crashed (so did cancel and
 * as_completed), and the prompt setters returned SLUICE_EINVAL without a message. */
static void test_bad_arguments_are_einval_with_a_message(void) {
    sluice_client *c = client(); /* clears the thread's last error */
    CU_ASSERT_EQUAL(sluice_prompt_set_custom_id(NULL, "x"), SLUICE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(sluice_last_error(), "set_custom_id"));
    sluice_tracker t;
    CU_ASSERT_EQUAL(sluice_client_status(c, &t), SLUICE_ECLOSED); /* another message */
    CU_ASSERT_EQUAL(sluice_prompt_set_prefer_model(NULL, "m-a"), SLUICE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(sluice_last_error(), "set_prefer_model"));
    sluice_response **rs = NULL;
    size_t n = 7;
    CU_ASSERT_EQUAL(sluice_wait_for_all(c, NULL, 3, 0, &rs, &n), SLUICE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(sluice_last_error(), "task_ids is NULL"));
    CU_ASSERT_PTR_NULL(rs);
    CU_ASSERT_EQUAL(n, 0);
    const char *ids[] = {"local:t1", NULL};
    CU_ASSERT_EQUAL(sluice_wait_for_all(c, ids, 2, 0, &rs, &n), SLUICE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(sluice_last_error(), "task_ids[1] is NULL"));
    size_t k;
    CU_ASSERT_EQUAL(sluice_cancel(c, NULL, 2, &k), SLUICE_EINVAL);
    sluice_iter *it = NULL;
    CU_ASSERT_EQUAL(sluice_as_completed(c, NULL, 2, &it), SLUICE_EINVAL);
    CU_ASSERT_PTR_NULL(it);
    sluice_client_free(c);
}

int main(void) {
    static const test_case cases[] = {
        {"wait out of memory is ENOMEM", test_wait_out_of_memory_is_enomem},
        {"iter_next out of memory keeps the task", test_iter_next_out_of_memory_keeps_the_task},
        {"wait timeout near UINT32_MAX does not wrap",
         test_wait_timeout_near_uint32_max_does_not_wrap},
        {"extra results are EPROTO without leak", test_extra_results_are_eproto_without_leak},
        {"bad arguments are EINVAL with a message", test_bad_arguments_are_einval_with_a_message},
        {NULL, NULL},
    };
    return test_run_suite_with("sdk_edges", suite_init, suite_clean, cases);
}
