/*
 * test_fake_provider.c - the fake provider: the OpenAI and Anthropic shapes, determinism,
 * tool and JSON answers, every fault marker and unknown models; the rest (limits, counters,
 * control API, the binary) is in test_fake_provider_state.c, the Gemini shape in
 * test_fake_provider_gemini.c. main() is here.
 *
 * One in-process fake (plain HTTP) serves every test; tests that change settings undo them.
 * Requests go through libcurl's easy interface (fake_test_util) so the fake is tested
 * independently of sluice's http client, except where concurrency is needed.
 */
#include "unit/test_util.h"
#include "tests/fake_provider/test_fake_provider.h"

#include "server/common/alloc.h"
#include "tests/fake_provider/fake_answer.h"

#include <CUnit/Basic.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

fake_provider *g_fp;
char g_openai[128], g_anthropic[128];

const char *const OPENAI_HDRS[] = {"Authorization: Bearer sk-a", "Content-Type: application/json",
                                   NULL};
const char *const ANTHROPIC_HDRS[] = {"x-api-key: ak-a", "anthropic-version: 2023-06-01",
                                      "Content-Type: application/json", NULL};

char *openai_body(const char *model, const char *text) {
    return xasprintf(
        "{\"model\":\"%s\",\"messages\":[{\"role\":\"system\",\"content\":\"Be "
        "brief.\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"%s\"}]}"
        "],\"max_completion_tokens\":100}",
        model, text);
}

char *anthropic_body(const char *model, const char *text) {
    return xasprintf("{\"model\":\"%s\",\"system\":\"Be brief.\",\"messages\":[{\"role\":\"user\","
                     "\"content\":\"%s\"}],\"max_tokens\":100}",
                     model, text);
}

/* POSTs an OpenAI request with `text` as the user message. */
void openai(const char *model, const char *text, long timeout_ms, fake_http_result *r) {
    char *body = openai_body(model, text);
    fake_http_request("POST", g_openai, OPENAI_HDRS, body, timeout_ms, r);
    free(body);
}

void anthropic(const char *model, const char *text, fake_http_result *r) {
    char *body = anthropic_body(model, text);
    fake_http_request("POST", g_anthropic, ANTHROPIC_HDRS, body, 0, r);
    free(body);
}

