/*
 * svc_internal.h - the service's private structures, shared by its .c files only.
 *
 * service.mu guards: the session table, the task table, tenants, every svc_session /
 * svc_task / waiter field below. It is never held while calling into the dispatcher,
 * the store or a tcall (those take their own locks and may call back).
 */
#ifndef SLUICE_SERVICE_INTERNAL_H
#define SLUICE_SERVICE_INTERNAL_H

#include "server/common/list.h"
#include "server/common/u64map.h"
#include "server/service/convert.h"
#include "server/service/service.h"
#include "sluice/v1/sluice.sluice.h"

#include <pthread.h>
#include <stdbool.h>

typedef struct svc_session {
    uint64_t id;
    char *id_str;
    char *tenant;
    dsession *ds;
    int refs; /* table + users (under mu) */
    bool closed;
    bool ephemeral;          /* a BatchProcess's own session: never persisted */
    char *persisted;         /* the record last stored, so an unchanged one is not rewritten (mu) */
    uint64_t opened_wall_ms; /* when the tracker was opened or reset, Unix ms (mu) */
    dlist tasks;             /* Start'ed tasks held in memory (svc_task.sess_link) */
    /* Orders the session's record writes: a record is read from the tracker and queued for
     * the store under it, so the store never ends with an older record than the last one
     * queued (Start relies on that: see svc_session_reserve). Taken before mu. */
    pthread_mutex_t rec_mu;
} svc_session;

typedef struct svc_task {
    uint64_t id;
    svc_session *sess; /* referenced */
    uint64_t index;
    char *custom_id;
    store_task_state state;
    llm_response *result; /* once finished, until the store has it */
    bool finished;
    dlist waiters; /* wref.link */
    dlink sess_link;
} svc_task;

struct waiter;

/* One task slot of a waiter, registered on the task while it is unfinished. */
typedef struct wref {
    struct waiter *w;
    size_t slot;
    svc_task *task;
    dlink link;
} wref;

/* A parked Wait call (stream = false) or an AsCompleted stream (stream = true). */
typedef struct waiter {
    service *svc;
    tcall *call;
    bool stream;
    size_t n;
    char **id_strs;
    Sluice__V1__TaskResult **results; /* Wait: by slot */
    wref *refs;
    size_t remaining;
    uint64_t timer;            /* Wait timeout (0 = none) */
    size_t max_response_bytes; /* Wait: the client's limit (0 = the server's) */
    size_t max_results;        /* Wait: responses per answer (0 = any number) */
    bool omit_text_parts;      /* leave text parts out of responses (the request's flag) */
    bool completed;            /* replied, timed out or cancelled */
    int refs_count;            /* the call and the timers hold it */
    uint64_t heartbeat_timer;  /* AsCompleted: the next heartbeat check (0 = none) */
    uint64_t heartbeat_since;  /* AsCompleted: when heartbeats started (clock_now_ms) */
    /* AsCompleted: results waiting for room in the call's outbound queue, a FIFO in
     * pending[head .. n_pending) */
    Sluice__V1__TaskResult **pending;
    size_t head, n_pending, cap_pending;
    int sending;           /* results taken from pending, being sent */
    uint64_t writable_gen; /* on_writable calls so far (see flush_stream) */
} waiter;

typedef struct tenant_entry {
    char *name;
    size_t open_tasks;
    size_t sessions;
} tenant_entry;

struct service {
    service_config cfg;
    dispatcher *d;
    store *st;
    const registry *reg;
    timers *tm;

    pthread_mutex_t mu;
    u64map sessions; /* id -> svc_session */
    u64map tasks;    /* id -> svc_task (in memory) */
    tenant_entry *tenants;
    size_t n_tenants;
    bool stopping;
    uint64_t persist_timer;

    pthread_mutex_t id_mu; /* task id blocks */
    uint64_t next_task_id, task_id_end;

    dispatcher_sink durable_sink;
};

/* service.c */
tenant_entry *svc_tenant(service *s, const char *name); /* under mu; created on demand */
int svc_next_task_ids(service *s, size_t n, uint64_t *first);
svc_session *svc_session_get(service *s, const char *id_str, const char *tenant); /* ref'd */
void svc_session_put(service *s, svc_session *ss);
void svc_session_put_locked(service *s, svc_session *ss);
/* Under mu: closes ss once - marks it closed, takes it out of the table and its tenant's
 * count, and drops the table's reference (which frees ss unless the caller or another
 * holder keeps one). Returns false when ss was already closed. */
bool svc_session_unlist_locked(service *s, svc_session *ss);
void svc_reply_error(tcall *call, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Whether a stream owes its client a heartbeat at now_ms: nothing was queued on it for
 * the heartbeat interval, counted from the last message queued or from since_ms (when its
 * heartbeats started), whichever is later. *next_ms gets the delay after which to ask
 * again. Only with cfg.heartbeat_interval_ms set. Any thread, without mu. */
bool svc_heartbeat_due(const service *s, const tcall *call, uint64_t since_ms, uint64_t now_ms,
                       uint64_t *next_ms);

/* sessions.c */
void svc_sessions_register(service *s, transport_handler *h, size_t *n);
/* A new session (one reference, the caller's); takes `ds`. Not yet in the table. */
svc_session *svc_session_new(service *s, uint64_t id, const char *tenant, dsession *ds);
/* Puts ss in the table (which takes a reference of its own) unless its tenant already has
 * max_sessions_per_tenant sessions (checked and counted in one locked section). Returns
 * false when full; ss is then untouched. Without mu. */
bool svc_session_add(service *s, svc_session *ss);
/* Queues ss's record (sessrec.h) for the store unless it is closed, ephemeral or unchanged
 * since the last put. Returns SLUICE_OK, SLUICE_EINVAL when the record cannot be encoded
 * (logged; nothing is stored) or the store's error. Without mu. */
int svc_session_persist(service *s, svc_session *ss);
/* Counts n prompts of a Start in the tracker's total (dsession_track_reserve) and queues the
 * record holding that total, before the Start queues its tasks: the store writes in queue
 * order, so every stored task of the session is counted in its stored record, and tasks
 * that resume after a restart are not counted again (DISPATCH_COUNT_RESTORED). Returns as
 * svc_session_persist (the reservation stands whatever it returns). Without mu. */
int svc_session_reserve(service *s, svc_session *ss, size_t n);
int svc_sessions_restore(service *s, char *err, size_t errlen);
void svc_persist_all(service *s);

/* tasks.c: Start (the rest of the task RPCs are in waitrpc.c) */
void svc_start_register(service *s, transport_handler *h, size_t *n);
/* waitrpc.c: Start (through svc_start_register), Wait, AsCompleted, Cancel */
void svc_tasks_register(service *s, transport_handler *h, size_t *n);
void svc_durable_sink_init(service *s);
int svc_tasks_resume(service *s, char *err, size_t errlen);
void svc_task_free(svc_task *t);

/* batch.c */
void svc_batch_register(service *s, transport_handler *h, size_t *n);

/* Handler table size. */
#define SVC_MAX_HANDLERS 16

#endif
