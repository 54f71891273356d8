/*
 * Session RPCs (OpenSession, CloseSession, ResetTracker, GetStatus, ListModels) and the
 * persistence of sessions: a session's config and tracker counters are stored as one JSON
 * record (sessrec.h), written at open, before every Start's tasks, every persist interval
 * and at shutdown; start-up restores them before unfinished tasks resume. A restored
 * tracker already counts the tasks that resume (each Start's record is queued ahead of its
 * tasks), and its clock goes on from the wall-clock time it was opened or reset.
 */
#include "svc_internal.h"

#include "sessrec.h"

#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "server/common/log.h"
#include "sluice/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- persistence -------------------------------------------------------------------- */

/* Under ss->rec_mu. */
static int persist_locked(service *s, svc_session *ss) {
    dsession_status st;
    dsession_status_get(ss->ds, clock_now_ms(), &st);
    pthread_mutex_lock(&s->mu);
    uint64_t opened = ss->opened_wall_ms;
    pthread_mutex_unlock(&s->mu);
    char err[256];
    char *text = sessrec_encode(dsession_get_config(ss->ds), &st, opened, err, sizeof err);
    if (!text) {
        LOG_ERROR("service", "session %s: its record could not be encoded (%s)", ss->id_str, err);
        return SLUICE_EINVAL;
    }
    /* Under mu so a put can never land after CloseSession's delete (the store only queues
     * here: it neither blocks nor calls back). A record equal to the last one stored is
     * not written again: most sessions are idle between persist ticks. */
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    bool unchanged = ss->persisted && strcmp(ss->persisted, text) == 0;
    if (!ss->closed && !ss->ephemeral && !unchanged) {
        rc = store_session_put(s->st, ss->id, ss->tenant, text, strlen(text));
        if (rc == 0) {
            free(ss->persisted);
            ss->persisted = text;
            text = NULL;
        }
    }
    pthread_mutex_unlock(&s->mu);
    free(text);
    return rc;
}

int svc_session_persist(service *s, svc_session *ss) {
    pthread_mutex_lock(&ss->rec_mu);
    int rc = persist_locked(s, ss);
    pthread_mutex_unlock(&ss->rec_mu);
    return rc;
}

int svc_session_reserve(service *s, svc_session *ss, size_t n) {
    pthread_mutex_lock(&ss->rec_mu);
    dsession_track_reserve(ss->ds, n);
    int rc = persist_locked(s, ss);
    pthread_mutex_unlock(&ss->rec_mu);
    return rc;
}

svc_session *svc_session_new(service *s, uint64_t id, const char *tenant, dsession *ds) {
    svc_session *ss = XNEW(svc_session);
    ss->id = id;
    ss->id_str = convert_format_id(s->cfg.node_id, 's', id);
    ss->tenant = xstrdup(tenant);
    ss->ds = ds;
    ss->refs = 1;
    ss->opened_wall_ms = clock_wall_ms();
    dlist_init(&ss->tasks);
    pthread_mutex_init(&ss->rec_mu, NULL);
    return ss;
}

typedef struct restore_ctx {
    service *s;
    size_t restored, dropped;
} restore_ctx;

/* Rebuilds one session from its record; a record that no longer validates (a model was
 * removed from the registry, ...) is logged and skipped. */
