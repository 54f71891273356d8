/*
 * Durable tasks: Start, the durable sink and resume (Wait, AsCompleted and Cancel are in
 * waitrpc.c).
 *
 * Start converts and validates every prompt, checks the tenant's open-task limit,
 * persists the tasks in one atomic store batch and, once that batch is durable (store
 * writer thread), submits them to the dispatcher and answers with their ids. The durable
 * sink keeps a live task's state in memory and persists the final result; waiters see a
 * result only once it is durable (a result a client saw survives any crash), after which
 * the task leaves memory and Wait and AsCompleted read it from the store. At start-up
 * every unfinished task in the store is resubmitted (a result already in the
 * cache is served from there, so nothing answered is sent upstream again).
 */
#include "svc_internal.h"
#include "waiters.h"

#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "server/common/log.h"
#include "sluice/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void svc_task_free(svc_task *t) {
    if (!t)
        return;
    free(t->custom_id);
    llm_response_free(t->result);
    free(t);
}

static store_task_state store_state_of(dtask_state s) {
    switch (s) {
    case DTASK_DONE:
        return STORE_TASK_SUCCEEDED;
    case DTASK_FAILED:
        return STORE_TASK_FAILED;
    case DTASK_CANCELLED:
        return STORE_TASK_CANCELLED;
    case DTASK_IN_FLIGHT:
    case DTASK_RETRY_WAIT:
        return STORE_TASK_RUNNING;
    default:
        return STORE_TASK_QUEUED;
    }
}

static void flush_ready(service *s, waiter **ready, size_t n) {
    if (!ready)
        return;
    for (size_t i = 0; i < n; i++) {
        waiter_flush(s, ready[i]);
        waiter_release(s, ready[i]);
    }
}

/* ---- the durable sink (dispatcher thread) ------------------------------------------- */

/* A live task's state is kept in memory only (GetStatus and Wait read it there). The store
 * holds queued -> final: after a restart every unfinished task is queued again, so a stored
 * "running" would tell nobody anything, and skipping it saves a write per task. */
static void durable_state(void *ctx, uint64_t id, void *task_ctx, dtask_state state) {
    (void)id;
    service *s = ctx;
    svc_task *t = task_ctx;
    pthread_mutex_lock(&s->mu);
    t->state = store_state_of(state);
    pthread_mutex_unlock(&s->mu);
}

typedef struct durable_ctx {
    service *s;
    svc_task *t;
} durable_ctx;

/* The task's result is what clients see from now on: its waiters are answered. A result
 * that reached the store leaves memory (the store serves it); one that could not be stored
 * stays in memory until shutdown. */
static void publish(service *s, svc_task *t, bool stored) {
    size_t n_ready = 0;
    pthread_mutex_lock(&s->mu);
    t->finished = true;
    waiter **ready = waiter_task_done_locked(t, &n_ready);
    if (stored) {
        u64map_del(&s->tasks, t->id);
        dlist_remove(&t->sess->tasks, &t->sess_link);
        svc_session_put_locked(s, t->sess);
    }
    pthread_mutex_unlock(&s->mu);
    flush_ready(s, ready, n_ready);
    free(ready);
    if (stored)
        svc_task_free(t);
}

/* Store writer thread: the result is durable. */
static void result_durable(void *ud, int status) {
    durable_ctx *c = ud;
    if (status != 0)
        LOG_ERROR("service", "task %llu: its result could not be persisted",
                  (unsigned long long)c->t->id);
    publish(c->s, c->t, status == 0);
    free(c);
}

/* The task ended with resp (taken). Its waiters are answered only once the result is
 * durable, so a result a client has seen is never lost in a crash. */
static void finish_task(service *s, svc_task *t, store_task_state st, llm_response *resp) {
    pthread_mutex_lock(&s->mu);
    t->state = st;
    t->result = resp;
    svc_tenant(s, t->sess->tenant)->open_tasks--;
    pthread_mutex_unlock(&s->mu);
    durable_ctx *c = XNEW(durable_ctx);
    c->s = s;
    c->t = t;
    if (store_task_finish(s->st, t->id, st, resp, result_durable, c) != 0) {
        LOG_WARN("service", "task %llu: store queue full, result kept in memory only",
                 (unsigned long long)t->id);
        free(c);
        publish(s, t, false);
    }
}

