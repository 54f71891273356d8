/*
 * Wait, AsCompleted and Cancel. Wait and AsCompleted park a waiter (waiters.c) on the
 * unfinished tasks they name; nothing here blocks a transport thread. Ids are checked
 * first: an id that is malformed, unknown, or another tenant's is, for Wait, an entry of
 * its own (TASK_STATE_NOT_FOUND with an error response naming it) beside the others'
 * results, and for AsCompleted and Cancel a NOT_FOUND status naming it. Finished tasks
 * that already left memory are read from the store. One Wait blocks for at most the
 * server's cap (max_wait_ms), whatever its timeout: proxies cut calls that stay silent
 * longer than their read timeout, so a long wait is a series of Waits (the SDK's loop).
 */
#include "svc_internal.h"
#include "waiters.h"

#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "sluice/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a Wait or AsCompleted asked for, beyond its ids. */
typedef struct waiter_opts {
    bool stream;          /* AsCompleted */
    bool omit_text_parts; /* the request's omit_text_parts */
} waiter_opts;

static waiter *new_waiter(service *s, tcall *call, size_t n, const waiter_opts *o) {
    waiter *w = waiter_new(s, call, n, o->stream);
    w->omit_text_parts = o->omit_text_parts;
    return w;
}

/* Slots of all unfinished in-memory tasks of a session (Wait/AsCompleted without ids). */
static int collect_session(service *s, tcall *call, const char *session_id, waiter **out,
                           const waiter_opts *o) {
    svc_session *ss = svc_session_get(s, session_id, tcall_tenant(call));
    if (!ss) {
        svc_reply_error(call, GRPC_STATUS_NOT_FOUND, "session '%s' not found",
                        session_id ? session_id : "");
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    size_t n = 0;
    for (dlink *l = ss->tasks.head.next; l != &ss->tasks.head; l = l->next)
        n += !DLIST_ENTRY(l, svc_task, sess_link)->finished;
    waiter *w = new_waiter(s, call, n, o);
    size_t slot = 0;
    for (dlink *l = ss->tasks.head.next; l != &ss->tasks.head; l = l->next) {
        svc_task *t = DLIST_ENTRY(l, svc_task, sess_link);
        if (t->finished)
            continue;
        w->id_strs[slot] = convert_format_id(s->cfg.node_id, 't', t->id);
        waiter_register_locked(w, slot++, t);
    }
    svc_session_put_locked(s, ss);
    pthread_mutex_unlock(&s->mu);
    *out = w;
    return 0;
}

/* Fills slot from the store (the task left memory). Returns 0 or -1 when unknown. */
static int fill_from_store(service *s, waiter *w, size_t slot, uint64_t id, const char *tenant) {
    store_task *rec = NULL;
    if (store_task_get(s->st, id, &rec) != 0)
        return -1;
    int rc = 0;
    if (strcmp(rec->tenant ? rec->tenant : "", tenant) != 0) {
        rc = -1;
    } else {
        Sluice__V1__TaskResult *r = convert_task_result(w->id_strs[slot], rec->state, rec->result,
                                                        rec->index, rec->custom_id);
        pthread_mutex_lock(&s->mu);
        waiter_fill_locked(w, slot, r);
        pthread_mutex_unlock(&s->mu);
    }
    store_task_free(rec);
    return rc;
}

/* An id that names no task of this caller: for a Wait an entry saying so (under mu);
 * for a stream an error. Returns 0 when the slot was filled. */
static int not_found(waiter *w, size_t slot) {
    if (w->stream)
        return -1;
    waiter_fill_locked(w, slot, convert_not_found(w->id_strs[slot]));
    return 0;
}

/* Slots for the named ids. Unknown ids: see not_found; a stream's first unknown id is
 * answered NOT_FOUND, naming it, and fails the set-up. */
static int collect_ids(service *s, tcall *call, char **ids, size_t n, waiter *w) {
    const char *tenant = tcall_tenant(call);
    uint64_t *nums = XNEWV(uint64_t, n);
    bool *in_store = XNEWV(bool, n), *unknown = XNEWV(bool, n);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        w->id_strs[i] = xstrdup(ids[i]);
        unknown[i] = convert_parse_id(s->cfg.node_id, 't', ids[i], &nums[i]) != 0;
    }
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n && !rc; i++) {
        svc_task *t = unknown[i] ? NULL : u64map_get(&s->tasks, nums[i]);
        if (unknown[i] || (t && strcmp(t->sess->tenant, tenant) != 0))
            rc = not_found(w, i) ? -1 - (int)i : 0;
        else if (!t)
            in_store[i] = true;
        else if (t->finished)
            waiter_fill_locked(
                w, i, convert_task_result(ids[i], t->state, t->result, t->index, t->custom_id));
        else
            waiter_register_locked(w, i, t);
    }
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n && !rc; i++) {
        if (!in_store[i] || fill_from_store(s, w, i, nums[i], tenant) == 0)
            continue;
        pthread_mutex_lock(&s->mu);
        rc = not_found(w, i) ? -1 - (int)i : 0;
        pthread_mutex_unlock(&s->mu);
    }
    if (rc)
        svc_reply_error(call, GRPC_STATUS_NOT_FOUND, "task '%s' not found", ids[-rc - 1]);
    free(nums);
    free(in_store);
    free(unknown);
    return rc;
}

