/*
 * store.h - the embedded RocksDB store: response cache, durable tasks, sessions, metadata.
 *
 * One RocksDB database (shared library, C API) with column families "cache", "tasks",
 * "sessions" and "meta" (plus whatever indexes the store needs internally). The schema
 * version in "meta" is checked at open; open failures (lock held by another sluiced,
 * corruption, permissions, disk full, a newer or an older schema) stop start-up with one
 * clear message.
 *
 * Writes go through a bounded queue to one writer thread that applies them in order as
 * WriteBatches (group commit), so no caller - in particular the dispatcher's HTTP loop -
 * ever waits on disk. Point reads (cache lookups, task lookups) are done inline by the
 * calling thread. The writer thread also sweeps periodically: it deletes finished tasks
 * past their retention and evicts the oldest cache entries beyond the size cap.
 *
 * Durability: a write is in RocksDB's WAL when its done callback runs, which survives a
 * process crash (kill -9). With sync_writes it also survives power loss.
 *
 * Thread safety: every function may be called from any thread unless noted.
 */
#ifndef SLUICE_STORE_H
#define SLUICE_STORE_H

#include "server/common/llm.h"
#include "server/store/cachekey.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store;

/* Clock used for TTLs, retention and record timestamps: wall-clock milliseconds. Tests
 * pass a fake; NULL means clock_wall_ms(). */
typedef uint64_t (*store_clock_fn)(void *ctx);

typedef struct store_config {
    const char *dir;              /* data directory, created if missing */
    uint64_t cache_ttl_ms;        /* cache entries older than this are misses; 0 = forever */
    uint64_t cache_max_bytes;     /* evict oldest entries beyond this; 0 = 1 GiB */
    uint64_t result_retention_ms; /* keep finished tasks this long; 0 = 24 h */
    size_t write_queue_max;       /* queued write operations (a task counts one); 0 = 65536 */
    bool sync_writes;             /* fsync the WAL on every batch */
    uint32_t sweep_interval_ms;   /* 0 = 10000 */
    store_clock_fn clock;         /* NULL = clock_wall_ms */
    void *clock_ctx;
    /* RocksDB's own sizes (store_sizes_derive): the memory budget they are derived from,
     * and each of them alone (0 = derived from the budget). */
    uint64_t memory_budget_bytes; /* block cache + memtables + what RocksDB sizes itself;
                                     0 = 256 MiB */
    uint64_t block_cache_bytes;   /* uncompressed blocks read back; 0 = budget / 4 */
    uint64_t write_buffer_bytes;  /* memtables of all column families; 0 = budget / 2 */
    uint64_t wal_max_bytes;       /* WAL size that forces a flush (disk); 0 = write buffers */
} store_config;

/* The sizes RocksDB is opened with. */
typedef struct store_sizes {
    uint64_t memory_budget_bytes, block_cache_bytes, write_buffer_bytes, wal_max_bytes;
    uint64_t big_memtable_bytes;   /* one memtable of the cache or tasks family */
    uint64_t small_memtable_bytes; /* one memtable of the other families */
} store_sizes;

/* The sizes cfg asks for, each derived from the memory budget unless set (see
 * store_options.c for the split). Pure; any thread. */
void store_sizes_derive(const store_config *cfg, store_sizes *out);

/* Opens (creating if needed) the store and starts its writer thread. Returns SLUICE_OK or
 * SLUICE_EIO with one message in err saying what is wrong and what to do ("data directory
 * ./data is locked by another sluiced (...)"). */
int store_open(const store_config *cfg, store **out, char *err, size_t errlen);
/* Applies every queued write, stops the writer and closes the database. NULL-safe. */
void store_close(store *s);
/* Blocks until every write queued before the call is applied. For tests and shutdown.
 * Must not be called from a done callback (the writer thread would wait for itself). */
void store_flush(store *s);

/* ---- response cache ----------------------------------------------------------------- */

/* Looks up an answer. Returns SLUICE_OK with *out (caller frees with llm_response_free),
 * or SLUICE_ENOTFOUND for a miss, an expired entry, or a corrupt entry (which is deleted
 * and logged once). Inline point read. *out is NULL on every miss. A put is seen as soon
 * as store_cache_put returns, before the writer has applied it. */
int store_cache_get(store *s, const cache_key *key, llm_response **out);
/* Queues storing an answer under `key` (the answering model's key). The response is
 * copied. Returns SLUICE_OK, or SLUICE_ELIMIT when the write queue is full (the entry is
 * dropped: the cache is best effort). SLUICE_EINVAL for a NULL resp, or one the codec
 * refuses (codec.h: an enum out of range, an image part without a source, ...; logged, not
 * cached). The copy is the encoded value, made on the calling thread (~1 us for a 1 KB
 * answer). */
int store_cache_put(store *s, const cache_key *key, const llm_response *resp);

/* ---- durable tasks ------------------------------------------------------------------ */

