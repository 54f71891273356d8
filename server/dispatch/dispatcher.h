/*
 * dispatcher.h - the one dispatcher: every prompt of every entry point goes through here.
 *
 * dispatcher_submit takes tasks (a prompt each) for a session together with a sink, and
 * every task ends in exactly one sink->on_done call: an answer, a final error, or a
 * cancellation. BatchProcess and Start differ only in the sink they pass. Inside, one
 * thread (the loop thread) owns everything that moves: the libcurl multi handle, the
 * per-upstream-key and per-session rate limiters, concurrency caps, cooldowns, the fair
 * queues, the retry/backoff timers and the in-flight dedup table. Other threads hand work
 * over through a bounded inbox and http_client_wakeup.
 *
 * Per task: cache pre-check (on the submitting thread: a hit costs no capacity), in-flight
 * dedup (identical prompts of one tenant share one upstream call), model choice
 * (weighted, skipping blocklisted models, prefer_model when usable), pacing, the HTTP
 * attempt, classification by the retry table, then retry (same model with backoff,
 * another model, after a cooldown) or finish. See DESIGN.md and README "Dispatch policy".
 *
 * Thread safety: functions may be called from any thread unless noted; sink callbacks run
 * on the loop thread and must not block.
 */
#ifndef SLUICE_DISPATCH_DISPATCHER_H
#define SLUICE_DISPATCH_DISPATCHER_H

#include "server/common/llm.h"
#include "server/dispatch/session.h"
#include "server/http/http.h"
#include "server/providers/registry.h"
#include "server/store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dispatcher dispatcher;

/* Task states. One transition function moves tasks between them. */
typedef enum dtask_state {
    DTASK_QUEUED = 1,     /* handed over, not yet looked at by the loop */
    DTASK_WAITING = 2,    /* waiting for capacity (limits, cooldown, retry budget, a leader) */
    DTASK_IN_FLIGHT = 3,  /* an HTTP attempt is running */
    DTASK_RETRY_WAIT = 4, /* backing off before the next attempt */
    DTASK_DONE = 5,       /* answered (final) */
    DTASK_FAILED = 6,     /* final error (final) */
    DTASK_CANCELLED = 7,  /* cancelled (final) */
    DTASK_ABANDONED = 8,  /* the dispatcher stopped first: not a result (final) */
} dtask_state;

/* Where results go. Borrowed: must stay valid until every task submitted with it ended. */
typedef struct dispatcher_sink {
    /* The task ended with `final` (DONE, FAILED, CANCELLED or ABANDONED). Takes
     * ownership of resp, which is not a result for ABANDONED (and may be NULL then): free
     * it all the same. Loop thread. Required. */
    void (*on_done)(void *ctx, uint64_t task_id, void *task_ctx, dtask_state final,
                    llm_response *resp);
    /* The task moved to WAITING, IN_FLIGHT or RETRY_WAIT. Loop thread. Optional. */
    void (*on_state)(void *ctx, uint64_t task_id, void *task_ctx, dtask_state state);
    /* Called once after a round of on_done calls to this sink, before the loop sleeps:
     * a sink can send what it collected in one go. Every on_done is followed by an
     * on_flush (also at shutdown). Loop thread. Optional. */
    void (*on_flush)(void *ctx);
    void *ctx;
    /* Whether the sink's owner has given up on every task it submitted. Asked when the loop
     * takes a submission: a submission pushed while its owner was cancelling the ids it knew
     * of (its cancel can overtake the submit) then ends CANCELLED at once, never sent.
     * Loop thread. Optional (NULL: never). */
    bool (*cancelled)(void *ctx);
} dispatcher_sink;

typedef struct dispatcher_task_spec {
    uint64_t id;          /* unique, chosen by the caller */
    llm_request *request; /* ownership passes to the dispatcher on SLUICE_OK */
    void *task_ctx;       /* handed back to the sink */
} dispatcher_task_spec;

typedef struct dispatcher_config {
    const registry *reg; /* borrowed; outlives the dispatcher */
    store *store;        /* borrowed, may be NULL (no response cache) */
    http_config http;
    size_t max_tasks;              /* tasks alive at once; 0 = 1,000,000 */
    uint32_t burst_ms;             /* bucket capacity in ms of refill; 0 = 1000 */
    uint32_t backoff_base_ms;      /* 0 = 500 */
    uint32_t backoff_max_ms;       /* 0 = 30000 */
    uint32_t default_cooldown_ms;  /* cooldown after a 429 without Retry-After; 0 = 10000 */
    double retry_budget_ratio;     /* retries allowed per first attempt; 0 = 0.2 */
    double retry_budget_min_per_s; /* retries always allowed per second per key; 0 = 1 */
    bool no_dedup;                 /* disable in-flight dedup */
    uint64_t seed;                 /* RNG seed; 0 = from the clock */
} dispatcher_config;

/* Creates the dispatcher and its HTTP client; does not start the thread. Returns
 * SLUICE_OK or an error with a message. */
int dispatcher_new(const dispatcher_config *cfg, dispatcher **out, char *err, size_t errlen);
/* Starts the loop thread. */
int dispatcher_start(dispatcher *d);
/* Stops the loop thread: tasks still alive end with DTASK_ABANDONED (durable tasks stay
 * unfinished in the store and resume at the next start). Blocks until the thread has
 * exited. Idempotent. */