static waiter *start_waiter(service *s, tcall *call, char **ids, size_t n, const char *session,
                            const waiter_opts *o) {
    waiter *w = NULL;
    if (n == 0) {
        if (!session || !*session) {
            svc_reply_error(call, GRPC_STATUS_INVALID_ARGUMENT,
                            "task_ids: give task ids or a session_id");
            return NULL;
        }
        if (collect_session(s, call, session, &w, o) != 0)
            return NULL;
        tcall_set_user(call, w);
        return w;
    }
    w = new_waiter(s, call, n, o);
    tcall_set_user(call, w);
    if (collect_ids(s, call, ids, n, w) != 0) {
        waiter_on_call_done(s, w); /* stops it; the call's on_done then finds no waiter */
        tcall_set_user(call, NULL);
        return NULL;
    }
    return w;
}

/* How long one Wait blocks: its timeout (0 = none), at most the server's cap. */
static uint32_t wait_timeout_ms(const service *s, uint32_t requested) {
    uint32_t cap = s->cfg.max_wait_ms;
    return cap && (requested == 0 || requested > cap) ? cap : requested;
}

static void wait_rpc(tcall *call, ProtobufCMessage *msg, void *ctx) {
    service *s = ctx;
    Sluice__V1__WaitRequest *req = (Sluice__V1__WaitRequest *)msg;
    waiter_opts o = {.stream = false, .omit_text_parts = req->omit_text_parts};
    waiter *w = start_waiter(s, call, req->task_ids, req->n_task_ids, req->session_id, &o);
    if (w) { /* the call's reference holds w: on_done never runs during on_message */
        pthread_mutex_lock(&s->mu);
        w->max_response_bytes = req->max_response_bytes; /* read at the reply, under mu */
        w->max_results = req->max_results;
        waiter_arm_timeout_locked(s, w, wait_timeout_ms(s, req->timeout_ms));
        pthread_mutex_unlock(&s->mu);
        waiter_setup_done(s, w);
    }
    protobuf_c_message_free_unpacked(msg, NULL);
}

static void as_completed_rpc(tcall *call, ProtobufCMessage *msg, void *ctx) {
    service *s = ctx;
    Sluice__V1__AsCompletedRequest *req = (Sluice__V1__AsCompletedRequest *)msg;
    waiter_opts o = {.stream = true, .omit_text_parts = req->omit_text_parts};
    waiter *w = start_waiter(s, call, req->task_ids, req->n_task_ids, req->session_id, &o);
    if (w)
        waiter_setup_done(s, w);
    protobuf_c_message_free_unpacked(msg, NULL);
}

