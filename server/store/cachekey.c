/*
 * Cache and dedup keys: SHA-256 over a canonical, length-prefixed encoding of the structs.
 *
 * Canonical encoding (streamed into one EVP SHA-256 context, nothing buffered):
 *   domain   the bytes "sluice.cachekey.model\0" or "sluice.cachekey.dedup\0", then the
 *            key-schema version as u32 big-endian; the two domains never collide.
 *   item     one tag byte (enum tag below, fixed per field) followed by a value:
 *     u64    8 bytes big-endian (enums, counts, booleans, integers)
 *     f64    the IEEE-754 bits as u64 big-endian (-0.0 folded into +0.0, so "exactly the same
 *            double" and nothing looser)
 *     str    u64 length then the bytes; NULL is the length UINT64_MAX with no bytes, so NULL
 *            and "" differ
 *     json   a form byte ('J' canonical, 'R' raw) then a str. JSON texts (tool parameters,
 *            output schema, tool-call arguments) are parsed and re-serialised with
 *            JSON_SORT_KEYS|JSON_COMPACT, so member order and whitespace do not matter; an
 *            unparsable text is hashed raw (form 'R', so it can never equal a canonical one).
 * Every field of every struct is written in a fixed order, arrays are preceded by their
 * count, so the encoding is prefix-free: two different inputs never give the same bytes.
 *
 * The model key covers the effective sampling values (after llm_sampling_merge), never the
 * `set` mask, so "temperature unset" and "temperature = 1.0 (the default)" give the same
 * key. The dedup key merges each model's sampling with the prompt's overrides the same way,
 * so equivalent configurations dedup together.
 *
 * Pure; any thread. Bump CACHEKEY_SCHEMA_VERSION whenever this encoding changes.
 */
#include "server/store/cachekey.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

enum tag {
    T_TENANT = 1,
    T_PROVIDER,
    T_MODEL,
    T_N_MESSAGES,
    T_ROLE,
    T_N_PARTS,
    T_PART_KIND,
    T_PART_TEXT,
    T_PART_ID,
    T_PART_NAME,
    T_PART_ARGUMENTS,
    T_PART_URL,
    T_PART_DATA,
    T_PART_MEDIA_TYPE,
    T_PART_DETAIL,
    T_PART_SIGNATURE,
    T_PART_IS_ERROR,
    T_N_TOOLS,
    T_TOOL_NAME,
    T_TOOL_DESCRIPTION,
    T_TOOL_PARAMETERS,
    T_TOOL_STRICT,
    T_SCHEMA_NAME,
    T_OUTPUT_SCHEMA,
    T_TEMPERATURE,
    T_TOP_P,
    T_MAX_NEW_TOKENS,
    T_N_STOP,
    T_STOP,
    T_EFFORT,
    T_THINKING_BUDGET,
    T_JSON_MODE,
    T_PREFER_MODEL,
    T_N_MODELS,
    T_WEIGHT,
};

static void put_raw(EVP_MD_CTX *h, const void *p, size_t n) {
    if (n)
        EVP_DigestUpdate(h, p, n);
}

static void put_be64(EVP_MD_CTX *h, uint64_t v) {
    uint8_t b[8];
    for (int i = 7; i >= 0; i--, v >>= 8)
        b[i] = (uint8_t)v;
    put_raw(h, b, 8);
}

static void put_u64(EVP_MD_CTX *h, enum tag t, uint64_t v) {
    uint8_t tb = (uint8_t)t;
    put_raw(h, &tb, 1);
    put_be64(h, v);
}

static void put_f64(EVP_MD_CTX *h, enum tag t, double d) {
    uint64_t bits;
    if (d == 0)
        d = 0.0; /* -0.0 == 0.0: one encoding */
    memcpy(&bits, &d, sizeof bits);
    put_u64(h, t, bits);
}

static void put_bytes(EVP_MD_CTX *h, enum tag t, const void *p, size_t n, int present) {
    put_u64(h, t, present ? (uint64_t)n : UINT64_MAX);
    if (present)
        put_raw(h, p, n);
}

static void put_str(EVP_MD_CTX *h, enum tag t, const char *s) {
    put_bytes(h, t, s, s ? strlen(s) : 0, s != NULL);
}

static void put_json(EVP_MD_CTX *h, enum tag t, const char *text) {
    uint8_t form = 'R';
    char *canon = NULL;
    if (text) {
        json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
        if (j)
            canon = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(j);
        if (canon)
            form = 'J';
    }
    put_raw(h, &form, 1);
    put_str(h, t, canon ? canon : text);
    free(canon);
}

static void put_part(EVP_MD_CTX *h, const llm_part *p) {
    put_u64(h, T_PART_KIND, (uint64_t)p->kind);
    put_str(h, T_PART_TEXT, p->text);
    put_str(h, T_PART_ID, p->id);
    put_str(h, T_PART_NAME, p->name);
    put_json(h, T_PART_ARGUMENTS, p->arguments);
    put_str(h, T_PART_URL, p->url);
    put_bytes(h, T_PART_DATA, p->data, p->data_len, p->data != NULL);
    put_str(h, T_PART_MEDIA_TYPE, p->media_type);
    put_str(h, T_PART_DETAIL, p->detail);
    put_str(h, T_PART_SIGNATURE, p->signature);
    put_u64(h, T_PART_IS_ERROR, p->is_error);
}

