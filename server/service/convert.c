/*
 * Proto <-> internal conversion (see convert.h). Incoming text fields are copied; JSON
 * texts (tool schemas, output schemas, tool arguments) are copied as sent (empty -> NULL):
 * llm_request_validate checks them and the cache key hashes them in canonical form, so
 * equal requests compare equal downstream. Outgoing trees are built from malloc'd copies
 * so one free_unpacked call releases them, and their strings are always valid UTF-8.
 */
#include "convert.h"

#include "server/common/alloc.h"
#include "server/common/utf8.h"
#include "sluice/status.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- proto -> internal -------------------------------------------------------------- */

static const llm_effort effort_map[] = {
    [SLUICE__V1__REASONING_EFFORT__REASONING_EFFORT_NONE] = LLM_EFFORT_NONE,
    [SLUICE__V1__REASONING_EFFORT__REASONING_EFFORT_MINIMAL] = LLM_EFFORT_MINIMAL,
    [SLUICE__V1__REASONING_EFFORT__REASONING_EFFORT_LOW] = LLM_EFFORT_LOW,
    [SLUICE__V1__REASONING_EFFORT__REASONING_EFFORT_MEDIUM] = LLM_EFFORT_MEDIUM,
    [SLUICE__V1__REASONING_EFFORT__REASONING_EFFORT_HIGH] = LLM_EFFORT_HIGH,
    [SLUICE__V1__REASONING_EFFORT__REASONING_EFFORT_XHIGH] = LLM_EFFORT_XHIGH,
};

int convert_sampling(const Sluice__V1__SamplingParams *p, llm_sampling *out, const char *where,
                     char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!p)
        return 0;
    if (p->n_stop > LLM_MAX_STOP) {
        snprintf(err, errlen, "%s.stop: at most %d stop sequences", where, LLM_MAX_STOP);
        return SLUICE_EINVAL;
    }
    if (p->temperature) {
        out->temperature = p->temperature->value;
        out->set |= LLM_SET_TEMPERATURE;
    }
    if (p->top_p) {
        out->top_p = p->top_p->value;
        out->set |= LLM_SET_TOP_P;
    }
    if (p->max_new_tokens) {
        out->max_new_tokens = p->max_new_tokens;
        out->set |= LLM_SET_MAX_NEW_TOKENS;
    }
    if (p->n_stop) {
        out->n_stop = p->n_stop;
        for (size_t i = 0; i < p->n_stop; i++)
            out->stop[i] = xstrdup(p->stop[i]);
        out->set |= LLM_SET_STOP;
    }
    if (p->reasoning_effort > 0 &&
        (size_t)p->reasoning_effort < sizeof effort_map / sizeof *effort_map) {
        out->effort = effort_map[p->reasoning_effort];
        out->set |= LLM_SET_EFFORT;
    }
    if (p->thinking_budget) {
        out->thinking_budget = p->thinking_budget;
        out->set |= LLM_SET_THINKING_BUDGET;
    }
    if (p->json_mode) {
        out->json_mode = p->json_mode->value;
        out->set |= LLM_SET_JSON_MODE;
    }
    return 0;
}

static const cache_mode cache_map[] = {
    [SLUICE__V1__CACHE_MODE__CACHE_MODE_UNSPECIFIED] = CACHE_MODE_READ_WRITE,
    [SLUICE__V1__CACHE_MODE__CACHE_MODE_READ_WRITE] = CACHE_MODE_READ_WRITE,
    [SLUICE__V1__CACHE_MODE__CACHE_MODE_READ_ONLY] = CACHE_MODE_READ_ONLY,
    [SLUICE__V1__CACHE_MODE__CACHE_MODE_WRITE_ONLY] = CACHE_MODE_WRITE_ONLY,
    [SLUICE__V1__CACHE_MODE__CACHE_MODE_OFF] = CACHE_MODE_OFF,
};

