/*
 * The service object: tables, tenants, id allocation, error replies and start-up restore.
 * The RPC handlers live in sessions.c, tasks.c, waitrpc.c and batch.c.
 */
#include "svc_internal.h"

#include "server/common/alloc.h"
#include "server/common/log.h"
#include "server/common/utf8.h"
#include "sluice/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TASK_ID_BLOCK 4096

static void fill_defaults(service_config *c) {
    if (!c->node_id || !*c->node_id)
        c->node_id = "local";
    if (!c->max_batch_in_flight)
        c->max_batch_in_flight = 4096;
    if (!c->max_batch_prompts)
        c->max_batch_prompts = 10000000;
    if (!c->max_open_tasks_per_tenant)
        c->max_open_tasks_per_tenant = 100000;
    if (!c->max_sessions_per_tenant)
        c->max_sessions_per_tenant = 1000;
    if (!c->persist_interval_ms)
        c->persist_interval_ms = 5000;
    if (!c->max_message_bytes)
        c->max_message_bytes = 4u << 20;
}

bool svc_heartbeat_due(const service *s, const tcall *call, uint64_t since_ms, uint64_t now_ms,
                       uint64_t *next_ms) {
    uint64_t every = s->cfg.heartbeat_interval_ms;
    uint64_t last = tcall_last_queued_ms(call);
    if (last < since_ms)
        last = since_ms;
    uint64_t silent = now_ms > last ? now_ms - last : 0;
    *next_ms = silent >= every ? every : every - silent;
    return silent >= every;
}

size_t service_outbound_needed(const service_config *cfg) {
    service_config c = *cfg;
    fill_defaults(&c);
    /* a result per prompt in the window, plus progress and summary events */
    return c.max_batch_in_flight + 64;
}

int service_new(const service_config *cfg, dispatcher *d, store *st, const registry *reg,
                timers *tm, service **out, char *err, size_t errlen) {
    if (!d || !st || !reg || !tm) {
        snprintf(err, errlen, "service needs a dispatcher, a store, a registry and timers");
        return SLUICE_EINVAL;
    }
    service *s = XNEW(service);
    s->cfg = *cfg;
    fill_defaults(&s->cfg);
    s->cfg.node_id = xstrdup(s->cfg.node_id);
    s->d = d;
    s->st = st;
    s->reg = reg;
    s->tm = tm;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->id_mu, NULL);
    u64map_init(&s->sessions);
    u64map_init(&s->tasks);
    svc_durable_sink_init(s);
    *out = s;
    return 0;
}

int service_register(service *s, transport *t) {
    static transport_handler handlers[SVC_MAX_HANDLERS];
    size_t n = 0;
    memset(handlers, 0, sizeof handlers);
    svc_sessions_register(s, handlers, &n);
    svc_tasks_register(s, handlers, &n);
    svc_batch_register(s, handlers, &n);
    return transport_register(t, &sluice__v1__sluice__rpc_service, handlers, n);
}

int service_restore(service *s, char *err, size_t errlen) {
    int rc = svc_sessions_restore(s, err, errlen);
    if (!rc)
        rc = svc_tasks_resume(s, err, errlen);
    return rc;
}

static void free_session(svc_session *ss) {
    dsession_unref(ss->ds);
    free(ss->id_str);
    free(ss->tenant);
    free(ss->persisted);
    pthread_mutex_destroy(&ss->rec_mu);
    free(ss);
}

void service_shutdown(service *s) {
    pthread_mutex_lock(&s->mu);
    bool first = !s->stopping;
    s->stopping = true;
    uint64_t timer = s->persist_timer;
    s->persist_timer = 0;
    pthread_mutex_unlock(&s->mu);
    if (!first)
        return;
    if (timer)
        timers_cancel(s->tm, timer);
    svc_persist_all(s);
    store_flush(s->st); /* results in the queue become durable; their callbacks free tasks */
    pthread_mutex_lock(&s->mu);
    /* Tasks still in memory: unfinished ones (the stopped dispatcher abandoned them; the
     * store keeps them for the next start) and results the store could not take. Each
     * holds a reference on its session. */
    for (size_t i = 0; i < s->tasks.cap; i++) {
        svc_task *t = s->tasks.vals[i];
        if (!t)
            continue;
        dlist_remove(&t->sess->tasks, &t->sess_link);
        svc_session_put_locked(s, t->sess);
        svc_task_free(t);
    }
    u64map_cleanup(&s->tasks);
    u64map_init(&s->tasks);
    /* Sessions lose the table's reference only: one still referenced (a batch whose last
     * timer has yet to run, a persist tick in progress) lives until its holder lets go. */
    size_t n = 0;
    svc_session **listed = XNEWV(svc_session *, s->sessions.len);
    for (size_t i = 0; i < s->sessions.cap; i++)
        if (s->sessions.vals[i])
            listed[n++] = s->sessions.vals[i];
    for (size_t i = 0; i < n; i++) /* not a CloseSession: the stored record stays */
        svc_session_unlist_locked(s, listed[i]);
    free(listed);
    pthread_mutex_unlock(&s->mu);
}

