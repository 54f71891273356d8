/*
 * registry.c - the model registry: JSON -> validated, immutable tables.
 *
 * Design: one pass over "keys" then one over "models", each object checked against a
 * list of allowed fields so a typo is an error naming its path ("models.x.input_pric:
 * unknown field") instead of a silently ignored setting. Models refer to keys by name;
 * the reference and the provider match are checked here so the dispatcher never has to.
 * Secrets are resolved once, at load: the environment variable first, then the file
 * (trailing whitespace trimmed, at most SECRET_FILE_MAX bytes). A secret is never written
 * into an error message, may hold no control characters (it ends up in a header line) and
 * is wiped from memory when the registry is freed. The only I/O is reading the registry
 * file and secret files; there is no clock and no global state, and a loaded registry is
 * read-only, so any thread may use it.
 */
#include "server/providers/registry.h"

#include "server/common/alloc.h"
#include "server/common/secret.h"
#include "server/providers/wire.h"
#include "sluice/status.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET_FILE_MAX 16384
#define DEFAULT_OPENAI_BASE "https://api.openai.com/v1"
#define DEFAULT_ANTHROPIC_BASE "https://api.anthropic.com/v1"
#define DEFAULT_GEMINI_BASE "https://generativelanguage.googleapis.com/v1beta"
#define DEFAULT_RPM 500u
#define DEFAULT_TPM 200000u
#define DEFAULT_CONCURRENT 100u

/* Error context: `path` is the JSON path of the object being read ("models.gpt-4.1"). */
typedef struct reg_ctx {
    char *err;
    size_t errlen;
    const char *path;
} reg_ctx;

static int fail(reg_ctx *c, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(reg_ctx *c, const char *field, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *sep = *c->path && field ? "." : "";
    snprintf(c->err, c->errlen, "%s%s%s: %s", c->path, sep, field ? field : "", msg);
    return SLUICE_EINVAL;
}

static int check_fields(reg_ctx *c, const json_t *obj, const char *const *allowed) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], k) != 0)
            i++;
        if (!allowed[i])
            return fail(c, k, "unknown field");
    }
    return SLUICE_OK;
}

/* A printable, non-empty string field. *out stays NULL when absent and not required. */
static int get_string(reg_ctx *c, const json_t *obj, const char *f, bool required,
                      const char **out) {
    json_t *v = json_object_get(obj, f);
    *out = NULL;
    if (!v)
        return required ? fail(c, f, "is required") : SLUICE_OK;
    if (!json_is_string(v) || !*json_string_value(v) || !wire_is_printable(json_string_value(v)))
        return fail(c, f, "must be a non-empty string without control characters");
    *out = json_string_value(v);
    return SLUICE_OK;
}

static int get_u32(reg_ctx *c, const json_t *obj, const char *f, uint32_t min, uint32_t def,
                   bool required, uint32_t *out) {
    json_t *v = json_object_get(obj, f);
    *out = def;
    if (!v)
        return required ? fail(c, f, "is required") : SLUICE_OK;
    if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)min ||
        json_integer_value(v) > (json_int_t)UINT32_MAX)
        return fail(c, f, "must be an integer in [%u, %u]", min, UINT32_MAX);
    *out = (uint32_t)json_integer_value(v);
    return SLUICE_OK;
}

static int get_price(reg_ctx *c, const json_t *obj, const char *f, bool required, double def,
                     double *out) {
    json_t *v = json_object_get(obj, f);
    *out = def;
    if (!v)
        return required ? fail(c, f, "is required") : SLUICE_OK;
    if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < 0)
        return fail(c, f, "must be a number >= 0");
    *out = json_number_value(v);
    return SLUICE_OK;
}

static int get_bool(reg_ctx *c, const json_t *obj, const char *f, bool def, bool *out) {
    json_t *v = json_object_get(obj, f);
    *out = def;
    if (!v)
        return SLUICE_OK;
    if (!json_is_boolean(v))
        return fail(c, f, "must be true or false");
    *out = json_is_true(v);
    return SLUICE_OK;
}

static int get_provider(reg_ctx *c, const json_t *obj, provider_kind *out) {
    const char *s;
    int rc = get_string(c, obj, "provider", true, &s);
    if (rc)
        return rc;
    if (provider_kind_parse(s, out) != 0)
        return fail(c, "provider", "must be \"openai\", \"anthropic\" or \"gemini\"");
    return SLUICE_OK;
}

/* ---- secrets ------------------------------------------------------------------------ */

static void trim_trailing_space(char *s) {
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r' ||
                     s[n - 1] == '\v' || s[n - 1] == '\f'))
        s[--n] = '\0';
}