json_t *parse(const fake_http_result *r) {
    json_t *j = json_loads(r->body, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL(j);
    return j;
}

/* The value at a dotted path like "choices.0.message.content" (array indexes as numbers);
 * NULL when absent. Borrowed from j. */
static json_t *json_at(json_t *j, const char *path) {
    char key[64];
    for (const char *p = path; j && *p;) {
        size_t n = strcspn(p, ".");
        snprintf(key, sizeof key, "%.*s", (int)n, p);
        j = json_is_array(j) ? json_array_get(j, strtoul(key, NULL, 10)) : json_object_get(j, key);
        p += n + (p[n] == '.');
    }
    return j;
}

const char *str_at(json_t *j, const char *path) {
    json_t *v = json_at(j, path);
    return json_is_string(v) ? json_string_value(v) : "";
}

json_int_t int_at(json_t *j, const char *path) {
    return json_integer_value(json_at(j, path));
}

void expect_status(const char *text, long status) {
    fake_http_result r;
    openai("m", text, 0, &r);
    CU_ASSERT_EQUAL(r.curl_code, 0);
    CU_ASSERT_EQUAL(r.status, status);
    fake_http_result_cleanup(&r);
}

void keyed(const char *key, const char *text, fake_http_result *r) {
    char auth[64];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    const char *hdrs[] = {auth, NULL};
    char *body = openai_body("rl", text);
    fake_http_request("POST", g_openai, hdrs, body, 0, r);
    free(body);
}

static void test_openai_shape(void) {
    fake_http_result r;
    openai("gpt-test", "Hello there, this is a test prompt.", 0, &r);
    CU_ASSERT_EQUAL(r.status, 200);
    json_t *j = parse(&r);
    CU_ASSERT_STRING_EQUAL(str_at(j, "object"), "chat.completion");
    CU_ASSERT_STRING_EQUAL(str_at(j, "model"), "gpt-test");
    const char *text = str_at(j, "choices.0.message.content");
    CU_ASSERT_EQUAL(strncmp(text, "echo[gpt-test]: Hello there, this is a test prompt.#", 52), 0);
    CU_ASSERT_EQUAL(strlen(text), 52 + 8);
    CU_ASSERT_STRING_EQUAL(str_at(j, "choices.0.finish_reason"), "stop");
    /* "Be brief." 9/4=2, + 35/4=8 chars, 2 messages x 6 */
    CU_ASSERT_EQUAL(int_at(j, "usage.prompt_tokens"), 2 + 8 + 12);
    CU_ASSERT_EQUAL(int_at(j, "usage.completion_tokens"), 8);
    json_decref(j);
    fake_http_result_cleanup(&r);
}

static void test_anthropic_shape(void) {
    fake_http_result r;
    anthropic("claude-test", "Hi", &r);
    CU_ASSERT_EQUAL(r.status, 200);
    json_t *j = parse(&r);
    CU_ASSERT_STRING_EQUAL(str_at(j, "type"), "message");
    CU_ASSERT_STRING_EQUAL(str_at(j, "content.0.type"), "text");
    CU_ASSERT_EQUAL(strncmp(str_at(j, "content.0.text"), "echo[claude-test]: Hi#", 22), 0);
    CU_ASSERT_STRING_EQUAL(str_at(j, "stop_reason"), "end_turn");
    CU_ASSERT_EQUAL(int_at(j, "usage.input_tokens"), 2 + 0 + 12);
    char v[64];
    CU_ASSERT_PTR_NOT_NULL(fake_http_header(&r, "request-id", v, sizeof v));
    json_decref(j);
    fake_http_result_cleanup(&r);
}

static void test_auth_and_shape_errors(void) {
    fake_http_result r;
    const char *no_auth[] = {"Content-Type: application/json", NULL};
    char *body = openai_body("m", "x");
    fake_http_request("POST", g_openai, no_auth, body, 0, &r);
    CU_ASSERT_EQUAL(r.status, 401);
    json_t *j = parse(&r);
    CU_ASSERT_STRING_EQUAL(str_at(j, "error.type"), "invalid_request_error");
    json_decref(j);
    fake_http_result_cleanup(&r);
    free(body);
    body = anthropic_body("m", "x");
    fake_http_request("POST", g_anthropic, no_auth, body, 0, &r);
    CU_ASSERT_EQUAL(r.status, 401);
    j = parse(&r);
    CU_ASSERT_STRING_EQUAL(str_at(j, "type"), "error");
    CU_ASSERT_STRING_EQUAL(str_at(j, "error.type"), "authentication_error");
    json_decref(j);
    fake_http_result_cleanup(&r);
    const char *no_version[] = {"x-api-key: k", NULL};
    fake_http_request("POST", g_anthropic, no_version, body, 0, &r);
    CU_ASSERT_EQUAL(r.status, 400);
    fake_http_result_cleanup(&r);
    free(body);
    fake_http_request("POST", g_openai, OPENAI_HDRS, "{not json", 0, &r);
    CU_ASSERT_EQUAL(r.status, 400);
    fake_http_result_cleanup(&r);
    fake_http_request("POST", g_anthropic, ANTHROPIC_HDRS,
                      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0,
                      &r);
    CU_ASSERT_EQUAL(r.status, 400); /* max_tokens is required */
    fake_http_result_cleanup(&r);
}

static void test_determinism(void) {
    fake_http_result a, b, c;
    openai("m", "same prompt", 0, &a);
    openai("m", "same prompt", 0, &b);
    openai("m", "other prompt", 0, &c);
    CU_ASSERT_STRING_EQUAL(a.body, b.body);
    json_t *ja = parse(&a), *jc = parse(&c);
    const char *ta = str_at(ja, "choices.0.message.content");
    const char *tc = str_at(jc, "choices.0.message.content");
    CU_ASSERT_STRING_NOT_EQUAL(strchr(ta, '#'), strchr(tc, '#'));
    json_decref(ja);
    json_decref(jc);
    fake_http_result_cleanup(&a);
    fake_http_result_cleanup(&b);
    fake_http_result_cleanup(&c);
}

static void test_tool_and_json_answers(void) {
    const char *tools = "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                        "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
                        "\"string\"},\"days\":{\"type\":\"integer\"}}}}}]";
    char *body =
        xasprintf("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"weather "
                  "[[tool]]\"}],%s}",
                  tools);
    fake_http_result r;
    fake_http_request("POST", g_openai, OPENAI_HDRS, body, 0, &r);
    json_t *j = parse(&r);
    CU_ASSERT_STRING_EQUAL(str_at(j, "choices.0.finish_reason"), "tool_calls");
    CU_ASSERT_STRING_EQUAL(str_at(j, "choices.0.message.tool_calls.0.function.name"),
                           "get_weather");
    json_t *args =
        json_loads(str_at(j, "choices.0.message.tool_calls.0.function.arguments"), 0, NULL);
    CU_ASSERT(json_is_string(json_object_get(args, "city")));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(args, "days")), 1);
    json_decref(args);
    json_decref(j);
    fake_http_result_cleanup(&r);
    free(body);
    body =
        xasprintf("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                  "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":"
                  "\"r\",\"schema\":{\"type\":\"object\",\"properties\":{\"ok\":{\"type\":"
                  "\"boolean\"},\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\"]}}}}}}}");
    fake_http_request("POST", g_openai, OPENAI_HDRS, body, 0, &r);
    j = parse(&r);
    CU_ASSERT_STRING_EQUAL(str_at(j, "choices.0.message.content"),
                           "{\"ok\":true,\"tags\":[\"a\"]}");
    json_decref(j);
    fake_http_result_cleanup(&r);
    free(body);
    body = xasprintf("{\"model\":\"c\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\","
                     "\"content\":\"x\"}],\"tools\":[{\"name\":\"answer\",\"input_schema\":{"
                     "\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"number\"}}}}],"
                     "\"tool_choice\":{\"type\":\"tool\",\"name\":\"answer\"}}");
    fake_http_request("POST", g_anthropic, ANTHROPIC_HDRS, body, 0, &r);
    j = parse(&r);
    CU_ASSERT_STRING_EQUAL(str_at(j, "stop_reason"), "tool_use");
    CU_ASSERT_STRING_EQUAL(str_at(j, "content.0.type"), "tool_use");
    CU_ASSERT_STRING_EQUAL(str_at(j, "content.0.name"), "answer");
    json_decref(j);
    fake_http_result_cleanup(&r);
    free(body);
}

