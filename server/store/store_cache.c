/*
 * The response cache: lookups, puts, deletes of expired/corrupt entries, and the size cap.
 *
 * Values (a fixed header, then the codec's packed sluice.store.v1.Response; see
 * store_internal.h) are encoded on the caller's thread (the copy store_cache_put promises
 * is the encoding), so the writer only writes bytes; a response the codec refuses is logged
 * and not cached. Lookups are inline point reads on the caller's thread; the TTL is checked
 * on the header before anything is decoded. A value past cache_ttl_ms (age >= ttl) or one
 * that does not decode is a miss; its deletion is queued to the writer, which re-reads the
 * key first and deletes only if it still holds that same stale or corrupt value (a fresh
 * put may have replaced it in the meantime). Two small direct-mapped key sets keep a lookup
 * storm on one bad key down to one queued delete (a key leaves the "pending" set when its
 * delete is written) and one log line (the "logged" set remembers the last 1024-ish corrupt
 * keys).
 *
 * Size accounting: every put adds key + value + its age-index entry to cache_bytes and
 * records that amount in the age-index value; the amount is subtracted exactly when that age
 * entry is deleted (an overwrite deletes the age entry of the value it replaces). Only a
 * value whose header is unreadable can leave its age entry behind ("stale": no value with
 * that stored_ms exists), which the sweep drops when it reaches it. The counters are written into
 * meta in the same batch as each change, so they survive crashes exactly. The sweep walks the age
 * index from the oldest entry, deleting while the estimate exceeds cache_max_bytes or the entry is
 * past the TTL; it remembers where it stopped so later sweeps skip the tombstones.
 */
#include "server/store/store_internal.h"

#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "server/common/log.h"
#include "server/store/codec.h"
#include "sluice/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VALUE_FORMAT 2  /* 1 was the JSON payload of store schema 1 */
#define VALUE_HEADER 11 /* format, stored_ms, model length */
#define AGE_KEY_LEN 40

/* ---- value format -------------------------------------------------------------------- */

/* The header, then the packed response right behind it (packed in place: one allocation,
 * no copy). SLUICE_EINVAL when the codec refuses the response. */
static int value_encode(uint64_t stored_ms, const llm_response *r, char **out, size_t *len,
                        char *err, size_t errlen) {
    const char *model = r->model_used ? r->model_used : "";
    size_t mlen = strlen(model);
    if (mlen > UINT16_MAX)
        mlen = UINT16_MAX;
    uint8_t *v;
    int rc = codec_response_pack(r, VALUE_HEADER + mlen, &v, len, err, errlen);
    if (rc)
        return rc;
    v[0] = VALUE_FORMAT;
    be64_put(v + 1, stored_ms);
    v[9] = (uint8_t)(mlen >> 8);
    v[10] = (uint8_t)mlen;
    memcpy(v + VALUE_HEADER, model, mlen);
    *out = (char *)v;
    return SLUICE_OK;
}

/* Parses the header; returns the offset of the packed response, or 0 for a bad header. */
static size_t value_header(const char *v, size_t len, uint64_t *stored_ms) {
    const uint8_t *p = (const uint8_t *)v;
    if (len < VALUE_HEADER || p[0] != VALUE_FORMAT)
        return 0;
    *stored_ms = be64_get(p + 1);
    size_t mlen = (size_t)p[9] << 8 | p[10];
    if (len < VALUE_HEADER + mlen)
        return 0;
    return VALUE_HEADER + mlen;
}

int store_cache_value_decode(const char *v, size_t len, llm_response **out, char *err,
                             size_t errlen) {
    uint64_t stored_ms;
    size_t off = value_header(v, len, &stored_ms);
    if (!off) {
        *out = NULL;
        snprintf(err, errlen, "bad value header");
        return SLUICE_EPROTO;
    }
    return codec_response_unpack((const uint8_t *)v + off, len - off, out, err, errlen);
}

static void age_key(uint8_t out[AGE_KEY_LEN], uint64_t stored_ms, const cache_key *k) {
    be64_put(out, stored_ms);
    memcpy(out + 8, k->b, sizeof k->b);
}

/* ---- pending deletes ----------------------------------------------------------------- */

static size_t pending_slot(const cache_key *k) {
    return (size_t)(be64_get(k->b) % STORE_PENDING_SLOTS);
}