void dispatcher_stop(dispatcher *d);
/* Stops if needed and frees. NULL-safe. */
void dispatcher_free(dispatcher *d);

/* How a submission counts in its session tracker's `total` (a prompt counts once, however
 * it reached the dispatcher). */
typedef enum dispatcher_count {
    DISPATCH_COUNT_NEW = 0,  /* new prompts: total grows by n */
    DISPATCH_COUNT_RESERVED, /* counted already by dsession_track_reserve (durable Start) */
    DISPATCH_COUNT_RESTORED, /* counted in a tracker restored after a restart (resume) */
} dispatcher_count;

/* Submits n tasks of session s (all or nothing), counted as `how` says. Cache hits are
 * looked up here, on the calling thread. Returns SLUICE_OK, SLUICE_ECLOSED (session closed
 * or dispatcher stopped), or SLUICE_ELIMIT (more than max_tasks would be alive; nothing
 * submitted). On an error nothing is counted: a reservation stays the caller's (release it
 * with dsession_track_release). Any thread. */
int dispatcher_submit_counted(dispatcher *d, dsession *s, dispatcher_task_spec *specs, size_t n,
                              const dispatcher_sink *sink, dispatcher_count how);
/* dispatcher_submit_counted(..., DISPATCH_COUNT_NEW). */
int dispatcher_submit(dispatcher *d, dsession *s, dispatcher_task_spec *specs, size_t n,
                      const dispatcher_sink *sink);
/* Cancels tasks by id (unknown or finished ids are ignored). Asynchronous: each cancelled
 * task ends through its sink with DTASK_CANCELLED. */
void dispatcher_cancel_tasks(dispatcher *d, const uint64_t *ids, size_t n);
/* Cancels every unfinished task of a session, asynchronously. */
void dispatcher_cancel_session(dispatcher *d, dsession *s);
/* Closes a session: no more submits; its unfinished tasks are cancelled. Asynchronous:
 * on_closed(arg) (may be NULL) runs on the loop thread once every task of the session has
 * ended (their sinks have run). */
void dispatcher_session_close(dispatcher *d, dsession *s, void (*on_closed)(void *arg), void *arg);
/* Forgets the session's blocklist, asynchronously. */
void dispatcher_session_clear_blocklist(dispatcher *d, dsession *s);

/* Latency histogram buckets (upper bounds in milliseconds; a last bucket is +Inf). */
#define DISPATCH_HIST_BUCKETS 16
extern const double dispatch_hist_bounds_ms[DISPATCH_HIST_BUCKETS - 1];

typedef struct dispatch_hist {
    uint64_t counts[DISPATCH_HIST_BUCKETS]; /* per bucket (not cumulative) */
    uint64_t count;
    double sum_ms;
} dispatch_hist;

/* Per model of the registry. */
typedef struct dispatch_model_stats {
    const char *model; /* registry name (borrowed from the registry) */
    const char *provider;
    uint64_t requests;                         /* attempts sent */
    uint64_t s2xx, s4xx, s429, s5xx, failures; /* by outcome; failures = no HTTP answer */
    uint64_t input_tokens, output_tokens, cache_read_tokens, cache_write_tokens;
    double cost;
} dispatch_model_stats;

/* Per upstream key. */
typedef struct dispatch_key_stats {
    const char *key;                             /* borrowed from the registry */
    uint64_t waiting;                            /* tasks queued for this key now */
    uint64_t in_flight;                          /* attempts in flight now */
    uint64_t admitted_requests, admitted_tokens; /* counters: what pacing let through */
    uint64_t cooldowns, cooldown_ms;             /* counters */
    bool cooling;                                /* in a cooldown now */
    uint32_t requests_per_minute, tokens_per_minute, max_concurrent; /* limits */
} dispatch_key_stats;

/* Counters for metrics and benchmarks. */
typedef struct dispatcher_stats {
    uint64_t tasks_alive;
    uint64_t upstream_requests, upstream_2xx, upstream_429, upstream_5xx, upstream_other;
    uint64_t upstream_failures;   /* no HTTP answer (timeouts, resets, ...) */
    uint64_t http_setup_failures; /* transfers libcurl refused to set up (a bug: stays 0) */
    uint64_t retries, cache_hits, cache_misses, dedup_shared;
    uint64_t cooldown_ms_total;
    uint64_t tasks_done, tasks_failed, tasks_cancelled;
    dispatch_hist task_latency;   /* submit -> result, finished tasks */
    dispatch_hist overhead;       /* task latency minus time in upstream HTTP, answered tasks */
    dispatch_model_stats *models; /* n_models entries, registry order */
    size_t n_models;
    dispatch_key_stats *keys; /* n_keys entries, registry order */
    size_t n_keys;
} dispatcher_stats;

/* Fills a snapshot (allocating the per-model and per-key arrays: release with
 * dispatcher_stats_cleanup). Any thread. */
void dispatcher_get_stats(dispatcher *d, dispatcher_stats *out);
void dispatcher_stats_cleanup(dispatcher_stats *s);

#endif
