/*
 * The Prometheus text exposition of sluiced's instruments. Every family is written with
 * its HELP and TYPE lines; label values come from the registry and are escaped.
 */
#include "metrics.h"

#include "server/common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EXPOSITION (16u << 20)

static void out(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(buf *b, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        buf_append(b, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void family(buf *b, const char *name, const char *type, const char *help) {
    out(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Label value escaping (backslash, quote, newline). */
static const char *esc(const char *in, char *o, size_t len) {
    size_t j = 0;
    for (size_t i = 0; in && in[i] && j + 3 < len; i++) {
        char c = in[i];
        if (c == '\\' || c == '"' || c == '\n') {
            o[j++] = '\\';
            c = c == '\n' ? 'n' : c;
        }
        o[j++] = c;
    }
    o[j] = '\0';
    return o;
}

static void model_families(buf *b, const dispatcher_stats *st) {
    char m[256], p[64];
    family(b, "sluice_upstream_requests_total", "counter",
           "Upstream HTTP attempts by provider, model and outcome.");
    static const char *const outcomes[] = {"2xx", "4xx", "429", "5xx", "no_answer"};
    for (size_t i = 0; i < st->n_models; i++) {
        const dispatch_model_stats *x = &st->models[i];
        uint64_t v[] = {x->s2xx, x->s4xx, x->s429, x->s5xx, x->failures};
        for (size_t k = 0; k < 5; k++)
            out(b,
                "sluice_upstream_requests_total{provider=\"%s\",model=\"%s\",outcome=\"%s\"} "
                "%llu\n",
                esc(x->provider, p, sizeof p), esc(x->model, m, sizeof m), outcomes[k],
                (unsigned long long)v[k]);
    }
    family(b, "sluice_tokens_total", "counter", "Tokens reported by providers, by model and kind.");
    static const char *const kinds[] = {"input", "output", "cache_read", "cache_write"};
    for (size_t i = 0; i < st->n_models; i++) {
        const dispatch_model_stats *x = &st->models[i];
        uint64_t v[] = {x->input_tokens, x->output_tokens, x->cache_read_tokens,
                        x->cache_write_tokens};
        for (size_t k = 0; k < 4; k++)
            out(b, "sluice_tokens_total{model=\"%s\",kind=\"%s\"} %llu\n",
                esc(x->model, m, sizeof m), kinds[k], (unsigned long long)v[k]);
    }
    family(b, "sluice_cost_usd_total", "counter", "Cost of the answers received, by model.");
    for (size_t i = 0; i < st->n_models; i++)
        out(b, "sluice_cost_usd_total{model=\"%s\"} %.9f\n", esc(st->models[i].model, m, sizeof m),
            st->models[i].cost);
}

static void key_gauge(buf *b, const dispatcher_stats *st, const char *name, const char *type,
                      const char *help, uint64_t (*get)(const dispatch_key_stats *)) {
    char k[256];
    family(b, name, type, help);
    for (size_t i = 0; i < st->n_keys; i++)
        out(b, "%s{key=\"%s\"} %llu\n", name, esc(st->keys[i].key, k, sizeof k),
            (unsigned long long)get(&st->keys[i]));
}

static uint64_t k_wait(const dispatch_key_stats *k) {
    return k->waiting;
}
static uint64_t k_fly(const dispatch_key_stats *k) {
    return k->in_flight;
}
static uint64_t k_adm(const dispatch_key_stats *k) {
    return k->admitted_requests;
}
static uint64_t k_tok(const dispatch_key_stats *k) {
    return k->admitted_tokens;
}
static uint64_t k_cd(const dispatch_key_stats *k) {
    return k->cooldowns;
}
static uint64_t k_cool(const dispatch_key_stats *k) {
    return k->cooling;
}
static uint64_t k_rpm(const dispatch_key_stats *k) {
    return k->requests_per_minute;
}
static uint64_t k_tpm(const dispatch_key_stats *k) {
    return k->tokens_per_minute;
}
static uint64_t k_conc(const dispatch_key_stats *k) {
    return k->max_concurrent;
}

static void key_families(buf *b, const dispatcher_stats *st) {
    key_gauge(b, st, "sluice_queue_depth", "gauge", "Prompts waiting for an upstream key.", k_wait);
    key_gauge(b, st, "sluice_in_flight", "gauge", "Attempts in flight on an upstream key.", k_fly);
    key_gauge(b, st, "sluice_paced_requests_total", "counter",
              "Requests the pacer let through per key (rate / limit = utilisation).", k_adm);
    key_gauge(b, st, "sluice_paced_tokens_total", "counter",
              "Estimated tokens the pacer let through per key.", k_tok);
    key_gauge(b, st, "sluice_cooldowns_total", "counter", "Retry-After cooldowns per key.", k_cd);
    key_gauge(b, st, "sluice_key_cooling", "gauge", "1 while a key is cooling down.", k_cool);
    key_gauge(b, st, "sluice_key_limit_requests_per_minute", "gauge",
              "Configured requests/min of a key.", k_rpm);
    key_gauge(b, st, "sluice_key_limit_tokens_per_minute", "gauge",
              "Configured tokens/min of a key.", k_tpm);
    key_gauge(b, st, "sluice_key_limit_concurrency", "gauge", "Configured concurrency of a key.",
              k_conc);
    char k[256];
    family(b, "sluice_cooldown_seconds_total", "counter", "Seconds spent cooling down, per key.");
    for (size_t i = 0; i < st->n_keys; i++)
        out(b, "sluice_cooldown_seconds_total{key=\"%s\"} %.3f\n",
            esc(st->keys[i].key, k, sizeof k), (double)st->keys[i].cooldown_ms / 1000.0);
}

static void histogram(buf *b, const char *name, const char *help, const dispatch_hist *h) {
    family(b, name, "histogram", help);
    uint64_t cum = 0;
    for (size_t i = 0; i < DISPATCH_HIST_BUCKETS - 1; i++) {
        cum += h->counts[i];
        out(b, "%s_bucket{le=\"%g\"} %llu\n", name, dispatch_hist_bounds_ms[i] / 1000.0,
            (unsigned long long)cum);
    }
    cum += h->counts[DISPATCH_HIST_BUCKETS - 1];
    out(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
        (unsigned long long)cum, name, h->sum_ms / 1000.0, name, (unsigned long long)h->count);
}

static void counter(buf *b, const char *name, const char *help, uint64_t v) {
    family(b, name, "counter", help);
    out(b, "%s %llu\n", name, (unsigned long long)v);
}

static void gauge(buf *b, const char *name, const char *help, uint64_t v) {
    family(b, name, "gauge", help);
    out(b, "%s %llu\n", name, (unsigned long long)v);
}

static void dispatcher_families(buf *b, dispatcher *d) {
    dispatcher_stats st;
    memset(&st, 0, sizeof st);
    dispatcher_get_stats(d, &st);
    model_families(b, &st);
    key_families(b, &st);
    counter(b, "sluice_attempts_total", "Upstream attempts (first tries and retries).",
            st.upstream_requests);
    counter(b, "sluice_retries_total", "Attempts that were retries.", st.retries);
    counter(b, "sluice_http_setup_failures_total",
            "Transfers libcurl refused to set up; nothing was sent (a bug of sluice's: 0).",
            st.http_setup_failures);
    counter(b, "sluice_rate_limited_total", "429 / overloaded answers.", st.upstream_429);
    counter(b, "sluice_cache_hits_total", "Prompts answered from the local cache.", st.cache_hits);
    counter(b, "sluice_cache_misses_total", "Cache lookups that missed.", st.cache_misses);
    counter(b, "sluice_dedup_shared_total", "Prompts that shared an identical prompt's call.",
            st.dedup_shared);
    family(b, "sluice_tasks_total", "counter", "Finished prompts by outcome.");
    out(b, "sluice_tasks_total{outcome=\"succeeded\"} %llu\n", (unsigned long long)st.tasks_done);
    out(b, "sluice_tasks_total{outcome=\"failed\"} %llu\n", (unsigned long long)st.tasks_failed);
    out(b, "sluice_tasks_total{outcome=\"cancelled\"} %llu\n",
        (unsigned long long)st.tasks_cancelled);
    gauge(b, "sluice_tasks_alive", "Prompts inside the dispatcher now.", st.tasks_alive);
    histogram(b, "sluice_task_latency_seconds", "Submission to result, per finished prompt.",
              &st.task_latency);
    histogram(b, "sluice_gateway_overhead_seconds",
              "Time an answered prompt spent in sluiced rather than upstream (pacing waits "
              "included).",
              &st.overhead);
    dispatcher_stats_cleanup(&st);
}

static void store_families(buf *b, store *s) {
    store_stats st;
    store_get_stats(s, &st);
    gauge(b, "sluice_cache_bytes", "Estimated bytes in the response cache.", st.cache_bytes);
    gauge(b, "sluice_cache_entries", "Answers in the response cache.", st.cache_entries);
    counter(b, "sluice_cache_evictions_total", "Answers evicted by the size cap.",
            st.cache_evicted);
    counter(b, "sluice_cache_expired_total", "Answers dropped by the TTL.", st.cache_expired);
    counter(b, "sluice_cache_corrupt_total", "Undecodable cache entries deleted.",
            st.cache_corrupt);
    counter(b, "sluice_store_write_batches_total", "RocksDB write batches.", st.write_batches);
    gauge(b, "sluice_store_write_queue_depth", "Writes waiting for the store writer.",
          st.write_queue_depth);
}

char *metrics_render(const metrics_sources *src) {
    buf b;
    buf_init(&b, MAX_EXPOSITION);
    if (src->d)
        dispatcher_families(&b, src->d);
    if (src->st)
        store_families(&b, src->st);
    if (src->svc) {
        service_stats ss;
        service_get_stats(src->svc, &ss);
        gauge(&b, "sluice_open_sessions", "Open sessions.", ss.open_sessions);
        gauge(&b, "sluice_open_tasks", "Start'ed tasks not finished yet.", ss.open_tasks);
    }
    return buf_steal(&b, NULL);
}
