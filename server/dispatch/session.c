/*
 * Sessions: validation against the registry, the tracker, and the loop-side state
 * (limiters, blocklist, per-key queues). The config and resolved models never change
 * after dsession_new; the tracker is behind `mu`; everything marked loop-only in
 * internal.h is touched by the dispatcher thread alone.
 */
#include "internal.h"

#include "server/common/alloc.h"
#include "sluice/status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dsession_config_cleanup(dsession_config *c) {
    if (!c)
        return;
    free(c->name);
    free(c->tenant);
    for (size_t i = 0; i < c->n_models; i++) {
        free(c->models[i].name);
        llm_sampling_cleanup(&c->models[i].sampling);
    }
    free(c->models);
    llm_sampling_cleanup(&c->sampling);
    memset(c, 0, sizeof *c);
}

void dsession_config_copy(dsession_config *dst, const dsession_config *src) {
    *dst = *src;
    dst->name = xstrdup(src->name);
    dst->tenant = xstrdup(src->tenant ? src->tenant : "");
    dst->models = XNEWV(dsession_model, src->n_models);
    for (size_t i = 0; i < src->n_models; i++) {
        dst->models[i].name = xstrdup(src->models[i].name);
        dst->models[i].weight = src->models[i].weight;
        llm_sampling_copy(&dst->models[i].sampling, &src->models[i].sampling);
    }
    llm_sampling_copy(&dst->sampling, &src->sampling);
}

static int check_sampling(const llm_sampling *s, const char *where, char *err, size_t errlen) {
    if ((s->set & LLM_SET_TEMPERATURE) && !(s->temperature >= 0 && s->temperature <= 2)) {
        snprintf(err, errlen, "%s.temperature: %g is outside [0, 2]", where, s->temperature);
        return SLUICE_EINVAL;
    }
    if ((s->set & LLM_SET_TOP_P) && !(s->top_p > 0 && s->top_p <= 1)) {
        snprintf(err, errlen, "%s.top_p: %g is outside (0, 1]", where, s->top_p);
        return SLUICE_EINVAL;
    }
    if (s->n_stop > LLM_MAX_STOP) {
        snprintf(err, errlen, "%s.stop: at most %d stop sequences", where, LLM_MAX_STOP);
        return SLUICE_EINVAL;
    }
    return 0;
}

/* Checks one model entry and resolves it. */
static int check_model(dsession *s, size_t i, char *err, size_t errlen) {
    const dsession_model *m = &s->cfg.models[i];
    char where[48];
    snprintf(where, sizeof where, "models[%zu]", i);
    if (!m->name || !*m->name) {
        snprintf(err, errlen, "%s.name: empty model name", where);
        return SLUICE_EINVAL;
    }
    const model_info *info = registry_find(s->reg, m->name);
    if (!info) {
        snprintf(err, errlen, "%s.name: unknown model '%s' (see ListModels)", where, m->name);
        return SLUICE_EINVAL;
    }
    if (!registry_model_available(s->reg, info)) {
        const upstream_key *k = registry_model_key(s->reg, info);
        snprintf(err, errlen, "%s.name: model '%s' has no API key configured (key '%s': %s)", where,
                 m->name, k->name, k->secret_source ? k->secret_source : "no source");
        return SLUICE_EINVAL;
    }
    for (size_t j = 0; j < i; j++) {
        if (strcmp(s->cfg.models[j].name, m->name) == 0) {
            snprintf(err, errlen, "%s.name: model '%s' is listed twice", where, m->name);
            return SLUICE_EINVAL;
        }
    }
    if (!isfinite(m->weight) || m->weight < 0) {
        snprintf(err, errlen, "%s.weight: %g must be a finite number >= 0", where, m->weight);
        return SLUICE_EINVAL;
    }
    char swhere[64];
    snprintf(swhere, sizeof swhere, "%s.sampling", where);
    int rc = check_sampling(&m->sampling, swhere, err, errlen);
    if (rc)
        return rc;
    s->models[i] = info;
    s->key_of_model[i] = info->key_index;
    s->weights[i] = m->weight;
    return 0;
}

/* Applies a default from the keys (the smallest) or checks the requested limit against
 * each key. `pick` reads the key's limit. */
