/*
 * test_fake_provider.h - shared fixture of the fake provider's CUnit tests (three .c files,
 * one executable). The fake is started in main() before any test runs.
 */
#ifndef SLUICE_TESTS_TEST_FAKE_PROVIDER_H
#define SLUICE_TESTS_TEST_FAKE_PROVIDER_H

#include "unit/test_util.h"
#include "tests/fake_provider/fake_provider.h"
#include "tests/fake_provider/fake_test_util.h"

#include <CUnit/CUnit.h>
#include <jansson.h>

extern fake_provider *g_fp;
extern char g_openai[128], g_anthropic[128]; /* endpoint URLs */
extern const char *const OPENAI_HDRS[];      /* auth + content type, NULL-terminated */
extern const char *const ANTHROPIC_HDRS[];

/* Request bodies with a system prompt "Be brief.", one user message and 100 max tokens.
 * Free with free(). */
char *openai_body(const char *model, const char *text);
char *anthropic_body(const char *model, const char *text);
/* Sends one request and fills *r (fake_http_result_cleanup). */
void openai(const char *model, const char *text, long timeout_ms, fake_http_result *r);
void anthropic(const char *model, const char *text, fake_http_result *r);
/* An OpenAI request for model "rl" authenticated with `key`. */
void keyed(const char *key, const char *text, fake_http_result *r);
/* Sends `text` to model "m" and asserts the transfer worked with `status`. */
void expect_status(const char *text, long status);
/* Parses a body (asserting it is JSON; NULL otherwise). json_decref the result. */
json_t *parse(const fake_http_result *r);
/* Values at a dotted path ("choices.0.message.content"); "" / 0 when absent. */
const char *str_at(json_t *j, const char *path);
json_int_t int_at(json_t *j, const char *path);

/* The tests of test_fake_provider_state.c and test_fake_provider_gemini.c. */
extern const test_case fake_state_tests[];
extern const test_case fake_gemini_tests[];

#endif
