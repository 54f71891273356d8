/* Internal request/response types: lifetime, copying, merging, estimates, validation. */
#include "llm.h"

#include "alloc.h"
#include "utf8.h"
#include "sluice/status.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void llm_part_cleanup(llm_part *p) {
    if (!p)
        return;
    free(p->text);
    free(p->id);
    free(p->name);
    free(p->arguments);
    free(p->url);
    free(p->data);
    free(p->media_type);
    free(p->detail);
    free(p->signature);
    memset(p, 0, sizeof *p);
}

void llm_part_copy(llm_part *dst, const llm_part *src) {
    dst->kind = src->kind;
    dst->text = xstrdup(src->text);
    dst->id = xstrdup(src->id);
    dst->name = xstrdup(src->name);
    dst->arguments = xstrdup(src->arguments);
    dst->url = xstrdup(src->url);
    dst->data = src->data ? xmemdup(src->data, src->data_len) : NULL;
    dst->data_len = src->data_len;
    dst->media_type = xstrdup(src->media_type);
    dst->detail = xstrdup(src->detail);
    dst->signature = xstrdup(src->signature);
    dst->is_error = src->is_error;
}

void llm_message_cleanup(llm_message *m) {
    if (!m)
        return;
    for (size_t i = 0; i < m->n_parts; i++)
        llm_part_cleanup(&m->parts[i]);
    free(m->parts);
    memset(m, 0, sizeof *m);
}

void llm_tool_cleanup(llm_tool *t) {
    if (!t)
        return;
    free(t->name);
    free(t->description);
    free(t->parameters);
    memset(t, 0, sizeof *t);
}

void llm_sampling_cleanup(llm_sampling *s) {
    if (!s)
        return;
    for (size_t i = 0; i < s->n_stop; i++)
        free(s->stop[i]);
    memset(s, 0, sizeof *s);
}

void llm_sampling_copy(llm_sampling *dst, const llm_sampling *src) {
    *dst = *src;
    for (size_t i = 0; i < src->n_stop; i++)
        dst->stop[i] = xstrdup(src->stop[i]);
}

llm_request *llm_request_new(void) {
    return XNEW(llm_request);
}

void llm_request_add_text(llm_request *r, llm_role role, const char *text) {
    r->messages = xrealloc(r->messages, (r->n_messages + 1) * sizeof *r->messages);
    llm_message *m = &r->messages[r->n_messages++];
    *m = (llm_message){.role = role, .parts = XNEW(llm_part), .n_parts = 1};
    m->parts[0] = (llm_part){.kind = LLM_PART_TEXT, .text = xstrdup(text)};
}

void llm_request_free(llm_request *r) {
    if (!r)
        return;
    for (size_t i = 0; i < r->n_messages; i++)
        llm_message_cleanup(&r->messages[i]);
    free(r->messages);
    for (size_t i = 0; i < r->n_tools; i++)
        llm_tool_cleanup(&r->tools[i]);
    free(r->tools);
    free(r->schema_name);
    free(r->output_schema);
    llm_sampling_cleanup(&r->sampling);
    free(r->prefer_model);
    free(r);
}

/* Copies the fields `from` sets into *out (whose stop strings it owns). */
static void sampling_apply(llm_sampling *out, const llm_sampling *from) {
    if (!from)
        return;
    if (from->set & LLM_SET_TEMPERATURE)
        out->temperature = from->temperature;
    if (from->set & LLM_SET_TOP_P)
        out->top_p = from->top_p;
    if (from->set & LLM_SET_MAX_NEW_TOKENS)
        out->max_new_tokens = from->max_new_tokens;
    if (from->set & LLM_SET_STOP) {
        for (size_t i = 0; i < out->n_stop; i++)
            free(out->stop[i]);
        out->n_stop = from->n_stop;
        for (size_t i = 0; i < from->n_stop; i++)
            out->stop[i] = xstrdup(from->stop[i]);
    }
    if (from->set & LLM_SET_EFFORT)
        out->effort = from->effort;
    if (from->set & LLM_SET_THINKING_BUDGET)
        out->thinking_budget = from->thinking_budget;
    if (from->set & LLM_SET_JSON_MODE)
        out->json_mode = from->json_mode;
    out->set |= from->set;
}

void llm_sampling_merge(llm_sampling *out, const llm_sampling *base, const llm_sampling *override) {
    memset(out, 0, sizeof *out);
    out->temperature = LLM_DEFAULT_TEMPERATURE;
    out->top_p = LLM_DEFAULT_TOP_P;
    out->max_new_tokens = LLM_DEFAULT_MAX_NEW_TOKENS;
    sampling_apply(out, base);
    sampling_apply(out, override);
}

/* Unicode code points in a UTF-8 string (continuation bytes are not counted). */
static uint64_t utf8_code_points(const char *s) {
    uint64_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += (*p & 0xC0) != 0x80;
    return n;
}