/* Everything in the request that reaches the provider, except sampling and prefer_model. */
static void put_request_body(EVP_MD_CTX *h, const llm_request *r) {
    put_u64(h, T_N_MESSAGES, r->n_messages);
    for (size_t i = 0; i < r->n_messages; i++) {
        const llm_message *m = &r->messages[i];
        put_u64(h, T_ROLE, (uint64_t)m->role);
        put_u64(h, T_N_PARTS, m->n_parts);
        for (size_t j = 0; j < m->n_parts; j++)
            put_part(h, &m->parts[j]);
    }
    put_u64(h, T_N_TOOLS, r->n_tools);
    for (size_t i = 0; i < r->n_tools; i++) {
        put_str(h, T_TOOL_NAME, r->tools[i].name);
        put_str(h, T_TOOL_DESCRIPTION, r->tools[i].description);
        put_json(h, T_TOOL_PARAMETERS, r->tools[i].parameters);
        put_u64(h, T_TOOL_STRICT, r->tools[i].strict);
    }
    put_str(h, T_SCHEMA_NAME, r->schema_name);
    put_json(h, T_OUTPUT_SCHEMA, r->output_schema);
}

/* The values of a merged (effective) sampling; the `set` mask is deliberately left out. */
static void put_sampling_values(EVP_MD_CTX *h, const llm_sampling *s) {
    put_f64(h, T_TEMPERATURE, s->temperature);
    put_f64(h, T_TOP_P, s->top_p);
    put_u64(h, T_MAX_NEW_TOKENS, s->max_new_tokens);
    size_t n_stop = s->n_stop < LLM_MAX_STOP ? s->n_stop : LLM_MAX_STOP;
    put_u64(h, T_N_STOP, n_stop);
    for (size_t i = 0; i < n_stop; i++)
        put_str(h, T_STOP, s->stop[i]);
    put_u64(h, T_EFFORT, (uint64_t)s->effort);
    put_u64(h, T_THINKING_BUDGET, s->thinking_budget);
    put_u64(h, T_JSON_MODE, s->json_mode);
}

static EVP_MD_CTX *begin(const char *domain) {
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    if (!h || EVP_DigestInit_ex(h, EVP_sha256(), NULL) != 1)
        abort(); /* out of memory or a broken libcrypto: nothing sensible to do */
    put_raw(h, domain, strlen(domain) + 1);
    uint8_t v[4] = {0, 0, 0, CACHEKEY_SCHEMA_VERSION};
    put_raw(h, v, sizeof v);
    return h;
}

static void finish(EVP_MD_CTX *h, cache_key *out) {
    unsigned len = 0;
    if (EVP_DigestFinal_ex(h, out->b, &len) != 1 || len != sizeof out->b)
        abort();
    EVP_MD_CTX_free(h);
}

void cachekey_for_model(const char *tenant, const char *provider, const char *model,
                        const llm_request *req, const llm_sampling *s, cache_key *out) {
    EVP_MD_CTX *h = begin("sluice.cachekey.model");
    put_str(h, T_TENANT, tenant);
    put_str(h, T_PROVIDER, provider);
    put_str(h, T_MODEL, model);
    put_request_body(h, req);
    /* s is the effective sampling: its values are what the provider is sent, so they are
     * hashed as they are (the `set` mask is not). NULL means all defaults. */
    llm_sampling defaults;
    llm_sampling_merge(&defaults, NULL, NULL);
    put_sampling_values(h, s ? s : &defaults);
    llm_sampling_cleanup(&defaults);
    finish(h, out);
}

void cachekey_for_dedup(const char *tenant, const llm_request *req, const char *const *models,
                        const double *weights, const llm_sampling *const *samplings,
                        size_t n_models, cache_key *out) {
    EVP_MD_CTX *h = begin("sluice.cachekey.dedup");
    put_str(h, T_TENANT, tenant);
    put_request_body(h, req);
    put_str(h, T_PREFER_MODEL, req->prefer_model);
    put_u64(h, T_N_MODELS, n_models);
    for (size_t i = 0; i < n_models; i++) {
        put_str(h, T_MODEL, models ? models[i] : NULL);
        put_f64(h, T_WEIGHT, weights ? weights[i] : 1.0);
        llm_sampling eff;
        llm_sampling_merge(&eff, samplings ? samplings[i] : NULL, &req->sampling);
        put_sampling_values(h, &eff);
        llm_sampling_cleanup(&eff);
    }
    finish(h, out);
}

void cachekey_hex(const cache_key *k, char out[65]) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof k->b; i++) {
        out[2 * i] = digits[k->b[i] >> 4];
        out[2 * i + 1] = digits[k->b[i] & 15];
    }
    out[64] = '\0';
}
