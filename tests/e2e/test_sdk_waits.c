/*
 * End to end: the SDK's waits against sluiced's cap on one Wait and its stream heartbeats
 * (sluiced with rpc.max_wait_ms 300 and rpc.heartbeat_interval_ms 200, the fake provider
 * slowed down where a call must stay quiet).
 *
 * - sluice_start, sluice_wait_for and sluice_wait_for_all wait again, Wait after Wait, past
 *   the cap, up to their own timeout (0: however long it takes).
 * - An unknown id used to fail the whole Wait NOT_FOUND: sluice_wait_for_all now answers it
 *   per id (SLUICE_ERROR_NOT_FOUND naming it) beside the others' results, and
 *   sluice_wait_for of one unknown id is still SLUICE_ENOTFOUND.
 * - Heartbeats never reach the caller as results (as_completed, batches).
 * - The SDK asks for each answer's text once (omit_text_parts): completions and tool calls
 *   are still all there.
 * - keepalive_time_ms reaches the wire: a client pinging every second is refused by
 *   sluiced's ping policy (5 s).
 */
#include "e2e/sluiced_harness.h"
#include "sluice/sluice.h"
#include "unit/test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG "{\"rpc\": {\"heartbeat_interval_ms\": 200, \"max_wait_ms\": 300}}"

static sluiced_proc P;

static void start(const char *config) {
    sluiced_opts so;
    memset(&so, 0, sizeof so);
    so.config_json = config ? config : CONFIG;
    CU_ASSERT_EQUAL_FATAL(sluiced_start(&P, &so), 0);
}

static void stop(void) {
    CU_ASSERT_EQUAL(sluiced_stop(&P), 0);
    sluiced_cleanup(&P);
}

static sluice_client *client(uint32_t keepalive_ms) {
    sluice_model m = {.name = "m-a", .weight = 1};
    sluice_client_options o;
    memset(&o, 0, sizeof o);
    o.models = &m;
    o.n_models = 1;
    o.keepalive_time_ms = keepalive_ms;
    sluice_client *c = NULL;
    CU_ASSERT_EQUAL(sluice_client_new(P.target, &o, &c), 0);
    return c;
}

static void test_waits_go_on_past_the_cap(void) {
    start(NULL);
    fake_provider_set_latency(P.fake, 1500, 0);
    sluice_client *c = client(0);
    sluice_prompt *p = sluice_prompt_text("past the cap");
    sluice_response *r = NULL;
    CU_ASSERT_EQUAL(sluice_start(c, p, &r), 0); /* start_nowait + wait_for(0) */
    CU_ASSERT_TRUE(r && strstr(sluice_response_completion(r), "past the cap"));
    sluice_response_free(r);
    sluice_prompt *q = sluice_prompt_text("timed");
    char *id = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_start_nowait(c, q, &id), 0);
    const char *ids[] = {id};
    sluice_response **rs = NULL;
    size_t n = 0;
    /* a timeout of the caller's still ends the wait, within the cap or beyond it */
    CU_ASSERT_EQUAL(sluice_wait_for_all(c, ids, 1, 100, &rs, &n), SLUICE_ETIMEDOUT);
    CU_ASSERT_TRUE(n == 1 && !rs[0]);
    sluice_responses_free(rs, n);
    CU_ASSERT_EQUAL(sluice_wait_for_all(c, ids, 1, 700, &rs, &n), SLUICE_ETIMEDOUT);
    CU_ASSERT_TRUE(n == 1 && !rs[0]);
    sluice_responses_free(rs, n);
    CU_ASSERT_EQUAL(sluice_wait_for_all(c, ids, 1, 30000, &rs, &n), 0);
    CU_ASSERT_TRUE(n == 1 && rs[0] && strstr(sluice_response_completion(rs[0]), "timed"));
    sluice_responses_free(rs, n);
    free(id);
    sluice_prompt_free(q);
    sluice_prompt_free(p);
    sluice_client_free(c);
    stop();
}

static void test_unknown_ids_answered_per_id(void) {
    start(NULL);
    sluice_client *c = client(0);
    sluice_prompt *p = sluice_prompt_text("known");
    char *id = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_start_nowait(c, p, &id), 0);
    const char *ids[] = {"local:t99999999", id, "not-an-id"};
    sluice_response **rs = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(sluice_wait_for_all(c, ids, 3, 30000, &rs, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT_TRUE(rs[1] && !sluice_response_is_error(rs[1]) &&
                   strstr(sluice_response_completion(rs[1]), "known"));
    for (size_t i = 0; i < 3; i += 2) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(rs[i]);
        CU_ASSERT_TRUE(sluice_response_is_error(rs[i]));
        CU_ASSERT_EQUAL(sluice_response_error_kind(rs[i]), SLUICE_ERROR_NOT_FOUND);
        CU_ASSERT_PTR_NOT_NULL(strstr(sluice_response_error_message(rs[i]), ids[i]));
        CU_ASSERT_STRING_EQUAL(sluice_response_task_id(rs[i]), ids[i]);
    }
    sluice_responses_free(rs, n);
    sluice_response *r = NULL;
    CU_ASSERT_EQUAL(sluice_wait_for(c, "local:t99999999", 1000, &r), SLUICE_ENOTFOUND);
    CU_ASSERT_PTR_NULL(r);
    CU_ASSERT_PTR_NOT_NULL(strstr(sluice_last_error(), "local:t99999999"));
    free(id);
    sluice_prompt_free(p);
    sluice_client_free(c);
    stop();
}

