/*
 * The client: a channel to sluiced, the session configuration built from the options, and
 * the id of the open session (guarded by mu, so several threads can share a client).
 */
#include "sdk_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_RPC_TIMEOUT_MS 60000u
#define DEFAULT_KEEPALIVE_TIME_MS 30000u
#define DEFAULT_KEEPALIVE_TIMEOUT_MS 20000u

static const Sluice__V1__CacheMode cache_modes[] = {
    SLUICE__V1__CACHE_MODE__CACHE_MODE_READ_WRITE, SLUICE__V1__CACHE_MODE__CACHE_MODE_READ_ONLY,
    SLUICE__V1__CACHE_MODE__CACHE_MODE_WRITE_ONLY, SLUICE__V1__CACHE_MODE__CACHE_MODE_OFF};

static Sluice__V1__ModelChoice *model_choice(const sluice_model *m) {
    Sluice__V1__ModelChoice *mc = malloc(sizeof *mc);
    if (!mc)
        return NULL;
    sluice__v1__model_choice__init(mc);
    mc->name = sdk_strdup(m->name);
    mc->weight = m->weight;
    mc->sampling = sdk_sampling_new(&m->sampling);
    if (!mc->name || !mc->sampling) {
        protobuf_c_message_free_unpacked(&mc->base, NULL);
        return NULL;
    }
    return mc;
}

static Sluice__V1__SessionConfig *build_config(const sluice_client_options *o) {
    Sluice__V1__SessionConfig *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    sluice__v1__session_config__init(c);
    c->models = calloc(o->n_models, sizeof *c->models);
    c->sampling = sdk_sampling_new(&o->sampling);
    bool ok = c->models && c->sampling;
    if (ok && o->name && !(c->name = sdk_strdup(o->name)))
        ok = false;
    for (size_t i = 0; ok && i < o->n_models; i++, c->n_models++)
        ok = (c->models[i] = model_choice(&o->models[i])) != NULL;
    if (!ok) {
        protobuf_c_message_free_unpacked(&c->base, NULL);
        return NULL;
    }
    c->max_requests_per_minute = o->max_requests_per_minute;
    c->max_tokens_per_minute = o->max_tokens_per_minute;
    c->max_concurrent_requests = o->max_concurrent_requests;
    c->max_attempts = o->max_attempts;
    c->request_timeout_ms = o->request_timeout_ms;
    c->task_timeout_ms = o->task_timeout_ms;
    c->cache_mode = cache_modes[o->cache_mode <= SLUICE_CACHE_OFF ? o->cache_mode : 0];
    return c;
}

static int validate(const char *target, const sluice_client_options *o) {
    if (!target || !*target)
        return sdk_fail(SLUICE_EINVAL, "target: give the server address (host:port)");
    if (!o || !o->models || o->n_models == 0)
        return sdk_fail(SLUICE_EINVAL, "models: at least one model is required");
    for (size_t i = 0; i < o->n_models; i++)
        if (!o->models[i].name || !*o->models[i].name)
            return sdk_fail(SLUICE_EINVAL, "models[%zu].name: empty", i);
    if ((unsigned)o->cache_mode > SLUICE_CACHE_OFF)
        return sdk_fail(SLUICE_EINVAL, "cache_mode: unknown value %d", (int)o->cache_mode);
    return 0;
}

int sluice_client_new(const char *target, const sluice_client_options *o, sluice_client **out) {
    sdk_clear_error();
    sdk_route_grpc_logs();
    int rc = validate(target, o);
    if (rc)
        return rc;
    sluice_client *c = calloc(1, sizeof *c);
    if (!c)
        return sdk_fail(SLUICE_ENOMEM, "out of memory");
    sluice_rpc_channel_opts co;
    memset(&co, 0, sizeof co);
    co.use_tls = o->use_tls;
    co.tls_root_certs_pem = o->tls_root_certs_pem;
    co.tls_server_name = o->tls_server_name;
    co.bearer_token = o->auth_token;
    co.max_message_bytes = o->max_message_bytes ? o->max_message_bytes : 16u << 20;
    co.keepalive_time_ms = o->keepalive_time_ms == UINT32_MAX ? 0
                           : o->keepalive_time_ms             ? o->keepalive_time_ms
                                                              : DEFAULT_KEEPALIVE_TIME_MS;
    co.keepalive_timeout_ms =
        o->keepalive_timeout_ms ? o->keepalive_timeout_ms : DEFAULT_KEEPALIVE_TIMEOUT_MS;
    c->target = sdk_strdup(target);
    c->config = build_config(o);
    c->rpc_timeout_ms = o->rpc_timeout_ms ? o->rpc_timeout_ms : DEFAULT_RPC_TIMEOUT_MS;
    c->max_message_bytes = co.max_message_bytes;
    c->max_call_bytes = o->max_call_bytes;
    pthread_mutex_init(&c->mu, NULL);
    if (!c->target || !c->config) {
        sluice_client_free(c);
        return sdk_fail(SLUICE_ENOMEM, "out of memory");
    }
    rc = sluice_rpc_channel_new(target, &co, &c->ch);
    if (rc) {
        sluice_client_free(c);
        return sdk_fail(rc, "could not create a channel to %s", target);
    }
    *out = c;
    return 0;
}

