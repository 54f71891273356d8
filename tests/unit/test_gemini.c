/*
 * test_gemini.c - the Gemini generateContent adapter: request bodies, headers, schema
 * conversion, response and error parsing, the RetryInfo delay. Bodies are checked field by
 * field after parsing them back with jansson, never by comparing whole strings.
 */
#include "unit/adapter_test_util.h"

#include "server/common/alloc.h"
#include "sluice/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLASH_URL "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash"

/* ---- requests ----------------------------------------------------------------------- */

static void test_plain_prompt(void) {
    llm_request *r = prompt("Say hi");
    provider_request out;
    json_t *body = build(model("gemini-2.5-flash"), r, &out);
    CU_ASSERT_STRING_EQUAL(out.url, FLASH_URL ":generateContent");
    CU_ASSERT_TRUE(has_header(&out, "x-goog-api-key: " KEY));
    CU_ASSERT_TRUE(has_header(&out, "content-type: application/json"));
    CU_ASSERT_PTR_NULL(jget(body, "model")); /* the model is in the URL */
    CU_ASSERT_EQUAL(json_array_size(jget(body, "contents")), 1);
    EXPECT_STR(jstr(body, "contents.0.role"), "user");
    EXPECT_STR(jstr(body, "contents.0.parts.0.text"), "Say hi");
    json_t *gc = jget(body, "generationConfig");
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(jget(gc, "temperature")), 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(jget(gc, "topP")), 1.0, 1e-12);
    CU_ASSERT_EQUAL(json_integer_value(jget(gc, "maxOutputTokens")), 512);
    /* No effort asked: Flash's thinking is turned off, so 512 tokens are all answer. */
    CU_ASSERT_EQUAL(json_integer_value(jget(gc, "thinkingConfig.thinkingBudget")), 0);
    CU_ASSERT_PTR_NULL(jget(gc, "thinkingConfig.includeThoughts"));
    CU_ASSERT_PTR_NULL(jget(gc, "stopSequences"));
    CU_ASSERT_PTR_NULL(jget(gc, "responseMimeType"));
    CU_ASSERT_PTR_NULL(jget(body, "systemInstruction"));
    CU_ASSERT_PTR_NULL(jget(body, "tools"));
    json_decref(body);
    provider_request_cleanup(&out);
    llm_request_free(r);
}

static void test_no_key_no_auth_header(void) {
    llm_request *r = prompt("hi");
    provider_request out;
    char err[128];
    CU_ASSERT_EQUAL(build_rc(model("gemini-2.5-pro"), NULL, r, &out, err, sizeof err), SLUICE_OK);
    CU_ASSERT_EQUAL(out.n_headers, 1);
    CU_ASSERT_TRUE(has_header(&out, "content-type: application/json"));
    provider_request_cleanup(&out);
    llm_request_free(r);
}

static void test_system_and_multi_turn(void) {
    llm_request *r = llm_request_new();
    add_text(r, LLM_ROLE_SYSTEM, "Be terse.");
    add_text(r, LLM_ROLE_USER, "2+2?");
    add_text(r, LLM_ROLE_ASSISTANT, "4");
    add_text(r, LLM_ROLE_SYSTEM, "Answer in French.");
    add_text(r, LLM_ROLE_USER, "And 3+3?");
    json_t *body = build_body(model("gemini-2.5-flash-lite"), r);
    EXPECT_STR(jstr(body, "systemInstruction.parts.0.text"), "Be terse.\n\nAnswer in French.");
    const char *roles[] = {"user", "model", "user"};
    const char *texts[] = {"2+2?", "4", "And 3+3?"};
    CU_ASSERT_EQUAL(json_array_size(jget(body, "contents")), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *c = json_array_get(jget(body, "contents"), i);
        EXPECT_STR(jstr(c, "role"), roles[i]);
        EXPECT_STR(jstr(c, "parts.0.text"), texts[i]);
    }
    json_decref(body);
    llm_request_free(r);
}

static void test_system_only_refused(void) {
    llm_request *r = llm_request_new();
    add_text(r, LLM_ROLE_SYSTEM, "Be terse.");
    build_fails(model("gemini-2.5-flash"), r, "at least one user or assistant message");
    llm_request_free(r);
}

