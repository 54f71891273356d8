/*
 * store_internal.h - what the store's .c files share (internal to server/store).
 *
 * On-disk layout (all integers big-endian so keys sort numerically):
 *   CF "meta"        "schema"             -> u32 schema version (STORE_SCHEMA_VERSION)
 *                    "cache_stats"        -> u64 live bytes, u64 entries (written in the same
 *                                            batch as every cache change, so always exact
 *                                            with respect to the data)
 *                    "ids/<name>"         -> u64 next id to hand out
 *   CF "cache"       key[32]              -> u8 format (2), u64 stored_ms, u16 model length,
 *                                            model bytes, packed sluice.store.v1.Response
 *   CF "cache_age"   u64 stored_ms key[32] -> u64 bytes this entry accounts for
 *   CF "tasks"       u64 id 'r'           -> packed sluice.store.v1.TaskRecord (immutable
 *                                            after put)
 *                    u64 id 's'           -> u8 format (2), u8 state, u64 finished_ms,
 *                                            u8 has_result (0/1), then the packed
 *                                            sluice.store.v1.Response result when 1
 *   CF "tasks_open"  u64 id               -> "" (unfinished tasks: the resume scan)
 *   CF "tasks_done"  u64 finished_ms u64 id -> "" (retention sweep order)
 *   CF "sessions"    u64 id               -> u32 tenant length, tenant, opaque data
 *
 * The messages are defined in proto/sluice/store/v1/records.proto and mapped by codec.h.
 * Schema history: 1 = JSON payloads (fastjson); 2 = protobuf payloads. A store of another
 * schema is refused at open, never misread.
 *
 * Threads: callers enqueue operations under q_mu; one writer thread applies them under
 * apply_mu (which store_sweep also takes), so every change of the cache accounting and
 * every index update happens on one thread at a time.
 */
#ifndef SLUICE_STORE_INTERNAL_H
#define SLUICE_STORE_INTERNAL_H

#include "server/common/u64map.h"
#include "server/store/store.h"

#include <pthread.h>
#include <rocksdb/c.h>
#include <stdatomic.h>

#define STORE_SCHEMA_VERSION 2u
#define STORE_MODULE "store"

enum store_cf {
    CF_DEFAULT,
    CF_META,
    CF_CACHE,
    CF_CACHE_AGE,
    CF_TASKS,
    CF_TASKS_OPEN,
    CF_TASKS_DONE,
    CF_SESSIONS,
    CF_COUNT
};

typedef enum store_op_kind {
    OP_CACHE_PUT,
    OP_CACHE_DEL,
    OP_TASKS_PUT,
    OP_TASK_STATE,
    OP_TASK_FINISH,
    OP_SESSION_PUT,
    OP_SESSION_DEL,
} store_op_kind;

/* One task of an OP_TASKS_PUT, encoded by the caller. */
typedef struct store_task_enc {
    uint64_t id;
    char *record; /* 'r' value */
    size_t record_len;
    char *status; /* 's' value */
    size_t status_len;
    bool finished;
    uint64_t finished_ms;
} store_task_enc;

/* A queued write. Fields are used according to kind; all pointers are owned. */
typedef struct store_op {
    struct store_op *next;
    store_op_kind kind;
    size_t slots; /* queue slots it takes (write_queue_max counts these) */
    uint64_t seq; /* enqueue order, for store_flush */
    store_done_fn done;
    void *ud;
    cache_key key;    /* cache ops */
    uint64_t id;      /* task / session id */
    uint64_t when_ms; /* cache put: stored_ms; cache del: expected stored_ms (or ANY);
                        task finish: finished_ms */
    int state;
    store_task_enc *tasks;
    size_t n_tasks;
    char *blob; /* the encoded value: cache value, task status, session record */
    size_t blob_len;
} store_op;

#define STORE_DEL_ANY UINT64_MAX /* OP_CACHE_DEL of a corrupt value: stored_ms unknown */

/* The writer's batch under construction. */
typedef struct store_batch {
    rocksdb_writebatch_wi_t *wb;
    int64_t d_cache_bytes, d_cache_entries; /* applied to the counters after commit */
    bool cache_touched;
    uint64_t evicted, expired, tasks_written, tasks_deleted;
} store_batch;

