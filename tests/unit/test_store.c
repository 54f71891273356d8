/*
 * test_store: the RocksDB store end to end, on temporary directories under /tmp.
 *
 * Cache (put/get, miss, TTL with a fake clock, corrupt values written with a raw RocksDB
 * handle, size-cap eviction), tasks (put/get, state changes, finish, resume scan, retention
 * with a fake clock, unreadable records, values the codec refuses), sessions, id counters,
 * reopening, open failures with their messages, the bounded write queue, done callbacks after
 * durability, and survival of kill -9 (the test re-executes itself as a child that writes, waits
 * for its callbacks and SIGKILLs itself).
 */
#include "unit/test_util.h"
#include "server/common/alloc.h"
#include "server/common/llm.h"
#include "server/common/log.h"
#include "server/store/codec.h"
#include "server/store/store.h"
#include "server/store/store_internal.h" /* store_explain_open_error */
#include "sluice/status.h"

#include <CUnit/Basic.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- fixtures ------------------------------------------------------------------------ */

static _Atomic uint64_t fake_now = 1000000;
static uint64_t fake_clock(void *ctx) {
    (void)ctx;
    return atomic_load(&fake_now);
}

static char tmpdir[64];
static const char *self_exe; /* argv[0]: re-executed for the child modes */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    chmod(path, 0700);
    return remove(path);
}

static void rm_rf(const char *path) {
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int suite_init(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sluice-test-store-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int suite_cleanup(void) {
    rm_rf(tmpdir);
    return 0;
}

/* A fresh data directory path (not created) for one test. */
static char *fresh_dir(const char *name) {
    char *d = xasprintf("%s/%s", tmpdir, name);
    rm_rf(d);
    return d;
}

static store_config config(const char *dir) {
    store_config c = {.dir = dir, .clock = fake_clock, .sweep_interval_ms = 3600000};
    return c;
}

/* Opens the store at c->dir; a failure to open ends the test. */
static store *open_or_fail(const store_config *c) {
    char err[512] = "";
    store *s = NULL;
    int rc = store_open(c, &s, err, sizeof err);
    if (rc)
        fprintf(stderr, "\n  store_open: %s\n", err);
    CU_ASSERT_EQUAL(rc, SLUICE_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    return s;
}

static llm_request *make_request(const char *text) {
    llm_request *r = llm_request_new();
    llm_request_add_text(r, LLM_ROLE_USER, text);
    r->sampling.set = LLM_SET_TEMPERATURE;
    r->sampling.temperature = 0.5;
    return r;
}

static llm_response *make_response(const char *text, size_t pad) {
    llm_response *r = llm_response_new();
    r->n_content = 1;
    r->content = XNEWV(llm_part, 1);
    char *t = xmalloc(strlen(text) + pad + 1);
    memcpy(t, text, strlen(text));
    memset(t + strlen(text), 'x', pad);
    t[strlen(text) + pad] = '\0';
    r->content[0] = (llm_part){.kind = LLM_PART_TEXT, .text = t};
    llm_response_set_completion_from_content(r);
    r->model_used = xstrdup("model-a");
    r->finish_reason = xstrdup("stop");
    r->usage.input_tokens = 10;
    r->usage.output_tokens = 20;
    r->cost = 0.25;
    llm_response_add_attempt(r, "model-a", 200, 5, 0, NULL);
    return r;
}

static cache_key key_n(unsigned n) {
    cache_key k;
    memset(&k, 0, sizeof k);
    for (int i = 0; i < 32; i++)
        k.b[i] = (uint8_t)(n * 31u + (unsigned)i * 7u + (n >> 8));
    k.b[0] = (uint8_t)n;
    k.b[1] = (uint8_t)(n >> 8);
    return k;
}

/* Equality through the codec: its encoding is exact and deterministic, so equal packed bytes
 * mean equal structs, field for field. */
static bool req_equal(const llm_request *a, const llm_request *b) {
    uint8_t *x = NULL, *y = NULL;
    size_t xl = 0, yl = 0;
    char err[128];
    bool eq = codec_request_pack(a, 0, &x, &xl, err, sizeof err) == SLUICE_OK &&
              codec_request_pack(b, 0, &y, &yl, err, sizeof err) == SLUICE_OK && xl == yl &&
              memcmp(x, y, xl) == 0;
    free(x);
    free(y);
    return eq;
}

static bool resp_equal(const llm_response *a, const llm_response *b) {
    uint8_t *x = NULL, *y = NULL;
    size_t xl = 0, yl = 0;
    char err[128];
    bool eq = codec_response_pack(a, 0, &x, &xl, err, sizeof err) == SLUICE_OK &&
              codec_response_pack(b, 0, &y, &yl, err, sizeof err) == SLUICE_OK && xl == yl &&
              memcmp(x, y, xl) == 0;
    free(x);
    free(y);
    return eq;
}

/* ---- raw RocksDB access (for corrupting and inspecting) ------------------------------ */

typedef struct raw {
    rocksdb_t *db;
    rocksdb_options_t *o;
    char **names;
    size_t n;
    rocksdb_column_family_handle_t **h;
} raw;

static int raw_open(raw *r, const char *dir, const char *const *create, size_t n_create) {
    memset(r, 0, sizeof *r);
    r->o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(r->o, 1);
    rocksdb_options_set_create_missing_column_families(r->o, 1);
    char *e = NULL;
    char **listed = rocksdb_list_column_families(r->o, dir, &r->n, &e);
    rocksdb_free(e);
    e = NULL;
    r->names = XNEWV(char *, r->n + n_create + 1);
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++)
        r->names[k++] = xstrdup(listed[i]);
    if (listed)
        rocksdb_list_column_families_destroy(listed, r->n);
    if (k == 0)
        r->names[k++] = xstrdup("default");
    for (size_t i = 0; i < n_create; i++)
        r->names[k++] = xstrdup(create[i]);
    r->n = k;
    const rocksdb_options_t **opts = XNEWV(const rocksdb_options_t *, r->n);
    for (size_t i = 0; i < r->n; i++)
        opts[i] = r->o;
    r->h = XNEWV(rocksdb_column_family_handle_t *, r->n);
    r->db = rocksdb_open_column_families(r->o, dir, (int)r->n, (const char *const *)r->names, opts,
                                         r->h, &e);
    free(opts);
    if (e) {
        fprintf(stderr, "raw open: %s\n", e);
        rocksdb_free(e);
        return -1;
    }
    return 0;
}

static rocksdb_column_family_handle_t *raw_cf(raw *r, const char *name) {
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->names[i], name) == 0)
            return r->h[i];
    return NULL;
}

static void raw_put(raw *r, const char *cf, const void *k, size_t kl, const void *v, size_t vl) {
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    char *e = NULL;
    rocksdb_put_cf(r->db, wo, raw_cf(r, cf), k, kl, v, vl, &e);
    CU_ASSERT_PTR_NULL(e);
    rocksdb_free(e);
    rocksdb_writeoptions_destroy(wo);
}

static bool raw_has(raw *r, const char *cf, const void *k, size_t kl) {
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    char *e = NULL;
    size_t vl;
    char *v = rocksdb_get_cf(r->db, ro, raw_cf(r, cf), k, kl, &vl, &e);
    rocksdb_readoptions_destroy(ro);
    rocksdb_free(e);
    bool found = v != NULL;
    rocksdb_free(v);
    return found;
}

static void raw_close(raw *r) {
    if (r->db) {
        for (size_t i = 0; i < r->n; i++)
            rocksdb_column_family_handle_destroy(r->h[i]);
        rocksdb_close(r->db);
    }
    for (size_t i = 0; i < r->n; i++)
        free(r->names[i]);
    free(r->names);
    free(r->h);
    rocksdb_options_destroy(r->o);
}

