/*
 * Fuzz target: the request path of every sluice.v1 RPC after decoding, without a network.
 *
 * The first byte (mod 10) picks the RPC: 0 OpenSession, 1 CloseSession, 2 ResetTracker,
 * 3 GetStatus, 4 Start, 5 Wait, 6 AsCompleted, 7 Cancel, 8 BatchProcess, 9 the
 * authorization header. The rest is its request message as a client sends it,
 * unpacked by protobuf-c exactly as the transport does (server/transport/call.c), then put
 * through what the service does with it before anything needs a live dispatcher or store:
 *   OpenSession, BatchProcess header   convert_session_config + dsession_new (the built-in
 *                                      registry, keys configured)
 *   session and task ids (every RPC)   convert_parse_id, and format/parse round trips
 *   Start prompts, BatchProcess        convert_prompt (with the batch header's tools and
 *     prompts                          schema), then the steps a validated prompt takes in
 *                                      the dispatcher and store: per session model the
 *                                      merged sampling, token estimate, cache key and the
 *                                      provider's HTTP request (attempt.c's build), the
 *                                      dedup key, and the store codec's pack/unpack
 * BatchProcess (8) reads the rest as a stream of messages, each preceded by a two-byte
 * little-endian length: a header applies to the prompts after it, as on the wire. For 9
 * the rest is the value of the `authorization` header every RPC carries, checked against a
 * tokens table (auth_check) as the transport does before any handler runs.
 *
 * Seam: the RPC handlers themselves (sessions.c, tasks.c, waitrpc.c, batch.c) need a live
 * transport call, dispatcher and store, so they are not called; the session record JSON
 * they persist (sessions.c, static) is therefore outside this target.
 */
#include "fuzz.h"

#include "server/common/llm.h"
#include "server/dispatch/session.h"
#include "server/providers/provider.h"
#include "server/providers/registry.h"
#include "server/service/convert.h"
#include "server/store/cachekey.h"
#include "server/store/codec.h"
#include "server/transport/auth.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODE "local"
#define TENANT "tenant-a"
#define MAX_STREAM_MESSAGES 8

static registry *g_reg;
static dsession *g_sess; /* the session a Start or a header with session_id runs on */
static auth *g_auth;     /* tokens: tenant-a "secret-a", tenant-b "secret-b" */
/* Whether every string field of the request (at any depth) is well-formed UTF-8. */
static bool g_input_utf8;

/* Walks m's string fields (repeated, oneof and nested messages included). */
static bool strings_utf8(const ProtobufCMessage *m) {
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *base = (const char *)m + f->offset;
        size_t n = 1;
        void *const *items = (void *const *)base;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(const size_t *)((const char *)m + f->quantifier_offset);
            items = *(void *const *const *)base;
        } else if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                   *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id) {
            continue;
        }
        for (size_t k = 0; k < n; k++) {
            const void *v = items[k];
            if (!v)
                continue;
            if (f->type == PROTOBUF_C_TYPE_STRING ? !fuzz_utf8_valid((const uint8_t *)v, strlen(v))
                                                  : !strings_utf8(v))
                return false;
        }
    }
    return true;
}

/* A message the service sends back (an RPC status or Response.error_message): from
 * well-formed strings it must be well-formed (strict clients refuse a message with a
 * malformed string field). */
static void check_message(const char *what, const char *err) {
    if (!err[0])
        fuzz_fail("%s: refused without a message", what);
    if (g_input_utf8 && !fuzz_utf8_valid((const uint8_t *)err, strlen(err)))
        fuzz_fail("%s: message is not UTF-8 though every string sent was: \"%s\"", what, err);
}

