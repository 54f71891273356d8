/*
 * The dispatcher's behaviours, run once per provider shape against the fake provider: an
 * answer with its usage and cost, tool calls and their results, structured output, a 429's
 * delay honoured (Retry-After headers for OpenAI and Anthropic, the RetryInfo in Gemini's
 * body) and never shortened, 5xx retried, fallback between providers, context-length
 * failures, blocklisting, and the cache keyed per provider. Models: m-a (OpenAI shape; m-b
 * where structured output is needed), m-c (Anthropic), m-g (Gemini).
 */
#include "integration/dispatch_harness.h"
#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "tests/fake_provider/fake_answer.h"
#include "unit/test_util.h"

#include <stdio.h>
#include <string.h>

#define WAIT_MS 30000

typedef struct provider_case {
    const char *model, *upstream;
} provider_case;

/* One model per provider shape. */
static const provider_case every[] = {{"m-a", "up-a"}, {"m-c", "up-c"}, {"m-g", "up-g"}};
#define N_EVERY (sizeof every / sizeof *every)

static harness *start(bool with_store) {
    harness_opts o;
    memset(&o, 0, sizeof o);
    o.with_store = with_store;
    o.dcfg.backoff_base_ms = 10;
    o.dcfg.backoff_max_ms = 20;
    return harness_new(&o);
}

static harness_result *res(harness *h, uint64_t id) {
    return &h->results[id];
}

static void close_session(harness *h, dsession *s) {
    dispatcher_session_close(h->d, s, NULL, NULL);
    dsession_unref(s);
}

/* Submits one request on a fresh session over `models` and waits for it; the session is
 * returned in *s (close it). */
static harness_result *run_one(harness *h, const char *models, uint32_t max_attempts,
                               llm_request *req, uint64_t *done, dsession **s) {
    *s = harness_session(h, models, 0, 0, 0, max_attempts, CACHE_MODE_OFF);
    CU_ASSERT_PTR_NOT_NULL_FATAL(*s);
    uint64_t id = harness_submit_request(h, *s, req);
    (*done)++;
    CU_ASSERT_EQUAL(harness_wait(h, *done, WAIT_MS), *done);
    return res(h, id);
}

static const llm_part *first_part(const llm_response *r, llm_part_kind kind) {
    for (size_t i = 0; r && i < r->n_content; i++)
        if (r->content[i].kind == kind)
            return &r->content[i];
    return NULL;
}

static void add_weather_tool(llm_request *r) {
    r->tools = XNEWV(llm_tool, 1);
    r->n_tools = 1;
    r->tools[0].name = xstrdup("get_weather");
    r->tools[0].description = xstrdup("Weather for a city");
    r->tools[0].parameters =
        xstrdup("{\"properties\":{\"city\":{\"type\":\"string\"}},\"type\":\"object\"}");
}

/* ---- answers ------------------------------------------------------------------------ */