void sluice_client_free(sluice_client *c) {
    if (!c)
        return;
    if (c->session_id && c->ch)
        sluice_client_close(c, NULL);
    sluice_rpc_channel_free(c->ch);
    if (c->config)
        protobuf_c_message_free_unpacked(&c->config->base, NULL);
    pthread_mutex_destroy(&c->mu);
    free(c->session_id);
    free(c->target);
    free(c);
}

sluice_rpc_call_opts sdk_call_opts(const sluice_client *c) {
    sluice_rpc_call_opts o = {c->rpc_timeout_ms};
    return o;
}

int sdk_open_session(sluice_client *c, char **id) {
    Sluice__V1__OpenSessionRequest req = SLUICE__V1__OPEN_SESSION_REQUEST__INIT;
    req.config = c->config;
    Sluice__V1__OpenSessionResponse *resp = NULL;
    sluice_rpc_status st;
    sluice_rpc_call_opts o = sdk_call_opts(c);
    int rc = sluice__v1__sluice__open_session__rpc(c->ch, &req, &resp, &o, &st);
    if (rc)
        return sdk_rpc_fail(rc, &st, "OpenSession");
    *id = sdk_strdup(resp->session_id);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return *id ? 0 : sdk_fail(SLUICE_ENOMEM, "out of memory");
}

static int open_locked(sluice_client *c) {
    return sdk_open_session(c, &c->session_id);
}

