/*
 * Sessions (opaque records by id), persistent id counters and the stats snapshot.
 *
 * Session records are queued like every other write and scanned in id order at start-up.
 * Id counters live in CF "meta" under "ids/<name>" as the next id to hand out; a
 * reservation is a read-modify-write under ids_mu written directly (not queued) before the
 * call returns, with the store's write options: the WAL always, fsync with sync_writes. So a
 * reserved id is never handed out twice, even across kill -9.
 */
#include "server/store/store_internal.h"

#include "server/common/alloc.h"
#include "server/common/log.h"
#include "sluice/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_NAME_MAX 64

/* ---- sessions ------------------------------------------------------------------------ */

int store_session_put(store *s, uint64_t id, const char *tenant, const char *data, size_t len) {
    size_t tl = tenant ? strlen(tenant) : 0;
    if (tl > UINT32_MAX || (!data && len))
        return SLUICE_EINVAL;
    store_op *op = store_op_new(OP_SESSION_PUT, 1);
    op->id = id;
    op->blob_len = 4 + tl + len;
    uint8_t *b = xmalloc(op->blob_len);
    b[0] = (uint8_t)(tl >> 24);
    b[1] = (uint8_t)(tl >> 16);
    b[2] = (uint8_t)(tl >> 8);
    b[3] = (uint8_t)tl;
    if (tl)
        memcpy(b + 4, tenant, tl);
    if (len)
        memcpy(b + 4 + tl, data, len);
    op->blob = (char *)b;
    return store_enqueue(s, op);
}

int store_session_delete(store *s, uint64_t id) {
    store_op *op = store_op_new(OP_SESSION_DEL, 1);
    op->id = id;
    return store_enqueue(s, op);
}

void store_sessions_apply(store *s, store_batch *b, const store_op *op) {
    uint8_t k[8];
    be64_put(k, op->id);
    if (op->kind == OP_SESSION_PUT)
        store_batch_put(b, s, CF_SESSIONS, k, sizeof k, op->blob, op->blob_len);
    else
        store_batch_delete(b, s, CF_SESSIONS, k, sizeof k);
}

/* Visits one stored session; malformed records are logged and skipped. */
static int visit_session(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
                         store_session_visit_fn fn, void *ud) {
    if (kl != 8 || vl < 4) {
        LOG_WARN(STORE_MODULE, "skipping a malformed session record");
        return 0;
    }
    size_t tl = (size_t)v[0] << 24 | (size_t)v[1] << 16 | (size_t)v[2] << 8 | v[3];
    if (tl > vl - 4) {
        LOG_WARN(STORE_MODULE, "session %llu: malformed record skipped",
                 (unsigned long long)be64_get(k));
        return 0;
    }
    char *tenant = xstrndup((const char *)v + 4, tl);
    int rc = fn(ud, be64_get(k), tenant, (const char *)v + 4 + tl, vl - 4 - tl);
    free(tenant);
    return rc;
}

int store_sessions_scan(store *s, store_session_visit_fn fn, void *ud) {
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ropts, s->cf[CF_SESSIONS]);
    int rc = 0;
    for (rocksdb_iter_seek_to_first(it); rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
        rc = visit_session(k, kl, v, vl, fn, ud);
    }
    rocksdb_iter_destroy(it);
    return rc;
}

/* ---- ids ----------------------------------------------------------------------------- */

/* Reads counter `key` (1 when absent). */
static int read_counter(store *s, const char *key, size_t klen, uint64_t *next) {
    char *e = NULL;
    size_t len = 0;
    char *v = rocksdb_get_cf(s->db, s->ropts, s->cf[CF_META], key, klen, &len, &e);
    int rc = SLUICE_OK;
    if (e) {
        LOG_ERROR(STORE_MODULE, "reading id counter %s failed: %s", key, e);
        rc = SLUICE_EIO;
    } else if (v && len != 8) {
        LOG_ERROR(STORE_MODULE, "id counter %s is malformed (%zu bytes)", key, len);
        rc = SLUICE_EIO;
    } else {
        *next = v ? be64_get((const uint8_t *)v) : 1;
    }
    rocksdb_free(e);
    rocksdb_free(v);
    return rc;
}

int store_reserve_ids(store *s, const char *name, uint64_t n, uint64_t *first) {
    if (!name || !*name || strlen(name) > ID_NAME_MAX || n == 0)
        return SLUICE_EINVAL;
    char key[8 + ID_NAME_MAX];
    int klen = snprintf(key, sizeof key, "ids/%s", name);
    pthread_mutex_lock(&s->ids_mu);
    uint64_t next = 0;
    int rc = read_counter(s, key, (size_t)klen, &next);
    if (!rc && next > UINT64_MAX - n)
        rc = SLUICE_ELIMIT;
    if (!rc) {
        uint8_t v[8];
        be64_put(v, next + n);
        char *e = NULL;
        rocksdb_put_cf(s->db, s->wopts, s->cf[CF_META], key, (size_t)klen, (const char *)v,
                       sizeof v, &e);
        if (e) {
            LOG_ERROR(STORE_MODULE, "writing id counter %s failed: %s", key, e);
            rocksdb_free(e);
            rc = SLUICE_EIO;
        }
    }
    pthread_mutex_unlock(&s->ids_mu);
    if (!rc)
        *first = next;
    return rc;
}

/* ---- stats --------------------------------------------------------------------------- */

void store_get_stats(store *s, store_stats *out) {
    memset(out, 0, sizeof *out);
    out->cache_hits = atomic_load(&s->st_hits);
    out->cache_misses = atomic_load(&s->st_misses);
    out->cache_corrupt = atomic_load(&s->st_corrupt);
    out->cache_puts = atomic_load(&s->st_puts);
    out->cache_dropped = atomic_load(&s->st_dropped);
    out->cache_evicted = atomic_load(&s->st_evicted);
    out->cache_expired = atomic_load(&s->st_expired);
    out->cache_bytes = atomic_load(&s->st_cache_bytes);
    out->cache_entries = atomic_load(&s->st_cache_entries);
    out->tasks_written = atomic_load(&s->st_tasks_written);
    out->tasks_deleted = atomic_load(&s->st_tasks_deleted);
    out->write_batches = atomic_load(&s->st_batches);
    out->write_queue_depth = atomic_load(&s->st_depth);
}

size_t store_write_queue_max(const store *s) {
    return s->cfg.write_queue_max;
}