/* Checks and stores a secret of `len` bytes taken from `source` (a description such as
 * "env X"). A NUL byte inside counts as a control character: it would cut the secret short
 * and leave its tail out of the wipe. */
static int store_secret(reg_ctx *c, const char *field, char *secret, size_t len, const char *source,
                        upstream_key *k) {
    bool nul_inside = strlen(secret) != len;
    trim_trailing_space(secret);
    const char *problem = NULL;
    if (nul_inside || !wire_is_printable(secret))
        problem = "holds control characters";
    else if (!*secret)
        problem = "is empty";
    if (problem) {
        secret_free(secret, len);
        return fail(c, field, "the secret from %s %s", source, problem);
    }
    k->secret = secret;
    k->secret_source = xstrdup(source);
    return SLUICE_OK;
}

static int resolve_secret(reg_ctx *c, const char *env, const char *file, upstream_key *k) {
    char source[1024];
    const char *v = env ? getenv(env) : NULL;
    if (v && *v) {
        snprintf(source, sizeof source, "env %s", env);
        return store_secret(c, "env", xstrdup(v), strlen(v), source, k);
    }
    if (file) {
        char *data, why[512];
        size_t len;
        if (secret_read_file(file, SECRET_FILE_MAX, &data, &len, why, sizeof why) != SLUICE_OK)
            return fail(c, "file", "%s", why);
        snprintf(source, sizeof source, "file %s", file);
        return store_secret(c, "file", data, len, source, k);
    }
    /* Not an error: the key's models are listed as unavailable until it is configured. */
    k->secret_source = xasprintf("env %s (unset)", env);
    return SLUICE_OK;
}

/* ---- keys and models ---------------------------------------------------------------- */

static const char *const key_fields[] = {
    "provider", "env", "file", "requests_per_minute", "tokens_per_minute", "max_concurrent", NULL};

static int parse_key(reg_ctx *c, const char *name, const json_t *obj, upstream_key *k) {
    k->name = xstrdup(name);
    if (!json_is_object(obj))
        return fail(c, NULL, "must be an object");
    const char *env, *file;
    int rc = check_fields(c, obj, key_fields);
    if (!rc)
        rc = get_provider(c, obj, &k->provider);
    if (!rc)
        rc = get_string(c, obj, "env", false, &env);
    if (!rc)
        rc = get_string(c, obj, "file", false, &file);
    if (!rc && !env && !file)
        rc = fail(c, NULL, "needs \"env\" or \"file\" to name the secret");
    if (!rc)
        rc = get_u32(c, obj, "requests_per_minute", 1, DEFAULT_RPM, false, &k->requests_per_minute);
    if (!rc)
        rc = get_u32(c, obj, "tokens_per_minute", 1, DEFAULT_TPM, false, &k->tokens_per_minute);
    if (!rc)
        rc = get_u32(c, obj, "max_concurrent", 1, DEFAULT_CONCURRENT, false, &k->max_concurrent);
    if (!rc)
        rc = resolve_secret(c, env, file, k);
    return rc;
}

/* clang-format off */
static const char *const model_fields[] = {
    "provider", "upstream", "base_url", "key", "input_price", "output_price",
    "cached_input_price", "cache_write_price", "context_window", "max_output_tokens",
    "reasoning", "json_schema", "images", "long_context_threshold", "long_input_price",
    "long_output_price", "long_cached_input_price", NULL};
/* clang-format on */

static const char *default_base_url(provider_kind k) {
    switch (k) {
    case PROVIDER_ANTHROPIC:
        return DEFAULT_ANTHROPIC_BASE;
    case PROVIDER_GEMINI:
        return DEFAULT_GEMINI_BASE;
    case PROVIDER_OPENAI:
        break;
    }
    return DEFAULT_OPENAI_BASE;
}

static int parse_base_url(reg_ctx *c, const json_t *obj, model_info *m) {
    const char *url;
    int rc = get_string(c, obj, "base_url", false, &url);
    if (rc)
        return rc;
    if (!url)
        url = default_base_url(m->provider);
    size_t scheme = strncmp(url, "https://", 8) == 0 ? 8 : strncmp(url, "http://", 7) == 0 ? 7 : 0;
    if (!scheme || !url[scheme] || url[scheme] == '/' || strchr(url, ' '))
        return fail(c, "base_url", "must be an http:// or https:// URL");
    size_t n = strlen(url);
    while (n > scheme && url[n - 1] == '/')
        n--;
    m->base_url = xstrndup(url, n);
    return SLUICE_OK;
}