void service_free(service *s) {
    if (!s)
        return;
    service_shutdown(s);
    u64map_cleanup(&s->sessions);
    u64map_cleanup(&s->tasks);
    for (size_t i = 0; i < s->n_tenants; i++)
        free(s->tenants[i].name);
    free(s->tenants);
    free((char *)s->cfg.node_id);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->id_mu);
    free(s);
}

void service_get_stats(service *s, service_stats *out) {
    pthread_mutex_lock(&s->mu);
    out->open_sessions = s->sessions.len;
    out->open_tasks = 0;
    for (size_t i = 0; i < s->n_tenants; i++)
        out->open_tasks += s->tenants[i].open_tasks;
    pthread_mutex_unlock(&s->mu);
}

/* ---- shared helpers ----------------------------------------------------------------- */

tenant_entry *svc_tenant(service *s, const char *name) {
    for (size_t i = 0; i < s->n_tenants; i++)
        if (strcmp(s->tenants[i].name, name) == 0)
            return &s->tenants[i];
    s->tenants = xrealloc(s->tenants, (s->n_tenants + 1) * sizeof *s->tenants);
    tenant_entry *t = &s->tenants[s->n_tenants++];
    memset(t, 0, sizeof *t);
    t->name = xstrdup(name);
    return t;
}

int svc_next_task_ids(service *s, size_t n, uint64_t *first) {
    pthread_mutex_lock(&s->id_mu);
    if (s->next_task_id + n > s->task_id_end) {
        uint64_t block = n > TASK_ID_BLOCK ? n : TASK_ID_BLOCK, start;
        int rc = store_reserve_ids(s->st, "task", block, &start);
        if (rc) {
            pthread_mutex_unlock(&s->id_mu);
            return rc;
        }
        s->next_task_id = start;
        s->task_id_end = start + block;
    }
    *first = s->next_task_id;
    s->next_task_id += n;
    pthread_mutex_unlock(&s->id_mu);
    return 0;
}

svc_session *svc_session_get(service *s, const char *id_str, const char *tenant) {
    uint64_t id;
    if (convert_parse_id(s->cfg.node_id, 's', id_str, &id) != 0)
        return NULL;
    pthread_mutex_lock(&s->mu);
    svc_session *ss = u64map_get(&s->sessions, id);
    if (ss && (ss->closed || strcmp(ss->tenant, tenant) != 0))
        ss = NULL; /* another tenant's session does not exist for this caller */
    if (ss)
        ss->refs++;
    pthread_mutex_unlock(&s->mu);
    return ss;
}

void svc_session_put_locked(service *s, svc_session *ss) {
    if (--ss->refs == 0)
        free_session(ss);
}

bool svc_session_unlist_locked(service *s, svc_session *ss) {
    if (ss->closed)
        return false;
    ss->closed = true;
    u64map_del(&s->sessions, ss->id);
    svc_tenant(s, ss->tenant)->sessions--;
    svc_session_put_locked(s, ss); /* the table's reference; the caller's remains */
    return true;
}

void svc_session_put(service *s, svc_session *ss) {
    if (!ss)
        return;
    pthread_mutex_lock(&s->mu);
    svc_session_put_locked(s, ss);
    pthread_mutex_unlock(&s->mu);
}

void svc_reply_error(tcall *call, grpc_status_code code, const char *fmt, ...) {
    char msg[1024], clean[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* A message cut at the buffer's end loses its last partial character, and whatever it
     * quotes is made valid UTF-8: clients decode status details as UTF-8. */
    msg[utf8_whole_prefix(msg, strlen(msg))] = '\0';
    utf8_copy_valid(clean, sizeof clean, msg);
    tcall_finish(call, code, clean);
}
