/*
 * test_anthropic.c - the Anthropic messages adapter: request bodies, headers, response and
 * error parsing. Bodies are checked field by field after parsing them back with jansson,
 * never by comparing whole strings.
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
    json_t *body = build(model("claude-sonnet-4.5"), r, &out);
    CU_ASSERT_STRING_EQUAL(out.url, "https://api.anthropic.com/v1/messages");
    CU_ASSERT_TRUE(has_header(&out, "x-api-key: " KEY));
    CU_ASSERT_TRUE(has_header(&out, "anthropic-version: 2023-06-01"));
    CU_ASSERT_TRUE(has_header(&out, "content-type: application/json"));
    EXPECT_STR(jstr(body, "model"), "claude-sonnet-4-5-20250929");
    CU_ASSERT_EQUAL(json_integer_value(jget(body, "max_tokens")), 512);
    CU_ASSERT_PTR_NULL(jget(body, "system"));
    CU_ASSERT_EQUAL(json_array_size(jget(body, "messages")), 1);
    EXPECT_STR(jstr(body, "messages.0.role"), "user");
    EXPECT_STR(jstr(body, "messages.0.content.0.type"), "text");
    EXPECT_STR(jstr(body, "messages.0.content.0.text"), "Say hi");
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(jget(body, "temperature")), 1.0, 1e-12);
    /* claude-sonnet-4-5 takes temperature or top_p, not both. */
    CU_ASSERT_PTR_NULL(jget(body, "top_p"));
    CU_ASSERT_PTR_NULL(jget(body, "thinking"));
    CU_ASSERT_PTR_NULL(jget(body, "tools"));
    CU_ASSERT_PTR_NULL(jget(body, "stop_sequences"));
    json_decref(body);
    provider_request_cleanup(&out);
    llm_request_free(r);
}

static void test_no_key_no_auth_header(void) {
    llm_request *r = prompt("hi");
    provider_request out;
    char err[128];
    CU_ASSERT_EQUAL(build_rc(model("claude-haiku-4.5"), NULL, r, &out, err, sizeof err), SLUICE_OK);
    CU_ASSERT_EQUAL(out.n_headers, 2);
    CU_ASSERT_TRUE(has_header(&out, "anthropic-version: 2023-06-01"));
    provider_request_cleanup(&out);
    llm_request_free(r);
}

static void test_top_p_rules(void) {
    /* Older models take both. */
    llm_request *r = prompt("hi");
    r->sampling.set |= LLM_SET_TOP_P | LLM_SET_TEMPERATURE;
    r->sampling.top_p = 0.9;
    r->sampling.temperature = 0.3;
    json_t *body = build_body(model("claude-3.5-haiku"), r);
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(jget(body, "temperature")), 0.3, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(jget(body, "top_p")), 0.9, 1e-12);
    json_decref(body);
    /* 4-1 with both set: temperature wins. */
    body = build_body(model("claude-opus-4.1"), r);
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(jget(body, "temperature")), 0.3, 1e-12);
    CU_ASSERT_PTR_NULL(jget(body, "top_p"));
    json_decref(body);
    /* 4-5 with only top_p set: top_p alone. */
    r->sampling.set &= ~(unsigned)LLM_SET_TEMPERATURE;
    body = build_body(model("claude-haiku-4.5"), r);
    CU_ASSERT_PTR_NULL(jget(body, "temperature"));
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(jget(body, "top_p")), 0.9, 1e-12);
    json_decref(body);
    llm_request_free(r);
}

static void test_system_and_multi_turn(void) {
    llm_request *r = llm_request_new();
    add_text(r, LLM_ROLE_SYSTEM, "Be terse.");
    add_text(r, LLM_ROLE_USER, "2+2?");
    add_text(r, LLM_ROLE_ASSISTANT, "4");
    add_text(r, LLM_ROLE_SYSTEM, "Answer in French.");
    add_text(r, LLM_ROLE_USER, "And 3+3?");
    json_t *body = build_body(model("claude-3.5-haiku"), r);
    /* Every system message is kept (lm-deluge drops all but the first). */
    EXPECT_STR(jstr(body, "system"), "Be terse.\n\nAnswer in French.");
    const char *roles[] = {"user", "assistant", "user"};
    const char *texts[] = {"2+2?", "4", "And 3+3?"};
    CU_ASSERT_EQUAL(json_array_size(jget(body, "messages")), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *m = json_array_get(jget(body, "messages"), i);
        EXPECT_STR(jstr(m, "role"), roles[i]);
        EXPECT_STR(jstr(m, "content.0.text"), texts[i]);
    }
    json_decref(body);
    llm_request_free(r);
}

