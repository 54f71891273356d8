/*
 * The dispatcher: its thread, its inbox and its public API.
 *
 * Other threads never touch loop state: dispatcher_submit prepares tasks (cache lookup
 * and dedup key on the caller's thread, so a hit never reaches a limiter) and appends a
 * command to the inbox; cancels and session commands do the same. The loop thread takes
 * the whole inbox at once, fires due timers, admits what the limiters allow, and sleeps
 * in curl_multi_poll until the next timer, network activity or a wakeup. The number of
 * live tasks is bounded by max_tasks (SLUICE_ELIMIT beyond), which bounds the inbox, the
 * queues and the timer heap.
 */
#include "internal.h"

#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "server/common/log.h"
#include "server/store/cachekey.h"
#include "sluice/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t dispatch_now_us(void) {
    return clock_now_us();
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static void fill_config_defaults(dispatcher_config *c) {
    if (!c->max_tasks)
        c->max_tasks = 1000000;
    if (!c->burst_ms)
        c->burst_ms = 1000;
    if (!c->backoff_base_ms)
        c->backoff_base_ms = 500;
    if (!c->backoff_max_ms)
        c->backoff_max_ms = 30000;
    if (!c->default_cooldown_ms)
        c->default_cooldown_ms = 10000;
    if (c->retry_budget_ratio <= 0)
        c->retry_budget_ratio = 0.2;
    if (c->retry_budget_min_per_s <= 0)
        c->retry_budget_min_per_s = 1;
}

int dispatcher_new(const dispatcher_config *cfg, dispatcher **out, char *err, size_t errlen) {
    dispatcher *d = XNEW(dispatcher);
    d->cfg = *cfg;
    fill_config_defaults(&d->cfg);
    d->reg = cfg->reg;
    int rc = http_client_new(&d->cfg.http, &d->http, err, errlen);
    if (rc) {
        free(d);
        return rc;
    }
    pthread_mutex_init(&d->inbox_mu, NULL);
    theap_init(&d->timers);
    u64map_init(&d->tasks_by_id);
    u64map_init(&d->groups);
    dlist_init(&d->sessions);
    dlist_init(&d->ghosts);
    sched_init_keys(d, dispatch_now_us());
    d->model_stats = XNEWV(amodel, d->reg->n_models);
    d->rng = d->cfg.seed ? d->cfg.seed : (clock_now_us() | 1);
    *out = d;
    return 0;
}

/* ---- inbox -------------------------------------------------------------------------- */

static void push_cmd(dispatcher *d, cmd *c) {
    if (c->sess)
        dsession_ref(c->sess);
    pthread_mutex_lock(&d->inbox_mu);
    bool was_empty = !d->inbox_head;
    if (d->inbox_tail)
        d->inbox_tail->next = c;
    else
        d->inbox_head = c;
    d->inbox_tail = c;
    pthread_mutex_unlock(&d->inbox_mu);
    /* The loop takes the whole inbox at once: a non-empty inbox already has a wakeup on
     * its way, so only the first command after the loop emptied it needs one. */
    if (was_empty)
        http_client_wakeup(d->http);
}

static void cancel_session_tasks(dispatcher *d, dsession *s) {
    while (!dlist_empty(&s->tasks))
        task_cancel(d, DLIST_ENTRY(dlist_front(&s->tasks), dtask, sess_link));
}

static void run_submit(dispatcher *d, cmd *c) {
    dsession_loop_attach(d, c->sess);
    /* One submission has one sink. Its owner may have cancelled everything it knew of
     * between the submit and now: these tasks end here, before any of them is queued. */
    const dispatcher_sink *sink = c->tasks->sink;
    bool unwanted = sink->cancelled && sink->cancelled(sink->ctx);
    for (dtask *t = c->tasks, *next; t; t = next) {
        next = t->next_submit;
        t->next_submit = NULL;
        if (unwanted)
            task_take_cancelled(d, t);
        else
            task_take(d, t);
    }
    /* A close may have overtaken the submit between its check and its push. */
    if (dsession_is_closed(c->sess)) {
        cancel_session_tasks(d, c->sess);
        dsession_loop_detach(d, c->sess);
    }
}