#define STORE_PENDING_SLOTS 1024 /* direct-mapped set of keys with a delete queued */

struct store {
    store_config cfg;  /* dir points at dir below; defaults filled in */
    store_sizes sizes; /* RocksDB's, derived from cfg */
    char *dir;
    rocksdb_t *db;
    rocksdb_options_t *db_opts;
    rocksdb_options_t *cf_opts[CF_COUNT];
    rocksdb_block_based_table_options_t *bbt_point, *bbt_scan;
    rocksdb_cache_t *block_cache;
    rocksdb_column_family_handle_t *cf[CF_COUNT];
    rocksdb_column_family_handle_t **extra_cf; /* CFs of a newer build, opened to be ignored */
    size_t n_extra_cf;
    rocksdb_writeoptions_t *wopts;
    rocksdb_readoptions_t *ropts;

    /* write queue */
    pthread_mutex_t q_mu;
    pthread_cond_t q_cv;       /* writer waits for work */
    pthread_cond_t applied_cv; /* store_flush waits for applied_seq */
    store_op *q_head, *q_tail;
    size_t q_depth; /* slots queued or being applied */
    uint64_t q_seq, applied_seq;
    /* cache puts queued or being applied, by the first 8 bytes of their key, so lookups
     * see an answer as soon as it is put (read-your-writes: never ask twice) */
    u64map unapplied;
    atomic_size_t n_unapplied; /* unapplied.len, readable without q_mu */
    bool stopping;
    pthread_t writer;
    bool writer_started;

    /* writer state (apply_mu) */
    pthread_mutex_t apply_mu;
    uint64_t cache_bytes, cache_entries;
    uint64_t age_hint_ms, done_hint_ms; /* sweeps start here: older keys are deleted */
    uint64_t sweep_warned_ms;           /* last "eviction paused" warning (writer only) */

    /* keys whose cache entry has a delete queued, and keys recently logged as corrupt
     * (pending_mu; both direct-mapped, a colliding key takes the slot) */
    pthread_mutex_t pending_mu;
    cache_key pending[STORE_PENDING_SLOTS];
    bool pending_used[STORE_PENDING_SLOTS];
    cache_key logged[STORE_PENDING_SLOTS];
    bool logged_used[STORE_PENDING_SLOTS];

    /* id counters (ids_mu) */
    pthread_mutex_t ids_mu;

    /* stats */
    _Atomic uint64_t st_hits, st_misses, st_corrupt, st_puts, st_dropped, st_evicted, st_expired,
        st_tasks_written, st_tasks_deleted, st_batches;
    _Atomic uint64_t st_cache_bytes, st_cache_entries, st_depth;
};

/* ---- helpers (store.c) ---------------------------------------------------------------- */

