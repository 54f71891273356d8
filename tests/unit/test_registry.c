/*
 * test_registry.c - the model registry: the built-in registry, validation messages that
 * name the offending path, key references, secrets from env and files (never echoed in
 * errors), defaults and the cost formula.
 */
#include "unit/test_util.h"
#include "server/common/alloc.h"
#include "server/providers/registry.h"
#include "sluice/status.h"

#include <CUnit/Basic.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ENV_VAR "SLUICE_TEST_REGISTRY_KEY"

/* A small valid registry the tests mutate. */
static const char base_json[] =
    "{\"keys\":{\"k\":{\"provider\":\"openai\",\"env\":\"" ENV_VAR "\"}},"
    "\"models\":{\"m\":{\"provider\":\"openai\",\"upstream\":\"gpt-x\",\"key\":\"k\","
    "\"input_price\":1,\"output_price\":2,\"context_window\":1000}}}";

/* ---- helpers ------------------------------------------------------------------------ */

static json_t *base(void) {
    json_t *j = json_loads(base_json, JSON_REJECT_DUPLICATES, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    return j;
}

/* Sets (value != NULL, reference stolen) or deletes root[a][b][c] for path "a.b.c". */
static void set_path(json_t *root, const char *path, json_t *value) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = root;
    char *seg = buf;
    for (char *dot = strchr(seg, '.'); dot; dot = strchr(seg, '.')) {
        *dot = '\0';
        cur = json_object_get(cur, seg);
        seg = dot + 1;
    }
    if (value)
        json_object_set_new(cur, seg, value);
    else
        json_object_del(cur, seg);
}

static int from_json(json_t *root, registry **out, char *err, size_t errlen) {
    int rc = registry_from_json(root, out, err, errlen);
    json_decref(root);
    return rc;
}

/* Loads base_json with path set to the JSON text `value` (NULL: deleted) and expects
 * SLUICE_EINVAL with exactly `want` as the message. */
static void expect_invalid(const char *path, const char *value, const char *want) {
    json_t *root = base();
    json_t *v = value ? json_loads(value, JSON_DECODE_ANY, NULL) : NULL;
    if (value)
        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    set_path(root, path, v);
    registry *r = NULL;
    char err[512] = "";
    CU_ASSERT_EQUAL(from_json(root, &r, err, sizeof err), SLUICE_EINVAL);
    CU_ASSERT_PTR_NULL(r);
    CU_ASSERT_STRING_EQUAL(err, want);
    if (strcmp(err, want) != 0)
        fprintf(stderr, "\n  %s=%s: got \"%s\"\n", path, value ? value : "(deleted)", err);
}