/* Marks k as having a delete queued. False when it already had one. */
static bool pending_add(store *s, const cache_key *k) {
    size_t i = pending_slot(k);
    pthread_mutex_lock(&s->pending_mu);
    bool fresh = !(s->pending_used[i] && memcmp(&s->pending[i], k, sizeof *k) == 0);
    s->pending[i] = *k; /* a colliding key just takes the slot: the set is only a filter */
    s->pending_used[i] = true;
    pthread_mutex_unlock(&s->pending_mu);
    return fresh;
}

static void pending_remove(store *s, const cache_key *k) {
    size_t i = pending_slot(k);
    pthread_mutex_lock(&s->pending_mu);
    if (s->pending_used[i] && memcmp(&s->pending[i], k, sizeof *k) == 0)
        s->pending_used[i] = false;
    pthread_mutex_unlock(&s->pending_mu);
}

/* True the first time k is reported corrupt (until a colliding key takes its slot). */
static bool logged_add(store *s, const cache_key *k) {
    size_t i = pending_slot(k);
    pthread_mutex_lock(&s->pending_mu);
    bool fresh = !(s->logged_used[i] && memcmp(&s->logged[i], k, sizeof *k) == 0);
    s->logged[i] = *k;
    s->logged_used[i] = true;
    pthread_mutex_unlock(&s->pending_mu);
    return fresh;
}

/* Queues the deletion of a stale (expected_ms) or corrupt (STORE_DEL_ANY) value, once. */
static bool queue_delete(store *s, const cache_key *k, uint64_t expected_ms) {
    if (!pending_add(s, k))
        return false;
    store_op *op = store_op_new(OP_CACHE_DEL, 1);
    op->key = *k;
    op->when_ms = expected_ms;
    if (store_enqueue(s, op) != SLUICE_OK) {
        pending_remove(s, k); /* queue full: the next lookup tries again */
        return false;
    }
    return true;
}

/* ---- lookups and puts ---------------------------------------------------------------- */

static int miss(store *s) {
    atomic_fetch_add(&s->st_misses, 1);
    return SLUICE_ENOTFOUND;
}

static uint64_t key_word(const cache_key *k) {
    uint64_t w;
    memcpy(&w, k->b, sizeof w);
    return w;
}

void store_cache_queued_locked(store *s, store_op *op) {
    u64map_put(&s->unapplied, key_word(&op->key), op); /* the newest put of a key wins */
    atomic_store(&s->n_unapplied, s->unapplied.len);
}

void store_cache_unqueued_locked(store *s, const store_op *op) {
    uint64_t w = key_word(&op->key);
    if (u64map_get(&s->unapplied, w) == op) {
        u64map_del(&s->unapplied, w);
        atomic_store(&s->n_unapplied, s->unapplied.len);
    }
}

/* A put still in the write queue, decoded; false when there is none for key. The value is
 * copied under q_mu and decoded after it, so enqueuers and the writer wait for a memcpy
 * only. */
static bool queued_get(store *s, const cache_key *key, llm_response **out) {
    char *blob = NULL;
    size_t len = 0;
    pthread_mutex_lock(&s->q_mu);
    const store_op *op = u64map_get(&s->unapplied, key_word(key));
    if (op && memcmp(op->key.b, key->b, sizeof key->b) == 0) {
        len = op->blob_len;
        blob = xmalloc(len ? len : 1);
        memcpy(blob, op->blob, len);
    }
    pthread_mutex_unlock(&s->q_mu);
    if (!blob)
        return false;
    char why[256];
    bool found = store_cache_value_decode(blob, len, out, why, sizeof why) == SLUICE_OK;
    free(blob);
    return found;
}

int store_cache_get(store *s, const cache_key *key, llm_response **out) {
    *out = NULL;
    if (atomic_load(&s->n_unapplied) && queued_get(s, key, out)) {
        atomic_fetch_add(&s->st_hits, 1);
        return SLUICE_OK;
    }
    char *e = NULL;
    size_t len = 0;
    char *v = rocksdb_get_cf(s->db, s->ropts, s->cf[CF_CACHE], (const char *)key->b, sizeof key->b,
                             &len, &e);
    if (e) {
        LOG_ERROR(STORE_MODULE, "cache read failed: %s", e);
        rocksdb_free(e);
        return miss(s);
    }
    if (!v)
        return miss(s);
    uint64_t stored_ms = 0;
    uint64_t ttl = s->cfg.cache_ttl_ms;
    uint64_t now = store_now(s);
    if (ttl && value_header(v, len, &stored_ms) && now >= stored_ms && now - stored_ms >= ttl) {
        rocksdb_free(v);
        queue_delete(s, key, stored_ms);
        return miss(s);
    }
    char why[256];
    int rc = store_cache_value_decode(v, len, out, why, sizeof why);
    rocksdb_free(v);
    if (rc == SLUICE_OK) {
        atomic_fetch_add(&s->st_hits, 1);
        return SLUICE_OK;
    }
    queue_delete(s, key, STORE_DEL_ANY);
    if (logged_add(s, key)) {
        char hex[65];
        cachekey_hex(key, hex);
        atomic_fetch_add(&s->st_corrupt, 1);
        LOG_WARN(STORE_MODULE, "corrupt cache entry %s treated as a miss and deleted: %s", hex,
                 why);
    }
    return miss(s);
}

