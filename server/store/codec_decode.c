/*
 * The store codec, decoding side: unpacked sluice.store.v1 messages to new llm_request /
 * llm_response structs, with every check records.proto promises.
 *
 * Bytes reach here from disk, where a bug, a disk error or a hostile file can put anything,
 * so nothing is trusted: protobuf-c validates the wire format (lengths, varints, wire types;
 * it never reads past the buffer and sizes its allocations by it), then the mapping checks
 * every value before it lands in a struct: unknown fields, undefined presence bits, values
 * without their presence bit, enum ranges, the stop count (llm_sampling has room for
 * LLM_MAX_STOP entries only), image sources. The structs are filled as the checks pass and
 * arrays are zeroed up front with their counts set, so on any failure the one *_free of the
 * half-built struct releases exactly what was copied. Messages nest a fixed three levels
 * (request, message, part), so hostile input cannot recurse deeply.
 *
 * Pure; any thread.
 */
#include "server/store/codec_internal.h"

#include "server/common/alloc.h"
#include "sluice/status.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int no_unknown(const ProtobufCMessage *m, codec_err *e) {
    if (m->n_unknown_fields)
        return codec_fail(e, SLUICE_EPROTO, ": unknown field %u", m->unknown_fields[0].tag);
    return SLUICE_OK;
}

static int check_bits(uint32_t present, uint32_t defined, codec_err *e) {
    if (present & ~defined)
        return codec_fail(e, SLUICE_EPROTO, "present: undefined bits 0x%x", present & ~defined);
    return SLUICE_OK;
}

/* Copies v into *out when its presence bit is set (NULL stays NULL otherwise); a value
 * without its bit is refused. */
static int take_str(const char *v, uint32_t present, uint32_t bit, const char *field, char **out,
                    codec_err *e) {
    if (present & bit)
        *out = xstrdup(v ? v : "");
    else if (v && *v)
        return codec_fail(e, SLUICE_EPROTO, "%s: a value without its presence bit", field);
    return SLUICE_OK;
}

/* A double whose -0.0 flag may be set (protobuf-c leaves zero doubles off the wire). */
static int take_double(double v, bool negative_zero, const char *field, double *out, codec_err *e) {
    if (negative_zero && v != 0)
        return codec_fail(e, SLUICE_EPROTO, "%s: a -0.0 flag next to a value", field);
    *out = negative_zero ? -0.0 : v;
    return SLUICE_OK;
}

static int part_from_proto(const pb_part *m, llm_part *p, codec_err *e) {
    uint32_t pr = m->present;
    int rc = no_unknown(&m->base, e);
    rc = rc ? rc : check_bits(pr, PART_ALL, e);
    rc = rc ? rc : codec_check_part(e, SLUICE_EPROTO, (int)m->kind, pr & PART_URL, pr & PART_DATA);
    if (rc)
        return rc;
    p->kind = (llm_part_kind)m->kind;
    rc = take_str(m->text, pr, PART_TEXT, "text", &p->text, e);
    rc = rc ? rc : take_str(m->id, pr, PART_ID, "id", &p->id, e);
    rc = rc ? rc : take_str(m->name, pr, PART_NAME, "name", &p->name, e);
    rc = rc ? rc : take_str(m->arguments, pr, PART_ARGUMENTS, "arguments", &p->arguments, e);
    rc = rc ? rc : take_str(m->url, pr, PART_URL, "url", &p->url, e);
    if (!rc && (pr & PART_DATA)) {
        p->data = xmemdup(m->data.data, m->data.len); /* never NULL, even for 0 bytes */
        p->data_len = m->data.len;
    } else if (!rc && m->data.len) {
        rc = codec_fail(e, SLUICE_EPROTO, "data: a value without its presence bit");
    }
    rc = rc ? rc : take_str(m->media_type, pr, PART_MEDIA_TYPE, "media_type", &p->media_type, e);
    rc = rc ? rc : take_str(m->detail, pr, PART_DETAIL, "detail", &p->detail, e);
    rc = rc ? rc : take_str(m->signature, pr, PART_SIGNATURE, "signature", &p->signature, e);
    p->is_error = m->is_error != 0;
    return rc;
}

/* Decodes n parts into a new zeroed array (*parts, *n_out set first, for cleanup). */
static int parts_from_proto(pb_part *const *src, size_t n, const char *name, llm_part **parts,
                            size_t *n_out, codec_err *e) {
    if (!n)
        return SLUICE_OK;
    *parts = XNEWV(llm_part, n);
    *n_out = n;
    for (size_t i = 0; i < n; i++) {
        int rc = codec_within(e, part_from_proto(src[i], &(*parts)[i], e), name, i);
        if (rc)
            return rc;
    }
    return SLUICE_OK;
}