static void run_cmd(dispatcher *d, cmd *c) {
    switch (c->kind) {
    case CMD_SUBMIT:
        run_submit(d, c);
        break;
    case CMD_CANCEL_IDS:
        for (size_t i = 0; i < c->n_ids; i++) {
            dtask *t = u64map_get(&d->tasks_by_id, c->ids[i]);
            if (t)
                task_cancel(d, t);
        }
        break;
    case CMD_CANCEL_SESSION:
        cancel_session_tasks(d, c->sess);
        break;
    case CMD_CLOSE_SESSION:
        /* Cancelling is synchronous here, so every task has ended when this returns. */
        cancel_session_tasks(d, c->sess);
        dsession_loop_detach(d, c->sess);
        if (c->on_closed)
            c->on_closed(c->on_closed_arg);
        break;
    case CMD_CLEAR_BLOCKLIST:
        memset(c->sess->blocked, 0, c->sess->cfg.n_models * sizeof *c->sess->blocked);
        sched_mark_session_dirty(d, c->sess);
        break;
    }
}

static cmd *take_inbox(dispatcher *d) {
    pthread_mutex_lock(&d->inbox_mu);
    cmd *c = d->inbox_head;
    d->inbox_head = d->inbox_tail = NULL;
    pthread_mutex_unlock(&d->inbox_mu);
    return c;
}

static void free_cmd(cmd *c) {
    if (c->sess)
        dsession_unref(c->sess);
    free(c->ids);
    free(c);
}

static void process_inbox(dispatcher *d) {
    for (cmd *c = take_inbox(d), *next; c; c = next) {
        next = c->next;
        run_cmd(d, c);
        free_cmd(c);
    }
}

/* ---- the loop ----------------------------------------------------------------------- */

static void run_timers(dispatcher *d) {
    uint64_t now = dispatch_now_us();
    theap_node *n;
    while ((n = theap_pop_due(&d->timers, now))) {
        switch (n->kind) {
        case TIMER_TASK:
            task_on_timer(d, DLIST_ENTRY(n, dtask, timer));
            break;
        case TIMER_KEY:
            sched_on_key_timer(d, DLIST_ENTRY(n, keystate, wake));
            break;
        case TIMER_SESSION:
            sched_mark_session_dirty(d, DLIST_ENTRY(n, dsession, wake));
            break;
        }
    }
}

/* Milliseconds curl may sleep: until the next timer, at most 1 s. */
static int poll_timeout_ms(dispatcher *d) {
    if (d->dirty)
        return 0;
    theap_node *n = theap_peek(&d->timers);
    if (!n)
        return 1000;
    uint64_t now = dispatch_now_us();
    if (n->when_us <= now)
        return 0;
    uint64_t ms = (n->when_us - now + 999) / 1000;
    return ms > 1000 ? 1000 : (int)ms;
}

/* Shutdown: everything still alive ends as ABANDONED (durable tasks resume later). */
static void abandon_all(dispatcher *d) {
    for (cmd *c = take_inbox(d), *next; c; c = next) {
        next = c->next;
        if (c->kind == CMD_SUBMIT) {
            dsession_loop_attach(d, c->sess);
            for (dtask *t = c->tasks, *tn; t; t = tn) {
                tn = t->next_submit;
                u64map_put(&d->tasks_by_id, t->id, t);
                dlist_push_back(&t->sess->tasks, &t->sess_link);
                task_abandon(d, t);
            }
        } else if (c->kind == CMD_CLOSE_SESSION && c->on_closed) {
            c->on_closed(c->on_closed_arg);
        }
        free_cmd(c);
    }
    /* One pass: abandoning a task deletes it from the map, whose backward shift may pull a
     * later entry into the same slot, so a slot is left only once it is empty. */
    for (size_t i = 0; d->tasks_by_id.len && i < d->tasks_by_id.cap;) {
        if (d->tasks_by_id.vals[i])
            task_abandon(d, d->tasks_by_id.vals[i]);
        else
            i++;
    }
    while (!dlist_empty(&d->ghosts))
        task_abandon(d, DLIST_ENTRY(dlist_front(&d->ghosts), dtask, sess_link));
    while (!dlist_empty(&d->sessions))
        dsession_loop_detach(d, DLIST_ENTRY(dlist_front(&d->sessions), dsession, loop_link));
}

