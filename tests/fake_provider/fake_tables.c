/*
 * fake_tables.c - bounded tables behind fake_state's lock (see fake_tables.h).
 *
 * Keys and models are short arrays searched linearly: a test or benchmark uses a handful.
 * Request bodies use open addressing with linear probing, doubling at half load up to
 * FAKE_MAX_HASHES entries; beyond that new bodies are served but not counted (overflow).
 */
#include "tests/fake_provider/fake_tables.h"

#include "server/common/alloc.h"
#include "tests/fake_provider/fake_state.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- keys ----------------------------------------------------------------------------- */

void fake_keys_init(fake_key_table *t, uint32_t rpm, uint32_t tpm, uint32_t window_ms) {
    memset(t, 0, sizeof *t);
    t->rpm = rpm;
    t->tpm = tpm;
    t->window_ms = window_ms;
    t->gen = 1;
    t->log_cap = FAKE_DEFAULT_LOG_CAPACITY;
}

void fake_keys_cleanup(fake_key_table *t) {
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].key);
        free(t->v[i].log);
    }
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

static fake_key_state *key_find(const fake_key_table *t, const char *key) {
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].key, key) == 0)
            return &t->v[i];
    return NULL;
}

static fake_key_state *key_get(fake_key_table *t, const char *key) {
    fake_key_state *k = key_find(t, key);
    if (k || t->n >= FAKE_MAX_KEYS)
        return k;
    t->v = xrealloc(t->v, (t->n + 1) * sizeof *t->v);
    k = &t->v[t->n++];
    memset(k, 0, sizeof *k);
    k->key = xstrdup(key);
    k->dirty = true;
    return k;
}

void fake_keys_set_limits(fake_key_table *t, const char *key, uint32_t rpm, uint32_t tpm,
                          uint32_t window_ms) {
    if (!key) {
        t->rpm = rpm;
        t->tpm = tpm;
        t->window_ms = window_ms;
        t->gen++;
        return;
    }
    fake_key_state *k = key_get(t, key);
    if (!k)
        return;
    k->custom = true;
    k->rpm = rpm;
    k->tpm = tpm;
    k->window_ms = window_ms;
    k->dirty = true;
}

void fake_keys_set_log(fake_key_table *t, bool on, size_t capacity) {
    t->log_on = on;
    if (capacity == t->log_cap)
        return;
    t->log_cap = capacity;
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].log);
        t->v[i].log = NULL;
        t->v[i].log_head = t->v[i].log_n = 0;
    }
}

static void key_rebuild(const fake_key_table *t, fake_key_state *k, uint64_t now_ms) {
    uint32_t rpm = k->custom ? k->rpm : t->rpm;
    uint32_t tpm = k->custom ? k->tpm : t->tpm;
    uint32_t window = k->custom ? k->window_ms : t->window_ms;
    fake_bucket_init(&k->req, rpm, window, now_ms);
    fake_bucket_init(&k->tok, tpm, window, now_ms);
    k->built_gen = t->gen;
    k->dirty = false;
}

static void key_log(const fake_key_table *t, fake_key_state *k, fake_log_entry e) {
    if (!k->log)
        k->log = XNEWV(fake_log_entry, t->log_cap);
    size_t at = (k->log_head + k->log_n) % t->log_cap;
    k->log[at] = e;
    if (k->log_n < t->log_cap)
        k->log_n++;
    else
        k->log_head = (k->log_head + 1) % t->log_cap;
}

void fake_keys_admit(fake_key_table *t, const char *key, uint64_t tokens, uint64_t now_ms,
                     uint64_t t_ms, fake_verdict *v) {
    memset(v, 0, sizeof *v);
    bool limits = t->rpm || t->tpm || key_find(t, key);
    if (!limits && !t->log_on)
        return; /* nothing to enforce or record: do not grow the table */
    fake_key_state *k = key_get(t, key);
    if (!k)
        return;
    if (k->dirty || (!k->custom && k->built_gen != t->gen))
        key_rebuild(t, k, now_ms);
    fake_limits_admit(&k->req, &k->tok, tokens, now_ms, v);
    if (t->log_on)
        key_log(t, k, (fake_log_entry){t_ms, (uint32_t)tokens, !v->limited});
}

void fake_keys_clear_state(fake_key_table *t) {
    for (size_t i = 0; i < t->n; i++) {
        t->v[i].dirty = true;
        t->v[i].log_head = t->v[i].log_n = 0;
    }
}

size_t fake_keys_log_copy(const fake_key_table *t, const char *key, fake_log_entry *out,
                          size_t max) {
    const fake_key_state *k = key ? key_find(t, key) : NULL;
    size_t n = 0;
    for (; k && n < k->log_n && n < max; n++)
        out[n] = k->log[(k->log_head + n) % t->log_cap];
    return n;
}