static void test_images(void) {
    llm_request *r = llm_request_new();
    llm_message *m = add_msg(r, LLM_ROLE_USER);
    add_part(m, LLM_PART_TEXT)->text = xstrdup("What is this?");
    static const uint8_t bytes[] = {0, 1, 2, 3};
    add_image_bytes(m, bytes, sizeof bytes, "image/png");
    add_image_url(m, "data:image/jpeg;base64,/9j/4AAQ");
    add_image_url(m, "https://example.com/cat.PNG?size=large");
    add_image_url(m, "https://example.com/photo")->media_type = xstrdup("image/webp");
    json_t *body = build_body(model("gemini-2.5-flash"), r);
    json_t *p = jget(body, "contents.0.parts");
    CU_ASSERT_EQUAL(json_array_size(p), 5);
    EXPECT_STR(jstr(p, "1.inlineData.mimeType"), "image/png");
    EXPECT_STR(jstr(p, "1.inlineData.data"), "AAECAw==");
    EXPECT_STR(jstr(p, "2.inlineData.mimeType"), "image/jpeg");
    EXPECT_STR(jstr(p, "2.inlineData.data"), "/9j/4AAQ");
    EXPECT_STR(jstr(p, "3.fileData.mimeType"), "image/png");
    EXPECT_STR(jstr(p, "3.fileData.fileUri"), "https://example.com/cat.PNG?size=large");
    EXPECT_STR(jstr(p, "4.fileData.mimeType"), "image/webp");
    json_decref(body);

    model_info no_images = *model("gemini-2.5-flash");
    no_images.images = false;
    build_fails(&no_images, r, "messages[0].parts[1]");
    llm_request_free(r);

    /* Gemini needs a MIME type: a URL that does not tell it is refused up front. */
    r = llm_request_new();
    add_image_url(add_msg(r, LLM_ROLE_USER), "https://example.com/photo");
    build_fails(model("gemini-2.5-flash"), r, "media type");
    llm_request_free(r);
    r = llm_request_new();
    add_image_url(add_msg(r, LLM_ROLE_USER), "data:image/png,notbase64");
    build_fails(model("gemini-2.5-flash"), r, "base64");
    llm_request_free(r);
}

static void test_tools_call_and_result(void) {
    llm_request *r = llm_request_new();
    add_weather_tool(r);
    add_text(r, LLM_ROLE_USER, "Weather in Paris and Rome?");
    llm_message *a = add_msg(r, LLM_ROLE_ASSISTANT);
    add_thinking(a, "I should call the tool.", NULL); /* unsigned: dropped */
    add_thinking(a, NULL, "sig-abc");                 /* rides on the next part */
    add_tool_call(a, "toolu_1", "get_weather", "{\"city\":\"Paris\"}");
    add_tool_call(a, "gcall_1", "get_weather", "{\"city\":\"Rome\"}");
    llm_message *t = add_msg(r, LLM_ROLE_TOOL);
    add_tool_result(t, "toolu_1", "18C, sunny");
    add_tool_result(t, "gcall_1", "timeout")->is_error = true;
    provider_request out;
    json_t *body = build(model("gemini-2.5-flash"), r, &out);
    json_t *fd = jget(body, "tools.0.functionDeclarations.0");
    EXPECT_STR(jstr(fd, "name"), "get_weather");
    EXPECT_STR(jstr(fd, "description"), "Weather for a city");
    EXPECT_STR(jstr(fd, "parameters.type"), "OBJECT");
    EXPECT_STR(jstr(fd, "parameters.properties.city.type"), "STRING");
    json_t *mp = jget(body, "contents.1.parts");
    EXPECT_STR(jstr(body, "contents.1.role"), "model");
    CU_ASSERT_EQUAL(json_array_size(mp), 2);
    EXPECT_STR(jstr(mp, "0.functionCall.name"), "get_weather");
    EXPECT_STR(jstr(mp, "0.functionCall.args.city"), "Paris");
    EXPECT_STR(jstr(mp, "0.functionCall.id"), "toolu_1");
    EXPECT_STR(jstr(mp, "0.thoughtSignature"), "sig-abc");
    CU_ASSERT_PTR_NULL(jget(mp, "1.functionCall.id")); /* made up by sluice: not sent */
    CU_ASSERT_PTR_NULL(jget(mp, "1.thoughtSignature"));
    CU_ASSERT_PTR_NULL(strstr(out.body, "I should call the tool."));
    json_t *tp = jget(body, "contents.2.parts");
    EXPECT_STR(jstr(body, "contents.2.role"), "user");
    EXPECT_STR(jstr(tp, "0.functionResponse.name"), "get_weather");
    EXPECT_STR(jstr(tp, "0.functionResponse.id"), "toolu_1");
    EXPECT_STR(jstr(tp, "0.functionResponse.response.output"), "18C, sunny");
    EXPECT_STR(jstr(tp, "1.functionResponse.response.error"), "timeout");
    CU_ASSERT_PTR_NULL(jget(tp, "1.functionResponse.id"));
    json_decref(body);
    provider_request_cleanup(&out);

    /* A result for no earlier call cannot be named. */
    add_tool_result(t, "toolu_404", "?");
    build_fails(model("gemini-2.5-flash"), r, "messages[2].parts[2]");
    llm_request_free(r);
}

