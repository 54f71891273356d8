/*
 * Store lifetime: opening the RocksDB database, its options and column families, the schema
 * check, and closing.
 *
 * Owns the database handle, the option objects and the column-family handles; the writer
 * thread (store_writer.c) is started last at open and stopped first at close. Open is the
 * one place where the store talks to the operator: any failure (the directory cannot be
 * created, it is locked by another process, permission denied, disk full, corrupted files,
 * a schema written by a newer or an older build, not a sluice directory) is turned into
 * exactly one message naming the directory, the cause and what to do, with RocksDB's own
 * text appended.
 * Nothing is logged on that path; the caller prints the message and stops.
 *
 * RocksDB's options and their sizes (block cache, memtables, WAL cap) are built in
 * store_options.c. Memtables are flushed at close so a clean restart replays no WAL.
 */
#include "server/store/store_internal.h"

#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "server/common/log.h"
#include "sluice/status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const cf_names[CF_COUNT] = {"default", "meta",       "cache",      "cache_age",
                                               "tasks",   "tasks_open", "tasks_done", "sessions"};

uint64_t store_now(const store *s) {
    return s->cfg.clock ? s->cfg.clock(s->cfg.clock_ctx) : clock_wall_ms();
}

/* ---- messages ------------------------------------------------------------------------ */

static bool has(const char *hay, const char *needle) {
    return hay && strstr(hay, needle) != NULL;
}

void store_explain_open_error(const char *dir, const char *origin, const char *rocks_err, char *err,
                              size_t errlen) {
    const char *cause, *hint;
    if (has(rocks_err, "lock hold by current process") || has(rocks_err, "While lock file") ||
        (has(rocks_err, "/LOCK") && (has(rocks_err, "Resource temporarily unavailable") ||
                                     has(rocks_err, "No locks available")))) {
        cause = "it is locked by another process (another sluiced uses it) or already open in "
                "this process";
        hint = "stop the other sluiced or choose another data directory";
    } else if (has(rocks_err, "Corruption") ||
               (has(rocks_err, "MANIFEST") && has(rocks_err, "No such file"))) {
        cause = "its database files are corrupted or incomplete";
        hint = "restore it from a backup, or move it away to start with an empty store";
    } else if (has(rocks_err, "Permission denied")) {
        cause = "permission denied";
        hint = "give the user running sluiced read and write access to it";
    } else if (has(rocks_err, "No space left on device")) {
        cause = "the disk is full";
        hint = "free some space on its file system";
    } else if (has(rocks_err, "Not a directory")) {
        cause = "a component of the path is not a directory";
        hint = "choose a path made of directories";
    } else if (has(rocks_err, "Read-only file system")) {
        cause = "the file system is read-only";
        hint = "mount it read-write or choose another data directory";
    } else {
        cause = "the database could not be opened";
        hint = "see the rocksdb message";
    }
    snprintf(err, errlen, "store: cannot open data directory %s: %s; %s (%s: %s)", dir, cause, hint,
             origin, rocks_err ? rocks_err : "no detail");
}

/* mkdir -p, reporting the first failure through the same classification. */
static int make_dirs(const char *dir, char *err, size_t errlen) {
    char *path = xstrdup(dir);
    int rc = SLUICE_OK;
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            char detail[512];
            snprintf(detail, sizeof detail, "%s: %s", path, strerror(errno));
            store_explain_open_error(dir, "mkdir", detail, err, errlen);
            rc = SLUICE_EIO;
        }
        *p = c;
        if (rc || c == '\0')
            break;
    }
    free(path);
    struct stat st;
    if (!rc && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))) {
        store_explain_open_error(dir, "stat", "Not a directory", err, errlen);
        rc = SLUICE_EIO;
    }
    if (!rc && access(dir, R_OK | W_OK | X_OK) != 0) {
        store_explain_open_error(dir, "access", strerror(errno), err, errlen);
        rc = SLUICE_EIO;
    }
    return rc;
}

/* ---- open ---------------------------------------------------------------------------- */

/* Existing column families not known to this build (a newer build's), which must be opened
 * too. Refuses a RocksDB directory that is not ours. */
static int list_extra_cfs(store *s, char ***extra, size_t *n_extra, char *err, size_t errlen) {
    size_t n = 0;
    char *e = NULL;
    char **names = rocksdb_list_column_families(s->db_opts, s->dir, &n, &e);
    *extra = NULL;
    *n_extra = 0;
    if (e) { /* a new directory has nothing to list (the empty list is still allocated) */
        rocksdb_free(e);
        rocksdb_list_column_families_destroy(names, n);
        return SLUICE_OK;
    }
    bool has_meta = false;
    for (size_t i = 0; i < n; i++) {
        bool known = false;
        for (int k = 0; k < CF_COUNT && !known; k++)
            known = strcmp(names[i], cf_names[k]) == 0;
        has_meta |= strcmp(names[i], "meta") == 0;
        if (!known) {
            *extra = xrealloc(*extra, (*n_extra + 1) * sizeof **extra);
            (*extra)[(*n_extra)++] = xstrdup(names[i]);
        }
    }
    int rc = SLUICE_OK;
    if (!has_meta && n > 1) {
        snprintf(err, errlen,
                 "store: cannot open data directory %s: it holds a RocksDB database that is not "
                 "a sluice store; choose another data directory",
                 s->dir);
        rc = SLUICE_EIO;
    }
    rocksdb_list_column_families_destroy(names, n);
    return rc;
}