static void durable_done(void *ctx, uint64_t id, void *task_ctx, dtask_state final,
                         llm_response *resp) {
    if (final == DTASK_ABANDONED) {
        llm_response_free(resp); /* the sink owns it, result or not */
        return; /* shutdown: the task stays unfinished in the store and resumes later */
    }
    finish_task(ctx, task_ctx, store_state_of(final), resp);
}

void svc_durable_sink_init(service *s) {
    s->durable_sink.on_done = durable_done;
    s->durable_sink.on_state = durable_state;
    s->durable_sink.ctx = s;
}

/* ---- Start -------------------------------------------------------------------------- */

typedef struct start_ctx {
    service *s;
    tcall *call;
    svc_session *ss;
    size_t n;
    svc_task **tasks;
    llm_request **reqs;
} start_ctx;

static void start_ctx_free(start_ctx *c) {
    for (size_t i = 0; i < c->n; i++)
        llm_request_free(c->reqs[i]);
    free(c->reqs);
    free(c->tasks);
    svc_session_put(c->s, c->ss);
    tcall_unref(c->call);
    free(c);
}

/* Tasks that could not start end at once with an error result. */
static void fail_tasks(start_ctx *c, llm_error_kind kind, const char *why) {
    for (size_t i = 0; i < c->n; i++) {
        llm_response *r = llm_response_new();
        llm_response_set_error(r, kind, 0, "%s", why);
        finish_task(c->s, c->tasks[i],
                    kind == LLM_ERR_CANCELLED ? STORE_TASK_CANCELLED : STORE_TASK_FAILED, r);
    }
}

/* Tasks that were never persisted leave no trace. */
static void drop_tasks(start_ctx *c) {
    service *s = c->s;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < c->n; i++) {
        svc_task *t = c->tasks[i];
        u64map_del(&s->tasks, t->id);
        dlist_remove(&c->ss->tasks, &t->sess_link);
        c->ss->refs--; /* the task's; the start context still holds one */
        svc_task_free(t);
    }
    svc_tenant(s, c->ss->tenant)->open_tasks -= c->n;
    pthread_mutex_unlock(&s->mu);
}

static void reply_started(start_ctx *c) {
    Sluice__V1__StartResponse resp = SLUICE__V1__START_RESPONSE__INIT;
    char **ids = XNEWV(char *, c->n);
    for (size_t i = 0; i < c->n; i++)
        ids[i] = convert_format_id(c->s->cfg.node_id, 't', c->tasks[i]->id);
    resp.n_task_ids = c->n;
    resp.task_ids = ids;
    tcall_reply(c->call, &resp.base);
    for (size_t i = 0; i < c->n; i++)
        free(ids[i]);
    free(ids);
}

/* Store writer thread: the tasks are durable (or the batch failed). */
static void start_durable(void *ud, int status) {
    start_ctx *c = ud;
    service *s = c->s;
    if (status != 0) {
        drop_tasks(c);
        dsession_track_release(c->ss->ds, c->n);
        svc_reply_error(c->call, GRPC_STATUS_INTERNAL, "could not persist the tasks");
        start_ctx_free(c);
        return;
    }
    dispatcher_task_spec *specs = XNEWV(dispatcher_task_spec, c->n);
    for (size_t i = 0; i < c->n; i++) {
        specs[i].id = c->tasks[i]->id;
        specs[i].request = c->reqs[i];
        specs[i].task_ctx = c->tasks[i];
    }
    int rc = dispatcher_submit_counted(s->d, c->ss->ds, specs, c->n, &s->durable_sink,
                                       DISPATCH_COUNT_RESERVED);
    free(specs);
    if (rc != 0)
        dsession_track_release(c->ss->ds, c->n); /* failed at once: not counted, as before */
    if (rc == 0) {
        for (size_t i = 0; i < c->n; i++)
            c->reqs[i] = NULL; /* the dispatcher owns them now */
        reply_started(c);
    } else if (rc == SLUICE_ELIMIT) {
        fail_tasks(c, LLM_ERR_INVALID_REQUEST, "the server had too many tasks");
        svc_reply_error(c->call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                        "limit max_tasks reached: the server holds too many tasks");
    } else {
        fail_tasks(c, LLM_ERR_CANCELLED, "the session was closed");
        svc_reply_error(c->call, GRPC_STATUS_NOT_FOUND, "session '%s' not found", c->ss->id_str);
    }
    start_ctx_free(c);
}