static void test_parameterless_tool(void) {
    llm_request *r = prompt("What time is it?");
    r->tools = XNEWV(llm_tool, 1);
    r->n_tools = 1;
    r->tools[0].name = xstrdup("now");
    json_t *body = build_body(model("gemini-2.5-flash"), r);
    EXPECT_STR(jstr(body, "tools.0.functionDeclarations.0.name"), "now");
    CU_ASSERT_PTR_NULL(jget(body, "tools.0.functionDeclarations.0.parameters"));
    CU_ASSERT_PTR_NULL(jget(body, "tools.0.functionDeclarations.0.description"));
    json_decref(body);
    llm_request_free(r);
}

static void test_output_schema_converted(void) {
    llm_request *r = prompt("Who wrote the first program?");
    r->schema_name = xstrdup("person");
    r->output_schema = xstrdup(
        "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"additionalProperties\":"
        "false,\"properties\":{\"born\":{\"format\":\"date-time\",\"type\":\"string\"},"
        "\"email\":{\"format\":\"email\",\"type\":\"string\"},\"kind\":{\"const\":\"human\"},"
        "\"name\":{\"type\":[\"string\",\"null\"]},\"tags\":{\"items\":{\"enum\":[\"a\",\"b\"],"
        "\"type\":\"string\"},\"maxItems\":3,\"type\":\"array\"},\"id\":{\"oneOf\":[{\"type\":"
        "\"integer\"},{\"type\":\"string\"}]}},\"required\":[\"name\"],\"type\":\"object\"}");
    json_t *body = build_body(model("gemini-2.5-flash"), r);
    EXPECT_STR(jstr(body, "generationConfig.responseMimeType"), "application/json");
    json_t *s = jget(body, "generationConfig.responseSchema");
    EXPECT_STR(jstr(s, "type"), "OBJECT");
    CU_ASSERT_PTR_NULL(jget(s, "additionalProperties"));
    CU_ASSERT_PTR_NULL(jget(s, "$schema"));
    EXPECT_STR(jstr(s, "required.0"), "name");
    EXPECT_STR(jstr(s, "properties.born.format"), "date-time");
    CU_ASSERT_PTR_NULL(jget(s, "properties.email.format")); /* Gemini knows no "email" */
    EXPECT_STR(jstr(s, "properties.kind.enum.0"), "human");
    EXPECT_STR(jstr(s, "properties.kind.type"), "STRING");
    EXPECT_STR(jstr(s, "properties.name.type"), "STRING");
    CU_ASSERT_TRUE(json_is_true(jget(s, "properties.name.nullable")));
    EXPECT_STR(jstr(s, "properties.tags.type"), "ARRAY");
    CU_ASSERT_EQUAL(json_integer_value(jget(s, "properties.tags.maxItems")), 3);
    EXPECT_STR(jstr(s, "properties.tags.items.enum.1"), "b");
    EXPECT_STR(jstr(s, "properties.id.anyOf.0.type"), "INTEGER");
    EXPECT_STR(jstr(s, "properties.id.anyOf.1.type"), "STRING");
    /* The schema does not turn thinking off as it must on Anthropic. */
    CU_ASSERT_PTR_NOT_NULL(jget(body, "generationConfig.thinkingConfig"));
    json_decref(body);

    static const struct {
        const char *schema, *err;
    } refused[] = {
        {"{\"properties\":{\"a\":{\"$ref\":\"#/$defs/A\"}},\"type\":\"object\"}", "$ref"},
        {"{\"allOf\":[{\"type\":\"object\"}]}", "allOf"},
        {"{\"items\":[{\"type\":\"string\"}],\"type\":\"array\"}", "tuple"},
        {"{\"type\":[\"string\",\"integer\"]}", "one type"},
        {"{\"const\":3}", "const"},
        {"[1,2]", "output_schema"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        free(r->output_schema);
        r->output_schema = xstrdup(refused[i].schema);
        build_fails(model("gemini-2.5-flash"), r, refused[i].err);
    }
    free(r->output_schema);
    r->output_schema =
        xstrdup("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}");
    model_info no_schema = *model("gemini-2.5-flash");
    no_schema.json_schema = false;
    build_fails(&no_schema, r, "does not support output schemas");
    llm_request_free(r);
}

static void test_deep_schema_refused(void) {
    static const char open[] = "{\"type\":\"array\",\"items\":";
    static const char leaf[] = "{\"type\":\"string\"}";
    enum { DEPTH = 40 };
    char *s = xmalloc(DEPTH * (sizeof open - 1) + sizeof leaf + DEPTH);
    size_t off = 0;
    for (size_t i = 0; i < DEPTH; i++, off += sizeof open - 1)
        memcpy(s + off, open, sizeof open - 1);
    memcpy(s + off, leaf, sizeof leaf - 1);
    off += sizeof leaf - 1;
    memset(s + off, '}', DEPTH);
    s[off + DEPTH] = '\0';
    llm_request *r = prompt("deep");
    r->output_schema = s;
    build_fails(model("gemini-2.5-flash"), r, "deeper");
    llm_request_free(r);
}

static void test_json_mode(void) {
    llm_request *r = prompt("Give JSON");
    r->sampling.set |= LLM_SET_JSON_MODE;
    r->sampling.json_mode = true;
    json_t *body = build_body(model("gemini-2.5-flash-lite"), r);
    EXPECT_STR(jstr(body, "generationConfig.responseMimeType"), "application/json");
    CU_ASSERT_PTR_NULL(jget(body, "generationConfig.responseSchema"));
    json_decref(body);
    llm_request_free(r);
}

/* Builds `m` with the given effort/budget; returns generationConfig (caller decrefs). */
static json_t *thinking_config(const model_info *m, llm_effort effort, uint32_t budget) {
    llm_request *r = prompt("think");
    if (effort) {
        r->sampling.set |= LLM_SET_EFFORT;
        r->sampling.effort = effort;
    }
    if (budget) {
        r->sampling.set |= LLM_SET_THINKING_BUDGET;
        r->sampling.thinking_budget = budget;
    }
    json_t *body = build_body(m, r);
    json_t *gc = json_incref(jget(body, "generationConfig"));
    json_decref(body);
    llm_request_free(r);
    return gc;
}

static void expect_thinking(const model_info *m, llm_effort effort, uint32_t budget,
                            json_int_t want_budget, json_int_t want_max) {
    json_t *gc = thinking_config(m, effort, budget);
    CU_ASSERT_EQUAL(json_integer_value(jget(gc, "thinkingConfig.thinkingBudget")), want_budget);
    CU_ASSERT_EQUAL(json_is_true(jget(gc, "thinkingConfig.includeThoughts")), want_budget > 0);
    CU_ASSERT_EQUAL(json_integer_value(jget(gc, "maxOutputTokens")), want_max);
    if (json_integer_value(jget(gc, "thinkingConfig.thinkingBudget")) != want_budget)
        fprintf(stderr, "\n  %s effort %d budget %u: got %lld\n", m->name, (int)effort, budget,
                (long long)json_integer_value(jget(gc, "thinkingConfig.thinkingBudget")));
    json_decref(gc);
}

static void test_thinking_budget(void) {
    const model_info *flash = model("gemini-2.5-flash"), *lite = model("gemini-2.5-flash-lite");
    const model_info *pro = model("gemini-2.5-pro");
    expect_thinking(flash, LLM_EFFORT_MEDIUM, 0, 4096, 4096 + 512);
    expect_thinking(flash, LLM_EFFORT_NONE, 0, 0, 512);
    expect_thinking(flash, LLM_EFFORT_XHIGH, 0, 24576, 24576 + 512); /* Flash's maximum */
    expect_thinking(flash, LLM_EFFORT_LOW, 2000, 2000, 2512);        /* the budget wins */
    expect_thinking(lite, LLM_EFFORT_UNSET, 0, 0, 512);
    expect_thinking(lite, LLM_EFFORT_UNSET, 100, 512, 1024); /* raised to Lite's minimum */
    expect_thinking(lite, LLM_EFFORT_MINIMAL, 0, 512, 1024);
    expect_thinking(pro, LLM_EFFORT_UNSET, 0, 128, 640); /* Pro cannot stop thinking */
    expect_thinking(pro, LLM_EFFORT_NONE, 0, 128, 640);
    expect_thinking(pro, LLM_EFFORT_XHIGH, 0, 32768, 32768 + 512);

    /* The output limit caps maxOutputTokens. */
    llm_request *r = prompt("long");
    r->sampling.set |= LLM_SET_MAX_NEW_TOKENS | LLM_SET_EFFORT;
    r->sampling.max_new_tokens = 60000;
    r->sampling.effort = LLM_EFFORT_HIGH;
    json_t *body = build_body(pro, r);
    CU_ASSERT_EQUAL(json_integer_value(jget(body, "generationConfig.maxOutputTokens")), 65536);
    json_decref(body);
    llm_request_free(r);

    /* A family this adapter does not know gets only what was asked for. */
    model_info next = *pro;
    next.upstream_model = "gemini-3-pro-preview";
    json_t *gc = thinking_config(&next, LLM_EFFORT_UNSET, 0);
    CU_ASSERT_PTR_NULL(jget(gc, "thinkingConfig"));
    CU_ASSERT_EQUAL(json_integer_value(jget(gc, "maxOutputTokens")), 512);
    json_decref(gc);
    expect_thinking(&next, LLM_EFFORT_HIGH, 0, 16384, 16384 + 512);

    /* A model without reasoning never gets a thinkingConfig. */
    model_info plain = *flash;
    plain.reasoning = false;
    gc = thinking_config(&plain, LLM_EFFORT_HIGH, 5000);
    CU_ASSERT_PTR_NULL(jget(gc, "thinkingConfig"));
    CU_ASSERT_EQUAL(json_integer_value(jget(gc, "maxOutputTokens")), 512);
    json_decref(gc);
}

static void test_stop_sequences(void) {
    llm_request *r = prompt("count");
    r->sampling.set |= LLM_SET_STOP | LLM_SET_TEMPERATURE | LLM_SET_TOP_P;
    r->sampling.stop[0] = xstrdup("END");
    r->sampling.stop[1] = xstrdup("\n\n");
    r->sampling.n_stop = 2;
    r->sampling.temperature = 0.2;
    r->sampling.top_p = 0.7;
    json_t *body = build_body(model("gemini-2.5-flash"), r);
    json_t *gc = jget(body, "generationConfig");
    CU_ASSERT_EQUAL(json_array_size(jget(gc, "stopSequences")), 2);
    EXPECT_STR(jstr(gc, "stopSequences.0"), "END");
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(jget(gc, "temperature")), 0.2, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(jget(gc, "topP")), 0.7, 1e-12);
    json_decref(body);
    llm_request_free(r);
}

