/*
 * JSON encoding of llm_request / llm_response / llm_sampling for task records and cache
 * values.
 *
 * Format (all names lowercase, enums as names):
 *   request  {"messages":[message...], "tools"?:[tool...], "schema_name"?, "output_schema"?,
 *             "sampling"?:sampling, "prefer_model"?}
 *   message  {"role":"user", "parts":[part...]}
 *   part     {"kind":"text", "text"?, "id"?, "name"?, "arguments"?, "url"?, "data"?(base64),
 *             "media_type"?, "detail"?, "signature"?, "is_error"?}
 *   tool     {"name"?, "description"?, "parameters"?, "strict"?}
 *   sampling {"set":["temperature",...], "temperature"?, "top_p"?, "max_new_tokens"?,
 *             "stop"?:[...], "effort"?, "thinking_budget"?, "json_mode"?}
 *   response {"is_error", "error_kind", "status_code", "usage":{4 counters}, "cost",
 *             "cost_saved", "local_cache_hit", "deduplicated", "latency_ms", and optional
 *             "error_message", "completion", "content":[part...], "finish_reason",
 *             "thinking", "model_requested", "model_used", "attempts":[attempt...]}
 *             "completion" is omitted when it equals the joined text parts of content (the
 *             usual case, so a typical answer's text is stored once) and rebuilt from them
 *             on decode; null stands for a NULL completion next to text parts.
 *   attempt  {"model"?, "status_code", "latency_ms", "retry_after_ms", "error"?}
 * "?" members are omitted when NULL/false/empty and read back as NULL/false/empty, so the
 * round trip is exact. A sampling member is written when its `set` bit is on or its value
 * is not zero, so merged samplings (defaults filled in, bits off) also round-trip.
 *
 * Decoding is strict: a missing required member, a member of the wrong type or range, or
 * an unknown member fails with SLUICE_EPROTO and a message naming the path
 * ("messages[1].parts[0].kind: unknown name"). Unknown members are errors rather than
 * ignored because the store writes this format itself: anything unexpected means
 * corruption or a newer build, and either must not be half-read. Pure; any thread.
 */
#include "server/store/codec.h"

#include "server/common/alloc.h"
#include "server/store/jfield.h"
#include "sluice/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *const role_names[] = {NULL, "system", "user", "assistant", "tool"};
static const char *const kind_names[] = {NULL,        "text",        "image",
                                         "tool_call", "tool_result", "thinking"};
static const char *const effort_names[] = {"unset",  "none", "minimal", "low",
                                           "medium", "high", "xhigh"};
static const char *const error_kind_names[] = {"none",      "provider",        "rate_limited",
                                               "transport", "invalid_request", "no_model",
                                               "cancelled", "timeout"};
/* Index = bit number of LLM_SET_*. */
static const char *const set_names[] = {"temperature", "top_p",           "max_new_tokens", "stop",
                                        "effort",      "thinking_budget", "json_mode"};

/* ---- encoding ------------------------------------------------------------------------ */

static void put_str(json_t *o, const char *key, const char *s) {
    if (s)
        json_object_set_new(o, key, jf_string_new(s));
}

static void put_true(json_t *o, const char *key, bool b) {
    if (b)
        json_object_set_new(o, key, json_true());
}

static json_t *part_to_json(const llm_part *p) {
    json_t *o = json_object();
    json_object_set_new(o, "kind", jf_enum_new((int)p->kind, kind_names, NELEM(kind_names)));
    put_str(o, "text", p->text);
    put_str(o, "id", p->id);
    put_str(o, "name", p->name);
    put_str(o, "arguments", p->arguments);
    put_str(o, "url", p->url);
    if (p->data)
        json_object_set_new(o, "data", jf_bytes_new(p->data, p->data_len));
    put_str(o, "media_type", p->media_type);
    put_str(o, "detail", p->detail);
    put_str(o, "signature", p->signature);
    put_true(o, "is_error", p->is_error);
    return o;
}

static json_t *parts_to_json(const llm_part *parts, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, part_to_json(&parts[i]));
    return a;
}

static json_t *tools_to_json(const llm_tool *tools, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_object();
        put_str(t, "name", tools[i].name);
        put_str(t, "description", tools[i].description);
        put_str(t, "parameters", tools[i].parameters);
        put_true(t, "strict", tools[i].strict);
        json_array_append_new(a, t);
    }
    return a;
}