/* ---- cache --------------------------------------------------------------------------- */

static void test_cache_put_get_miss(void) {
    char *dir = fresh_dir("cache");
    store_config c = config(dir);
    store *s = open_or_fail(&c);
    cache_key k1 = key_n(1), k2 = key_n(2);
    llm_response *r = make_response("answer one", 0), *got = NULL;
    CU_ASSERT_EQUAL(store_cache_get(s, &k1, &got), SLUICE_ENOTFOUND);
    CU_ASSERT_EQUAL(store_cache_put(s, &k1, r), SLUICE_OK);
    store_flush(s);
    CU_ASSERT_EQUAL_FATAL(store_cache_get(s, &k1, &got), SLUICE_OK);
    CU_ASSERT(resp_equal(r, got)); /* returned exactly as stored */
    llm_response_free(got);
    got = NULL;
    CU_ASSERT_EQUAL(store_cache_get(s, &k2, &got), SLUICE_ENOTFOUND);
    CU_ASSERT_PTR_NULL(got);
    CU_ASSERT_EQUAL(store_cache_put(s, &k1, NULL), SLUICE_EINVAL);
    store_stats st;
    store_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.cache_hits, 1);
    CU_ASSERT_EQUAL(st.cache_misses, 2);
    CU_ASSERT_EQUAL(st.cache_puts, 1);
    CU_ASSERT_EQUAL(st.cache_entries, 1);
    CU_ASSERT(st.cache_bytes > 32 + strlen("answer one"));
    llm_response_free(r);
    store_close(s);
    free(dir);
}

/* A put is seen by the next lookup, whether or not the writer has applied it yet (the
 * dispatcher never pays twice for an answer it just got). */
static void test_cache_read_your_writes(void) {
    char *dir = fresh_dir("ryw");
    store_config c = config(dir);
    store *s = open_or_fail(&c);
    size_t hits = 0;
    for (uint64_t i = 0; i < 2000; i++) {
        cache_key k = key_n(1000 + i);
        char text[32];
        snprintf(text, sizeof text, "answer %llu", (unsigned long long)i);
        llm_response *r = make_response(text, 0), *got = NULL;
        CU_ASSERT_EQUAL(store_cache_put(s, &k, r), SLUICE_OK);
        if (store_cache_get(s, &k, &got) == SLUICE_OK && resp_equal(r, got))
            hits++;
        llm_response_free(got);
        llm_response_free(r);
    }
    CU_ASSERT_EQUAL(hits, 2000);
    store_flush(s); /* and once applied, still there */
    llm_response *got = NULL;
    cache_key k = key_n(1000);
    CU_ASSERT_EQUAL(store_cache_get(s, &k, &got), SLUICE_OK);
    llm_response_free(got);
    store_close(s);
    free(dir);
}

static void test_cache_ttl(void) {
    char *dir = fresh_dir("ttl");
    store_config c = config(dir);
    c.cache_ttl_ms = 1000;
    store *s = open_or_fail(&c);
    uint64_t t0 = atomic_load(&fake_now);
    cache_key k = key_n(7);
    llm_response *r = make_response("ttl", 0), *got = NULL;
    store_cache_put(s, &k, r);
    store_flush(s);
    atomic_store(&fake_now, t0 + 999);
    CU_ASSERT_EQUAL(store_cache_get(s, &k, &got), SLUICE_OK);
    llm_response_free(got);
    got = NULL;
    atomic_store(&fake_now, t0 + 1000);
    CU_ASSERT_EQUAL(store_cache_get(s, &k, &got), SLUICE_ENOTFOUND);
    store_flush(s);
    /* Deleted, not just hidden: back in time it is still gone. */
    atomic_store(&fake_now, t0);
    CU_ASSERT_EQUAL(store_cache_get(s, &k, &got), SLUICE_ENOTFOUND);
    store_stats st;
    store_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.cache_expired, 1);
    CU_ASSERT_EQUAL(st.cache_entries, 0);
    CU_ASSERT_EQUAL(st.cache_bytes, 0);
    /* The sweep expires entries nobody looks up. */
    store_cache_put(s, &k, r);
    store_flush(s);
    atomic_store(&fake_now, t0 + 5000);
    store_sweep(s);
    store_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.cache_expired, 2);
    CU_ASSERT_EQUAL(st.cache_entries, 0);
    atomic_store(&fake_now, t0);
    CU_ASSERT_EQUAL(store_cache_get(s, &k, &got), SLUICE_ENOTFOUND);
    llm_response_free(r);
    store_close(s);
    free(dir);
}

/* Sends the log to the file at `path` (created or emptied); log_restore(fd) undoes it. */
static int log_to(const char *path) {
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    CU_ASSERT(fd >= 0);
    log_set_fd(fd);
    return fd;
}

static void log_restore(int fd) {
    log_set_fd(2);
    close(fd);
}

/* Counts lines containing needle in the file at path. */
static int count_in_file(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[10000];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

static void test_cache_corrupt(void) {
    char *dir = fresh_dir("corrupt");
    store_config c = config(dir);
    store *s = open_or_fail(&c);
    llm_response *r = make_response("fine", 0), *got = NULL;
    for (unsigned i = 0; i < 5; i++) {
        cache_key k = key_n(100 + i);
        store_cache_put(s, &k, r);
    }
    store_close(s);

    /* Garbage, a good header before bytes that are not protobuf, a valid message with an
     * out-of-range error_kind (field 3 = 99), and a value of store schema 1 (JSON). */
    static const char hdr[] = "\x02\0\0\0\0\0\0\0\x01\0\x01m";
    static const char old[] = "\x01\0\0\0\0\0\0\0\x01\0\x01m{\"is_error\":false}";
    char v2[64], v3[64];
    memcpy(v2, hdr, 12);
    memcpy(v2 + 12, "\xff\xff\xff", 3);
    memcpy(v3, hdr, 12);
    memcpy(v3 + 12, "\x18\x63", 2);
    raw rw;
    CU_ASSERT_EQUAL_FATAL(raw_open(&rw, dir, NULL, 0), 0);
    cache_key k0 = key_n(100), k1 = key_n(101), k2 = key_n(102), k4 = key_n(104);
    raw_put(&rw, "cache", k0.b, 32, "\xde\xad\xbe\xef", 4);
    raw_put(&rw, "cache", k1.b, 32, v2, 15);
    raw_put(&rw, "cache", k2.b, 32, v3, 14);
    raw_put(&rw, "cache", k4.b, 32, old, sizeof old - 1);
    raw_close(&rw);

    char *logpath = xasprintf("%s/log.txt", tmpdir);
    int fd = log_to(logpath);
    s = open_or_fail(&c);
    for (int storm = 0; storm < 20; storm++) { /* a lookup storm on the bad keys */
        CU_ASSERT_EQUAL(store_cache_get(s, &k0, &got), SLUICE_ENOTFOUND);
        CU_ASSERT_EQUAL(store_cache_get(s, &k1, &got), SLUICE_ENOTFOUND);
        CU_ASSERT_EQUAL(store_cache_get(s, &k2, &got), SLUICE_ENOTFOUND);
        CU_ASSERT_EQUAL(store_cache_get(s, &k4, &got), SLUICE_ENOTFOUND);
    }
    store_flush(s);
    CU_ASSERT_EQUAL(store_cache_get(s, &k0, &got), SLUICE_ENOTFOUND);
    cache_key k3 = key_n(103);
    CU_ASSERT_EQUAL(store_cache_get(s, &k3, &got), SLUICE_OK); /* the good one survives */
    llm_response_free(got);
    store_stats st;
    store_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.cache_corrupt, 4);
    store_close(s);
    log_restore(fd);
    CU_ASSERT_EQUAL(count_in_file(logpath, "corrupt cache entry"), 4);
    if (getenv("SLUICE_TEST_VERBOSE")) {
        char *cmd = xasprintf("cat %s >&2", logpath);
        CU_ASSERT(system(cmd) == 0);
        free(cmd);
    }

    CU_ASSERT_EQUAL_FATAL(raw_open(&rw, dir, NULL, 0), 0);
    CU_ASSERT_FALSE(raw_has(&rw, "cache", k0.b, 32));
    CU_ASSERT_FALSE(raw_has(&rw, "cache", k1.b, 32));
    CU_ASSERT_FALSE(raw_has(&rw, "cache", k2.b, 32));
    CU_ASSERT_FALSE(raw_has(&rw, "cache", k4.b, 32));
    CU_ASSERT_TRUE(raw_has(&rw, "cache", k3.b, 32));
    raw_close(&rw);
    unlink(logpath);
    free(logpath);
    llm_response_free(r);
    free(dir);
}