static void *loop_main(void *arg) {
    dispatcher *d = arg;
    while (!atomic_load(&d->stopping)) {
        process_inbox(d);
        run_timers(d);
        sched_pump(d);
        dispatch_flush_sinks(d); /* results of this round go out before the loop sleeps */
        http_client_poll(d->http, poll_timeout_ms(d));
    }
    abandon_all(d);
    dispatch_flush_sinks(d);
    return NULL;
}

int dispatcher_start(dispatcher *d) {
    if (d->started)
        return SLUICE_EBUSY;
    if (pthread_create(&d->thread, NULL, loop_main, d) != 0)
        return SLUICE_EINTERNAL;
    d->started = true;
    return 0;
}

void dispatcher_stop(dispatcher *d) {
    if (!d->started)
        return;
    atomic_store(&d->stopping, true);
    http_client_wakeup(d->http);
    pthread_join(d->thread, NULL);
    d->started = false;
}

void dispatcher_free(dispatcher *d) {
    if (!d)
        return;
    dispatcher_stop(d);
    abandon_all(d); /* a dispatcher that never started may still hold submits */
    dispatch_flush_sinks(d);
    free(d->touched);
    http_client_free(d->http);
    theap_cleanup(&d->timers);
    u64map_cleanup(&d->tasks_by_id);
    u64map_cleanup(&d->groups);
    sched_cleanup_keys(d);
    free(d->model_stats);
    pthread_mutex_destroy(&d->inbox_mu);
    free(d);
}

/* ---- submit (caller's thread) ------------------------------------------------------- */

/* Order in which models are tried for a cache hit: the preferred model, then by
 * decreasing weight. Returns the count written to order. */