/* Converts every prompt; replies INVALID_ARGUMENT naming the first bad one. */
static llm_request **convert_all(tcall *call, const Sluice__V1__StartRequest *req) {
    llm_request **reqs = XNEWV(llm_request *, req->n_prompts);
    for (size_t i = 0; i < req->n_prompts; i++) {
        char err[512];
        if (convert_prompt(req->prompts[i], NULL, &reqs[i], err, sizeof err) != 0) {
            svc_reply_error(call, GRPC_STATUS_INVALID_ARGUMENT, "prompts[%zu]: %s", i, err);
            for (size_t j = 0; j < i; j++)
                llm_request_free(reqs[j]);
            free(reqs);
            return NULL;
        }
    }
    return reqs;
}

static bool reserve_open(service *s, tcall *call, const char *tenant, size_t n) {
    pthread_mutex_lock(&s->mu);
    tenant_entry *te = svc_tenant(s, tenant);
    size_t open = te->open_tasks;
    bool ok = open + n <= s->cfg.max_open_tasks_per_tenant;
    if (ok)
        te->open_tasks += n;
    pthread_mutex_unlock(&s->mu);
    if (!ok)
        svc_reply_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                        "limit max_open_tasks_per_tenant=%zu reached (%zu open, %zu requested)",
                        s->cfg.max_open_tasks_per_tenant, open, n);
    return ok;
}

static svc_task *task_new(service *s, svc_session *ss, uint64_t id, const Sluice__V1__Prompt *p) {
    svc_task *t = XNEW(svc_task);
    t->id = id;
    t->sess = ss;
    t->index = p->index;
    t->custom_id = *p->custom_id ? xstrdup(p->custom_id) : NULL;
    t->state = STORE_TASK_QUEUED;
    dlist_init(&t->waiters);
    pthread_mutex_lock(&s->mu);
    ss->refs++;
    u64map_put(&s->tasks, id, t);
    dlist_push_back(&ss->tasks, &t->sess_link);
    pthread_mutex_unlock(&s->mu);
    return t;
}

/* Queues the records; the store copies them. */
static int persist_new(start_ctx *c) {
    store_task *recs = XNEWV(store_task, c->n);
    const store_task **ptrs = XNEWV(const store_task *, c->n);
    for (size_t i = 0; i < c->n; i++) {
        recs[i].id = c->tasks[i]->id;
        recs[i].tenant = c->ss->tenant;
        recs[i].session_id = c->ss->id;
        recs[i].index = c->tasks[i]->index;
        recs[i].custom_id = c->tasks[i]->custom_id;
        recs[i].request = c->reqs[i];
        recs[i].state = STORE_TASK_QUEUED;
        ptrs[i] = &recs[i];
    }
    int rc = store_tasks_put(c->s->st, ptrs, c->n, start_durable, c);
    free(ptrs);
    free(recs);
    return rc;
}