static void test_image_by_url_and_bytes(void) {
    llm_request *r = llm_request_new();
    llm_message *m = add_msg(r, LLM_ROLE_USER);
    add_part(m, LLM_PART_TEXT)->text = xstrdup("What is this?");
    add_image_url(m, "https://example.com/cat.png");
    static const uint8_t bytes[] = {0, 1, 2, 3};
    add_image_bytes(m, bytes, sizeof bytes, "image/png");
    add_image_url(m, "data:image/jpeg;base64,/9j/4AAQ");
    json_t *body = build_body(model("claude-sonnet-4.5"), r);
    json_t *c = jget(body, "messages.0.content");
    CU_ASSERT_EQUAL(json_array_size(c), 4);
    EXPECT_STR(jstr(c, "1.type"), "image");
    EXPECT_STR(jstr(c, "1.source.type"), "url");
    EXPECT_STR(jstr(c, "1.source.url"), "https://example.com/cat.png");
    EXPECT_STR(jstr(c, "2.source.type"), "base64");
    EXPECT_STR(jstr(c, "2.source.media_type"), "image/png");
    EXPECT_STR(jstr(c, "2.source.data"), "AAECAw==");
    EXPECT_STR(jstr(c, "3.source.type"), "base64");
    EXPECT_STR(jstr(c, "3.source.media_type"), "image/jpeg");
    EXPECT_STR(jstr(c, "3.source.data"), "/9j/4AAQ");
    json_decref(body);

    model_info no_images = *model("claude-sonnet-4.5");
    no_images.images = false;
    build_fails(&no_images, r, "messages[0].parts[1]");
    llm_request_free(r);
}

static void test_tools_call_and_result(void) {
    llm_request *r = llm_request_new();
    add_weather_tool(r);
    add_text(r, LLM_ROLE_USER, "Weather in Paris?");
    llm_message *a = add_msg(r, LLM_ROLE_ASSISTANT);
    add_thinking(a, "I should call the tool.", "sig-abc");
    add_thinking(a, "unsigned-thought", NULL);
    add_thinking(a, NULL, "opaque-redacted");
    add_tool_call(a, "toolu_1", "get_weather", "{\"city\":\"Paris\"}");
    llm_message *t = add_msg(r, LLM_ROLE_TOOL);
    add_tool_result(t, "toolu_1", "18C, sunny");
    add_tool_result(t, "toolu_2", "timeout")->is_error = true;
    provider_request out;
    json_t *body = build(model("claude-sonnet-4.5"), r, &out);
    EXPECT_STR(jstr(body, "tools.0.name"), "get_weather");
    EXPECT_STR(jstr(body, "tools.0.description"), "Weather for a city");
    EXPECT_STR(jstr(body, "tools.0.input_schema.properties.city.type"), "string");
    CU_ASSERT_PTR_NULL(jget(body, "tool_choice"));
    json_t *ac = jget(body, "messages.1.content");
    EXPECT_STR(jstr(body, "messages.1.role"), "assistant");
    CU_ASSERT_EQUAL(json_array_size(ac), 3); /* signed thinking, redacted, tool_use */
    EXPECT_STR(jstr(ac, "0.type"), "thinking");
    EXPECT_STR(jstr(ac, "0.thinking"), "I should call the tool.");
    EXPECT_STR(jstr(ac, "0.signature"), "sig-abc");
    EXPECT_STR(jstr(ac, "1.type"), "redacted_thinking");
    EXPECT_STR(jstr(ac, "1.data"), "opaque-redacted");
    EXPECT_STR(jstr(ac, "2.type"), "tool_use");
    EXPECT_STR(jstr(ac, "2.id"), "toolu_1");
    EXPECT_STR(jstr(ac, "2.input.city"), "Paris");
    CU_ASSERT_PTR_NULL(strstr(out.body, "unsigned-thought"));
    EXPECT_STR(jstr(body, "messages.2.role"), "user");
    EXPECT_STR(jstr(body, "messages.2.content.0.type"), "tool_result");
    EXPECT_STR(jstr(body, "messages.2.content.0.tool_use_id"), "toolu_1");
    EXPECT_STR(jstr(body, "messages.2.content.0.content"), "18C, sunny");
    CU_ASSERT_PTR_NULL(jget(body, "messages.2.content.0.is_error"));
    CU_ASSERT_TRUE(json_is_true(jget(body, "messages.2.content.1.is_error")));
    json_decref(body);
    provider_request_cleanup(&out);
    llm_request_free(r);
}

