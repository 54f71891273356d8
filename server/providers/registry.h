/*
 * registry.h - the model registry and upstream keys, loaded from JSON (jansson).
 *
 * A registry maps model names (what sessions ask for) to a provider, the upstream model
 * id, a base URL, prices and a context window, and names the upstream API key each model
 * uses. Keys carry the provider account's limits (requests/min, tokens/min, concurrency)
 * that the dispatcher paces to. Secrets are read once at load from an environment variable
 * or a file and are never logged or copied into messages.
 *
 * JSON form (every unknown key is an error naming it; see registry_default_json() for the
 * built-in registry of current OpenAI, Anthropic and Gemini models):
 *   {
 *     "keys": {
 *       "<key name>": { "provider": "openai"|"anthropic"|"gemini",
 *                       "env": "OPENAI_API_KEY"   (and/or)   "file": "/path/to/secret",
 *                       "requests_per_minute": 5000, "tokens_per_minute": 2000000,
 *                       "max_concurrent": 500 }, ...
 *     },
 *     "models": {
 *       "<model name>": { "provider": "openai"|"anthropic"|"gemini",
 *                         "upstream": "<provider model id>",
 *                         "base_url": "https://api.openai.com/v1", "key": "<key name>",
 *                         "input_price": 0.4, "output_price": 1.6,
 *                         "cached_input_price": 0.1, "cache_write_price": 0,
 *                         "context_window": 1047576, "max_output_tokens": 32768,
 *                         "reasoning": false, "json_schema": true, "images": true,
 *                         "long_context_threshold": 200000, "long_input_price": 2.5,
 *                         "long_output_price": 15, "long_cached_input_price": 0.25 }, ...
 *     }
 *   }
 * Prices are USD per million tokens. A model priced by prompt size (Gemini 2.5 Pro) names
 * the prompt size above which its long_* prices apply (long_context_threshold, 0 = one tier).
 * Required: keys.*.provider and env or file; models.*.provider, upstream, key, input_price,
 * output_price, context_window. Defaults: base_url https://api.openai.com/v1,
 * https://api.anthropic.com/v1 or https://generativelanguage.googleapis.com/v1beta by
 * provider (trailing slashes dropped); requests_per_minute 500, tokens_per_minute 200000,
 * max_concurrent 100; cached_input_price and cache_write_price = input_price;
 * max_output_tokens 0; reasoning, json_schema, images false; long_context_threshold 0;
 * long_input_price, long_output_price, long_cached_input_price = their one-tier prices.
 * A key whose env variable is unset or empty and that names no file has no secret (its
 * models are unavailable, not an error); a named file that cannot be read, or a
 * secret that is empty after trimming trailing whitespace or holds control characters, is
 * an error naming the variable or file, never the secret.
 *
 * Thread safety: a loaded registry is immutable; any thread may read it.
 */
#ifndef SLUICE_PROVIDERS_REGISTRY_H
#define SLUICE_PROVIDERS_REGISTRY_H

#include "server/common/llm.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum provider_kind {
    PROVIDER_OPENAI = 1,    /* OpenAI-compatible chat completions */
    PROVIDER_ANTHROPIC = 2, /* Anthropic messages */
    PROVIDER_GEMINI = 3,    /* Gemini generateContent */
} provider_kind;

typedef struct upstream_key {
    char *name;
    provider_kind provider;
    char *secret;        /* NULL when neither env nor file provided one; never log */
    char *secret_source; /* "env OPENAI_API_KEY" / "file /run/secrets/x", for messages */
    uint32_t requests_per_minute;
    uint32_t tokens_per_minute;
    uint32_t max_concurrent;
} upstream_key;

typedef struct model_info {
    char *name;
    provider_kind provider;
    char *upstream_model;
    char *base_url;     /* without trailing slash */
    size_t key_index;   /* into registry.keys */
    double input_price; /* USD per million tokens */
    double output_price;
    double cached_input_price;
    double cache_write_price;
    uint32_t context_window;
    uint32_t max_output_tokens; /* 0 = unknown */
    bool reasoning;             /* accepts reasoning effort / thinking */
    bool json_schema;           /* supports structured output natively */
    bool images;                /* accepts image parts */
    /* Prices for prompts above long_context_threshold tokens (0 = one price tier). */
    uint32_t long_context_threshold;
    double long_input_price;
    double long_output_price;
    double long_cached_input_price;
} model_info;

typedef struct registry {
    model_info *models;
    size_t n_models;
    upstream_key *keys;
    size_t n_keys;
} registry;

/* Builds a registry from parsed JSON. Secrets are resolved now (env first, then file).
 * Returns SLUICE_OK, or SLUICE_EINVAL with a message naming the offending key path
 * ("models.gpt-x.key: unknown key 'foo'") in err. Caller frees with registry_free. */
int registry_from_json(const json_t *root, registry **out, char *err, size_t errlen);
/* Reads and parses a JSON file, then registry_from_json. Errors name the file. */
int registry_load_file(const char *path, registry **out, char *err, size_t errlen);
/* The built-in registry (current OpenAI, Anthropic and Gemini models) as JSON text. Static. */
const char *registry_default_json(void);
/* Frees a registry. NULL-safe. */
void registry_free(registry *r);

/* Finds a model by name; NULL when unknown. */
const model_info *registry_find(const registry *r, const char *name);
/* The key a model uses. */
const upstream_key *registry_model_key(const registry *r, const model_info *m);
/* True when the model's key has a secret. */
bool registry_model_available(const registry *r, const model_info *m);
/* Cost in USD of an answer with this usage, lm-deluge's formula: Anthropic input tokens
 * exclude cache reads, OpenAI and Gemini input tokens include them (Gemini's output tokens
 * include its thoughts tokens, billed as output). The long_* prices apply to every token of
 * an answer whose prompt (input plus cached tokens) exceeds long_context_threshold. Pure. */
double registry_cost(const model_info *m, const llm_usage *u);
/* The number of prompt tokens of a usage: input plus cache reads and writes for Anthropic,
 * input alone for the others (whose input counts its cached tokens). Pure. */
uint64_t registry_prompt_tokens(const model_info *m, const llm_usage *u);
/* "openai" / "anthropic" / "gemini"; parse returns 0 or -1. */
const char *provider_kind_name(provider_kind k);
int provider_kind_parse(const char *name, provider_kind *out);

#endif
