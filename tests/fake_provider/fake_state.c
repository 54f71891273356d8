/*
 * fake_state.c - the fake provider's shared settings and observations (see fake_state.h).
 *
 * One mutex guards all of it: the fake serves two MHD worker threads plus control calls,
 * and two short critical sections per request cost far less than the JSON work around
 * them. Tables are small arrays searched linearly (keys, models, scripts: tests use a
 * handful) except the per-body counters, an open-addressing hash table keyed by the first
 * 8 bytes of sha256(body). Key state (buckets) is rebuilt lazily when its limits change,
 * tracked by a generation number. The clock is a parameter (now_ms) everywhere.
 */
#include "tests/fake_provider/fake_state.h"

#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "tests/fake_provider/fake_tables.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct forced_status {
    char *model;
    int status;
} forced_status;

typedef struct script_entry {
    char *model;
    unsigned remaining;
    fake_script_reply reply;
} script_entry;

struct fake_state {
    pthread_mutex_t mu;
    uint64_t origin_ms;
    uint64_t rng;
    uint32_t latency_ms, jitter_ms;
    fake_key_table keys;
    char **unknown;
    size_t n_unknown;
    forced_status *forced;
    size_t n_forced;
    script_entry *scripts;
    size_t n_scripts;
    fake_model_table models;
    fake_hash_table hashes;
    uint64_t total, rate_limited, in_flight, max_in_flight, connections, connections_open;
    fake_wire wire;
    uint32_t refuse_next, reset_next; /* programs */
    uint64_t h2_connections, h2_streams, refused_streams, reset_streams, goaways, client_resets;
};

fake_state *fake_state_new(const fake_provider_config *cfg) {
    fake_state *st = XNEW(fake_state);
    pthread_mutex_init(&st->mu, NULL);
    st->origin_ms = clock_now_ms();
    st->rng = cfg->seed ? cfg->seed : 0x9E3779B97F4A7C15ull;
    st->latency_ms = cfg->latency_ms;
    st->jitter_ms = cfg->jitter_ms;
    fake_keys_init(&st->keys, cfg->rpm, cfg->tpm, cfg->window_ms);
    fake_keys_set_log(&st->keys, cfg->request_log,
                      cfg->request_log_capacity ? cfg->request_log_capacity
                                                : FAKE_DEFAULT_LOG_CAPACITY);
    fake_hashes_init(&st->hashes);
    st->wire = (fake_wire){.gzip = cfg->gzip,
                           .chunked = cfg->chunked,
                           .h2_max_streams = cfg->h2_max_concurrent_streams
                                                 ? cfg->h2_max_concurrent_streams
                                                 : FAKE_H2_DEFAULT_MAX_STREAMS,
                           .h2_goaway_after = cfg->h2_goaway_after};
    return st;
}

static void script_reply_free(fake_script_reply *r) {
    for (size_t i = 0; i < r->n_headers; i++)
        free(r->headers[i]);
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof *r);
}

static void clear_programs(fake_state *st) {
    for (size_t i = 0; i < st->n_forced; i++)
        free(st->forced[i].model);
    free(st->forced);
    st->forced = NULL;
    st->n_forced = 0;
    for (size_t i = 0; i < st->n_scripts; i++) {
        free(st->scripts[i].model);
        script_reply_free(&st->scripts[i].reply);
    }
    free(st->scripts);
    st->scripts = NULL;
    st->n_scripts = 0;
}

