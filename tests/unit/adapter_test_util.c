/*
 * adapter_test_util.c - see adapter_test_util.h.
 */
#include "unit/adapter_test_util.h"

#include "server/common/alloc.h"
#include "sluice/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static registry *reg;
static const adapter_under_test *adapter;

const model_info *model(const char *name) {
    const model_info *m = registry_find(reg, name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    return m;
}

llm_message *add_msg(llm_request *r, llm_role role) {
    r->messages = xrealloc(r->messages, (r->n_messages + 1) * sizeof *r->messages);
    llm_message *m = &r->messages[r->n_messages++];
    memset(m, 0, sizeof *m);
    m->role = role;
    return m;
}

llm_part *add_part(llm_message *m, llm_part_kind kind) {
    m->parts = xrealloc(m->parts, (m->n_parts + 1) * sizeof *m->parts);
    llm_part *p = &m->parts[m->n_parts++];
    memset(p, 0, sizeof *p);
    p->kind = kind;
    return p;
}

void add_text(llm_request *r, llm_role role, const char *text) {
    llm_request_add_text(r, role, text);
}

llm_request *prompt(const char *text) {
    llm_request *r = llm_request_new();
    add_text(r, LLM_ROLE_USER, text);
    return r;
}

llm_part *add_thinking(llm_message *m, const char *text, const char *signature) {
    llm_part *p = add_part(m, LLM_PART_THINKING);
    p->text = xstrdup(text);
    p->signature = xstrdup(signature);
    return p;
}

llm_part *add_tool_call(llm_message *m, const char *id, const char *name, const char *arguments) {
    llm_part *p = add_part(m, LLM_PART_TOOL_CALL);
    p->id = xstrdup(id);
    p->name = xstrdup(name);
    p->arguments = xstrdup(arguments);
    return p;
}

llm_part *add_tool_result(llm_message *m, const char *id, const char *text) {
    llm_part *p = add_part(m, LLM_PART_TOOL_RESULT);
    p->id = xstrdup(id);
    p->text = xstrdup(text);
    return p;
}

llm_part *add_image_url(llm_message *m, const char *url) {
    llm_part *p = add_part(m, LLM_PART_IMAGE);
    p->url = xstrdup(url);
    return p;
}

llm_part *add_image_bytes(llm_message *m, const void *data, size_t len, const char *media_type) {
    llm_part *p = add_part(m, LLM_PART_IMAGE);
    p->data = xmemdup(data, len);
    p->data_len = len;
    p->media_type = xstrdup(media_type);
    return p;
}

void add_weather_tool(llm_request *r) {
    r->tools = XNEWV(llm_tool, 1);
    r->n_tools = 1;
    r->tools[0].name = xstrdup("get_weather");
    r->tools[0].description = xstrdup("Weather for a city");
    r->tools[0].parameters =
        xstrdup("{\"properties\":{\"city\":{\"type\":\"string\"}},\"type\":\"object\"}");
}

json_t *jget(json_t *root, const char *path) {
    json_t *cur = root;
    while (cur && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        char tok[64];
        snprintf(tok, sizeof tok, "%.*s", (int)n, path);
        if (json_is_array(cur))
            cur = json_array_get(cur, strtoul(tok, NULL, 10));
        else
            cur = json_object_get(cur, tok);
        path += n + (dot ? 1 : 0);
    }
    return cur;
}

const char *jstr(json_t *root, const char *path) {
    return json_string_value(jget(root, path));
}

int build_rc(const model_info *m, const char *key, const llm_request *r, provider_request *out,
             char *err, size_t errlen) {
    llm_sampling s;
    llm_sampling_merge(&s, NULL, &r->sampling);
    int rc = adapter->ops->build(m, key, r, &s, out, err, errlen);
    llm_sampling_cleanup(&s);
    return rc;
}

json_t *build(const model_info *m, const llm_request *r, provider_request *out) {
    char err[256];
    int rc = build_rc(m, KEY, r, out, err, sizeof err);
    CU_ASSERT_EQUAL_FATAL(rc, SLUICE_OK);
    CU_ASSERT_PTR_NULL(strstr(out->body, KEY));
    CU_ASSERT_PTR_NULL(strstr(out->url, KEY));
    size_t with_key = 0;
    for (size_t i = 0; i < out->n_headers; i++)
        if (strstr(out->headers[i], KEY)) {
            with_key++;
            CU_ASSERT_STRING_EQUAL(out->headers[i], adapter->auth_header);
        }
    CU_ASSERT_EQUAL(with_key, 1);
    json_t *body = json_loadb(out->body, out->body_len, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    return body;
}

json_t *build_body(const model_info *m, const llm_request *r) {
    provider_request out;
    json_t *body = build(m, r, &out);
    provider_request_cleanup(&out);
    return body;
}

void build_fails(const model_info *m, const llm_request *r, const char *err_part) {
    provider_request out = {0};
    char err[256] = "";
    CU_ASSERT_EQUAL(build_rc(m, KEY, r, &out, err, sizeof err), SLUICE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, err_part));
    CU_ASSERT_PTR_NULL(strstr(err, KEY));
    CU_ASSERT_PTR_NULL(out.url);
    CU_ASSERT_PTR_NULL(out.body);
    CU_ASSERT_EQUAL(out.n_headers, 0);
    provider_request_cleanup(&out);
}

bool has_header(const provider_request *r, const char *line) {
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcmp(r->headers[i], line) == 0)
            return true;
    return false;
}

llm_response *parse_ok(const char *body) {
    llm_response *out = llm_response_new();
    char err[256] = "";
    int rc = adapter->ops->parse_success(model(adapter->parse_model), body, strlen(body), out, err,
                                         sizeof err);
    CU_ASSERT_EQUAL(rc, SLUICE_OK);
    if (rc)
        fprintf(stderr, "unexpected parse failure: %s\n", err);
    return out;
}

void parse_fails(const char *body, size_t len, const char *err_part) {
    llm_response *out = llm_response_new();
    char err[256] = "";
    int rc =
        adapter->ops->parse_success(model(adapter->parse_model), body, len, out, err, sizeof err);
    CU_ASSERT_EQUAL(rc, SLUICE_EPROTO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, err_part));
    CU_ASSERT_EQUAL(out->n_content, 0);
    CU_ASSERT_PTR_NULL(out->completion);
    llm_response_free(out);
}

static int suite_init(void) {
    unsetenv("OPENAI_API_KEY");
    unsetenv("ANTHROPIC_API_KEY");
    unsetenv("GEMINI_API_KEY");
    json_t *root = json_loads(registry_default_json(), 0, NULL);
    char err[256];
    int rc = root ? registry_from_json(root, &reg, err, sizeof err) : -1;
    json_decref(root);
    if (rc)
        fprintf(stderr, "default registry: %s\n", root ? err : "not valid JSON");
    return rc;
}

static int suite_cleanup(void) {
    registry_free(reg);
    reg = NULL;
    return 0;
}

int adapter_test_main(const char *suite, const adapter_under_test *a, const test_case *cases) {
    adapter = a;
    return test_run_suite_with(suite, suite_init, suite_cleanup, cases);
}
