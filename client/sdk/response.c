/* Responses: a thin owner of a sluice.v1.Response plus the task id, index and custom id. */
#include "sdk_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sluice_response *sdk_response_new(Sluice__V1__Response *msg, const char *task_id,
                                  const char *custom_id, uint64_t index) {
    sluice_response *r = calloc(1, sizeof *r);
    if (!r) {
        if (msg)
            protobuf_c_message_free_unpacked(&msg->base, NULL);
        return NULL;
    }
    if (!msg) {
        msg = malloc(sizeof *msg);
        if (msg)
            sluice__v1__response__init(msg);
    }
    r->msg = msg;
    r->task_id = sdk_strdup(task_id);
    r->custom_id = sdk_strdup(custom_id);
    r->index = index;
    if (!r->msg || !r->task_id || !r->custom_id) {
        sluice_response_free(r);
        return NULL;
    }
    return r;
}

int sdk_response_take(Sluice__V1__Response **msg, const char *task_id, const char *custom_id,
                      uint64_t index, sluice_response **out) {
    sluice_response *r = calloc(1, sizeof *r);
    if (r) {
        r->task_id = sdk_strdup(task_id);
        r->custom_id = sdk_strdup(custom_id);
        r->index = index;
    }
    if (!r || !r->task_id || !r->custom_id) {
        sluice_response_free(r);
        return SLUICE_ENOMEM;
    }
    r->msg = *msg;
    *msg = NULL;
    *out = r;
    return 0;
}

void sluice_response_free(sluice_response *r) {
    if (!r)
        return;
    if (r->msg)
        protobuf_c_message_free_unpacked(&r->msg->base, NULL);
    free(r->task_id);
    free(r->custom_id);
    free(r);
}

void sluice_responses_free(sluice_response **rs, size_t n) {
    if (!rs)
        return;
    for (size_t i = 0; i < n; i++)
        sluice_response_free(rs[i]);
    free(rs);
}

static const char *str(const char *s) {
    return s ? s : "";
}

const char *sluice_response_completion(const sluice_response *r) {
    return str(r->msg->completion);
}

bool sluice_response_is_error(const sluice_response *r) {
    return r->msg->is_error;
}

const char *sluice_response_error_message(const sluice_response *r) {
    return str(r->msg->error_message);
}

sluice_error_kind sluice_response_error_kind(const sluice_response *r) {
    return (sluice_error_kind)r->msg->error_kind;
}

uint32_t sluice_response_status_code(const sluice_response *r) {
    return r->msg->status_code;
}

const char *sluice_response_finish_reason(const sluice_response *r) {
    return str(r->msg->finish_reason);
}

const char *sluice_response_model_used(const sluice_response *r) {
    return str(r->msg->model_used);
}

const char *sluice_response_model_requested(const sluice_response *r) {
    return str(r->msg->model_requested);
}

const char *sluice_response_thinking(const sluice_response *r) {
    return str(r->msg->thinking);
}

sluice_usage sluice_response_usage(const sluice_response *r) {
    sluice_usage u = {0, 0, 0, 0};
    if (r->msg->usage) {
        u.input_tokens = r->msg->usage->input_tokens;
        u.output_tokens = r->msg->usage->output_tokens;
        u.cache_read_tokens = r->msg->usage->cache_read_tokens;
        u.cache_write_tokens = r->msg->usage->cache_write_tokens;
    }
    return u;
}

double sluice_response_cost(const sluice_response *r) {
    return r->msg->cost;
}

double sluice_response_cost_saved(const sluice_response *r) {
    return r->msg->cost_saved;
}

bool sluice_response_local_cache_hit(const sluice_response *r) {
    return r->msg->local_cache_hit;
}

bool sluice_response_deduplicated(const sluice_response *r) {
    return r->msg->deduplicated;
}

uint32_t sluice_response_latency_ms(const sluice_response *r) {
    return r->msg->latency_ms;
}

size_t sluice_response_n_attempts(const sluice_response *r) {
    return r->msg->n_attempts;
}

sluice_attempt sluice_response_attempt(const sluice_response *r, size_t i) {
    sluice_attempt a = {"", 0, 0, 0, ""};
    if (i < r->msg->n_attempts) {
        const Sluice__V1__Attempt *x = r->msg->attempts[i];
        a.model = str(x->model);
        a.status_code = x->status_code;
        a.latency_ms = x->latency_ms;
        a.retry_after_ms = x->retry_after_ms;
        a.error = str(x->error);
    }
    return a;
}

/* The i-th tool-call part, or NULL. */
static const Sluice__V1__ToolCall *nth_tool_call(const sluice_response *r, size_t i) {
    for (size_t k = 0; k < r->msg->n_content; k++) {
        const Sluice__V1__Part *p = r->msg->content[k];
        if (p->kind_case == SLUICE__V1__PART__KIND_TOOL_CALL && i-- == 0)
            return p->tool_call;
    }
    return NULL;
}

size_t sluice_response_n_tool_calls(const sluice_response *r) {
    size_t n = 0;
    for (size_t k = 0; k < r->msg->n_content; k++)
        n += r->msg->content[k]->kind_case == SLUICE__V1__PART__KIND_TOOL_CALL;
    return n;
}

int sluice_response_tool_call(const sluice_response *r, size_t i, const char **id,
                              const char **name, const char **arguments_json) {
    const Sluice__V1__ToolCall *tc = nth_tool_call(r, i);
    if (!tc)
        return sdk_fail(SLUICE_EINVAL, "no tool call %zu", i);
    if (id)
        *id = str(tc->id);
    if (name)
        *name = str(tc->name);
    if (arguments_json)
        *arguments_json = str(tc->arguments_json);
    return 0;
}

const char *sluice_response_task_id(const sluice_response *r) {
    return str(r->task_id);
}

uint64_t sluice_response_index(const sluice_response *r) {
    return r->index;
}

const char *sluice_response_custom_id(const sluice_response *r) {
    return str(r->custom_id);
}

void sdk_tracker_from(sluice_tracker *out, const Sluice__V1__TrackerStatus *st) {
    memset(out, 0, sizeof *out);
    if (!st)
        return;
    snprintf(out->session_id, sizeof out->session_id, "%s", str(st->session_id));
    out->total = st->total;
    out->started = st->started;
    out->in_progress = st->in_progress;
    out->succeeded = st->succeeded;
    out->failed = st->failed;
    out->cached = st->cached;
    out->cancelled = st->cancelled;
    out->rate_limit_errors = st->rate_limit_errors;
    out->attempts = st->attempts;
    out->queued = st->queued;
    out->deduplicated = st->deduplicated;
    out->input_tokens = st->input_tokens;
    out->output_tokens = st->output_tokens;
    out->cache_read_tokens = st->cache_read_tokens;
    out->cache_write_tokens = st->cache_write_tokens;
    out->cost = st->cost;
    out->cost_saved = st->cost_saved;
    out->elapsed_s = st->elapsed_s;
    out->limiting_factor = (int)st->limiting_factor;
}