static void test_unsigned_thinking_turn_dropped(void) {
    llm_request *r = llm_request_new();
    add_text(r, LLM_ROLE_USER, "go");
    add_thinking(add_msg(r, LLM_ROLE_ASSISTANT), "unsigned", NULL);
    add_text(r, LLM_ROLE_USER, "again");
    provider_request out;
    json_t *body = build(model("claude-haiku-4.5"), r, &out);
    CU_ASSERT_EQUAL(json_array_size(jget(body, "messages")), 2);
    CU_ASSERT_PTR_NULL(strstr(out.body, "unsigned"));
    json_decref(body);
    provider_request_cleanup(&out);
    llm_request_free(r);
}

static void test_output_schema_forced_tool(void) {
    llm_request *r = prompt("Who wrote the first program?");
    add_weather_tool(r);
    r->schema_name = xstrdup("person");
    r->output_schema = xstrdup("{\"properties\":{\"name\":{\"type\":\"string\"}}}");
    r->sampling.set |= LLM_SET_EFFORT;
    r->sampling.effort = LLM_EFFORT_HIGH;
    json_t *body = build_body(model("claude-sonnet-4.5"), r);
    CU_ASSERT_EQUAL(json_array_size(jget(body, "tools")), 2);
    EXPECT_STR(jstr(body, "tools.1.name"), "structured_output_person");
    EXPECT_STR(jstr(body, "tools.1.input_schema.type"), "object");
    EXPECT_STR(jstr(body, "tools.1.input_schema.properties.name.type"), "string");
    EXPECT_STR(jstr(body, "tool_choice.type"), "tool");
    EXPECT_STR(jstr(body, "tool_choice.name"), "structured_output_person");
    /* Anthropic refuses thinking with a forced tool: the schema turns it off. */
    CU_ASSERT_PTR_NULL(jget(body, "thinking"));
    CU_ASSERT_EQUAL(json_integer_value(jget(body, "max_tokens")), 512);
    json_decref(body);

    /* A non-object schema cannot be a tool input. */
    free(r->output_schema);
    r->output_schema = xstrdup("{\"type\":\"array\"}");
    build_fails(model("claude-sonnet-4.5"), r, "output_schema");
    /* The reserved prefix is refused for caller tools. */
    free(r->output_schema);
    r->output_schema = NULL;
    free(r->tools[0].name);
    r->tools[0].name = xstrdup("structured_output_x");
    build_fails(model("claude-sonnet-4.5"), r, "tools[0]");
    llm_request_free(r);
}

static void test_json_mode_ignored(void) {
    llm_request *r = prompt("Give JSON");
    r->sampling.set |= LLM_SET_JSON_MODE;
    r->sampling.json_mode = true;
    json_t *body = build_body(model("claude-haiku-4.5"), r);
    CU_ASSERT_PTR_NULL(jget(body, "tools"));
    CU_ASSERT_PTR_NULL(jget(body, "tool_choice"));
    CU_ASSERT_PTR_NULL(jget(body, "response_format"));
    CU_ASSERT_EQUAL(json_object_size(body), 4); /* model, max_tokens, messages, temperature */
    json_decref(body);
    llm_request_free(r);
}

