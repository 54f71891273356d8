/*
 * test_fake_provider_gemini.c - the fake provider's Gemini shape: the generateContent route
 * and its key header, answers (text, function calls, JSON, thoughts), Gemini-style errors
 * with their google.rpc details (RetryInfo for the retry-after markers and the limiter, no
 * rate-limit headers), the context-length wording and unknown models. Uses the fixture of
 * test_fake_provider.c (one in-process fake, plain HTTP).
 */
#include "tests/fake_provider/test_fake_provider.h"

#include "server/common/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const GEMINI_HDRS[] = {"x-goog-api-key: gk-a", "Content-Type: application/json",
                                          NULL};

static char *gemini_url(const char *model) {
    return xasprintf("%s/v1beta/models/%s:generateContent", fake_provider_base_url(g_fp), model);
}

/* A body with system "Be brief.", one user message `text`, and maxOutputTokens 100 plus
 * `config` (more generationConfig members, or NULL). */
static char *gemini_body(const char *text, const char *config) {
    return xasprintf("{\"systemInstruction\":{\"parts\":[{\"text\":\"Be brief.\"}]},\"contents\":"
                     "[{\"role\":\"user\",\"parts\":[{\"text\":\"%s\"}]}],\"generationConfig\":{"
                     "\"maxOutputTokens\":100%s%s}}",
                     text, config ? "," : "", config ? config : "");
}

static void post(const char *model, const char *const *hdrs, const char *body,
                 fake_http_result *r) {
    char *url = gemini_url(model);
    fake_http_request("POST", url, hdrs, body, 0, r);
    free(url);
}

static void gemini(const char *model, const char *text, fake_http_result *r) {
    char *body = gemini_body(text, NULL);
    post(model, GEMINI_HDRS, body, r);
    free(body);
}

/* The retryDelay of a Gemini error body's RetryInfo detail; "" when there is none. */
static const char *retry_delay(json_t *j) {
    json_t *d;
    size_t i;
    json_array_foreach(json_object_get(json_object_get(j, "error"), "details"), i, d) {
        const char *t = json_string_value(json_object_get(d, "@type"));
        if (t && strcmp(t, "type.googleapis.com/google.rpc.RetryInfo") == 0)
            return str_at(d, "retryDelay");
    }
    return "";
}

static void test_gemini_shape(void) {
    fake_http_result r;
    gemini("gem-test", "Hi", &r);
    CU_ASSERT_EQUAL(r.status, 200);
    json_t *j = parse(&r);
    CU_ASSERT_STRING_EQUAL(str_at(j, "candidates.0.content.role"), "model");
    CU_ASSERT_EQUAL(
        strncmp(str_at(j, "candidates.0.content.parts.0.text"), "echo[gem-test]: Hi#", 19), 0);
    CU_ASSERT_STRING_EQUAL(str_at(j, "candidates.0.finishReason"), "STOP");
    CU_ASSERT_STRING_EQUAL(str_at(j, "modelVersion"), "gem-test");
    /* "Be brief." 9/4 = 2, "Hi" 0, 2 contents x 6 */
    CU_ASSERT_EQUAL(int_at(j, "usageMetadata.promptTokenCount"), 2 + 0 + 12);
    CU_ASSERT_EQUAL(int_at(j, "usageMetadata.candidatesTokenCount"), 2);
    CU_ASSERT_EQUAL(int_at(j, "usageMetadata.thoughtsTokenCount"), 0);
    char v[64];
    CU_ASSERT_PTR_NULL(fake_http_header(&r, "x-ratelimit-remaining-requests", v, sizeof v));
    json_decref(j);
    fake_http_result_cleanup(&r);
    /* The same request gets the same bytes. */
    fake_http_result again;
    gemini("gem-test", "Hi", &again);
    gemini("gem-test", "Hi", &r);
    CU_ASSERT_STRING_EQUAL(r.body, again.body);
    fake_http_result_cleanup(&r);
    fake_http_result_cleanup(&again);
}

