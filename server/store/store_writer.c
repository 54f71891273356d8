/*
 * The write queue and the writer thread (group commit), plus the batch helpers the
 * per-concern files use to apply operations.
 *
 * Callers (any thread) append operations to a FIFO bounded by write_queue_max slots; a
 * full queue is SLUICE_ELIMIT at once, never a wait. One writer thread takes what is queued
 * (up to 256 operations per batch), applies it in order into one indexed WriteBatch (so an
 * operation can read what an earlier one in the same batch wrote: a set_state right after the put
 * of its task), writes it with one rocksdb_write (WAL; fsync with sync_writes) and only then runs
 * the done callbacks, so a callback means "durable". The slots are released after the batch, so the
 * bound covers memory held by in-flight batches too. Between batches the writer sweeps every
 * sweep_interval_ms (monotonic clock; the sweep itself uses the store clock), or at once
 * when the cache outgrows its cap by 1/16; a sweep runs in bounded passes interleaved with
 * batches, so it never holds writes back for long.
 *
 * Failure: a failed rocksdb_write is logged and reported to every done callback of the
 * batch as SLUICE_EIO; its counter deltas are dropped, the store carries on.
 */
#include "server/store/store_internal.h"

#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "server/common/log.h"
#include "sluice/status.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH_MAX_OPS 256
#define BATCH_MAX_SLOTS 4096

store_op *store_op_new(store_op_kind kind, size_t slots) {
    store_op *op = XNEW(store_op);
    op->kind = kind;
    op->slots = slots ? slots : 1;
    return op;
}

void store_op_free(store_op *op) {
    if (!op)
        return;
    for (size_t i = 0; i < op->n_tasks; i++) {
        free(op->tasks[i].record);
        free(op->tasks[i].status);
    }
    free(op->tasks);
    free(op->blob);
    free(op);
}

int store_enqueue(store *s, store_op *op) {
    pthread_mutex_lock(&s->q_mu);
    int rc = SLUICE_OK;
    if (s->stopping)
        rc = SLUICE_ECLOSED;
    else if (op->slots > s->cfg.write_queue_max || s->q_depth > s->cfg.write_queue_max - op->slots)
        rc = SLUICE_ELIMIT;
    if (!rc) {
        op->seq = ++s->q_seq;
        if (s->q_tail)
            s->q_tail->next = op;
        else
            s->q_head = op;
        s->q_tail = op;
        if (op->kind == OP_CACHE_PUT)
            store_cache_queued_locked(s, op);
        s->q_depth += op->slots;
        atomic_store(&s->st_depth, s->q_depth);
        pthread_cond_signal(&s->q_cv);
    }
    pthread_mutex_unlock(&s->q_mu);
    if (rc)
        store_op_free(op);
    return rc;
}

void store_flush(store *s) {
    pthread_mutex_lock(&s->q_mu);
    uint64_t target = s->q_seq;
    while (s->applied_seq < target)
        pthread_cond_wait(&s->applied_cv, &s->q_mu);
    pthread_mutex_unlock(&s->q_mu);
}

/* ---- batches ------------------------------------------------------------------------- */

void store_batch_init(store_batch *b) {
    memset(b, 0, sizeof *b);
    b->wb = rocksdb_writebatch_wi_create(0, 1);
}

void store_batch_cleanup(store_batch *b) {
    if (b->wb)
        rocksdb_writebatch_wi_destroy(b->wb);
    b->wb = NULL;
}

char *store_batch_get(store *s, store_batch *b, enum store_cf cf, const void *key, size_t klen,
                      size_t *vlen) {
    char *e = NULL;
    char *v = rocksdb_writebatch_wi_get_from_batch_and_db_cf(b->wb, s->db, s->ropts, s->cf[cf], key,
                                                             klen, vlen, &e);
    if (e) {
        LOG_ERROR(STORE_MODULE, "read failed: %s", e);
        rocksdb_free(e);
        rocksdb_free(v);
        return NULL;
    }
    return v;
}

void store_batch_put(store_batch *b, store *s, enum store_cf cf, const void *key, size_t klen,
                     const void *val, size_t vlen) {
    rocksdb_writebatch_wi_put_cf(b->wb, s->cf[cf], key, klen, val, vlen);
}

void store_batch_delete(store_batch *b, store *s, enum store_cf cf, const void *key, size_t klen) {
    rocksdb_writebatch_wi_delete_cf(b->wb, s->cf[cf], key, klen);
}

static uint64_t add_clamped(uint64_t v, int64_t d) {
    if (d < 0 && (uint64_t)-d > v)
        return 0;
    return v + (uint64_t)d;
}

int store_batch_commit(store *s, store_batch *b) {
    if (rocksdb_writebatch_wi_count(b->wb) == 0)
        return SLUICE_OK;
    uint64_t bytes = add_clamped(s->cache_bytes, b->d_cache_bytes);
    uint64_t entries = add_clamped(s->cache_entries, b->d_cache_entries);
    if (b->cache_touched) {
        uint8_t v[16];
        be64_put(v, bytes);
        be64_put(v + 8, entries);
        store_batch_put(b, s, CF_META, "cache_stats", 11, v, sizeof v);
    }
    char *e = NULL;
    rocksdb_write_writebatch_wi(s->db, s->wopts, b->wb, &e);
    int rc = SLUICE_OK;
    if (e) {
        LOG_ERROR(STORE_MODULE, "write of a batch of %d operations failed: %s",
                  rocksdb_writebatch_wi_count(b->wb), e);
        rocksdb_free(e);
        rc = SLUICE_EIO;
    } else {
        s->cache_bytes = bytes;
        s->cache_entries = entries;
        atomic_store(&s->st_cache_bytes, bytes);
        atomic_store(&s->st_cache_entries, entries);
        atomic_fetch_add(&s->st_evicted, b->evicted);
        atomic_fetch_add(&s->st_expired, b->expired);
        atomic_fetch_add(&s->st_tasks_written, b->tasks_written);
        atomic_fetch_add(&s->st_tasks_deleted, b->tasks_deleted);
        atomic_fetch_add(&s->st_batches, 1);
    }
    rocksdb_writebatch_wi_t *wb = b->wb;
    rocksdb_writebatch_wi_clear(wb);
    memset(b, 0, sizeof *b);
    b->wb = wb;
    return rc;
}

