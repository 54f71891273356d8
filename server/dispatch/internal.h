/*
 * internal.h - the dispatcher's private structures, shared by its .c files only.
 *
 * Ownership map (all "loop" fields belong to the loop thread alone):
 *   dispatcher  -> keystate[n_keys] (one per upstream key), the timer heap, the id map,
 *                  the dedup table, the inbox (mutex)
 *   keystate    -> ring of kqueues with waiting tasks, budget-wait list
 *   kqueue      -> FIFO of WAITING tasks of one session on one key (owned by the session)
 *   dsession    -> kqueue per key, live-task list, its own limiters and blocklist
 *   dtask       -> its request, response under construction, HTTP handle, cache keys
 */
#ifndef SLUICE_DISPATCH_INTERNAL_H
#define SLUICE_DISPATCH_INTERNAL_H

#include "server/common/list.h"
#include "server/common/u64map.h"
#include "server/dispatch/dispatcher.h"
#include "server/dispatch/ratelimit.h"
#include "server/dispatch/retry.h"
#include "server/common/timerheap.h"
#include "server/providers/provider.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct keystate keystate;
typedef struct kqueue kqueue;
typedef struct dgroup dgroup;
typedef struct dtask dtask;

/* Timer kinds (theap_node.kind). */
enum { TIMER_TASK = 1, TIMER_KEY = 2, TIMER_SESSION = 3 };

struct kqueue {
    keystate *key;
    dsession *sess;
    dlist fifo; /* dtask.link */
    kqueue *ring_next, *ring_prev;
    bool in_ring;
};

/* Atomic instruments (written by the loop, read by dispatcher_get_stats anywhere). */
typedef struct ahist {
    atomic_uint_fast64_t counts[DISPATCH_HIST_BUCKETS];
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_us;
} ahist;

typedef struct amodel {
    atomic_uint_fast64_t requests, s2xx, s4xx, s429, s5xx, failures;
    atomic_uint_fast64_t input_tokens, output_tokens, cache_read_tokens, cache_write_tokens;
    atomic_uint_fast64_t cost_nusd; /* cost in 1e-9 USD */
} amodel;

typedef struct akey {
    atomic_uint_fast64_t waiting, in_flight, admitted, admitted_tokens, cooldowns, cooldown_ms;
    atomic_uint_fast64_t cooldown_until_us;
} akey;

struct keystate {
    size_t idx;
    akey stats;
    const upstream_key *key;
    rl_bucket rpm, tpm;
    rl_concurrency conc;
    uint64_t cooldown_until_us;
    double retry_tokens;
    uint64_t retry_last_us;
    kqueue *ring;      /* next kqueue to serve; NULL when nothing waits */
    dlist budget_wait; /* retries waiting for the retry budget (dtask.link) */
    theap_node wake;
    bool dirty;
    keystate *next_dirty;
    uint64_t waiting; /* tasks in this key's kqueues and budget list */
};

struct dsession {
    atomic_int refs;
    const registry *reg;
    dsession_config cfg;
    const model_info **models;
    double *weights;
    size_t *key_of_model;
    atomic_bool closed;

    /* tracker, guarded by mu */
    pthread_mutex_t mu;
    dsession_status st; /* elapsed_s unused here: computed from opened_ms */
    uint64_t opened_ms;
    uint64_t elapsed_base_ms; /* tracker time before a restart (dsession_status_restore) */
    uint64_t reserved;        /* counted in st.total, not submitted yet (dsession_track_reserve) */

    /* loop-only */
    bool loop_ref;   /* the loop holds a reference */
    dlink loop_link; /* in dispatcher.sessions while loop_ref */
    bool *blocked;   /* per model */
    rl_bucket rpm, tpm;
    rl_concurrency conc;
    kqueue **kq; /* per registry key, created on demand */
    dlist tasks; /* live tasks (dtask.sess_link) */
    theap_node wake;
    limiting_factor lf; /* what the loop last published to st.limiting_factor */
};

struct dgroup {
    cache_key key;
    dtask *leader;
    dlist followers; /* dtask.link */
    dgroup *chain;   /* same 64-bit hash prefix */
};

struct dtask {
    dispatcher *d;
    uint64_t id;
    dsession *sess;
    llm_request *req;
    const dispatcher_sink *sink;
    void *task_ctx;
    dtask_state state;

    int model; /* current model index, -1 before the first choice */
    int first_model;
    llm_sampling eff;    /* effective sampling for `model` */
    uint64_t est_tokens; /* estimate for `model` */
    uint32_t attempts;
    uint32_t same_retries; /* consecutive retries on one model, for backoff */
    uint32_t refused_by;   /* bit per session model that refused this prompt (400/422) */
    bool started;          /* counted in the tracker's started/in_progress */
    uint64_t submitted_us, deadline_us, attempt_start_us;

    llm_response *resp;    /* being built: attempts, then the answer or error */
    llm_response *cached;  /* a cache hit found at submit */
    cache_key *model_keys; /* per session model: cache keys from a missed lookup, or NULL */
    http_request *http;
    keystate *flight_key; /* key whose capacity the in-flight attempt holds */