uint64_t llm_request_estimate_tokens(const llm_request *r, uint32_t max_new_tokens) {
    uint64_t n = max_new_tokens;
    for (size_t i = 0; i < r->n_messages; i++) {
        const llm_message *m = &r->messages[i];
        n += 6;
        for (size_t j = 0; j < m->n_parts; j++) {
            const llm_part *p = &m->parts[j];
            if (p->kind == LLM_PART_TEXT)
                n += (p->text ? utf8_code_points(p->text) : 0) / 4;
            else
                n += 85;
        }
    }
    return n;
}

/* Whether text is one JSON object (duplicate keys refused: they are ambiguous); *why says
 * what is wrong otherwise. jansson's reason quotes the text near the error, possibly cut
 * inside a character: it is scrubbed, since it ends up in Response.error_message. */
static bool is_json_object(const char *text, const char **why, json_error_t *e) {
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, e);
    if (!j)
        utf8_scrub(e->text);
    bool ok = j && json_is_object(j);
    *why = !j ? e->text : ok ? "" : "not an object";
    json_decref(j);
    return ok;
}

static int part_validate(const llm_message *m, const llm_part *p, char *err, size_t errlen,
                         const char *where) {
    const char *why;
    json_error_t je;
    switch (p->kind) {
    case LLM_PART_TEXT:
        if (!p->text) {
            snprintf(err, errlen, "%s: text part without text", where);
            return SLUICE_EINVAL;
        }
        return 0;
    case LLM_PART_IMAGE:
        if (m->role == LLM_ROLE_SYSTEM || m->role == LLM_ROLE_ASSISTANT) {
            snprintf(err, errlen, "%s: images are only allowed in user and tool messages", where);
            return SLUICE_EINVAL;
        }
        if (!(p->url && *p->url) && !(p->data && p->data_len)) {
            snprintf(err, errlen, "%s: image needs a url or data", where);
            return SLUICE_EINVAL;
        }
        if (p->data && !(p->media_type && *p->media_type)) {
            snprintf(err, errlen, "%s: image data needs a media_type", where);
            return SLUICE_EINVAL;
        }
        return 0;
    case LLM_PART_TOOL_CALL:
        if (m->role != LLM_ROLE_ASSISTANT) {
            snprintf(err, errlen, "%s: tool calls are only allowed in assistant messages", where);
            return SLUICE_EINVAL;
        }
        if (!(p->name && *p->name) || !(p->id && *p->id)) {
            snprintf(err, errlen, "%s: tool call needs an id and a name", where);
            return SLUICE_EINVAL;
        }
        if (p->arguments && *p->arguments && !is_json_object(p->arguments, &why, &je)) {
            snprintf(err, errlen, "%s: tool call arguments_json is not a JSON object (%s)", where,
                     why);
            return SLUICE_EINVAL;
        }
        return 0;
    case LLM_PART_TOOL_RESULT:
        if (m->role != LLM_ROLE_TOOL && m->role != LLM_ROLE_USER) {
            snprintf(err, errlen, "%s: tool results are only allowed in tool or user messages",
                     where);
            return SLUICE_EINVAL;
        }
        if (!(p->id && *p->id)) {
            snprintf(err, errlen, "%s: tool result needs a tool_call_id", where);
            return SLUICE_EINVAL;
        }
        return 0;
    case LLM_PART_THINKING:
        if (m->role != LLM_ROLE_ASSISTANT) {
            snprintf(err, errlen, "%s: thinking is only allowed in assistant messages", where);
            return SLUICE_EINVAL;
        }
        return 0;
    }
    snprintf(err, errlen, "%s: part has no kind", where);
    return SLUICE_EINVAL;
}