static void test_urls_and_upstream_ids(void) {
    llm_request *r = prompt("hi");
    model_info m = *model("gemini-2.5-flash");
    m.base_url = "http://127.0.0.1:8080/v1beta";
    m.upstream_model = "models/up-g";
    provider_request out;
    json_t *body = build(&m, r, &out);
    CU_ASSERT_STRING_EQUAL(out.url, "http://127.0.0.1:8080/v1beta/models/up-g:generateContent");
    json_decref(body);
    provider_request_cleanup(&out);
    const char *bad[] = {"gemini 2.5", "a/b", "x?key=1", "models/", "tuned#1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        m.upstream_model = (char *)bad[i];
        build_fails(&m, r, "is not a Gemini model id");
    }
    llm_request_free(r);
}

/* ---- responses ---------------------------------------------------------------------- */

static void test_parse_text_and_usage(void) {
    llm_response *r = parse_ok(
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hello \"},{\"text\":\"there\"}],"
        "\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{"
        "\"promptTokenCount\":20,\"candidatesTokenCount\":12,\"totalTokenCount\":64,"
        "\"cachedContentTokenCount\":8,\"thoughtsTokenCount\":30,\"toolUsePromptTokenCount\":2},"
        "\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"abc\"}");
    EXPECT_STR(r->completion, "Hello there");
    EXPECT_STR(r->finish_reason, "STOP");
    CU_ASSERT_EQUAL(r->n_content, 2);
    CU_ASSERT_EQUAL(r->usage.input_tokens, 22);  /* prompt (cached included) + tool use */
    CU_ASSERT_EQUAL(r->usage.output_tokens, 42); /* candidates + thoughts */
    CU_ASSERT_EQUAL(r->usage.cache_read_tokens, 8);
    CU_ASSERT_EQUAL(r->usage.cache_write_tokens, 0);
    CU_ASSERT_PTR_NULL(r->thinking);
    llm_response_free(r);
}