static void start_rpc(tcall *call, ProtobufCMessage *msg, void *ctx) {
    service *s = ctx;
    Sluice__V1__StartRequest *req = (Sluice__V1__StartRequest *)msg;
    const char *tenant = tcall_tenant(call);
    svc_session *ss = NULL;
    llm_request **reqs = NULL;
    uint64_t first;
    size_t queue_max = store_write_queue_max(s->st);
    if (req->n_prompts == 0) {
        svc_reply_error(call, GRPC_STATUS_INVALID_ARGUMENT, "prompts: at least one is required");
    } else if (!(ss = svc_session_get(s, req->session_id, tenant))) {
        svc_reply_error(call, GRPC_STATUS_NOT_FOUND, "session '%s' not found", req->session_id);
    } else if ((reqs = convert_all(call, req)) && reserve_open(s, call, tenant, req->n_prompts)) {
        if (req->n_prompts > queue_max) { /* a store smaller than the tenant limit */
            svc_reply_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                            "limit store write_queue_max=%zu: a Start of %zu prompts can never "
                            "be persisted at once; split it",
                            queue_max, req->n_prompts);
        } else if (svc_next_task_ids(s, req->n_prompts, &first) != 0) {
            svc_reply_error(call, GRPC_STATUS_INTERNAL, "could not allocate task ids");
        } else {
            start_ctx *c = XNEW(start_ctx);
            c->s = s;
            c->call = call;
            c->ss = ss;
            c->n = req->n_prompts;
            c->reqs = reqs;
            c->tasks = XNEWV(svc_task *, c->n);
            for (size_t i = 0; i < c->n; i++)
                c->tasks[i] = task_new(s, ss, first + i, req->prompts[i]);
            tcall_ref(call);
            /* Counted, with the record that says so queued ahead of the tasks: a restart
             * finds them counted and does not count them again when they resume. */
            svc_session_reserve(s, ss, c->n);
            int prc = persist_new(c);
            if (prc != 0) {
                dsession_track_release(ss->ds, c->n);
                drop_tasks(c);
                if (prc == SLUICE_ELIMIT)
                    svc_reply_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                                    "limit store write_queue_max=%zu reached: the store is busy "
                                    "writing, retry in a moment",
                                    queue_max);
                else if (prc == SLUICE_ECLOSED)
                    svc_reply_error(call, GRPC_STATUS_UNAVAILABLE, "the server is stopping");
                else
                    svc_reply_error(call, GRPC_STATUS_INTERNAL, "could not persist the tasks");
                start_ctx_free(c);
            }
            protobuf_c_message_free_unpacked(msg, NULL);
            return;
        }
        pthread_mutex_lock(&s->mu);
        svc_tenant(s, tenant)->open_tasks -= req->n_prompts;
        pthread_mutex_unlock(&s->mu);
    }
    if (reqs)
        for (size_t i = 0; i < req->n_prompts; i++)
            llm_request_free(reqs[i]);
    free(reqs);
    svc_session_put(s, ss);
    protobuf_c_message_free_unpacked(msg, NULL);
}

/* ---- resume at start-up ------------------------------------------------------------- */

typedef struct resume_ctx {
    service *s;
    size_t resumed, failed;
} resume_ctx;

static int resume_one(void *ud, store_task *rec) {
    resume_ctx *rc = ud;
    service *s = rc->s;
    pthread_mutex_lock(&s->mu);
    svc_session *ss = u64map_get(&s->sessions, rec->session_id);
    if (ss && strcmp(ss->tenant, rec->tenant ? rec->tenant : "") != 0)
        ss = NULL;
    pthread_mutex_unlock(&s->mu);
    if (!ss || !rec->request) {
        llm_response *r = llm_response_new();
        llm_response_set_error(r, LLM_ERR_INVALID_REQUEST, 0,
                               "the task's session could not be restored after a restart");
        store_task_finish(s->st, rec->id, STORE_TASK_FAILED, r, NULL, NULL);
        llm_response_free(r);
        store_task_free(rec);
        rc->failed++;
        return 0;
    }
    Sluice__V1__Prompt p = SLUICE__V1__PROMPT__INIT;
    p.index = rec->index;
    p.custom_id = rec->custom_id ? rec->custom_id : (char *)"";
    svc_task *t = task_new(s, ss, rec->id, &p);
    pthread_mutex_lock(&s->mu);
    svc_tenant(s, ss->tenant)->open_tasks++;
    pthread_mutex_unlock(&s->mu);
    dispatcher_task_spec spec = {rec->id, rec->request, t};
    /* Counted once already: in the restored tracker (see svc_session_reserve). */
    if (dispatcher_submit_counted(s->d, ss->ds, &spec, 1, &s->durable_sink,
                                  DISPATCH_COUNT_RESTORED) == 0) {
        rec->request = NULL;
        rc->resumed++;
    } else {
        llm_response *r = llm_response_new();
        llm_response_set_error(r, LLM_ERR_INVALID_REQUEST, 0, "could not resume the task");
        finish_task(s, t, STORE_TASK_FAILED, r);
        rc->failed++;
    }
    store_task_free(rec);
    return 0;
}

int svc_tasks_resume(service *s, char *err, size_t errlen) {
    resume_ctx rc = {s, 0, 0};
    int r = store_tasks_scan_unfinished(s->st, resume_one, &rc);
    if (r) {
        snprintf(err, errlen, "reading unfinished tasks from the store failed");
        return r;
    }
    if (rc.resumed || rc.failed)
        LOG_INFO("service", "resumed %zu unfinished tasks (%zu could not be resumed)", rc.resumed,
                 rc.failed);
    return 0;
}

void svc_start_register(service *s, transport_handler *h, size_t *n) {
    transport_handler *x = &h[(*n)++];
    x->method = &sluice__v1__sluice__start__method;
    x->on_message = start_rpc;
    x->ctx = s;
}