int llm_request_validate(const llm_request *r, char *err, size_t errlen) {
    const char *why;
    json_error_t je;
    if (r->n_messages == 0) {
        snprintf(err, errlen, "prompt has no messages");
        return SLUICE_EINVAL;
    }
    bool non_system = false;
    for (size_t i = 0; i < r->n_messages; i++) {
        const llm_message *m = &r->messages[i];
        if (m->role < LLM_ROLE_SYSTEM || m->role > LLM_ROLE_TOOL) {
            snprintf(err, errlen, "messages[%zu]: role is unspecified", i);
            return SLUICE_EINVAL;
        }
        if (m->n_parts == 0) {
            snprintf(err, errlen, "messages[%zu]: message has no parts", i);
            return SLUICE_EINVAL;
        }
        non_system |= m->role != LLM_ROLE_SYSTEM;
        for (size_t j = 0; j < m->n_parts; j++) {
            char where[64];
            snprintf(where, sizeof where, "messages[%zu].parts[%zu]", i, j);
            int rc = part_validate(m, &m->parts[j], err, errlen, where);
            if (rc)
                return rc;
        }
    }
    if (!non_system) {
        snprintf(err, errlen, "prompt has only system messages");
        return SLUICE_EINVAL;
    }
    for (size_t i = 0; i < r->n_tools; i++) {
        const llm_tool *t = &r->tools[i];
        if (!t->name || !*t->name || strlen(t->name) > 64 ||
            strspn(t->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
                strlen(t->name)) {
            snprintf(err, errlen, "tools[%zu]: name must match ^[a-zA-Z0-9_-]{1,64}$", i);
            return SLUICE_EINVAL;
        }
        if (t->parameters && !is_json_object(t->parameters, &why, &je)) {
            snprintf(err, errlen, "tools[%zu] (%s): parameters_json is not a JSON object (%s)", i,
                     t->name, why);
            return SLUICE_EINVAL;
        }
    }
    if (r->output_schema && !is_json_object(r->output_schema, &why, &je)) {
        snprintf(err, errlen, "output_schema: schema_json is not a JSON object (%s)", why);
        return SLUICE_EINVAL;
    }
    /* Written so that NaN fails too (every comparison with it is false). */
    const llm_sampling *s = &r->sampling;
    if ((s->set & LLM_SET_TEMPERATURE) && !(s->temperature >= 0 && s->temperature <= 2)) {
        snprintf(err, errlen, "sampling.temperature must be within [0, 2]");
        return SLUICE_EINVAL;
    }
    if ((s->set & LLM_SET_TOP_P) && !(s->top_p > 0 && s->top_p <= 1)) {
        snprintf(err, errlen, "sampling.top_p must be within (0, 1]");
        return SLUICE_EINVAL;
    }
    return 0;
}

llm_response *llm_response_new(void) {
    return XNEW(llm_response);
}

void llm_response_free(llm_response *r) {
    if (!r)
        return;
    free(r->error_message);
    free(r->completion);
    for (size_t i = 0; i < r->n_content; i++)
        llm_part_cleanup(&r->content[i]);
    free(r->content);
    free(r->finish_reason);
    free(r->thinking);
    free(r->model_requested);
    free(r->model_used);
    for (size_t i = 0; i < r->n_attempts; i++) {
        free(r->attempts[i].model);
        free(r->attempts[i].error);
    }
    free(r->attempts);
    free(r);
}

llm_response *llm_response_clone(const llm_response *r) {
    llm_response *c = llm_response_new();
    *c = *r;
    c->error_message = xstrdup(r->error_message);
    c->completion = xstrdup(r->completion);
    c->content = r->n_content ? XNEWV(llm_part, r->n_content) : NULL;
    for (size_t i = 0; i < r->n_content; i++)
        llm_part_copy(&c->content[i], &r->content[i]);
    c->finish_reason = xstrdup(r->finish_reason);
    c->thinking = xstrdup(r->thinking);
    c->model_requested = xstrdup(r->model_requested);
    c->model_used = xstrdup(r->model_used);
    c->attempts = r->n_attempts ? XNEWV(llm_attempt, r->n_attempts) : NULL;
    for (size_t i = 0; i < r->n_attempts; i++) {
        c->attempts[i] = r->attempts[i];
        c->attempts[i].model = xstrdup(r->attempts[i].model);
        c->attempts[i].error = xstrdup(r->attempts[i].error);
    }
    return c;
}

void llm_response_add_attempt(llm_response *r, const char *model, int status, uint32_t latency_ms,
                              uint32_t retry_after_ms, const char *error) {
    r->attempts = xrealloc(r->attempts, (r->n_attempts + 1) * sizeof *r->attempts);
    llm_attempt *a = &r->attempts[r->n_attempts++];
    a->model = xstrdup(model);
    a->status_code = status;
    a->latency_ms = latency_ms;
    a->retry_after_ms = retry_after_ms;
    a->error = xstrdup(error);
}

void llm_response_set_completion_from_content(llm_response *r) {
    size_t len = 0;
    bool any = false;
    for (size_t i = 0; i < r->n_content; i++) {
        if (r->content[i].kind == LLM_PART_TEXT && r->content[i].text) {
            len += strlen(r->content[i].text);
            any = true;
        }
    }
    free(r->completion);
    r->completion = NULL;
    if (!any)
        return;
    char *s = xmalloc(len + 1);
    size_t off = 0;
    for (size_t i = 0; i < r->n_content; i++) {
        if (r->content[i].kind == LLM_PART_TEXT && r->content[i].text) {
            size_t n = strlen(r->content[i].text);
            memcpy(s + off, r->content[i].text, n);
            off += n;
        }
    }
    s[off] = '\0';
    r->completion = s;
}

void llm_response_set_error(llm_response *r, llm_error_kind kind, int status, const char *fmt,
                            ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    msg[utf8_whole_prefix(msg, strlen(msg))] = '\0'; /* never cut inside a character */
    r->is_error = true;
    r->error_kind = kind;
    r->status_code = status;
    free(r->error_message);
    r->error_message = utf8_dup_valid(msg);
}