static void test_status_markers(void) {
    expect_status("[[status:503]]", 503);
    fake_http_result r;
    char v[128];
    openai("m", "[[status:429,retry-after:2]]", 0, &r);
    CU_ASSERT_EQUAL(r.status, 429);
    CU_ASSERT_STRING_EQUAL(fake_http_header(&r, "retry-after", v, sizeof v), "2");
    fake_http_result_cleanup(&r);
    openai("m", "[[status:429,retry-after-ms:1500]]", 0, &r);
    CU_ASSERT_STRING_EQUAL(fake_http_header(&r, "retry-after-ms", v, sizeof v), "1500");
    fake_http_result_cleanup(&r);
    openai("m", "[[status:429,retry-after-date]]", 0, &r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fake_http_header(&r, "retry-after", v, sizeof v));
    time_t when = curl_getdate(v, NULL), now = time(NULL);
    CU_ASSERT(when >= now + 1 && when <= now + 4);
    fake_http_result_cleanup(&r);
    anthropic("c", "[[status:529]]", &r);
    CU_ASSERT_EQUAL(r.status, 529);
    json_t *j = parse(&r);
    CU_ASSERT_STRING_EQUAL(str_at(j, "error.type"), "overloaded_error");
    json_decref(j);
    fake_http_result_cleanup(&r);
}

static void test_transport_markers(void) {
    fake_http_result r;
    openai("m", "[[reset]]", 0, &r);
    CU_ASSERT_EQUAL(r.curl_code, CURLE_GOT_NOTHING);
    fake_http_result_cleanup(&r);
    openai("m", "[[hang]]", 300, &r);
    CU_ASSERT_EQUAL(r.curl_code, CURLE_OPERATION_TIMEDOUT);
    fake_http_result_cleanup(&r);
    openai("m", "[[truncate]]", 0, &r);
    CU_ASSERT_EQUAL(r.curl_code, CURLE_PARTIAL_FILE);
    fake_http_result_cleanup(&r);
    openai("m", "[[malformed]]", 0, &r);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NULL(json_loads(r.body, 0, NULL));
    fake_http_result_cleanup(&r);
}

