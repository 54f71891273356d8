/*
 * Waiters: parked Wait calls and AsCompleted streams.
 *
 * A waiter has one slot per requested task. Slots of unfinished tasks are registered on
 * the task (wref); when the task ends, the dispatcher thread fills the slot under the
 * service mutex and the waiter is flushed outside it: a Wait replies once every slot is
 * filled (or its timeout fires with what is there), an AsCompleted stream sends each
 * result as it comes and finishes after the last one. `remaining` starts with one extra
 * hold that the handler drops when it has finished setting the waiter up, so a task that
 * ends during set-up can never make a waiter reply early.
 *
 * Heartbeats: an AsCompleted stream that has queued nothing for the heartbeat interval
 * gets a TaskResult{heartbeat} (a timer per stream, re-armed at the next moment the stream
 * could have been silent that long), so proxies that close idle streams keep it open.
 *
 * Lifetime: refs_count counts the call (dropped in on_done) and each pending timer (the
 * Wait timeout, the heartbeat).
 */
#include "waiters.h"
#include "waitfit.h"

#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "sluice/status.h"

#include <stdlib.h>
#include <string.h>

waiter *waiter_new(service *s, tcall *call, size_t n, bool stream) {
    waiter *w = XNEW(waiter);
    w->svc = s;
    w->call = call;
    w->stream = stream;
    w->n = n;
    w->id_strs = XNEWV(char *, n);
    w->results = XNEWV(Sluice__V1__TaskResult *, n);
    w->refs = XNEWV(wref, n);
    w->remaining = 1;  /* the set-up hold */
    w->refs_count = 1; /* the call */
    return w;
}