static int open_db(store *s, char *err, size_t errlen) {
    char **extra;
    size_t n_extra;
    int rc = list_extra_cfs(s, &extra, &n_extra, err, errlen);
    size_t n = CF_COUNT + n_extra;
    const char **names = XNEWV(const char *, n);
    const rocksdb_options_t **opts = XNEWV(const rocksdb_options_t *, n);
    rocksdb_column_family_handle_t **h = XNEWV(rocksdb_column_family_handle_t *, n);
    for (size_t i = 0; i < n; i++) {
        names[i] = i < CF_COUNT ? cf_names[i] : extra[i - CF_COUNT];
        opts[i] = i < CF_COUNT ? s->cf_opts[i] : s->cf_opts[CF_DEFAULT];
    }
    char *e = NULL;
    if (!rc)
        s->db = rocksdb_open_column_families(s->db_opts, s->dir, (int)n, names, opts, h, &e);
    if (e) {
        store_explain_open_error(s->dir, "rocksdb", e, err, errlen);
        rocksdb_free(e);
        rc = SLUICE_EIO;
    }
    if (!rc) {
        memcpy(s->cf, h, CF_COUNT * sizeof *h);
        s->n_extra_cf = n_extra;
        s->extra_cf = n_extra ? xmemdup(h + CF_COUNT, n_extra * sizeof *h) : NULL;
    }
    for (size_t i = 0; i < n_extra; i++)
        free(extra[i]);
    free(extra);
    free(names);
    free(opts);
    free(h);
    return rc;
}

/* The message for a store written with another schema version. */
static void explain_schema(const store *s, uint32_t ver, char *err, size_t errlen) {
    if (ver > STORE_SCHEMA_VERSION)
        snprintf(err, errlen,
                 "store: cannot open data directory %s: it was written by a newer sluiced "
                 "(store schema %u, this build reads up to %u); run the newer sluiced or "
                 "choose another data directory",
                 s->dir, ver, STORE_SCHEMA_VERSION);
    else
        snprintf(err, errlen,
                 "store: cannot open data directory %s: it was written by an older sluiced "
                 "(store schema %u, this build reads only %u, which encodes values "
                 "differently); let the older sluiced finish its tasks, then move the "
                 "directory away to start with an empty store, or choose another data "
                 "directory",
                 s->dir, ver, STORE_SCHEMA_VERSION);
}

/* Reads the schema version; writes it into a new store; refuses any other version (a newer
 * one may hold anything, an older one encodes values differently: no conversion exists). */
static int check_schema(store *s, char *err, size_t errlen) {
    char *e = NULL;
    size_t len = 0;
    char *v = rocksdb_get_cf(s->db, s->ropts, s->cf[CF_META], "schema", 6, &len, &e);
    uint8_t buf[4] = {0, 0, 0, STORE_SCHEMA_VERSION};
    if (!e && !v) {
        rocksdb_put_cf(s->db, s->wopts, s->cf[CF_META], "schema", 6, (const char *)buf, 4, &e);
        if (!e)
            return SLUICE_OK;
    }
    int rc = SLUICE_OK;
    if (e) {
        store_explain_open_error(s->dir, "rocksdb", e, err, errlen);
        rc = SLUICE_EIO;
    } else if (len != 4) {
        store_explain_open_error(s->dir, "store", "Corruption: meta/schema is not a u32", err,
                                 errlen);
        rc = SLUICE_EIO;
    } else {
        const uint8_t *p = (const uint8_t *)v;
        uint32_t ver = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (ver != STORE_SCHEMA_VERSION) {
            explain_schema(s, ver, err, errlen);
            rc = SLUICE_EIO;
        }
    }
    rocksdb_free(e);
    rocksdb_free(v);
    return rc;
}

static void apply_defaults(store *s, const store_config *cfg) {
    s->cfg = *cfg;
    s->dir = xstrdup(cfg->dir);
    s->cfg.dir = s->dir;
    if (!s->cfg.cache_max_bytes)
        s->cfg.cache_max_bytes = 1ull << 30;
    if (!s->cfg.result_retention_ms)
        s->cfg.result_retention_ms = 24ull * 3600 * 1000;
    if (!s->cfg.write_queue_max)
        s->cfg.write_queue_max = 65536;
    if (!s->cfg.sweep_interval_ms)
        s->cfg.sweep_interval_ms = 10000;
    store_sizes_derive(cfg, &s->sizes);
}

