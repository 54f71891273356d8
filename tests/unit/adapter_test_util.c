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
