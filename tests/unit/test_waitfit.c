/* server/service/waitfit: a Wait answer over the message limit keeps the complete results
 * that fit and names the rest, instead of failing with RESOURCE_EXHAUSTED and withholding
 * every result; max_results bounds it the same way; unfinished entries are named in
 * pending_task_ids. */
#include "server/common/alloc.h"
#include "server/service/convert.h"
#include "server/service/waitfit.h"
#include "sluice/status.h"
#include "unit/test_util.h"

#include <stdlib.h>
#include <string.h>

#define N 6

/* N entries: finished ones with a completion of `sizes[i]` bytes (0 = unfinished). */
static Sluice__V1__WaitResponse *answer(const size_t *sizes) {
    Sluice__V1__WaitResponse *w = XNEW(Sluice__V1__WaitResponse);
    sluice__v1__wait_response__init(w);
    w->n_results = N;
    w->results = XNEWV(Sluice__V1__TaskResult *, N);
    w->all_done = true;
    for (size_t i = 0; i < N; i++) {
        llm_response *r = NULL;
        if (sizes[i]) {
            r = llm_response_new();
            r->completion = xmalloc(sizes[i] + 1);
            memset(r->completion, 'a' + (int)i, sizes[i]);
            r->completion[sizes[i]] = '\0';
        }
        char id[32];
        snprintf(id, sizeof id, "local:t%zu", i + 1);
        w->results[i] =
            convert_task_result(id, r ? STORE_TASK_SUCCEEDED : STORE_TASK_RUNNING, r, i, "cid");
        w->all_done &= r != NULL;
        llm_response_free(r);
    }
    return w;
}

static void answer_free(Sluice__V1__WaitResponse *w) {
    waitfit_cleanup(w);
    protobuf_c_message_free_unpacked(&w->base, NULL);
}

static void test_an_answer_that_fits_is_untouched(void) {
    size_t sizes[N] = {100, 200, 0, 300, 400, 500};
    Sluice__V1__WaitResponse *w = answer(sizes);
    char err[256];
    CU_ASSERT_EQUAL(waitfit(w, 1 << 20, 0, err, sizeof err), SLUICE_OK);
    CU_ASSERT_EQUAL(w->n_more_task_ids, 0);
    for (size_t i = 0; i < N; i++)
        CU_ASSERT_EQUAL(w->results[i]->response != NULL, sizes[i] != 0);
    CU_ASSERT_FALSE(w->all_done);
    CU_ASSERT_EQUAL_FATAL(w->n_pending_task_ids, 1);
    CU_ASSERT_STRING_EQUAL(w->pending_task_ids[0], "local:t3");
    answer_free(w);
}

static void test_every_result_in_is_all_done(void) {
    size_t sizes[N] = {100, 200, 300, 300, 400, 500};
    Sluice__V1__WaitResponse *w = answer(sizes);
    char err[256];
    CU_ASSERT_EQUAL(waitfit(w, 1 << 20, 0, err, sizeof err), SLUICE_OK);
    CU_ASSERT_TRUE(w->all_done);
    CU_ASSERT_EQUAL(w->n_pending_task_ids, 0);
    CU_ASSERT_EQUAL(w->n_more_task_ids, 0);
    answer_free(w);
}

static void test_max_results_leaves_the_rest_for_another_wait(void) {
    size_t sizes[N] = {100, 0, 200, 300, 0, 400};
    Sluice__V1__WaitResponse *w = answer(sizes);
    char err[256];
    CU_ASSERT_EQUAL(waitfit(w, 1 << 20, 2, err, sizeof err), SLUICE_OK);
    CU_ASSERT_FALSE(w->all_done);
    CU_ASSERT_PTR_NOT_NULL(w->results[0]->response);
    CU_ASSERT_PTR_NOT_NULL(w->results[2]->response);
    CU_ASSERT_PTR_NULL(w->results[3]->response);
    CU_ASSERT_PTR_NULL(w->results[5]->response);
    CU_ASSERT_EQUAL_FATAL(w->n_more_task_ids, 2);
    CU_ASSERT_STRING_EQUAL(w->more_task_ids[0], "local:t4");
    CU_ASSERT_STRING_EQUAL(w->more_task_ids[1], "local:t6");
    CU_ASSERT_EQUAL_FATAL(w->n_pending_task_ids, 2); /* unfinished ones are not "more" */
    CU_ASSERT_STRING_EQUAL(w->pending_task_ids[0], "local:t2");
    CU_ASSERT_STRING_EQUAL(w->pending_task_ids[1], "local:t5");
    answer_free(w);
}