static void waiter_call_done(tcall *call, bool cancelled, void *ctx) {
    waiter *w = tcall_user(call);
    if (w)
        waiter_on_call_done(ctx, w);
}

static void waiter_writable(tcall *call, void *ctx) {
    service *s = ctx;
    waiter *w = tcall_user(call);
    if (!w)
        return;
    pthread_mutex_lock(&s->mu);
    w->writable_gen++;
    pthread_mutex_unlock(&s->mu);
    waiter_flush(s, w);
}

/* Ids of the session's unfinished tasks among `ids`; NOT_FOUND for an id that is not a
 * task of this session. */
static int cancel_ids(service *s, tcall *call, svc_session *ss, char **ids, size_t n, uint64_t *out,
                      size_t *n_out) {
    for (size_t i = 0; i < n; i++) {
        uint64_t id;
        bool parsed = convert_parse_id(s->cfg.node_id, 't', ids[i], &id) == 0;
        bool known = false, open = false;
        if (parsed) {
            pthread_mutex_lock(&s->mu);
            svc_task *t = u64map_get(&s->tasks, id);
            known = t && t->sess == ss;
            open = known && !t->finished;
            pthread_mutex_unlock(&s->mu);
        }
        if (parsed && !known) { /* finished and no longer in memory: the store knows it */
            store_task *rec = NULL;
            known = store_task_get(s->st, id, &rec) == 0 && rec->session_id == ss->id;
            store_task_free(rec);
        }
        if (!known) {
            svc_reply_error(call, GRPC_STATUS_NOT_FOUND, "task '%s' not found", ids[i]);
            return -1;
        }
        if (open)
            out[(*n_out)++] = id;
    }
    return 0;
}

static void cancel_rpc(tcall *call, ProtobufCMessage *msg, void *ctx) {
    service *s = ctx;
    Sluice__V1__CancelRequest *req = (Sluice__V1__CancelRequest *)msg;
    svc_session *ss = svc_session_get(s, req->session_id, tcall_tenant(call));
    Sluice__V1__CancelResponse resp = SLUICE__V1__CANCEL_RESPONSE__INIT;
    if (!ss) {
        svc_reply_error(call, GRPC_STATUS_NOT_FOUND, "session '%s' not found", req->session_id);
    } else if (req->n_task_ids) {
        uint64_t *ids = XNEWV(uint64_t, req->n_task_ids);
        size_t n = 0;
        if (cancel_ids(s, call, ss, req->task_ids, req->n_task_ids, ids, &n) == 0) {
            dispatcher_cancel_tasks(s->d, ids, n);
            resp.cancelled = (uint32_t)n;
            tcall_reply(call, &resp.base);
        }
        free(ids);
    } else {
        dsession_status st;
        dsession_status_get(ss->ds, clock_now_ms(), &st);
        dispatcher_cancel_session(s->d, ss->ds);
        resp.cancelled = (uint32_t)(st.queued + st.in_progress);
        tcall_reply(call, &resp.base);
    }
    svc_session_put(s, ss);
    protobuf_c_message_free_unpacked(msg, NULL);
}

void svc_tasks_register(service *s, transport_handler *h, size_t *n) {
    svc_start_register(s, h, n);
    transport_handler *x = &h[(*n)++];
    x->method = &sluice__v1__sluice__wait__method;
    x->on_message = wait_rpc;
    x->on_done = waiter_call_done;
    x->ctx = s;
    x = &h[(*n)++];
    x->method = &sluice__v1__sluice__as_completed__method;
    x->on_message = as_completed_rpc;
    x->on_writable = waiter_writable;
    x->on_done = waiter_call_done;
    x->ctx = s;
    x = &h[(*n)++];
    x->method = &sluice__v1__sluice__cancel__method;
    x->on_message = cancel_rpc;
    x->ctx = s;
}