int convert_session_config(const Sluice__V1__SessionConfig *p, const char *tenant,
                           dsession_config *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!p) {
        snprintf(err, errlen, "config: missing");
        return SLUICE_EINVAL;
    }
    if (p->cache_mode < 0 || (size_t)p->cache_mode >= sizeof cache_map / sizeof *cache_map) {
        snprintf(err, errlen, "config.cache_mode: unknown value %d", (int)p->cache_mode);
        return SLUICE_EINVAL;
    }
    out->tenant = xstrdup(tenant ? tenant : "");
    out->name = p->name && *p->name ? xstrdup(p->name) : NULL;
    out->max_requests_per_minute = p->max_requests_per_minute;
    out->max_tokens_per_minute = p->max_tokens_per_minute;
    out->max_concurrent = p->max_concurrent_requests;
    out->max_attempts = p->max_attempts;
    out->request_timeout_ms = p->request_timeout_ms;
    out->task_timeout_ms = p->task_timeout_ms;
    out->cache_mode = cache_map[p->cache_mode];
    int rc = convert_sampling(p->sampling, &out->sampling, "config.sampling", err, errlen);
    out->models = XNEWV(dsession_model, p->n_models);
    out->n_models = p->n_models;
    for (size_t i = 0; i < p->n_models; i++) {
        const Sluice__V1__ModelChoice *m = p->models[i];
        out->models[i].name = xstrdup(m->name ? m->name : "");
        out->models[i].weight = m->weight;
        char where[48];
        snprintf(where, sizeof where, "config.models[%zu].sampling", i);
        int mrc = convert_sampling(m->sampling, &out->models[i].sampling, where, err, errlen);
        if (!rc)
            rc = mrc;
    }
    if (rc)
        dsession_config_cleanup(out);
    return rc;
}

/* JSON text copied as sent: llm_request_validate checks it, and the cache key and the
 * adapters parse it (the key in canonical form), so it is not re-serialised here. */
static char *json_field(const char *text) {
    return text && *text ? xstrdup(text) : NULL;
}

static const llm_role role_map[] = {
    [SLUICE__V1__ROLE__ROLE_SYSTEM] = LLM_ROLE_SYSTEM,
    [SLUICE__V1__ROLE__ROLE_USER] = LLM_ROLE_USER,
    [SLUICE__V1__ROLE__ROLE_ASSISTANT] = LLM_ROLE_ASSISTANT,
    [SLUICE__V1__ROLE__ROLE_TOOL] = LLM_ROLE_TOOL,
};

static void convert_part(const Sluice__V1__Part *p, llm_part *out) {
    memset(out, 0, sizeof *out);
    switch (p->kind_case) {
    case SLUICE__V1__PART__KIND_TEXT:
        out->kind = LLM_PART_TEXT;
        out->text = xstrdup(p->text->text ? p->text->text : "");
        break;
    case SLUICE__V1__PART__KIND_IMAGE:
        out->kind = LLM_PART_IMAGE;
        if (p->image->source_case == SLUICE__V1__IMAGE_PART__SOURCE_URL)
            out->url = xstrdup(p->image->url);
        if (p->image->source_case == SLUICE__V1__IMAGE_PART__SOURCE_DATA && p->image->data.len) {
            out->data = xmemdup(p->image->data.data, p->image->data.len);
            out->data_len = p->image->data.len;
        }
        out->media_type = *p->image->media_type ? xstrdup(p->image->media_type) : NULL;
        out->detail = *p->image->detail ? xstrdup(p->image->detail) : NULL;
        break;
    case SLUICE__V1__PART__KIND_TOOL_CALL:
        out->kind = LLM_PART_TOOL_CALL;
        out->id = xstrdup(p->tool_call->id);
        out->name = xstrdup(p->tool_call->name);
        out->arguments = json_field(p->tool_call->arguments_json);
        break;
    case SLUICE__V1__PART__KIND_TOOL_RESULT:
        out->kind = LLM_PART_TOOL_RESULT;
        out->id = xstrdup(p->tool_result->tool_call_id);
        out->text = xstrdup(p->tool_result->content);
        out->is_error = p->tool_result->is_error;
        break;
    case SLUICE__V1__PART__KIND_THINKING:
        out->kind = LLM_PART_THINKING;
        out->text = xstrdup(p->thinking->text);
        out->signature = *p->thinking->signature ? xstrdup(p->thinking->signature) : NULL;
        break;
    default:
        out->kind = 0; /* validation reports "part has no kind" */
        break;
    }
}

