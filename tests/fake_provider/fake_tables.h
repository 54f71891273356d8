/*
 * fake_tables.h - the bounded tables inside fake_state: per-key limiter state and arrival
 * logs, per-model counters, per-body counters.
 *
 * Plain data structures with no lock of their own: fake_state holds its mutex around every
 * call. Bounds come from fake_state.h (FAKE_MAX_KEYS, FAKE_MAX_MODELS, FAKE_MAX_HASHES).
 */
#ifndef SLUICE_TESTS_FAKE_TABLES_H
#define SLUICE_TESTS_FAKE_TABLES_H

#include "tests/fake_provider/fake_limits.h"
#include "tests/fake_provider/fake_provider.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- keys: limits, buckets, arrival logs ------------------------------------------- */

typedef struct fake_key_state {
    char *key;
    bool custom; /* has its own limits (else the table defaults) */
    bool dirty;  /* buckets must be rebuilt (start full) */
    uint32_t rpm, tpm, window_ms;
    uint64_t built_gen;
    fake_bucket req, tok;
    fake_log_entry *log; /* ring */
    size_t log_head, log_n;
} fake_key_state;

typedef struct fake_key_table {
    fake_key_state *v;
    size_t n;
    uint32_t rpm, tpm, window_ms; /* defaults */
    uint64_t gen;                 /* bumped when the defaults change */
    bool log_on;
    size_t log_cap;
} fake_key_table;

void fake_keys_init(fake_key_table *t, uint32_t rpm, uint32_t tpm, uint32_t window_ms);
void fake_keys_cleanup(fake_key_table *t);
/* key NULL sets the defaults. */
void fake_keys_set_limits(fake_key_table *t, const char *key, uint32_t rpm, uint32_t tpm,
                          uint32_t window_ms);
/* Changing the capacity clears every log. */
void fake_keys_set_log(fake_key_table *t, bool on, size_t capacity);
/* Runs the key's limiter and logs the arrival (t_ms: time since the fake started). Keys
 * beyond FAKE_MAX_KEYS are not limited. */
void fake_keys_admit(fake_key_table *t, const char *key, uint64_t tokens, uint64_t now_ms,
                     uint64_t t_ms, fake_verdict *v);
/* Refills every bucket and clears every log; limits are kept. */
void fake_keys_clear_state(fake_key_table *t);
size_t fake_keys_log_copy(const fake_key_table *t, const char *key, fake_log_entry *out,
                          size_t max);
/* Adds rpm, tpm, window_ms, keys, request_log, request_log_capacity to `into`. */
void fake_keys_config_json(const fake_key_table *t, json_t *into);
/* {"key":K, "entries":[[t_ms, tokens, admitted], ...]} (new reference). */
json_t *fake_keys_log_json(const fake_key_table *t, const char *key);

/* ---- models ---------------------------------------------------------------------------- */

typedef struct fake_model_entry {
    char *name;
    fake_model_counters c;
} fake_model_entry;

typedef struct fake_model_table {
    fake_model_entry *v;
    size_t n;
} fake_model_table;

/* Finds or adds a model; NULL when the table is full. */
fake_model_counters *fake_models_get(fake_model_table *t, const char *name);
const fake_model_counters *fake_models_find(const fake_model_table *t, const char *name);
void fake_models_cleanup(fake_model_table *t);
json_t *fake_models_json(const fake_model_table *t);

/* ---- request bodies -------------------------------------------------------------------- */

typedef struct fake_hash_slot {
    uint64_t key; /* 0 = empty */
    uint32_t arrivals;
    uint32_t ok;
} fake_hash_slot;

typedef struct fake_hash_table {
    fake_hash_slot *slots;
    size_t mask;
    size_t count;      /* distinct bodies */
    uint64_t repeated; /* arrivals of a body already seen */
    uint64_t overflow; /* arrivals not counted because the table was full */
} fake_hash_table;

void fake_hashes_init(fake_hash_table *t);
void fake_hashes_cleanup(fake_hash_table *t);
/* Counts an arrival; returns the arrivals of that body so far (1 when untracked). */
uint64_t fake_hashes_arrive(fake_hash_table *t, uint64_t key);
void fake_hashes_ok(fake_hash_table *t, uint64_t key);
void fake_hashes_get(const fake_hash_table *t, uint64_t key, uint64_t *arrivals, uint64_t *ok);
/* {"<16 hex>": {"arrivals":N, "ok":N}} for bodies seen more than once (or all). */
json_t *fake_hashes_json(const fake_hash_table *t, bool all);

#endif
