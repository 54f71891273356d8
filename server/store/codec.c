/*
 * The store codec, encoding side: llm_request / llm_response to sluice.store.v1 message
 * trees, packing, and what both directions share (checks, errors, the allocator).
 *
 * A tree built here borrows every string and byte array from the struct it maps (protobuf-c
 * only reads them while packing), so encoding copies the answer's text once, into the
 * packed buffer. Arrays of submessages are allocated as one zeroed block each (the pointer
 * array followed by the messages), the top message shares its block with its Usage /
 * Sampling, so a tree is a handful of allocations and *_proto_free knows its shape.
 *
 * The only non-mechanical mapping is the completion: when it equals the text parts of the
 * content joined (llm_response_set_completion_from_content, the usual case) it is not
 * stored but flagged and rebuilt on decode, so a typical answer's text is stored once.
 * Presence bits and -0.0 flags are described in records.proto.
 *
 * Pure; any thread.
 */
#include "server/store/codec_internal.h"

#include "server/common/alloc.h"
#include "sluice/status.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The proto enums carry the llm.h numbers (both contiguous), so mapping an in-range value is
 * a cast. */
#define SAME(a, b) _Static_assert((int)(a) == (int)(b), #a " != " #b)
SAME(SLUICE__STORE__V1__ROLE__ROLE_SYSTEM, LLM_ROLE_SYSTEM);
SAME(SLUICE__STORE__V1__ROLE__ROLE_TOOL, LLM_ROLE_TOOL);
SAME(SLUICE__STORE__V1__PART_KIND__PART_KIND_TEXT, LLM_PART_TEXT);
SAME(SLUICE__STORE__V1__PART_KIND__PART_KIND_THINKING, LLM_PART_THINKING);
SAME(SLUICE__STORE__V1__EFFORT__EFFORT_UNSET, LLM_EFFORT_UNSET);
SAME(SLUICE__STORE__V1__EFFORT__EFFORT_XHIGH, LLM_EFFORT_XHIGH);
SAME(SLUICE__STORE__V1__ERROR_KIND__ERROR_KIND_NONE, LLM_ERR_NONE);
SAME(SLUICE__STORE__V1__ERROR_KIND__ERROR_KIND_TIMEOUT, LLM_ERR_TIMEOUT);
SAME(SLUICE__STORE__V1__SAMPLING_SET__SAMPLING_SET_TEMPERATURE, LLM_SET_TEMPERATURE);
SAME(SLUICE__STORE__V1__SAMPLING_SET__SAMPLING_SET_TOP_P, LLM_SET_TOP_P);
SAME(SLUICE__STORE__V1__SAMPLING_SET__SAMPLING_SET_MAX_NEW_TOKENS, LLM_SET_MAX_NEW_TOKENS);
SAME(SLUICE__STORE__V1__SAMPLING_SET__SAMPLING_SET_STOP, LLM_SET_STOP);
SAME(SLUICE__STORE__V1__SAMPLING_SET__SAMPLING_SET_EFFORT, LLM_SET_EFFORT);
SAME(SLUICE__STORE__V1__SAMPLING_SET__SAMPLING_SET_THINKING_BUDGET, LLM_SET_THINKING_BUDGET);
SAME(SLUICE__STORE__V1__SAMPLING_SET__SAMPLING_SET_JSON_MODE, LLM_SET_JSON_MODE);
SAME(SAMPLING_SET_ALL, (LLM_SET_JSON_MODE << 1) - 1);
/* The *_ALL masks cover exactly the bits records.proto defines. */
_Static_assert(PART_ALL == (PART_SIGNATURE << 1) - 1, "PartPresence");
_Static_assert(TOOL_ALL == (TOOL_PARAMETERS << 1) - 1, "ToolPresence");
_Static_assert(SAMPLING_ALL == (SAMPLING_TOP_P_NZ << 1) - 1 &&
                   SLUICE__STORE__V1__SAMPLING_PRESENCE__SAMPLING_PRESENCE_STOP3 ==
                       SAMPLING_STOP0 << (LLM_MAX_STOP - 1),
               "SamplingPresence");