static void convert_messages(const Sluice__V1__Prompt *p, llm_request *r) {
    if (p->n_messages == 0 && p->text && *p->text) {
        llm_request_add_text(r, LLM_ROLE_USER, p->text);
        return;
    }
    r->messages = XNEWV(llm_message, p->n_messages);
    r->n_messages = p->n_messages;
    for (size_t i = 0; i < p->n_messages; i++) {
        const Sluice__V1__Message *m = p->messages[i];
        llm_message *o = &r->messages[i];
        o->role = (m->role > 0 && (size_t)m->role < sizeof role_map / sizeof *role_map)
                      ? role_map[m->role]
                      : 0;
        o->parts = XNEWV(llm_part, m->n_parts);
        o->n_parts = m->n_parts;
        for (size_t j = 0; j < m->n_parts; j++)
            convert_part(m->parts[j], &o->parts[j]);
    }
}

static void convert_tools(Sluice__V1__ToolDefinition *const *tools, size_t n, llm_request *r) {
    r->tools = XNEWV(llm_tool, n);
    r->n_tools = n;
    for (size_t i = 0; i < n; i++) {
        r->tools[i].name = xstrdup(tools[i]->name);
        r->tools[i].description = *tools[i]->description ? xstrdup(tools[i]->description) : NULL;
        r->tools[i].parameters = json_field(tools[i]->parameters_json);
        r->tools[i].strict = tools[i]->strict;
    }
}

