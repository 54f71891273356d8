/*
 * bench_store: store-level figures, one per line, "name=value target=...".
 *
 *   cache_writes_per_s      sustained store_cache_put rate into a growing store, timed until
 *                           store_flush returns (everything in the WAL/memtables)
 *   store_cache_gets_per_s  store_cache_get hits on random keys of the big store after restart
 *   restart_s               store_open + store_tasks_scan_unfinished with 1,000,000 cached
 *                           answers and 10,000 unfinished tasks (target 5 s)
 *   restart_after_kill_s    the same after a kill -9 that left entries/10 answers only in the
 *                           WAL (replayed at open)
 *   bytes_per_answer        on-disk bytes per cached ~1 KB answer after flush + full compaction
 *   codec_encode_us         codec_response_pack of one typical answer (the caller-thread cost
 *                           of store_cache_put), mean over 200,000
 *   codec_decode_us         codec_response_unpack + llm_response_free of the same (the decode
 *                           part of every cache hit), mean over 200,000
 *   cache_hits_per_s        200,000 prompts answered from the cache through the dispatcher
 *                           (bench_store_hits.c; target 100,000)
 *
 * Usage: bench_store [--entries N] [--unfinished N] [--dir PATH] (defaults 1000000, 10000,
 * a fresh directory under /tmp, removed at the end). Not a ctest test: timing belongs here.
 */
#include "bench/bench_store_hits.h"
#include "bench/bench_util.h"
#include "tests/fake_provider/fake_test_util.h"
#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "server/common/llm.h"
#include "server/store/codec.h"
#include "server/store/store.h"
#include "server/store/store_internal.h" /* the raw handle, for compaction */
#include "sluice/status.h"

#include <ftw.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static uint64_t rng(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static cache_key key_for(uint64_t i) {
    cache_key k;
    uint64_t saved = rng_state;
    rng_state = i * 0x9E3779B97F4A7C15ull;
    for (int w = 0; w < 4; w++) {
        uint64_t v = rng();
        memcpy(k.b + 8 * w, &v, 8);
    }
    rng_state = saved;
    return k;
}

static const char *const words[] = {
    "the",      "model",   "answer", "request",   "of",      "and",       "to",    "in",
    "is",       "that",    "for",    "it",        "as",      "with",      "was",   "on",
    "data",     "result",  "we",     "can",       "this",    "be",        "are",   "by",
    "system",   "value",   "number", "first",     "because", "however",   "which", "time",
    "example",  "between", "should", "function",  "return",  "output",    "input", "token",
    "question", "reason",  "could",  "different", "process", "important", "each",  "would",
};

/* A typical ~1 KB answer: pseudo-English text, usage, models, one attempt. */
static llm_response *typical_answer(void) {
    char text[1100];
    size_t n = 0;
    while (n < 950) {
        const char *w = words[rng() % (sizeof words / sizeof words[0])];
        size_t wl = strlen(w);
        memcpy(text + n, w, wl);
        n += wl;
        text[n++] = rng() % 12 == 0 ? '.' : ' ';
    }
    text[n] = '\0';
    llm_response *r = llm_response_new();
    r->n_content = 1;
    r->content = XNEWV(llm_part, 1);
    r->content[0] = (llm_part){.kind = LLM_PART_TEXT, .text = xstrdup(text)};
    llm_response_set_completion_from_content(r);
    r->finish_reason = xstrdup("stop");
    r->usage = (llm_usage){.input_tokens = 300 + rng() % 200, .output_tokens = 240};
    r->cost = 0.000321;
    r->model_requested = xstrdup("gpt-4.1-mini");
    r->model_used = xstrdup("gpt-4.1-mini");
    r->latency_ms = 800 + (uint32_t)(rng() % 400);
    llm_response_add_attempt(r, "gpt-4.1-mini", 200, r->latency_ms, 0, NULL);
    return r;
}

static store *open_store(const char *dir) {
    store_config c = {.dir = dir, .cache_max_bytes = 1ull << 40, .write_queue_max = 65536};
    char err[1024];
    store *s = NULL;
    if (store_open(&c, &s, err, sizeof err) != SLUICE_OK) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return s;
}

static void put_retry(store *s, const cache_key *k, const llm_response *r) {
    while (store_cache_put(s, k, r) == SLUICE_ELIMIT)
        sched_yield();
}