static int resolve_limit(dsession *s, uint32_t *value, const char *field,
                         uint32_t (*pick)(const upstream_key *), char *err, size_t errlen) {
    uint32_t smallest = 0;
    for (size_t i = 0; i < s->cfg.n_models; i++) {
        const upstream_key *k = &s->reg->keys[s->key_of_model[i]];
        uint32_t lim = pick(k);
        if (lim && (!smallest || lim < smallest))
            smallest = lim;
        if (*value && lim && *value > lim) {
            snprintf(err, errlen, "%s: %u exceeds the %u of upstream key '%s' (used by %s)", field,
                     *value, lim, k->name, s->cfg.models[i].name);
            return SLUICE_EINVAL;
        }
    }
    if (!*value)
        *value = smallest;
    return 0;
}

static uint32_t key_rpm(const upstream_key *k) {
    return k->requests_per_minute;
}
static uint32_t key_tpm(const upstream_key *k) {
    return k->tokens_per_minute;
}
static uint32_t key_conc(const upstream_key *k) {
    return k->max_concurrent;
}

static int validate(dsession *s, char *err, size_t errlen) {
    dsession_config *c = &s->cfg;
    if (c->n_models == 0) {
        snprintf(err, errlen, "models: at least one model is required");
        return SLUICE_EINVAL;
    }
    if (c->n_models > DSESSION_MAX_MODELS) {
        snprintf(err, errlen, "models: at most %u models", DSESSION_MAX_MODELS);
        return SLUICE_EINVAL;
    }
    int rc = check_sampling(&c->sampling, "sampling", err, errlen);
    for (size_t i = 0; !rc && i < c->n_models; i++)
        rc = check_model(s, i, err, errlen);
    if (!rc)
        rc = resolve_limit(s, &c->max_requests_per_minute, "max_requests_per_minute", key_rpm, err,
                           errlen);
    if (!rc)
        rc = resolve_limit(s, &c->max_tokens_per_minute, "max_tokens_per_minute", key_tpm, err,
                           errlen);
    if (!rc)
        rc = resolve_limit(s, &c->max_concurrent, "max_concurrent_requests", key_conc, err, errlen);
    if (!rc && c->max_attempts > 100) {
        snprintf(err, errlen, "max_attempts: %u is more than 100", c->max_attempts);
        rc = SLUICE_EINVAL;
    }
    if (!rc && c->cache_mode > CACHE_MODE_OFF) {
        snprintf(err, errlen, "cache_mode: unknown value %d", (int)c->cache_mode);
        rc = SLUICE_EINVAL;
    }
    return rc;
}

static void fill_defaults(dsession_config *c) {
    if (!c->max_attempts)
        c->max_attempts = DSESSION_DEFAULT_MAX_ATTEMPTS;
    if (!c->request_timeout_ms)
        c->request_timeout_ms = DSESSION_DEFAULT_REQUEST_TIMEOUT_MS;
    if (!c->task_timeout_ms)
        c->task_timeout_ms = DSESSION_DEFAULT_TASK_TIMEOUT_MS;
    if (!c->cache_mode)
        c->cache_mode = CACHE_MODE_READ_WRITE;
    if (!c->name || !*c->name) {
        free(c->name);
        c->name = xstrdup(c->n_models == 1 ? c->models[0].name : "session");
    }
    /* Each model's parameters sit over the session-wide ones. */
    for (size_t i = 0; i < c->n_models; i++) {
        llm_sampling merged;
        llm_sampling_merge(&merged, &c->sampling, &c->models[i].sampling);
        llm_sampling_cleanup(&c->models[i].sampling);
        c->models[i].sampling = merged;
    }
}

int dsession_new(const registry *reg, const dsession_config *cfg, uint64_t now_ms, dsession **out,
                 char *err, size_t errlen) {
    dsession *s = XNEW(dsession);
    atomic_init(&s->refs, 1);
    atomic_init(&s->closed, false);
    s->reg = reg;
    pthread_mutex_init(&s->mu, NULL);
    dsession_config_copy(&s->cfg, cfg);
    size_t n = cfg->n_models ? cfg->n_models : 1;
    s->models = XNEWV(const model_info *, n);
    s->weights = XNEWV(double, n);
    s->key_of_model = XNEWV(size_t, n);
    s->blocked = XNEWV(bool, n);
    int rc = validate(s, err, errlen);
    if (rc) {
        dsession_unref(s);
        return rc;
    }
    fill_defaults(&s->cfg);
    s->opened_ms = now_ms;
    dlist_init(&s->tasks);
    theap_node_init(&s->wake, TIMER_SESSION);
    *out = s;
    return 0;
}

void dsession_ref(dsession *s) {
    atomic_fetch_add(&s->refs, 1);
}