static void test_answer_usage_and_cost(void) {
    harness *h = start(false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    uint64_t done = 0;
    for (size_t i = 0; i < N_EVERY; i++) {
        char text[64], want[128];
        snprintf(text, sizeof text, "hello from %s", every[i].model);
        snprintf(want, sizeof want, "echo[%s]: %s#", every[i].upstream, text);
        dsession *s;
        harness_result *r = run_one(h, every[i].model, 3, harness_text_request(text), &done, &s);
        CU_ASSERT_EQUAL(r->final, DTASK_DONE);
        CU_ASSERT_FALSE(r->resp->is_error);
        CU_ASSERT_PTR_NOT_NULL(r->resp->completion);
        CU_ASSERT_PTR_NOT_NULL(strstr(r->resp->completion ? r->resp->completion : "", want));
        CU_ASSERT_EQUAL(r->resp->status_code, 200);
        CU_ASSERT_EQUAL(r->resp->n_attempts, 1);
        CU_ASSERT_PTR_NOT_NULL(r->resp->finish_reason);
        CU_ASSERT_TRUE(r->resp->usage.input_tokens > 0 && r->resp->usage.output_tokens > 0);
        const model_info *m = registry_find(h->reg, every[i].model);
        double cost = registry_cost(m, &r->resp->usage);
        CU_ASSERT_TRUE(cost > 0);
        CU_ASSERT_DOUBLE_EQUAL(r->resp->cost, cost, 1e-12);
        dsession_status st;
        dsession_status_get(s, clock_now_ms(), &st);
        CU_ASSERT_EQUAL(st.succeeded, 1);
        CU_ASSERT_EQUAL(st.input_tokens, r->resp->usage.input_tokens);
        CU_ASSERT_DOUBLE_EQUAL(st.cost, cost, 1e-12);
        close_session(h, s);
    }
    harness_free(h);
}

/* Gemini's thoughts: the summary is the answer's thinking, its tokens are billed as output. */
static void test_gemini_thoughts_billed_as_output(void) {
    harness *h = start(false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    uint64_t done = 0;
    llm_request *req = harness_text_request("think it over");
    req->sampling.set |= LLM_SET_EFFORT;
    req->sampling.effort = LLM_EFFORT_LOW;
    dsession *s;
    harness_result *r = run_one(h, "m-g", 3, req, &done, &s);
    CU_ASSERT_EQUAL_FATAL(r->final, DTASK_DONE);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->resp->completion, "echo[up-g]: think it over#"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->resp->thinking);
    CU_ASSERT_EQUAL(strncmp(r->resp->thinking, "thinking about #", 16), 0);
    const llm_part *sig = first_part(r->resp, LLM_PART_THINKING);
    CU_ASSERT_PTR_NOT_NULL(sig);
    /* the answer's 4 words ("echo[up-g]: think it over#...") plus the fake's 8 thoughts
     * tokens, all at the output price */
    CU_ASSERT_EQUAL(r->resp->usage.output_tokens, 4 + 8);
    const model_info *m = registry_find(h->reg, "m-g");
    double want = (r->resp->usage.input_tokens * m->input_price + 12 * m->output_price) / 1e6;
    CU_ASSERT_DOUBLE_EQUAL(r->resp->cost, want, 1e-12);
    close_session(h, s);
    harness_free(h);
}

static void test_tool_call_and_result(void) {
    harness *h = start(false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    uint64_t done = 0;
    for (size_t i = 0; i < N_EVERY; i++) {
        llm_request *req = harness_text_request("weather in Paris? [[tool]]");
        add_weather_tool(req);
        dsession *s;
        harness_result *r = run_one(h, every[i].model, 3, req, &done, &s);
        CU_ASSERT_EQUAL_FATAL(r->final, DTASK_DONE);
        const llm_part *call = first_part(r->resp, LLM_PART_TOOL_CALL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(call);
        CU_ASSERT_STRING_EQUAL(call->name, "get_weather");
        CU_ASSERT_PTR_NOT_NULL(call->id);
        json_t *args = json_loads(call->arguments, 0, NULL);
        CU_ASSERT_TRUE(json_is_string(json_object_get(args, "city")));
        json_decref(args);

        /* The call and its result sent back: the model answers in text. */
        llm_request *next = harness_text_request("weather in Paris? [[tool]]");
        add_weather_tool(next);
        llm_message *a = XNEWV(llm_message, 1);
        a->role = LLM_ROLE_ASSISTANT;
        a->n_parts = r->resp->n_content;
        a->parts = XNEWV(llm_part, a->n_parts);
        for (size_t j = 0; j < a->n_parts; j++)
            llm_part_copy(&a->parts[j], &r->resp->content[j]);
        next->messages = xrealloc(next->messages, 3 * sizeof *next->messages);
        next->messages[1] = *a;
        free(a);
        llm_message *t = &next->messages[2];
        memset(t, 0, sizeof *t);
        t->role = LLM_ROLE_TOOL;
        t->n_parts = 1;
        t->parts = XNEWV(llm_part, 1);
        t->parts[0].kind = LLM_PART_TOOL_RESULT;
        t->parts[0].id = xstrdup(call->id);
        t->parts[0].text = xstrdup("18C, sunny");
        next->n_messages = 3;
        dsession *s2;
        harness_result *r2 = run_one(h, every[i].model, 3, next, &done, &s2);
        CU_ASSERT_EQUAL(r2->final, DTASK_DONE);
        CU_ASSERT_PTR_NULL(first_part(r2->resp, LLM_PART_TOOL_CALL));
        CU_ASSERT_PTR_NOT_NULL(r2->resp->completion);
        close_session(h, s);
        close_session(h, s2);
    }
    harness_free(h);
}

static void test_structured_output(void) {
    harness *h = start(false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    uint64_t done = 0;
    const char *models[] = {"m-b", "m-c", "m-g"}; /* m-b: the OpenAI shape with json_schema */
    for (size_t i = 0; i < 3; i++) {
        llm_request *req = harness_text_request("Where is the Eiffel tower?");
        req->schema_name = xstrdup("place");
        req->output_schema = xstrdup("{\"additionalProperties\":false,\"properties\":{\"city\":{"
                                     "\"type\":\"string\"}},\"required\":[\"city\"],\"type\":"
                                     "\"object\"}");
        dsession *s;
        harness_result *r = run_one(h, models[i], 3, req, &done, &s);
        CU_ASSERT_EQUAL_FATAL(r->final, DTASK_DONE);
        CU_ASSERT_EQUAL(r->resp->n_attempts, 1);
        json_t *j = json_loads(r->resp->completion ? r->resp->completion : "", 0, NULL);
        CU_ASSERT_TRUE(json_is_object(j) && json_is_string(json_object_get(j, "city")));
        if (!j)
            fprintf(stderr, "\n  %s: %s\n", models[i], r->resp->completion);
        json_decref(j);
        close_session(h, s);
    }
    harness_free(h);
}

/* ---- rate limits and retries -------------------------------------------------------- */

/* Scripts two 429s for `upstream` naming 2 s then 0.3 s, in its provider's way. */
static void script_two_429s(harness *h, const provider_case *p) {
    if (strcmp(p->model, "m-g") == 0) {
        char *b2 = fake_gemini_error(429, NULL, NULL, "quota", 2000);
        char *b03 = fake_gemini_error(429, NULL, NULL, "quota", 300);
        fake_provider_script(h->fake, p->upstream, 1, 429, NULL, 0, b2);
        fake_provider_script(h->fake, p->upstream, 1, 429, NULL, 0, b03);
        free(b2);
        free(b03);
        return;
    }
    const char *h2[] = {"retry-after: 2"}, *h03[] = {"retry-after-ms: 300"};
    fake_provider_script(h->fake, p->upstream, 1, 429, h2, 1, NULL);
    fake_provider_script(h->fake, p->upstream, 1, 429, h03, 1, NULL);
}

/* A 429 cools the key down for the delay its provider named (Gemini: in the body), and a
 * later, shorter one does not shorten it. The three keys cool down independently, side by
 * side. */
static void test_rate_limit_delay_honoured_and_never_shrinks(void) {
    harness *h = start(false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    fake_provider_set_latency(h->fake, 50, 0);
    dsession *s[N_EVERY];
    uint64_t first[N_EVERY];
    uint64_t t0 = clock_now_ms();
    for (size_t i = 0; i < N_EVERY; i++) {
        script_two_429s(h, &every[i]);
        s[i] = harness_session(h, every[i].model, 0, 0, 0, 3, CACHE_MODE_OFF);
        const char *t[] = {"first", "second"};
        first[i] = harness_submit_texts(h, s[i], t, 2, 2);
    }
    CU_ASSERT_EQUAL(harness_wait(h, 2 * N_EVERY, WAIT_MS), 2 * N_EVERY);
    CU_ASSERT_TRUE(clock_now_ms() - t0 >= 2000); /* every retry waited for the longer delay */
    for (size_t i = 0; i < N_EVERY; i++) {
        uint32_t delays = 0;
        for (uint64_t k = 0; k < 2; k++) {
            harness_result *r = res(h, first[i] + k);
            CU_ASSERT_EQUAL(r->final, DTASK_DONE);
            CU_ASSERT_EQUAL_FATAL(r->resp->n_attempts, 2);
            CU_ASSERT_EQUAL(r->resp->attempts[0].status_code, 429);
            delays += r->resp->attempts[0].retry_after_ms;
        }
        CU_ASSERT_EQUAL(delays, 2300); /* 2 s and 0.3 s, as named */
        dsession_status st;
        dsession_status_get(s[i], clock_now_ms(), &st);
        CU_ASSERT_EQUAL(st.rate_limit_errors, 2);
        close_session(h, s[i]);
    }
    harness_free(h);
}

static void test_gemini_retry_delay_beyond_budget_fails_saying_why(void) {
    harness *h = start(false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    char *body = fake_gemini_error(429, NULL, NULL, "quota", 3600000);
    fake_provider_script(h->fake, "up-g", 1, 429, NULL, 0, body);
    free(body);
    dsession_config c;
    memset(&c, 0, sizeof c);
    dsession_model m = {"m-g", 1, {0}};
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
    close_session(h, s);
    harness_free(h);
}

/* The fake's own limiter answers Gemini's way (RetryInfo, no headers); the dispatcher waits
 * what it names and every prompt gets through. */
static void test_gemini_limiter_paces_by_retry_info(void) {
    harness *h = start(false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    fake_provider_set_limits(h->fake, "sk-test-g", 60, 0, 1000); /* 1/s, burst 1 */
    dsession *s = harness_session(h, "m-g", 0, 0, 0, 10, CACHE_MODE_OFF);
    const char *t[] = {"one", "two", "three"};
    uint64_t first = harness_submit_texts(h, s, t, 3, 3);
    CU_ASSERT_EQUAL(harness_wait(h, 3, WAIT_MS), 3);
    unsigned limited = 0;
    for (uint64_t k = 0; k < 3; k++) {
        harness_result *r = res(h, first + k);
        CU_ASSERT_EQUAL(r->final, DTASK_DONE);
        for (size_t a = 0; a < r->resp->n_attempts; a++) {
            const llm_attempt *at = &r->resp->attempts[a];
            if (at->status_code != 429)
                continue;
            limited++;
            CU_ASSERT_TRUE(at->retry_after_ms > 0 && at->retry_after_ms <= 1000);
        }
    }
    CU_ASSERT_TRUE(limited >= 1);
    dsession_status st;
    dsession_status_get(s, clock_now_ms(), &st);
    CU_ASSERT_EQUAL(st.rate_limit_errors, limited);
    close_session(h, s);
    harness_free(h);
}

static void test_server_errors_retried(void) {
    harness *h = start(false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    uint64_t done = 0;
    for (size_t i = 0; i < N_EVERY; i++) {
        char text[64];
        snprintf(text, sizeof text, "flaky %s [[fail-first:2]]", every[i].model);
        dsession *s;
        harness_result *r = run_one(h, every[i].model, 5, harness_text_request(text), &done, &s);
        CU_ASSERT_EQUAL(r->final, DTASK_DONE);
        CU_ASSERT_EQUAL_FATAL(r->resp->n_attempts, 3);
        CU_ASSERT_EQUAL(r->resp->attempts[0].status_code, 500);
        CU_ASSERT_EQUAL(r->resp->attempts[1].status_code, 500);
        CU_ASSERT_STRING_EQUAL(r->resp->model_used, every[i].model);
        close_session(h, s);
    }
    harness_free(h);
}

/* 503 moves to another model, whatever its provider. */
static void test_fallback_between_providers(void) {
    harness *h = start(false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    static const struct {
        const char *models, *down, *first, *used, *echo;
    } cases[] = {
        {"m-g:1,m-c:0", "up-g", "m-g", "m-c", "echo[up-c]"},
        {"m-c:1,m-g:0", "up-c", "m-c", "m-g", "echo[up-g]"},
        {"m-g:1,m-a:0", "up-g", "m-g", "m-a", "echo[up-a]"},
        {"m-a:1,m-g:0", "up-a", "m-a", "m-g", "echo[up-g]"},
    };
    uint64_t done = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        fake_provider_force_status(h->fake, cases[i].down, 503);
        dsession *s;
        harness_result *r =
            run_one(h, cases[i].models, 3, harness_text_request("fall back please"), &done, &s);
        CU_ASSERT_EQUAL(r->final, DTASK_DONE);
        CU_ASSERT_STRING_EQUAL(r->resp->model_requested, cases[i].first);
        CU_ASSERT_STRING_EQUAL(r->resp->model_used, cases[i].used);
        CU_ASSERT_EQUAL_FATAL(r->resp->n_attempts, 2);
        CU_ASSERT_EQUAL(r->resp->attempts[0].status_code, 503);
        CU_ASSERT_STRING_EQUAL(r->resp->attempts[0].model, cases[i].first);
        CU_ASSERT_PTR_NOT_NULL(strstr(r->resp->completion, cases[i].echo));
        fake_provider_force_status(h->fake, cases[i].down, 0);
        close_session(h, s);
    }
    harness_free(h);
}

static void test_context_error_fails_at_once(void) {
    harness *h = start(false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    uint64_t done = 0;
    const char *sessions[] = {"m-a", "m-c", "m-g", "m-g,m-c,m-a"};
    for (size_t i = 0; i < 4; i++) {
        dsession *s;
        harness_result *r =
            run_one(h, sessions[i], 5, harness_text_request("too long [[context]]"), &done, &s);
        CU_ASSERT_EQUAL(r->final, DTASK_FAILED);
        CU_ASSERT_EQUAL(r->resp->error_kind, LLM_ERR_INVALID_REQUEST);
        CU_ASSERT_EQUAL(r->resp->n_attempts, 1);
        CU_ASSERT_EQUAL(r->resp->status_code, 400);
        close_session(h, s);
    }
    harness_free(h);
}

/* Gemini says 400 for a bad key (reason API_KEY_INVALID) and for a project that cannot use
 * the API (FAILED_PRECONDITION): the model is blocklisted, not retried prompt by prompt. */
static void test_gemini_key_refusals_blocklist(void) {
    harness *h = start(false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    char *bad_key = fake_gemini_error(400, NULL, "API_KEY_INVALID",
                                      "API key not valid. Please pass a valid API key.", -1);
    fake_provider_script(h->fake, "up-g", 1, 400, NULL, 0, bad_key);
    free(bad_key);
    dsession *s = harness_session(h, "m-g:1,m-c:0", 0, 0, 0, 3, CACHE_MODE_OFF);
    const char *t[] = {"first"};
    uint64_t id = harness_submit_texts(h, s, t, 1, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 1, WAIT_MS), 1);
    CU_ASSERT_EQUAL(res(h, id)->final, DTASK_DONE);
    CU_ASSERT_STRING_EQUAL(res(h, id)->resp->model_used, "m-c");
    CU_ASSERT_PTR_NOT_NULL(strstr(res(h, id)->resp->attempts[0].error, "API_KEY_INVALID"));
    const char *t2[] = {"second"};
    uint64_t id2 = harness_submit_texts(h, s, t2, 1, 5);
    CU_ASSERT_EQUAL(harness_wait(h, 6, WAIT_MS), 6);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_STRING_EQUAL(res(h, id2 + i)->resp->model_used, "m-c");
    fake_model_counters mc;
    fake_provider_model_counters(h->fake, "up-g", &mc);
    CU_ASSERT_EQUAL(mc.requests, 1);
    close_session(h, s);

    char *precondition = fake_gemini_error(400, "FAILED_PRECONDITION", NULL,
                                           "User location is not supported for the API use.", -1);
    fake_provider_script(h->fake, "up-g", 1, 400, NULL, 0, precondition);
    free(precondition);
    s = harness_session(h, "m-g", 0, 0, 0, 3, CACHE_MODE_OFF);
    id = harness_submit_texts(h, s, t, 1, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 7, WAIT_MS), 7);
    CU_ASSERT_EQUAL(res(h, id)->final, DTASK_FAILED);
    CU_ASSERT_EQUAL(res(h, id)->resp->error_kind, LLM_ERR_NO_MODEL);
    CU_ASSERT_EQUAL(res(h, id)->resp->n_attempts, 1);
    close_session(h, s);
    harness_free(h);
}

/* A prompt Gemini cannot be sent (a tool result answering no call: Gemini needs the call's
 * name) is refused before anything goes out and moves to a model that takes it. */
static void test_gemini_inexpressible_prompt_moves(void) {
    harness *h = start(false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    uint64_t done = 0;
    const char *sessions[] = {"m-g:1,m-a:0", "m-g"};
    for (size_t i = 0; i < 2; i++) {
        llm_request *req = harness_text_request("what did the tool say?");
        req->messages = xrealloc(req->messages, 2 * sizeof *req->messages);
        llm_message *t = &req->messages[1];
        memset(t, 0, sizeof *t);
        t->role = LLM_ROLE_TOOL;
        t->n_parts = 1;
        t->parts = XNEWV(llm_part, 1);
        t->parts[0].kind = LLM_PART_TOOL_RESULT;
        t->parts[0].id = xstrdup("call_404");
        t->parts[0].text = xstrdup("42");
        req->n_messages = 2;
        dsession *s;
        harness_result *r = run_one(h, sessions[i], 3, req, &done, &s);
        CU_ASSERT_EQUAL_FATAL(r->resp->n_attempts, i == 0 ? 2 : 1);
        CU_ASSERT_EQUAL(r->resp->attempts[0].status_code, 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(r->resp->attempts[0].error, "answers no earlier tool call"));
        if (i == 0) {
            CU_ASSERT_EQUAL(r->final, DTASK_DONE);
            CU_ASSERT_STRING_EQUAL(r->resp->model_used, "m-a");
        } else {
            CU_ASSERT_EQUAL(r->final, DTASK_FAILED);
            CU_ASSERT_EQUAL(r->resp->error_kind, LLM_ERR_INVALID_REQUEST);
        }
        close_session(h, s);
    }
    fake_model_counters mc;
    fake_provider_model_counters(h->fake, "up-g", &mc);
    CU_ASSERT_EQUAL(mc.requests, 0);
    harness_free(h);
}

/* ---- the cache ---------------------------------------------------------------------- */

/* An answer is cached under the model (and provider) that gave it: a Gemini answer serves
 * the next Gemini prompt, never an Anthropic one. */
static void test_cache_keyed_per_provider(void) {
    harness *h = start(true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    const char *t[] = {"cache me"};
    dsession *g1 = harness_session(h, "m-g", 0, 0, 0, 3, CACHE_MODE_READ_WRITE);
    uint64_t id = harness_submit_texts(h, g1, t, 1, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 1, WAIT_MS), 1);
    double cost = res(h, id)->resp->cost;
    CU_ASSERT_TRUE(cost > 0);
    store_flush(h->st);

    dsession *g2 = harness_session(h, "m-g", 0, 0, 0, 3, CACHE_MODE_READ_WRITE);
    id = harness_submit_texts(h, g2, t, 1, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 2, WAIT_MS), 2);
    harness_result *r = res(h, id);
    CU_ASSERT_TRUE(r->resp->local_cache_hit);
    CU_ASSERT_EQUAL(r->resp->cost, 0);
    CU_ASSERT_DOUBLE_EQUAL(r->resp->cost_saved, cost, 1e-12);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->resp->completion, "echo[up-g]"));

    dsession *c = harness_session(h, "m-c", 0, 0, 0, 3, CACHE_MODE_READ_WRITE);
    id = harness_submit_texts(h, c, t, 1, 1);
    CU_ASSERT_EQUAL(harness_wait(h, 3, WAIT_MS), 3);
    CU_ASSERT_FALSE(res(h, id)->resp->local_cache_hit);
    CU_ASSERT_PTR_NOT_NULL(strstr(res(h, id)->resp->completion, "echo[up-c]"));
    fake_model_counters mc;
    fake_provider_model_counters(h->fake, "up-g", &mc);
    CU_ASSERT_EQUAL(mc.requests, 1);
    close_session(h, g1);
    close_session(h, g2);
    close_session(h, c);
    harness_free(h);
}

int main(void) {
    static const test_case tests[] = {
        {"answer_usage_and_cost", test_answer_usage_and_cost},
        {"gemini_thoughts_billed_as_output", test_gemini_thoughts_billed_as_output},
        {"tool_call_and_result", test_tool_call_and_result},
        {"structured_output", test_structured_output},
        {"rate_limit_delay_honoured_and_never_shrinks",
         test_rate_limit_delay_honoured_and_never_shrinks},
        {"gemini_retry_delay_beyond_budget_fails_saying_why",
         test_gemini_retry_delay_beyond_budget_fails_saying_why},
        {"gemini_limiter_paces_by_retry_info", test_gemini_limiter_paces_by_retry_info},
        {"server_errors_retried", test_server_errors_retried},
        {"fallback_between_providers", test_fallback_between_providers},
        {"context_error_fails_at_once", test_context_error_fails_at_once},
        {"gemini_key_refusals_blocklist", test_gemini_key_refusals_blocklist},
        {"gemini_inexpressible_prompt_moves", test_gemini_inexpressible_prompt_moves},
        {"cache_keyed_per_provider", test_cache_keyed_per_provider},
        {NULL, NULL},
    };
    return test_run_suite("providers", tests);
}
