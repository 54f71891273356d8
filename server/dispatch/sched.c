/*
 * The scheduler: per-upstream-key fair queues and admission.
 *
 * Each upstream key keeps a ring of kqueues, one per session with tasks waiting for that
 * key. Admission on a key serves the ring round-robin, one task per turn, FIFO within a
 * session, so a 10-prompt session is never stuck behind a 100k-prompt one. A task is
 * admitted when its session's limiters (requests/min, tokens/min, concurrency) and the
 * key's (the same three, plus a Retry-After cooldown) all have room. A session that is
 * out of room is skipped (others go on); a key that is out of room stops the whole key,
 * so the ring's next task is never starved by smaller ones overtaking it. Nothing polls:
 * a blocked limiter schedules a wake-up timer at the exact time it will have room, and a
 * finished attempt marks its key dirty.
 *
 * Retries need a token of the key's retry budget (refilled by a share of first attempts
 * plus a small floor per second): during an outage retries cannot multiply the traffic.
 * Retries that get a token go to the front of their session's queue (they are older).
 *
 * Loop thread only.
 */
#include "internal.h"

#include "server/common/alloc.h"
#include "server/common/log.h"

#include <stdlib.h>

#define RETRY_BUDGET_CAP 100.0

void sched_init_keys(dispatcher *d, uint64_t now_us) {
    d->n_keys = d->reg->n_keys;
    d->keys = XNEWV(keystate, d->n_keys);
    for (size_t i = 0; i < d->n_keys; i++) {
        keystate *k = &d->keys[i];
        k->idx = i;
        k->key = &d->reg->keys[i];
        rl_bucket_init(&k->rpm, k->key->requests_per_minute, d->cfg.burst_ms, now_us);
        rl_bucket_init(&k->tpm, k->key->tokens_per_minute, d->cfg.burst_ms, now_us);
        k->conc.max = k->key->max_concurrent;
        k->retry_tokens = 10;
        k->retry_last_us = now_us;
        dlist_init(&k->budget_wait);
        theap_node_init(&k->wake, TIMER_KEY);
    }
}

void sched_cleanup_keys(dispatcher *d) {
    free(d->keys);
    d->keys = NULL;
    d->n_keys = 0;
}

void sched_mark_dirty(dispatcher *d, keystate *k) {
    if (k->dirty)
        return;
    k->dirty = true;
    k->next_dirty = d->dirty;
    d->dirty = k;
}

void sched_mark_session_dirty(dispatcher *d, dsession *s) {
    for (size_t i = 0; s->kq && i < d->n_keys; i++)
        if (s->kq[i] && !dlist_empty(&s->kq[i]->fifo))
            sched_mark_dirty(d, &d->keys[i]);
}

static void ring_insert(keystate *k, kqueue *q) {
    if (q->in_ring)
        return;
    q->in_ring = true;
    if (!k->ring) {
        q->ring_next = q->ring_prev = q;
        k->ring = q;
        return;
    }
    /* Insert just before the current head: the newcomer is served last in this round. */
    q->ring_next = k->ring;
    q->ring_prev = k->ring->ring_prev;
    k->ring->ring_prev->ring_next = q;
    k->ring->ring_prev = q;
}

static void ring_remove(keystate *k, kqueue *q) {
    if (!q->in_ring)
        return;
    q->in_ring = false;
    if (q->ring_next == q) {
        k->ring = NULL;
    } else {
        q->ring_prev->ring_next = q->ring_next;
        q->ring_next->ring_prev = q->ring_prev;
        if (k->ring == q)
            k->ring = q->ring_next;
    }
    q->ring_next = q->ring_prev = NULL;
}

static keystate *task_key(dispatcher *d, const dtask *t) {
    return &d->keys[t->sess->key_of_model[t->model]];
}

void sched_enqueue(dispatcher *d, dtask *t, bool front) {
    keystate *k = task_key(d, t);
    kqueue *q = dsession_kqueue(d, t->sess, k->idx);
    if (front)
        dlist_push_front(&q->fifo, &t->link);
    else
        dlist_push_back(&q->fifo, &t->link);
    t->kq = q;
    k->waiting++;
    ring_insert(k, q);
    task_set_state(d, t, DTASK_WAITING);
    sched_mark_dirty(d, k);
}

/* Tops the budget up: a floor per second since the last refill. First attempts add their
 * share in sched_note_first_attempt. */
static void budget_refill(dispatcher *d, keystate *k, uint64_t now_us) {
    if (now_us > k->retry_last_us) {
        k->retry_tokens +=
            d->cfg.retry_budget_min_per_s * (double)(now_us - k->retry_last_us) / 1e6;
        k->retry_last_us = now_us;
    }
    if (k->retry_tokens > RETRY_BUDGET_CAP)
        k->retry_tokens = RETRY_BUDGET_CAP;
}