int convert_prompt(const Sluice__V1__Prompt *p, const Sluice__V1__BatchHeader *header,
                   llm_request **out, char *err, size_t errlen) {
    llm_request *r = llm_request_new();
    convert_messages(p, r);
    if (p->n_tools)
        convert_tools(p->tools, p->n_tools, r);
    else if (header && header->n_tools)
        convert_tools(header->tools, header->n_tools, r);
    const Sluice__V1__OutputSchema *schema = p->output_schema ? p->output_schema
                                             : header         ? header->output_schema
                                                              : NULL;
    if (schema && schema->schema_json && *schema->schema_json) {
        r->schema_name = xstrdup(*schema->name ? schema->name : "response");
        r->output_schema = json_field(schema->schema_json);
    }
    r->prefer_model = p->prefer_model && *p->prefer_model ? xstrdup(p->prefer_model) : NULL;
    int rc = convert_sampling(p->sampling, &r->sampling, "sampling", err, errlen);
    if (!rc)
        rc = llm_request_validate(r, err, errlen);
    if (rc) {
        llm_request_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* ---- internal -> proto -------------------------------------------------------------- */

/* Every string sluiced sends goes through here: proto3 strings must be UTF-8, and one that
 * is not makes strict clients (Python, ...) refuse the whole message. Requests are checked
 * at the edge, but answers also carry text from elsewhere (records stored by an older
 * sluiced, provider text cut at a byte limit): ill-formed bytes become U+FFFD. */
static char *dup_or_empty(const char *s) {
    return utf8_dup_valid(s);
}

static Sluice__V1__Part *part_to_proto(const llm_part *p) {
    Sluice__V1__Part *o = XNEW(Sluice__V1__Part);
    sluice__v1__part__init(o);
    switch (p->kind) {
    case LLM_PART_TEXT:
        o->kind_case = SLUICE__V1__PART__KIND_TEXT;
        o->text = XNEW(Sluice__V1__TextPart);
        sluice__v1__text_part__init(o->text);
        o->text->text = dup_or_empty(p->text);
        break;
    case LLM_PART_TOOL_CALL:
        o->kind_case = SLUICE__V1__PART__KIND_TOOL_CALL;
        o->tool_call = XNEW(Sluice__V1__ToolCall);
        sluice__v1__tool_call__init(o->tool_call);
        o->tool_call->id = dup_or_empty(p->id);
        o->tool_call->name = dup_or_empty(p->name);
        o->tool_call->arguments_json = dup_or_empty(p->arguments);
        break;
    case LLM_PART_THINKING:
        o->kind_case = SLUICE__V1__PART__KIND_THINKING;
        o->thinking = XNEW(Sluice__V1__ThinkingPart);
        sluice__v1__thinking_part__init(o->thinking);
        o->thinking->text = dup_or_empty(p->text);
        o->thinking->signature = dup_or_empty(p->signature);
        break;
    case LLM_PART_TOOL_RESULT:
        o->kind_case = SLUICE__V1__PART__KIND_TOOL_RESULT;
        o->tool_result = XNEW(Sluice__V1__ToolResult);
        sluice__v1__tool_result__init(o->tool_result);
        o->tool_result->tool_call_id = dup_or_empty(p->id);
        o->tool_result->content = dup_or_empty(p->text);
        o->tool_result->is_error = p->is_error;
        break;
    default: /* images never appear in answers */
        break;
    }
    return o;
}

static Sluice__V1__Attempt *attempt_to_proto(const llm_attempt *a) {
    Sluice__V1__Attempt *o = XNEW(Sluice__V1__Attempt);
    sluice__v1__attempt__init(o);
    o->model = dup_or_empty(a->model);
    o->status_code = a->status_code > 0 ? (uint32_t)a->status_code : 0;
    o->latency_ms = a->latency_ms;
    o->retry_after_ms = a->retry_after_ms;
    o->error = dup_or_empty(a->error);
    return o;
}

Sluice__V1__Response *convert_response(const llm_response *r) {
    Sluice__V1__Response *o = XNEW(Sluice__V1__Response);
    sluice__v1__response__init(o);
    o->completion = dup_or_empty(r->completion);
    o->n_content = r->n_content;
    o->content = r->n_content ? XNEWV(Sluice__V1__Part *, r->n_content) : NULL;
    for (size_t i = 0; i < r->n_content; i++)
        o->content[i] = part_to_proto(&r->content[i]);
    o->finish_reason = dup_or_empty(r->finish_reason);
    o->usage = XNEW(Sluice__V1__Usage);
    sluice__v1__usage__init(o->usage);
    o->usage->input_tokens = r->usage.input_tokens;
    o->usage->output_tokens = r->usage.output_tokens;
    o->usage->cache_read_tokens = r->usage.cache_read_tokens;
    o->usage->cache_write_tokens = r->usage.cache_write_tokens;
    o->cost = r->cost;
    o->cost_saved = r->cost_saved;
    o->model_requested = dup_or_empty(r->model_requested);
    o->model_used = dup_or_empty(r->model_used);
    o->status_code = r->status_code > 0 ? (uint32_t)r->status_code : 0;
    o->is_error = r->is_error;
    o->error_message = dup_or_empty(r->error_message);
    o->error_kind = (Sluice__V1__ErrorKind)r->error_kind;
    o->n_attempts = r->n_attempts;
    o->attempts = r->n_attempts ? XNEWV(Sluice__V1__Attempt *, r->n_attempts) : NULL;
    for (size_t i = 0; i < r->n_attempts; i++)
        o->attempts[i] = attempt_to_proto(&r->attempts[i]);
    o->local_cache_hit = r->local_cache_hit;
    o->deduplicated = r->deduplicated;
    o->latency_ms = r->latency_ms;
    o->thinking = dup_or_empty(r->thinking);
    return o;
}

Sluice__V1__TrackerStatus *convert_status(const dsession_status *st, const char *session_id,
                                          const char *name) {
    Sluice__V1__TrackerStatus *o = XNEW(Sluice__V1__TrackerStatus);
    sluice__v1__tracker_status__init(o);
    o->session_id = dup_or_empty(session_id);
    o->name = dup_or_empty(name);
    o->total = st->total;
    o->started = st->started;
    o->in_progress = st->in_progress;
    o->succeeded = st->succeeded;
    o->failed = st->failed;
    o->cached = st->cached;
    o->cancelled = st->cancelled;
    o->rate_limit_errors = st->rate_limit_errors;
    o->attempts = st->attempts;
    o->input_tokens = st->input_tokens;
    o->output_tokens = st->output_tokens;
    o->cache_read_tokens = st->cache_read_tokens;
    o->cache_write_tokens = st->cache_write_tokens;
    o->cost = st->cost;
    o->cost_saved = st->cost_saved;
    o->limiting_factor = (Sluice__V1__LimitingFactor)st->limiting_factor;
    o->queued = st->queued;
    o->elapsed_s = st->elapsed_s;
    o->deduplicated = st->deduplicated;
    return o;
}

static const Sluice__V1__TaskState state_map[] = {
    [STORE_TASK_QUEUED] = SLUICE__V1__TASK_STATE__TASK_STATE_QUEUED,
    [STORE_TASK_RUNNING] = SLUICE__V1__TASK_STATE__TASK_STATE_RUNNING,
    [STORE_TASK_SUCCEEDED] = SLUICE__V1__TASK_STATE__TASK_STATE_SUCCEEDED,
    [STORE_TASK_FAILED] = SLUICE__V1__TASK_STATE__TASK_STATE_FAILED,
    [STORE_TASK_CANCELLED] = SLUICE__V1__TASK_STATE__TASK_STATE_CANCELLED,
};

Sluice__V1__TaskResult *convert_task_result(const char *task_id, store_task_state state,
                                            const llm_response *r, uint64_t index,
                                            const char *custom_id) {
    Sluice__V1__TaskResult *o = XNEW(Sluice__V1__TaskResult);
    sluice__v1__task_result__init(o);
    o->task_id = dup_or_empty(task_id);
    o->state = state >= STORE_TASK_QUEUED && state <= STORE_TASK_CANCELLED
                   ? state_map[state]
                   : SLUICE__V1__TASK_STATE__TASK_STATE_UNSPECIFIED;
    o->response = r ? convert_response(r) : NULL;
    o->index = index;
    o->custom_id = dup_or_empty(custom_id);
    return o;
}

Sluice__V1__TaskResult *convert_not_found(const char *task_id) {
    Sluice__V1__TaskResult *o = XNEW(Sluice__V1__TaskResult);
    sluice__v1__task_result__init(o);
    o->task_id = dup_or_empty(task_id);
    o->state = SLUICE__V1__TASK_STATE__TASK_STATE_NOT_FOUND;
    o->custom_id = xstrdup("");
    Sluice__V1__Response *e = XNEW(Sluice__V1__Response);
    sluice__v1__response__init(e);
    e->is_error = true;
    e->error_kind = SLUICE__V1__ERROR_KIND__ERROR_KIND_NOT_FOUND;
    e->error_message = xasprintf("task '%s' not found", o->task_id);
    o->response = e;
    return o;
}

void convert_drop_text_parts(Sluice__V1__Response *r) {
    size_t k = 0;
    for (size_t i = 0; i < r->n_content; i++) {
        if (r->content[i]->kind_case == SLUICE__V1__PART__KIND_TEXT)
            protobuf_c_message_free_unpacked(&r->content[i]->base, NULL);
        else
            r->content[k++] = r->content[i];
    }
    r->n_content = k;
}

/* ---- ids ---------------------------------------------------------------------------- */

char *convert_format_id(const char *node, char kind, uint64_t n) {
    return xasprintf("%s:%c%" PRIu64, node, kind, n);
}

int convert_parse_id(const char *node, char kind, const char *id, uint64_t *n) {
    if (!id)
        return -1;
    size_t nl = strlen(node);
    if (strncmp(id, node, nl) != 0 || id[nl] != ':' || id[nl + 1] != kind)
        return -1;
    const char *digits = id + nl + 2;
    if (!*digits || strlen(digits) > 20 || strspn(digits, "0123456789") != strlen(digits))
        return -1;
    char *end;
    unsigned long long v = strtoull(digits, &end, 10);
    if (*end || v == 0)
        return -1;
    *n = v;
    return 0;
}