static int restore_one(void *ud, uint64_t id, const char *tenant, const char *data, size_t len) {
    restore_ctx *rc = ud;
    service *s = rc->s;
    dsession_config cfg;
    dsession_status st;
    char err[512];
    dsession *ds = NULL;
    uint64_t opened = 0;
    bool ok = sessrec_decode(data, len, tenant, &cfg, &st, &opened, err, sizeof err) == 0;
    if (ok) {
        ok = dsession_new(s->reg, &cfg, clock_now_ms(), &ds, err, sizeof err) == 0;
        dsession_config_cleanup(&cfg);
    }
    if (!ok) {
        LOG_WARN("service", "session %llu could not be restored (%s); its tasks will fail",
                 (unsigned long long)id, err);
        rc->dropped++;
        return 0;
    }
    /* The tracker's clock runs on through the restart: elapsed is wall time since it was
     * opened (or reset), downtime included, as for a session that never stopped. */
    uint64_t now_wall = clock_wall_ms();
    st.elapsed_s = opened && now_wall > opened ? (double)(now_wall - opened) / 1000.0 : 0;
    dsession_status_restore(ds, &st, clock_now_ms());
    svc_session *ss = svc_session_new(s, id, tenant, ds);
    if (opened)
        ss->opened_wall_ms = opened;
    pthread_mutex_lock(&s->mu); /* restored whatever the limit: they exist already */
    u64map_put(&s->sessions, id, ss);
    svc_tenant(s, tenant)->sessions++;
    pthread_mutex_unlock(&s->mu);
    rc->restored++;
    return 0;
}

static void persist_tick(void *arg);

static void schedule_persist(service *s) {
    pthread_mutex_lock(&s->mu);
    if (!s->stopping)
        s->persist_timer = timers_add(s->tm, s->cfg.persist_interval_ms, persist_tick, s);
    pthread_mutex_unlock(&s->mu);
}

void svc_persist_all(service *s) {
    pthread_mutex_lock(&s->mu);
    size_t n = 0;
    svc_session **list = XNEWV(svc_session *, s->sessions.len);
    for (size_t i = 0; i < s->sessions.cap; i++) {
        svc_session *ss = s->sessions.vals[i];
        if (ss && !ss->closed && !ss->ephemeral) {
            ss->refs++;
            list[n++] = ss;
        }
    }
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        svc_session_persist(s, list[i]);
        svc_session_put(s, list[i]);
    }
    free(list);
}

static void persist_tick(void *arg) {
    service *s = arg;
    svc_persist_all(s);
    schedule_persist(s);
}

int svc_sessions_restore(service *s, char *err, size_t errlen) {
    restore_ctx rc = {s, 0, 0};
    int r = store_sessions_scan(s->st, restore_one, &rc);
    if (r) {
        snprintf(err, errlen, "reading sessions from the store failed");
        return r;
    }
    if (rc.restored || rc.dropped)
        LOG_INFO("service", "restored %zu sessions (%zu dropped)", rc.restored, rc.dropped);
    schedule_persist(s);
    return 0;
}

/* ---- handlers ----------------------------------------------------------------------- */

static void reply_status(tcall *call, svc_session *ss, const dsession_status *st,
                         ProtobufCMessage *resp, Sluice__V1__TrackerStatus **slot) {
    *slot = convert_status(st, ss->id_str, dsession_get_config(ss->ds)->name);
    tcall_reply(call, resp);
    protobuf_c_message_free_unpacked(&(*slot)->base, NULL);
    *slot = NULL;
}

bool svc_session_add(service *s, svc_session *ss) {
    pthread_mutex_lock(&s->mu);
    tenant_entry *te = svc_tenant(s, ss->tenant);
    bool full = te->sessions >= s->cfg.max_sessions_per_tenant;
    if (!full) {
        u64map_put(&s->sessions, ss->id, ss);
        te->sessions++;
        ss->refs++; /* the table's */
    }
    pthread_mutex_unlock(&s->mu);
    return !full;
}

/* Creates the dsession; replies on error. */
static dsession *open_checked(service *s, tcall *call, const Sluice__V1__SessionConfig *pc,
                              const char *tenant) {
    char err[512];
    dsession_config cfg;
    dsession *ds = NULL;
    int rc = convert_session_config(pc, tenant, &cfg, err, sizeof err);
    if (!rc) {
        rc = dsession_new(s->reg, &cfg, clock_now_ms(), &ds, err, sizeof err);
        dsession_config_cleanup(&cfg);
    }
    if (rc) {
        svc_reply_error(call, GRPC_STATUS_INVALID_ARGUMENT, "%s", err);
        return NULL;
    }
    return ds;
}

