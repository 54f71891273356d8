/*
 * cachekey.h - cache and dedup keys that are correct by construction.
 *
 * A key is SHA-256 (OpenSSL) over a canonical encoding of everything that changes the
 * answer, prefixed by a key-schema version. The encoding is built from the internal
 * structs (not from client bytes), with JSON texts (tool schemas, output schema, tool
 * arguments) re-serialised with sorted keys, so the same request built in a different
 * field order gives the same key, and any change of an input that matters gives another.
 *
 * Pure functions; any thread.
 */
#ifndef SLUICE_STORE_CACHEKEY_H
#define SLUICE_STORE_CACHEKEY_H

#include "server/common/llm.h"

#include <stddef.h>
#include <stdint.h>

#define CACHEKEY_SCHEMA_VERSION 1

typedef struct cache_key {
    uint8_t b[32];
} cache_key;

/* Key of the answer that `model` (of `provider`, e.g. "openai") gives to `req` with the
 * effective sampling `s`, for `tenant` (cache entries never cross tenants). Covers:
 * schema version, tenant, provider, model, every message and part, tools, output schema
 * and every sampling field. Not covered (they do not change the answer): prefer_model,
 * the per-prompt override mask (its values are already merged into `s`). */
void cachekey_for_model(const char *tenant, const char *provider, const char *model,
                        const llm_request *req, const llm_sampling *s, cache_key *out);

/* Key that identifies "the same prompt on the same model choice" for in-flight dedup:
 * tenant, the request (prefer_model and per-prompt overrides included) and, in order,
 * each allowed model's name, weight and sampling. */
void cachekey_for_dedup(const char *tenant, const llm_request *req, const char *const *models,
                        const double *weights, const llm_sampling *const *samplings,
                        size_t n_models, cache_key *out);

/* Lowercase hex of a key into out (65 bytes). */
void cachekey_hex(const cache_key *k, char out[65]);

#endif