static void test_cache_size_cap(void) {
    char *dir = fresh_dir("cap");
    store_config c = config(dir);
    c.cache_max_bytes = 50000;
    store *s = open_or_fail(&c);
    llm_response *r = make_response("big", 1000), *got = NULL;
    uint64_t t0 = atomic_load(&fake_now);
    for (unsigned i = 0; i < 200; i++) {
        atomic_store(&fake_now, t0 + i); /* entry i is i ms old-ordered */
        cache_key k = key_n(1000 + i);
        CU_ASSERT_EQUAL(store_cache_put(s, &k, r), SLUICE_OK);
    }
    /* Overwrites of one key leave stale age entries that the sweep must account for. */
    cache_key kw = key_n(1199);
    for (unsigned i = 0; i < 5; i++) {
        atomic_store(&fake_now, t0 + 300 + i);
        store_cache_put(s, &kw, r);
    }
    store_flush(s);
    store_stats st;
    store_sweep(s); /* the writer may have started on its own: the cache outgrew its cap */
    store_get_stats(s, &st);
    CU_ASSERT(st.cache_bytes <= c.cache_max_bytes);
    CU_ASSERT(st.cache_bytes > c.cache_max_bytes / 2);
    CU_ASSERT(st.cache_evicted > 100);
    cache_key oldest = key_n(1000), newest = key_n(1198);
    CU_ASSERT_EQUAL(store_cache_get(s, &oldest, &got), SLUICE_ENOTFOUND);
    CU_ASSERT_EQUAL(store_cache_get(s, &newest, &got), SLUICE_OK);
    llm_response_free(got);
    CU_ASSERT_EQUAL(store_cache_get(s, &kw, &got), SLUICE_OK); /* newest write of it */
    llm_response_free(got);
    got = NULL;
    /* Count what is really left: it must match the estimate. */
    uint64_t live = 0;
    for (unsigned i = 0; i < 200; i++) {
        cache_key k = key_n(1000 + i);
        if (store_cache_get(s, &k, &got) == SLUICE_OK)
            live++;
        llm_response_free(got);
        got = NULL;
    }
    store_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.cache_entries, live);
    uint64_t bytes = st.cache_bytes;
    store_close(s);
    s = open_or_fail(&c); /* the estimate survives a restart exactly */
    store_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.cache_bytes, bytes);
    CU_ASSERT_EQUAL(st.cache_entries, live);
    store_close(s);
    llm_response_free(r);
    free(dir);
}

static void test_cache_cap_without_explicit_sweep(void) {
    char *dir = fresh_dir("autocap");
    store_config c = config(dir); /* sweep interval: one hour */
    c.cache_max_bytes = 100000;
    store *s = open_or_fail(&c);
    llm_response *r = make_response("burst", 1000);
    for (unsigned i = 0; i < 1000; i++) {
        cache_key k = key_n(20000 + i);
        while (store_cache_put(s, &k, r) == SLUICE_ELIMIT)
            usleep(100);
    }
    store_flush(s);
    store_stats st;
    for (int i = 0; i < 500; i++) { /* the writer sweeps by itself; allow it 5 s */
        store_get_stats(s, &st);
        if (st.cache_bytes <= c.cache_max_bytes + c.cache_max_bytes / 16)
            break;
        usleep(10000);
    }
    CU_ASSERT(st.cache_bytes <= c.cache_max_bytes + c.cache_max_bytes / 16);
    CU_ASSERT(st.cache_evicted > 0);
    store_close(s);
    llm_response_free(r);
    free(dir);
}

/* ---- tasks --------------------------------------------------------------------------- */

static store_task *make_task(uint64_t id, store_task_state state) {
    store_task *t = XNEW(store_task);
    t->id = id;
    t->tenant = xstrdup("tenant-x");
    t->session_id = 77;
    t->index = id * 10;
    t->custom_id = id % 2 ? xasprintf("custom-%llu", (unsigned long long)id) : NULL;
    char text[64];
    snprintf(text, sizeof text, "prompt %llu", (unsigned long long)id);
    t->request = make_request(text);
    t->state = state;
    t->created_ms = atomic_load(&fake_now);
    return t;
}

typedef struct done_rec {
    atomic_int calls;
    atomic_int last_status;
    store *s;
    uint64_t check_id; /* readable from the callback when non-zero */
    atomic_int readable;
} done_rec;

static void on_done(void *ud, int status) {
    done_rec *d = ud;
    if (d->check_id) {
        store_task *t = NULL;
        if (store_task_get(d->s, d->check_id, &t) == SLUICE_OK)
            atomic_fetch_add(&d->readable, 1);
        store_task_free(t);
    }
    atomic_store(&d->last_status, status);
    atomic_fetch_add(&d->calls, 1);
}

typedef struct scan_rec {
    size_t n;
    uint64_t ids[64];
} scan_rec;

static int on_task(void *ud, store_task *t) {
    scan_rec *r = ud;
    if (r->n < 64)
        r->ids[r->n++] = t->id;
    store_task_free(t);
    return 0;
}

