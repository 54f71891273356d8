/*
 * test_store_sizes: RocksDB's own sizes (block cache, memtables, WAL cap) come from the
 * store's memory budget, reach RocksDB as configured, and bound what the store holds.
 *
 * Regression (issue 19, item 8): store.cache_max_bytes did not bound disk or memory, RocksDB's
 * fixed sizes did (a 128 MiB WAL cap, 256 MiB of write buffers, a 64 MiB block cache): with an
 * 8 MiB cache cap the store swung between 55 and 175 MB on disk. Here a store with an 8 MiB
 * budget and a 4 MiB cache cap takes ~40 MiB of distinct answers, read back as it goes, and
 * RocksDB's memory (memtables, table readers, block cache) and the directory's size are
 * sampled throughout: both stay within the bounds deploy/CONFIG.md tells operators to plan
 * for. Bounds, not speed: nothing here is timed.
 */
#include "unit/test_util.h"
#include "server/common/alloc.h"
#include "server/common/llm.h"
#include "server/store/store.h"
#include "server/store/store_internal.h"
#include "sluice/status.h"

#include <CUnit/Basic.h>
#include <ftw.h>
#include <glob.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIB (1ull << 20)

static char tmpdir[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int suite_init(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sluice-test-sizes-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int suite_cleanup(void) {
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static store *open_or_fail(const store_config *c) {
    char err[512] = "";
    store *s = NULL;
    int rc = store_open(c, &s, err, sizeof err);
    if (rc)
        fprintf(stderr, "\n  store_open: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, SLUICE_OK);
    return s;
}

/* ---- derivation ---------------------------------------------------------------------- */

static void test_sizes_derive_from_the_budget(void) {
    store_config c;
    memset(&c, 0, sizeof c);
    store_sizes z;
    store_sizes_derive(&c, &z); /* the defaults */
    CU_ASSERT_EQUAL(z.memory_budget_bytes, 256 * MIB);
    CU_ASSERT_EQUAL(z.block_cache_bytes, 64 * MIB);
    CU_ASSERT_EQUAL(z.write_buffer_bytes, 128 * MIB);
    CU_ASSERT_EQUAL(z.wal_max_bytes, 128 * MIB);
    CU_ASSERT_EQUAL(z.big_memtable_bytes, 16 * MIB);
    CU_ASSERT_EQUAL(z.small_memtable_bytes, 4 * MIB);
    /* Two memtables per family at most: the eight families' stay within the write buffers. */
    CU_ASSERT_TRUE(2 * (2 * z.big_memtable_bytes + 6 * z.small_memtable_bytes) <=
                   z.write_buffer_bytes);
    c.memory_budget_bytes = 8 * MIB;
    store_sizes_derive(&c, &z);
    CU_ASSERT_EQUAL(z.block_cache_bytes, 2 * MIB);
    CU_ASSERT_EQUAL(z.write_buffer_bytes, 4 * MIB);
    CU_ASSERT_EQUAL(z.wal_max_bytes, 4 * MIB);
    CU_ASSERT_EQUAL(z.big_memtable_bytes, 512 * 1024);
    CU_ASSERT_EQUAL(z.small_memtable_bytes, 128 * 1024);
    c.block_cache_bytes = 3 * MIB; /* each size may be set alone */
    c.wal_max_bytes = 5 * MIB;
    store_sizes_derive(&c, &z);
    CU_ASSERT_EQUAL(z.block_cache_bytes, 3 * MIB);
    CU_ASSERT_EQUAL(z.write_buffer_bytes, 4 * MIB);
    CU_ASSERT_EQUAL(z.wal_max_bytes, 5 * MIB);
    c.write_buffer_bytes = 64 * MIB;
    c.wal_max_bytes = 0; /* follows the write buffers */
    store_sizes_derive(&c, &z);
    CU_ASSERT_EQUAL(z.write_buffer_bytes, 64 * MIB);
    CU_ASSERT_EQUAL(z.wal_max_bytes, 64 * MIB);
    CU_ASSERT_EQUAL(z.big_memtable_bytes, 8 * MIB);
}

/* ---- the sizes reach RocksDB ------------------------------------------------------------- */

/* The value of `name` in section `section` of the newest OPTIONS file RocksDB wrote in dir
 * (it writes one at every open, listing every option in effect), or -1. */
static long long options_value(const char *dir, const char *section, const char *name) {
    char *pattern = xasprintf("%s/OPTIONS-*", dir);
    glob_t g;
    long long v = -1;
    if (glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc > 0) {
        FILE *f = fopen(g.gl_pathv[g.gl_pathc - 1], "r"); /* sorted: the newest last */
        char line[1024];
        bool in = false;
        size_t nl = strlen(name);
        while (f && fgets(line, sizeof line, f)) {
            if (line[0] == '[')
                in = strncmp(line, section, strlen(section)) == 0;
            const char *p = line + strspn(line, " \t");
            if (in && strncmp(p, name, nl) == 0 && p[nl] == '=')
                v = strtoll(p + nl + 1, NULL, 10);
        }
        if (f)
            fclose(f);
    }
    globfree(&g);
    free(pattern);
    return v;
}

static void test_sizes_reach_rocksdb(void) {
    char *dir = xasprintf("%s/reach", tmpdir);
    store_config c = {.dir = dir, .sweep_interval_ms = 3600000};
    c.memory_budget_bytes = 8 * MIB;
    c.wal_max_bytes = 3 * MIB;
    store *s = open_or_fail(&c);
    CU_ASSERT_EQUAL(options_value(dir, "[DBOptions]", "db_write_buffer_size"), 4 * MIB);
    CU_ASSERT_EQUAL(options_value(dir, "[DBOptions]", "max_total_wal_size"), 3 * MIB);
    CU_ASSERT_EQUAL(options_value(dir, "[CFOptions \"cache\"]", "write_buffer_size"), 512 * 1024);
    CU_ASSERT_EQUAL(options_value(dir, "[CFOptions \"tasks\"]", "write_buffer_size"), 512 * 1024);
    CU_ASSERT_EQUAL(options_value(dir, "[CFOptions \"cache_age\"]", "write_buffer_size"),
                    128 * 1024);
    CU_ASSERT_EQUAL(options_value(dir, "[CFOptions \"cache\"]", "max_write_buffer_number"), 2);
    uint64_t cap = 0;
    CU_ASSERT_EQUAL(rocksdb_property_int(s->db, "rocksdb.block-cache-capacity", &cap), 0);
    CU_ASSERT_EQUAL(cap, 2 * MIB);
    store_close(s);
    free(dir);
}

/* ---- bounds under load --------------------------------------------------------------- */

static uint64_t dir_bytes, log_bytes;
static int add_size(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    if (flag != FTW_F)
        return 0;
    if (strncmp(path + ftw->base, "LOG", 3) == 0) /* RocksDB's info log: LOG, LOG.old.* */
        log_bytes += (uint64_t)st->st_size;
    else
        dir_bytes += (uint64_t)st->st_size;
    return 0;
}

/* Bytes of the store's files under dir now, without RocksDB's info log (whose size goes to
 * log_bytes); files RocksDB deletes meanwhile are skipped. */
static uint64_t disk_usage(const char *dir) {
    dir_bytes = log_bytes = 0;
    nftw(dir, add_size, 16, FTW_PHYS);
    return dir_bytes;
}

/* What RocksDB holds in memory: memtables (active, immutable, being flushed), table
 * readers (index and filter blocks) and the block cache. */
static uint64_t rocksdb_memory(store *s) {
    rocksdb_memory_consumers_t *mc = rocksdb_memory_consumers_create();
    rocksdb_memory_consumers_add_db(mc, s->db);
    rocksdb_memory_consumers_add_cache(mc, s->block_cache);
    char *e = NULL;
    rocksdb_memory_usage_t *u = rocksdb_approximate_memory_usage_create(mc, &e);
    uint64_t total = 0;
    if (u) {
        total = rocksdb_approximate_memory_usage_get_mem_table_total(u) +
                rocksdb_approximate_memory_usage_get_mem_table_readers_total(u) +
                rocksdb_approximate_memory_usage_get_cache_total(u);
        rocksdb_approximate_memory_usage_destroy(u);
    }
    CU_ASSERT_PTR_NULL(e);
    free(e);
    rocksdb_memory_consumers_destroy(mc);
    return total;
}

/* An answer of ~bytes of text LZ4 cannot shrink much (the disk figures are the data's). */
static llm_response *noisy_response(unsigned n, size_t bytes) {
    llm_response *r = llm_response_new();
    char *t = xmalloc(bytes + 1);
    uint64_t x = 0x9e3779b97f4a7c15ull * (n + 1);
    for (size_t i = 0; i < bytes; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        t[i] = (char)('!' + x % 90);
    }
    t[bytes] = '\0';
    r->n_content = 1;
    r->content = XNEWV(llm_part, 1);
    r->content[0] = (llm_part){.kind = LLM_PART_TEXT, .text = t};
    llm_response_set_completion_from_content(r);
    r->model_used = xstrdup("model-a");
    return r;
}

static cache_key key_n(unsigned n) {
    cache_key k;
    memset(&k, 0, sizeof k);
    uint64_t x = 0xd1b54a32d192ed03ull * (n + 7);
    for (int i = 0; i < 32; i++, x = x * 6364136223846793005ull + 1442695040888963407ull)
        k.b[i] = (uint8_t)(x >> 56);
    return k;
}

static void test_small_budget_bounds_memory_and_disk(void) {
    enum { N = 20000, ANSWER = 2048, SAMPLE_EVERY = 250 };
    char *dir = xasprintf("%s/load", tmpdir);
    store_config c = {.dir = dir};
    c.memory_budget_bytes = 8 * MIB;
    c.cache_max_bytes = 4 * MIB;
    store *s = open_or_fail(&c);
    store_sizes z;
    store_sizes_derive(&c, &z);
    uint64_t peak_mem = 0, peak_disk = 0, hits = 0;
    for (unsigned i = 0; i < N; i++) {
        llm_response *r = noisy_response(i, ANSWER);
        cache_key k = key_n(i);
        while (store_cache_put(s, &k, r) == SLUICE_ELIMIT) /* the queue is bounded too */
            usleep(1000);
        llm_response_free(r);
        if (i >= 100 && i % 7 == 0) { /* recent answers are read back: the block cache fills */
            cache_key back = key_n(i - 100);
            llm_response *got = NULL;
            hits += store_cache_get(s, &back, &got) == SLUICE_OK;
            llm_response_free(got);
        }
        if (i % SAMPLE_EVERY == 0) {
            uint64_t m = rocksdb_memory(s), d = disk_usage(dir);
            peak_mem = m > peak_mem ? m : peak_mem;
            peak_disk = d > peak_disk ? d : peak_disk;
        }
    }
    store_flush(s);
    store_sweep(s);
    uint64_t m = rocksdb_memory(s), d = disk_usage(dir);
    peak_mem = m > peak_mem ? m : peak_mem;
    peak_disk = d > peak_disk ? d : peak_disk;
    store_stats st;
    store_get_stats(s, &st);
    fprintf(stderr,
            "\n  %d answers (%.1f MiB) into a %.0f MiB cache on an %.0f MiB budget: peak RocksDB "
            "memory %.1f MiB, peak disk %.1f MiB, %llu reads hit\n",
            N, (double)N * ANSWER / MIB, (double)c.cache_max_bytes / MIB,
            (double)c.memory_budget_bytes / MIB, (double)peak_mem / MIB, (double)peak_disk / MIB,
            (unsigned long long)hits);
    CU_ASSERT_TRUE(st.cache_evicted > N / 2); /* the cap held: most answers were evicted */
    CU_ASSERT_TRUE(hits > 0);
    /* Memory: the budget (block cache + memtables + table readers). */
    CU_ASSERT_TRUE(peak_mem <= c.memory_budget_bytes);
    /* Disk: what deploy/CONFIG.md says to plan for - twice the cache cap (live data, and
     * evicted data until compaction drops it), the WAL cap and twice the write buffers
     * (memtables flushed to level 0 ahead of compaction); RocksDB's LOG files apart. */
    uint64_t plan = 2 * c.cache_max_bytes + z.wal_max_bytes + 2 * z.write_buffer_bytes;
    CU_ASSERT_TRUE(peak_disk <= plan);
    CU_ASSERT_TRUE(log_bytes <= 48 * MIB);
    store_close(s);
    free(dir);
}

int main(void) {
    static const test_case cases[] = {
        {"sizes_derive_from_the_budget", test_sizes_derive_from_the_budget},
        {"sizes_reach_rocksdb", test_sizes_reach_rocksdb},
        {"small_budget_bounds_memory_and_disk", test_small_budget_bounds_memory_and_disk},
        {NULL, NULL},
    };
    return test_run_suite_with("store_sizes", suite_init, suite_cleanup, cases);
}