static registry *load_ok(json_t *root) {
    registry *r = NULL;
    char err[512] = "";
    int rc = from_json(root, &r, err, sizeof err);
    CU_ASSERT_EQUAL(rc, SLUICE_OK);
    if (rc)
        fprintf(stderr, "\n  unexpected error: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    return r;
}

/* Writes `len` bytes to a new temporary file; returns its path (free()). */
static char *temp_file(const void *data, size_t len) {
    const char *dir = getenv("TMPDIR");
    char *path = xasprintf("%s/sluice-test-registry-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(write(fd, data, len) == (ssize_t)len);
    close(fd);
    return path;
}

static void remove_temp(char *path) {
    unlink(path);
    free(path);
}

/* ---- the built-in registry ---------------------------------------------------------- */

static const char *default_base_url(provider_kind k) {
    switch (k) {
    case PROVIDER_ANTHROPIC:
        return "https://api.anthropic.com/v1";
    case PROVIDER_GEMINI:
        return "https://generativelanguage.googleapis.com/v1beta";
    case PROVIDER_OPENAI:
        break;
    }
    return "https://api.openai.com/v1";
}

static void test_default_registry(void) {
    unsetenv("OPENAI_API_KEY");
    unsetenv("GEMINI_API_KEY");
    setenv("ANTHROPIC_API_KEY", "sk-ant-test", 1);
    registry *r = load_ok(json_loads(registry_default_json(), JSON_REJECT_DUPLICATES, NULL));
    static const struct {
        const char *name, *upstream;
        provider_kind provider;
        bool reasoning;
    } want[] = {
        {"gpt-4.1", "gpt-4.1-2025-04-14", PROVIDER_OPENAI, false},
        {"gpt-4.1-mini", "gpt-4.1-mini-2025-04-14", PROVIDER_OPENAI, false},
        {"gpt-4.1-nano", "gpt-4.1-nano-2025-04-14", PROVIDER_OPENAI, false},
        {"gpt-4o", "gpt-4o-2024-08-06", PROVIDER_OPENAI, false},
        {"gpt-4o-mini", "gpt-4o-mini-2024-07-18", PROVIDER_OPENAI, false},
        {"o3", "o3-2025-04-16", PROVIDER_OPENAI, true},
        {"o4-mini", "o4-mini-2025-04-16", PROVIDER_OPENAI, true},
        {"gpt-5", "gpt-5-2025-08-07", PROVIDER_OPENAI, true},
        {"gpt-5-mini", "gpt-5-mini-2025-08-07", PROVIDER_OPENAI, true},
        {"gpt-5-nano", "gpt-5-nano-2025-08-07", PROVIDER_OPENAI, true},
        {"claude-opus-4.1", "claude-opus-4-1-20250805", PROVIDER_ANTHROPIC, true},
        {"claude-sonnet-4.5", "claude-sonnet-4-5-20250929", PROVIDER_ANTHROPIC, true},
        {"claude-haiku-4.5", "claude-haiku-4-5-20251001", PROVIDER_ANTHROPIC, true},
        {"claude-3.5-haiku", "claude-3-5-haiku-20241022", PROVIDER_ANTHROPIC, false},
        {"gemini-2.5-pro", "gemini-2.5-pro", PROVIDER_GEMINI, true},
        {"gemini-2.5-flash", "gemini-2.5-flash", PROVIDER_GEMINI, true},
        {"gemini-2.5-flash-lite", "gemini-2.5-flash-lite", PROVIDER_GEMINI, true},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const model_info *m = registry_find(r, want[i].name);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        CU_ASSERT_STRING_EQUAL(m->upstream_model, want[i].upstream);
        CU_ASSERT_EQUAL(m->provider, want[i].provider);
        CU_ASSERT_EQUAL(m->reasoning, want[i].reasoning);
    }
    for (size_t i = 0; i < r->n_models; i++) {
        const model_info *m = &r->models[i];
        const upstream_key *k = registry_model_key(r, m);
        CU_ASSERT_PTR_NOT_NULL_FATAL(k);
        CU_ASSERT_EQUAL(k->provider, m->provider);
        CU_ASSERT_TRUE(m->input_price > 0 && m->output_price > m->input_price);
        CU_ASSERT_TRUE(m->cached_input_price < m->input_price);
        CU_ASSERT_TRUE(m->context_window >= 128000);
        CU_ASSERT_TRUE(m->max_output_tokens > 0 && m->max_output_tokens < m->context_window);
        CU_ASSERT_EQUAL(registry_model_available(r, m), m->provider == PROVIDER_ANTHROPIC);
        CU_ASSERT_STRING_EQUAL(m->base_url, default_base_url(m->provider));
        /* One price tier unless the model names a second one. */
        if (!m->long_context_threshold) {
            CU_ASSERT_DOUBLE_EQUAL(m->long_input_price, m->input_price, 1e-12);
            CU_ASSERT_DOUBLE_EQUAL(m->long_output_price, m->output_price, 1e-12);
        }
    }
    const upstream_key *ant = registry_model_key(r, registry_find(r, "claude-haiku-4.5"));
    EXPECT_STR(ant->secret, "sk-ant-test");
    EXPECT_STR(ant->secret_source, "env ANTHROPIC_API_KEY");
    const upstream_key *oa = registry_model_key(r, registry_find(r, "gpt-5"));
    CU_ASSERT_PTR_NULL(oa->secret);
    EXPECT_STR(oa->name, "openai");
    const model_info *sonnet = registry_find(r, "claude-sonnet-4.5");
    CU_ASSERT_DOUBLE_EQUAL(sonnet->input_price, 3.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(sonnet->output_price, 15.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(sonnet->cache_write_price, 3.75, 1e-12);
    const upstream_key *gk = registry_model_key(r, registry_find(r, "gemini-2.5-flash"));
    EXPECT_STR(gk->name, "gemini");
    EXPECT_STR(gk->secret_source, "env GEMINI_API_KEY (unset)");
    const model_info *pro = registry_find(r, "gemini-2.5-pro");
    CU_ASSERT_EQUAL(pro->long_context_threshold, 200000);
    CU_ASSERT_DOUBLE_EQUAL(pro->long_input_price, 2.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(pro->long_output_price, 15.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(pro->long_cached_input_price, 0.25, 1e-12);
    unsetenv("ANTHROPIC_API_KEY");
    registry_free(r);
}

static void test_defaults(void) {
    json_t *root = base();
    set_path(root, "keys.a", json_pack("{s:s,s:s}", "provider", "anthropic", "env", ENV_VAR));
    set_path(root, "models.c",
             json_pack("{s:s,s:s,s:s,s:f,s:f,s:i}", "provider", "anthropic", "upstream", "claude-x",
                       "key", "a", "input_price", 3.0, "output_price", 15.0, "context_window",
                       200000));
    set_path(root, "models.m.base_url", json_string("http://127.0.0.1:8080/v1//"));
    registry *r = load_ok(root);
    const model_info *m = registry_find(r, "m"), *c = registry_find(r, "c");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(m->base_url, "http://127.0.0.1:8080/v1");
    CU_ASSERT_STRING_EQUAL(c->base_url, "https://api.anthropic.com/v1");
    CU_ASSERT_DOUBLE_EQUAL(m->cached_input_price, 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(c->cache_write_price, 3.0, 1e-12);
    CU_ASSERT_EQUAL(m->max_output_tokens, 0);
    CU_ASSERT_FALSE(m->reasoning || m->json_schema || m->images);
    const upstream_key *k = registry_model_key(r, m);
    CU_ASSERT_EQUAL(k->requests_per_minute, 500);
    CU_ASSERT_EQUAL(k->tokens_per_minute, 200000);
    CU_ASSERT_EQUAL(k->max_concurrent, 100);
    CU_ASSERT_EQUAL(registry_model_key(r, c)->provider, PROVIDER_ANTHROPIC);
    CU_ASSERT_EQUAL(m->long_context_threshold, 0);
    CU_ASSERT_DOUBLE_EQUAL(m->long_cached_input_price, m->cached_input_price, 1e-12);
    CU_ASSERT_PTR_NULL(registry_find(r, "nope"));
    CU_ASSERT_PTR_NULL(registry_find(r, NULL));
    registry_free(r);
    registry_free(NULL);
}

/* ---- validation --------------------------------------------------------------------- */

static void test_unknown_fields(void) {
    expect_invalid("extra", "1", "extra: unknown field");
    expect_invalid("models.m.inputprice", "1", "models.m.inputprice: unknown field");
    expect_invalid("keys.k.api_key", "\"sk-should-not-echo\"", "keys.k.api_key: unknown field");
}

static void test_bad_values(void) {
    static const struct {
        const char *path, *value, *want;
    } cases[] = {
        {"models.m.input_price", "\"1.0\"", "models.m.input_price: must be a number >= 0"},
        {"models.m.input_price", "-0.5", "models.m.input_price: must be a number >= 0"},
        {"models.m.cached_input_price", "null",
         "models.m.cached_input_price: must be a number >= 0"},
        {"models.m.output_price", NULL, "models.m.output_price: is required"},
        {"models.m.context_window", "0",
         "models.m.context_window: must be an integer in [1, 4294967295]"},
        {"models.m.context_window", "1.5",
         "models.m.context_window: must be an integer in [1, 4294967295]"},
        {"models.m.max_output_tokens", "-1",
         "models.m.max_output_tokens: must be an integer in [0, 4294967295]"},
        {"models.m.reasoning", "\"yes\"", "models.m.reasoning: must be true or false"},
        {"models.m.provider", "\"google\"",
         "models.m.provider: must be \"openai\", \"anthropic\" or \"gemini\""},
        {"models.m.upstream", "\"\"",
         "models.m.upstream: must be a non-empty string without control characters"},
        {"models.m.upstream", NULL, "models.m.upstream: is required"},
        {"models.m.base_url", "\"ftp://example.com\"",
         "models.m.base_url: must be an http:// or https:// URL"},
        {"models.m.base_url", "\"https://\"",
         "models.m.base_url: must be an http:// or https:// URL"},
        {"models.m", "[]", "models.m: must be an object"},
        {"models", "{}", "models: must be a non-empty object"},
        {"models", "[]", "models: must be a non-empty object"},
        {"keys", NULL, "keys: is required"},
        {"keys.k", "\"sk-123\"", "keys.k: must be an object"},
        {"keys.k.env", NULL, "keys.k: needs \"env\" or \"file\" to name the secret"},
        {"keys.k.env", "42", "keys.k.env: must be a non-empty string without control characters"},
        {"keys.k.requests_per_minute", "0",
         "keys.k.requests_per_minute: must be an integer in [1, 4294967295]"},
        {"keys.k.tokens_per_minute", "5000000000",
         "keys.k.tokens_per_minute: must be an integer in [1, 4294967295]"},
        {"keys.k.max_concurrent", "true",
         "keys.k.max_concurrent: must be an integer in [1, 4294967295]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_invalid(cases[i].path, cases[i].value, cases[i].want);

    registry *r = NULL;
    char err[256];
    json_t *arr = json_array();
    CU_ASSERT_EQUAL(registry_from_json(arr, &r, err, sizeof err), SLUICE_EINVAL);
    CU_ASSERT_STRING_EQUAL(err, "registry: must be a JSON object");
    json_decref(arr);
}

static void test_unknown_key_reference(void) {
    expect_invalid("models.m.key", "\"nope\"",
                   "models.m.key: unknown key 'nope' (not in \"keys\")");
    expect_invalid("models.m.key", NULL, "models.m.key: is required");
}

static void test_provider_mismatch(void) {
    expect_invalid("keys.k.provider", "\"anthropic\"",
                   "models.m.key: key 'k' is for provider anthropic, the model is openai");
}

/* ---- secrets ------------------------------------------------------------------------ */

static void test_secret_from_env(void) {
    setenv(ENV_VAR, "sk-env-123 \n", 1);
    registry *r = load_ok(base());
    const upstream_key *k = &r->keys[0];
    EXPECT_STR(k->secret, "sk-env-123");
    EXPECT_STR(k->secret_source, "env " ENV_VAR);
    CU_ASSERT_TRUE(registry_model_available(r, registry_find(r, "m")));
    registry_free(r);

    /* The environment wins over the file, which is then not even read. */
    json_t *root = base();
    set_path(root, "keys.k.file", json_string("/nonexistent/sluice/secret"));
    r = load_ok(root);
    EXPECT_STR(r->keys[0].secret, "sk-env-123");
    registry_free(r);

    /* Unset: the key has no secret and its models are unavailable, which is not an error. */
    unsetenv(ENV_VAR);
    r = load_ok(base());
    CU_ASSERT_PTR_NULL(r->keys[0].secret);
    EXPECT_STR(r->keys[0].secret_source, "env " ENV_VAR " (unset)");
    CU_ASSERT_FALSE(registry_model_available(r, registry_find(r, "m")));
    registry_free(r);
}

static void test_secret_from_file(void) {
    unsetenv(ENV_VAR);
    static const char content[] = "sk-file-456\n\n";
    char *path = temp_file(content, strlen(content));
    json_t *root = base();
    set_path(root, "keys.k.file", json_string(path));
    registry *r = load_ok(root);
    EXPECT_STR(r->keys[0].secret, "sk-file-456");
    char want[512];
    snprintf(want, sizeof want, "file %s", path);
    EXPECT_STR(r->keys[0].secret_source, want);
    registry_free(r);

    /* File only, no env at all. */
    root = base();
    set_path(root, "keys.k.env", NULL);
    set_path(root, "keys.k.file", json_string(path));
    r = load_ok(root);
    EXPECT_STR(r->keys[0].secret, "sk-file-456");
    registry_free(r);
    remove_temp(path);
}

static void test_secret_file_missing(void) {
    unsetenv(ENV_VAR);
    json_t *root = base();
    set_path(root, "keys.k.file", json_string("/nonexistent/sluice/secret"));
    registry *r = NULL;
    char err[512];
    CU_ASSERT_EQUAL(from_json(root, &r, err, sizeof err), SLUICE_EINVAL);
    CU_ASSERT_STRING_EQUAL(err, "keys.k.file: cannot read /nonexistent/sluice/secret: No such "
                                "file or directory");
}

/* Loads base_json with keys.k.file = a file holding `content` and expects an error that
 * names the file and does not contain `secret`. */
static void expect_file_secret_error(const char *content, size_t len, const char *secret,
                                     const char *problem) {
    unsetenv(ENV_VAR);
    char *path = temp_file(content, len);
    json_t *root = base();
    set_path(root, "keys.k.file", json_string(path));
    registry *r = NULL;
    char err[512];
    CU_ASSERT_EQUAL(from_json(root, &r, err, sizeof err), SLUICE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, problem));
    CU_ASSERT_PTR_NULL(strstr(err, secret));
    remove_temp(path);
}

static void test_secret_never_in_errors(void) {
    expect_file_secret_error("sk-ctl-789\x01xyz\n", 15, "sk-ctl", "control characters");
    expect_file_secret_error("sk-two\nlines\n", 13, "sk-two", "control characters");
    expect_file_secret_error(" \n\t\n", 4, "\t", "is empty");

    /* A control character from the environment. */
    setenv(ENV_VAR, "sk-env-ctl\r\nX-Injected: 1", 1);
    registry *r = NULL;
    char err[512];
    CU_ASSERT_EQUAL(from_json(base(), &r, err, sizeof err), SLUICE_EINVAL);
    CU_ASSERT_STRING_EQUAL(err,
                           "keys.k.env: the secret from env " ENV_VAR " holds control characters");

    /* A valid secret followed by a later error: the message is about the model only. */
    setenv(ENV_VAR, "sk-valid-000", 1);
    json_t *root = base();
    set_path(root, "models.m.input_price", json_string("sk-valid-000?"));
    CU_ASSERT_EQUAL(from_json(root, &r, err, sizeof err), SLUICE_EINVAL);
    CU_ASSERT_PTR_NULL(strstr(err, "sk-valid"));
    unsetenv(ENV_VAR);

    /* A syntax error in a registry file: jansson's quote of the nearby text is cut. */
    static const char broken[] = "{\"keys\": {\"k\": {\"provider\": \"openai\",\n"
                                 "  \"env\": \"X\", \"oops\": \"sk-leak-000";
    char *path = temp_file(broken, strlen(broken));
    CU_ASSERT_EQUAL(registry_load_file(path, &r, err, sizeof err), SLUICE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, ":2:"));
    CU_ASSERT_PTR_NULL(strstr(err, "sk-leak"));
    remove_temp(path);
}

/* ---- files -------------------------------------------------------------------------- */

static void test_load_file(void) {
    unsetenv(ENV_VAR);
    char *path = temp_file(base_json, strlen(base_json));
    registry *r = NULL;
    char err[512];
    CU_ASSERT_EQUAL(registry_load_file(path, &r, err, sizeof err), SLUICE_OK);
    CU_ASSERT_PTR_NOT_NULL(registry_find(r, "m"));
    registry_free(r);
    remove_temp(path);

    CU_ASSERT_EQUAL(registry_load_file("/nonexistent/registry.json", &r, err, sizeof err),
                    SLUICE_EINVAL);
    CU_ASSERT_PTR_NULL(r);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/registry.json"));

    static const char dup[] = "{\"keys\": {}, \"keys\": {}, \"models\": {}}";
    path = temp_file(dup, strlen(dup));
    CU_ASSERT_EQUAL(registry_load_file(path, &r, err, sizeof err), SLUICE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "duplicate"));
    remove_temp(path);

    static const char bad[] = "{\"keys\": {}, \"models\": {\"x\": 1}}";
    path = temp_file(bad, strlen(bad));
    CU_ASSERT_EQUAL(registry_load_file(path, &r, err, sizeof err), SLUICE_EINVAL);
    char want[512];
    snprintf(want, sizeof want, "%s: models.x: must be an object", path);
    CU_ASSERT_STRING_EQUAL(err, want);
    remove_temp(path);
}

/* ---- cost --------------------------------------------------------------------------- */

static void test_cost(void) {
    unsetenv("OPENAI_API_KEY");
    unsetenv("ANTHROPIC_API_KEY");
    registry *r = load_ok(json_loads(registry_default_json(), 0, NULL));
    /* gpt-4.1-mini: $0.40 in, $0.10 cached, $1.60 out. OpenAI's input includes the cached
     * tokens: 600k plain * 0.4 + 400k cached * 0.1 + 100k out * 1.6 = 0.24 + 0.04 + 0.16. */
    llm_usage u = {.input_tokens = 1000000, .output_tokens = 100000, .cache_read_tokens = 400000};
    CU_ASSERT_DOUBLE_EQUAL(registry_cost(registry_find(r, "gpt-4.1-mini"), &u), 0.44, 1e-9);
    /* claude-sonnet-4.5: $3 in, $0.30 read, $3.75 write, $15 out. Anthropic's input excludes
     * cache reads: 1M * 3 + 2M * 0.3 + 100k * 3.75 + 50k * 15 = 3 + 0.6 + 0.375 + 0.75. */
    u = (llm_usage){.input_tokens = 1000000,
                    .output_tokens = 50000,
                    .cache_read_tokens = 2000000,
                    .cache_write_tokens = 100000};
    CU_ASSERT_DOUBLE_EQUAL(registry_cost(registry_find(r, "claude-sonnet-4.5"), &u), 4.725, 1e-9);
    /* claude-haiku-4.5, small numbers: 1234 * 1 + 56 * 5 = 1514 micro-dollars. */
    u = (llm_usage){.input_tokens = 1234, .output_tokens = 56};
    CU_ASSERT_DOUBLE_EQUAL(registry_cost(registry_find(r, "claude-haiku-4.5"), &u), 0.001514,
                           1e-12);
    /* A report with more cached than input tokens never goes negative. */
    u = (llm_usage){.input_tokens = 10, .cache_read_tokens = 1000000};
    CU_ASSERT_DOUBLE_EQUAL(registry_cost(registry_find(r, "gpt-4o"), &u), 1.25, 1e-9);
    u = (llm_usage){0};
    CU_ASSERT_DOUBLE_EQUAL(registry_cost(registry_find(r, "o3"), &u), 0.0, 1e-15);
    /* gemini-2.5-flash: $0.30 in, $0.03 cached, $2.50 out (thoughts included, as the adapter
     * reports them). Gemini's input includes the cached tokens, like OpenAI's:
     * 800k plain * 0.3 + 200k cached * 0.03 + 100k out * 2.5 = 0.24 + 0.006 + 0.25. */
    u = (llm_usage){.input_tokens = 1000000, .output_tokens = 100000, .cache_read_tokens = 200000};
    CU_ASSERT_DOUBLE_EQUAL(registry_cost(registry_find(r, "gemini-2.5-flash"), &u), 0.496, 1e-9);
    registry_free(r);
}

/* gemini-2.5-pro bills a whole answer at its long-context prices once the prompt passes
 * 200k tokens: $1.25 / $10 / $0.125 up to it, $2.50 / $15 / $0.25 above. */
static void test_cost_long_context_tier(void) {
    unsetenv("GEMINI_API_KEY");
    registry *r = load_ok(json_loads(registry_default_json(), 0, NULL));
    const model_info *pro = registry_find(r, "gemini-2.5-pro");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pro);
    /* 200k exactly is the short tier: 150k * 1.25 + 50k * 0.125 + 10k * 10. */
    llm_usage u = {.input_tokens = 200000, .output_tokens = 10000, .cache_read_tokens = 50000};
    CU_ASSERT_DOUBLE_EQUAL(registry_cost(pro, &u), 0.1875 + 0.00625 + 0.1, 1e-9);
    /* One more token: 150001 * 2.5 + 50k * 0.25 + 10k * 15. */
    u.input_tokens = 200001;
    CU_ASSERT_DOUBLE_EQUAL(registry_cost(pro, &u), 0.3750025 + 0.0125 + 0.15, 1e-9);
    CU_ASSERT_EQUAL(registry_prompt_tokens(pro, &u), 200001);
    /* Anthropic's prompt counts its cache reads and writes too. */
    const model_info *haiku = registry_find(r, "claude-haiku-4.5");
    u = (llm_usage){.input_tokens = 10, .cache_read_tokens = 20, .cache_write_tokens = 30};
    CU_ASSERT_EQUAL(registry_prompt_tokens(haiku, &u), 60);
    registry_free(r);
    /* A registry file's tier: prices default to the one-tier ones, the threshold is a count. */
    json_t *root = base();
    set_path(root, "models.m.long_context_threshold", json_integer(100));
    set_path(root, "models.m.long_output_price", json_real(8.0));
    r = load_ok(root);
    const model_info *m = registry_find(r, "m");
    CU_ASSERT_DOUBLE_EQUAL(m->long_input_price, m->input_price, 1e-12);
    u = (llm_usage){.input_tokens = 101, .output_tokens = 1000000};
    CU_ASSERT_DOUBLE_EQUAL(registry_cost(m, &u), 101 * m->input_price / 1e6 + 8.0, 1e-9);
    registry_free(r);
    expect_invalid("models.m.long_context_threshold", "-1",
                   "models.m.long_context_threshold: must be an integer in [0, 4294967295]");
    expect_invalid("models.m.long_input_price", "\"x\"",
                   "models.m.long_input_price: must be a number >= 0");
}

static void test_provider_kind_names(void) {
    provider_kind k;
    CU_ASSERT_EQUAL(provider_kind_parse("openai", &k), 0);
    CU_ASSERT_EQUAL(k, PROVIDER_OPENAI);
    CU_ASSERT_EQUAL(provider_kind_parse("anthropic", &k), 0);
    CU_ASSERT_EQUAL(k, PROVIDER_ANTHROPIC);
    CU_ASSERT_EQUAL(provider_kind_parse("gemini", &k), 0);
    CU_ASSERT_EQUAL(k, PROVIDER_GEMINI);
    CU_ASSERT_EQUAL(provider_kind_parse("OpenAI", &k), -1);
    CU_ASSERT_EQUAL(provider_kind_parse(NULL, &k), -1);
    CU_ASSERT_STRING_EQUAL(provider_kind_name(PROVIDER_OPENAI), "openai");
    CU_ASSERT_STRING_EQUAL(provider_kind_name(PROVIDER_ANTHROPIC), "anthropic");
    CU_ASSERT_STRING_EQUAL(provider_kind_name(PROVIDER_GEMINI), "gemini");
}

/* A gemini key and model with no base_url get Google's endpoint. */
static void test_gemini_defaults(void) {
    json_t *root = base();
    set_path(root, "keys.g", json_pack("{s:s,s:s}", "provider", "gemini", "env", ENV_VAR));
    set_path(root, "models.g",
             json_pack("{s:s,s:s,s:s,s:f,s:f,s:i}", "provider", "gemini", "upstream",
                       "gemini-2.5-flash", "key", "g", "input_price", 0.3, "output_price", 2.5,
                       "context_window", 1048576));
    registry *r = load_ok(root);
    const model_info *g = registry_find(r, "g");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL(g->provider, PROVIDER_GEMINI);
    CU_ASSERT_STRING_EQUAL(g->base_url, "https://generativelanguage.googleapis.com/v1beta");
    CU_ASSERT_EQUAL(registry_model_key(r, g)->provider, PROVIDER_GEMINI);
    registry_free(r);
    /* A gemini model on an OpenAI key is refused, naming both. */
    expect_invalid("models.m.provider", "\"gemini\"",
                   "models.m.key: key 'k' is for provider openai, the model is gemini");
}

int main(void) {
    static const test_case tests[] = {
        {"default_registry", test_default_registry},
        {"defaults", test_defaults},
        {"unknown_fields", test_unknown_fields},
        {"bad_values", test_bad_values},
        {"unknown_key_reference", test_unknown_key_reference},
        {"provider_mismatch", test_provider_mismatch},
        {"secret_from_env", test_secret_from_env},
        {"secret_from_file", test_secret_from_file},
        {"secret_file_missing", test_secret_file_missing},
        {"secret_never_in_errors", test_secret_never_in_errors},
        {"load_file", test_load_file},
        {"cost", test_cost},
        {"cost_long_context_tier", test_cost_long_context_tier},
        {"gemini_defaults", test_gemini_defaults},
        {"provider_kind_names", test_provider_kind_names},
        {NULL, NULL},
    };
    return test_run_suite("registry", tests);
}