static void test_tasks_lifecycle(void) {
    char *dir = fresh_dir("tasks");
    store_config c = config(dir);
    store *s = open_or_fail(&c);
    store_task *tasks[5];
    for (int i = 0; i < 5; i++)
        tasks[i] = make_task((uint64_t)i + 1, STORE_TASK_QUEUED);
    done_rec d = {.s = s, .check_id = 3};
    CU_ASSERT_EQUAL(store_tasks_put(s, (const store_task *const *)tasks, 5, on_done, &d),
                    SLUICE_OK);
    CU_ASSERT_EQUAL(store_task_set_state(s, 2, STORE_TASK_RUNNING), SLUICE_OK);
    llm_response *res = make_response("result two", 0);
    CU_ASSERT_EQUAL(store_task_finish(s, 2, STORE_TASK_SUCCEEDED, res, NULL, NULL), SLUICE_OK);
    CU_ASSERT_EQUAL(store_task_finish(s, 4, STORE_TASK_FAILED, NULL, NULL, NULL), SLUICE_OK);
    CU_ASSERT_EQUAL(store_task_set_state(s, 5, STORE_TASK_CANCELLED), SLUICE_OK);
    store_flush(s);
    CU_ASSERT_EQUAL(atomic_load(&d.calls), 1);
    CU_ASSERT_EQUAL(atomic_load(&d.last_status), SLUICE_OK);
    CU_ASSERT_EQUAL(atomic_load(&d.readable), 1); /* durable before the callback */

    store_task *t = NULL;
    CU_ASSERT_EQUAL_FATAL(store_task_get(s, 1, &t), SLUICE_OK);
    CU_ASSERT_EQUAL(t->state, STORE_TASK_QUEUED);
    CU_ASSERT_STRING_EQUAL(t->tenant, "tenant-x");
    CU_ASSERT_EQUAL(t->session_id, 77);
    CU_ASSERT_EQUAL(t->index, 10);
    CU_ASSERT_STRING_EQUAL(t->custom_id, "custom-1");
    CU_ASSERT_EQUAL(t->created_ms, tasks[0]->created_ms);
    CU_ASSERT_PTR_NULL(t->result);
    CU_ASSERT(req_equal(tasks[0]->request, t->request));
    store_task_free(t);
    CU_ASSERT_EQUAL_FATAL(store_task_get(s, 2, &t), SLUICE_OK);
    CU_ASSERT_EQUAL(t->state, STORE_TASK_SUCCEEDED);
    CU_ASSERT_PTR_NULL(t->custom_id);
    CU_ASSERT_EQUAL(t->finished_ms, atomic_load(&fake_now));
    CU_ASSERT_PTR_NOT_NULL_FATAL(t->result);
    CU_ASSERT(resp_equal(res, t->result));
    store_task_free(t);
    CU_ASSERT_EQUAL_FATAL(store_task_get(s, 5, &t), SLUICE_OK);
    CU_ASSERT_EQUAL(t->state, STORE_TASK_CANCELLED);
    store_task_free(t);
    CU_ASSERT_EQUAL(store_task_get(s, 99, &t), SLUICE_ENOTFOUND);

    scan_rec sr = {0};
    CU_ASSERT_EQUAL(store_tasks_scan_unfinished(s, on_task, &sr), 0);
    CU_ASSERT_EQUAL(sr.n, 2);
    CU_ASSERT(sr.n == 2 && sr.ids[0] == 1 && sr.ids[1] == 3);
    llm_response_free(res);
    for (int i = 0; i < 5; i++)
        store_task_free(tasks[i]);
    store_close(s);
    free(dir);
}

/* A finished task stays finished with its first result; unknown ids are ignored. */
static void test_tasks_finish_is_final(void) {
    char *dir = fresh_dir("final");
    store_config c = config(dir);
    store *s = open_or_fail(&c);
    store_task *t1 = make_task(1, STORE_TASK_QUEUED), *t2 = make_task(2, STORE_TASK_RUNNING);
    const store_task *ts[] = {t1, t2};
    store_tasks_put(s, ts, 2, NULL, NULL);
    llm_response *res = make_response("result two", 0);
    store_task_finish(s, 2, STORE_TASK_SUCCEEDED, res, NULL, NULL);
    store_task *t = NULL;
    llm_response *other = make_response("late", 0);
    store_task_finish(s, 2, STORE_TASK_FAILED, other, NULL, NULL);
    store_task_set_state(s, 2, STORE_TASK_RUNNING);
    store_task_set_state(s, 1234, STORE_TASK_RUNNING);
    store_flush(s);
    CU_ASSERT_EQUAL_FATAL(store_task_get(s, 2, &t), SLUICE_OK);
    CU_ASSERT_EQUAL(t->state, STORE_TASK_SUCCEEDED);
    CU_ASSERT(t->result && resp_equal(res, t->result));
    store_task_free(t);
    CU_ASSERT_EQUAL(store_task_get(s, 1234, &t), SLUICE_ENOTFOUND);
    CU_ASSERT_EQUAL(store_task_finish(s, 1, STORE_TASK_RUNNING, NULL, NULL, NULL), SLUICE_EINVAL);
    CU_ASSERT_EQUAL(store_tasks_put(s, NULL, 0, NULL, NULL), SLUICE_EINVAL);
    llm_response_free(other);
    llm_response_free(res);
    store_task_free(t1);
    store_task_free(t2);
    store_close(s);
    free(dir);
}

static void test_tasks_retention(void) {
    char *dir = fresh_dir("retention");
    store_config c = config(dir);
    c.result_retention_ms = 1000;
    store *s = open_or_fail(&c);
    uint64_t t0 = atomic_load(&fake_now);
    store_task *tasks[3] = {make_task(1, STORE_TASK_QUEUED), make_task(2, STORE_TASK_QUEUED),
                            make_task(3, STORE_TASK_QUEUED)};
    store_tasks_put(s, (const store_task *const *)tasks, 3, NULL, NULL);
    store_task_finish(s, 1, STORE_TASK_SUCCEEDED, NULL, NULL, NULL);
    atomic_store(&fake_now, t0 + 500);
    store_task_finish(s, 2, STORE_TASK_SUCCEEDED, NULL, NULL, NULL);
    store_flush(s);
    store_task *t = NULL;
    atomic_store(&fake_now, t0 + 999);
    store_sweep(s);
    CU_ASSERT_EQUAL(store_task_get(s, 1, &t), SLUICE_OK);
    store_task_free(t);
    atomic_store(&fake_now, t0 + 1000);
    store_sweep(s);
    CU_ASSERT_EQUAL(store_task_get(s, 1, &t), SLUICE_ENOTFOUND);
    CU_ASSERT_EQUAL(store_task_get(s, 2, &t), SLUICE_OK);
    store_task_free(t);
    atomic_store(&fake_now, t0 + 100000);
    store_sweep(s);
    CU_ASSERT_EQUAL(store_task_get(s, 2, &t), SLUICE_ENOTFOUND);
    CU_ASSERT_EQUAL(store_task_get(s, 3, &t), SLUICE_OK); /* unfinished: kept forever */
    store_task_free(t);
    /* A task put again over a finished one loses the old retention entry with it. */
    store_task_finish(s, 3, STORE_TASK_SUCCEEDED, NULL, NULL, NULL);
    const store_task *again[] = {tasks[2]};
    store_tasks_put(s, again, 1, NULL, NULL);
    store_flush(s);
    atomic_store(&fake_now, t0 + 1000000);
    store_sweep(s);
    CU_ASSERT_EQUAL(store_task_get(s, 3, &t), SLUICE_OK);
    store_task_free(t);
    store_stats st;
    store_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.tasks_deleted, 2);
    CU_ASSERT_EQUAL(st.tasks_written, 4); /* 3 + the put again */
    for (int i = 0; i < 3; i++)
        store_task_free(tasks[i]);
    store_close(s);
    atomic_store(&fake_now, t0);
    free(dir);
}

/* More entries than one sweep pass visits: store_sweep must run passes until done. */
static void test_sweep_many_passes(void) {
    char *dir = fresh_dir("passes");
    store_config c = config(dir);
    c.result_retention_ms = 1000;
    c.cache_ttl_ms = 1000;
    store *s = open_or_fail(&c);
    uint64_t t0 = atomic_load(&fake_now);
    enum { N = 10000 };
    store_task *t = make_task(0, STORE_TASK_SUCCEEDED);
    t->finished_ms = t0;
    llm_response *r = make_response("p", 0);
    for (uint64_t i = 1; i <= N; i++) {
        t->id = i;
        const store_task *one[] = {t};
        while (store_tasks_put(s, one, 1, NULL, NULL) == SLUICE_ELIMIT)
            usleep(100);
        cache_key k = key_n(30000 + (unsigned)i);
        while (store_cache_put(s, &k, r) == SLUICE_ELIMIT)
            usleep(100);
    }
    store_flush(s);
    atomic_store(&fake_now, t0 + 1000);
    store_sweep(s);
    store_stats st;
    store_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.tasks_deleted, N);
    CU_ASSERT_EQUAL(st.cache_expired, N);
    CU_ASSERT_EQUAL(st.cache_entries, 0);
    CU_ASSERT_EQUAL(st.cache_bytes, 0);
    store_task *got = NULL;
    CU_ASSERT_EQUAL(store_task_get(s, N, &got), SLUICE_ENOTFOUND);
    store_close(s);
    store_task_free(t);
    llm_response_free(r);
    atomic_store(&fake_now, t0);
    free(dir);
}