static void open_session(tcall *call, ProtobufCMessage *msg, void *ctx) {
    service *s = ctx;
    Sluice__V1__OpenSessionRequest *req = (Sluice__V1__OpenSessionRequest *)msg;
    const char *tenant = tcall_tenant(call);
    dsession *ds = open_checked(s, call, req->config, tenant);
    protobuf_c_message_free_unpacked(msg, NULL);
    if (!ds)
        return;
    uint64_t id;
    if (store_reserve_ids(s->st, "session", 1, &id) != 0) {
        dsession_unref(ds);
        svc_reply_error(call, GRPC_STATUS_INTERNAL, "could not allocate a session id");
        return;
    }
    svc_session *ss = svc_session_new(s, id, tenant, ds);
    if (!svc_session_add(s, ss)) {
        svc_session_put(s, ss);
        svc_reply_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                        "limit max_sessions_per_tenant=%zu reached: close sessions first",
                        s->cfg.max_sessions_per_tenant);
        return;
    }
    svc_session_persist(s, ss);
    Sluice__V1__OpenSessionResponse resp = SLUICE__V1__OPEN_SESSION_RESPONSE__INIT;
    resp.session_id = ss->id_str;
    tcall_reply(call, &resp.base);
    svc_session_put(s, ss);
}

/* CloseSession answers once every task of the session has ended (cancelled if need be),
 * so its status is final. */
typedef struct close_ctx {
    service *s;
    tcall *call;
    svc_session *ss;
} close_ctx;

static void closed(void *arg) {
    close_ctx *c = arg;
    service *s = c->s;
    dsession_status st;
    dsession_status_get(c->ss->ds, clock_now_ms(), &st);
    pthread_mutex_lock(&s->mu);
    store_session_delete(s->st, c->ss->id);
    pthread_mutex_unlock(&s->mu);
    Sluice__V1__CloseSessionResponse resp = SLUICE__V1__CLOSE_SESSION_RESPONSE__INIT;
    reply_status(c->call, c->ss, &st, &resp.base, &resp.status);
    tcall_unref(c->call);
    pthread_mutex_lock(&s->mu);
    svc_session_put_locked(s, c->ss);
    pthread_mutex_unlock(&s->mu);
    free(c);
}

static void close_session(tcall *call, ProtobufCMessage *msg, void *ctx) {
    service *s = ctx;
    Sluice__V1__CloseSessionRequest *req = (Sluice__V1__CloseSessionRequest *)msg;
    svc_session *ss = svc_session_get(s, req->session_id, tcall_tenant(call));
    if (!ss)
        svc_reply_error(call, GRPC_STATUS_NOT_FOUND, "session '%s' not found", req->session_id);
    protobuf_c_message_free_unpacked(msg, NULL);
    if (!ss)
        return;
    pthread_mutex_lock(&s->mu);
    bool first = svc_session_unlist_locked(s, ss); /* ours from svc_session_get remains */
    pthread_mutex_unlock(&s->mu);
    if (!first) {
        svc_reply_error(call, GRPC_STATUS_NOT_FOUND, "session '%s' not found", ss->id_str);
        svc_session_put(s, ss);
        return;
    }
    close_ctx *c = XNEW(close_ctx);
    c->s = s;
    c->call = call;
    c->ss = ss;
    tcall_ref(call);
    dispatcher_session_close(s->d, ss->ds, closed, c);
}