static inline void be64_put(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static inline uint64_t be64_get(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Index entries one sweep pass visits at most, so the writer (blocked meanwhile) resumes
 * within milliseconds; the writer runs passes back to back while work is left. */
#define STORE_SWEEP_PASS_MAX 4096

/* One bounded sweep pass (cache, then retention) under apply_mu. True when work is left. */
bool store_sweep_pass(store *s);

/* What a sweep visitor did with one index entry. */
typedef enum sweep_verdict {
    SWEEP_SKIP,    /* malformed entry: left alone, the pass goes on */
    SWEEP_DELETED, /* deletes were added to the batch; the pass goes on */
    SWEEP_STOP,    /* nothing further is due: the pass ends */
} sweep_verdict;

/* Looks at one entry of a time index (keys start with a big-endian ms timestamp) and may
 * add deletes to `b`. */
typedef sweep_verdict (*sweep_visit_fn)(store *s, store_batch *b, const uint8_t *key, size_t klen,
                                        const uint8_t *val, size_t vlen, void *ctx);

/* One bounded pass (STORE_SWEEP_PASS_MAX entries) over the time index `cf` from *hint_ms,
 * committing deletes in chunks. *hint_ms advances past what was deleted, or resets to 0 when
 * a commit failed (the next pass starts over). Returns true when work was left for another
 * pass. Caller holds apply_mu. */
bool store_sweep_index(store *s, enum store_cf cf, uint64_t *hint_ms, sweep_visit_fn visit,
                       void *ctx);

/* The store clock (cfg.clock or the wall clock), in ms. */
uint64_t store_now(const store *s);
/* Turns an open error (from `origin`: "rocksdb", "mkdir", ...) into the one start-up
 * message. Exposed for tests. */
void store_explain_open_error(const char *dir, const char *origin, const char *rocks_err, char *err,
                              size_t errlen);

/* ---- options (store_options.c) -------------------------------------------------------- */

/* Creates the option objects and the block cache from s->sizes and s->cfg. */
void store_options_build(store *s);
/* Destroys what store_options_build made (NULL members are skipped). */
void store_options_free(store *s);

/* ---- writer (store_writer.c) ---------------------------------------------------------- */

store_op *store_op_new(store_op_kind kind, size_t slots);
void store_op_free(store_op *op);
/* Appends op to the queue (taking ownership) or returns SLUICE_ELIMIT / SLUICE_ECLOSED and
 * frees it. */
int store_enqueue(store *s, store_op *op);
int store_writer_start(store *s);
/* Drains the queue and joins the writer. */
void store_writer_stop(store *s);
/* Point read that sees the batch under construction. Returns a value to free with
 * rocksdb_free, or NULL (absent or error, which is logged). */
char *store_batch_get(store *s, store_batch *b, enum store_cf cf, const void *key, size_t klen,
                      size_t *vlen);
void store_batch_put(store_batch *b, store *s, enum store_cf cf, const void *key, size_t klen,
                     const void *val, size_t vlen);
void store_batch_delete(store_batch *b, store *s, enum store_cf cf, const void *key, size_t klen);
void store_batch_init(store_batch *b);
/* Writes the batch (adding the cache stats when the cache changed), applies its counters,
 * clears it for reuse. Returns SLUICE_OK or SLUICE_EIO (logged). Caller holds apply_mu. */
int store_batch_commit(store *s, store_batch *b);
void store_batch_cleanup(store_batch *b);

/* ---- cache (store_cache.c) ------------------------------------------------------------ */

void store_cache_apply(store *s, store_batch *b, const store_op *op);
/* Called for each cache operation once its batch is written (or failed). */
void store_cache_applied(store *s, const store_op *op);
/* A cache put entered the queue / left it applied (or failed). Caller holds q_mu. */
void store_cache_queued_locked(store *s, store_op *op);
void store_cache_unqueued_locked(store *s, const store_op *op);
/* Loads cache_bytes/entries from meta, or recomputes them from the age index. */
void store_cache_load_stats(store *s);
/* One bounded pass (STORE_SWEEP_PASS_MAX index entries) of TTL and size-cap eviction.
 * Returns true when work was left for another pass. Caller holds apply_mu. */
bool store_cache_sweep(store *s);
/* Decodes a cache value (the fixed header, then the packed response) read from CF
 * "cache". SLUICE_OK with *out (llm_response_free), or SLUICE_EPROTO with *out NULL and a
 * message in err; never reads past len, whatever the bytes. Pure; any thread. */
int store_cache_value_decode(const char *v, size_t len, llm_response **out, char *err,
                             size_t errlen);

/* ---- tasks (store_tasks.c) ------------------------------------------------------------ */

void store_tasks_apply(store *s, store_batch *b, const store_op *op);
/* One bounded pass of the retention sweep; same contract as store_cache_sweep. */
bool store_tasks_sweep(store *s);
/* Decode a task's record (<id>'r': tenant, custom_id, session, index, created_ms, request)
 * and its status (<id>'s': state, finished_ms and the result) into t, whose fields they
 * set (the caller frees t with store_task_free, also after a failure). SLUICE_OK, or
 * SLUICE_EPROTO with a message in err; never read past len, whatever the bytes. Pure. */
int store_task_record_decode(const char *v, size_t len, store_task *t, char *err, size_t errlen);
int store_task_status_decode(const char *v, size_t len, store_task *t, char *err, size_t errlen);

/* ---- sessions (store_meta.c) ---------------------------------------------------------- */

void store_sessions_apply(store *s, store_batch *b, const store_op *op);

#endif