static size_t delivered;

static void count_result(void *ud, sluice_response *r) {
    (void)ud;
    delivered++;
    sluice_response_free(r);
}

static void test_heartbeats_never_reach_the_caller(void) {
    start(NULL);
    fake_provider_set_latency(P.fake, 1000, 0);
    sluice_client *c = client(0);
    sluice_prompt *ps[2] = {sluice_prompt_text("beat 0"), sluice_prompt_text("beat 1")};
    char **ids = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_start_many(c, (const sluice_prompt *const *)ps, 2, &ids), 0);
    sluice_iter *it = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_as_completed(c, (const char *const *)ids, 2, &it), 0);
    size_t got = 0;
    sluice_response *r;
    int rc;
    while ((rc = sluice_iter_next(it, &r)) == 0) {
        CU_ASSERT_TRUE(strcmp(sluice_response_task_id(r), ids[0]) == 0 ||
                       strcmp(sluice_response_task_id(r), ids[1]) == 0);
        got++;
        sluice_response_free(r);
    }
    CU_ASSERT_EQUAL(rc, SLUICE_EEOF);
    CU_ASSERT_EQUAL(got, 2);
    sluice_iter_free(it);
    delivered = 0;
    CU_ASSERT_EQUAL(sluice_process_prompts_cb(c, ps, 2, NULL, count_result, NULL), 0);
    CU_ASSERT_EQUAL(delivered, 2);
    sluice_task_ids_free(ids, 2);
    sluice_prompt_free(ps[0]);
    sluice_prompt_free(ps[1]);
    sluice_client_free(c);
    stop();
}

static void test_text_once_everything_still_there(void) {
    start(NULL);
    sluice_client *c = client(0);
    sluice_prompt *ps[2] = {sluice_prompt_text("plain text"), sluice_prompt_text("[[tool]] call")};
    CU_ASSERT_EQUAL(sluice_prompt_add_tool(ps[1], "lookup", "looks up",
                                           "{\"type\": \"object\", \"properties\": {}}"),
                    0);
    sluice_response **rs = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_process_prompts(c, ps, 2, NULL, &rs), 0);
    CU_ASSERT_TRUE(strstr(sluice_response_completion(rs[0]), "plain text") != NULL);
    CU_ASSERT_EQUAL(sluice_response_n_tool_calls(rs[1]), 1);
    sluice_responses_free(rs, 2);
    char **ids = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_start_many(c, (const sluice_prompt *const *)ps, 2, &ids), 0);
    size_t n = 0;
    CU_ASSERT_EQUAL(sluice_wait_for_all(c, (const char *const *)ids, 2, 30000, &rs, &n), 0);
    CU_ASSERT_TRUE(n == 2 && strstr(sluice_response_completion(rs[0]), "plain text"));
    const char *name = NULL;
    CU_ASSERT_TRUE(n == 2 && sluice_response_n_tool_calls(rs[1]) == 1 &&
                   sluice_response_tool_call(rs[1], 0, NULL, &name, NULL) == 0 &&
                   strcmp(name, "lookup") == 0);
    sluice_responses_free(rs, n);
    sluice_task_ids_free(ids, 2);
    sluice_prompt_free(ps[0]);
    sluice_prompt_free(ps[1]);
    sluice_client_free(c);
    stop();
}

static void test_keepalive_reaches_the_wire(void) {
    start("{\"rpc\": {\"max_wait_ms\": 20000}}");
    sluice_client *c = client(1000);
    sluice_prompt *p = sluice_prompt_text("[[hang]]");
    char *id = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_start_nowait(c, p, &id), 0);
    sluice_response *r = NULL;
    CU_ASSERT_EQUAL(sluice_wait_for(c, id, 15000, &r), SLUICE_EUNAVAILABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(sluice_last_error(), "pings"));
    sluice_response_free(r);
    sluice_client_free(c);
    free(id);
    sluice_prompt_free(p);
    stop();
}

int main(void) {
    static const test_case cases[] = {
        {"waits_go_on_past_the_cap", test_waits_go_on_past_the_cap},
        {"unknown_ids_answered_per_id", test_unknown_ids_answered_per_id},
        {"heartbeats_never_reach_the_caller", test_heartbeats_never_reach_the_caller},
        {"text_once_everything_still_there", test_text_once_everything_still_there},
        {"keepalive_reaches_the_wire", test_keepalive_reaches_the_wire},
        {NULL, NULL},
    };
    return test_run_suite("sdk_waits", cases);
}