json_t *codec_sampling_to_json(const llm_sampling *s) {
    json_t *o = json_object();
    json_t *set = json_array();
    for (size_t i = 0; i < NELEM(set_names); i++)
        if (s->set & (1u << i))
            json_array_append_new(set, json_string(set_names[i]));
    json_object_set_new(o, "set", set);
    if ((s->set & LLM_SET_TEMPERATURE) || s->temperature != 0)
        json_object_set_new(o, "temperature", jf_double_new(s->temperature));
    if ((s->set & LLM_SET_TOP_P) || s->top_p != 0)
        json_object_set_new(o, "top_p", jf_double_new(s->top_p));
    if ((s->set & LLM_SET_MAX_NEW_TOKENS) || s->max_new_tokens)
        json_object_set_new(o, "max_new_tokens", json_integer(s->max_new_tokens));
    if ((s->set & LLM_SET_STOP) || s->n_stop) {
        json_t *a = json_array();
        for (size_t i = 0; i < s->n_stop && i < LLM_MAX_STOP; i++)
            json_array_append_new(a, jf_string_new(s->stop[i] ? s->stop[i] : ""));
        json_object_set_new(o, "stop", a);
    }
    if ((s->set & LLM_SET_EFFORT) || s->effort)
        json_object_set_new(o, "effort",
                            jf_enum_new((int)s->effort, effort_names, NELEM(effort_names)));
    if ((s->set & LLM_SET_THINKING_BUDGET) || s->thinking_budget)
        json_object_set_new(o, "thinking_budget", json_integer(s->thinking_budget));
    if ((s->set & LLM_SET_JSON_MODE) || s->json_mode)
        json_object_set_new(o, "json_mode", json_boolean(s->json_mode));
    return o;
}

json_t *codec_request_to_json(const llm_request *r) {
    json_t *o = json_object();
    json_t *msgs = json_array();
    for (size_t i = 0; i < r->n_messages; i++) {
        const llm_message *m = &r->messages[i];
        json_t *mo = json_object();
        json_object_set_new(mo, "role", jf_enum_new((int)m->role, role_names, NELEM(role_names)));
        json_object_set_new(mo, "parts", parts_to_json(m->parts, m->n_parts));
        json_array_append_new(msgs, mo);
    }
    json_object_set_new(o, "messages", msgs);
    if (r->n_tools)
        json_object_set_new(o, "tools", tools_to_json(r->tools, r->n_tools));
    put_str(o, "schema_name", r->schema_name);
    put_str(o, "output_schema", r->output_schema);
    const llm_sampling *sp = &r->sampling;
    if (sp->set || sp->temperature != 0 || sp->top_p != 0 || sp->max_new_tokens || sp->n_stop ||
        sp->effort || sp->thinking_budget || sp->json_mode)
        json_object_set_new(o, "sampling", codec_sampling_to_json(&r->sampling));
    put_str(o, "prefer_model", r->prefer_model);
    return o;
}

static json_t *attempts_to_json(const llm_attempt *a, size_t n) {
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        put_str(o, "model", a[i].model);
        json_object_set_new(o, "status_code", json_integer(a[i].status_code));
        json_object_set_new(o, "latency_ms", json_integer(a[i].latency_ms));
        json_object_set_new(o, "retry_after_ms", json_integer(a[i].retry_after_ms));
        put_str(o, "error", a[i].error);
        json_array_append_new(arr, o);
    }
    return arr;
}

/* The text parts of content joined (NULL when there are none), as
 * llm_response_set_completion_from_content computes it. */
static char *text_join(const llm_part *parts, size_t n) {
    size_t len = 0;
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].kind == LLM_PART_TEXT && parts[i].text) {
            len += strlen(parts[i].text);
            any = true;
        }
    }
    if (!any)
        return NULL;
    char *s = xmalloc(len + 1), *p = s;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].kind == LLM_PART_TEXT && parts[i].text) {
            size_t k = strlen(parts[i].text);
            memcpy(p, parts[i].text, k);
            p += k;
        }
    }
    *p = '\0';
    return s;
}