void sched_note_first_attempt(dispatcher *d, keystate *k) {
    k->retry_tokens += d->cfg.retry_budget_ratio;
    if (k->retry_tokens > RETRY_BUDGET_CAP)
        k->retry_tokens = RETRY_BUDGET_CAP;
}

void sched_enqueue_retry(dispatcher *d, dtask *t) {
    keystate *k = task_key(d, t);
    budget_refill(d, k, dispatch_now_us());
    if (k->retry_tokens >= 1.0) {
        k->retry_tokens -= 1.0;
        sched_enqueue(d, t, true);
        return;
    }
    dlist_push_back(&k->budget_wait, &t->link);
    t->in_budget_wait = true;
    k->waiting++;
    task_set_state(d, t, DTASK_WAITING);
    sched_mark_dirty(d, k);
}

void sched_unlink(dispatcher *d, dtask *t) {
    if (t->kq) {
        kqueue *q = t->kq;
        dlist_remove(&q->fifo, &t->link);
        q->key->waiting--;
        if (dlist_empty(&q->fifo))
            ring_remove(q->key, q);
        t->kq = NULL;
        stats_key_publish(q->key);
    } else if (t->in_budget_wait) {
        keystate *k = task_key(d, t);
        dlist_remove(&k->budget_wait, &t->link);
        k->waiting--;
        t->in_budget_wait = false;
        stats_key_publish(k);
    }
}

/* Publishes what holds the session back; compares against the loop's own copy, since st
 * is read and reset by other threads. */
static void set_lf(dsession *s, limiting_factor lf) {
    if (s->lf == lf)
        return;
    s->lf = lf;
    pthread_mutex_lock(&s->mu);
    s->st.limiting_factor = lf;
    pthread_mutex_unlock(&s->mu);
}

/* Moves budget-waiting retries into their queues while tokens last, oldest first. Each
 * goes to the front of its queue, so they are pushed newest first to keep their order. */
static void release_budget_waiters(dispatcher *d, keystate *k, uint64_t now_us) {
    budget_refill(d, k, now_us);
    dlist released;
    dlist_init(&released);
    while (!dlist_empty(&k->budget_wait) && k->retry_tokens >= 1.0) {
        dtask *t = DLIST_ENTRY(dlist_pop_front(&k->budget_wait), dtask, link);
        t->in_budget_wait = false;
        k->waiting--;
        k->retry_tokens -= 1.0;
        dlist_push_back(&released, &t->link);
    }
    while (!dlist_empty(&released))
        sched_enqueue(d, DLIST_ENTRY(dlist_pop_back(&released), dtask, link), true);
    if (!dlist_empty(&k->budget_wait)) {
        dtask *t = DLIST_ENTRY(dlist_front(&k->budget_wait), dtask, link);
        set_lf(t->sess, LIMITING_RETRY_BUDGET);
        double need = 1.0 - k->retry_tokens;
        uint64_t wait = (uint64_t)(need / d->cfg.retry_budget_min_per_s * 1e6) + 1;
        theap_schedule_earliest(&d->timers, &k->wake, now_us + wait);
    }
}

/* Can session s take task t now? If not, records why and when to look again. */
static bool session_admits(dispatcher *d, dsession *s, const dtask *t, uint64_t now_us) {
    if (rl_concurrency_full(&s->conc)) {
        set_lf(s, LIMITING_CONCURRENCY);
        return false;
    }
    uint64_t wait = 0;
    limiting_factor lf = LIMITING_NONE;
    if (!rl_bucket_can_take(&s->rpm, 1, now_us)) {
        wait = rl_bucket_wait_us(&s->rpm, 1, now_us);
        lf = LIMITING_REQUESTS;
    } else if (!rl_bucket_can_take(&s->tpm, (double)t->est_tokens, now_us)) {
        wait = rl_bucket_wait_us(&s->tpm, (double)t->est_tokens, now_us);
        lf = LIMITING_TOKENS;
    }
    if (lf == LIMITING_NONE)
        return true;
    set_lf(s, lf);
    theap_schedule_earliest(&d->timers, &s->wake, now_us + (wait ? wait : 1));
    return false;
}