static int messages_from_proto(const pb_request *m, llm_request *r, codec_err *e) {
    if (!m->n_messages)
        return SLUICE_OK;
    r->messages = XNEWV(llm_message, m->n_messages);
    r->n_messages = m->n_messages;
    for (size_t i = 0; i < m->n_messages; i++) {
        const pb_message *src = m->messages[i];
        llm_message *dst = &r->messages[i];
        int rc = no_unknown(&src->base, e);
        rc = rc ? rc
                : codec_check_range(e, SLUICE_EPROTO, "role", (int)src->role, LLM_ROLE_SYSTEM,
                                    LLM_ROLE_TOOL);
        dst->role = (llm_role)src->role;
        rc =
            rc ? rc
               : parts_from_proto(src->parts, src->n_parts, "parts", &dst->parts, &dst->n_parts, e);
        if (rc)
            return codec_within(e, rc, "messages", i);
    }
    return SLUICE_OK;
}

static int tools_from_proto(const pb_request *m, llm_request *r, codec_err *e) {
    if (!m->n_tools)
        return SLUICE_OK;
    r->tools = XNEWV(llm_tool, m->n_tools);
    r->n_tools = m->n_tools;
    for (size_t i = 0; i < m->n_tools; i++) {
        const pb_tool *src = m->tools[i];
        llm_tool *dst = &r->tools[i];
        uint32_t pr = src->present;
        int rc = no_unknown(&src->base, e);
        rc = rc ? rc : check_bits(pr, TOOL_ALL, e);
        rc = rc ? rc : take_str(src->name, pr, TOOL_NAME, "name", &dst->name, e);
        rc = rc ? rc
                : take_str(src->description, pr, TOOL_DESCRIPTION, "description", &dst->description,
                           e);
        rc = rc ? rc
                : take_str(src->parameters, pr, TOOL_PARAMETERS, "parameters", &dst->parameters, e);
        dst->strict = src->strict != 0;
        if (rc)
            return codec_within(e, rc, "tools", i);
    }
    return SLUICE_OK;
}

static int stops_from_proto(const pb_sampling *m, llm_sampling *s, codec_err *e) {
    uint32_t stop_bits = ((uint32_t)SAMPLING_STOP0 << LLM_MAX_STOP) - SAMPLING_STOP0;
    uint32_t used_bits = ((uint32_t)SAMPLING_STOP0 << m->n_stop) - SAMPLING_STOP0;
    if (m->present & stop_bits & ~used_bits)
        return codec_fail(e, SLUICE_EPROTO, "present: a stop bit without its stop sequence");
    s->n_stop = m->n_stop;
    for (size_t i = 0; i < m->n_stop; i++) {
        if (m->present & ((uint32_t)SAMPLING_STOP0 << i))
            s->stop[i] = xstrdup(m->stop[i] ? m->stop[i] : "");
        else if (m->stop[i] && *m->stop[i])
            return codec_fail(e, SLUICE_EPROTO, "stop[%zu]: a value without its presence bit", i);
    }
    return SLUICE_OK;
}

static int sampling_from_proto(const pb_sampling *m, llm_sampling *s, codec_err *e) {
    int rc = no_unknown(&m->base, e);
    rc = rc ? rc : check_bits(m->present, SAMPLING_ALL, e);
    rc = rc ? rc : codec_check_sampling(e, SLUICE_EPROTO, m->set, m->n_stop, (int)m->effort);
    rc = rc ? rc : stops_from_proto(m, s, e);
    rc = rc ? rc
            : take_double(m->temperature, m->present & SAMPLING_TEMPERATURE_NZ, "temperature",
                          &s->temperature, e);
    rc = rc ? rc : take_double(m->top_p, m->present & SAMPLING_TOP_P_NZ, "top_p", &s->top_p, e);
    s->set = m->set;
    s->max_new_tokens = m->max_new_tokens;
    s->effort = (llm_effort)m->effort;
    s->thinking_budget = m->thinking_budget;
    s->json_mode = m->json_mode != 0;
    return rc;
}

int codec_request_from_proto(const pb_request *m, llm_request **out, char *err, size_t errlen) {
    codec_err e = {err, errlen};
    llm_request *r = llm_request_new();
    uint32_t pr = m->present;
    int rc = no_unknown(&m->base, &e);
    rc = rc ? rc : check_bits(pr, REQUEST_ALL, &e);
    rc = rc ? rc : messages_from_proto(m, r, &e);
    rc = rc ? rc : tools_from_proto(m, r, &e);
    rc = rc ? rc
            : take_str(m->schema_name, pr, REQUEST_SCHEMA_NAME, "schema_name", &r->schema_name, &e);
    rc = rc ? rc
            : take_str(m->output_schema, pr, REQUEST_OUTPUT_SCHEMA, "output_schema",
                       &r->output_schema, &e);
    rc = rc ? rc
            : take_str(m->prefer_model, pr, REQUEST_PREFER_MODEL, "prefer_model", &r->prefer_model,
                       &e);
    if (!rc && m->sampling)
        rc = codec_within(&e, sampling_from_proto(m->sampling, &r->sampling, &e), "sampling",
                          SIZE_MAX);
    if (rc) {
        llm_request_free(r);
        r = NULL;
    }
    *out = r;
    return codec_top(&e, rc, "request");
}