/* What the codec refuses is refused by the call (SLUICE_EINVAL), and nothing is stored. */
static void test_codec_refusals(void) {
    char *dir = fresh_dir("refusals");
    store_config c = config(dir);
    store *s = open_or_fail(&c);
    int fd = log_to("/dev/null"); /* the refusals are logged */
    llm_response *bad = make_response("bad", 0);
    bad->error_kind = (llm_error_kind)42;
    cache_key k = key_n(7);
    CU_ASSERT_EQUAL(store_cache_put(s, &k, bad), SLUICE_EINVAL);
    store_task *t1 = make_task(1, STORE_TASK_QUEUED), *t2 = make_task(2, STORE_TASK_QUEUED);
    t2->request->messages[0].role = (llm_role)9;
    const store_task *both[] = {t1, t2};
    CU_ASSERT_EQUAL(store_tasks_put(s, both, 2, NULL, NULL), SLUICE_EINVAL);
    CU_ASSERT_EQUAL(store_tasks_put(s, both, 1, NULL, NULL), SLUICE_OK);
    CU_ASSERT_EQUAL(store_task_finish(s, 1, STORE_TASK_SUCCEEDED, bad, NULL, NULL), SLUICE_EINVAL);
    store_flush(s);
    log_restore(fd);
    llm_response *got = NULL;
    CU_ASSERT_EQUAL(store_cache_get(s, &k, &got), SLUICE_ENOTFOUND);
    store_task *t = NULL;
    CU_ASSERT_EQUAL(store_task_get(s, 2, &t), SLUICE_ENOTFOUND); /* the batch was refused */
    CU_ASSERT_EQUAL_FATAL(store_task_get(s, 1, &t), SLUICE_OK);
    CU_ASSERT_EQUAL(t->state, STORE_TASK_QUEUED); /* the refused finish did not happen */
    store_task_free(t);
    store_stats st;
    store_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.cache_dropped, 1);
    /* An all-default result packs to no bytes and still comes back as a result. */
    llm_response *empty = llm_response_new();
    CU_ASSERT_EQUAL(store_task_finish(s, 1, STORE_TASK_FAILED, empty, NULL, NULL), SLUICE_OK);
    store_flush(s);
    CU_ASSERT_EQUAL_FATAL(store_task_get(s, 1, &t), SLUICE_OK);
    CU_ASSERT(t->state == STORE_TASK_FAILED && t->result && resp_equal(empty, t->result));
    store_task_free(t);
    llm_response_free(empty);
    llm_response_free(bad);
    store_task_free(t1);
    store_task_free(t2);
    store_close(s);
    free(dir);
}

/* A task whose record or status does not decode is EIO for get and skipped by the scan. */
static void test_tasks_corrupt(void) {
    char *dir = fresh_dir("taskcorrupt");
    store_config c = config(dir);
    store *s = open_or_fail(&c);
    store_task *ts[3];
    for (int i = 0; i < 3; i++)
        ts[i] = make_task((uint64_t)i + 1, STORE_TASK_QUEUED);
    CU_ASSERT_EQUAL(store_tasks_put(s, (const store_task *const *)ts, 3, NULL, NULL), SLUICE_OK);
    store_close(s);
    raw rw;
    CU_ASSERT_EQUAL_FATAL(raw_open(&rw, dir, NULL, 0), 0);
    uint8_t k[9] = {0, 0, 0, 0, 0, 0, 0, 1, 'r'};
    raw_put(&rw, "tasks", k, 9, "\x3a\x02\x12\xff", 4); /* request: truncated message */
    k[7] = 2;
    k[8] = 's';
    raw_put(&rw, "tasks", k, 9, "\x02\x01\0\0\0\0\0\0\0\0\x01\xff", 12); /* bad result */
    raw_close(&rw);
    int fd = log_to("/dev/null");
    s = open_or_fail(&c);
    store_task *t = NULL;
    CU_ASSERT_EQUAL(store_task_get(s, 1, &t), SLUICE_EIO);
    CU_ASSERT_EQUAL(store_task_get(s, 2, &t), SLUICE_EIO);
    CU_ASSERT_PTR_NULL(t);
    scan_rec sr = {0};
    CU_ASSERT_EQUAL(store_tasks_scan_unfinished(s, on_task, &sr), 0);
    CU_ASSERT(sr.n == 1 && sr.ids[0] == 3);
    log_restore(fd);
    for (int i = 0; i < 3; i++)
        store_task_free(ts[i]);
    store_close(s);
    free(dir);
}

/* ---- sessions and ids ---------------------------------------------------------------- */

typedef struct sess_rec {
    int n;
    uint64_t ids[8];
    char tenants[8][32];
    size_t lens[8];
    char data[8][32];
} sess_rec;

static int on_session(void *ud, uint64_t id, const char *tenant, const char *data, size_t len) {
    sess_rec *r = ud;
    if (r->n < 8 && len <= 32) {
        r->ids[r->n] = id;
        snprintf(r->tenants[r->n], 32, "%s", tenant);
        memcpy(r->data[r->n], data, len);
        r->lens[r->n++] = len;
    }
    return 0;
}

static void test_sessions(void) {
    char *dir = fresh_dir("sessions");
    store_config c = config(dir);
    store *s = open_or_fail(&c);
    CU_ASSERT_EQUAL(store_session_put(s, 5, "t1", "a\0b", 3), SLUICE_OK);
    CU_ASSERT_EQUAL(store_session_put(s, 2, "t2", "", 0), SLUICE_OK);
    CU_ASSERT_EQUAL(store_session_put(s, 9, "t3", "zz", 2), SLUICE_OK);
    CU_ASSERT_EQUAL(store_session_put(s, 9, "t3", "yy", 2), SLUICE_OK); /* replaces */
    CU_ASSERT_EQUAL(store_session_delete(s, 5), SLUICE_OK);
    store_flush(s);
    sess_rec r = {0};
    CU_ASSERT_EQUAL(store_sessions_scan(s, on_session, &r), 0);
    CU_ASSERT_EQUAL_FATAL(r.n, 2);
    CU_ASSERT_EQUAL(r.ids[0], 2);
    CU_ASSERT_STRING_EQUAL(r.tenants[0], "t2");
    CU_ASSERT_EQUAL(r.lens[0], 0);
    CU_ASSERT_EQUAL(r.ids[1], 9);
    CU_ASSERT(r.lens[1] == 2 && memcmp(r.data[1], "yy", 2) == 0);
    store_session_put(s, 5, "t1", "a\0b", 3);
    store_close(s);
    s = open_or_fail(&c);
    memset(&r, 0, sizeof r);
    store_sessions_scan(s, on_session, &r);
    CU_ASSERT_EQUAL_FATAL(r.n, 3);
    CU_ASSERT(r.ids[1] == 5 && r.lens[1] == 3 && memcmp(r.data[1], "a\0b", 3) == 0);
    store_close(s);
    free(dir);
}

