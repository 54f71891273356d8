/*
 * cache_hits_per_s for bench_store: cache hits through the dispatcher, in process.
 *
 * Fills a store with N answers under the keys the dispatcher computes for N distinct
 * prompts (model m-a of a registry whose base URL points nowhere: a miss would fail), then
 * submits the same N prompts to a dispatcher on that store and times until every one has
 * ended. Every task must end as a local cache hit; the figure counts hits per second from
 * the first submit to the last result, lookups included (they run on the submitting
 * thread, as they do for a gRPC worker). The replay runs three times; the median is
 * printed.
 */
#include "bench/bench_store_hits.h"
#include "bench/bench_util.h"

#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "server/common/log.h"
#include "server/dispatch/dispatcher.h"
#include "server/store/cachekey.h"
#include "sluice/status.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_uint_fast64_t hits, ended;

static void on_done(void *ctx, uint64_t id, void *task_ctx, dtask_state final, llm_response *resp) {
    if (resp && resp->local_cache_hit)
        atomic_fetch_add(&hits, 1);
    atomic_fetch_add(&ended, 1);
    llm_response_free(resp);
}

static const dispatcher_sink sink = {on_done, NULL, NULL, NULL, NULL};

static llm_request *prompt(uint64_t i) {
    char text[64];
    snprintf(text, sizeof text, "cached prompt number %llu", (unsigned long long)i);
    return bench_text_request(text, 0);
}

static llm_response *answer(uint64_t i) {
    llm_response *r = llm_response_new();
    r->content = XNEWV(llm_part, 1);
    r->n_content = 1;
    r->content[0].kind = LLM_PART_TEXT;
    r->content[0].text = xasprintf("the stored answer to prompt %llu, with a few more words "
                                   "to look like a short real answer.",
                                   (unsigned long long)i);
    llm_response_set_completion_from_content(r);
    r->finish_reason = xstrdup("stop");
    r->model_used = xstrdup("m-a");
    r->usage.input_tokens = 12;
    r->usage.output_tokens = 20;
    r->cost = 0.00004;
    return r;
}

static registry *nowhere_registry(void) {
    setenv("SLUICE_BENCH_KEY", "x", 1);
    json_t *j =
        json_pack("{s:{s:{s:s, s:s}}, s:{s:{s:s, s:s, s:s, s:s, s:f, s:f, s:i}}}", "keys", "k",
                  "provider", "openai", "env", "SLUICE_BENCH_KEY", "models", "m-a", "provider",
                  "openai", "upstream", "up-a", "base_url", "http://127.0.0.1:1/v1", "key", "k",
                  "input_price", 1.0, "output_price", 2.0, "context_window", 100000);
    registry *reg = NULL;
    char err[256];
    if (registry_from_json(j, &reg, err, sizeof err) != 0)
        fprintf(stderr, "bench: %s\n", err);
    json_decref(j);
    return reg;
}

static void fill(store *st, uint64_t n) {
    llm_sampling eff;
    llm_sampling_merge(&eff, NULL, NULL);
    for (uint64_t i = 0; i < n; i++) {
        llm_request *req = prompt(i);
        cache_key key;
        cachekey_for_model("", "openai", "m-a", req, &eff, &key);
        llm_response *r = answer(i);
        while (store_cache_put(st, &key, r) == SLUICE_ELIMIT)
            usleep(1000);
        llm_response_free(r);
        llm_request_free(req);
    }
    llm_sampling_cleanup(&eff);
    store_flush(st);
}

#define RUNS 3 /* replays; the median is reported (this machine's figures are noisy) */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Submits the n prompts (task ids from id_base + 1) and waits until all ended; returns
 * hits per second from the first submit to the last result. */
static double replay(dispatcher *d, dsession *s, uint64_t n, uint64_t id_base, uint64_t *n_hits,
                     bool *complete) {
    enum { CHUNK = 1000 };
    dispatcher_task_spec specs[CHUNK];
    atomic_store(&hits, 0);
    atomic_store(&ended, 0);
    uint64_t t0 = clock_now_us();
    for (uint64_t off = 0; off < n; off += CHUNK) {
        size_t k = n - off < CHUNK ? (size_t)(n - off) : CHUNK;
        for (size_t i = 0; i < k; i++)
            specs[i] = (dispatcher_task_spec){id_base + off + i + 1, prompt(off + i), NULL};
        dispatcher_submit(d, s, specs, k, &sink);
    }
    uint64_t deadline = clock_now_ms() + 120000;
    while (atomic_load(&ended) < n && clock_now_ms() < deadline)
        usleep(500);
    double secs = (double)(clock_now_us() - t0) / 1e6;
    *complete = atomic_load(&ended) == n;
    if (!*complete)
        fprintf(stderr, "bench_cache_hits: only %llu of %llu tasks ended within 120 s\n",
                (unsigned long long)atomic_load(&ended), (unsigned long long)n);
    *n_hits = atomic_load(&hits);
    return (double)*n_hits / secs;
}

int bench_cache_hits(const char *dir, uint64_t n) {
    log_set_level(LOG_LEVEL_ERROR);
    store_config sc;
    memset(&sc, 0, sizeof sc);
    sc.dir = dir;
    store *st = NULL;
    char err[512];
    registry *reg = nowhere_registry();
    dispatcher *d = NULL;
    dsession *s = NULL;
    dsession_model m = {"m-a", 1, {0}};
    dsession_config c = {0};
    c.models = &m;
    c.n_models = 1;
    dispatcher_config dc = {0};
    if (!reg || store_open(&sc, &st, err, sizeof err) != 0) {
        fprintf(stderr, "bench_cache_hits: %s\n", reg ? err : "registry setup failed");
        registry_free(reg);
        return -1;
    }
    fill(st, n);
    dc.reg = reg;
    dc.store = st;
    if (dispatcher_new(&dc, &d, err, sizeof err) != 0 || dispatcher_start(d) != 0 ||
        dsession_new(reg, &c, clock_now_ms(), &s, err, sizeof err) != 0) {
        fprintf(stderr, "bench_cache_hits: %s\n", err);
        dispatcher_free(d);
        store_close(st);
        registry_free(reg);
        return -1;
    }
    double rates[RUNS];
    bool complete = true;
    uint64_t all_hits = 0;
    for (int r = 0; r < RUNS && complete; r++) {
        uint64_t run_hits = 0;
        rates[r] = replay(d, s, n, (uint64_t)r * n, &run_hits, &complete);
        all_hits += run_hits;
    }
    if (complete) {
        qsort(rates, RUNS, sizeof *rates, cmp_double);
        printf("cache_hits_per_s=%.0f target>=100000 (median of %d replays; %llu of %llu "
               "through the dispatcher were hits)\n",
               rates[RUNS / 2], RUNS, (unsigned long long)all_hits, (unsigned long long)(RUNS * n));
        fflush(stdout);
    }
    dispatcher_session_close(d, s, NULL, NULL);
    dsession_unref(s);
    dispatcher_free(d);
    store_close(st);
    registry_free(reg);
    return complete ? 0 : -1;
}