/* Writes n answers (a pool of 64 distinct ones) under keys [first, first + n). */
static double fill_cache(store *s, uint64_t first, uint64_t n) {
    llm_response *pool[64];
    for (int i = 0; i < 64; i++)
        pool[i] = typical_answer();
    uint64_t t0 = clock_now_us();
    for (uint64_t i = 0; i < n; i++) {
        cache_key k = key_for(first + i);
        put_retry(s, &k, pool[i % 64]);
    }
    store_flush(s);
    double secs = (double)(clock_now_us() - t0) / 1e6;
    for (int i = 0; i < 64; i++)
        llm_response_free(pool[i]);
    return secs;
}

static void add_tasks(store *s, uint64_t n_unfinished) {
    llm_request *req = bench_text_request("Summarise the following text ...", 0);
    llm_response *res = typical_answer();
    uint64_t first;
    store_reserve_ids(s, "task", 2 * n_unfinished, &first);
    for (uint64_t i = 0; i < 2 * n_unfinished; i += 100) {
        store_task ts[100];
        const store_task *tp[100];
        size_t n = 2 * n_unfinished - i < 100 ? (size_t)(2 * n_unfinished - i) : 100;
        for (size_t j = 0; j < n; j++) {
            ts[j] = (store_task){.id = first + i + (uint64_t)j,
                                 .tenant = "bench",
                                 .session_id = 1,
                                 .index = i + (uint64_t)j,
                                 .request = req,
                                 .state = STORE_TASK_QUEUED,
                                 .created_ms = clock_wall_ms()};
            tp[j] = &ts[j];
        }
        while (store_tasks_put(s, tp, n, NULL, NULL) == SLUICE_ELIMIT)
            sched_yield();
    }
    /* Half of them finish, so the scan must skip finished history. */
    for (uint64_t i = 0; i < 2 * n_unfinished; i += 2)
        while (store_task_finish(s, first + i, STORE_TASK_SUCCEEDED, res, NULL, NULL) ==
               SLUICE_ELIMIT)
            sched_yield();
    store_flush(s);
    llm_response_free(res);
    llm_request_free(req);
}

static int count_task(void *ud, store_task *t) {
    (*(uint64_t *)ud)++;
    store_task_free(t);
    return 0;
}

static double gets_per_s(store *s, uint64_t n_keys, uint64_t n_gets) {
    uint64_t hits = 0, t0 = clock_now_us();
    for (uint64_t i = 0; i < n_gets; i++) {
        cache_key k = key_for(rng() % n_keys);
        llm_response *r = NULL;
        hits += store_cache_get(s, &k, &r) == SLUICE_OK;
        llm_response_free(r);
    }
    double secs = (double)(clock_now_us() - t0) / 1e6;
    if (hits != n_gets)
        fprintf(stderr, "warning: %llu of %llu gets missed\n", (unsigned long long)(n_gets - hits),
                (unsigned long long)n_gets);
    return (double)n_gets / secs;
}

static uint64_t dir_bytes;
static int add_size(const char *p, const struct stat *st, int flag, struct FTW *f) {
    (void)p;
    (void)f;
    if (flag == FTW_F && !strstr(p, "/LOG"))
        dir_bytes += (uint64_t)st->st_size;
    return 0;
}

static double bytes_per_answer(const char *dir, uint64_t n) {
    store *s = open_store(dir);
    fill_cache(s, 0, n);
    store_flush(s);
    for (int i = 0; i < CF_COUNT; i++)
        rocksdb_compact_range_cf(s->db, s->cf[i], NULL, 0, NULL, 0);
    store_close(s); /* flushes memtables; the WAL is then obsolete */
    dir_bytes = 0;
    nftw(dir, add_size, 16, FTW_PHYS);
    return (double)dir_bytes / (double)n;
}

/* Child of restart_after_kill: writes n more answers into dir, waits until they are in the
 * WAL, then dies by SIGKILL with its memtables unflushed. */
static int child_kill(const char *dir, uint64_t first, uint64_t n) {
    store *s = open_store(dir);
    fill_cache(s, first, n);
    raise(SIGKILL);
    return 1;
}