void dsession_unref(dsession *s) {
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    if (s->kq) {
        for (size_t i = 0; i < s->reg->n_keys; i++)
            free(s->kq[i]);
        free(s->kq);
    }
    pthread_mutex_destroy(&s->mu);
    dsession_config_cleanup(&s->cfg);
    free(s->models);
    free(s->weights);
    free(s->key_of_model);
    free(s->blocked);
    free(s);
}

const dsession_config *dsession_get_config(const dsession *s) {
    return &s->cfg;
}

/* Under mu. The monotonic clock restarts with the machine, so time a tracker ran before a
 * restart is carried as a base instead of an earlier opened_ms. */
static double elapsed_s(const dsession *s, uint64_t now_ms) {
    uint64_t ran = now_ms > s->opened_ms ? now_ms - s->opened_ms : 0;
    return (double)(s->elapsed_base_ms + ran) / 1000.0;
}

void dsession_status_get(dsession *s, uint64_t now_ms, dsession_status *out) {
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    out->elapsed_s = elapsed_s(s, now_ms);
    pthread_mutex_unlock(&s->mu);
}

void dsession_status_reset(dsession *s, uint64_t now_ms, dsession_status *before) {
    pthread_mutex_lock(&s->mu);
    if (before) {
        *before = s->st;
        before->elapsed_s = elapsed_s(s, now_ms);
    }
    dsession_status keep = s->st;
    memset(&s->st, 0, sizeof s->st);
    /* Tasks still alive (or reserved) stay accounted for, so later completions never
     * underflow. */
    s->st.in_progress = keep.in_progress;
    s->st.queued = keep.queued;
    s->st.started = keep.in_progress;
    s->st.total = keep.in_progress + keep.queued + s->reserved;
    s->st.limiting_factor = keep.limiting_factor;
    s->opened_ms = now_ms;
    s->elapsed_base_ms = 0;
    pthread_mutex_unlock(&s->mu);
}

void dsession_status_restore(dsession *s, const dsession_status *st, uint64_t now_ms) {
    pthread_mutex_lock(&s->mu);
    uint64_t in_progress = s->st.in_progress, queued = s->st.queued;
    limiting_factor lf = s->st.limiting_factor; /* the loop's, not the saved one */
    s->st = *st;
    s->st.limiting_factor = lf;
    s->st.in_progress = in_progress;
    s->st.queued = queued;
    s->st.elapsed_s = 0;
    s->elapsed_base_ms = st->elapsed_s > 0 ? (uint64_t)(st->elapsed_s * 1000.0) : 0;
    s->opened_ms = now_ms;
    pthread_mutex_unlock(&s->mu);
}

void dsession_track_reserve(dsession *s, size_t n) {
    pthread_mutex_lock(&s->mu);
    s->st.total += n;
    s->reserved += n;
    pthread_mutex_unlock(&s->mu);
}

void dsession_track_release(dsession *s, size_t n) {
    pthread_mutex_lock(&s->mu);
    size_t k = n < s->reserved ? n : (size_t)s->reserved;
    s->reserved -= k;
    s->st.total -= k < s->st.total ? k : s->st.total;
    pthread_mutex_unlock(&s->mu);
}

bool dsession_is_closed(const dsession *s) {
    return atomic_load(&s->closed);
}

/* ---- loop side ---------------------------------------------------------------------- */

void dsession_loop_attach(dispatcher *d, dsession *s) {
    if (s->loop_ref)
        return;
    s->loop_ref = true;
    dsession_ref(s);
    dlist_push_back(&d->sessions, &s->loop_link);
    uint64_t now = dispatch_now_us();
    rl_bucket_init(&s->rpm, s->cfg.max_requests_per_minute, d->cfg.burst_ms, now);
    rl_bucket_init(&s->tpm, s->cfg.max_tokens_per_minute, d->cfg.burst_ms, now);
    s->conc.max = s->cfg.max_concurrent;
    if (!s->kq) /* a session attached again keeps its queues */
        s->kq = XNEWV(kqueue *, d->n_keys);
}

kqueue *dsession_kqueue(dispatcher *d, dsession *s, size_t key_idx) {
    kqueue *q = s->kq[key_idx];
    if (!q) {
        q = XNEW(kqueue);
        q->key = &d->keys[key_idx];
        q->sess = s;
        dlist_init(&q->fifo);
        s->kq[key_idx] = q;
    }
    return q;
}

/* The loop lets go of a session whose tasks are all gone (after close). */
void dsession_loop_detach(dispatcher *d, dsession *s) {
    if (!s->loop_ref)
        return;
    theap_cancel(&d->timers, &s->wake);
    dlist_remove(&d->sessions, &s->loop_link);
    s->loop_ref = false;
    dsession_unref(s);
}