static int parse_model_key(reg_ctx *c, const json_t *obj, const registry *r, model_info *m) {
    const char *key;
    int rc = get_string(c, obj, "key", true, &key);
    if (rc)
        return rc;
    for (size_t i = 0; i < r->n_keys; i++) {
        if (strcmp(r->keys[i].name, key) != 0)
            continue;
        if (r->keys[i].provider != m->provider)
            return fail(c, "key", "key '%s' is for provider %s, the model is %s", key,
                        provider_kind_name(r->keys[i].provider), provider_kind_name(m->provider));
        m->key_index = i;
        return SLUICE_OK;
    }
    return fail(c, "key", "unknown key '%s' (not in \"keys\")", key);
}

static int parse_prices(reg_ctx *c, const json_t *obj, model_info *m) {
    int rc = get_price(c, obj, "input_price", true, 0, &m->input_price);
    if (!rc)
        rc = get_price(c, obj, "output_price", true, 0, &m->output_price);
    /* Without a listed discount a cache read or write is charged as plain input. */
    if (!rc)
        rc = get_price(c, obj, "cached_input_price", false, m->input_price, &m->cached_input_price);
    if (!rc)
        rc = get_price(c, obj, "cache_write_price", false, m->input_price, &m->cache_write_price);
    /* A second tier for long prompts; each price defaults to its one-tier counterpart. */
    if (!rc)
        rc = get_u32(c, obj, "long_context_threshold", 0, 0, false, &m->long_context_threshold);
    if (!rc)
        rc = get_price(c, obj, "long_input_price", false, m->input_price, &m->long_input_price);
    if (!rc)
        rc = get_price(c, obj, "long_output_price", false, m->output_price, &m->long_output_price);
    if (!rc)
        rc = get_price(c, obj, "long_cached_input_price", false, m->cached_input_price,
                       &m->long_cached_input_price);
    return rc;
}

static int parse_model(reg_ctx *c, const char *name, const json_t *obj, const registry *r,
                       model_info *m) {
    m->name = xstrdup(name);
    if (!json_is_object(obj))
        return fail(c, NULL, "must be an object");
    const char *upstream;
    int rc = check_fields(c, obj, model_fields);
    if (!rc)
        rc = get_provider(c, obj, &m->provider);
    if (!rc)
        rc = get_string(c, obj, "upstream", true, &upstream);
    if (!rc) {
        m->upstream_model = xstrdup(upstream);
        rc = parse_base_url(c, obj, m);
    }
    if (!rc)
        rc = parse_model_key(c, obj, r, m);
    if (!rc)
        rc = parse_prices(c, obj, m);
    if (!rc)
        rc = get_u32(c, obj, "context_window", 1, 0, true, &m->context_window);
    if (!rc)
        rc = get_u32(c, obj, "max_output_tokens", 0, 0, false, &m->max_output_tokens);
    if (!rc)
        rc = get_bool(c, obj, "reasoning", false, &m->reasoning);
    if (!rc)
        rc = get_bool(c, obj, "json_schema", false, &m->json_schema);
    if (!rc)
        rc = get_bool(c, obj, "images", false, &m->images);
    return rc;
}

/* ---- registry ----------------------------------------------------------------------- */

static int parse_section(reg_ctx *c, const json_t *root, const char *section, bool non_empty,
                         const json_t **out) {
    *out = json_object_get(root, section);
    if (!*out)
        return fail(c, section, "is required");
    if (!json_is_object(*out) || (non_empty && json_object_size(*out) == 0))
        return fail(c, section, non_empty ? "must be a non-empty object" : "must be an object");
    return SLUICE_OK;
}

/* Runs `parse` on each member of `section` ("keys" or "models"), with the error path set
 * to "<section>.<name>"; `noun` names the members in the error for an unprintable name. */
static int parse_members(reg_ctx *c, const json_t *obj, const char *section, const char *noun,
                         registry *r,
                         int (*parse)(reg_ctx *c, const char *name, const json_t *v, registry *r)) {
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)obj, name, v) {
        char path[512];
        snprintf(path, sizeof path, "%s.%s", section, name);
        c->path = path;
        if (!*name || !wire_is_printable(name))
            return fail(c, NULL, "%s names must be non-empty and printable", noun);
        int rc = parse(c, name, v, r);
        if (rc)
            return rc;
    }
    return SLUICE_OK;
}

static int add_key(reg_ctx *c, const char *name, const json_t *v, registry *r) {
    return parse_key(c, name, v, &r->keys[r->n_keys++]);
}

static int add_model(reg_ctx *c, const char *name, const json_t *v, registry *r) {
    return parse_model(c, name, v, r, &r->models[r->n_models++]);
}

