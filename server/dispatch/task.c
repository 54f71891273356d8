/*
 * Tasks: the state machine every prompt runs through, from the first look by the loop to
 * its one sink->on_done call.
 *
 *   QUEUED -> WAITING -> IN_FLIGHT -> DONE | FAILED
 *               ^  |        |
 *               |  +--------+-> RETRY_WAIT -> WAITING ...
 *   any unfinished state -> CANCELLED (caller) | ABANDONED (dispatcher stopped)
 *
 * A cache hit found at submit goes QUEUED -> DONE. A dedup follower waits in WAITING on
 * its group's leader and finishes when the leader does. Every transition goes through
 * task_set_state; every end goes through finish(). Loop thread only.
 */
#include "internal.h"

#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "server/common/log.h"
#include "server/dispatch/feedback.h"
#include "server/dispatch/models.h"
#include "server/store/cachekey.h"
#include "sluice/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void task_set_state(dispatcher *d, dtask *t, dtask_state s) {
    if (t->state == s)
        return;
    t->state = s;
    if (t->sink->on_state && (s == DTASK_WAITING || s == DTASK_IN_FLIGHT || s == DTASK_RETRY_WAIT))
        t->sink->on_state(t->sink->ctx, t->id, t->task_ctx, s);
}

void task_free(dtask *t) {
    llm_request_free(t->req);
    llm_response_free(t->resp);
    llm_response_free(t->cached);
    free(t->model_keys);
    llm_sampling_cleanup(&t->eff);
    if (t->sess)
        dsession_unref(t->sess);
    free(t);
}

/* ---- tracker ------------------------------------------------------------------------ */

void task_track_start(dtask *t) {
    if (t->started)
        return;
    t->started = true;
    dsession *s = t->sess;
    pthread_mutex_lock(&s->mu);
    s->st.queued--;
    s->st.started++;
    s->st.in_progress++;
    pthread_mutex_unlock(&s->mu);
}

/* What an answer cost the session (with its lock held). */
static void track_spend_locked(dsession *s, const llm_response *r) {
    if (!r || r->local_cache_hit || r->deduplicated)
        return;
    s->st.input_tokens += r->usage.input_tokens;
    s->st.output_tokens += r->usage.output_tokens;
    s->st.cache_read_tokens += r->usage.cache_read_tokens;
    s->st.cache_write_tokens += r->usage.cache_write_tokens;
    s->st.cost += r->cost;
}

/* A task's end in its session's tracker; a ghost's answer only adds what it cost (its task
 * was already counted as cancelled). */