static void test_context_and_fail_first(void) {
    fake_http_result r;
    openai("m", "[[context]]", 0, &r);
    CU_ASSERT_EQUAL(r.status, 400);
    json_t *j = parse(&r);
    CU_ASSERT_STRING_EQUAL(str_at(j, "error.code"), "context_length_exceeded");
    CU_ASSERT_PTR_NOT_NULL(strstr(str_at(j, "error.message"), "maximum context length is"));
    json_decref(j);
    fake_http_result_cleanup(&r);
    anthropic("c", "[[context]]", &r);
    CU_ASSERT_EQUAL(r.status, 400);
    j = parse(&r);
    CU_ASSERT_EQUAL(strncmp(str_at(j, "error.message"), "prompt is too long: ", 20), 0);
    json_decref(j);
    fake_http_result_cleanup(&r);
    expect_status("[[fail-first:2]] unique-17", 500);
    expect_status("[[fail-first:2]] unique-17", 500);
    expect_status("[[fail-first:2]] unique-17", 200);
    expect_status("[[fail-first:2]] unique-17", 200);
}

static void test_unknown_model(void) {
    fake_provider_add_unknown_model(g_fp, "gpt-nope");
    fake_http_result r;
    openai("gpt-nope", "x", 0, &r);
    CU_ASSERT_EQUAL(r.status, 404);
    json_t *j = parse(&r);
    CU_ASSERT_STRING_EQUAL(str_at(j, "error.code"), "model_not_found");
    json_decref(j);
    fake_http_result_cleanup(&r);
    anthropic("gpt-nope", "x", &r);
    CU_ASSERT_EQUAL(r.status, 404);
    fake_http_result_cleanup(&r);
}

static void test_markers_scan(void) {
    fake_markers m;
    fake_markers_scan("a [[status:429,retry-after:2,retry-after-ms:1500]] [[fail-first:3]] "
                      "[[tool]] [[bogus]] [[pad:100]] [[status:x",
                      &m);
    CU_ASSERT_EQUAL(m.status, 429);
    CU_ASSERT_EQUAL(m.retry_after_s, 2);
    CU_ASSERT_EQUAL(m.retry_after_ms, 1500);
    CU_ASSERT_EQUAL(m.fail_first, 3);
    CU_ASSERT_EQUAL(m.pad, 100);
    CU_ASSERT(m.tool);
    CU_ASSERT_FALSE(m.reset);
    fake_markers_scan("nothing here", &m);
    CU_ASSERT_EQUAL(m.status, 0);
    CU_ASSERT_EQUAL(m.retry_after_s, -1);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    char err[256];
    fake_provider_config cfg = {.quiet = true};
    if (fake_provider_new(&cfg, &g_fp, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    snprintf(g_openai, sizeof g_openai, "%s/v1/chat/completions", fake_provider_base_url(g_fp));
    snprintf(g_anthropic, sizeof g_anthropic, "%s/v1/messages", fake_provider_base_url(g_fp));
    static const test_case tests[] = {
        {"OpenAI shape", test_openai_shape},
        {"Anthropic shape", test_anthropic_shape},
        {"auth and shape errors", test_auth_and_shape_errors},
        {"determinism", test_determinism},
        {"tool and JSON answers", test_tool_and_json_answers},
        {"status markers", test_status_markers},
        {"transport markers", test_transport_markers},
        {"context and fail-first markers", test_context_and_fail_first},
        {"unknown model", test_unknown_model},
        {"markers scan", test_markers_scan},
        {NULL, NULL},
    };
    int rc = test_run_suite("fake_provider", tests);
    rc |= test_run_suite("fake_provider_state", fake_state_tests);
    rc |= test_run_suite("fake_provider_gemini", fake_gemini_tests);
    fake_provider_free(g_fp);
    curl_global_cleanup();
    return rc;
}
