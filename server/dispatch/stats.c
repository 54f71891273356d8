/*
 * Instruments: per-model and per-key counters, latency histograms, and the snapshot that
 * metrics and benchmarks read. The loop thread writes with relaxed atomics; readers on any
 * thread get values that are each exact, if not mutually consistent to the microsecond.
 */
#include "internal.h"

#include "server/common/alloc.h"

#include <stdlib.h>

const double dispatch_hist_bounds_ms[DISPATCH_HIST_BUCKETS - 1] = {
    0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000};

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

void stats_hist_add(ahist *h, uint64_t us) {
    double ms = (double)us / 1000.0;
    size_t b = 0;
    while (b < DISPATCH_HIST_BUCKETS - 1 && ms > dispatch_hist_bounds_ms[b])
        b++;
    atomic_fetch_add_explicit(&h->counts[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

amodel *stats_model(dispatcher *d, const model_info *m) {
    return &d->model_stats[m - d->reg->models];
}

void stats_key_publish(keystate *k) {
    atomic_store_explicit(&k->stats.waiting, k->waiting, memory_order_relaxed);
    atomic_store_explicit(&k->stats.in_flight, k->conc.in_flight, memory_order_relaxed);
    atomic_store_explicit(&k->stats.cooldown_until_us, k->cooldown_until_us, memory_order_relaxed);
}

static void read_hist(ahist *h, dispatch_hist *out) {
    for (size_t i = 0; i < DISPATCH_HIST_BUCKETS; i++)
        out->counts[i] = LOAD(h->counts[i]);
    out->count = LOAD(h->count);
    out->sum_ms = (double)LOAD(h->sum_us) / 1000.0;
}

static void read_models(dispatcher *d, dispatcher_stats *out) {
    out->n_models = d->reg->n_models;
    out->models = XNEWV(dispatch_model_stats, out->n_models);
    for (size_t i = 0; i < out->n_models; i++) {
        amodel *a = &d->model_stats[i];
        dispatch_model_stats *m = &out->models[i];
        m->model = d->reg->models[i].name;
        m->provider = provider_kind_name(d->reg->models[i].provider);
        m->requests = LOAD(a->requests);
        m->s2xx = LOAD(a->s2xx);
        m->s4xx = LOAD(a->s4xx);
        m->s429 = LOAD(a->s429);
        m->s5xx = LOAD(a->s5xx);
        m->failures = LOAD(a->failures);
        m->input_tokens = LOAD(a->input_tokens);
        m->output_tokens = LOAD(a->output_tokens);
        m->cache_read_tokens = LOAD(a->cache_read_tokens);
        m->cache_write_tokens = LOAD(a->cache_write_tokens);
        m->cost = (double)LOAD(a->cost_nusd) / 1e9;
    }
}

static void read_keys(dispatcher *d, dispatcher_stats *out) {
    uint64_t now = dispatch_now_us();
    out->n_keys = d->n_keys;
    out->keys = XNEWV(dispatch_key_stats, out->n_keys);
    for (size_t i = 0; i < out->n_keys; i++) {
        keystate *k = &d->keys[i];
        dispatch_key_stats *o = &out->keys[i];
        o->key = k->key->name;
        o->waiting = LOAD(k->stats.waiting);
        o->in_flight = LOAD(k->stats.in_flight);
        o->admitted_requests = LOAD(k->stats.admitted);
        o->admitted_tokens = LOAD(k->stats.admitted_tokens);
        o->cooldowns = LOAD(k->stats.cooldowns);
        o->cooldown_ms = LOAD(k->stats.cooldown_ms);
        o->cooling = LOAD(k->stats.cooldown_until_us) > now;
        o->requests_per_minute = k->key->requests_per_minute;
        o->tokens_per_minute = k->key->tokens_per_minute;
        o->max_concurrent = k->key->max_concurrent;
    }
}

void dispatcher_get_stats(dispatcher *d, dispatcher_stats *out) {
    out->tasks_alive = atomic_load(&d->tasks_alive);
    out->upstream_requests = LOAD(d->upstream_requests);
    out->upstream_2xx = LOAD(d->upstream_2xx);
    out->upstream_429 = LOAD(d->upstream_429);
    out->upstream_5xx = LOAD(d->upstream_5xx);
    out->upstream_other = LOAD(d->upstream_other);
    out->upstream_failures = LOAD(d->upstream_failures);
    out->retries = LOAD(d->retries);
    out->http_setup_failures = http_client_setup_failures(d->http);
    out->cache_hits = LOAD(d->cache_hits);
    out->cache_misses = LOAD(d->cache_misses);
    out->dedup_shared = LOAD(d->dedup_shared);
    out->cooldown_ms_total = LOAD(d->cooldown_ms_total);
    out->tasks_done = LOAD(d->tasks_done);
    out->tasks_failed = LOAD(d->tasks_failed);
    out->tasks_cancelled = LOAD(d->tasks_cancelled);
    read_hist(&d->task_latency, &out->task_latency);
    read_hist(&d->overhead, &out->overhead);
    read_models(d, out);
    read_keys(d, out);
}

void dispatcher_stats_cleanup(dispatcher_stats *s) {
    free(s->models);
    free(s->keys);
    s->models = NULL;
    s->keys = NULL;
}