static void free_result(Sluice__V1__TaskResult *r) {
    if (r)
        protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void waiter_free(waiter *w) {
    for (size_t i = 0; i < w->n; i++) {
        free(w->id_strs[i]);
        free_result(w->results[i]);
    }
    for (size_t i = w->head; i < w->n_pending; i++)
        free_result(w->pending[i]);
    free(w->pending);
    free(w->id_strs);
    free(w->results);
    free(w->refs);
    free(w);
}

void waiter_unref_locked(waiter *w) {
    if (--w->refs_count == 0)
        waiter_free(w);
}

void waiter_register_locked(waiter *w, size_t slot, svc_task *t) {
    wref *r = &w->refs[slot];
    r->w = w;
    r->slot = slot;
    r->task = t;
    dlist_push_back(&t->waiters, &r->link);
    w->remaining++;
}

static void detach_locked(waiter *w) {
    for (size_t i = 0; i < w->n; i++) {
        wref *r = &w->refs[i];
        if (r->task) {
            dlist_remove(&r->task->waiters, &r->link);
            r->task = NULL;
        }
    }
}

/* Puts r back in front of pending (it found no room in the outbound queue). */
static void unshift_pending(waiter *w, Sluice__V1__TaskResult *r) {
    if (w->head == 0) {
        if (w->n_pending == w->cap_pending) {
            w->cap_pending = w->cap_pending ? w->cap_pending * 2 : 16;
            w->pending = xrealloc(w->pending, w->cap_pending * sizeof *w->pending);
        }
        memmove(w->pending + 1, w->pending, w->n_pending * sizeof *w->pending);
        w->n_pending++;
        w->head = 1;
    }
    w->pending[--w->head] = r;
}

static void push_pending(waiter *w, Sluice__V1__TaskResult *r) {
    if (w->n_pending == w->cap_pending) {
        w->cap_pending = w->cap_pending ? w->cap_pending * 2 : 16;
        w->pending = xrealloc(w->pending, w->cap_pending * sizeof *w->pending);
    }
    w->pending[w->n_pending++] = r;
}

void waiter_fill_locked(waiter *w, size_t slot, Sluice__V1__TaskResult *r) {
    if (w->completed) {
        free_result(r);
        return;
    }
    if (w->omit_text_parts && r->response)
        convert_drop_text_parts(r->response);
    if (w->stream)
        push_pending(w, r);
    else
        w->results[slot] = r;
}

waiter **waiter_task_done_locked(svc_task *t, size_t *n_ready) {
    waiter **ready = t->waiters.len ? XNEWV(waiter *, t->waiters.len) : NULL;
    *n_ready = 0;
    while (!dlist_empty(&t->waiters)) {
        wref *r = DLIST_ENTRY(dlist_pop_front(&t->waiters), wref, link);
        waiter *w = r->w;
        r->task = NULL;
        if (w->completed)
            continue;
        waiter_fill_locked(
            w, r->slot,
            convert_task_result(w->id_strs[r->slot], t->state, t->result, t->index, t->custom_id));
        w->remaining--;
        w->refs_count++;
        ready[(*n_ready)++] = w;
    }
    return ready;
}

/* Replies to a Wait with every slot (unfilled ones as their task's current state), within
 * the message limit: results that do not fit are left for another Wait (waitfit.h). */
static void reply_wait(waiter *w) {
    Sluice__V1__WaitResponse resp = SLUICE__V1__WAIT_RESPONSE__INIT;
    resp.n_results = w->n;
    resp.results = w->results;
    for (size_t i = 0; i < w->n; i++) {
        if (!w->results[i]) /* not reached: every slot is filled before a reply */
            w->results[i] = convert_task_result(w->id_strs[i], STORE_TASK_QUEUED, NULL, 0, NULL);
    }
    size_t limit = w->svc->cfg.max_message_bytes;
    if (w->max_response_bytes && w->max_response_bytes < limit)
        limit = w->max_response_bytes;
    char err[256];
    if (waitfit(&resp, limit, w->max_results, err, sizeof err) != SLUICE_OK)
        tcall_finish(w->call, GRPC_STATUS_RESOURCE_EXHAUSTED, err);
    else
        tcall_reply(w->call, &resp.base);
    waitfit_cleanup(&resp);
}

/* Under mu: stops the heartbeats of a waiter that is over. */
static void stop_heartbeat_locked(service *s, waiter *w) {
    if (w->heartbeat_timer && timers_cancel(s->tm, w->heartbeat_timer))
        w->refs_count--;
    w->heartbeat_timer = 0;
}

/* Sends pending stream results; finishes the stream after the last one. A full outbound
 * queue keeps the result for on_writable; if that event already came while this thread
 * was sending, it tries again itself. */
static void flush_stream(service *s, waiter *w) {
    for (;;) {
        pthread_mutex_lock(&s->mu);
        bool empty = w->head == w->n_pending;
        if (w->completed || empty) {
            bool finish = !w->completed && w->remaining == 0 && empty && w->sending == 0;
            if (finish) {
                w->completed = true;
                detach_locked(w);
                stop_heartbeat_locked(s, w);
            }
            pthread_mutex_unlock(&s->mu);
            if (finish)
                tcall_finish(w->call, GRPC_STATUS_OK, NULL);
            return;
        }
        Sluice__V1__TaskResult *r = w->pending[w->head++];
        if (w->head == w->n_pending)
            w->head = w->n_pending = 0;
        uint64_t gen = w->writable_gen;
        w->sending++;
        pthread_mutex_unlock(&s->mu);
        int rc = tcall_send(w->call, &r->base);
        pthread_mutex_lock(&s->mu);
        w->sending--;
        if (rc == SLUICE_ELIMIT) {
            unshift_pending(w, r);
            bool again = w->writable_gen != gen;
            pthread_mutex_unlock(&s->mu);
            if (again)
                continue;
            return;
        }
        pthread_mutex_unlock(&s->mu);
        free_result(r);
        if (rc != 0)
            return; /* the call is over */
    }
}

void waiter_flush(service *s, waiter *w) {
    if (w->stream) {
        flush_stream(s, w);
        return;
    }
    pthread_mutex_lock(&s->mu);
    bool reply = !w->completed && w->remaining == 0;
    if (reply) {
        w->completed = true;
        detach_locked(w);
        if (w->timer && timers_cancel(s->tm, w->timer))
            w->refs_count--;
        w->timer = 0;
    }
    pthread_mutex_unlock(&s->mu);
    if (reply)
        reply_wait(w);
}

void waiter_release(service *s, waiter *w) {
    pthread_mutex_lock(&s->mu);
    waiter_unref_locked(w);
    pthread_mutex_unlock(&s->mu);
}

static void heartbeat_tick(void *arg);

/* Under mu: checks again for silence after delay_ms, unless the stream is over. */
static void arm_heartbeat_locked(service *s, waiter *w, uint64_t delay_ms) {
    if (w->completed || !w->stream || !s->cfg.heartbeat_interval_ms)
        return;
    w->refs_count++;
    w->heartbeat_timer = timers_add(s->tm, delay_ms, heartbeat_tick, w);
}

/* Sends a heartbeat when the stream has been silent for the interval (a full outbound
 * queue is not silent: nothing is lost by skipping), then re-arms. */
static void heartbeat_tick(void *arg) {
    waiter *w = arg;
    service *s = w->svc;
    pthread_mutex_lock(&s->mu);
    w->heartbeat_timer = 0;
    bool live = !w->completed;
    uint64_t since = w->heartbeat_since;
    pthread_mutex_unlock(&s->mu);
    uint64_t next = 0;
    if (live && svc_heartbeat_due(s, w->call, since, clock_now_ms(), &next)) {
        Sluice__V1__TaskResult hb = SLUICE__V1__TASK_RESULT__INIT;
        hb.heartbeat = true;
        tcall_send(w->call, &hb.base);
    }
    pthread_mutex_lock(&s->mu);
    if (live)
        arm_heartbeat_locked(s, w, next);
    waiter_unref_locked(w);
    pthread_mutex_unlock(&s->mu);
}

void waiter_setup_done(service *s, waiter *w) {
    pthread_mutex_lock(&s->mu);
    w->remaining--;
    w->heartbeat_since = clock_now_ms();
    arm_heartbeat_locked(s, w, s->cfg.heartbeat_interval_ms);
    pthread_mutex_unlock(&s->mu);
    waiter_flush(s, w);
}

static void on_timeout(void *arg) {
    waiter *w = arg;
    service *s = w->svc;
    pthread_mutex_lock(&s->mu);
    bool reply = !w->completed;
    if (reply) {
        w->completed = true;
        w->timer = 0;
        /* unfinished slots report their task's current state, without a response */
        for (size_t i = 0; i < w->n; i++) {
            svc_task *t = w->refs[i].task;
            if (t && !w->results[i])
                w->results[i] =
                    convert_task_result(w->id_strs[i], t->state, NULL, t->index, t->custom_id);
        }
        detach_locked(w);
    }
    pthread_mutex_unlock(&s->mu);
    if (reply)
        reply_wait(w);
    waiter_release(s, w);
}

void waiter_arm_timeout_locked(service *s, waiter *w, uint32_t timeout_ms) {
    if (w->completed || !timeout_ms)
        return;
    w->refs_count++;
    w->timer = timers_add(s->tm, timeout_ms, on_timeout, w);
}

void waiter_on_call_done(service *s, waiter *w) {
    pthread_mutex_lock(&s->mu);
    if (!w->completed) {
        w->completed = true;
        detach_locked(w);
    }
    if (w->timer && timers_cancel(s->tm, w->timer))
        w->refs_count--;
    w->timer = 0;
    stop_heartbeat_locked(s, w);
    waiter_unref_locked(w);
    pthread_mutex_unlock(&s->mu);
}