static void test_max_results_at_the_count_is_untouched(void) {
    size_t sizes[N] = {100, 0, 200, 300, 0, 400};
    Sluice__V1__WaitResponse *w = answer(sizes);
    char err[256];
    CU_ASSERT_EQUAL(waitfit(w, 1 << 20, 4, err, sizeof err), SLUICE_OK);
    CU_ASSERT_EQUAL(w->n_more_task_ids, 0);
    CU_ASSERT_EQUAL(w->n_pending_task_ids, 2);
    answer_free(w);
}

static void test_complete_results_that_fit_the_rest_named(void) {
    size_t sizes[N] = {3000, 3000, 0, 5000, 3000, 1000};
    Sluice__V1__WaitResponse *w = answer(sizes);
    char err[256];
    size_t limit = 8000;
    CU_ASSERT_EQUAL(waitfit(w, limit, 0, err, sizeof err), SLUICE_OK);
    CU_ASSERT_TRUE(protobuf_c_message_get_packed_size(&w->base) <= limit);
    CU_ASSERT_FALSE(w->all_done);
    CU_ASSERT_EQUAL(w->n_results, N); /* one entry per id, in order */
    /* 1 and 2 fit, 4 (5000) does not, 5 does not either then, 6 (1000) still fits */
    CU_ASSERT_PTR_NOT_NULL(w->results[0]->response);
    CU_ASSERT_PTR_NOT_NULL(w->results[1]->response);
    CU_ASSERT_PTR_NULL(w->results[2]->response); /* unfinished: not in more */
    CU_ASSERT_PTR_NULL(w->results[3]->response);
    CU_ASSERT_PTR_NULL(w->results[4]->response);
    CU_ASSERT_PTR_NOT_NULL(w->results[5]->response);
    CU_ASSERT_EQUAL_FATAL(w->n_more_task_ids, 2);
    CU_ASSERT_STRING_EQUAL(w->more_task_ids[0], "local:t4");
    CU_ASSERT_STRING_EQUAL(w->more_task_ids[1], "local:t5");
    CU_ASSERT_EQUAL(w->results[3]->state, SLUICE__V1__TASK_STATE__TASK_STATE_SUCCEEDED);
    CU_ASSERT_STRING_EQUAL(w->results[3]->custom_id, "cid");
    answer_free(w);
}

static void test_a_result_no_answer_can_carry_becomes_an_error(void) {
    size_t sizes[N] = {100, 20000, 100, 100, 100, 100};
    Sluice__V1__WaitResponse *w = answer(sizes);
    char err[256];
    CU_ASSERT_EQUAL(waitfit(w, 10000, 0, err, sizeof err), SLUICE_OK);
    CU_ASSERT_TRUE(protobuf_c_message_get_packed_size(&w->base) <= 10000);
    CU_ASSERT_EQUAL(w->n_more_task_ids, 0);
    const Sluice__V1__Response *r = w->results[1]->response;
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(r->is_error);
    CU_ASSERT_EQUAL(r->error_kind, SLUICE__V1__ERROR_KIND__ERROR_KIND_TRANSPORT);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->error_message, "limit 10000 bytes"));
    CU_ASSERT_EQUAL(w->results[1]->state, SLUICE__V1__TASK_STATE__TASK_STATE_SUCCEEDED);
    for (size_t i = 2; i < N; i++)
        CU_ASSERT_FALSE(w->results[i]->response->is_error);
    answer_free(w);
}

static void test_entries_alone_over_the_limit_refused(void) {
    size_t sizes[N] = {100, 100, 100, 100, 100, 100};
    Sluice__V1__WaitResponse *w = answer(sizes);
    char err[256];
    CU_ASSERT_EQUAL(waitfit(w, 60, 0, err, sizeof err), SLUICE_ELIMIT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "wait for fewer tasks"));
    CU_ASSERT_PTR_NOT_NULL(w->results[0]->response); /* unchanged */
    CU_ASSERT_PTR_NULL(w->more_task_ids);
    answer_free(w);
}

int main(void) {
    static const test_case cases[] = {
        {"an answer that fits is untouched", test_an_answer_that_fits_is_untouched},
        {"every result in is all_done", test_every_result_in_is_all_done},
        {"max_results leaves the rest for another wait",
         test_max_results_leaves_the_rest_for_another_wait},
        {"max_results at the count is untouched", test_max_results_at_the_count_is_untouched},
        {"complete results that fit, the rest named",
         test_complete_results_that_fit_the_rest_named},
        {"a result no answer can carry becomes an error",
         test_a_result_no_answer_can_carry_becomes_an_error},
        {"entries alone over the limit refused", test_entries_alone_over_the_limit_refused},
        {NULL, NULL},
    };
    return test_run_suite("waitfit", cases);
}