int store_cache_put(store *s, const cache_key *key, const llm_response *resp) {
    if (!resp)
        return SLUICE_EINVAL;
    uint64_t now = store_now(s);
    char *blob, why[256];
    size_t blob_len;
    if (value_encode(now, resp, &blob, &blob_len, why, sizeof why) != SLUICE_OK) {
        LOG_WARN(STORE_MODULE, "answer not cached: %s", why);
        atomic_fetch_add(&s->st_dropped, 1);
        return SLUICE_EINVAL;
    }
    store_op *op = store_op_new(OP_CACHE_PUT, 1);
    op->key = *key;
    op->when_ms = now;
    op->blob = blob;
    op->blob_len = blob_len;
    int rc = store_enqueue(s, op);
    atomic_fetch_add(rc == SLUICE_OK ? &s->st_puts : &s->st_dropped, 1);
    return rc;
}

/* ---- writer side --------------------------------------------------------------------- */

/* Deletes the age entry (stored_ms, k) if present, un-accounting its bytes. */
static void drop_age_entry(store *s, store_batch *b, uint64_t stored_ms, const cache_key *k);

static void apply_put(store *s, store_batch *b, const store_op *op) {
    /* An overwrite un-accounts the value it replaces (a point read, cheap with the bloom
     * filter in the common case of a new key), so the estimate stays exact. */
    size_t olen = 0;
    uint64_t old_ms;
    char *old = store_batch_get(s, b, CF_CACHE, op->key.b, sizeof op->key.b, &olen);
    if (old && value_header(old, olen, &old_ms))
        drop_age_entry(s, b, old_ms, &op->key);
    rocksdb_free(old);
    uint8_t ak[AGE_KEY_LEN], av[8];
    age_key(ak, op->when_ms, &op->key);
    uint64_t accounted = sizeof op->key.b + op->blob_len + sizeof ak + sizeof av;
    be64_put(av, accounted);
    store_batch_put(b, s, CF_CACHE, op->key.b, sizeof op->key.b, op->blob, op->blob_len);
    store_batch_put(b, s, CF_CACHE_AGE, ak, sizeof ak, av, sizeof av);
    b->d_cache_bytes += (int64_t)accounted;
    b->d_cache_entries += 1;
    b->cache_touched = true;
    if (op->when_ms < s->age_hint_ms)
        s->age_hint_ms = op->when_ms; /* the clock went back: sweep from there */
}

static void drop_age_entry(store *s, store_batch *b, uint64_t stored_ms, const cache_key *k) {
    uint8_t ak[AGE_KEY_LEN];
    age_key(ak, stored_ms, k);
    size_t alen = 0;
    char *av = store_batch_get(s, b, CF_CACHE_AGE, ak, sizeof ak, &alen);
    if (!av)
        return;
    if (alen == 8)
        b->d_cache_bytes -= (int64_t)be64_get((const uint8_t *)av);
    b->d_cache_entries -= 1;
    b->cache_touched = true;
    store_batch_delete(b, s, CF_CACHE_AGE, ak, sizeof ak);
    rocksdb_free(av);
}

static void apply_delete(store *s, store_batch *b, const store_op *op) {
    size_t len = 0;
    char *v = store_batch_get(s, b, CF_CACHE, op->key.b, sizeof op->key.b, &len);
    if (!v)
        return;
    uint64_t stored_ms = 0;
    bool header_ok = value_header(v, len, &stored_ms) != 0;
    bool still_bad;
    if (op->when_ms == STORE_DEL_ANY) {
        llm_response *r = NULL;
        char why[64];
        still_bad = store_cache_value_decode(v, len, &r, why, sizeof why) != SLUICE_OK;
        llm_response_free(r);
    } else {
        still_bad = header_ok && stored_ms == op->when_ms;
    }
    rocksdb_free(v);
    if (!still_bad)
        return;
    store_batch_delete(b, s, CF_CACHE, op->key.b, sizeof op->key.b);
    if (header_ok)
        drop_age_entry(s, b, stored_ms, &op->key);
    if (op->when_ms != STORE_DEL_ANY)
        b->expired++;
}