int registry_from_json(const json_t *root, registry **out, char *err, size_t errlen) {
    static const char *const top_fields[] = {"keys", "models", NULL};
    reg_ctx c = {.err = err, .errlen = errlen, .path = ""};
    *out = NULL;
    if (!json_is_object(root)) {
        snprintf(err, errlen, "registry: must be a JSON object");
        return SLUICE_EINVAL;
    }
    const json_t *keys, *models;
    int rc = check_fields(&c, root, top_fields);
    if (!rc)
        rc = parse_section(&c, root, "keys", false, &keys);
    if (!rc)
        rc = parse_section(&c, root, "models", true, &models);
    registry *r = XNEW(registry);
    if (!rc) {
        r->keys = XNEWV(upstream_key, json_object_size(keys));
        rc = parse_members(&c, keys, "keys", "key", r, add_key);
    }
    if (!rc) {
        r->models = XNEWV(model_info, json_object_size(models));
        rc = parse_members(&c, models, "models", "model", r, add_model);
    }
    if (rc) {
        registry_free(r);
        return rc;
    }
    *out = r;
    return SLUICE_OK;
}

int registry_load_file(const char *path, registry **out, char *err, size_t errlen) {
    *out = NULL;
    json_error_t e;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
    if (!root) {
        /* jansson quotes the text near the error; cut it so no value leaks into a log. */
        char *near = strstr(e.text, " near ");
        if (near)
            *near = '\0';
        if (e.line > 0)
            snprintf(err, errlen, "%s:%d:%d: %s", path, e.line, e.column, e.text);
        else
            snprintf(err, errlen, "%s: %s", path, e.text);
        return SLUICE_EINVAL;
    }
    char inner[768];
    int rc = registry_from_json(root, out, inner, sizeof inner);
    json_decref(root);
    if (rc)
        snprintf(err, errlen, "%s: %s", path, inner);
    return rc;
}

void registry_free(registry *r) {
    if (!r)
        return;
    for (size_t i = 0; i < r->n_models; i++) {
        free(r->models[i].name);
        free(r->models[i].upstream_model);
        free(r->models[i].base_url);
    }
    free(r->models);
    for (size_t i = 0; i < r->n_keys; i++) {
        if (r->keys[i].secret)
            secret_free(r->keys[i].secret, strlen(r->keys[i].secret));
        free(r->keys[i].secret_source);
        free(r->keys[i].name);
    }
    free(r->keys);
    free(r);
}

const model_info *registry_find(const registry *r, const char *name) {
    if (!r || !name)
        return NULL;
    for (size_t i = 0; i < r->n_models; i++)
        if (strcmp(r->models[i].name, name) == 0)
            return &r->models[i];
    return NULL;
}

const upstream_key *registry_model_key(const registry *r, const model_info *m) {
    return &r->keys[m->key_index];
}

bool registry_model_available(const registry *r, const model_info *m) {
    return registry_model_key(r, m)->secret != NULL;
}

uint64_t registry_prompt_tokens(const model_info *m, const llm_usage *u) {
    if (m->provider == PROVIDER_ANTHROPIC)
        return u->input_tokens + u->cache_read_tokens + u->cache_write_tokens;
    return u->input_tokens;
}

double registry_cost(const model_info *m, const llm_usage *u) {
    /* Anthropic reports cache reads apart from input_tokens; OpenAI and Gemini count them
     * inside. */
    uint64_t plain = u->input_tokens;
    if (m->provider != PROVIDER_ANTHROPIC)
        plain = u->input_tokens > u->cache_read_tokens ? u->input_tokens - u->cache_read_tokens : 0;
    /* Gemini 2.5 Pro bills a whole answer at its long-context prices once the prompt passes
     * 200k tokens; a cache write has no long-context price of its own. */
    bool long_ctx =
        m->long_context_threshold && registry_prompt_tokens(m, u) > m->long_context_threshold;
    double in = long_ctx ? m->long_input_price : m->input_price;
    double out = long_ctx ? m->long_output_price : m->output_price;
    double cached = long_ctx ? m->long_cached_input_price : m->cached_input_price;
    return ((double)plain * in + (double)u->output_tokens * out +
            (double)u->cache_read_tokens * cached +
            (double)u->cache_write_tokens * m->cache_write_price) /
           1e6;
}

const char *provider_kind_name(provider_kind k) {
    switch (k) {
    case PROVIDER_OPENAI:
        return "openai";
    case PROVIDER_ANTHROPIC:
        return "anthropic";
    case PROVIDER_GEMINI:
        return "gemini";
    }
    return "unknown";
}

int provider_kind_parse(const char *name, provider_kind *out) {
    if (name && strcmp(name, "openai") == 0)
        *out = PROVIDER_OPENAI;
    else if (name && strcmp(name, "anthropic") == 0)
        *out = PROVIDER_ANTHROPIC;
    else if (name && strcmp(name, "gemini") == 0)
        *out = PROVIDER_GEMINI;
    else
        return -1;
    return 0;
}