int sluice_client_open(sluice_client *c) {
    sdk_clear_error();
    pthread_mutex_lock(&c->mu);
    int rc = c->session_id ? sdk_fail(SLUICE_EBUSY, "the client is already open") : open_locked(c);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

char *sdk_session(sluice_client *c, bool open_if_needed, int *rc) {
    pthread_mutex_lock(&c->mu);
    *rc = 0;
    if (!c->session_id && open_if_needed)
        *rc = open_locked(c);
    else if (!c->session_id)
        *rc = sdk_fail(SLUICE_ECLOSED, "the client has no open session (sluice_client_open)");
    char *id = *rc ? NULL : sdk_strdup(c->session_id);
    pthread_mutex_unlock(&c->mu);
    if (!*rc && !id)
        *rc = sdk_fail(SLUICE_ENOMEM, "out of memory");
    return id;
}

int sluice_client_attach(sluice_client *c, const char *session_id) {
    return sluice_client_attach_status(c, session_id, NULL);
}

int sluice_client_attach_status(sluice_client *c, const char *session_id, sluice_tracker *status) {
    sdk_clear_error();
    if (!session_id || !*session_id)
        return sdk_fail(SLUICE_EINVAL, "session_id is required");
    pthread_mutex_lock(&c->mu);
    int rc = c->session_id ? sdk_fail(SLUICE_EBUSY, "the client is already open") : 0;
    if (!rc && !(c->session_id = sdk_strdup(session_id)))
        rc = sdk_fail(SLUICE_ENOMEM, "out of memory");
    pthread_mutex_unlock(&c->mu);
    sluice_tracker t;
    if (!rc && (rc = sluice_client_status(c, status ? status : &t)) != 0)
        sluice_client_detach(c);
    return rc;
}

void sluice_client_detach(sluice_client *c) {
    pthread_mutex_lock(&c->mu);
    free(c->session_id);
    c->session_id = NULL;
    pthread_mutex_unlock(&c->mu);
}

const char *sluice_client_session_id(const sluice_client *c) {
    return c->session_id;
}

int sluice_client_close(sluice_client *c, sluice_tracker *final) {
    sdk_clear_error();
    pthread_mutex_lock(&c->mu);
    char *id = c->session_id;
    c->session_id = NULL;
    pthread_mutex_unlock(&c->mu);
    if (!id)
        return sdk_fail(SLUICE_ECLOSED, "the client is not open");
    int rc = sdk_close_session(c, id, final);
    free(id);
    return rc;
}

int sdk_close_session(sluice_client *c, const char *id, sluice_tracker *final) {
    Sluice__V1__CloseSessionRequest req = SLUICE__V1__CLOSE_SESSION_REQUEST__INIT;
    req.session_id = (char *)id;
    Sluice__V1__CloseSessionResponse *resp = NULL;
    sluice_rpc_status st;
    sluice_rpc_call_opts o = sdk_call_opts(c);
    int rc = sluice__v1__sluice__close_session__rpc(c->ch, &req, &resp, &o, &st);
    if (rc)
        return sdk_rpc_fail(rc, &st, "CloseSession");
    if (final)
        sdk_tracker_from(final, resp->status);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return 0;
}

int sluice_client_reset_tracker(sluice_client *c, bool clear_blocklist, sluice_tracker *before) {
    sdk_clear_error();
    int rc;
    char *id = sdk_session(c, false, &rc);
    if (!id)
        return rc;
    Sluice__V1__ResetTrackerRequest req = SLUICE__V1__RESET_TRACKER_REQUEST__INIT;
    req.session_id = id;
    req.clear_blocklist = clear_blocklist;
    Sluice__V1__ResetTrackerResponse *resp = NULL;
    sluice_rpc_status st;
    sluice_rpc_call_opts o = sdk_call_opts(c);
    rc = sluice__v1__sluice__reset_tracker__rpc(c->ch, &req, &resp, &o, &st);
    free(id);
    if (rc)
        return sdk_rpc_fail(rc, &st, "ResetTracker");
    if (before)
        sdk_tracker_from(before, resp->status);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return 0;
}

int sluice_client_status(sluice_client *c, sluice_tracker *out) {
    sdk_clear_error();
    if (!out)
        return sdk_fail(SLUICE_EINVAL, "sluice_client_status: out is required");
    int rc;
    char *id = sdk_session(c, false, &rc);
    if (!id)
        return rc;
    Sluice__V1__GetStatusRequest req = SLUICE__V1__GET_STATUS_REQUEST__INIT;
    req.session_id = id;
    Sluice__V1__GetStatusResponse *resp = NULL;
    sluice_rpc_status st;
    sluice_rpc_call_opts o = sdk_call_opts(c);
    rc = sluice__v1__sluice__get_status__rpc(c->ch, &req, &resp, &o, &st);
    free(id);
    if (rc)
        return sdk_rpc_fail(rc, &st, "GetStatus");
    sdk_tracker_from(out, resp->status);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return 0;
}

int sluice_list_models(sluice_client *c, sluice_model_info **out, size_t *n) {
    sdk_clear_error();
    Sluice__V1__ListModelsRequest req = SLUICE__V1__LIST_MODELS_REQUEST__INIT;
    Sluice__V1__ListModelsResponse *resp = NULL;
    sluice_rpc_status st;
    sluice_rpc_call_opts o = sdk_call_opts(c);
    int rc = sluice__v1__sluice__list_models__rpc(c->ch, &req, &resp, &o, &st);
    if (rc)
        return sdk_rpc_fail(rc, &st, "ListModels");
    sluice_model_info *m = calloc(resp->n_models ? resp->n_models : 1, sizeof *m);
    if (!m) {
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        return sdk_fail(SLUICE_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < resp->n_models; i++) {
        const Sluice__V1__ModelInfo *x = resp->models[i];
        snprintf(m[i].name, sizeof m[i].name, "%s", x->name);
        snprintf(m[i].provider, sizeof m[i].provider, "%s", x->provider);
        snprintf(m[i].upstream_model, sizeof m[i].upstream_model, "%s", x->upstream_model);
        m[i].context_window = x->context_window;
        m[i].input_price = x->input_price;
        m[i].output_price = x->output_price;
        m[i].available = x->available;
        m[i].max_requests_per_minute = x->max_requests_per_minute;
        m[i].max_tokens_per_minute = x->max_tokens_per_minute;
        m[i].max_concurrent_requests = x->max_concurrent_requests;
    }
    *n = resp->n_models;
    *out = m;
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return 0;
}