/* ---- the writer thread --------------------------------------------------------------- */

static void apply_one(store *s, store_batch *b, const store_op *op) {
    switch (op->kind) {
    case OP_CACHE_PUT:
    case OP_CACHE_DEL:
        store_cache_apply(s, b, op);
        break;
    case OP_TASKS_PUT:
    case OP_TASK_STATE:
    case OP_TASK_FINISH:
        store_tasks_apply(s, b, op);
        break;
    case OP_SESSION_PUT:
    case OP_SESSION_DEL:
        store_sessions_apply(s, b, op);
        break;
    }
}

/* Applies a list of operations as one batch, runs their callbacks, frees them. */
static void apply_list(store *s, store_op *list) {
    store_batch b;
    pthread_mutex_lock(&s->apply_mu);
    store_batch_init(&b);
    for (store_op *op = list; op; op = op->next)
        apply_one(s, &b, op);
    int rc = store_batch_commit(s, &b);
    store_batch_cleanup(&b);
    pthread_mutex_unlock(&s->apply_mu);

    size_t slots = 0;
    uint64_t last = 0;
    for (store_op *op = list; op; op = op->next) {
        if (op->kind == OP_CACHE_DEL)
            store_cache_applied(s, op);
        if (op->done)
            op->done(op->ud, rc);
        slots += op->slots;
        last = op->seq;
    }
    pthread_mutex_lock(&s->q_mu);
    for (store_op *op = list; op; op = op->next)
        if (op->kind == OP_CACHE_PUT)
            store_cache_unqueued_locked(s, op);
    s->q_depth -= slots;
    s->applied_seq = last;
    atomic_store(&s->st_depth, s->q_depth);
    pthread_cond_broadcast(&s->applied_cv);
    pthread_mutex_unlock(&s->q_mu);
    while (list) {
        store_op *next = list->next;
        store_op_free(list);
        list = next;
    }
}

/* Detaches up to BATCH_MAX_OPS operations (and roughly BATCH_MAX_SLOTS tasks) from the
 * queue head. Caller holds q_mu. Bounding the batch keeps the indexed batch small (its
 * lookups cheap) and the latency of the first operation in it low. */
static store_op *take_batch(store *s) {
    store_op *head = s->q_head, *last = NULL;
    size_t ops = 0, slots = 0;
    for (store_op *op = head; op && ops < BATCH_MAX_OPS && slots < BATCH_MAX_SLOTS; op = op->next) {
        last = op;
        ops++;
        slots += op->slots;
    }
    if (!last)
        return NULL;
    s->q_head = last->next;
    if (!s->q_head)
        s->q_tail = NULL;
    last->next = NULL;
    return head;
}

/* True when the cache has outgrown its cap by 1/16 since the last sweep: sweep now rather
 * than at the next interval, so a write burst cannot overshoot the cap by much. */
static bool cache_overgrown(store *s, uint64_t bytes_at_last_sweep) {
    uint64_t cap = s->cfg.cache_max_bytes, bytes = atomic_load(&s->st_cache_bytes);
    return bytes > cap + cap / 16 && bytes != bytes_at_last_sweep;
}

static void *writer_main(void *arg) {
    store *s = arg;
    uint64_t next_sweep = clock_now_ms() + s->cfg.sweep_interval_ms;
    uint64_t bytes_at_sweep = 0;
    for (;;) {
        pthread_mutex_lock(&s->q_mu);
        while (!s->q_head && !s->stopping) {
            uint64_t now = clock_now_ms();
            if (now >= next_sweep)
                break;
            clock_cond_wait_ms(&s->q_cv, &s->q_mu, next_sweep - now);
        }
        store_op *list = take_batch(s);
        bool stop = s->stopping && !list;
        pthread_mutex_unlock(&s->q_mu);
        if (list)
            apply_list(s, list);
        if (stop)
            break;
        if (clock_now_ms() >= next_sweep || cache_overgrown(s, bytes_at_sweep)) {
            bool more = store_sweep_pass(s); /* bounded: queued writes go next */
            bytes_at_sweep = atomic_load(&s->st_cache_bytes);
            next_sweep = clock_now_ms() + (more ? 0 : s->cfg.sweep_interval_ms);
        }
    }
    return NULL;
}

int store_writer_start(store *s) {
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0)
        return SLUICE_EIO;
    pthread_setname_np(s->writer, "store-writer");
    s->writer_started = true;
    return SLUICE_OK;
}

void store_writer_stop(store *s) {
    if (!s->writer_started)
        return;
    pthread_mutex_lock(&s->q_mu);
    s->stopping = true;
    pthread_cond_signal(&s->q_cv);
    pthread_mutex_unlock(&s->q_mu);
    pthread_join(s->writer, NULL);
    s->writer_started = false;
}