static void test_reserve_ids(void) {
    char *dir = fresh_dir("ids");
    store_config c = config(dir);
    store *s = open_or_fail(&c);
    uint64_t a, b, x;
    CU_ASSERT_EQUAL(store_reserve_ids(s, "task", 10, &a), SLUICE_OK);
    CU_ASSERT_EQUAL(a, 1);
    CU_ASSERT_EQUAL(store_reserve_ids(s, "task", 1, &b), SLUICE_OK);
    CU_ASSERT_EQUAL(b, 11);
    CU_ASSERT_EQUAL(store_reserve_ids(s, "session", 1, &x), SLUICE_OK);
    CU_ASSERT_EQUAL(x, 1); /* counters are independent */
    CU_ASSERT_EQUAL(store_reserve_ids(s, "task", 0, &x), SLUICE_EINVAL);
    CU_ASSERT_EQUAL(store_reserve_ids(s, "", 1, &x), SLUICE_EINVAL);
    store_close(s);
    s = open_or_fail(&c);
    CU_ASSERT_EQUAL(store_reserve_ids(s, "task", 5, &x), SLUICE_OK);
    CU_ASSERT_EQUAL(x, 12);
    CU_ASSERT_EQUAL(store_reserve_ids(s, "session", 1, &x), SLUICE_OK);
    CU_ASSERT_EQUAL(x, 2);
    store_close(s);
    free(dir);
}

static void test_reopen_keeps_everything(void) {
    char *dir = fresh_dir("reopen");
    store_config c = config(dir);
    store *s = open_or_fail(&c);
    llm_response *r = make_response("kept", 100), *got = NULL;
    cache_key k = key_n(5);
    store_cache_put(s, &k, r);
    store_task *t1 = make_task(1, STORE_TASK_RUNNING), *t2 = make_task(2, STORE_TASK_QUEUED);
    const store_task *ts[] = {t1, t2};
    store_tasks_put(s, ts, 2, NULL, NULL);
    store_task_finish(s, 2, STORE_TASK_SUCCEEDED, r, NULL, NULL);
    store_session_put(s, 3, "t", "cfg", 3);
    store_flush(s);
    store_stats before;
    store_get_stats(s, &before);
    store_close(s);

    s = open_or_fail(&c);
    CU_ASSERT_EQUAL_FATAL(store_cache_get(s, &k, &got), SLUICE_OK);
    CU_ASSERT(resp_equal(r, got));
    llm_response_free(got);
    store_task *t = NULL;
    CU_ASSERT_EQUAL_FATAL(store_task_get(s, 2, &t), SLUICE_OK);
    CU_ASSERT(t->state == STORE_TASK_SUCCEEDED && t->result && resp_equal(r, t->result));
    store_task_free(t);
    scan_rec sr = {0};
    store_tasks_scan_unfinished(s, on_task, &sr);
    CU_ASSERT(sr.n == 1 && sr.ids[0] == 1);
    sess_rec ss = {0};
    store_sessions_scan(s, on_session, &ss);
    CU_ASSERT_EQUAL(ss.n, 1);
    store_stats after;
    store_get_stats(s, &after);
    CU_ASSERT_EQUAL(after.cache_bytes, before.cache_bytes);
    CU_ASSERT_EQUAL(after.cache_entries, 1);
    store_close(s);
    store_task_free(t1);
    store_task_free(t2);
    llm_response_free(r);
    free(dir);
}

/* ---- the write queue ----------------------------------------------------------------- */

typedef struct gate {
    sem_t entered, release;
} gate;

static void on_done_blocking(void *ud, int status) {
    (void)status;
    gate *g = ud;
    sem_post(&g->entered);
    sem_wait(&g->release);
}

/* Puts task 1 with a callback that blocks: returns once the writer has applied it and sits
 * in the callback (until sem_post(&g->release)). The caller frees the task and, once the
 * writer is released, calls gate_destroy(). */
static store_task *stall_writer(store *s, gate *g) {
    sem_init(&g->entered, 0, 0);
    sem_init(&g->release, 0, 0);
    store_task *t = make_task(1, STORE_TASK_QUEUED);
    const store_task *ts[] = {t};
    /* Fatal: without the put, the wait below would never end. */
    CU_ASSERT_EQUAL_FATAL(store_tasks_put(s, ts, 1, on_done_blocking, g), SLUICE_OK);
    sem_wait(&g->entered);
    return t;
}

static void gate_destroy(gate *g) {
    sem_destroy(&g->entered);
    sem_destroy(&g->release);
}

static void test_write_queue_full(void) {
    char *dir = fresh_dir("queue");
    store_config c = config(dir);
    c.write_queue_max = 4;
    store *s = open_or_fail(&c);
    gate g;
    store_task *t = stall_writer(s, &g); /* task 1, holding its queue slot */
    const store_task *ts[] = {t};
    llm_response *r = make_response("q", 0);
    for (unsigned i = 0; i < 3; i++) {
        cache_key k = key_n(i);
        CU_ASSERT_EQUAL(store_cache_put(s, &k, r), SLUICE_OK);
    }
    cache_key k9 = key_n(9);
    CU_ASSERT_EQUAL(store_cache_put(s, &k9, r), SLUICE_ELIMIT);
    CU_ASSERT_EQUAL(store_tasks_put(s, ts, 1, NULL, NULL), SLUICE_ELIMIT);
    CU_ASSERT_EQUAL(store_task_set_state(s, 1, STORE_TASK_RUNNING), SLUICE_ELIMIT);
    CU_ASSERT_EQUAL(store_session_put(s, 1, "t", "x", 1), SLUICE_ELIMIT);
    store_stats st;
    store_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.cache_dropped, 1);
    CU_ASSERT_EQUAL(st.write_queue_depth, 4);
    sem_post(&g.release);
    store_flush(s);
    CU_ASSERT_EQUAL(store_cache_put(s, &k9, r), SLUICE_OK);
    CU_ASSERT_EQUAL(store_task_set_state(s, 1, STORE_TASK_RUNNING), SLUICE_OK);
    /* A batch larger than the whole queue can never fit. */
    const store_task *many[] = {t, t, t, t, t};
    CU_ASSERT_EQUAL(store_tasks_put(s, many, 5, NULL, NULL), SLUICE_ELIMIT);
    store_flush(s);
    store_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.write_queue_depth, 0);
    llm_response *got = NULL;
    CU_ASSERT_EQUAL(store_cache_get(s, &k9, &got), SLUICE_OK);
    llm_response_free(got);
    store_close(s);
    gate_destroy(&g);
    llm_response_free(r);
    store_task_free(t);
    free(dir);
}

/* A put is seen while the writer is certainly busy elsewhere (stalled in a callback), so
 * the lookup can only find it among the queued puts; then once applied. */
static void test_cache_put_seen_before_applied(void) {
    char *dir = fresh_dir("ryw-stalled");
    store_config c = config(dir);
    store *s = open_or_fail(&c);
    gate g;
    store_task *t = stall_writer(s, &g);
    cache_key k = key_n(77), other = key_n(78);
    llm_response *r = make_response("queued answer", 0), *got = NULL;
    CU_ASSERT_EQUAL(store_cache_put(s, &k, r), SLUICE_OK);
    CU_ASSERT_EQUAL(store_cache_get(s, &k, &got), SLUICE_OK);
    CU_ASSERT_TRUE(got && resp_equal(r, got));
    llm_response_free(got);
    got = NULL;
    CU_ASSERT_EQUAL(store_cache_get(s, &other, &got), SLUICE_ENOTFOUND); /* others still miss */
    CU_ASSERT_PTR_NULL(got);
    sem_post(&g.release);
    store_flush(s);
    CU_ASSERT_EQUAL(store_cache_get(s, &k, &got), SLUICE_OK);
    CU_ASSERT_TRUE(got && resp_equal(r, got));
    llm_response_free(got);
    store_close(s);
    gate_destroy(&g);
    llm_response_free(r);
    store_task_free(t);
    free(dir);
}