static void init_once(void) {
    if (g_reg)
        return;
    setenv("OPENAI_API_KEY", "sk-fuzz-openai", 1);
    setenv("ANTHROPIC_API_KEY", "sk-fuzz-anthropic", 1);
    char err[512];
    json_t *root = json_loads(registry_default_json(), 0, NULL);
    if (!root || registry_from_json(root, &g_reg, err, sizeof err) != 0)
        fuzz_fail("built-in registry: %s", root ? err : "not JSON");
    json_decref(root);
    /* Both providers, with and without reasoning, images and native JSON schema. */
    static const char *const names[] = {"gpt-4.1-mini", "o4-mini", "claude-haiku-4.5",
                                        "claude-sonnet-4.5"};
    dsession_model models[4];
    memset(models, 0, sizeof models);
    for (size_t i = 0; i < 4; i++) {
        models[i].name = (char *)names[i];
        models[i].weight = 1;
    }
    dsession_config cfg = {.tenant = TENANT, .models = models, .n_models = 4};
    if (dsession_new(g_reg, &cfg, 0, &g_sess, err, sizeof err) != 0)
        fuzz_fail("fixed session: %s", err);
    static const char tokens[] = "# tenants\ntenant-a secret-a\n\ntenant-b\tsecret-b\n";
    if (auth_parse(tokens, sizeof tokens - 1, &g_auth, err, sizeof err) != 0)
        fuzz_fail("tokens: %s", err);
}

static void authorization(const uint8_t *data, size_t size) {
    const char *why = NULL;
    const char *tenant = auth_check(g_auth, (const char *)data, size, &why);
    if (!tenant && !why)
        fuzz_fail("auth_check refused without a reason");
    if (tenant && strcmp(tenant, "tenant-a") != 0 && strcmp(tenant, "tenant-b") != 0)
        fuzz_fail("auth_check returned an unknown tenant");
}

/* ---- ids ---------------------------------------------------------------------------- */

static void check_id(const char *id, char kind) {
    uint64_t n = 0;
    if (convert_parse_id(NODE, kind, id, &n) != 0)
        return;
    char *again = convert_format_id(NODE, kind, n);
    uint64_t m = 0;
    if (n == 0 || convert_parse_id(NODE, kind, again, &m) != 0 || m != n)
        fuzz_fail("id '%s' parsed as %" PRIu64 " does not round-trip", id, n);
    free(again);
}

static void check_ids(char *const *ids, size_t n, char kind) {
    for (size_t i = 0; i < n; i++)
        check_id(ids[i], kind);
}

/* ---- sessions ----------------------------------------------------------------------- */

/* OpenSession's path; returns the new session (NULL when refused). */
static dsession *open_session(const Sluice__V1__SessionConfig *pc) {
    char err[512] = "";
    dsession_config cfg;
    dsession *ds = NULL;
    int rc = convert_session_config(pc, TENANT, &cfg, err, sizeof err);
    if (!rc) {
        rc = dsession_new(g_reg, &cfg, 1000, &ds, err, sizeof err);
        dsession_config_cleanup(&cfg);
    }
    if (rc)
        check_message("session config", err);
    if (!rc) {
        dsession_status st;
        dsession_status_get(ds, 2000, &st);
        Sluice__V1__TrackerStatus *ts =
            convert_status(&st, "local:s1", dsession_get_config(ds)->name);
        protobuf_c_message_free_unpacked(&ts->base, NULL);
    }
    return ds;
}

/* ---- prompts ------------------------------------------------------------------------ */

/* What the dispatcher computes for a task on model i of s (task.c, dispatcher.c,
 * attempt.c): merged sampling, estimate, cache key and the provider request. */