static void track_end(dtask *t, dtask_state final, const llm_response *r) {
    dsession *s = t->sess;
    pthread_mutex_lock(&s->mu);
    if (t->ghost) {
        if (final == DTASK_DONE)
            track_spend_locked(s, r);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    if (t->started)
        s->st.in_progress--;
    else
        s->st.queued--;
    if (final == DTASK_DONE)
        s->st.succeeded++;
    else if (final == DTASK_FAILED)
        s->st.failed++;
    else if (final == DTASK_CANCELLED)
        s->st.cancelled++;
    if (r) {
        s->st.cached += r->local_cache_hit;
        s->st.deduplicated += r->deduplicated;
        s->st.cost_saved += r->cost_saved;
    }
    track_spend_locked(s, r);
    pthread_mutex_unlock(&s->mu);
}

void task_track_counts(dtask *t, int attempts, unsigned rate_limited) {
    dsession *s = t->sess;
    pthread_mutex_lock(&s->mu);
    s->st.attempts += (uint64_t)(int64_t)attempts; /* -1 takes an unsent attempt back */
    s->st.rate_limit_errors += rate_limited;
    pthread_mutex_unlock(&s->mu);
}

/* ---- dedup groups ------------------------------------------------------------------- */

static uint64_t key_prefix(const cache_key *k) {
    uint64_t v;
    memcpy(&v, k->b, sizeof v);
    return v;
}

static dgroup *group_find(dispatcher *d, const cache_key *k) {
    for (dgroup *g = u64map_get(&d->groups, key_prefix(k)); g; g = g->chain)
        if (memcmp(g->key.b, k->b, sizeof k->b) == 0)
            return g;
    return NULL;
}

static void group_remove(dispatcher *d, dgroup *g) {
    uint64_t p = key_prefix(&g->key);
    dgroup *head = u64map_get(&d->groups, p);
    if (head == g) {
        if (g->chain)
            u64map_put(&d->groups, p, g->chain);
        else
            u64map_del(&d->groups, p);
    } else {
        for (dgroup *x = head; x; x = x->chain) {
            if (x->chain == g) {
                x->chain = g->chain;
                break;
            }
        }
    }
    free(g);
}

/* Joins t to an identical task in flight, or makes t the leader of a new group. Returns
 * true when t became a follower. */
static bool group_join(dispatcher *d, dtask *t) {
    dgroup *g = group_find(d, &t->dedup_key);
    if (g) {
        dlist_push_back(&g->followers, &t->link);
        t->group = g;
        task_set_state(d, t, DTASK_WAITING);
        task_track_start(t);
        return true;
    }
    g = XNEW(dgroup);
    g->key = t->dedup_key;
    g->leader = t;
    dlist_init(&g->followers);
    uint64_t p = key_prefix(&g->key);
    g->chain = u64map_get(&d->groups, p);
    u64map_put(&d->groups, p, g);
    t->group = g;
    return false;
}

static void finish(dispatcher *d, dtask *t, dtask_state final);

/* The leader ended: followers get copies of its result (or one of them takes over when the
 * leader was cancelled before its attempt went out, or its ghost's attempt failed). */
static void group_leader_done(dispatcher *d, dtask *leader, dtask_state final) {
    dgroup *g = leader->group;
    leader->group = NULL;
    bool handover = final == DTASK_CANCELLED || (leader->ghost && final == DTASK_FAILED);
    if (handover && !dlist_empty(&g->followers)) {
        dtask *heir = DLIST_ENTRY(dlist_pop_front(&g->followers), dtask, link);
        g->leader = heir;
        task_set_state(d, heir, DTASK_QUEUED);
        task_begin(d, heir);
        return;
    }
    while (!dlist_empty(&g->followers)) {
        dtask *f = DLIST_ENTRY(dlist_pop_front(&g->followers), dtask, link);
        f->group = NULL;
        if (final == DTASK_ABANDONED) {
            task_abandon(d, f);
            continue;
        }
        llm_response_free(f->resp);
        f->resp = llm_response_clone(leader->resp);
        f->resp->deduplicated = true;
        f->resp->cost_saved = leader->resp->cost;
        f->resp->cost = 0;
        f->resp->latency_ms = (uint32_t)((dispatch_now_us() - f->submitted_us) / 1000);
        atomic_fetch_add(&d->dedup_shared, 1);
        finish(d, f, final);
    }
    group_remove(d, g);
}

/* ---- finishing ---------------------------------------------------------------------- */

/* Remembers a sink to flush before the loop sleeps (a handful of sinks: linear search). */
static void touch_sink(dispatcher *d, const dispatcher_sink *sink) {
    for (size_t i = 0; i < d->n_touched; i++)
        if (d->touched[i] == sink)
            return;
    if (d->n_touched == d->cap_touched) {
        d->cap_touched = d->cap_touched ? d->cap_touched * 2 : 16;
        d->touched = xrealloc(d->touched, d->cap_touched * sizeof *d->touched);
    }
    d->touched[d->n_touched++] = sink;
}

void dispatch_flush_sinks(dispatcher *d) {
    /* A flush may finish more tasks (and touch sinks again): take the list first. */
    while (d->n_touched) {
        const dispatcher_sink *sink = d->touched[--d->n_touched];
        sink->on_flush(sink->ctx);
    }
}

/* Task-level instruments: outcome counts, latency, and the time spent in sluiced rather
 * than upstream (only for answered tasks: pacing waits count as overhead when limited). */
static void count_final(dispatcher *d, const dtask *t, dtask_state final) {
    atomic_uint_fast64_t *c = final == DTASK_DONE     ? &d->tasks_done
                              : final == DTASK_FAILED ? &d->tasks_failed
                                                      : &d->tasks_cancelled;
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
    if (final != DTASK_DONE && final != DTASK_FAILED)
        return;
    uint64_t total = dispatch_now_us() - t->submitted_us;
    stats_hist_add(&d->task_latency, total);
    if (final != DTASK_DONE || !t->resp || t->resp->n_attempts == 0)
        return;
    uint64_t upstream = 0;
    for (size_t i = 0; i < t->resp->n_attempts; i++)
        upstream += (uint64_t)t->resp->attempts[i].latency_ms * 1000;
    stats_hist_add(&d->overhead, total > upstream ? total - upstream : 0);
}

static void finish(dispatcher *d, dtask *t, dtask_state final) {
    if (final != DTASK_ABANDONED && !t->ghost)
        count_final(d, t, final);
    if (t->group) {
        if (t->group->leader == t) {
            group_leader_done(d, t, final);
        } else {
            dlist_remove(&t->group->followers, &t->link);
            t->group = NULL;
        }
    }
    if (t->ghost) {
        dlist_remove(&d->ghosts, &t->sess_link);
    } else {
        u64map_del(&d->tasks_by_id, t->id);
        dlist_remove(&t->sess->tasks, &t->sess_link);
    }
    task_set_state(d, t, final);
    llm_response *resp = t->resp;
    t->resp = NULL;
    if (final != DTASK_ABANDONED)
        track_end(t, final, resp);
    t->sink->on_done(t->sink->ctx, t->id, t->task_ctx, final, resp);
    if (t->sink->on_flush)
        touch_sink(d, t->sink);
    dsession *s = t->sess;
    bool detach = !t->ghost && dsession_is_closed(s) && dlist_empty(&s->tasks);
    task_free(t); /* drops the task's session reference; the loop still holds one */
    if (detach)
        dsession_loop_detach(d, s);
    atomic_fetch_sub(&d->tasks_alive, 1);
}

static const char *model_name(const dtask *t, int idx) {
    return idx >= 0 ? t->sess->cfg.models[idx].name : NULL;
}

static void set_models(dtask *t) {
    llm_response *r = t->resp;
    free(r->model_requested);
    free(r->model_used);
    r->model_requested = xstrdup(model_name(t, t->first_model));
    r->model_used = xstrdup(model_name(t, t->model));
    r->latency_ms = (uint32_t)((dispatch_now_us() - t->submitted_us) / 1000);
}

static bool has_content(const llm_response *r) {
    if (r->completion && *r->completion)
        return true;
    for (size_t i = 0; i < r->n_content; i++)
        if (r->content[i].kind == LLM_PART_TOOL_CALL)
            return true;
    return false;
}

/* Stores an answer under the key of the model that actually gave it. */
static void cache_store(dispatcher *d, dtask *t) {
    cache_mode mode = t->sess->cfg.cache_mode;
    if (!d->cfg.store || !(mode == CACHE_MODE_READ_WRITE || mode == CACHE_MODE_WRITE_ONLY) ||
        !has_content(t->resp))
        return;
    cache_key key;
    if (t->model_keys) {
        key = t->model_keys[t->model]; /* the lookup hashed the same inputs at submit */
    } else {
        const model_info *m = t->sess->models[t->model];
        cachekey_for_model(t->sess->cfg.tenant, provider_kind_name(m->provider), m->name, t->req,
                           &t->eff, &key);
    }
    store_cache_put(d->cfg.store, &key, t->resp);
}

static void count_usage(dispatcher *d, const model_info *m, const llm_response *r) {
    amodel *a = stats_model(d, m);
    atomic_fetch_add_explicit(&a->input_tokens, r->usage.input_tokens, memory_order_relaxed);
    atomic_fetch_add_explicit(&a->output_tokens, r->usage.output_tokens, memory_order_relaxed);
    atomic_fetch_add_explicit(&a->cache_read_tokens, r->usage.cache_read_tokens,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&a->cache_write_tokens, r->usage.cache_write_tokens,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&a->cost_nusd, (uint64_t)(r->cost * 1e9 + 0.5), memory_order_relaxed);
}

void task_finish_success(dispatcher *d, dtask *t) {
    llm_response *r = t->resp;
    r->is_error = false;
    r->error_kind = LLM_ERR_NONE;
    free(r->error_message);
    r->error_message = NULL;
    if (!r->completion)
        llm_response_set_completion_from_content(r);
    set_models(t);
    r->cost = registry_cost(t->sess->models[t->model], &r->usage);
    count_usage(d, t->sess->models[t->model], r);
    cache_store(d, t);
    finish(d, t, DTASK_DONE);
}

void task_fail(dispatcher *d, dtask *t, llm_error_kind kind, int status, const char *msg) {
    llm_response_set_error(t->resp, kind, status, "%s", msg);
    set_models(t);
    finish(d, t, DTASK_FAILED);
}

/* Stops whatever `t` is doing: its transfer (returning its budget), its queue place and
 * its timer. */
static void stop_everything(dispatcher *d, dtask *t) {
    if (t->http) {
        http_client_cancel(d->http, t->http);
        t->http = NULL;
        sched_release(d, t);
    }
    sched_unlink(d, t);
    theap_cancel(&d->timers, &t->timer);
}

/* ---- ghosts: an attempt that outlives its task ---------------------------------------- */

static void ghost_done(void *ctx, uint64_t id, void *task_ctx, dtask_state final,
                       llm_response *resp) {
    (void)ctx;
    (void)id;
    (void)task_ctx;
    (void) final;
    llm_response_free(resp);
}

static const dispatcher_sink ghost_sink = {.on_done = ghost_done};

/* t is cancelled while its attempt is on its way (libcurl began to send it: one still waiting
 * for a connection or a stream is simply cancelled, never sent). Its caller gets CANCELLED now (a
 * copy of t ends in its place), while t lives on, nameless, until the answer arrives: the attempt
 * is already sent (and billed), and its answer fills the cache for a re-run and serves the
 * identical prompts waiting on it, which would otherwise send it again. A ghost never
 * retries, and is abandoned at shutdown like any task. */
static void retire(dispatcher *d, dtask *t) {
    dtask *gone = XNEW(dtask);
    gone->d = d;
    gone->id = t->id;
    gone->sess = t->sess;
    dsession_ref(t->sess);
    gone->sink = t->sink;
    gone->task_ctx = t->task_ctx;
    gone->state = t->state;
    gone->started = t->started;
    gone->submitted_us = t->submitted_us;
    gone->model = t->model;
    gone->first_model = t->first_model;
    gone->resp = llm_response_clone(t->resp);
    llm_response_set_error(gone->resp, LLM_ERR_CANCELLED, 0, "cancelled");
    dlist_remove(&t->sess->tasks, &t->sess_link);
    dlist_push_back(&d->ghosts, &t->sess_link);
    dlist_push_back(&t->sess->tasks, &gone->sess_link);
    u64map_put(&d->tasks_by_id, gone->id, gone);
    t->ghost = true;
    t->sink = &ghost_sink;
    t->task_ctx = NULL;
    atomic_fetch_add(&d->tasks_alive, 1); /* the copy and the ghost each end once */
    finish(d, gone, DTASK_CANCELLED);
}

void task_cancel(dispatcher *d, dtask *t) {
    if (t->http && !t->ghost && http_request_sent(t->http)) {
        retire(d, t);
        return;
    }
    stop_everything(d, t);
    llm_response_set_error(t->resp, LLM_ERR_CANCELLED, 0, "cancelled");
    finish(d, t, DTASK_CANCELLED);
}

void task_abandon(dispatcher *d, dtask *t) {
    stop_everything(d, t);
    finish(d, t, DTASK_ABANDONED);
}

/* ---- model choice and first look ---------------------------------------------------- */

/* Sets t->model and derived values (effective sampling, token estimate). */
void task_use_model(dtask *t, int idx) {
    t->model = idx;
    llm_sampling_cleanup(&t->eff);
    llm_sampling_merge(&t->eff, &t->sess->cfg.models[idx].sampling, &t->req->sampling);
    t->est_tokens = llm_request_estimate_tokens(t->req, t->eff.max_new_tokens);
}

static int preferred(const dtask *t) {
    const char *want = t->req->prefer_model;
    if (!want || !*want)
        return -1;
    for (size_t i = 0; i < t->sess->cfg.n_models; i++)
        if (!t->sess->blocked[i] && strcmp(t->sess->cfg.models[i].name, want) == 0)
            return (int)i;
    return -1;
}

static void fail_no_model(dispatcher *d, dtask *t) {
    char msg[512];
    size_t off = (size_t)snprintf(msg, sizeof msg,
                                  "every model of the session is blocklisted after 401/403/404 "
                                  "answers (");
    for (size_t i = 0; i < t->sess->cfg.n_models && off < sizeof msg - 40; i++)
        off += (size_t)snprintf(msg + off, sizeof msg - off, "%s%s", i ? ", " : "",
                                t->sess->cfg.models[i].name);
    snprintf(msg + off, sizeof msg - off, "); ResetTracker with clear_blocklist clears it");
    task_fail(d, t, LLM_ERR_NO_MODEL, 0, msg);
}

/* A request bigger than a tokens/min budget can never be sent: fails it and returns true. */
bool task_never_fits(dispatcher *d, dtask *t) {
    const dsession *s = t->sess;
    const upstream_key *k = &d->reg->keys[s->key_of_model[t->model]];
    uint32_t limits[2] = {s->cfg.max_tokens_per_minute, k->tokens_per_minute};
    for (int i = 0; i < 2; i++) {
        if (limits[i] && t->est_tokens > limits[i]) {
            char msg[320];
            snprintf(msg, sizeof msg,
                     "request requires ~%llu tokens (prompt + max_new_tokens) but "
                     "max_tokens_per_minute is %u: it can never be fulfilled",
                     (unsigned long long)t->est_tokens, limits[i]);
            task_fail(d, t, LLM_ERR_INVALID_REQUEST, 0, msg);
            return true;
        }
    }
    return false;
}

void task_begin(dispatcher *d, dtask *t) {
    int idx = preferred(t);
    if (idx < 0)
        idx = models_choose(t->sess->weights, t->sess->blocked, t->sess->cfg.n_models, -1, &d->rng);
    if (idx < 0) {
        fail_no_model(d, t);
        return;
    }
    task_use_model(t, idx);
    t->first_model = idx;
    if (task_never_fits(d, t))
        return;
    sched_enqueue(d, t, false);
}

/* A submitted task whose sink's owner has already cancelled: it ends CANCELLED without a
 * look at the cache, the dedup table or the queues. */
void task_take_cancelled(dispatcher *d, dtask *t) {
    u64map_put(&d->tasks_by_id, t->id, t);
    dlist_push_back(&t->sess->tasks, &t->sess_link);
    task_cancel(d, t);
}

/* First look at a submitted task: cache hit, dedup follower, or a new leader. */
void task_take(dispatcher *d, dtask *t) {
    u64map_put(&d->tasks_by_id, t->id, t);
    dlist_push_back(&t->sess->tasks, &t->sess_link);
    if (t->cached) {
        llm_response_free(t->resp);
        t->resp = t->cached;
        t->cached = NULL;
        t->resp->status_code = 0; /* no HTTP response for this prompt (the proto's promise) */
        t->resp->latency_ms = (uint32_t)((dispatch_now_us() - t->submitted_us) / 1000);
        atomic_fetch_add(&d->cache_hits, 1);
        task_track_start(t);
        finish(d, t, DTASK_DONE);
        return;
    }
    if (t->has_dedup_key && group_join(d, t))
        return;
    task_begin(d, t);
}