void fake_state_free(fake_state *st) {
    if (!st)
        return;
    clear_programs(st);
    for (size_t i = 0; i < st->n_unknown; i++)
        free(st->unknown[i]);
    free(st->unknown);
    fake_keys_cleanup(&st->keys);
    fake_models_cleanup(&st->models);
    fake_hashes_cleanup(&st->hashes);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

/* xorshift64*: cheap, and seedable for reproducible jitter. */
static uint64_t next_random(fake_state *st) {
    uint64_t x = st->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    st->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static bool is_unknown(const fake_state *st, const char *model) {
    for (size_t i = 0; i < st->n_unknown; i++)
        if (strcmp(st->unknown[i], model) == 0)
            return true;
    return false;
}

static void copy_reply(fake_script_reply *dst, const fake_script_reply *src) {
    dst->status = src->status;
    dst->n_headers = src->n_headers;
    dst->headers = src->n_headers ? XNEWV(char *, src->n_headers) : NULL;
    for (size_t i = 0; i < src->n_headers; i++)
        dst->headers[i] = xstrdup(src->headers[i]);
    dst->body = xstrdup(src->body);
}

/* Takes one use of the first script for `model`; true when one applied. */
static bool take_script(fake_state *st, const char *model, fake_script_reply *out) {
    for (size_t i = 0; i < st->n_scripts; i++) {
        script_entry *e = &st->scripts[i];
        if (strcmp(e->model, model) != 0)
            continue;
        copy_reply(out, &e->reply);
        if (--e->remaining == 0) {
            free(e->model);
            script_reply_free(&e->reply);
            memmove(e, e + 1, (st->n_scripts - i - 1) * sizeof *e);
            st->n_scripts--;
        }
        return true;
    }
    return false;
}

static int forced_for(const fake_state *st, const char *model) {
    for (size_t i = 0; i < st->n_forced; i++)
        if (strcmp(st->forced[i].model, model) == 0)
            return st->forced[i].status;
    return 0;
}

void fake_state_arrive(fake_state *st, const char *key, const char *model, uint64_t body_key,
                       uint64_t tokens, uint64_t now_ms, fake_arrival *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&st->mu);
    st->total++;
    fake_model_counters *mc = fake_models_get(&st->models, model);
    if (mc)
        mc->requests++;
    out->arrivals = fake_hashes_arrive(&st->hashes, body_key);
    out->unknown_model = is_unknown(st, model);
    if (!out->unknown_model && key) {
        fake_keys_admit(&st->keys, key, tokens, now_ms, now_ms - st->origin_ms, &out->verdict);
        if (out->verdict.limited)
            st->rate_limited++;
    }
    if (!out->unknown_model && !out->verdict.limited && st->reset_next) {
        st->reset_next--;
        out->reset = true;
    } else if (!out->unknown_model && !out->verdict.limited) {
        out->scripted = take_script(st, model, &out->script);
        out->forced_status = forced_for(st, model);
    }
    out->delay_ms = st->latency_ms;
    if (st->jitter_ms)
        out->delay_ms += (uint32_t)(next_random(st) % ((uint64_t)st->jitter_ms + 1));
    pthread_mutex_unlock(&st->mu);
}

void fake_arrival_cleanup(fake_arrival *a) {
    script_reply_free(&a->script);
}

void fake_state_answered(fake_state *st, const char *model, uint64_t body_key, int status) {
    pthread_mutex_lock(&st->mu);
    fake_model_counters *mc = fake_models_get(&st->models, model);
    if (mc) {
        if (status >= 200 && status < 300)
            mc->s2xx++;
        else if (status == 429)
            mc->s429++;
        else if (status >= 500 && status < 600)
            mc->s5xx++;
        else
            mc->other++;
    }
    if (status >= 200 && status < 300)
        fake_hashes_ok(&st->hashes, body_key);
    pthread_mutex_unlock(&st->mu);
}

void fake_state_rejected(fake_state *st) {
    pthread_mutex_lock(&st->mu);
    st->total++;
    pthread_mutex_unlock(&st->mu);
}

void fake_state_in_flight(fake_state *st, int delta) {
    pthread_mutex_lock(&st->mu);
    st->in_flight = (uint64_t)((int64_t)st->in_flight + delta);
    if (st->in_flight > st->max_in_flight)
        st->max_in_flight = st->in_flight;
    pthread_mutex_unlock(&st->mu);
}

void fake_state_connection(fake_state *st, bool opened) {
    pthread_mutex_lock(&st->mu);
    if (opened) {
        st->connections++;
        st->connections_open++;
    } else if (st->connections_open) {
        st->connections_open--;
    }
    pthread_mutex_unlock(&st->mu);
}

/* ---- settings ------------------------------------------------------------------------ */

void fake_state_wire(fake_state *st, fake_wire *out) {
    pthread_mutex_lock(&st->mu);
    *out = st->wire;
    pthread_mutex_unlock(&st->mu);
}

void fake_state_set_wire(fake_state *st, const fake_wire *w) {
    pthread_mutex_lock(&st->mu);
    st->wire = *w;
    if (!st->wire.h2_max_streams)
        st->wire.h2_max_streams = FAKE_H2_DEFAULT_MAX_STREAMS;
    pthread_mutex_unlock(&st->mu);
}

void fake_state_refuse_streams(fake_state *st, uint32_t n) {
    pthread_mutex_lock(&st->mu);
    st->refuse_next = n;
    pthread_mutex_unlock(&st->mu);
}

void fake_state_reset_next(fake_state *st, uint32_t n) {
    pthread_mutex_lock(&st->mu);
    st->reset_next = n;
    pthread_mutex_unlock(&st->mu);
}

bool fake_state_take_refusal(fake_state *st) {
    pthread_mutex_lock(&st->mu);
    bool take = st->refuse_next > 0;
    if (take) {
        st->refuse_next--;
        st->refused_streams++;
    }
    pthread_mutex_unlock(&st->mu);
    return take;
}

void fake_state_h2_event(fake_state *st, fake_h2_event e) {
    pthread_mutex_lock(&st->mu);
    switch (e) {
    case FAKE_H2_CONNECTION:
        st->h2_connections++;
        break;
    case FAKE_H2_STREAM:
        st->h2_streams++;
        break;
    case FAKE_H2_RESET:
        st->reset_streams++;
        break;
    case FAKE_H2_GOAWAY:
        st->goaways++;
        break;
    case FAKE_H2_CLIENT_RESET:
        st->client_resets++;
        break;
    }
    pthread_mutex_unlock(&st->mu);
}

void fake_state_set_latency(fake_state *st, uint32_t latency_ms, uint32_t jitter_ms) {
    pthread_mutex_lock(&st->mu);
    st->latency_ms = latency_ms;
    st->jitter_ms = jitter_ms;
    pthread_mutex_unlock(&st->mu);
}

void fake_state_set_limits(fake_state *st, const char *key, uint32_t rpm, uint32_t tpm,
                           uint32_t window_ms) {
    pthread_mutex_lock(&st->mu);
    fake_keys_set_limits(&st->keys, key, rpm, tpm, window_ms);
    pthread_mutex_unlock(&st->mu);
}

void fake_state_add_unknown(fake_state *st, const char *model) {
    pthread_mutex_lock(&st->mu);
    if (!is_unknown(st, model) && st->n_unknown < FAKE_MAX_MODELS) {
        st->unknown = xrealloc(st->unknown, (st->n_unknown + 1) * sizeof *st->unknown);
        st->unknown[st->n_unknown++] = xstrdup(model);
    }
    pthread_mutex_unlock(&st->mu);
}

void fake_state_force_status(fake_state *st, const char *model, int status) {
    pthread_mutex_lock(&st->mu);
    size_t i = 0;
    while (i < st->n_forced && strcmp(st->forced[i].model, model) != 0)
        i++;
    if (i < st->n_forced && status) {
        st->forced[i].status = status;
    } else if (i < st->n_forced) {
        free(st->forced[i].model);
        st->forced[i] = st->forced[--st->n_forced];
    } else if (status && st->n_forced < FAKE_MAX_MODELS) {
        st->forced = xrealloc(st->forced, (st->n_forced + 1) * sizeof *st->forced);
        st->forced[st->n_forced++] = (forced_status){xstrdup(model), status};
    }
    pthread_mutex_unlock(&st->mu);
}

void fake_state_script(fake_state *st, const char *model, unsigned count, int status,
                       const char *const *headers, size_t n_headers, const char *body) {
    if (!count || !model)
        return;
    script_entry e = {.model = xstrdup(model), .remaining = count};
    fake_script_reply src = {status, (char **)headers, headers ? n_headers : 0, (char *)body};
    copy_reply(&e.reply, &src);
    pthread_mutex_lock(&st->mu);
    if (st->n_scripts < FAKE_MAX_SCRIPTS) {
        st->scripts = xrealloc(st->scripts, (st->n_scripts + 1) * sizeof *st->scripts);
        st->scripts[st->n_scripts++] = e;
        e.model = NULL;
    }
    pthread_mutex_unlock(&st->mu);
    if (e.model) {
        free(e.model);
        script_reply_free(&e.reply);
    }
}

void fake_state_set_log(fake_state *st, bool on, size_t capacity) {
    pthread_mutex_lock(&st->mu);
    fake_keys_set_log(&st->keys, on, capacity ? capacity : FAKE_DEFAULT_LOG_CAPACITY);
    pthread_mutex_unlock(&st->mu);
}

void fake_state_reset(fake_state *st) {
    pthread_mutex_lock(&st->mu);
    clear_programs(st);
    fake_keys_clear_state(&st->keys);
    fake_models_cleanup(&st->models);
    fake_hashes_cleanup(&st->hashes);
    fake_hashes_init(&st->hashes);
    st->total = st->rate_limited = st->connections = 0;
    st->refuse_next = st->reset_next = 0;
    st->h2_connections = st->h2_streams = st->refused_streams = st->reset_streams = 0;
    st->goaways = st->client_resets = 0;
    st->max_in_flight = st->in_flight;
    pthread_mutex_unlock(&st->mu);
}

/* ---- reports ------------------------------------------------------------------------- */

void fake_state_counters(fake_state *st, fake_counters *out) {
    pthread_mutex_lock(&st->mu);
    out->total = st->total;
    out->rate_limited = st->rate_limited;
    out->in_flight = st->in_flight;
    out->max_in_flight = st->max_in_flight;
    out->connections = st->connections;
    out->connections_open = st->connections_open;
    out->distinct_requests = st->hashes.count;
    out->repeated_requests = st->hashes.repeated;
    out->h2_connections = st->h2_connections;
    out->h2_streams = st->h2_streams;
    out->refused_streams = st->refused_streams;
    out->reset_streams = st->reset_streams;
    out->goaways = st->goaways;
    out->client_resets = st->client_resets;
    pthread_mutex_unlock(&st->mu);
}

void fake_state_model_counters(fake_state *st, const char *model, fake_model_counters *out) {
    pthread_mutex_lock(&st->mu);
    const fake_model_counters *mc = fake_models_find(&st->models, model);
    if (mc)
        *out = *mc;
    else
        memset(out, 0, sizeof *out);
    pthread_mutex_unlock(&st->mu);
}

void fake_state_hash_counts(fake_state *st, uint64_t body_key, uint64_t *arrivals, uint64_t *ok) {
    pthread_mutex_lock(&st->mu);
    fake_hashes_get(&st->hashes, body_key, arrivals, ok);
    pthread_mutex_unlock(&st->mu);
}

size_t fake_state_log(fake_state *st, const char *key, fake_log_entry *out, size_t max) {
    pthread_mutex_lock(&st->mu);
    size_t n = fake_keys_log_copy(&st->keys, key, out, max);
    pthread_mutex_unlock(&st->mu);
    return n;
}

json_t *fake_state_counters_json(fake_state *st, bool all_hashes) {
    pthread_mutex_lock(&st->mu);
    json_t *j = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "total", (json_int_t)st->total, "rate_limited",
        (json_int_t)st->rate_limited, "in_flight", (json_int_t)st->in_flight, "max_in_flight",
        (json_int_t)st->max_in_flight, "connections", (json_int_t)st->connections,
        "connections_open", (json_int_t)st->connections_open, "distinct_requests",
        (json_int_t)st->hashes.count, "repeated_requests", (json_int_t)st->hashes.repeated);
    json_t *h2 = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "h2_connections",
                           (json_int_t)st->h2_connections, "h2_streams", (json_int_t)st->h2_streams,
                           "refused_streams", (json_int_t)st->refused_streams, "reset_streams",
                           (json_int_t)st->reset_streams, "goaways", (json_int_t)st->goaways,
                           "client_resets", (json_int_t)st->client_resets);
    json_object_update(j, h2);
    json_decref(h2);
    json_object_set_new(j, "models", fake_models_json(&st->models));
    json_object_set_new(j, "hashes", fake_hashes_json(&st->hashes, all_hashes));
    pthread_mutex_unlock(&st->mu);
    return j;
}