/* Times open + resume scan after a kill -9 that left `n` answers only in the WAL. */
static double restart_after_kill(const char *self, const char *dir, uint64_t first, uint64_t n) {
    char a[32], b[32];
    snprintf(a, sizeof a, "%llu", (unsigned long long)first);
    snprintf(b, sizeof b, "%llu", (unsigned long long)n);
    pid_t pid = fork();
    if (pid == 0) {
        execl(self, self, "--child-kill", dir, a, b, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFSIGNALED(status))
        fprintf(stderr, "warning: the child did not die by a signal\n");
    uint64_t t0 = clock_now_us(), seen = 0;
    store *s = open_store(dir);
    store_tasks_scan_unfinished(s, count_task, &seen);
    double secs = (double)(clock_now_us() - t0) / 1e6;
    store_close(s);
    return secs;
}

/* The codec alone on a typical answer: what every put and every hit pays on top of RocksDB. */
static void codec_figures(void) {
    enum { N = 200000 };
    llm_response *r = typical_answer();
    uint8_t *b;
    size_t len;
    char err[128];
    uint64_t t0 = clock_now_us();
    for (int i = 0; i < N; i++) {
        codec_response_pack(r, 0, &b, &len, err, sizeof err);
        free(b);
    }
    double enc = (double)(clock_now_us() - t0) / N;
    codec_response_pack(r, 0, &b, &len, err, sizeof err);
    t0 = clock_now_us();
    for (int i = 0; i < N; i++) {
        llm_response *out = NULL;
        if (codec_response_unpack(b, len, &out, err, sizeof err) != SLUICE_OK)
            fprintf(stderr, "warning: decode failed: %s\n", err);
        llm_response_free(out);
    }
    double dec = (double)(clock_now_us() - t0) / N;
    printf("codec_encode_us=%.2f target=none (%zu bytes)\n", enc, len);
    printf("codec_decode_us=%.2f target=none\n", dec);
    fflush(stdout);
    free(b);
    llm_response_free(r);
}

/* The 1M-answer store: write rate, clean restart, read rate, restart after kill -9. */
static void run_big(const char *self, const char *dir, uint64_t entries, uint64_t unfinished) {
    store *s = open_store(dir);
    double secs = fill_cache(s, 0, entries);
    printf("cache_writes_per_s=%.0f target=none\n", (double)entries / secs);
    fflush(stdout);
    add_tasks(s, unfinished);
    store_close(s);

    uint64_t t0 = clock_now_us(), seen = 0;
    s = open_store(dir);
    store_tasks_scan_unfinished(s, count_task, &seen);
    double restart = (double)(clock_now_us() - t0) / 1e6;
    if (seen != unfinished)
        fprintf(stderr, "warning: scan saw %llu unfinished tasks, expected %llu\n",
                (unsigned long long)seen, (unsigned long long)unfinished);
    printf("restart_s=%.3f target<=5 (entries=%llu unfinished=%llu)\n", restart,
           (unsigned long long)entries, (unsigned long long)unfinished);
    printf("store_cache_gets_per_s=%.0f target=none\n", gets_per_s(s, entries, 200000));
    fflush(stdout);
    store_close(s);
    uint64_t extra = entries / 10;
    printf("restart_after_kill_s=%.3f target=none (%llu answers only in the WAL)\n",
           restart_after_kill(self, dir, entries, extra), (unsigned long long)extra);
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "--child-kill") == 0)
        return child_kill(argv[2], strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10));
    uint64_t entries = 1000000, unfinished = 10000;
    char dirbuf[64] = "/tmp/sluice-bench-store-XXXXXX";
    const char *base = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--entries") == 0)
            entries = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--unfinished") == 0)
            unfinished = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--dir") == 0)
            base = argv[i + 1];
    }
    bool own_base = !base;
    if (!base && !(base = mkdtemp(dirbuf)))
        return 1;
    mkdir(base, 0755);
    char *big = xasprintf("%s/big", base), *small = xasprintf("%s/small", base);
    char *hits = xasprintf("%s/hits", base);

    codec_figures();
    run_big(argv[0], big, entries, unfinished);
    printf("bytes_per_answer=%.0f target=none (answer ~1 KB of text, %d answers)\n",
           bytes_per_answer(small, 50000), 50000);
    int rc = bench_cache_hits(hits, 200000);
    fake_rmdir_r(big);
    fake_rmdir_r(small);
    fake_rmdir_r(hits);
    if (own_base)
        rmdir(base);
    free(big);
    free(small);
    free(hits);
    return rc ? 1 : 0;
}