static void close_db(store *s) {
    if (s->db) {
        rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
        rocksdb_flushoptions_set_wait(fo, 1);
        for (int i = 0; i < CF_COUNT; i++) {
            char *e = NULL;
            rocksdb_flush_cf(s->db, fo, s->cf[i], &e);
            if (e)
                LOG_WARN(STORE_MODULE, "flush of %s at close failed: %s", cf_names[i], e);
            rocksdb_free(e);
        }
        rocksdb_flushoptions_destroy(fo);
        for (int i = 0; i < CF_COUNT; i++)
            rocksdb_column_family_handle_destroy(s->cf[i]);
        for (size_t i = 0; i < s->n_extra_cf; i++)
            rocksdb_column_family_handle_destroy(s->extra_cf[i]);
        rocksdb_close(s->db);
        s->db = NULL;
    }
    free(s->extra_cf);
    store_options_free(s);
}

static void free_store(store *s) {
    pthread_mutex_destroy(&s->q_mu);
    pthread_cond_destroy(&s->q_cv);
    pthread_cond_destroy(&s->applied_cv);
    pthread_mutex_destroy(&s->apply_mu);
    pthread_mutex_destroy(&s->pending_mu);
    pthread_mutex_destroy(&s->ids_mu);
    u64map_cleanup(&s->unapplied);
    free(s->dir);
    free(s);
}

static store *alloc_store(const store_config *cfg) {
    store *s = XNEW(store);
    apply_defaults(s, cfg);
    pthread_mutex_init(&s->q_mu, NULL);
    clock_cond_init(&s->q_cv);
    pthread_cond_init(&s->applied_cv, NULL);
    pthread_mutex_init(&s->apply_mu, NULL);
    pthread_mutex_init(&s->pending_mu, NULL);
    pthread_mutex_init(&s->ids_mu, NULL);
    u64map_init(&s->unapplied);
    return s;
}

int store_open(const store_config *cfg, store **out, char *err, size_t errlen) {
    *out = NULL;
    if (!cfg || !cfg->dir || !*cfg->dir) {
        snprintf(err, errlen, "store: no data directory configured");
        return SLUICE_EINVAL;
    }
    store *s = alloc_store(cfg);
    store_options_build(s);
    int rc = make_dirs(s->dir, err, errlen);
    rc = rc ? rc : open_db(s, err, errlen);
    rc = rc ? rc : check_schema(s, err, errlen);
    if (!rc) {
        store_cache_load_stats(s);
        rc = store_writer_start(s);
        if (rc)
            snprintf(err, errlen, "store: cannot start the writer thread for %s", s->dir);
    }
    if (rc) {
        close_db(s);
        free_store(s);
        return rc;
    }
    *out = s;
    return SLUICE_OK;
}

void store_close(store *s) {
    if (!s)
        return;
    store_writer_stop(s);
    close_db(s);
    free_store(s);
}

/* Deletes per write batch within a sweep pass. */
#define SWEEP_CHUNK 1000

bool store_sweep_index(store *s, enum store_cf cf, uint64_t *hint_ms, sweep_visit_fn visit,
                       void *ctx) {
    uint8_t lower[8];
    be64_put(lower, *hint_ms);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)lower, sizeof lower);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, ro, s->cf[cf]);
    store_batch b;
    store_batch_init(&b);
    int rc = SLUICE_OK;
    size_t seen = 0;
    bool more = false;
    for (rocksdb_iter_seek(it, (const char *)lower, sizeof lower);
         rc == SLUICE_OK && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        if (seen++ == STORE_SWEEP_PASS_MAX) {
            more = true;
            break;
        }
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
        sweep_verdict verdict = kl >= 8 ? visit(s, &b, k, kl, v, vl, ctx) : SWEEP_SKIP;
        if (verdict == SWEEP_STOP)
            break;
        if (verdict == SWEEP_SKIP)
            continue;
        *hint_ms = be64_get(k);
        if (rocksdb_writebatch_wi_count(b.wb) >= SWEEP_CHUNK)
            rc = store_batch_commit(s, &b);
    }
    rc = rc ? rc : store_batch_commit(s, &b);
    if (rc)
        *hint_ms = 0; /* some deletes were lost: the next pass starts over */
    store_batch_cleanup(&b);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    return more && rc == SLUICE_OK;
}

bool store_sweep_pass(store *s) {
    pthread_mutex_lock(&s->apply_mu);
    bool more = store_cache_sweep(s);
    more |= store_tasks_sweep(s);
    pthread_mutex_unlock(&s->apply_mu);
    return more;
}

void store_sweep(store *s) {
    while (store_sweep_pass(s))
        ;
}