void fake_keys_config_json(const fake_key_table *t, json_t *into) {
    json_object_set_new(into, "rpm", json_integer(t->rpm));
    json_object_set_new(into, "tpm", json_integer(t->tpm));
    json_object_set_new(into, "window_ms", json_integer(t->window_ms ? t->window_ms : 60000));
    json_t *keys = json_object();
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].custom)
            json_object_set_new(
                keys, t->v[i].key,
                json_pack("{s:I, s:I, s:I}", "rpm", (json_int_t)t->v[i].rpm, "tpm",
                          (json_int_t)t->v[i].tpm, "window_ms",
                          (json_int_t)(t->v[i].window_ms ? t->v[i].window_ms : 60000)));
    json_object_set_new(into, "keys", keys);
    json_object_set_new(into, "request_log", json_boolean(t->log_on));
    json_object_set_new(into, "request_log_capacity", json_integer((json_int_t)t->log_cap));
}

json_t *fake_keys_log_json(const fake_key_table *t, const char *key) {
    json_t *entries = json_array();
    const fake_key_state *k = key ? key_find(t, key) : NULL;
    for (size_t n = 0; k && n < k->log_n; n++) {
        const fake_log_entry *e = &k->log[(k->log_head + n) % t->log_cap];
        json_array_append_new(entries, json_pack("[I, I, b]", (json_int_t)e->t_ms,
                                                 (json_int_t)e->tokens, e->admitted));
    }
    return json_pack("{s:s, s:o}", "key", key ? key : "", "entries", entries);
}

/* ---- models --------------------------------------------------------------------------- */

const fake_model_counters *fake_models_find(const fake_model_table *t, const char *name) {
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].name, name) == 0)
            return &t->v[i].c;
    return NULL;
}

fake_model_counters *fake_models_get(fake_model_table *t, const char *name) {
    fake_model_counters *c = (fake_model_counters *)fake_models_find(t, name);
    if (c || t->n >= FAKE_MAX_MODELS)
        return c;
    t->v = xrealloc(t->v, (t->n + 1) * sizeof *t->v);
    fake_model_entry *e = &t->v[t->n++];
    memset(e, 0, sizeof *e);
    e->name = xstrdup(name);
    return &e->c;
}

void fake_models_cleanup(fake_model_table *t) {
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].name);
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

json_t *fake_models_json(const fake_model_table *t) {
    json_t *j = json_object();
    for (size_t i = 0; i < t->n; i++) {
        const fake_model_counters *c = &t->v[i].c;
        json_object_set_new(j, t->v[i].name,
                            json_pack("{s:I, s:I, s:I, s:I, s:I}", "requests",
                                      (json_int_t)c->requests, "2xx", (json_int_t)c->s2xx, "429",
                                      (json_int_t)c->s429, "5xx", (json_int_t)c->s5xx, "other",
                                      (json_int_t)c->other));
    }
    return j;
}

/* ---- request bodies -------------------------------------------------------------------- */

#define HASH_INITIAL_SLOTS 1024u

void fake_hashes_init(fake_hash_table *t) {
    memset(t, 0, sizeof *t);
    t->slots = XNEWV(fake_hash_slot, HASH_INITIAL_SLOTS);
    t->mask = HASH_INITIAL_SLOTS - 1;
}

void fake_hashes_cleanup(fake_hash_table *t) {
    free(t->slots);
    memset(t, 0, sizeof *t);
}

static fake_hash_slot *slot_for(const fake_hash_table *t, uint64_t key) {
    size_t i = (size_t)(key ^ (key >> 29)) & t->mask;
    while (t->slots[i].key && t->slots[i].key != key)
        i = (i + 1) & t->mask;
    return &t->slots[i];
}

static void grow(fake_hash_table *t) {
    fake_hash_table old = *t;
    t->mask = old.mask * 2 + 1;
    t->slots = XNEWV(fake_hash_slot, t->mask + 1);
    for (size_t i = 0; i <= old.mask; i++)
        if (old.slots[i].key)
            *slot_for(t, old.slots[i].key) = old.slots[i];
    free(old.slots);
}

uint64_t fake_hashes_arrive(fake_hash_table *t, uint64_t key) {
    fake_hash_slot *s = slot_for(t, key);
    if (!s->key) {
        if (t->count >= FAKE_MAX_HASHES) {
            t->overflow++;
            return 1;
        }
        if ((t->count + 1) * 2 > t->mask + 1) {
            grow(t);
            s = slot_for(t, key);
        }
        s->key = key;
        t->count++;
    } else {
        t->repeated++;
    }
    s->arrivals++;
    return s->arrivals;
}

void fake_hashes_ok(fake_hash_table *t, uint64_t key) {
    fake_hash_slot *s = slot_for(t, key);
    if (s->key)
        s->ok++;
}

void fake_hashes_get(const fake_hash_table *t, uint64_t key, uint64_t *arrivals, uint64_t *ok) {
    const fake_hash_slot *s = slot_for(t, key);
    *arrivals = s->key ? s->arrivals : 0;
    *ok = s->key ? s->ok : 0;
}

json_t *fake_hashes_json(const fake_hash_table *t, bool all) {
    json_t *j = json_object();
    char hex[17];
    for (size_t i = 0; i <= t->mask; i++) {
        const fake_hash_slot *s = &t->slots[i];
        if (!s->key || (!all && s->arrivals < 2 && s->ok < 2))
            continue;
        snprintf(hex, sizeof hex, "%016" PRIx64, s->key);
        json_object_set_new(
            j, hex,
            json_pack("{s:I, s:I}", "arrivals", (json_int_t)s->arrivals, "ok", (json_int_t)s->ok));
    }
    return j;
}