void store_cache_apply(store *s, store_batch *b, const store_op *op) {
    if (op->kind == OP_CACHE_PUT)
        apply_put(s, b, op);
    else
        apply_delete(s, b, op);
}

void store_cache_applied(store *s, const store_op *op) {
    /* Only now is the value gone for readers, so only now may they queue a delete again. */
    pending_remove(s, &op->key);
}

void store_cache_load_stats(store *s) {
    char *e = NULL;
    size_t len = 0;
    char *v = rocksdb_get_cf(s->db, s->ropts, s->cf[CF_META], "cache_stats", 11, &len, &e);
    if (!e && v && len == 16) {
        s->cache_bytes = be64_get((const uint8_t *)v);
        s->cache_entries = be64_get((const uint8_t *)v + 8);
    } else { /* missing or unreadable: recount from the age index */
        s->cache_bytes = s->cache_entries = 0;
        rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ropts, s->cf[CF_CACHE_AGE]);
        for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
            size_t vl;
            const char *av = rocksdb_iter_value(it, &vl);
            s->cache_bytes += vl == 8 ? be64_get((const uint8_t *)av) : 0;
            s->cache_entries++;
        }
        rocksdb_iter_destroy(it);
    }
    rocksdb_free(e);
    rocksdb_free(v);
    atomic_store(&s->st_cache_bytes, s->cache_bytes);
    atomic_store(&s->st_cache_entries, s->cache_entries);
}

/* One age-index entry reached by the sweep: evicts (or drops as stale) and accounts. */
/* Drops one index entry and, when it still describes the stored value, the value. False
 * (nothing changed) when the value cannot be read: dropping the index entry alone would
 * orphan the value beyond eviction's reach, so the sweep stops and tries again later. */
static bool sweep_entry(store *s, store_batch *b, const uint8_t *ak, uint64_t accounted,
                        bool expired) {
    uint64_t stored_ms = be64_get(ak);
    size_t len = 0;
    char *e = NULL;
    char *v = rocksdb_get_cf(s->db, s->ropts, s->cf[CF_CACHE], (const char *)ak + 8, 32, &len, &e);
    if (e) { /* logged at most once a minute: every write batch runs a pass */
        uint64_t now = clock_now_ms();
        if (now - s->sweep_warned_ms >= 60000) {
            s->sweep_warned_ms = now;
            LOG_WARN(STORE_MODULE, "cache eviction paused: reading an entry failed: %s", e);
        }
        rocksdb_free(e);
        rocksdb_free(v);
        return false;
    }
    uint64_t cur_ms;
    if (v && value_header(v, len, &cur_ms) && cur_ms == stored_ms) {
        store_batch_delete(b, s, CF_CACHE, ak + 8, 32);
        if (expired)
            b->expired++;
        else
            b->evicted++;
    }
    rocksdb_free(v);
    store_batch_delete(b, s, CF_CACHE_AGE, ak, AGE_KEY_LEN);
    b->d_cache_bytes -= (int64_t)accounted;
    b->d_cache_entries -= 1;
    b->cache_touched = true;
    return true;
}

static sweep_verdict cache_visit(store *s, store_batch *b, const uint8_t *ak, size_t kl,
                                 const uint8_t *av, size_t vl, void *ctx) {
    uint64_t now = *(const uint64_t *)ctx, ttl = s->cfg.cache_ttl_ms;
    if (kl != AGE_KEY_LEN)
        return SWEEP_SKIP;
    uint64_t ts = be64_get(ak);
    bool expired = ttl && now >= ts && now - ts >= ttl;
    int64_t live = (int64_t)s->cache_bytes + b->d_cache_bytes;
    if (!expired && live <= (int64_t)s->cfg.cache_max_bytes)
        return SWEEP_STOP;
    return sweep_entry(s, b, ak, vl == 8 ? be64_get(av) : 0, expired) ? SWEEP_DELETED : SWEEP_STOP;
}

bool store_cache_sweep(store *s) {
    uint64_t now = store_now(s);
    return store_sweep_index(s, CF_CACHE_AGE, &s->age_hint_ms, cache_visit, &now);
}
