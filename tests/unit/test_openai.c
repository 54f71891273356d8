/*
 * test_openai.c - the OpenAI chat-completions adapter: request bodies, headers, response
 * and error parsing. Bodies are checked field by field after parsing them back with
 * jansson, never by comparing whole strings.
 */
#include "unit/adapter_test_util.h"

#include "server/common/alloc.h"
#include "sluice/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- requests ----------------------------------------------------------------------- */

static void test_plain_prompt(void) {
    llm_request *r = prompt("Say hi");
    provider_request out;
    json_t *body = build(model("gpt-4.1-mini"), r, &out);
    CU_ASSERT_STRING_EQUAL(out.url, "https://api.openai.com/v1/chat/completions");
    CU_ASSERT_TRUE(has_header(&out, "Authorization: Bearer " KEY));
    CU_ASSERT_TRUE(has_header(&out, "Content-Type: application/json"));
    EXPECT_STR(jstr(body, "model"), "gpt-4.1-mini-2025-04-14");
    CU_ASSERT_EQUAL(json_array_size(jget(body, "messages")), 1);
    EXPECT_STR(jstr(body, "messages.0.role"), "user");
    EXPECT_STR(jstr(body, "messages.0.content"), "Say hi");
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(jget(body, "temperature")), 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(jget(body, "top_p")), 1.0, 1e-12);
    CU_ASSERT_EQUAL(json_integer_value(jget(body, "max_completion_tokens")), 512);
    CU_ASSERT_PTR_NULL(jget(body, "stop"));
    CU_ASSERT_PTR_NULL(jget(body, "reasoning_effort"));
    CU_ASSERT_PTR_NULL(jget(body, "response_format"));
    CU_ASSERT_PTR_NULL(jget(body, "tools"));
    json_decref(body);
    provider_request_cleanup(&out);
    llm_request_free(r);
}

static void test_no_key_no_auth_header(void) {
    llm_request *r = prompt("hi");
    provider_request out;
    char err[128];
    CU_ASSERT_EQUAL(build_rc(model("gpt-4o"), NULL, r, &out, err, sizeof err), SLUICE_OK);
    CU_ASSERT_EQUAL(out.n_headers, 1);
    CU_ASSERT_TRUE(has_header(&out, "Content-Type: application/json"));
    provider_request_cleanup(&out);
    llm_request_free(r);
}

static void test_key_with_newline_rejected(void) {
    llm_request *r = prompt("hi");
    provider_request out;
    char err[128];
    CU_ASSERT_EQUAL(build_rc(model("gpt-4o"), "sk-x\r\nX-Evil: 1", r, &out, err, sizeof err),
                    SLUICE_EINVAL);
    CU_ASSERT_PTR_NULL(strstr(err, "sk-x"));
    CU_ASSERT_PTR_NULL(out.body);
    CU_ASSERT_EQUAL(out.n_headers, 0);
    llm_request_free(r);
}

static void test_system_and_multi_turn(void) {
    llm_request *r = llm_request_new();
    add_text(r, LLM_ROLE_SYSTEM, "Be terse.");
    add_text(r, LLM_ROLE_USER, "2+2?");
    add_text(r, LLM_ROLE_ASSISTANT, "4");
    add_text(r, LLM_ROLE_USER, "And 3+3?");
    json_t *body = build_body(model("gpt-4.1"), r);
    const char *roles[] = {"system", "user", "assistant", "user"};
    const char *texts[] = {"Be terse.", "2+2?", "4", "And 3+3?"};
    CU_ASSERT_EQUAL(json_array_size(jget(body, "messages")), 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *m = json_array_get(jget(body, "messages"), i);
        EXPECT_STR(jstr(m, "role"), roles[i]);
        EXPECT_STR(jstr(m, "content"), texts[i]);
    }
    json_decref(body);
    llm_request_free(r);
}