/* completion is usually the joined text of content: then it is left out (halving a typical
 * answer) and rebuilt on decode. Otherwise it is written, as null when it is NULL. */
static void put_completion(json_t *o, const llm_response *r) {
    char *derived = text_join(r->content, r->n_content);
    bool same = (!derived && !r->completion) ||
                (derived && r->completion && strcmp(derived, r->completion) == 0);
    free(derived);
    if (!same)
        json_object_set_new(o, "completion",
                            r->completion ? jf_string_new(r->completion) : json_null());
}

json_t *codec_response_to_json(const llm_response *r) {
    json_t *o = json_object();
    json_object_set_new(o, "is_error", json_boolean(r->is_error));
    json_object_set_new(o, "error_kind",
                        jf_enum_new((int)r->error_kind, error_kind_names, NELEM(error_kind_names)));
    json_object_set_new(o, "status_code", json_integer(r->status_code));
    put_str(o, "error_message", r->error_message);
    put_completion(o, r);
    if (r->n_content)
        json_object_set_new(o, "content", parts_to_json(r->content, r->n_content));
    put_str(o, "finish_reason", r->finish_reason);
    put_str(o, "thinking", r->thinking);
    json_object_set_new(o, "usage",
                        json_pack("{s:o, s:o, s:o, s:o}", "input_tokens",
                                  jf_u64_new(r->usage.input_tokens), "output_tokens",
                                  jf_u64_new(r->usage.output_tokens), "cache_read_tokens",
                                  jf_u64_new(r->usage.cache_read_tokens), "cache_write_tokens",
                                  jf_u64_new(r->usage.cache_write_tokens)));
    json_object_set_new(o, "cost", jf_double_new(r->cost));
    json_object_set_new(o, "cost_saved", jf_double_new(r->cost_saved));
    put_str(o, "model_requested", r->model_requested);
    put_str(o, "model_used", r->model_used);
    if (r->n_attempts)
        json_object_set_new(o, "attempts", attempts_to_json(r->attempts, r->n_attempts));
    json_object_set_new(o, "local_cache_hit", json_boolean(r->local_cache_hit));
    json_object_set_new(o, "deduplicated", json_boolean(r->deduplicated));
    json_object_set_new(o, "latency_ms", json_integer(r->latency_ms));
    return o;
}

/* ---- decoding ------------------------------------------------------------------------ */

static int part_from_json(const json_t *j, const char *where, llm_part *p, jdec *d) {
    static const char *const keys[] = {"kind",      "text",      "id",       "name",
                                       "arguments", "url",       "data",     "media_type",
                                       "detail",    "signature", "is_error", NULL};
    int kind = 0;
    int rc = jf_require_object(j, where, d);
    rc = rc ? rc : jf_check_keys(j, where, keys, d);
    rc = rc ? rc : jf_enum(j, where, "kind", true, kind_names, NELEM(kind_names), &kind, d);
    p->kind = (llm_part_kind)kind;
    rc = rc ? rc : jf_str(j, where, "text", false, &p->text, d);
    rc = rc ? rc : jf_str(j, where, "id", false, &p->id, d);
    rc = rc ? rc : jf_str(j, where, "name", false, &p->name, d);
    rc = rc ? rc : jf_str(j, where, "arguments", false, &p->arguments, d);
    rc = rc ? rc : jf_str(j, where, "url", false, &p->url, d);
    rc = rc ? rc : jf_bytes(j, where, "data", false, &p->data, &p->data_len, d);
    rc = rc ? rc : jf_str(j, where, "media_type", false, &p->media_type, d);
    rc = rc ? rc : jf_str(j, where, "detail", false, &p->detail, d);
    rc = rc ? rc : jf_str(j, where, "signature", false, &p->signature, d);
    rc = rc ? rc : jf_bool(j, where, "is_error", false, &p->is_error, d);
    return rc;
}

/* Decodes an array of parts into a new array; on failure everything is freed. */
static int parts_from_json(const json_t *a, const char *where, llm_part **out, size_t *n, jdec *d) {
    size_t count = json_array_size(a);
    llm_part *parts = count ? XNEWV(llm_part, count) : NULL;
    int rc = SLUICE_OK;
    size_t i;
    for (i = 0; i < count && !rc; i++) {
        char w[160];
        snprintf(w, sizeof w, "%s[%zu]", where, i);
        rc = part_from_json(json_array_get(a, i), w, &parts[i], d);
    }
    if (rc) {
        for (size_t k = 0; k < i; k++)
            llm_part_cleanup(&parts[k]);
        free(parts);
        return rc;
    }
    *out = parts;
    *n = count;
    return SLUICE_OK;
}