static void test_gemini_auth_and_shape_errors(void) {
    fake_http_result r;
    char *body = gemini_body("x", NULL);
    const char *bearer[] = {"Authorization: Bearer gk-a", NULL};
    post("g", bearer, body, &r); /* the key must be in x-goog-api-key */
    CU_ASSERT_EQUAL(r.status, 403);
    json_t *j = parse(&r);
    CU_ASSERT_STRING_EQUAL(str_at(j, "error.status"), "PERMISSION_DENIED");
    CU_ASSERT_EQUAL(int_at(j, "error.code"), 403);
    json_decref(j);
    fake_http_result_cleanup(&r);
    free(body);
    post("g", GEMINI_HDRS, "{\"contents\":[]}", &r);
    CU_ASSERT_EQUAL(r.status, 400);
    j = parse(&r);
    CU_ASSERT_STRING_EQUAL(str_at(j, "error.status"), "INVALID_ARGUMENT");
    CU_ASSERT_PTR_NOT_NULL(strstr(str_at(j, "error.message"), "contents is not specified"));
    json_decref(j);
    fake_http_result_cleanup(&r);
    post("g", GEMINI_HDRS, "{not json", &r);
    CU_ASSERT_EQUAL(r.status, 400);
    fake_http_result_cleanup(&r);
    char *url = xasprintf("%s/v1beta/models/g:streamGenerateContent", fake_provider_base_url(g_fp));
    fake_http_request("POST", url, GEMINI_HDRS, "{}", 0, &r);
    CU_ASSERT_EQUAL(r.status, 404);
    fake_http_result_cleanup(&r);
    free(url);
}

static void test_gemini_tool_json_and_thoughts(void) {
    fake_http_result r;
    char *body =
        xasprintf("{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"weather [[tool]]\"}]}"
                  "],\"tools\":[{\"functionDeclarations\":[{\"name\":\"get_weather\","
                  "\"parameters\":{\"type\":\"OBJECT\",\"properties\":{\"city\":{\"type\":"
                  "\"STRING\"},\"days\":{\"type\":\"INTEGER\"}}}}]}]}");
    post("g", GEMINI_HDRS, body, &r);
    json_t *j = parse(&r);
    CU_ASSERT_STRING_EQUAL(str_at(j, "candidates.0.content.parts.0.functionCall.name"),
                           "get_weather");
    CU_ASSERT_EQUAL(int_at(j, "candidates.0.content.parts.0.functionCall.args.days"), 1);
    CU_ASSERT_STRING_EQUAL(str_at(j, "candidates.0.finishReason"), "STOP");
    json_decref(j);
    fake_http_result_cleanup(&r);
    free(body);

    body = gemini_body("x", "\"responseMimeType\":\"application/json\",\"responseSchema\":{"
                            "\"type\":\"OBJECT\",\"properties\":{\"ok\":{\"type\":\"BOOLEAN\"}}}");
    post("g", GEMINI_HDRS, body, &r);
    j = parse(&r);
    CU_ASSERT_STRING_EQUAL(str_at(j, "candidates.0.content.parts.0.text"), "{\"ok\":true}");
    json_decref(j);
    fake_http_result_cleanup(&r);
    free(body);

    body = gemini_body("x", "\"responseMimeType\":\"application/json\"");
    post("g", GEMINI_HDRS, body, &r);
    j = parse(&r);
    CU_ASSERT_EQUAL(strncmp(str_at(j, "candidates.0.content.parts.0.text"), "{\"echo\":", 8), 0);
    json_decref(j);
    fake_http_result_cleanup(&r);
    free(body);

    body = gemini_body("think", "\"thinkingConfig\":{\"thinkingBudget\":1024,\"includeThoughts\":"
                                "true}");
    post("g", GEMINI_HDRS, body, &r);
    j = parse(&r);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"thought\":true"));
    CU_ASSERT_EQUAL(strncmp(str_at(j, "candidates.0.content.parts.0.text"), "thinking about #", 16),
                    0);
    CU_ASSERT_EQUAL(strncmp(str_at(j, "candidates.0.content.parts.1.text"), "echo[g]: think#", 15),
                    0);
    CU_ASSERT_EQUAL(strncmp(str_at(j, "candidates.0.content.parts.1.thoughtSignature"), "sig_", 4),
                    0);
    CU_ASSERT_EQUAL(int_at(j, "usageMetadata.thoughtsTokenCount"), 8);
    json_decref(j);
    fake_http_result_cleanup(&r);
    free(body);
}