/* Can key k take task t now? If not, records why (on t's session) and when to look again. */
static bool key_admits(dispatcher *d, keystate *k, const dtask *t, uint64_t now_us) {
    uint64_t wait = 0;
    limiting_factor lf = LIMITING_NONE;
    if (k->cooldown_until_us > now_us) {
        wait = k->cooldown_until_us - now_us;
        lf = LIMITING_COOLDOWN;
    } else if (rl_concurrency_full(&k->conc)) {
        set_lf(t->sess, LIMITING_CONCURRENCY);
        return false; /* a finishing attempt marks the key dirty */
    } else if (!rl_bucket_can_take(&k->rpm, 1, now_us)) {
        wait = rl_bucket_wait_us(&k->rpm, 1, now_us);
        lf = LIMITING_REQUESTS;
    } else if (!rl_bucket_can_take(&k->tpm, (double)t->est_tokens, now_us)) {
        wait = rl_bucket_wait_us(&k->tpm, (double)t->est_tokens, now_us);
        lf = LIMITING_TOKENS;
    }
    if (lf == LIMITING_NONE)
        return true;
    set_lf(t->sess, lf);
    theap_schedule_earliest(&d->timers, &k->wake, now_us + (wait ? wait : 1));
    return false;
}

static void admit(dispatcher *d, keystate *k, kqueue *q, dtask *t, uint64_t now_us) {
    dsession *s = q->sess;
    dlist_remove(&q->fifo, &t->link);
    k->waiting--;
    t->kq = NULL;
    /* Round-robin: the next turn on this key goes to the next session. */
    k->ring = q->ring_next;
    if (dlist_empty(&q->fifo))
        ring_remove(k, q);
    rl_bucket_take(&k->rpm, 1, now_us);
    rl_bucket_take(&k->tpm, (double)t->est_tokens, now_us);
    rl_bucket_take(&s->rpm, 1, now_us);
    rl_bucket_take(&s->tpm, (double)t->est_tokens, now_us);
    k->conc.in_flight++;
    s->conc.in_flight++;
    atomic_fetch_add_explicit(&k->stats.admitted, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&k->stats.admitted_tokens, t->est_tokens, memory_order_relaxed);
    set_lf(s, LIMITING_NONE);
    task_launch(d, t, k);
}

/* Admits as many tasks of key k as its and their sessions' limits allow. */
static void pump_key(dispatcher *d, keystate *k) {
    uint64_t now = dispatch_now_us();
    release_budget_waiters(d, k, now);
    while (k->ring) {
        kqueue *q = k->ring;
        kqueue *start = q;
        bool admitted = false;
        do {
            dtask *t = DLIST_ENTRY(dlist_front(&q->fifo), dtask, link);
            if (!key_admits(d, k, t, now))
                return;
            if (session_admits(d, q->sess, t, now)) {
                admit(d, k, q, t, now);
                admitted = true;
                break;
            }
            q = q->ring_next;
        } while (q != start);
        if (!admitted)
            return; /* every waiting session is out of room; their wake timers are set */
    }
}

void sched_pump(dispatcher *d) {
    while (d->dirty) {
        keystate *k = d->dirty;
        d->dirty = k->next_dirty;
        k->dirty = false;
        k->next_dirty = NULL;
        pump_key(d, k);
        stats_key_publish(k);
    }
}

void sched_release(dispatcher *d, dtask *t) {
    keystate *k = t->flight_key;
    if (!k)
        return;
    k->conc.in_flight--;
    t->sess->conc.in_flight--;
    t->flight_key = NULL;
    sched_mark_dirty(d, k);
    /* The session may have tasks waiting on other keys for its concurrency slot. */
    if (t->sess->conc.max && t->sess->conc.in_flight + 1 == t->sess->conc.max)
        sched_mark_session_dirty(d, t->sess);
}

void sched_on_key_timer(dispatcher *d, keystate *k) {
    sched_mark_dirty(d, k);
}

void sched_cooldown(dispatcher *d, keystate *k, uint64_t until_us) {
    uint64_t now = dispatch_now_us();
    if (until_us <= k->cooldown_until_us)
        return; /* a shorter (or equal) request never shortens a cooldown */
    uint64_t from = k->cooldown_until_us > now ? k->cooldown_until_us : now;
    atomic_fetch_add(&d->cooldown_ms_total, (until_us - from) / 1000);
    if (k->cooldown_until_us <= now)
        LOG_WARN("dispatch", "upstream key '%s' cooling down for %.1f s", k->key->name,
                 (double)(until_us - now) / 1e6);
    k->cooldown_until_us = until_us;
    atomic_fetch_add_explicit(&k->stats.cooldowns, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&k->stats.cooldown_ms, (until_us - from) / 1000,
                              memory_order_relaxed);
    stats_key_publish(k);
    theap_schedule(&d->timers, &k->wake, until_us);
}