/* Builds `model_name` with the given effort/budget; returns the body (caller decrefs). */
static json_t *thinking_body(const char *model_name, llm_effort effort, uint32_t budget) {
    llm_request *r = prompt("think");
    r->sampling.set |= LLM_SET_TEMPERATURE | LLM_SET_TOP_P;
    r->sampling.temperature = 0.2;
    r->sampling.top_p = 0.5;
    if (effort) {
        r->sampling.set |= LLM_SET_EFFORT;
        r->sampling.effort = effort;
    }
    if (budget) {
        r->sampling.set |= LLM_SET_THINKING_BUDGET;
        r->sampling.thinking_budget = budget;
    }
    json_t *body = build_body(model(model_name), r);
    llm_request_free(r);
    return body;
}

static void test_thinking_budget(void) {
    json_t *body = thinking_body("claude-sonnet-4.5", LLM_EFFORT_LOW, 2000);
    EXPECT_STR(jstr(body, "thinking.type"), "enabled");
    CU_ASSERT_EQUAL(json_integer_value(jget(body, "thinking.budget_tokens")), 2000);
    CU_ASSERT_EQUAL(json_integer_value(jget(body, "max_tokens")), 2512);
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(jget(body, "temperature")), 1.0, 1e-12);
    CU_ASSERT_PTR_NULL(jget(body, "top_p"));
    json_decref(body);

    body = thinking_body("claude-haiku-4.5", LLM_EFFORT_MEDIUM, 0);
    CU_ASSERT_EQUAL(json_integer_value(jget(body, "thinking.budget_tokens")), 4096);
    CU_ASSERT_EQUAL(json_integer_value(jget(body, "max_tokens")), 4096 + 512);
    json_decref(body);

    body = thinking_body("claude-haiku-4.5", LLM_EFFORT_MINIMAL, 0);
    CU_ASSERT_EQUAL(json_integer_value(jget(body, "thinking.budget_tokens")), 1024);
    json_decref(body);

    body = thinking_body("claude-haiku-4.5", LLM_EFFORT_NONE, 0);
    CU_ASSERT_PTR_NULL(jget(body, "thinking"));
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(jget(body, "temperature")), 0.2, 1e-12);
    json_decref(body);

    body = thinking_body("claude-sonnet-4.5", LLM_EFFORT_UNSET, 300); /* raised to the minimum */
    CU_ASSERT_EQUAL(json_integer_value(jget(body, "thinking.budget_tokens")), 1024);
    json_decref(body);

    /* xhigh on opus 4.1 (32000 output tokens at most): the budget is cut to fit. */
    body = thinking_body("claude-opus-4.1", LLM_EFFORT_XHIGH, 0);
    CU_ASSERT_EQUAL(json_integer_value(jget(body, "thinking.budget_tokens")), 32000 - 512);
    CU_ASSERT_EQUAL(json_integer_value(jget(body, "max_tokens")), 32000);
    json_decref(body);

    /* A non-reasoning model never thinks and keeps its sampling parameters. */
    body = thinking_body("claude-3.5-haiku", LLM_EFFORT_HIGH, 5000);
    CU_ASSERT_PTR_NULL(jget(body, "thinking"));
    CU_ASSERT_EQUAL(json_integer_value(jget(body, "max_tokens")), 512);
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(jget(body, "temperature")), 0.2, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(jget(body, "top_p")), 0.5, 1e-12);
    json_decref(body);
}

static void test_stop_sequences(void) {
    llm_request *r = prompt("count");
    r->sampling.set |= LLM_SET_STOP | LLM_SET_MAX_NEW_TOKENS;
    r->sampling.stop[0] = xstrdup("\n\nHuman:");
    r->sampling.stop[1] = xstrdup("END");
    r->sampling.n_stop = 2;
    r->sampling.max_new_tokens = 64;
    json_t *body = build_body(model("claude-3.5-haiku"), r);
    CU_ASSERT_EQUAL(json_array_size(jget(body, "stop_sequences")), 2);
    EXPECT_STR(jstr(body, "stop_sequences.0"), "\n\nHuman:");
    EXPECT_STR(jstr(body, "stop_sequences.1"), "END");
    CU_ASSERT_EQUAL(json_integer_value(jget(body, "max_tokens")), 64);
    json_decref(body);
    llm_request_free(r);
}