static void test_image_by_url_and_bytes(void) {
    llm_request *r = llm_request_new();
    llm_message *m = add_msg(r, LLM_ROLE_USER);
    add_part(m, LLM_PART_TEXT)->text = xstrdup("What is this?");
    add_image_url(m, "https://example.com/cat.png")->detail = xstrdup("low");
    static const uint8_t bytes[] = {0, 1, 2, 3};
    add_image_bytes(m, bytes, sizeof bytes, "image/png");
    json_t *body = build_body(model("gpt-4o"), r);
    json_t *c = jget(body, "messages.0.content");
    CU_ASSERT_TRUE(json_is_array(c));
    CU_ASSERT_EQUAL(json_array_size(c), 3);
    EXPECT_STR(jstr(c, "0.type"), "text");
    EXPECT_STR(jstr(c, "0.text"), "What is this?");
    EXPECT_STR(jstr(c, "1.type"), "image_url");
    EXPECT_STR(jstr(c, "1.image_url.url"), "https://example.com/cat.png");
    EXPECT_STR(jstr(c, "1.image_url.detail"), "low");
    EXPECT_STR(jstr(c, "2.image_url.url"), "data:image/png;base64,AAECAw==");
    CU_ASSERT_PTR_NULL(jget(c, "2.image_url.detail"));
    json_decref(body);

    /* A model without image support refuses, naming the part. */
    model_info no_images = *model("gpt-4o");
    no_images.images = false;
    build_fails(&no_images, r, "messages[0].parts[1]");
    llm_request_free(r);
}

static void test_tools_call_and_result(void) {
    llm_request *r = llm_request_new();
    add_weather_tool(r);
    r->tools[0].strict = true;
    add_text(r, LLM_ROLE_USER, "Weather in Paris?");
    llm_message *a = add_msg(r, LLM_ROLE_ASSISTANT);
    add_thinking(a, "secret-thoughts", "sig");
    add_tool_call(a, "call_1", "get_weather", "{\"city\":\"Paris\"}");
    add_tool_result(add_msg(r, LLM_ROLE_TOOL), "call_1", "18C, sunny");
    provider_request out;
    json_t *body = build(model("gpt-4.1-mini"), r, &out);
    EXPECT_STR(jstr(body, "tools.0.type"), "function");
    EXPECT_STR(jstr(body, "tools.0.function.name"), "get_weather");
    EXPECT_STR(jstr(body, "tools.0.function.description"), "Weather for a city");
    EXPECT_STR(jstr(body, "tools.0.function.parameters.properties.city.type"), "string");
    CU_ASSERT_TRUE(json_is_true(jget(body, "tools.0.function.strict")));
    CU_ASSERT_EQUAL(json_array_size(jget(body, "messages")), 3);
    EXPECT_STR(jstr(body, "messages.1.role"), "assistant");
    CU_ASSERT_TRUE(json_is_null(jget(body, "messages.1.content")));
    EXPECT_STR(jstr(body, "messages.1.tool_calls.0.id"), "call_1");
    EXPECT_STR(jstr(body, "messages.1.tool_calls.0.type"), "function");
    EXPECT_STR(jstr(body, "messages.1.tool_calls.0.function.name"), "get_weather");
    EXPECT_STR(jstr(body, "messages.1.tool_calls.0.function.arguments"), "{\"city\":\"Paris\"}");
    EXPECT_STR(jstr(body, "messages.2.role"), "tool");
    EXPECT_STR(jstr(body, "messages.2.tool_call_id"), "call_1");
    EXPECT_STR(jstr(body, "messages.2.content"), "18C, sunny");
    CU_ASSERT_PTR_NULL(strstr(out.body, "secret-thoughts"));
    json_decref(body);
    provider_request_cleanup(&out);
    llm_request_free(r);
}

static void test_tool_results_in_user_message(void) {
    llm_request *r = llm_request_new();
    add_text(r, LLM_ROLE_USER, "go");
    add_thinking(add_msg(r, LLM_ROLE_ASSISTANT), "only thinking", NULL);
    llm_message *u = add_msg(r, LLM_ROLE_USER);
    add_tool_result(u, "call_9", "done");
    add_part(u, LLM_PART_TEXT)->text = xstrdup("now summarise");
    provider_request out;
    json_t *body = build(model("gpt-4.1"), r, &out);
    /* The thinking-only assistant turn has nothing OpenAI takes: it is left out. */
    CU_ASSERT_EQUAL(json_array_size(jget(body, "messages")), 3);
    EXPECT_STR(jstr(body, "messages.1.role"), "tool");
    EXPECT_STR(jstr(body, "messages.1.tool_call_id"), "call_9");
    EXPECT_STR(jstr(body, "messages.2.role"), "user");
    EXPECT_STR(jstr(body, "messages.2.content"), "now summarise");
    CU_ASSERT_PTR_NULL(strstr(out.body, "only thinking"));
    json_decref(body);
    provider_request_cleanup(&out);
    llm_request_free(r);
}