static int attempts_from_proto(const pb_response *m, llm_response *r, codec_err *e) {
    if (!m->n_attempts)
        return SLUICE_OK;
    r->attempts = XNEWV(llm_attempt, m->n_attempts);
    r->n_attempts = m->n_attempts;
    for (size_t i = 0; i < m->n_attempts; i++) {
        const pb_attempt *src = m->attempts[i];
        llm_attempt *dst = &r->attempts[i];
        int rc = no_unknown(&src->base, e);
        rc = rc ? rc : check_bits(src->present, ATTEMPT_ALL, e);
        rc = rc ? rc : take_str(src->model, src->present, ATTEMPT_MODEL, "model", &dst->model, e);
        rc = rc ? rc : take_str(src->error, src->present, ATTEMPT_ERROR, "error", &dst->error, e);
        dst->status_code = src->status_code;
        dst->latency_ms = src->latency_ms;
        dst->retry_after_ms = src->retry_after_ms;
        if (rc)
            return codec_within(e, rc, "attempts", i);
    }
    return SLUICE_OK;
}

/* Everything of a response but its content and attempts. */
static int response_fields(const pb_response *m, llm_response *r, codec_err *e) {
    uint32_t pr = m->present;
    int rc = take_double(m->cost, pr & RESP_COST_NZ, "cost", &r->cost, e);
    rc = rc ? rc
            : take_double(m->cost_saved, pr & RESP_COST_SAVED_NZ, "cost_saved", &r->cost_saved, e);
    rc = rc ? rc
            : take_str(m->error_message, pr, RESP_ERROR_MESSAGE, "error_message", &r->error_message,
                       e);
    rc = rc ? rc : take_str(m->completion, pr, RESP_COMPLETION, "completion", &r->completion, e);
    rc = rc ? rc
            : take_str(m->finish_reason, pr, RESP_FINISH_REASON, "finish_reason", &r->finish_reason,
                       e);
    rc = rc ? rc : take_str(m->thinking, pr, RESP_THINKING, "thinking", &r->thinking, e);
    rc = rc ? rc
            : take_str(m->model_requested, pr, RESP_MODEL_REQUESTED, "model_requested",
                       &r->model_requested, e);
    rc = rc ? rc : take_str(m->model_used, pr, RESP_MODEL_USED, "model_used", &r->model_used, e);
    if (!rc && m->usage) {
        rc = codec_within(e, no_unknown(&m->usage->base, e), "usage", SIZE_MAX);
        r->usage = (llm_usage){m->usage->input_tokens, m->usage->output_tokens,
                               m->usage->cache_read_tokens, m->usage->cache_write_tokens};
    }
    r->is_error = m->is_error != 0;
    r->error_kind = (llm_error_kind)m->error_kind;
    r->status_code = m->status_code;
    r->local_cache_hit = m->local_cache_hit != 0;
    r->deduplicated = m->deduplicated != 0;
    r->latency_ms = m->latency_ms;
    return rc;
}

int codec_response_from_proto(const pb_response *m, llm_response **out, char *err, size_t errlen) {
    codec_err e = {err, errlen};
    llm_response *r = llm_response_new();
    int rc = no_unknown(&m->base, &e);
    rc = rc ? rc : check_bits(m->present, RESP_ALL, &e);
    if (!rc && (m->present & RESP_COMPLETION) && (m->present & RESP_COMPLETION_FROM_CONTENT))
        rc = codec_fail(&e, SLUICE_EPROTO, "present: completion both stored and derived");
    rc = rc ? rc
            : codec_check_range(&e, SLUICE_EPROTO, "error_kind", (int)m->error_kind, LLM_ERR_NONE,
                                LLM_ERR_TIMEOUT);
    rc = rc ? rc
            : parts_from_proto(m->content, m->n_content, "content", &r->content, &r->n_content, &e);
    rc = rc ? rc : response_fields(m, r, &e);
    rc = rc ? rc : attempts_from_proto(m, r, &e);
    if (!rc && (m->present & RESP_COMPLETION_FROM_CONTENT))
        llm_response_set_completion_from_content(r);
    if (rc) {
        llm_response_free(r);
        r = NULL;
    }
    *out = r;
    return codec_top(&e, rc, "response");
}

int codec_request_unpack(const uint8_t *data, size_t len, llm_request **out, char *err,
                         size_t errlen) {
    *out = NULL;
    ProtobufCMessage *m =
        codec_message_unpack(&sluice__store__v1__request__descriptor, data, len, err, errlen);
    if (!m)
        return SLUICE_EPROTO;
    int rc = codec_request_from_proto((const pb_request *)m, out, err, errlen);
    codec_message_free(m);
    return rc;
}

int codec_response_unpack(const uint8_t *data, size_t len, llm_response **out, char *err,
                          size_t errlen) {
    *out = NULL;
    ProtobufCMessage *m =
        codec_message_unpack(&sluice__store__v1__response__descriptor, data, len, err, errlen);
    if (!m)
        return SLUICE_EPROTO;
    int rc = codec_response_from_proto((const pb_response *)m, out, err, errlen);
    codec_message_free(m);
    return rc;
}