static void on_model(const dsession *s, size_t i, const llm_request *req) {
    const dsession_config *c = dsession_get_config(s);
    const model_info *m = registry_find(g_reg, c->models[i].name);
    if (!m)
        fuzz_fail("session model '%s' not in the registry", c->models[i].name);
    llm_sampling eff;
    llm_sampling_merge(&eff, &c->models[i].sampling, &req->sampling);
    (void)llm_request_estimate_tokens(req, eff.max_new_tokens);
    cache_key key;
    cachekey_for_model(c->tenant, provider_kind_name(m->provider), m->name, req, &eff, &key);
    provider_request preq;
    memset(&preq, 0, sizeof preq);
    char err[256] = "";
    const upstream_key *k = registry_model_key(g_reg, m);
    if (provider_get(m->provider)->build(m, k->secret, req, &eff, &preq, err, sizeof err) == 0) {
        if (!preq.body || strlen(preq.body) != preq.body_len)
            fuzz_fail("%s: request body missing or holding a NUL byte", m->name);
    } else {
        check_message(m->name, err);
        /* The adapter may refuse what the model cannot take (images, schemas), but a value
         * jansson refuses means validation let through something no request can carry. */
        if (strstr(err, "cannot set") || strstr(err, "cannot append") ||
            strstr(err, "could not be serialised"))
            fuzz_fail("%s: a validated request does not build: %s", m->name, err);
    }
    provider_request_cleanup(&preq);
    llm_sampling_cleanup(&eff);
}

static void dedup(const dsession *s, const llm_request *req) {
    const dsession_config *c = dsession_get_config(s);
    const char *names[DSESSION_MAX_MODELS];
    double weights[DSESSION_MAX_MODELS];
    const llm_sampling *samp[DSESSION_MAX_MODELS];
    for (size_t i = 0; i < c->n_models; i++) {
        names[i] = c->models[i].name;
        weights[i] = c->models[i].weight;
        samp[i] = &c->models[i].sampling;
    }
    cache_key key;
    cachekey_for_dedup(c->tenant, req, names, weights, samp, c->n_models, &key);
}

/* The durable task record: a validated request must pack (Start would otherwise fail
 * with a misleading "write_queue_max" error) and unpack again. */
static void codec_round_trip(const llm_request *req) {
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[256];
    if (codec_request_pack(req, 0, &buf, &len, err, sizeof err) != 0)
        fuzz_fail("the store codec refuses a validated request: %s", err);
    llm_request *back = NULL;
    if (codec_request_unpack(buf, len, &back, err, sizeof err) != 0)
        fuzz_fail("a packed request does not unpack: %s", err);
    llm_request_free(back);
    free(buf);
}

static void on_prompt(const dsession *s, const Sluice__V1__Prompt *p,
                      const Sluice__V1__BatchHeader *header) {
    llm_request *req = NULL;
    char err[512] = "";
    if (convert_prompt(p, header, &req, err, sizeof err) != 0) {
        check_message("prompt", err);
        /* BatchProcess answers a bad prompt with an error result naming it. */
        llm_response *r = llm_response_new();
        llm_response_set_error(r, LLM_ERR_INVALID_REQUEST, 0, "invalid prompt %llu: %s",
                               (unsigned long long)p->index, err);
        Sluice__V1__TaskResult *tr =
            convert_task_result("local:t1", STORE_TASK_FAILED, r, p->index, p->custom_id);
        protobuf_c_message_free_unpacked(&tr->base, NULL);
        llm_response_free(r);
        return;
    }
    const dsession_config *c = dsession_get_config(s);
    for (size_t i = 0; i < c->n_models; i++)
        on_model(s, i, req);
    dedup(s, req);
    codec_round_trip(req);
    llm_request_free(req);
}

/* ---- RPCs --------------------------------------------------------------------------- */

static ProtobufCMessage *unpack(const ProtobufCMessageDescriptor *d, const uint8_t *data,
                                size_t size) {
    return protobuf_c_message_unpack(d, NULL, size, data);
}