static int message_from_json(const json_t *j, const char *where, llm_message *m, jdec *d) {
    static const char *const keys[] = {"role", "parts", NULL};
    const json_t *parts = NULL;
    int role = 0;
    int rc = jf_require_object(j, where, d);
    rc = rc ? rc : jf_check_keys(j, where, keys, d);
    rc = rc ? rc : jf_enum(j, where, "role", true, role_names, NELEM(role_names), &role, d);
    rc = rc ? rc : jf_array(j, where, "parts", true, &parts, d);
    if (rc)
        return rc;
    m->role = (llm_role)role;
    char w[160];
    snprintf(w, sizeof w, "%s.parts", where);
    return parts_from_json(parts, w, &m->parts, &m->n_parts, d);
}

static int messages_from_json(const json_t *a, llm_request *r, jdec *d) {
    size_t count = json_array_size(a);
    r->messages = count ? XNEWV(llm_message, count) : NULL;
    for (size_t i = 0; i < count; i++) {
        char w[64];
        snprintf(w, sizeof w, "messages[%zu]", i);
        int rc = message_from_json(json_array_get(a, i), w, &r->messages[i], d);
        r->n_messages = i + 1; /* so llm_request_free cleans what was decoded */
        if (rc)
            return rc;
    }
    return SLUICE_OK;
}

static int tool_from_json(const json_t *j, const char *where, llm_tool *t, jdec *d) {
    static const char *const keys[] = {"name", "description", "parameters", "strict", NULL};
    int rc = jf_require_object(j, where, d);
    rc = rc ? rc : jf_check_keys(j, where, keys, d);
    rc = rc ? rc : jf_str(j, where, "name", false, &t->name, d);
    rc = rc ? rc : jf_str(j, where, "description", false, &t->description, d);
    rc = rc ? rc : jf_str(j, where, "parameters", false, &t->parameters, d);
    rc = rc ? rc : jf_bool(j, where, "strict", false, &t->strict, d);
    return rc;
}

static int tools_from_json(const json_t *a, llm_request *r, jdec *d) {
    size_t count = json_array_size(a);
    r->tools = count ? XNEWV(llm_tool, count) : NULL;
    for (size_t i = 0; i < count; i++) {
        char w[64];
        snprintf(w, sizeof w, "tools[%zu]", i);
        int rc = tool_from_json(json_array_get(a, i), w, &r->tools[i], d);
        r->n_tools = i + 1;
        if (rc)
            return rc;
    }
    return SLUICE_OK;
}

static int sampling_set_from_json(const json_t *o, const char *where, unsigned *set, jdec *d) {
    const json_t *a = NULL;
    int rc = jf_array(o, where, "set", true, &a, d);
    for (size_t i = 0; !rc && i < json_array_size(a); i++) {
        const char *name = json_string_value(json_array_get(a, i));
        size_t b = 0;
        while (name && b < NELEM(set_names) && strcmp(set_names[b], name) != 0)
            b++;
        if (!name || b == NELEM(set_names))
            rc = jf_fail(d, where, "set", "unknown field name");
        else
            *set |= 1u << b;
    }
    return rc;
}

static int sampling_stop_from_json(const json_t *o, const char *where, llm_sampling *s, jdec *d) {
    const json_t *a = NULL;
    int rc = jf_array(o, where, "stop", false, &a, d);
    if (rc || !a)
        return rc;
    if (json_array_size(a) > LLM_MAX_STOP)
        return jf_fail(d, where, "stop", "more than 4 stop sequences");
    for (size_t i = 0; i < json_array_size(a); i++) {
        char key[32];
        snprintf(key, sizeof key, "stop[%zu]", i);
        rc = jf_str_value(json_array_get(a, i), where, key, &s->stop[i], d);
        if (rc)
            return rc;
        s->n_stop = i + 1;
    }
    return SLUICE_OK;
}