static void test_custom_base_url(void) {
    model_info m = *model("claude-haiku-4.5");
    m.base_url = "http://127.0.0.1:8080/v1";
    llm_request *r = prompt("hi");
    provider_request out;
    json_t *body = build(&m, r, &out);
    CU_ASSERT_STRING_EQUAL(out.url, "http://127.0.0.1:8080/v1/messages");
    json_decref(body);
    provider_request_cleanup(&out);
    llm_request_free(r);
}

/* ---- responses ---------------------------------------------------------------------- */

static void test_parse_text_and_usage(void) {
    llm_response *r = parse_ok(
        "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-"
        "4-5-20250929\",\"content\":[{\"type\":\"text\",\"text\":\"Hello \"},{\"type\":\"text\","
        "\"text\":\"there\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{"
        "\"input_tokens\":20,\"output_tokens\":12,\"cache_read_input_tokens\":4000,"
        "\"cache_creation_input_tokens\":150}}");
    EXPECT_STR(r->completion, "Hello there");
    EXPECT_STR(r->finish_reason, "end_turn");
    CU_ASSERT_EQUAL(r->n_content, 2);
    CU_ASSERT_EQUAL(r->usage.input_tokens, 20);
    CU_ASSERT_EQUAL(r->usage.output_tokens, 12);
    CU_ASSERT_EQUAL(r->usage.cache_read_tokens, 4000);
    CU_ASSERT_EQUAL(r->usage.cache_write_tokens, 150);
    llm_response_free(r);
}