/* Many threads putting and getting at once (sanitizers watch the locking). */
typedef struct worker_arg {
    store *s;
    unsigned base;
    int hits;
} worker_arg;

static void *worker(void *p) {
    worker_arg *a = p;
    llm_response *r = make_response("concurrent", 50);
    for (unsigned i = 0; i < 200; i++) {
        cache_key k = key_n(a->base + i);
        while (store_cache_put(a->s, &k, r) == SLUICE_ELIMIT)
            usleep(100);
    }
    store_flush(a->s);
    for (unsigned i = 0; i < 200; i++) {
        cache_key k = key_n(a->base + i);
        llm_response *got = NULL;
        a->hits += store_cache_get(a->s, &k, &got) == SLUICE_OK;
        llm_response_free(got);
    }
    llm_response_free(r);
    return NULL;
}

static void test_concurrent_cache(void) {
    char *dir = fresh_dir("concurrent");
    store_config c = config(dir);
    c.write_queue_max = 64;
    store *s = open_or_fail(&c);
    pthread_t th[4];
    worker_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (worker_arg){.s = s, .base = 10000u + 1000u * (unsigned)i};
        pthread_create(&th[i], NULL, worker, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(args[i].hits, 200);
    }
    store_stats st;
    store_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.cache_entries, 800);
    store_close(s);
    free(dir);
}

/* ---- open failures ------------------------------------------------------------------- */

static int open_expect_fail(const char *dir, const char *needle, char *err, size_t errlen) {
    store_config c = config(dir);
    store *s = NULL;
    err[0] = '\0';
    int rc = store_open(&c, &s, err, errlen);
    CU_ASSERT_NOT_EQUAL(rc, SLUICE_OK);
    CU_ASSERT_PTR_NULL(s);
    store_close(s);
    if (getenv("SLUICE_TEST_VERBOSE"))
        fprintf(stderr, "\n  %s", err);
    bool ok = strstr(err, needle) != NULL && strstr(err, dir) != NULL && !strchr(err, '\n');
    if (!ok)
        fprintf(stderr, "\n  message \"%s\" lacks \"%s\" or the directory\n", err, needle);
    CU_ASSERT(ok);
    return rc;
}

static void test_open_lock_same_process(void) {
    char *dir = fresh_dir("lock1");
    store_config c = config(dir);
    store *s = open_or_fail(&c);
    char err[1024];
    open_expect_fail(dir, "locked by another process", err, sizeof err);
    store_close(s);
    s = open_or_fail(&c); /* released at close */
    store_close(s);
    free(dir);
}

/* Runs this executable as a child in `mode`; returns its pid and its stdout/stdin pipes. */
static pid_t spawn_self(const char *mode, const char *dir, int *from_child, int *to_child) {
    int out[2], in[2];
    if (pipe(out) != 0 || pipe(in) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(in[0], 0);
        close(out[0]);
        close(in[1]);
        execl(self_exe, self_exe, mode, dir, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    close(in[0]);
    *from_child = out[0];
    *to_child = in[1];
    return pid;
}

static void test_open_lock_other_process(void) {
    char *dir = fresh_dir("lock2");
    int from, to;
    pid_t pid = spawn_self("--child-hold", dir, &from, &to);
    CU_ASSERT_FATAL(pid > 0);
    char buf[16] = "";
    CU_ASSERT(read(from, buf, sizeof buf - 1) > 0 && strncmp(buf, "ready", 5) == 0);
    char err[1024];
    open_expect_fail(dir, "locked by another process", err, sizeof err);
    close(to); /* the child closes its store and exits */
    int status = 0;
    waitpid(pid, &status, 0);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(from);
    store_config c = config(dir);
    store *s = open_or_fail(&c);
    store_close(s);
    free(dir);
}

static void write_file(const char *path, const char *data, size_t len) {
    int fd = open(path, O_WRONLY | O_TRUNC | O_CREAT, 0644);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(write(fd, data, len) == (ssize_t)len);
    close(fd);
}

static char *populated_dir(const char *name) {
    char *dir = fresh_dir(name);
    store_config c = config(dir);
    store *s = open_or_fail(&c);
    llm_response *r = make_response("x", 10);
    cache_key k = key_n(1);
    store_cache_put(s, &k, r);
    llm_response_free(r);
    store_close(s);
    return dir;
}

static void test_open_corrupt_current(void) {
    char *dir = populated_dir("badcurrent");
    char *path = xasprintf("%s/CURRENT", dir);
    write_file(path, "garbage", 7);
    char err[1024];
    open_expect_fail(dir, "corrupted", err, sizeof err);
    write_file(path, "MANIFEST-999999\n", 16); /* points at nothing */
    open_expect_fail(dir, "corrupted", err, sizeof err);
    free(path);
    free(dir);
}

static void test_open_corrupt_manifest(void) {
    char *dir = populated_dir("badmanifest");
    char *pat = xasprintf("%s/MANIFEST-*", dir);
    glob_t g;
    CU_ASSERT_EQUAL_FATAL(glob(pat, 0, NULL, &g), 0);
    CU_ASSERT_FATAL(g.gl_pathc >= 1);
    struct stat st;
    stat(g.gl_pathv[g.gl_pathc - 1], &st);
    char *junk = xmalloc((size_t)st.st_size);
    memset(junk, 0x5a, (size_t)st.st_size);
    write_file(g.gl_pathv[g.gl_pathc - 1], junk, (size_t)st.st_size);
    char err[1024];
    open_expect_fail(dir, "corrupted", err, sizeof err);
    free(junk);
    globfree(&g);
    free(pat);
    free(dir);
}

static void test_open_bad_path(void) {
    /* As root permissions do not apply, so a path under a regular file (ENOTDIR) stands in
     * for an unusable directory; the permission case runs only as a normal user. */
    char *file = xasprintf("%s/plainfile", tmpdir);
    write_file(file, "x", 1);
    char *dir = xasprintf("%s/sub/data", file);
    char err[1024];
    open_expect_fail(dir, "not a directory", err, sizeof err);
    free(dir);
    open_expect_fail(file, "not a directory", err, sizeof err);
    unlink(file);
    free(file);
    if (geteuid() != 0) {
        char *locked = fresh_dir("noperm");
        mkdir(locked, 0755);
        chmod(locked, 0);
        open_expect_fail(locked, "permission denied", err, sizeof err);
        chmod(locked, 0755);
        free(locked);
    }
    store_config none = {0};
    store *s = NULL;
    CU_ASSERT_EQUAL(store_open(&none, &s, err, sizeof err), SLUICE_EINVAL);
}

static void test_open_newer_schema(void) {
    char *dir = populated_dir("newer");
    raw rw;
    CU_ASSERT_EQUAL_FATAL(raw_open(&rw, dir, NULL, 0), 0);
    raw_put(&rw, "meta", "schema", 6, "\0\0\0\x63", 4);
    raw_close(&rw);
    char err[1024];
    open_expect_fail(dir, "newer sluiced (store schema 99", err, sizeof err);
    free(dir);
}

/* A store written with JSON values (schema 1) is refused, not misread. */
static void test_open_older_schema(void) {
    char *dir = populated_dir("older");
    raw rw;
    CU_ASSERT_EQUAL_FATAL(raw_open(&rw, dir, NULL, 0), 0);
    raw_put(&rw, "meta", "schema", 6, "\0\0\0\x01", 4);
    raw_close(&rw);
    char err[1024];
    open_expect_fail(dir, "older sluiced (store schema 1, this build reads only 2", err,
                     sizeof err);
    free(dir);
}

static void test_open_foreign_db(void) {
    char *dir = fresh_dir("foreign");
    raw rw;
    static const char *const extra[] = {"jobs"};
    CU_ASSERT_EQUAL_FATAL(raw_open(&rw, dir, extra, 1), 0);
    raw_close(&rw);
    char err[1024];
    open_expect_fail(dir, "not a sluice store", err, sizeof err);
    free(dir);
}

/* The classification of causes that cannot be staged here (disk full, read-only). */
static void test_open_error_messages(void) {
    static const struct {
        const char *rocks, *needle;
    } cases[] = {
        {"IO error: While lock file: /d/LOCK: Resource temporarily unavailable", "locked"},
        {"IO error: lock hold by current process, acquire time 1 acquiring thread 2: /d/LOCK: "
         "No locks available",
         "locked"},
        {"Corruption: CURRENT file does not end with newline", "corrupted"},
        {"IO error: While open a file for appending: /d/000012.log: No space left on device",
         "disk is full"},
        {"IO error: While mkdir if missing: /d: Permission denied", "permission denied"},
        {"IO error: While mkdir: /d: Read-only file system", "read-only"},
        {"something new", "could not be opened"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[512];
        store_explain_open_error("/d", "rocksdb", cases[i].rocks, err, sizeof err);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].needle));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "/d"));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].rocks));
    }
}