static void one_rpc(unsigned which, const uint8_t *data, size_t size) {
    static const ProtobufCMessageDescriptor *const descs[] = {
        &sluice__v1__open_session_request__descriptor,
        &sluice__v1__close_session_request__descriptor,
        &sluice__v1__reset_tracker_request__descriptor,
        &sluice__v1__get_status_request__descriptor,
        &sluice__v1__start_request__descriptor,
        &sluice__v1__wait_request__descriptor,
        &sluice__v1__as_completed_request__descriptor,
        &sluice__v1__cancel_request__descriptor,
    };
    ProtobufCMessage *msg = unpack(descs[which], data, size);
    if (!msg)
        return; /* INVALID_ARGUMENT "request message does not decode" */
    g_input_utf8 = strings_utf8(msg);
    switch (which) {
    case 0:
        dsession_unref(open_session(((Sluice__V1__OpenSessionRequest *)msg)->config));
        break;
    case 1:
        check_id(((Sluice__V1__CloseSessionRequest *)msg)->session_id, 's');
        break;
    case 2:
        check_id(((Sluice__V1__ResetTrackerRequest *)msg)->session_id, 's');
        break;
    case 3:
        check_id(((Sluice__V1__GetStatusRequest *)msg)->session_id, 's');
        break;
    case 4: {
        Sluice__V1__StartRequest *r = (Sluice__V1__StartRequest *)msg;
        check_id(r->session_id, 's');
        for (size_t i = 0; i < r->n_prompts; i++)
            on_prompt(g_sess, r->prompts[i], NULL);
        break;
    }
    case 5: {
        Sluice__V1__WaitRequest *r = (Sluice__V1__WaitRequest *)msg;
        check_id(r->session_id, 's');
        check_ids(r->task_ids, r->n_task_ids, 't');
        break;
    }
    case 6: {
        Sluice__V1__AsCompletedRequest *r = (Sluice__V1__AsCompletedRequest *)msg;
        check_id(r->session_id, 's');
        check_ids(r->task_ids, r->n_task_ids, 't');
        break;
    }
    default: {
        Sluice__V1__CancelRequest *r = (Sluice__V1__CancelRequest *)msg;
        check_id(r->session_id, 's');
        check_ids(r->task_ids, r->n_task_ids, 't');
        break;
    }
    }
    protobuf_c_message_free_unpacked(msg, NULL);
}

/* BatchProcess: a stream of BatchRequest messages; the first header wins (a second one
 * fails the call). */
static void batch_stream(const uint8_t *data, size_t size) {
    Sluice__V1__BatchRequest *header_msg = NULL;
    const Sluice__V1__BatchHeader *header = NULL;
    dsession *own = NULL;
    for (int k = 0; k < MAX_STREAM_MESSAGES && size >= 2; k++) {
        size_t len = (size_t)data[0] | (size_t)data[1] << 8;
        data += 2;
        size -= 2;
        if (len > size)
            len = size;
        Sluice__V1__BatchRequest *m =
            (Sluice__V1__BatchRequest *)unpack(&sluice__v1__batch_request__descriptor, data, len);
        data += len;
        size -= len;
        if (!m)
            break; /* the call fails */
        g_input_utf8 = strings_utf8(&m->base) && (!header || strings_utf8(&header_msg->base));
        bool keep = false;
        if (m->kind_case == SLUICE__V1__BATCH_REQUEST__KIND_HEADER && !header) {
            header = m->header;
            header_msg = m;
            keep = true;
            if (*header->session_id) {
                check_id(header->session_id, 's'); /* taken as an existing session */
            } else if (!(own = open_session(header->config))) {
                protobuf_c_message_free_unpacked(&m->base, NULL);
                return; /* the call fails: INVALID_ARGUMENT naming the field */
            }
        } else if (header && m->kind_case == SLUICE__V1__BATCH_REQUEST__KIND_PROMPT) {
            on_prompt(own ? own : g_sess, m->prompt, header);
        } else if (header && m->kind_case == SLUICE__V1__BATCH_REQUEST__KIND_PROMPTS) {
            for (size_t i = 0; i < m->prompts->n_prompts && i < 1024; i++)
                on_prompt(own ? own : g_sess, m->prompts->prompts[i], header);
        }
        if (!keep)
            protobuf_c_message_free_unpacked(&m->base, NULL);
    }
    dsession_unref(own);
    if (header_msg)
        protobuf_c_message_free_unpacked(&header_msg->base, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    init_once();
    if (size == 0)
        return 0;
    unsigned which = data[0] % 10;
    if (which == 9)
        authorization(data + 1, size - 1);
    else if (which == 8)
        batch_stream(data + 1, size - 1);
    else
        one_rpc(which, data + 1, size - 1);
    return 0;
}