_Static_assert(REQUEST_ALL == (REQUEST_PREFER_MODEL << 1) - 1, "RequestPresence");
_Static_assert(ATTEMPT_ALL == (ATTEMPT_ERROR << 1) - 1, "AttemptPresence");
_Static_assert(RESP_ALL == (RESP_COST_SAVED_NZ << 1) - 1, "ResponsePresence");

/* ---- shared -------------------------------------------------------------------------- */

int codec_fail(codec_err *e, int rc, const char *fmt, ...) {
    if (e->buf && e->len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->buf, e->len, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int codec_within(codec_err *e, int rc, const char *name, size_t i) {
    if (rc == SLUICE_OK || !e->buf || !e->len)
        return rc;
    char inner[512];
    snprintf(inner, sizeof inner, "%s", e->buf);
    const char *dot = inner[0] == ':' ? "" : "."; /* ": what" is about the message itself */
    if (i == SIZE_MAX)
        snprintf(e->buf, e->len, "%s%s%s", name, dot, inner);
    else
        snprintf(e->buf, e->len, "%s[%zu]%s%s", name, i, dot, inner);
    return rc;
}

int codec_top(codec_err *e, int rc, const char *name) {
    if (rc != SLUICE_OK && e->buf && e->len && e->buf[0] == ':')
        return codec_within(e, rc, name, SIZE_MAX);
    return rc;
}

int codec_check_range(codec_err *e, int rc, const char *field, int v, int lo, int hi) {
    if (v < lo || v > hi)
        return codec_fail(e, rc, "%s: %d is out of range (%d..%d)", field, v, lo, hi);
    return SLUICE_OK;
}

int codec_check_part(codec_err *e, int rc, int kind, bool has_url, bool has_data) {
    int bad = codec_check_range(e, rc, "kind", kind, LLM_PART_TEXT, LLM_PART_THINKING);
    if (!bad && kind == LLM_PART_IMAGE && !has_url && !has_data)
        bad = codec_fail(e, rc, ": image part without a url or data");
    return bad;
}

int codec_check_sampling(codec_err *e, int rc, unsigned set, size_t n_stop, int effort) {
    if (set & ~SAMPLING_SET_ALL)
        return codec_fail(e, rc, "set: undefined bits 0x%x", set & ~SAMPLING_SET_ALL);
    if (n_stop > LLM_MAX_STOP)
        return codec_fail(e, rc, "stop: %zu sequences, at most %d", n_stop, LLM_MAX_STOP);
    return codec_check_range(e, rc, "effort", effort, LLM_EFFORT_UNSET, LLM_EFFORT_XHIGH);
}

/* ---- any message --------------------------------------------------------------------- */

static void *alloc_fn(void *ud, size_t size) {
    (void)ud;
    return xmalloc(size);
}

static void free_fn(void *ud, void *p) {
    (void)ud;
    free(p);
}

/* protobuf-c takes a non-const allocator but never writes to it. */
static ProtobufCAllocator store_allocator = {alloc_fn, free_fn, NULL};

void codec_message_pack(const ProtobufCMessage *m, size_t headroom, uint8_t **out, size_t *len) {
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = xmalloc(headroom + n);
    protobuf_c_message_pack(m, b + headroom);
    *out = b;
    *len = headroom + n;
}

ProtobufCMessage *codec_message_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *data,
                                       size_t len, char *err, size_t errlen) {
    static const uint8_t empty[1];
    ProtobufCMessage *m = protobuf_c_message_unpack(d, &store_allocator, len, data ? data : empty);
    if (!m && err && errlen)
        snprintf(err, errlen, "not a valid %s (%zu bytes)", d->name, len);
    return m;
}

void codec_message_free(ProtobufCMessage *m) {
    if (m)
        protobuf_c_message_free_unpacked(m, &store_allocator);
}

/* ---- encoding ------------------------------------------------------------------------ */

/* A zeroed block of n pointers followed by the n items they point at; one free(). */
static void *ptr_block(size_t n, size_t item_size) {
    void **ptrs = xcalloc(1, n * (sizeof *ptrs + item_size));
    char *items = (char *)(ptrs + n);
    for (size_t i = 0; i < n; i++)
        ptrs[i] = items + i * item_size;
    return ptrs;
}

/* Points *field at s (borrowed) and sets its presence bit, when s is not NULL. */
static void put_str(char **field, const char *s, uint32_t *present, uint32_t bit) {
    if (s) {
        *field = (char *)s;
        *present |= bit;
    }
}

static bool negative_zero(double d) {
    return d == 0 && signbit(d);
}

static int part_to_proto(const llm_part *p, pb_part *m, codec_err *e) {
    int rc = codec_check_part(e, SLUICE_EINVAL, (int)p->kind, p->url != NULL, p->data != NULL);
    if (rc)
        return rc;
    sluice__store__v1__part__init(m);
    m->kind = (Sluice__Store__V1__PartKind)p->kind;
    put_str(&m->text, p->text, &m->present, PART_TEXT);
    put_str(&m->id, p->id, &m->present, PART_ID);
    put_str(&m->name, p->name, &m->present, PART_NAME);
    put_str(&m->arguments, p->arguments, &m->present, PART_ARGUMENTS);
    put_str(&m->url, p->url, &m->present, PART_URL);
    if (p->data) {
        m->data.data = p->data;
        m->data.len = p->data_len;
        m->present |= PART_DATA;
    }
    put_str(&m->media_type, p->media_type, &m->present, PART_MEDIA_TYPE);
    put_str(&m->detail, p->detail, &m->present, PART_DETAIL);
    put_str(&m->signature, p->signature, &m->present, PART_SIGNATURE);
    m->is_error = p->is_error;
    return SLUICE_OK;
}

/* Fills *parts / *n_out with a block of n mapped parts (left NULL / 0 when n is 0); errors
 * name the part as "<name>[i]". */
static int parts_to_proto(const llm_part *src, size_t n, const char *name, pb_part ***parts,
                          size_t *n_out, codec_err *e) {
    if (!n)
        return SLUICE_OK;
    *parts = ptr_block(n, sizeof(pb_part));
    *n_out = n;
    for (size_t i = 0; i < n; i++) {
        int rc = codec_within(e, part_to_proto(&src[i], (*parts)[i], e), name, i);
        if (rc)
            return rc;
    }
    return SLUICE_OK;
}

static int messages_to_proto(const llm_request *r, pb_request *m, codec_err *e) {
    if (!r->n_messages)
        return SLUICE_OK;
    m->messages = ptr_block(r->n_messages, sizeof(pb_message));
    m->n_messages = r->n_messages;
    for (size_t i = 0; i < r->n_messages; i++) {
        const llm_message *src = &r->messages[i];
        pb_message *dst = m->messages[i];
        sluice__store__v1__message__init(dst);
        int rc = codec_check_range(e, SLUICE_EINVAL, "role", (int)src->role, LLM_ROLE_SYSTEM,
                                   LLM_ROLE_TOOL);
        dst->role = (Sluice__Store__V1__Role)src->role;
        rc = rc ? rc
                : parts_to_proto(src->parts, src->n_parts, "parts", &dst->parts, &dst->n_parts, e);
        if (rc)
            return codec_within(e, rc, "messages", i);
    }
    return SLUICE_OK;
}

static void tools_to_proto(const llm_request *r, pb_request *m) {
    if (!r->n_tools)
        return;
    m->tools = ptr_block(r->n_tools, sizeof(pb_tool));
    m->n_tools = r->n_tools;
    for (size_t i = 0; i < r->n_tools; i++) {
        const llm_tool *src = &r->tools[i];
        pb_tool *dst = m->tools[i];
        sluice__store__v1__tool__init(dst);
        put_str(&dst->name, src->name, &dst->present, TOOL_NAME);
        put_str(&dst->description, src->description, &dst->present, TOOL_DESCRIPTION);
        put_str(&dst->parameters, src->parameters, &dst->present, TOOL_PARAMETERS);
        dst->strict = src->strict;
    }
}

/* The request's top message with its sampling and stop slots: one allocation. */
typedef struct request_tree {
    pb_request m; /* first: freeing the message frees the tree's top */
    pb_sampling sampling;
    char *stop[LLM_MAX_STOP];
} request_tree;

static int sampling_to_proto(const llm_sampling *s, request_tree *t, codec_err *e) {
    int rc = codec_check_sampling(e, SLUICE_EINVAL, s->set, s->n_stop, (int)s->effort);
    if (rc)
        return codec_within(e, rc, "sampling", SIZE_MAX);
    pb_sampling *m = &t->sampling;
    sluice__store__v1__sampling__init(m);
    m->set = s->set;
    m->temperature = s->temperature;
    m->top_p = s->top_p;
    m->max_new_tokens = s->max_new_tokens;
    for (size_t i = 0; i < s->n_stop; i++) {
        t->stop[i] = s->stop[i] ? s->stop[i] : "";
        m->present |= s->stop[i] ? (uint32_t)SAMPLING_STOP0 << i : 0;
    }
    m->stop = s->n_stop ? t->stop : NULL;
    m->n_stop = s->n_stop;
    m->effort = (Sluice__Store__V1__Effort)s->effort;
    m->thinking_budget = s->thinking_budget;
    m->json_mode = s->json_mode;
    m->present |= negative_zero(s->temperature) ? SAMPLING_TEMPERATURE_NZ : 0;
    m->present |= negative_zero(s->top_p) ? SAMPLING_TOP_P_NZ : 0;
    /* An all-zero sampling (the usual per-prompt override) is left out. */
    if (m->set || m->temperature != 0 || m->top_p != 0 || m->max_new_tokens || m->n_stop ||
        m->effort || m->thinking_budget || m->json_mode || m->present)
        t->m.sampling = m;
    return SLUICE_OK;
}

int codec_request_to_proto(const llm_request *r, pb_request **out, char *err, size_t errlen) {
    codec_err e = {err, errlen};
    request_tree *t = XNEW(request_tree);
    sluice__store__v1__request__init(&t->m);
    int rc = messages_to_proto(r, &t->m, &e);
    if (!rc) {
        tools_to_proto(r, &t->m);
        put_str(&t->m.schema_name, r->schema_name, &t->m.present, REQUEST_SCHEMA_NAME);
        put_str(&t->m.output_schema, r->output_schema, &t->m.present, REQUEST_OUTPUT_SCHEMA);
        put_str(&t->m.prefer_model, r->prefer_model, &t->m.present, REQUEST_PREFER_MODEL);
        rc = sampling_to_proto(&r->sampling, t, &e);
    }
    if (rc) {
        codec_request_proto_free(&t->m);
        *out = NULL;
        return codec_top(&e, rc, "request");
    }
    *out = &t->m;
    return SLUICE_OK;
}

void codec_request_proto_free(pb_request *m) {
    if (!m)
        return;
    for (size_t i = 0; i < m->n_messages; i++)
        free(m->messages[i]->parts);
    free(m->messages);
    free(m->tools);
    free(m); /* the request_tree */
}

/* True when completion is exactly the text parts of content joined (and there is one). */
static bool completion_is_joined(const llm_response *r) {
    const char *c = r->completion;
    bool any = false;
    if (!c)
        return false;
    for (size_t i = 0; i < r->n_content; i++) {
        const llm_part *p = &r->content[i];
        if (p->kind != LLM_PART_TEXT || !p->text)
            continue;
        size_t k = strlen(p->text);
        if (strncmp(c, p->text, k) != 0)
            return false;
        c += k;
        any = true;
    }
    return any && *c == '\0';
}

static void attempts_to_proto(const llm_response *r, pb_response *m) {
    if (!r->n_attempts)
        return;
    m->attempts = ptr_block(r->n_attempts, sizeof(pb_attempt));
    m->n_attempts = r->n_attempts;
    for (size_t i = 0; i < r->n_attempts; i++) {
        const llm_attempt *src = &r->attempts[i];
        pb_attempt *dst = m->attempts[i];
        sluice__store__v1__attempt__init(dst);
        put_str(&dst->model, src->model, &dst->present, ATTEMPT_MODEL);
        dst->status_code = src->status_code;
        dst->latency_ms = src->latency_ms;
        dst->retry_after_ms = src->retry_after_ms;
        put_str(&dst->error, src->error, &dst->present, ATTEMPT_ERROR);
    }
}

/* The response's top message with its usage: one allocation. */
typedef struct response_tree {
    pb_response m; /* first: freeing the message frees the tree's top */
    pb_usage usage;
} response_tree;

static void response_scalars_to_proto(const llm_response *r, response_tree *t) {
    pb_response *m = &t->m;
    m->is_error = r->is_error;
    m->error_kind = (Sluice__Store__V1__ErrorKind)r->error_kind;
    m->status_code = r->status_code;
    m->cost = r->cost;
    m->cost_saved = r->cost_saved;
    m->present |= negative_zero(r->cost) ? RESP_COST_NZ : 0;
    m->present |= negative_zero(r->cost_saved) ? RESP_COST_SAVED_NZ : 0;
    m->local_cache_hit = r->local_cache_hit;
    m->deduplicated = r->deduplicated;
    m->latency_ms = r->latency_ms;
    const llm_usage *u = &r->usage;
    if (u->input_tokens || u->output_tokens || u->cache_read_tokens || u->cache_write_tokens) {
        sluice__store__v1__usage__init(&t->usage);
        t->usage.input_tokens = u->input_tokens;
        t->usage.output_tokens = u->output_tokens;
        t->usage.cache_read_tokens = u->cache_read_tokens;
        t->usage.cache_write_tokens = u->cache_write_tokens;
        m->usage = &t->usage;
    }
}

int codec_response_to_proto(const llm_response *r, pb_response **out, char *err, size_t errlen) {
    codec_err e = {err, errlen};
    *out = NULL;
    int rc = codec_check_range(&e, SLUICE_EINVAL, "error_kind", (int)r->error_kind, LLM_ERR_NONE,
                               LLM_ERR_TIMEOUT);
    if (rc)
        return rc;
    response_tree *t = XNEW(response_tree);
    pb_response *m = &t->m;
    sluice__store__v1__response__init(m);
    rc = parts_to_proto(r->content, r->n_content, "content", &m->content, &m->n_content, &e);
    if (rc) {
        codec_response_proto_free(m);
        return codec_top(&e, rc, "response");
    }
    response_scalars_to_proto(r, t);
    put_str(&m->error_message, r->error_message, &m->present, RESP_ERROR_MESSAGE);
    if (completion_is_joined(r))
        m->present |= RESP_COMPLETION_FROM_CONTENT;
    else
        put_str(&m->completion, r->completion, &m->present, RESP_COMPLETION);
    put_str(&m->finish_reason, r->finish_reason, &m->present, RESP_FINISH_REASON);
    put_str(&m->thinking, r->thinking, &m->present, RESP_THINKING);
    put_str(&m->model_requested, r->model_requested, &m->present, RESP_MODEL_REQUESTED);
    put_str(&m->model_used, r->model_used, &m->present, RESP_MODEL_USED);
    attempts_to_proto(r, m);
    *out = m;
    return SLUICE_OK;
}

void codec_response_proto_free(pb_response *m) {
    if (!m)
        return;
    free(m->content);
    free(m->attempts);
    free(m); /* the response_tree */
}

int codec_request_pack(const llm_request *r, size_t headroom, uint8_t **out, size_t *len, char *err,
                       size_t errlen) {
    pb_request *m;
    int rc = codec_request_to_proto(r, &m, err, errlen);
    if (rc)
        return rc;
    codec_message_pack(&m->base, headroom, out, len);
    codec_request_proto_free(m);
    return SLUICE_OK;
}

int codec_response_pack(const llm_response *r, size_t headroom, uint8_t **out, size_t *len,
                        char *err, size_t errlen) {
    pb_response *m;
    int rc = codec_response_to_proto(r, &m, err, errlen);
    if (rc)
        return rc;
    codec_message_pack(&m->base, headroom, out, len);
    codec_response_proto_free(m);
    return SLUICE_OK;
}