static size_t lookup_order(const dsession *s, const char *want, size_t *order) {
    size_t n = s->cfg.n_models;
    double rank[DSESSION_MAX_MODELS]; /* preferred first, then weight */
    for (size_t i = 0; i < n; i++) {
        rank[i] = (want && strcmp(s->cfg.models[i].name, want) == 0) ? 1e300 : s->weights[i];
        size_t j = i;
        while (j > 0 && rank[order[j - 1]] < rank[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    return n;
}

/* Turns a stored answer into this task's result: a local hit made no attempts and cost
 * nothing now; what it cost when first obtained is reported as saved. */
static void mark_cache_hit(llm_response *hit, const char *model) {
    hit->local_cache_hit = true;
    hit->deduplicated = false;
    hit->cost_saved = hit->cost;
    hit->cost = 0;
    for (size_t a = 0; a < hit->n_attempts; a++) {
        free(hit->attempts[a].model);
        free(hit->attempts[a].error);
    }
    free(hit->attempts);
    hit->attempts = NULL;
    hit->n_attempts = 0;
    free(hit->model_requested);
    hit->model_requested = xstrdup(model);
}

/* Serves a task from the cache if one of the session's models already answered it. Each
 * model has its own key, so an answer is only ever served for a model the session allows.
 * On a miss every model's key has been computed: with `keep_keys` the task keeps them, so
 * storing its answer later (on the loop thread) need not hash the request again. */
static void cache_lookup(dispatcher *d, dsession *s, dtask *t, bool keep_keys) {
    size_t order[DSESSION_MAX_MODELS];
    cache_key keys[DSESSION_MAX_MODELS];
    size_t n = lookup_order(s, t->req->prefer_model, order);
    for (size_t o = 0; o < n; o++) {
        size_t i = order[o];
        llm_sampling eff;
        llm_sampling_merge(&eff, &s->cfg.models[i].sampling, &t->req->sampling);
        cachekey_for_model(s->cfg.tenant, provider_kind_name(s->models[i]->provider),
                           s->models[i]->name, t->req, &eff, &keys[i]);
        llm_sampling_cleanup(&eff);
        llm_response *hit = NULL;
        if (store_cache_get(d->cfg.store, &keys[i], &hit) == 0) {
            mark_cache_hit(hit, s->cfg.models[i].name);
            t->cached = hit;
            return;
        }
    }
    atomic_fetch_add(&d->cache_misses, 1);
    if (keep_keys)
        t->model_keys = xmemdup(keys, n * sizeof *keys);
}

static void dedup_key(dsession *s, dtask *t) {
    const char *names[DSESSION_MAX_MODELS];
    const llm_sampling *samp[DSESSION_MAX_MODELS];
    for (size_t i = 0; i < s->cfg.n_models; i++) {
        names[i] = s->cfg.models[i].name;
        samp[i] = &s->cfg.models[i].sampling;
    }
    cachekey_for_dedup(s->cfg.tenant, t->req, names, s->weights, samp, s->cfg.n_models,
                       &t->dedup_key);
    t->has_dedup_key = true;
}

static dtask *task_new(dispatcher *d, dsession *s, dispatcher_task_spec *spec,
                       const dispatcher_sink *sink, uint64_t now_us) {
    dtask *t = XNEW(dtask);
    t->d = d;
    t->id = spec->id;
    t->sess = s;
    dsession_ref(s);
    t->req = spec->request;
    t->sink = sink;
    t->task_ctx = spec->task_ctx;
    t->state = DTASK_QUEUED;
    t->model = t->first_model = -1;
    t->submitted_us = now_us;
    t->resp = llm_response_new();
    dlink_init(&t->link);
    dlink_init(&t->sess_link);
    theap_node_init(&t->timer, TIMER_TASK);
    cache_mode mode = s->cfg.cache_mode;
    bool reads = mode == CACHE_MODE_READ_WRITE || mode == CACHE_MODE_READ_ONLY;
    if (reads && d->cfg.store)
        cache_lookup(d, s, t, mode == CACHE_MODE_READ_WRITE);
    if (reads && !t->cached && !d->cfg.no_dedup)
        dedup_key(s, t);
    return t;
}

static void track_submitted(dsession *s, size_t n, dispatcher_count how) {
    pthread_mutex_lock(&s->mu);
    if (how == DISPATCH_COUNT_NEW)
        s->st.total += n;
    else if (how == DISPATCH_COUNT_RESERVED)
        s->reserved -= n < s->reserved ? n : s->reserved;
    s->st.queued += n;
    pthread_mutex_unlock(&s->mu);
}

int dispatcher_submit(dispatcher *d, dsession *s, dispatcher_task_spec *specs, size_t n,
                      const dispatcher_sink *sink) {
    return dispatcher_submit_counted(d, s, specs, n, sink, DISPATCH_COUNT_NEW);
}

int dispatcher_submit_counted(dispatcher *d, dsession *s, dispatcher_task_spec *specs, size_t n,
                              const dispatcher_sink *sink, dispatcher_count how) {
    if (n == 0)
        return SLUICE_EINVAL;
    if (atomic_load(&d->stopping) || dsession_is_closed(s))
        return SLUICE_ECLOSED;
    size_t before = atomic_fetch_add(&d->tasks_alive, n);
    if (before + n > d->cfg.max_tasks) {
        atomic_fetch_sub(&d->tasks_alive, n);
        return SLUICE_ELIMIT;
    }
    uint64_t now = dispatch_now_us();
    cmd *c = XNEW(cmd);
    c->kind = CMD_SUBMIT;
    c->sess = s;
    dtask **tail = &c->tasks;
    for (size_t i = 0; i < n; i++) {
        *tail = task_new(d, s, &specs[i], sink, now);
        tail = &(*tail)->next_submit;
    }
    track_submitted(s, n, how);
    push_cmd(d, c);
    return 0;
}

/* ---- cancel and session commands ---------------------------------------------------- */

void dispatcher_cancel_tasks(dispatcher *d, const uint64_t *ids, size_t n) {
    if (n == 0)
        return;
    cmd *c = XNEW(cmd);
    c->kind = CMD_CANCEL_IDS;
    c->ids = xmemdup(ids, n * sizeof *ids);
    c->n_ids = n;
    push_cmd(d, c);
}

static void session_cmd(dispatcher *d, dsession *s, cmd_kind kind) {
    cmd *c = XNEW(cmd);
    c->kind = kind;
    c->sess = s;
    push_cmd(d, c);
}

void dispatcher_cancel_session(dispatcher *d, dsession *s) {
    session_cmd(d, s, CMD_CANCEL_SESSION);
}

void dispatcher_session_close(dispatcher *d, dsession *s, void (*on_closed)(void *arg), void *arg) {
    atomic_store(&s->closed, true);
    cmd *c = XNEW(cmd);
    c->kind = CMD_CLOSE_SESSION;
    c->sess = s;
    c->on_closed = on_closed;
    c->on_closed_arg = arg;
    push_cmd(d, c);
}

void dispatcher_session_clear_blocklist(dispatcher *d, dsession *s) {
    session_cmd(d, s, CMD_CLEAR_BLOCKLIST);
}