static int sampling_decode(const json_t *j, const char *where, llm_sampling *s, jdec *d) {
    static const char *const keys[] = {"set",  "temperature", "top_p",           "max_new_tokens",
                                       "stop", "effort",      "thinking_budget", "json_mode",
                                       NULL};
    int effort = 0;
    int rc = jf_require_object(j, where, d);
    rc = rc ? rc : jf_check_keys(j, where, keys, d);
    rc = rc ? rc : sampling_set_from_json(j, where, &s->set, d);
    rc = rc ? rc : jf_double(j, where, "temperature", false, &s->temperature, d);
    rc = rc ? rc : jf_double(j, where, "top_p", false, &s->top_p, d);
    rc = rc ? rc : jf_u32(j, where, "max_new_tokens", false, &s->max_new_tokens, d);
    rc = rc ? rc : sampling_stop_from_json(j, where, s, d);
    rc =
        rc ? rc : jf_enum(j, where, "effort", false, effort_names, NELEM(effort_names), &effort, d);
    s->effort = (llm_effort)effort;
    rc = rc ? rc : jf_u32(j, where, "thinking_budget", false, &s->thinking_budget, d);
    rc = rc ? rc : jf_bool(j, where, "json_mode", false, &s->json_mode, d);
    return rc;
}

int codec_sampling_from_json(const json_t *j, llm_sampling *out, char *err, size_t errlen) {
    jdec d = {err, errlen};
    memset(out, 0, sizeof *out);
    int rc = sampling_decode(j, "", out, &d);
    if (rc)
        llm_sampling_cleanup(out);
    return rc;
}

static int request_decode(const json_t *j, llm_request *r, jdec *d) {
    static const char *const keys[] = {"messages", "tools",        "schema_name", "output_schema",
                                       "sampling", "prefer_model", NULL};
    const json_t *msgs = NULL, *tools = NULL, *sampling = NULL;
    int rc = jf_require_object(j, "", d);
    rc = rc ? rc : jf_check_keys(j, "", keys, d);
    rc = rc ? rc : jf_array(j, "", "messages", true, &msgs, d);
    rc = rc ? rc : messages_from_json(msgs, r, d);
    rc = rc ? rc : jf_array(j, "", "tools", false, &tools, d);
    rc = rc ? rc : tools_from_json(tools, r, d);
    rc = rc ? rc : jf_str(j, "", "schema_name", false, &r->schema_name, d);
    rc = rc ? rc : jf_str(j, "", "output_schema", false, &r->output_schema, d);
    rc = rc ? rc : jf_object(j, "", "sampling", false, &sampling, d);
    if (!rc && sampling)
        rc = sampling_decode(sampling, "sampling", &r->sampling, d);
    rc = rc ? rc : jf_str(j, "", "prefer_model", false, &r->prefer_model, d);
    return rc;
}

int codec_request_from_json(const json_t *j, llm_request **out, char *err, size_t errlen) {
    jdec d = {err, errlen};
    llm_request *r = llm_request_new();
    int rc = request_decode(j, r, &d);
    if (rc) {
        llm_request_free(r);
        return rc;
    }
    *out = r;
    return SLUICE_OK;
}

static int usage_decode(const json_t *j, llm_usage *u, jdec *d) {
    static const char *const keys[] = {"input_tokens", "output_tokens", "cache_read_tokens",
                                       "cache_write_tokens", NULL};
    int rc = jf_require_object(j, "usage", d);
    rc = rc ? rc : jf_check_keys(j, "usage", keys, d);
    rc = rc ? rc : jf_u64(j, "usage", "input_tokens", true, &u->input_tokens, d);
    rc = rc ? rc : jf_u64(j, "usage", "output_tokens", true, &u->output_tokens, d);
    rc = rc ? rc : jf_u64(j, "usage", "cache_read_tokens", true, &u->cache_read_tokens, d);
    rc = rc ? rc : jf_u64(j, "usage", "cache_write_tokens", true, &u->cache_write_tokens, d);
    return rc;
}