typedef enum store_task_state {
    STORE_TASK_QUEUED = 1,
    STORE_TASK_RUNNING = 2,
    STORE_TASK_SUCCEEDED = 3,
    STORE_TASK_FAILED = 4,
    STORE_TASK_CANCELLED = 5,
} store_task_state;

typedef struct store_task {
    uint64_t id;
    char *tenant;
    uint64_t session_id;
    uint64_t index;  /* the caller's Prompt.index */
    char *custom_id; /* may be NULL */
    llm_request *request;
    store_task_state state;
    llm_response *result; /* NULL until finished */
    uint64_t created_ms;  /* store clock */
    uint64_t finished_ms; /* 0 until finished */
} store_task;

/* Frees a task record and everything in it. NULL-safe. */
void store_task_free(store_task *t);

/* Called on the writer thread once a queued write is durable (status SLUICE_OK) or
 * failed (SLUICE_EIO). Must not block. */
typedef void (*store_done_fn)(void *ud, int status);

/* Queues new tasks as one atomic batch; `done` (may be NULL) runs when they are durable.
 * The records are copied. Returns SLUICE_OK or SLUICE_ELIMIT (queue full: nothing was
 * queued, done will not run). The batch takes n queue slots, so n > write_queue_max is
 * always SLUICE_ELIMIT. SLUICE_EINVAL when n == 0 or a task has no request or a bad state,
 * or when the codec refuses a request or result (codec.h; logged, nothing queued).
 * A task put in a finished state is stored finished (with its result and finished_ms). */
int store_tasks_put(store *s, const store_task *const *tasks, size_t n, store_done_fn done,
                    void *ud);
/* Queues a state change of an unfinished task. A finished state is a store_task_finish
 * without result. The change is ignored (logged at debug) when the task is unknown or
 * already finished by the time it is applied. (sluiced itself stores only queued and
 * final states: a restart re-queues every unfinished task.) */
int store_task_set_state(store *s, uint64_t id, store_task_state state);
/* Queues the final state and result of a task (copied; result may be NULL). SLUICE_EINVAL
 * for an unfinished state or a result the codec refuses (codec.h; logged, nothing queued).
 * The first finish wins: a later one is ignored, so a stored answer is never overwritten.
 * finished_ms is the store clock at the call. `done` (may be NULL) runs on the writer
 * thread once the result is durable (not when this returns an error). */
int store_task_finish(store *s, uint64_t id, store_task_state state, const llm_response *result,
                      store_done_fn done, void *ud);
/* Reads one task. SLUICE_OK with *out (free with store_task_free) or SLUICE_ENOTFOUND
 * (unknown, or deleted after retention); SLUICE_EIO when its record cannot be read or
 * decoded (logged). *out is NULL on failure. */
int store_task_get(store *s, uint64_t id, store_task **out);
/* Visits every unfinished task (start-up resume), in id order. fn takes ownership of t; a
 * non-zero return stops the scan and is returned. Unreadable records are logged and
 * skipped. */
typedef int (*store_task_visit_fn)(void *ud, store_task *t);
int store_tasks_scan_unfinished(store *s, store_task_visit_fn fn, void *ud);

/* ---- sessions ----------------------------------------------------------------------- */

/* Queues storing a session's opaque record (the service's encoding of config and
 * tracker) under its id. */
int store_session_put(store *s, uint64_t id, const char *tenant, const char *data, size_t len);
/* Queues deleting a session record. */
int store_session_delete(store *s, uint64_t id);
/* Visits every stored session. data is valid during the call only. */
typedef int (*store_session_visit_fn)(void *ud, uint64_t id, const char *tenant, const char *data,
                                      size_t len);
int store_sessions_scan(store *s, store_session_visit_fn fn, void *ud);

/* ---- ids and stats ------------------------------------------------------------------ */

/* Reserves `n` consecutive ids from the persistent counter `name` ("task", "session")
 * with a synchronous write, so ids are never reused across restarts. *first receives the
 * first id (ids start at 1). Returns SLUICE_OK or SLUICE_EIO; SLUICE_EINVAL for n == 0 or
 * a name that is empty or longer than 64 bytes. */
int store_reserve_ids(store *s, const char *name, uint64_t n, uint64_t *first);

typedef struct store_stats {
    uint64_t cache_hits, cache_misses, cache_corrupt, cache_puts, cache_dropped;
    uint64_t cache_evicted, cache_expired;
    uint64_t cache_bytes;   /* estimated live bytes of the cache column family */
    uint64_t cache_entries; /* estimated */
    uint64_t tasks_written, tasks_deleted;
    uint64_t write_batches, write_queue_depth;
} store_stats;

/* Snapshot of the counters. */
void store_get_stats(store *s, store_stats *out);
/* The write queue's bound in slots (store_config.write_queue_max after defaults): no
 * store_tasks_put of more tasks than this can ever be queued. Any thread. */
size_t store_write_queue_max(const store *s);

/* Runs one full sweep now (retention, cache TTL and cap) on the calling thread, in bounded
 * passes that let queued writes through in between. For tests. */
void store_sweep(store *s);

#endif