static void test_parse_tool_use(void) {
    llm_response *r = parse_ok(
        "{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"Checking.\"},"
        "{\"type\":\"tool_use\",\"id\":\"toolu_9\",\"name\":\"get_weather\",\"input\":{\"city\":"
        "\"Paris\",\"days\":2}}],\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":5,"
        "\"output_tokens\":9,\"cache_read_input_tokens\":null}}");
    EXPECT_STR(r->completion, "Checking.");
    EXPECT_STR(r->finish_reason, "tool_use");
    CU_ASSERT_EQUAL_FATAL(r->n_content, 2);
    CU_ASSERT_EQUAL(r->content[1].kind, LLM_PART_TOOL_CALL);
    EXPECT_STR(r->content[1].id, "toolu_9");
    EXPECT_STR(r->content[1].name, "get_weather");
    json_t *args = json_loads(r->content[1].arguments, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(args);
    EXPECT_STR(jstr(args, "city"), "Paris");
    CU_ASSERT_EQUAL(json_integer_value(jget(args, "days")), 2);
    json_decref(args);
    CU_ASSERT_EQUAL(r->usage.cache_read_tokens, 0);
    llm_response_free(r);
}

static void test_parse_thinking(void) {
    llm_response *r = parse_ok(
        "{\"type\":\"message\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"Step 1\","
        "\"signature\":\"sig1\"},{\"type\":\"redacted_thinking\",\"data\":\"opaque\"},"
        "{\"type\":\"thinking\",\"thinking\":\"Step 2\",\"signature\":\"sig2\"},"
        "{\"type\":\"text\",\"text\":\"42\"}],\"stop_reason\":\"end_turn\","
        "\"usage\":{\"input_tokens\":1,\"output_tokens\":2}}");
    EXPECT_STR(r->thinking, "Step 2");
    EXPECT_STR(r->completion, "42");
    CU_ASSERT_EQUAL_FATAL(r->n_content, 4);
    CU_ASSERT_EQUAL(r->content[0].kind, LLM_PART_THINKING);
    EXPECT_STR(r->content[0].signature, "sig1");
    CU_ASSERT_EQUAL(r->content[1].kind, LLM_PART_THINKING);
    CU_ASSERT_PTR_NULL(r->content[1].text);
    EXPECT_STR(r->content[1].signature, "opaque");
    llm_response_free(r);
}

static void test_parse_structured_output(void) {
    llm_response *r = parse_ok(
        "{\"type\":\"message\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_s\",\"name\":"
        "\"structured_output_person\",\"input\":{\"name\":\"Ada Lovelace\",\"born\":1815,"
        "\"score\":0.7}}],\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":30,"
        "\"output_tokens\":15}}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->completion);
    json_t *j = json_loads(r->completion, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    EXPECT_STR(jstr(j, "name"), "Ada Lovelace");
    CU_ASSERT_EQUAL(json_integer_value(jget(j, "born")), 1815);
    json_decref(j);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->completion, "0.7}")); /* no 0.69999999999999996 */
    EXPECT_STR(r->finish_reason, "end_turn");
    CU_ASSERT_EQUAL(r->n_content, 1); /* the answer as text, not a tool call */
    for (size_t i = 0; i < r->n_content; i++)
        CU_ASSERT_NOT_EQUAL(r->content[i].kind, LLM_PART_TOOL_CALL);
    llm_response_free(r);
}

static void test_parse_malformed(void) {
    static const char good[] = "{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":"
                               "\"Hello\"}],\"stop_reason\":\"end_turn\"}";
    parse_fails("{not json", 9, "not valid JSON");
    parse_fails(good, sizeof good - 8, "not valid JSON"); /* truncated body */
    parse_fails("", 0, "empty");
    parse_fails("{\"type\":\"message\"}", 18, "no content array");
    static const char err200[] = "{\"type\":\"error\",\"error\":{\"type\":\"api_error\","
                                 "\"message\":\"Internal server error\"}}";
    parse_fails(err200, strlen(err200), "Internal server error");
    static const char no_input[] =
        "{\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\"}]}";
    parse_fails(no_input, strlen(no_input), "tool_use");
    static const char no_type[] = "{\"content\":[{\"text\":\"x\"}]}";
    parse_fails(no_type, strlen(no_type), "no type");
}

static void test_parse_error_bodies(void) {
    char msg[512];
    static const char overloaded[] =
        "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}";
    provider_anthropic.parse_error(529, overloaded, strlen(overloaded), msg, sizeof msg);
    CU_ASSERT_STRING_EQUAL(msg, "overloaded_error: Overloaded");

    static const char too_long[] = "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_"
                                   "error\",\"message\":\"prompt is too long: 210000 tokens > "
                                   "200000 maximum\"}}";
    provider_anthropic.parse_error(400, too_long, strlen(too_long), msg, sizeof msg);
    CU_ASSERT_STRING_EQUAL(msg, "invalid_request_error: prompt is too long: 210000 tokens > 200000 "
                                "maximum");

    static const char text[] = "upstream connect error or disconnect/reset before headers";
    provider_anthropic.parse_error(503, text, strlen(text), msg, sizeof msg);
    CU_ASSERT_STRING_EQUAL(msg, text);

    provider_anthropic.parse_error(500, NULL, 0, msg, sizeof msg);
    CU_ASSERT_STRING_EQUAL(msg, "empty response body");
}

/* ---- main --------------------------------------------------------------------------- */

int main(void) {
    static const test_case tests[] = {
        {"plain_prompt", test_plain_prompt},
        {"no_key_no_auth_header", test_no_key_no_auth_header},
        {"top_p_rules", test_top_p_rules},
        {"system_and_multi_turn", test_system_and_multi_turn},
        {"image_by_url_and_bytes", test_image_by_url_and_bytes},
        {"tools_call_and_result", test_tools_call_and_result},
        {"unsigned_thinking_turn_dropped", test_unsigned_thinking_turn_dropped},
        {"output_schema_forced_tool", test_output_schema_forced_tool},
        {"json_mode_ignored", test_json_mode_ignored},
        {"thinking_budget", test_thinking_budget},
        {"stop_sequences", test_stop_sequences},
        {"custom_base_url", test_custom_base_url},
        {"parse_text_and_usage", test_parse_text_and_usage},
        {"parse_tool_use", test_parse_tool_use},
        {"parse_thinking", test_parse_thinking},
        {"parse_structured_output", test_parse_structured_output},
        {"parse_malformed", test_parse_malformed},
        {"parse_error_bodies", test_parse_error_bodies},
        {NULL, NULL},
    };
    static const adapter_under_test adapter = {&provider_anthropic, "x-api-key: " KEY,
                                               "claude-sonnet-4.5"};
    return adapter_test_main("anthropic", &adapter, tests);
}