    kqueue *kq; /* while WAITING in a kqueue */
    bool in_budget_wait;
    dlink link;       /* kqueue fifo, budget wait, or group followers */
    dlink sess_link;  /* session's live tasks */
    theap_node timer; /* RETRY_WAIT: the backoff's end; WAITING after an attempt: deadline */

    cache_key dedup_key;
    bool has_dedup_key;
    bool ghost;    /* cancelled while in flight: finishes its attempt for the cache and the
                    * identical prompts waiting on it, then ends silently (task.c) */
    dgroup *group; /* leader or follower of this group */

    dtask *next_submit; /* inbox chain */
};

typedef enum cmd_kind {
    CMD_SUBMIT = 1,
    CMD_CANCEL_IDS,
    CMD_CANCEL_SESSION,
    CMD_CLOSE_SESSION,
    CMD_CLEAR_BLOCKLIST,
} cmd_kind;

typedef struct cmd {
    cmd_kind kind;
    dsession *sess; /* referenced by the command */
    dtask *tasks;   /* CMD_SUBMIT: chain via next_submit */
    uint64_t *ids;  /* CMD_CANCEL_IDS */
    size_t n_ids;
    void (*on_closed)(void *arg); /* CMD_CLOSE_SESSION */
    void *on_closed_arg;
    struct cmd *next;
} cmd;

struct dispatcher {
    dispatcher_config cfg;
    const registry *reg;
    http_client *http;
    pthread_t thread;
    bool started;
    atomic_bool stopping;

    /* inbox (any thread -> loop) */
    pthread_mutex_t inbox_mu;
    cmd *inbox_head, *inbox_tail;
    atomic_size_t tasks_alive;

    /* loop-only */
    keystate *keys;
    size_t n_keys;
    keystate *dirty;
    theap timers;
    u64map tasks_by_id;
    u64map groups;                   /* 64-bit key prefix -> dgroup chain */
    dlist sessions;                  /* sessions the loop holds (dsession.loop_link) */
    dlist ghosts;                    /* attempts outliving their tasks (dtask.sess_link) */
    const dispatcher_sink **touched; /* sinks with on_done calls not yet flushed */
    size_t n_touched, cap_touched;
    uint64_t rng;

    /* stats (written by the loop, read anywhere) */
    atomic_uint_fast64_t upstream_requests, upstream_2xx, upstream_429, upstream_5xx,
        upstream_other, upstream_failures, retries, cache_hits, cache_misses, dedup_shared,
        cooldown_ms_total, tasks_done, tasks_failed, tasks_cancelled;
    amodel *model_stats; /* per registry model */
    ahist task_latency, overhead;
};

/* ---- loop-thread helpers shared between files (sched.c, task.c, dispatcher.c) ------- */

/* stats.c */
void stats_hist_add(ahist *h, uint64_t us);
amodel *stats_model(dispatcher *d, const model_info *m);
void stats_key_publish(keystate *k);

uint64_t dispatch_now_us(void);

/* session.c */
void dsession_loop_attach(dispatcher *d, dsession *s);
void dsession_loop_detach(dispatcher *d, dsession *s);
kqueue *dsession_kqueue(dispatcher *d, dsession *s, size_t key_idx);

/* sched.c */
void sched_init_keys(dispatcher *d, uint64_t now_us);
void sched_cleanup_keys(dispatcher *d);
void sched_mark_dirty(dispatcher *d, keystate *k);
void sched_mark_session_dirty(dispatcher *d, dsession *s);
void sched_enqueue(dispatcher *d, dtask *t, bool front);
void sched_enqueue_retry(dispatcher *d, dtask *t);
void sched_unlink(dispatcher *d, dtask *t);
void sched_pump(dispatcher *d);
void sched_release(dispatcher *d, dtask *t);
void sched_on_key_timer(dispatcher *d, keystate *k);
void sched_cooldown(dispatcher *d, keystate *k, uint64_t until_us);
void sched_note_first_attempt(dispatcher *d, keystate *k);

/* task.c: lifecycle */
void task_set_state(dispatcher *d, dtask *t, dtask_state s);
void task_take(dispatcher *d, dtask *t); /* first look at a submitted task */
/* a submitted task whose sink's owner already cancelled: it ends at once */
void task_take_cancelled(dispatcher *d, dtask *t);
void task_begin(dispatcher *d, dtask *t); /* choose a model and queue */
void task_use_model(dtask *t, int idx);
bool task_never_fits(dispatcher *d, dtask *t);
void task_finish_success(dispatcher *d, dtask *t);
void task_fail(dispatcher *d, dtask *t, llm_error_kind kind, int status, const char *msg);
void task_cancel(dispatcher *d, dtask *t);
void task_abandon(dispatcher *d, dtask *t);
void task_free(dtask *t);
void dispatch_flush_sinks(dispatcher *d);
void task_track_start(dtask *t);
void task_track_counts(dtask *t, int attempts, unsigned rate_limited);

/* attempt.c: one HTTP attempt and what follows it */
void task_launch(dispatcher *d, dtask *t, keystate *k);
void task_on_timer(dispatcher *d, dtask *t);

#endif
