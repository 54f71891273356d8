/*
 * adapter_test_util.h - helpers shared by the provider-adapter tests (test_openai.c,
 * test_anthropic.c, test_gemini.c): building requests, reading JSON bodies back by path,
 * and calling the adapter under test with the default model registry loaded.
 *
 * A test program names its adapter once with adapter_test_main(); every helper below then
 * works on that adapter. Single-threaded, like the CUnit programs that use it.
 */
#ifndef SLUICE_ADAPTER_TEST_UTIL_H
#define SLUICE_ADAPTER_TEST_UTIL_H

#include "server/common/llm.h"
#include "server/providers/provider.h"
#include "server/providers/registry.h"
#include "unit/test_util.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The key every request is built with; no helper lets it reach a body or URL. */
#define KEY "sk-test-0123456789abcdef"

/* The adapter under test. */
typedef struct adapter_under_test {
    const provider_ops *ops;
    const char *auth_header; /* the one header line that carries KEY */
    const char *parse_model; /* the model parse_ok()/parse_fails() parse as */
} adapter_under_test;

/* Loads the default registry (with no provider keys in the environment), runs the suite
 * `suite` with `cases` against `adapter` and returns the process exit code. */
int adapter_test_main(const char *suite, const adapter_under_test *adapter, const test_case *cases);

/* The registry's model `name`; a missing model fails the test. Borrowed. */
const model_info *model(const char *name);

/* Request builders: append to `r`, which owns everything appended. */
llm_message *add_msg(llm_request *r, llm_role role);
llm_part *add_part(llm_message *m, llm_part_kind kind);
void add_text(llm_request *r, llm_role role, const char *text);
/* A new request holding one user message `text`; the caller frees it. */
llm_request *prompt(const char *text);

/* Part builders: append one part to `m` and return it (owned by `m`). Strings and bytes
 * are copied; a NULL string leaves its field unset. */
llm_part *add_thinking(llm_message *m, const char *text, const char *signature);
llm_part *add_tool_call(llm_message *m, const char *id, const char *name, const char *arguments);
llm_part *add_tool_result(llm_message *m, const char *id, const char *text);
llm_part *add_image_url(llm_message *m, const char *url);
llm_part *add_image_bytes(llm_message *m, const void *data, size_t len, const char *media_type);
/* Gives `r` (which has no tools yet) the one tool get_weather(city: string). */
void add_weather_tool(llm_request *r);

/* Follows a dotted path ("messages.0.content") through objects and arrays; borrowed. */
json_t *jget(json_t *root, const char *path);
const char *jstr(json_t *root, const char *path);

/* The adapter's build() with `r`'s own sampling; `out` is filled on success. */
int build_rc(const model_info *m, const char *key, const llm_request *r, provider_request *out,
             char *err, size_t errlen);
/* Builds with KEY, asserts success and that KEY appears only in the auth header, and
 * returns the parsed body (the caller decrefs it and cleans up `out`). */
json_t *build(const model_info *m, const llm_request *r, provider_request *out);
/* build() for tests that look only at the body: returns it (the caller decrefs it). */
json_t *build_body(const model_info *m, const llm_request *r);
/* The adapter's build() with KEY, asserting SLUICE_EINVAL with `err_part` in the message,
 * KEY nowhere in it and nothing left in the request. */
void build_fails(const model_info *m, const llm_request *r, const char *err_part);
bool has_header(const provider_request *r, const char *line);

/* parse_success() on `body`, asserting it succeeds; the caller frees the response. */
llm_response *parse_ok(const char *body);
/* parse_success() on `body`, asserting EPROTO with `err_part` in the message and nothing
 * left in the response. */
void parse_fails(const char *body, size_t len, const char *err_part);

#endif