static void test_output_schema(void) {
    llm_request *r = prompt("Who wrote the first program?");
    r->schema_name = xstrdup("person");
    r->output_schema = xstrdup("{\"properties\":{\"name\":{\"type\":\"string\"}},"
                               "\"required\":[\"name\"],\"type\":\"object\"}");
    r->sampling.set |= LLM_SET_JSON_MODE;
    r->sampling.json_mode = true; /* the schema wins over json_mode */
    json_t *body = build_body(model("gpt-4.1-mini"), r);
    EXPECT_STR(jstr(body, "response_format.type"), "json_schema");
    EXPECT_STR(jstr(body, "response_format.json_schema.name"), "person");
    CU_ASSERT_TRUE(json_is_true(jget(body, "response_format.json_schema.strict")));
    EXPECT_STR(jstr(body, "response_format.json_schema.schema.properties.name.type"), "string");
    json_decref(body);

    model_info plain = *model("gpt-4.1-mini");
    plain.json_schema = false;
    build_fails(&plain, r, "output schema");
    llm_request_free(r);
}

static void test_json_mode(void) {
    llm_request *r = prompt("Give JSON");
    r->sampling.set |= LLM_SET_JSON_MODE;
    r->sampling.json_mode = true;
    json_t *body = build_body(model("gpt-4o-mini"), r);
    EXPECT_STR(jstr(body, "response_format.type"), "json_object");
    CU_ASSERT_PTR_NULL(jget(body, "response_format.json_schema"));
    json_decref(body);
    llm_request_free(r);
}

/* Builds `model_name` with the given effort and temperature 0.7; returns the body (caller
 * decrefs). */
static json_t *effort_body(const char *model_name, llm_effort effort) {
    llm_request *r = prompt("think");
    r->sampling.set |= LLM_SET_EFFORT | LLM_SET_TEMPERATURE;
    r->sampling.effort = effort;
    r->sampling.temperature = 0.7;
    json_t *body = build_body(model(model_name), r);
    llm_request_free(r);
    return body;
}

static void test_reasoning_effort(void) {
    json_t *body = effort_body("o3", LLM_EFFORT_HIGH);
    EXPECT_STR(jstr(body, "reasoning_effort"), "high");
    CU_ASSERT_PTR_NULL(jget(body, "temperature"));
    CU_ASSERT_PTR_NULL(jget(body, "top_p"));
    json_decref(body);
    body = effort_body("o4-mini", LLM_EFFORT_XHIGH);
    EXPECT_STR(jstr(body, "reasoning_effort"), "high");
    json_decref(body);
    body = effort_body("o3", LLM_EFFORT_MINIMAL);
    EXPECT_STR(jstr(body, "reasoning_effort"), "low");
    json_decref(body);
    body = effort_body("gpt-5", LLM_EFFORT_MINIMAL);
    EXPECT_STR(jstr(body, "reasoning_effort"), "minimal");
    json_decref(body);
    body = effort_body("gpt-5-nano", LLM_EFFORT_MEDIUM);
    EXPECT_STR(jstr(body, "reasoning_effort"), "medium");
    CU_ASSERT_PTR_NULL(jget(body, "temperature"));
    json_decref(body);
    /* A non-reasoning model ignores the effort and keeps its sampling parameters. */
    body = effort_body("gpt-4.1", LLM_EFFORT_HIGH);
    CU_ASSERT_PTR_NULL(jget(body, "reasoning_effort"));
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(jget(body, "temperature")), 0.7, 1e-12);
    CU_ASSERT_PTR_NOT_NULL(jget(body, "top_p"));
    json_decref(body);
}

static void test_stop_and_max_tokens(void) {
    llm_request *r = prompt("count");
    r->sampling.set |= LLM_SET_STOP | LLM_SET_MAX_NEW_TOKENS;
    r->sampling.stop[0] = xstrdup("\n\n");
    r->sampling.stop[1] = xstrdup("END");
    r->sampling.n_stop = 2;
    r->sampling.max_new_tokens = 1000;
    json_t *body = build_body(model("gpt-4.1-nano"), r);
    CU_ASSERT_EQUAL(json_array_size(jget(body, "stop")), 2);
    EXPECT_STR(jstr(body, "stop.0"), "\n\n");
    EXPECT_STR(jstr(body, "stop.1"), "END");
    CU_ASSERT_EQUAL(json_integer_value(jget(body, "max_completion_tokens")), 1000);
    json_decref(body);
    llm_request_free(r);
}

static void test_invalid_utf8_rejected(void) {
    llm_request *r = prompt("bad \xff byte");
    build_fails(model("gpt-4o"), r, "messages[0].parts[0]");
    llm_request_free(r);
}