static void test_gemini_error_markers(void) {
    fake_http_result r;
    char v[64];
    gemini("g", "[[status:503]]", &r);
    CU_ASSERT_EQUAL(r.status, 503);
    json_t *j = parse(&r);
    CU_ASSERT_STRING_EQUAL(str_at(j, "error.status"), "UNAVAILABLE");
    CU_ASSERT_STRING_EQUAL(retry_delay(j), "");
    json_decref(j);
    fake_http_result_cleanup(&r);
    gemini("g", "[[status:429,retry-after:2]]", &r);
    CU_ASSERT_EQUAL(r.status, 429);
    CU_ASSERT_PTR_NULL(fake_http_header(&r, "retry-after", v, sizeof v));
    j = parse(&r);
    CU_ASSERT_STRING_EQUAL(str_at(j, "error.status"), "RESOURCE_EXHAUSTED");
    CU_ASSERT_STRING_EQUAL(retry_delay(j), "2s");
    json_decref(j);
    fake_http_result_cleanup(&r);
    gemini("g", "[[status:429,retry-after-ms:1500]]", &r);
    CU_ASSERT_PTR_NULL(fake_http_header(&r, "retry-after-ms", v, sizeof v));
    j = parse(&r);
    CU_ASSERT_STRING_EQUAL(retry_delay(j), "1.500s");
    json_decref(j);
    fake_http_result_cleanup(&r);
    gemini("g", "[[context]]", &r);
    CU_ASSERT_EQUAL(r.status, 400);
    j = parse(&r);
    CU_ASSERT_STRING_EQUAL(str_at(j, "error.status"), "INVALID_ARGUMENT");
    CU_ASSERT_EQUAL(strncmp(str_at(j, "error.message"), "The input token count (", 23), 0);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(str_at(j, "error.message"), "exceeds the maximum number of tokens allowed"));
    json_decref(j);
    fake_http_result_cleanup(&r);
    gemini("g", "[[malformed]]", &r);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NULL(json_loads(r.body, 0, NULL));
    fake_http_result_cleanup(&r);
    fake_provider_add_unknown_model(g_fp, "gem-nope");
    gemini("gem-nope", "x", &r);
    CU_ASSERT_EQUAL(r.status, 404);
    j = parse(&r);
    CU_ASSERT_STRING_EQUAL(str_at(j, "error.status"), "NOT_FOUND");
    CU_ASSERT_EQUAL(strncmp(str_at(j, "error.message"), "models/gem-nope is not found", 28), 0);
    json_decref(j);
    fake_http_result_cleanup(&r);
    fake_provider_force_status(g_fp, "gem-401", 401);
    gemini("gem-401", "x", &r);
    j = parse(&r);
    CU_ASSERT_STRING_EQUAL(str_at(j, "error.status"), "UNAUTHENTICATED");
    json_decref(j);
    fake_http_result_cleanup(&r);
    fake_provider_force_status(g_fp, "gem-401", 0);
}

/* The limiter's 429 names its wait in RetryInfo, and no answer has rate-limit headers. */
static void test_gemini_limiter(void) {
    fake_provider_set_limits(g_fp, "gk-rl", 60, 0, 1000); /* one request per second */
    const char *hdrs[] = {"x-goog-api-key: gk-rl", NULL};
    char *body = gemini_body("limited", NULL);
    fake_http_result r;
    post("g", hdrs, body, &r);
    CU_ASSERT_EQUAL(r.status, 200);
    fake_http_result_cleanup(&r);
    post("g", hdrs, body, &r);
    CU_ASSERT_EQUAL(r.status, 429);
    char v[64];
    CU_ASSERT_PTR_NULL(fake_http_header(&r, "retry-after", v, sizeof v));
    json_t *j = parse(&r);
    CU_ASSERT_STRING_EQUAL(str_at(j, "error.status"), "RESOURCE_EXHAUSTED");
    const char *delay = retry_delay(j);
    double secs = strtod(delay, NULL);
    CU_ASSERT(delay[0] && delay[strlen(delay) - 1] == 's' && secs > 0 && secs <= 1.0);
    json_decref(j);
    fake_http_result_cleanup(&r);
    free(body);
    fake_provider_set_limits(g_fp, "gk-rl", 0, 0, 0);
}

const test_case fake_gemini_tests[] = {
    {"Gemini shape", test_gemini_shape},
    {"Gemini auth and shape errors", test_gemini_auth_and_shape_errors},
    {"Gemini tool, JSON and thoughts", test_gemini_tool_json_and_thoughts},
    {"Gemini error markers", test_gemini_error_markers},
    {"Gemini limiter", test_gemini_limiter},
    {NULL, NULL},
};