json_t *fake_state_config_json(fake_state *st) {
    pthread_mutex_lock(&st->mu);
    json_t *j = json_pack(
        "{s:I, s:I, s:b, s:b, s:I, s:I, s:I, s:I}", "latency_ms", (json_int_t)st->latency_ms,
        "jitter_ms", (json_int_t)st->jitter_ms, "gzip", st->wire.gzip, "chunked", st->wire.chunked,
        "h2_max_concurrent_streams", (json_int_t)st->wire.h2_max_streams, "h2_goaway_after",
        (json_int_t)st->wire.h2_goaway_after, "h2_refuse_streams", (json_int_t)st->refuse_next,
        "reset_next", (json_int_t)st->reset_next);
    fake_keys_config_json(&st->keys, j);
    json_t *unknown = json_array();
    for (size_t i = 0; i < st->n_unknown; i++)
        json_array_append_new(unknown, json_string(st->unknown[i]));
    json_object_set_new(j, "unknown_models", unknown);
    json_t *forced = json_object();
    for (size_t i = 0; i < st->n_forced; i++)
        json_object_set_new(forced, st->forced[i].model, json_integer(st->forced[i].status));
    json_object_set_new(j, "force_status", forced);
    json_t *scripts = json_array();
    for (size_t i = 0; i < st->n_scripts; i++)
        json_array_append_new(scripts, json_pack("{s:s, s:I, s:i}", "model", st->scripts[i].model,
                                                 "count", (json_int_t)st->scripts[i].remaining,
                                                 "status", st->scripts[i].reply.status));
    json_object_set_new(j, "script", scripts);
    pthread_mutex_unlock(&st->mu);
    return j;
}

json_t *fake_state_log_json(fake_state *st, const char *key) {
    pthread_mutex_lock(&st->mu);
    json_t *j = fake_keys_log_json(&st->keys, key);
    pthread_mutex_unlock(&st->mu);
    return j;
}