/* ---- kill -9 ------------------------------------------------------------------------- */

#define KILL_TASKS 100

static void on_child_done(void *ud, int status) {
    atomic_int *n = ud;
    if (status == SLUICE_OK)
        atomic_fetch_add(n, 1);
}

/* Child: writes tasks, waits for their done callbacks, then SIGKILLs itself. */
static int child_kill9(const char *dir) {
    store_config c = {.dir = dir};
    store *s = NULL;
    char err[512];
    if (store_open(&c, &s, err, sizeof err) != SLUICE_OK) {
        fprintf(stderr, "child: %s\n", err);
        return 2;
    }
    uint64_t first;
    store_reserve_ids(s, "task", KILL_TASKS, &first);
    atomic_int done = 0;
    for (uint64_t b = 0; b < KILL_TASKS / 10; b++) {
        store_task *ts[10];
        for (uint64_t i = 0; i < 10; i++)
            ts[i] = make_task(first + b * 10 + i, STORE_TASK_QUEUED);
        store_tasks_put(s, (const store_task *const *)ts, 10, on_child_done, &done);
        for (int i = 0; i < 10; i++)
            store_task_free(ts[i]);
    }
    llm_response *r = make_response("child result", 0);
    for (uint64_t i = 0; i < KILL_TASKS / 2; i++)
        store_task_finish(s, first + i, STORE_TASK_SUCCEEDED, r, NULL, NULL);
    cache_key k = key_n(4242);
    store_cache_put(s, &k, r);
    store_flush(s);
    while (atomic_load(&done) < KILL_TASKS / 10)
        usleep(1000);
    raise(SIGKILL);
    return 3; /* not reached */
}

/* Child: holds the store open until stdin closes. */
static int child_hold(const char *dir) {
    store_config c = {.dir = dir};
    store *s = NULL;
    char err[512];
    if (store_open(&c, &s, err, sizeof err) != SLUICE_OK)
        return 2;
    if (write(1, "ready", 5) != 5)
        return 3;
    char b;
    while (read(0, &b, 1) > 0)
        ;
    store_close(s);
    return 0;
}

static int count_task(void *ud, store_task *t) {
    (*(int *)ud)++;
    store_task_free(t);
    return 0;
}

static void test_kill9_survival(void) {
    char *dir = fresh_dir("kill9");
    int from, to;
    pid_t pid = spawn_self("--child-kill9", dir, &from, &to);
    CU_ASSERT_FATAL(pid > 0);
    int status = 0;
    waitpid(pid, &status, 0);
    close(from);
    close(to);
    CU_ASSERT_FATAL(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    store_config c = config(dir);
    store *s = open_or_fail(&c);
    int found = 0, finished = 0;
    for (uint64_t id = 1; id <= KILL_TASKS; id++) {
        store_task *t = NULL;
        if (store_task_get(s, id, &t) == SLUICE_OK) {
            found++;
            finished += t->state == STORE_TASK_SUCCEEDED && t->result &&
                        strcmp(t->result->completion, "child result") == 0;
        }
        store_task_free(t);
    }
    CU_ASSERT_EQUAL(found, KILL_TASKS);
    CU_ASSERT_EQUAL(finished, KILL_TASKS / 2);
    int unfinished = 0;
    store_tasks_scan_unfinished(s, count_task, &unfinished);
    CU_ASSERT_EQUAL(unfinished, KILL_TASKS / 2);
    llm_response *got = NULL;
    cache_key k = key_n(4242);
    CU_ASSERT_EQUAL(store_cache_get(s, &k, &got), SLUICE_OK);
    llm_response_free(got);
    uint64_t next;
    store_reserve_ids(s, "task", 1, &next);
    CU_ASSERT_EQUAL(next, KILL_TASKS + 1);
    store_close(s);
    free(dir);
}

int main(int argc, char **argv) {
    self_exe = argv[0];
    if (argc == 3 && strcmp(argv[1], "--child-kill9") == 0)
        return child_kill9(argv[2]);
    if (argc == 3 && strcmp(argv[1], "--child-hold") == 0)
        return child_hold(argv[2]);
    static const test_case tests[] = {
        {"cache put, get and miss", test_cache_put_get_miss},
        {"cache: a put is seen at once", test_cache_read_your_writes},
        {"cache: a put is seen before the writer applies it", test_cache_put_seen_before_applied},
        {"cache TTL (fake clock)", test_cache_ttl},
        {"corrupt cache entries: miss, deleted, logged once", test_cache_corrupt},
        {"cache size cap evicts the oldest", test_cache_size_cap},
        {"writer enforces the cap between sweeps", test_cache_cap_without_explicit_sweep},
        {"task put, get, state changes, finish, scan", test_tasks_lifecycle},
        {"finish is final; unknown ids ignored", test_tasks_finish_is_final},
        {"finished tasks deleted after retention", test_tasks_retention},
        {"sweeps longer than one pass", test_sweep_many_passes},
        {"codec refusals are EINVAL, nothing stored", test_codec_refusals},
        {"unreadable task records: EIO, skipped by the scan", test_tasks_corrupt},
        {"sessions put, scan, delete", test_sessions},
        {"reserve_ids monotonic across reopen", test_reserve_ids},
        {"reopen keeps everything", test_reopen_keeps_everything},
        {"write queue full is ELIMIT", test_write_queue_full},
        {"concurrent cache use", test_concurrent_cache},
        {"open: lock held in this process", test_open_lock_same_process},
        {"open: lock held by another process", test_open_lock_other_process},
        {"open: corrupted CURRENT", test_open_corrupt_current},
        {"open: corrupted MANIFEST", test_open_corrupt_manifest},
        {"open: bad path", test_open_bad_path},
        {"open: newer schema refused", test_open_newer_schema},
        {"open: older schema refused", test_open_older_schema},
        {"open: foreign RocksDB refused", test_open_foreign_db},
        {"open: error messages", test_open_error_messages},
        {"data survives kill -9", test_kill9_survival},
        {NULL, NULL},
    };
    return test_run_suite_with("store", suite_init, suite_cleanup, tests);
}