static int attempt_decode(const json_t *j, const char *where, llm_attempt *a, jdec *d) {
    static const char *const keys[] = {"model",          "status_code", "latency_ms",
                                       "retry_after_ms", "error",       NULL};
    int rc = jf_require_object(j, where, d);
    rc = rc ? rc : jf_check_keys(j, where, keys, d);
    rc = rc ? rc : jf_str(j, where, "model", false, &a->model, d);
    rc = rc ? rc : jf_int(j, where, "status_code", true, &a->status_code, d);
    rc = rc ? rc : jf_u32(j, where, "latency_ms", true, &a->latency_ms, d);
    rc = rc ? rc : jf_u32(j, where, "retry_after_ms", true, &a->retry_after_ms, d);
    rc = rc ? rc : jf_str(j, where, "error", false, &a->error, d);
    return rc;
}

static int attempts_decode(const json_t *a, llm_response *r, jdec *d) {
    size_t count = json_array_size(a);
    r->attempts = count ? XNEWV(llm_attempt, count) : NULL;
    for (size_t i = 0; i < count; i++) {
        char w[64];
        snprintf(w, sizeof w, "attempts[%zu]", i);
        int rc = attempt_decode(json_array_get(a, i), w, &r->attempts[i], d);
        r->n_attempts = i + 1;
        if (rc)
            return rc;
    }
    return SLUICE_OK;
}

static int response_scalars_decode(const json_t *j, llm_response *r, jdec *d) {
    int kind = 0;
    int rc = jf_bool(j, "", "is_error", true, &r->is_error, d);
    rc = rc ? rc
            : jf_enum(j, "", "error_kind", true, error_kind_names, NELEM(error_kind_names), &kind,
                      d);
    r->error_kind = (llm_error_kind)kind;
    rc = rc ? rc : jf_int(j, "", "status_code", true, &r->status_code, d);
    rc = rc ? rc : jf_double(j, "", "cost", true, &r->cost, d);
    rc = rc ? rc : jf_double(j, "", "cost_saved", true, &r->cost_saved, d);
    rc = rc ? rc : jf_bool(j, "", "local_cache_hit", true, &r->local_cache_hit, d);
    rc = rc ? rc : jf_bool(j, "", "deduplicated", true, &r->deduplicated, d);
    rc = rc ? rc : jf_u32(j, "", "latency_ms", true, &r->latency_ms, d);
    return rc;
}

static int response_decode(const json_t *j, llm_response *r, jdec *d) {
    static const char *const keys[] = {
        "is_error",     "error_kind",      "status_code", "error_message", "completion",
        "content",      "finish_reason",   "thinking",    "usage",         "cost",
        "cost_saved",   "model_requested", "model_used",  "attempts",      "local_cache_hit",
        "deduplicated", "latency_ms",      NULL};
    const json_t *content = NULL, *usage = NULL, *attempts = NULL;
    int rc = jf_require_object(j, "", d);
    rc = rc ? rc : jf_check_keys(j, "", keys, d);
    rc = rc ? rc : response_scalars_decode(j, r, d);
    rc = rc ? rc : jf_str(j, "", "error_message", false, &r->error_message, d);
    rc = rc ? rc : jf_str(j, "", "completion", false, &r->completion, d);
    rc = rc ? rc : jf_array(j, "", "content", false, &content, d);
    if (!rc && content)
        rc = parts_from_json(content, "content", &r->content, &r->n_content, d);
    if (!rc && !json_object_get(j, "completion"))
        r->completion = text_join(r->content, r->n_content);
    rc = rc ? rc : jf_str(j, "", "finish_reason", false, &r->finish_reason, d);
    rc = rc ? rc : jf_str(j, "", "thinking", false, &r->thinking, d);
    rc = rc ? rc : jf_object(j, "", "usage", true, &usage, d);
    rc = rc ? rc : usage_decode(usage, &r->usage, d);
    rc = rc ? rc : jf_str(j, "", "model_requested", false, &r->model_requested, d);
    rc = rc ? rc : jf_str(j, "", "model_used", false, &r->model_used, d);
    rc = rc ? rc : jf_array(j, "", "attempts", false, &attempts, d);
    rc = rc ? rc : attempts_decode(attempts, r, d);
    return rc;
}

int codec_response_from_json(const json_t *j, llm_response **out, char *err, size_t errlen) {
    jdec d = {err, errlen};
    llm_response *r = llm_response_new();
    int rc = response_decode(j, r, &d);
    if (rc) {
        llm_response_free(r);
        return rc;
    }
    *out = r;
    return SLUICE_OK;
}