static void reset_tracker(tcall *call, ProtobufCMessage *msg, void *ctx) {
    service *s = ctx;
    Sluice__V1__ResetTrackerRequest *req = (Sluice__V1__ResetTrackerRequest *)msg;
    svc_session *ss = svc_session_get(s, req->session_id, tcall_tenant(call));
    if (!ss) {
        svc_reply_error(call, GRPC_STATUS_NOT_FOUND, "session '%s' not found", req->session_id);
    } else {
        dsession_status before;
        dsession_status_reset(ss->ds, clock_now_ms(), &before);
        pthread_mutex_lock(&s->mu);
        ss->opened_wall_ms = clock_wall_ms();
        pthread_mutex_unlock(&s->mu);
        if (req->clear_blocklist)
            dispatcher_session_clear_blocklist(s->d, ss->ds);
        Sluice__V1__ResetTrackerResponse resp = SLUICE__V1__RESET_TRACKER_RESPONSE__INIT;
        reply_status(call, ss, &before, &resp.base, &resp.status);
        svc_session_put(s, ss);
    }
    protobuf_c_message_free_unpacked(msg, NULL);
}

static void get_status(tcall *call, ProtobufCMessage *msg, void *ctx) {
    service *s = ctx;
    Sluice__V1__GetStatusRequest *req = (Sluice__V1__GetStatusRequest *)msg;
    svc_session *ss = svc_session_get(s, req->session_id, tcall_tenant(call));
    if (!ss) {
        svc_reply_error(call, GRPC_STATUS_NOT_FOUND, "session '%s' not found", req->session_id);
    } else {
        dsession_status st;
        dsession_status_get(ss->ds, clock_now_ms(), &st);
        Sluice__V1__GetStatusResponse resp = SLUICE__V1__GET_STATUS_RESPONSE__INIT;
        reply_status(call, ss, &st, &resp.base, &resp.status);
        svc_session_put(s, ss);
    }
    protobuf_c_message_free_unpacked(msg, NULL);
}

static void list_models(tcall *call, ProtobufCMessage *msg, void *ctx) {
    service *s = ctx;
    protobuf_c_message_free_unpacked(msg, NULL);
    const registry *r = s->reg;
    Sluice__V1__ListModelsResponse resp = SLUICE__V1__LIST_MODELS_RESPONSE__INIT;
    Sluice__V1__ModelInfo *infos = XNEWV(Sluice__V1__ModelInfo, r->n_models);
    Sluice__V1__ModelInfo **ptrs = XNEWV(Sluice__V1__ModelInfo *, r->n_models);
    for (size_t i = 0; i < r->n_models; i++) {
        const model_info *m = &r->models[i];
        const upstream_key *k = registry_model_key(r, m);
        sluice__v1__model_info__init(&infos[i]);
        infos[i].name = m->name;
        infos[i].provider = (char *)provider_kind_name(m->provider);
        infos[i].upstream_model = m->upstream_model;
        infos[i].context_window = m->context_window;
        infos[i].input_price = m->input_price;
        infos[i].output_price = m->output_price;
        infos[i].cached_input_price = m->cached_input_price;
        infos[i].cache_write_price = m->cache_write_price;
        infos[i].available = registry_model_available(r, m);
        infos[i].max_requests_per_minute = k->requests_per_minute;
        infos[i].max_tokens_per_minute = k->tokens_per_minute;
        infos[i].max_concurrent_requests = k->max_concurrent;
        ptrs[i] = &infos[i];
    }
    resp.n_models = r->n_models;
    resp.models = ptrs;
    tcall_reply(call, &resp.base);
    free(ptrs);
    free(infos);
}

void svc_sessions_register(service *s, transport_handler *h, size_t *n) {
    struct {
        const sluice_rpc_method *m;
        void (*fn)(tcall *, ProtobufCMessage *, void *);
    } rows[] = {
        {&sluice__v1__sluice__open_session__method, open_session},
        {&sluice__v1__sluice__close_session__method, close_session},
        {&sluice__v1__sluice__reset_tracker__method, reset_tracker},
        {&sluice__v1__sluice__get_status__method, get_status},
        {&sluice__v1__sluice__list_models__method, list_models},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        transport_handler *x = &h[(*n)++];
        x->method = rows[i].m;
        x->on_message = rows[i].fn;
        x->ctx = s;
    }
}