static void test_parse_function_calls(void) {
    llm_response *r = parse_ok(
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Checking.\"},{\"functionCall\":{"
        "\"name\":\"get_weather\",\"args\":{\"city\":\"Paris\",\"days\":2}},\"thoughtSignature\":"
        "\"sig1\"},{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":\"Rome\"}}},"
        "{\"functionCall\":{\"name\":\"now\",\"id\":\"fc-9\"}}],\"role\":\"model\"},"
        "\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":5,"
        "\"candidatesTokenCount\":9}}");
    EXPECT_STR(r->completion, "Checking.");
    EXPECT_STR(r->finish_reason, "STOP");
    CU_ASSERT_EQUAL_FATAL(r->n_content, 5);
    CU_ASSERT_EQUAL(r->content[1].kind, LLM_PART_THINKING); /* the call's signature, first */
    CU_ASSERT_PTR_NULL(r->content[1].text);
    EXPECT_STR(r->content[1].signature, "sig1");
    CU_ASSERT_EQUAL(r->content[2].kind, LLM_PART_TOOL_CALL);
    EXPECT_STR(r->content[2].id, "gcall_0");
    EXPECT_STR(r->content[2].name, "get_weather");
    json_t *args = json_loads(r->content[2].arguments, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(args);
    EXPECT_STR(jstr(args, "city"), "Paris");
    CU_ASSERT_EQUAL(json_integer_value(jget(args, "days")), 2);
    json_decref(args);
    EXPECT_STR(r->content[3].id, "gcall_1");
    EXPECT_STR(r->content[4].id, "fc-9"); /* Gemini's own id is kept */
    EXPECT_STR(r->content[4].arguments, "{}");
    CU_ASSERT_PTR_NULL(r->thinking);
    llm_response_free(r);
}

static void test_parse_thoughts(void) {
    llm_response *r = parse_ok(
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Step 1\",\"thought\":true},"
        "{\"text\":\"Step 2\",\"thought\":true},{\"text\":\"42\",\"thoughtSignature\":\"s\"}]},"
        "\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":3,"
        "\"candidatesTokenCount\":1,\"thoughtsTokenCount\":50}}");
    EXPECT_STR(r->completion, "42");
    EXPECT_STR(r->thinking, "Step 1\n\nStep 2");
    CU_ASSERT_EQUAL_FATAL(r->n_content, 4);
    CU_ASSERT_EQUAL(r->content[0].kind, LLM_PART_THINKING);
    EXPECT_STR(r->content[0].text, "Step 1");
    CU_ASSERT_EQUAL(r->content[2].kind, LLM_PART_THINKING);
    EXPECT_STR(r->content[2].signature, "s");
    CU_ASSERT_EQUAL(r->content[3].kind, LLM_PART_TEXT);
    CU_ASSERT_EQUAL(r->usage.output_tokens, 51);
    llm_response_free(r);
}

/* A parsed answer replayed as the assistant turn goes back with its signature in place. */
static void test_replay_round_trip(void) {
    llm_response *a =
        parse_ok("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hmm\",\"thought\":true},"
                 "{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":\"Oslo\"}},"
                 "\"thoughtSignature\":\"sig-z\"}]},\"finishReason\":\"STOP\"}]}");
    llm_request *r = prompt("Weather in Oslo?");
    add_weather_tool(r);
    llm_message *m = add_msg(r, LLM_ROLE_ASSISTANT);
    for (size_t i = 0; i < a->n_content; i++)
        llm_part_copy(add_part(m, a->content[i].kind), &a->content[i]);
    add_tool_result(add_msg(r, LLM_ROLE_TOOL), a->content[2].id, "-3C");
    json_t *body = build_body(model("gemini-2.5-flash"), r);
    json_t *mp = jget(body, "contents.1.parts");
    CU_ASSERT_EQUAL(json_array_size(mp), 1);
    EXPECT_STR(jstr(mp, "0.functionCall.name"), "get_weather");
    EXPECT_STR(jstr(mp, "0.thoughtSignature"), "sig-z");
    EXPECT_STR(jstr(body, "contents.2.parts.0.functionResponse.name"), "get_weather");
    json_decref(body);
    llm_request_free(r);
    llm_response_free(a);
}

static void test_parse_structured_output(void) {
    llm_response *r = parse_ok(
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"{\\\"name\\\": \\\"Ada\\\"}\"}]},"
        "\"finishReason\":\"STOP\"}]}");
    json_t *j = json_loads(r->completion, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    EXPECT_STR(jstr(j, "name"), "Ada");
    json_decref(j);
    llm_response_free(r);
}

static void test_parse_finish_reasons(void) {
    /* Filtered: an answer without text, the reason as Gemini sent it. */
    llm_response *r = parse_ok("{\"candidates\":[{\"finishReason\":\"SAFETY\",\"safetyRatings\":"
                               "[]}],\"usageMetadata\":{\"promptTokenCount\":7}}");
    EXPECT_STR(r->finish_reason, "SAFETY");
    CU_ASSERT_PTR_NULL(r->completion);
    CU_ASSERT_EQUAL(r->usage.input_tokens, 7);
    llm_response_free(r);
    r = parse_ok("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Once upon\"}]},"
                 "\"finishReason\":\"MAX_TOKENS\"}]}");
    EXPECT_STR(r->finish_reason, "MAX_TOKENS");
    EXPECT_STR(r->completion, "Once upon");
    llm_response_free(r);
    r = parse_ok("{\"candidates\":[{\"content\":{\"role\":\"model\"},\"finishReason\":"
                 "\"RECITATION\"}]}");
    EXPECT_STR(r->finish_reason, "RECITATION");
    llm_response_free(r);
    /* A blocked prompt: no candidate; the block reason is the finish reason. */
    r = parse_ok("{\"promptFeedback\":{\"blockReason\":\"PROHIBITED_CONTENT\"},"
                 "\"usageMetadata\":{\"promptTokenCount\":11,\"totalTokenCount\":11}}");
    EXPECT_STR(r->finish_reason, "PROHIBITED_CONTENT");
    CU_ASSERT_EQUAL(r->n_content, 0);
    CU_ASSERT_EQUAL(r->usage.input_tokens, 11);
    llm_response_free(r);
    /* STOP with nothing in it is Gemini's empty answer: retried, never a success. */
    static const char empty_stop[] =
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\"}]},\"finishReason\":\"STOP\"}]}";
    parse_fails(empty_stop, strlen(empty_stop), "no text and no function call");
    static const char botched[] = "{\"candidates\":[{\"content\":{},\"finishReason\":"
                                  "\"MALFORMED_FUNCTION_CALL\"}]}";
    parse_fails(botched, strlen(botched), "MALFORMED_FUNCTION_CALL");
    static const char only_thought[] = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":"
                                       "\"hm\",\"thought\":true}]}}]}";
    parse_fails(only_thought, strlen(only_thought), "finishReason absent");
}

static void test_parse_malformed(void) {
    static const char good[] =
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hello\"}]},\"finishReason\":"
        "\"STOP\"}]}";
    parse_fails("{not json", 9, "not valid JSON");
    parse_fails(good, sizeof good - 8, "not valid JSON"); /* truncated body */
    parse_fails("", 0, "empty");
    parse_fails("{}", 2, "no candidates");
    static const char err200[] = "{\"error\":{\"code\":500,\"message\":\"Internal error\"}}";
    parse_fails(err200, strlen(err200), "Internal error");
    static const char no_name[] = "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":"
                                  "{\"args\":{}}}]},\"finishReason\":\"STOP\"}]}";
    parse_fails(no_name, strlen(no_name), "functionCall");
    static const char bad_args[] = "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":"
                                   "{\"name\":\"f\",\"args\":[1]}}]}}]}";
    parse_fails(bad_args, strlen(bad_args), "functionCall");
    static const char parts_obj[] = "{\"candidates\":[{\"content\":{\"parts\":{}}}]}";
    parse_fails(parts_obj, strlen(parts_obj), "not an array");
    static const char part_str[] = "{\"candidates\":[{\"content\":{\"parts\":[\"x\"]}}]}";
    parse_fails(part_str, strlen(part_str), "parts[0] is not an object");
    static const char cand_str[] = "{\"candidates\":[\"x\"]}";
    parse_fails(cand_str, strlen(cand_str), "candidates[0] is not an object");
}

/* ---- errors ------------------------------------------------------------------------- */

static const char quota_429[] =
    "{\"error\":{\"code\":429,\"message\":\"You exceeded your current quota, please check your "
    "plan and billing details.\\n* Quota exceeded for metric: generativelanguage.googleapis.com/"
    "generate_content_free_tier_requests, limit: 10\\nPlease retry in 17.368693396s.\",\"status\":"
    "\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":\"type.googleapis.com/"
    "google.rpc.QuotaFailure\","
    "\"violations\":[{\"quotaMetric\":\"generativelanguage.googleapis.com/"
    "generate_content_free_tier_requests\",\"quotaValue\":\"10\"}]},{\"@type\":"
    "\"type.googleapis.com/google.rpc.Help\",\"links\":[{\"description\":\"Learn more\",\"url\":"
    "\"https://ai.google.dev/gemini-api/docs/rate-limits\"}]},{\"@type\":"
    "\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"17s\"}]}}";

static void test_parse_error_bodies(void) {
    char msg[512];
    provider_gemini.parse_error(429, quota_429, strlen(quota_429), msg, sizeof msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "RESOURCE_EXHAUSTED: You exceeded your current quota"));
    CU_ASSERT_PTR_NULL(strchr(msg, '\n'));

    static const char bad_key[] =
        "{\"error\":{\"code\":400,\"message\":\"API key not valid. Please pass a valid API key.\","
        "\"status\":\"INVALID_ARGUMENT\",\"details\":[{\"@type\":\"type.googleapis.com/"
        "google.rpc.ErrorInfo\",\"reason\":\"API_KEY_INVALID\",\"domain\":\"googleapis.com\"}]}}";
    provider_gemini.parse_error(400, bad_key, strlen(bad_key), msg, sizeof msg);
    CU_ASSERT_STRING_EQUAL(msg, "INVALID_ARGUMENT (API_KEY_INVALID): API key not valid. Please "
                                "pass a valid API key.");

    static const char too_long[] =
        "[{\"error\":{\"code\":400,\"message\":\"The input token count (1200000) exceeds the "
        "maximum number of tokens allowed (1048576).\",\"status\":\"INVALID_ARGUMENT\"}}]";
    provider_gemini.parse_error(400, too_long, strlen(too_long), msg, sizeof msg);
    CU_ASSERT_STRING_EQUAL(msg, "INVALID_ARGUMENT: The input token count (1200000) exceeds the "
                                "maximum number of tokens allowed (1048576).");

    static const char text[] = "upstream connect error or disconnect/reset before headers";
    provider_gemini.parse_error(503, text, strlen(text), msg, sizeof msg);
    CU_ASSERT_STRING_EQUAL(msg, text);
    provider_gemini.parse_error(500, NULL, 0, msg, sizeof msg);
    CU_ASSERT_STRING_EQUAL(msg, "empty response body");
}

static int64_t delay_of(const char *retry_delay) {
    char *body = xasprintf("{\"error\":{\"code\":429,\"status\":\"RESOURCE_EXHAUSTED\","
                           "\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\","
                           "\"retryDelay\":%s}]}}",
                           retry_delay);
    int64_t ms = provider_gemini.retry_after_ms(429, body, strlen(body));
    free(body);
    return ms;
}

static void test_retry_info_delay(void) {
    CU_ASSERT_EQUAL(provider_gemini.retry_after_ms(429, quota_429, strlen(quota_429)), 17000);
    CU_ASSERT_EQUAL(delay_of("\"1.5s\""), 1500);
    CU_ASSERT_EQUAL(delay_of("\"0s\""), 0);
    CU_ASSERT_EQUAL(delay_of("\"0.0001s\""), 1); /* rounded up, never shortened */
    CU_ASSERT_EQUAL(delay_of("\"2.000000001s\""), 2001);
    CU_ASSERT_EQUAL(delay_of("\"-3s\""), -1);
    CU_ASSERT_EQUAL(delay_of("\"17\""), -1);
    CU_ASSERT_EQUAL(delay_of("\"soon\""), -1);
    CU_ASSERT_EQUAL(delay_of("\"nans\""), -1);
    CU_ASSERT_EQUAL(delay_of("17"), -1);
    static const char none[] = "{\"error\":{\"code\":503,\"status\":\"UNAVAILABLE\"}}";
    CU_ASSERT_EQUAL(provider_gemini.retry_after_ms(503, none, strlen(none)), -1);
    CU_ASSERT_EQUAL(provider_gemini.retry_after_ms(429, "not json", 8), -1);
    CU_ASSERT_EQUAL(provider_gemini.retry_after_ms(429, NULL, 0), -1);
    /* The other adapters name no delay in their bodies. */
    CU_ASSERT_PTR_NULL(provider_openai.retry_after_ms);
    CU_ASSERT_PTR_NULL(provider_anthropic.retry_after_ms);
}

static void test_provider_table(void) {
    CU_ASSERT_PTR_EQUAL(provider_get(PROVIDER_GEMINI), &provider_gemini);
    CU_ASSERT_STRING_EQUAL(provider_gemini.name, "gemini");
    CU_ASSERT_EQUAL(provider_gemini.kind, PROVIDER_GEMINI);
}

/* ---- main --------------------------------------------------------------------------- */

int main(void) {
    static const test_case tests[] = {
        {"plain_prompt", test_plain_prompt},
        {"no_key_no_auth_header", test_no_key_no_auth_header},
        {"system_and_multi_turn", test_system_and_multi_turn},
        {"system_only_refused", test_system_only_refused},
        {"images", test_images},
        {"tools_call_and_result", test_tools_call_and_result},
        {"parameterless_tool", test_parameterless_tool},
        {"output_schema_converted", test_output_schema_converted},
        {"deep_schema_refused", test_deep_schema_refused},
        {"json_mode", test_json_mode},
        {"thinking_budget", test_thinking_budget},
        {"stop_sequences", test_stop_sequences},
        {"urls_and_upstream_ids", test_urls_and_upstream_ids},
        {"parse_text_and_usage", test_parse_text_and_usage},
        {"parse_function_calls", test_parse_function_calls},
        {"parse_thoughts", test_parse_thoughts},
        {"replay_round_trip", test_replay_round_trip},
        {"parse_structured_output", test_parse_structured_output},
        {"parse_finish_reasons", test_parse_finish_reasons},
        {"parse_malformed", test_parse_malformed},
        {"parse_error_bodies", test_parse_error_bodies},
        {"retry_info_delay", test_retry_info_delay},
        {"provider_table", test_provider_table},
        {NULL, NULL},
    };
    static const adapter_under_test adapter = {&provider_gemini, "x-goog-api-key: " KEY,
                                               "gemini-2.5-flash"};
    return adapter_test_main("gemini", &adapter, tests);
}