/* ---- responses ---------------------------------------------------------------------- */

static void test_parse_text_and_usage(void) {
    llm_response *r = parse_ok(
        "{\"id\":\"c1\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":"
        "{\"role\":\"assistant\",\"content\":\"Hello there\"},\"finish_reason\":\"stop\"}],"
        "\"usage\":{\"prompt_tokens\":1200,\"completion_tokens\":30,\"total_tokens\":1230,"
        "\"prompt_tokens_details\":{\"cached_tokens\":1024}}}");
    EXPECT_STR(r->completion, "Hello there");
    EXPECT_STR(r->finish_reason, "stop");
    CU_ASSERT_EQUAL(r->n_content, 1);
    CU_ASSERT_EQUAL(r->content[0].kind, LLM_PART_TEXT);
    CU_ASSERT_EQUAL(r->usage.input_tokens, 1200);
    CU_ASSERT_EQUAL(r->usage.output_tokens, 30);
    CU_ASSERT_EQUAL(r->usage.cache_read_tokens, 1024);
    CU_ASSERT_EQUAL(r->usage.cache_write_tokens, 0);
    CU_ASSERT_FALSE(r->is_error);
    llm_response_free(r);
}

static void test_parse_content_array(void) {
    llm_response *r = parse_ok("{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":["
                               "{\"type\":\"text\",\"text\":\"Hello, \"},"
                               "{\"type\":\"text\",\"text\":\"world\"}]},"
                               "\"finish_reason\":\"length\"}]}");
    EXPECT_STR(r->completion, "Hello, world");
    EXPECT_STR(r->finish_reason, "length");
    CU_ASSERT_EQUAL(r->n_content, 2);
    CU_ASSERT_EQUAL(r->usage.input_tokens, 0);
    llm_response_free(r);
}

static void test_parse_tool_calls(void) {
    llm_response *r = parse_ok(
        "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
        "{\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"arguments\":\"{\\\"city\\\": \\\"Paris\\\"}\"}},"
        "{\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":\"now\","
        "\"arguments\":\"\"}}]},\"finish_reason\":\"tool_calls\"}]}");
    CU_ASSERT_PTR_NULL(r->completion);
    EXPECT_STR(r->finish_reason, "tool_calls");
    CU_ASSERT_EQUAL_FATAL(r->n_content, 2);
    CU_ASSERT_EQUAL(r->content[0].kind, LLM_PART_TOOL_CALL);
    EXPECT_STR(r->content[0].id, "call_a");
    EXPECT_STR(r->content[0].name, "get_weather");
    EXPECT_STR(r->content[0].arguments, "{\"city\": \"Paris\"}");
    EXPECT_STR(r->content[1].arguments, "{}");
    llm_response_free(r);
}

static void test_parse_reasoning_content(void) {
    llm_response *r = parse_ok(
        "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"reasoning_content\":\"Let me "
        "think.\",\"content\":\"42\"},\"finish_reason\":\"stop\"}],"
        "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7}}");
    EXPECT_STR(r->thinking, "Let me think.");
    EXPECT_STR(r->completion, "42");
    CU_ASSERT_EQUAL_FATAL(r->n_content, 2);
    CU_ASSERT_EQUAL(r->content[0].kind, LLM_PART_THINKING);
    CU_ASSERT_EQUAL(r->usage.output_tokens, 7);
    llm_response_free(r);
}

static void test_parse_refusal(void) {
    llm_response *r = parse_ok("{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":"
                               "null,\"refusal\":\"I can't help with that.\"},"
                               "\"finish_reason\":\"stop\"}]}");
    EXPECT_STR(r->completion, "I can't help with that.");
    llm_response_free(r);
}

static void test_parse_malformed(void) {
    static const char good[] = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":"
                               "\"Hello\"},\"finish_reason\":\"stop\"}]}";
    parse_fails("{not json", 9, "not valid JSON");
    parse_fails(good, sizeof good / 2, "not valid JSON"); /* truncated body */
    parse_fails("", 0, "empty");
    parse_fails("[1,2]", 5, "not a JSON object");
    parse_fails("{\"id\":\"x\"}", 10, "no choices");
    parse_fails("{\"choices\":[]}", 14, "no choices");
    parse_fails("{\"choices\":[{\"finish_reason\":\"stop\"}]}", 38, "no choices");
    static const char err_in_200[] = "{\"error\":{\"message\":\"upstream failed\"}}";
    parse_fails(err_in_200, strlen(err_in_200), "upstream failed");
    static const char bad_args[] =
        "{\"choices\":[{\"message\":{\"tool_calls\":[{\"id\":\"c\",\"function\":{\"name\":\"f\","
        "\"arguments\":\"{\\\"a\\\":\"}}]},\"finish_reason\":\"tool_calls\"}]}";
    parse_fails(bad_args, strlen(bad_args), "arguments is not a JSON object");
    static const char no_name[] = "{\"choices\":[{\"message\":{\"tool_calls\":[{\"id\":\"c\","
                                  "\"function\":{\"arguments\":\"{}\"}}]}}]}";
    parse_fails(no_name, strlen(no_name), "lacks an id or a name");
    static const char bad_content[] = "{\"choices\":[{\"message\":{\"content\":42}}]}";
    parse_fails(bad_content, strlen(bad_content), "content");
}

static void test_parse_error_bodies(void) {
    char msg[512];
    static const char json_err[] =
        "{\"error\":{\"message\":\"Rate limit reached for gpt-4.1-mini\",\"type\":\"requests\","
        "\"param\":null,\"code\":\"rate_limit_exceeded\"}}";
    provider_openai.parse_error(429, json_err, strlen(json_err), msg, sizeof msg);
    CU_ASSERT_STRING_EQUAL(msg, "Rate limit reached for gpt-4.1-mini");

    static const char html[] = "<html>\r\n<body>502 Bad Gateway</body>\r\n</html>\n";
    provider_openai.parse_error(502, html, strlen(html), msg, sizeof msg);
    CU_ASSERT_STRING_EQUAL(msg, "<html>  <body>502 Bad Gateway</body>  </html>");

    provider_openai.parse_error(503, "", 0, msg, sizeof msg);
    CU_ASSERT_STRING_EQUAL(msg, "empty response body");

    char big[2000];
    memset(big, 'x', sizeof big);
    provider_openai.parse_error(500, big, sizeof big, msg, sizeof msg);
    CU_ASSERT_EQUAL(strlen(msg), 500);

    char tiny[8];
    provider_openai.parse_error(429, json_err, strlen(json_err), tiny, sizeof tiny);
    CU_ASSERT_STRING_EQUAL(tiny, "Rate li");

    static const char other_json[] = "{\"detail\":\"Not Found\"}";
    provider_openai.parse_error(404, other_json, strlen(other_json), msg, sizeof msg);
    CU_ASSERT_STRING_EQUAL(msg, other_json);
}

static void test_provider_table(void) {
    CU_ASSERT_PTR_EQUAL(provider_get(PROVIDER_OPENAI), &provider_openai);
    CU_ASSERT_PTR_EQUAL(provider_get(PROVIDER_ANTHROPIC), &provider_anthropic);
    CU_ASSERT_PTR_NULL(provider_get((provider_kind)99));
    CU_ASSERT_STRING_EQUAL(provider_openai.name, "openai");
    provider_request_cleanup(NULL);
}

/* ---- main --------------------------------------------------------------------------- */

int main(void) {
    static const test_case tests[] = {
        {"plain_prompt", test_plain_prompt},
        {"no_key_no_auth_header", test_no_key_no_auth_header},
        {"key_with_newline_rejected", test_key_with_newline_rejected},
        {"system_and_multi_turn", test_system_and_multi_turn},
        {"image_by_url_and_bytes", test_image_by_url_and_bytes},
        {"tools_call_and_result", test_tools_call_and_result},
        {"tool_results_in_user_message", test_tool_results_in_user_message},
        {"output_schema", test_output_schema},
        {"json_mode", test_json_mode},
        {"reasoning_effort", test_reasoning_effort},
        {"stop_and_max_tokens", test_stop_and_max_tokens},
        {"invalid_utf8_rejected", test_invalid_utf8_rejected},
        {"parse_text_and_usage", test_parse_text_and_usage},
        {"parse_content_array", test_parse_content_array},
        {"parse_tool_calls", test_parse_tool_calls},
        {"parse_reasoning_content", test_parse_reasoning_content},
        {"parse_refusal", test_parse_refusal},
        {"parse_malformed", test_parse_malformed},
        {"parse_error_bodies", test_parse_error_bodies},
        {"provider_table", test_provider_table},
        {NULL, NULL},
    };
    static const adapter_under_test adapter = {&provider_openai, "Authorization: Bearer " KEY,
                                               "gpt-4.1-mini"};
    return adapter_test_main("openai", &adapter, tests);
}
