/*
 * openai.c - adapter for OpenAI-compatible chat completions (POST {base}/chat/completions).
 *
 * Design: build() maps an llm_request onto one chat-completions body; parse_success() and
 * parse_error() map the answer back. Both are pure (no I/O, no clock, no state) and use
 * jansson; the builder records its first failure in a wire_ctx and checks it once.
 *
 * Mapping decisions:
 * - Tool results become one role "tool" message each, wherever they appear (tool or user
 *   message); any text or images beside them follow as a user message, because a tool
 *   message can carry neither images nor a second result.
 * - Thinking parts of a replayed assistant turn are dropped: chat completions has no
 *   input field for them.
 * - Reasoning models reject sampling parameters, so temperature and top_p are sent to
 *   them only when the effort sent is "none" (gpt-5.1 and later take them then).
 *   reasoning_effort goes to reasoning models only; xhigh becomes high; none/minimal map
 *   to the nearest level the family knows (gpt-5: minimal; gpt-5.x: none; o-series: low).
 * - An output schema on a model without json_schema support is refused (SLUICE_EINVAL)
 *   rather than silently dropped, so no caller gets free text it did not ask for.
 * Parse failures (non-JSON, truncated, no choices, tool arguments that are not a JSON
 * object) are SLUICE_EPROTO: retryable, never a success.
 */
#include "server/common/alloc.h"
#include "server/providers/provider.h"
#include "server/providers/wire.h"
#include "sluice/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- request ------------------------------------------------------------------------ */

static bool upstream_starts(const model_info *m, const char *prefix) {
    return strncmp(m->upstream_model, prefix, strlen(prefix)) == 0;
}

/* The reasoning_effort to send, or NULL to leave it out. */
static const char *oa_effort(const model_info *m, const llm_sampling *s) {
    if (!m->reasoning)
        return NULL;
    bool gpt5 = upstream_starts(m, "gpt-5");
    bool gpt5_point = upstream_starts(m, "gpt-5.");
    switch (s->effort) {
    case LLM_EFFORT_UNSET:
        return NULL;
    case LLM_EFFORT_NONE:
    case LLM_EFFORT_MINIMAL:
        return gpt5_point ? "none" : gpt5 ? "minimal" : "low";
    case LLM_EFFORT_LOW:
        return "low";
    case LLM_EFFORT_MEDIUM:
        return "medium";
    case LLM_EFFORT_HIGH:
    case LLM_EFFORT_XHIGH:
        return "high";
    }
    return NULL;
}

static json_t *oa_image(wire_ctx *w, const model_info *m, const llm_part *p, const char *where) {
    if (!m->images) {
        wire_fail(w, SLUICE_EINVAL, "%s: model %s does not accept images", where, m->name);
        return NULL;
    }
    json_t *img = json_object();
    if (p->url && *p->url) {
        wire_set(w, img, "url", wire_str(w, p->url, where));
    } else {
        char *b64 = wire_base64(p->data, p->data_len);
        char *url = xasprintf("data:%s;base64,%s", p->media_type ? p->media_type : "", b64);
        free(b64);
        wire_set(w, img, "url", wire_str(w, url, where));
        free(url);
    }
    if (p->detail && *p->detail)
        wire_set(w, img, "detail", wire_str(w, p->detail, where));
    json_t *part = wire_typed(w, "image_url");
    wire_set(w, part, "image_url", img);
    return part;
}

/* The text and image parts of a message as OpenAI content: a plain string for a single
 * text part, an array of parts otherwise; NULL when there are none. */
static json_t *oa_content(wire_ctx *w, const model_info *model, const llm_message *m, size_t mi) {
    size_t n = 0, n_text = 0, text_at = 0;
    for (size_t j = 0; j < m->n_parts; j++) {
        n += m->parts[j].kind == LLM_PART_TEXT || m->parts[j].kind == LLM_PART_IMAGE;
        if (m->parts[j].kind == LLM_PART_TEXT && n_text++ == 0)
            text_at = j;
    }
    char where[64];
    if (n == 0)
        return NULL;
    if (n == 1 && n_text == 1) {
        snprintf(where, sizeof where, "messages[%zu].parts[%zu]", mi, text_at);
        return wire_str(w, m->parts[text_at].text, where);
    }
    json_t *arr = json_array();
    for (size_t j = 0; j < m->n_parts; j++) {
        const llm_part *p = &m->parts[j];
        snprintf(where, sizeof where, "messages[%zu].parts[%zu]", mi, j);
        if (p->kind == LLM_PART_IMAGE) {
            wire_append(w, arr, oa_image(w, model, p, where));
        } else if (p->kind == LLM_PART_TEXT) {
            json_t *t = wire_typed(w, "text");
            wire_set(w, t, "text", wire_str(w, p->text, where));
            wire_append(w, arr, t);
        }
    }
    return arr;
}

static json_t *oa_role_message(wire_ctx *w, const char *role, json_t *content) {
    json_t *msg = json_object();
    wire_set(w, msg, "role", json_string(role));
    wire_set(w, msg, "content", content ? content : json_null());
    return msg;
}

/* User and tool messages: one "tool" message per result, then the rest as a user turn. */
static void oa_add_user(wire_ctx *w, const model_info *model, json_t *msgs, const llm_message *m,
                        size_t mi) {
    for (size_t j = 0; j < m->n_parts; j++) {
        const llm_part *p = &m->parts[j];
        if (p->kind != LLM_PART_TOOL_RESULT)
            continue;
        char where[64];
        snprintf(where, sizeof where, "messages[%zu].parts[%zu]", mi, j);
        json_t *msg = oa_role_message(w, "tool", wire_str(w, p->text, where));
        wire_set(w, msg, "tool_call_id", wire_str(w, p->id, where));
        wire_append(w, msgs, msg);
    }
    json_t *content = oa_content(w, model, m, mi);
    if (content)
        wire_append(w, msgs, oa_role_message(w, "user", content));
}

static json_t *oa_tool_call(wire_ctx *w, const llm_part *p, const char *where) {
    json_t *fn = json_object();
    wire_set(w, fn, "name", wire_str(w, p->name, where));
    wire_set(w, fn, "arguments",
             wire_str(w, p->arguments && *p->arguments ? p->arguments : "{}", where));
    json_t *call = json_object();
    wire_set(w, call, "id", wire_str(w, p->id, where));
    wire_set(w, call, "type", json_string("function"));
    wire_set(w, call, "function", fn);
    return call;
}

static void oa_add_assistant(wire_ctx *w, const model_info *model, json_t *msgs,
                             const llm_message *m, size_t mi) {
    json_t *calls = json_array();
    for (size_t j = 0; j < m->n_parts; j++) {
        char where[64];
        snprintf(where, sizeof where, "messages[%zu].parts[%zu]", mi, j);
        if (m->parts[j].kind == LLM_PART_TOOL_CALL)
            wire_append(w, calls, oa_tool_call(w, &m->parts[j], where));
    }
    json_t *content = oa_content(w, model, m, mi);
    if (!content && json_array_size(calls) == 0) {
        /* Only thinking: nothing OpenAI can take. */
        json_decref(calls);
        return;
    }
    json_t *msg = oa_role_message(w, "assistant", content);
    if (json_array_size(calls))
        wire_set(w, msg, "tool_calls", calls);
    else
        json_decref(calls);
    wire_append(w, msgs, msg);
}

static json_t *oa_messages(wire_ctx *w, const model_info *model, const llm_request *req) {
    json_t *msgs = json_array();
    for (size_t i = 0; i < req->n_messages; i++) {
        const llm_message *m = &req->messages[i];
        switch (m->role) {
        case LLM_ROLE_SYSTEM: {
            json_t *content = oa_content(w, model, m, i);
            if (content)
                wire_append(w, msgs, oa_role_message(w, "system", content));
            break;
        }
        case LLM_ROLE_USER:
        case LLM_ROLE_TOOL:
            oa_add_user(w, model, msgs, m, i);
            break;
        case LLM_ROLE_ASSISTANT:
            oa_add_assistant(w, model, msgs, m, i);
            break;
        }
    }
    return msgs;
}

static json_t *oa_tools(wire_ctx *w, const llm_request *req) {
    json_t *tools = json_array();
    for (size_t i = 0; i < req->n_tools; i++) {
        const llm_tool *t = &req->tools[i];
        char where[64];
        snprintf(where, sizeof where, "tools[%zu]", i);
        json_t *fn = json_object();
        wire_set(w, fn, "name", wire_str(w, t->name, where));
        if (t->description && *t->description)
            wire_set(w, fn, "description", wire_str(w, t->description, where));
        wire_set(w, fn, "parameters",
                 wire_json_text(w, t->parameters, WIRE_EMPTY_SCHEMA, true, where));
        wire_set(w, fn, "strict", json_boolean(t->strict));
        json_t *tool = wire_typed(w, "function");
        wire_set(w, tool, "function", fn);
        wire_append(w, tools, tool);
    }
    return tools;
}

static void oa_sampling(wire_ctx *w, const model_info *m, const llm_sampling *s, json_t *body) {
    const char *effort = oa_effort(m, s);
    if (!m->reasoning || (effort && strcmp(effort, "none") == 0)) {
        wire_set(w, body, "temperature", json_real(s->temperature));
        wire_set(w, body, "top_p", json_real(s->top_p));
    }
    wire_set(w, body, "max_completion_tokens", json_integer(s->max_new_tokens));
    wire_set_stop(w, body, "stop", s);
    if (effort)
        wire_set(w, body, "reasoning_effort", json_string(effort));
}

static void oa_response_format(wire_ctx *w, const model_info *m, const llm_request *req,
                               const llm_sampling *s, json_t *body) {
    json_t *rf;
    if (req->output_schema) {
        if (!m->json_schema) {
            wire_fail(w, SLUICE_EINVAL, "model %s does not support output schemas", m->name);
            return;
        }
        char name[65];
        wire_safe_name(req->schema_name, "response", 64, name, sizeof name);
        json_t *js = json_object();
        wire_set(w, js, "name", json_string(name));
        wire_set(w, js, "schema",
                 wire_json_text(w, req->output_schema, NULL, true, "output_schema"));
        wire_set(w, js, "strict", json_true());
        rf = wire_typed(w, "json_schema");
        wire_set(w, rf, "json_schema", js);
    } else if (s->json_mode) {
        rf = wire_typed(w, "json_object");
    } else {
        return;
    }
    wire_set(w, body, "response_format", rf);
}

static int oa_build(const model_info *m, const char *api_key, const llm_request *req,
                    const llm_sampling *s, provider_request *out, char *err, size_t errlen) {
    wire_ctx w;
    wire_ctx_init(&w, err, errlen);
    wire_request_start(out, m->base_url, "/chat/completions");
    wire_add_auth(&w, out, "Authorization", "Bearer ", api_key);
    wire_add_header(out, "Content-Type", "application/json");
    json_t *body = json_object();
    wire_set(&w, body, "model", wire_str(&w, m->upstream_model, "model"));
    wire_set(&w, body, "messages", oa_messages(&w, m, req));
    oa_sampling(&w, m, s, body);
    oa_response_format(&w, m, req, s, body);
    if (req->n_tools)
        wire_set(&w, body, "tools", oa_tools(&w, req));
    return wire_request_finish(&w, body, out);
}

/* ---- response ----------------------------------------------------------------------- */

static void oa_add_text(llm_response *out, const char *text) {
    if (text && *text)
        wire_push_part(out, LLM_PART_TEXT)->text = xstrdup(text);
}

static int oa_parse_content(const json_t *content, llm_response *out, char *err, size_t errlen) {
    if (!content || json_is_null(content))
        return SLUICE_OK;
    if (json_is_string(content)) {
        oa_add_text(out, json_string_value(content));
        return SLUICE_OK;
    }
    if (!json_is_array(content)) {
        snprintf(err, errlen, "choices[0].message.content is neither a string nor an array");
        return SLUICE_EPROTO;
    }
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        const char *type = wire_get_str(part, "type");
        if (!type || strcmp(type, "text") == 0)
            oa_add_text(out, wire_get_str(part, "text"));
    }
    return SLUICE_OK;
}

static int oa_parse_tool_calls(const json_t *calls, llm_response *out, char *err, size_t errlen) {
    if (!calls || json_is_null(calls))
        return SLUICE_OK;
    if (!json_is_array(calls)) {
        snprintf(err, errlen, "choices[0].message.tool_calls is not an array");
        return SLUICE_EPROTO;
    }
    size_t i;
    json_t *call;
    json_array_foreach(calls, i, call) {
        const json_t *fn = json_object_get(call, "function");
        const char *id = wire_get_str(call, "id"), *name = wire_get_str(fn, "name");
        const char *args = wire_get_str(fn, "arguments");
        if (!id || !*id || !name || !*name) {
            snprintf(err, errlen, "choices[0].message.tool_calls[%zu] lacks an id or a name", i);
            return SLUICE_EPROTO;
        }
        if (!args || !*args)
            args = "{}";
        json_t *parsed = json_loads(args, 0, NULL);
        bool ok = json_is_object(parsed);
        json_decref(parsed);
        if (!ok) {
            snprintf(err, errlen,
                     "choices[0].message.tool_calls[%zu].function.arguments is not a JSON object",
                     i);
            return SLUICE_EPROTO;
        }
        llm_part *p = wire_push_part(out, LLM_PART_TOOL_CALL);
        p->id = xstrdup(id);
        p->name = xstrdup(name);
        p->arguments = xstrdup(args);
    }
    return SLUICE_OK;
}

static int oa_parse_message(const json_t *msg, llm_response *out, char *err, size_t errlen) {
    /* reasoning_content: DeepSeek, vLLM and others; reasoning: Together, OpenRouter. */
    const char *thinking = wire_get_str(msg, "reasoning_content");
    if (!thinking || !*thinking)
        thinking = wire_get_str(msg, "reasoning");
    if (thinking && *thinking) {
        wire_push_part(out, LLM_PART_THINKING)->text = xstrdup(thinking);
        out->thinking = xstrdup(thinking);
    }
    size_t before = out->n_content;
    int rc = oa_parse_content(json_object_get(msg, "content"), out, err, errlen);
    if (rc)
        return rc;
    /* A structured-output refusal arrives in "refusal" with null content: keep its text. */
    if (out->n_content == before)
        oa_add_text(out, wire_get_str(msg, "refusal"));
    return oa_parse_tool_calls(json_object_get(msg, "tool_calls"), out, err, errlen);
}

static void oa_parse_usage(const json_t *u, llm_usage *usage) {
    if (!json_is_object(u))
        return;
    /* Chat names first, then the Responses-API names some compatible servers use. */
    usage->input_tokens =
        wire_uint(u, json_object_get(u, "prompt_tokens") ? "prompt_tokens" : "input_tokens");
    usage->output_tokens = wire_uint(
        u, json_object_get(u, "completion_tokens") ? "completion_tokens" : "output_tokens");
    const json_t *details = json_object_get(u, "prompt_tokens_details");
    if (!details)
        details = json_object_get(u, "input_tokens_details");
    usage->cache_read_tokens = wire_uint(details, "cached_tokens");
}

static int oa_no_choices(const json_t *root, char *err, size_t errlen) {
    const json_t *e = json_object_get(root, "error");
    const char *msg = json_is_object(e) ? wire_get_str(e, "message") : json_string_value(e);
    char line[301];
    if (msg && wire_line(msg, strlen(msg), sizeof line - 1, line, sizeof line))
        snprintf(err, errlen, "response has no choices[0].message (error: %s)", line);
    else
        snprintf(err, errlen, "response has no choices[0].message");
    return SLUICE_EPROTO;
}

static int oa_parse_root(const json_t *root, llm_response *out, char *err, size_t errlen) {
    const json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    const json_t *msg = json_object_get(choice, "message");
    if (!json_is_object(msg))
        return oa_no_choices(root, err, errlen);
    int rc = oa_parse_message(msg, out, err, errlen);
    if (rc)
        return rc;
    out->finish_reason = xstrdup(wire_get_str(choice, "finish_reason"));
    oa_parse_usage(json_object_get(root, "usage"), &out->usage);
    llm_response_set_completion_from_content(out);
    return SLUICE_OK;
}

static int oa_parse_success(const model_info *m, const char *body, size_t len, llm_response *out,
                            char *err, size_t errlen) {
    return wire_parse_success(body, len, oa_parse_root, out, err, errlen);
}

static void oa_parse_error(int status, const char *body, size_t len, char *msg, size_t msglen) {
    json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    const char *text = NULL;
    if (json_is_object(root)) {
        const json_t *e = json_object_get(root, "error");
        text = json_is_object(e) ? wire_get_str(e, "message") : json_string_value(e);
        if (!text)
            text = wire_get_str(root, "message");
    }
    if (!text || !wire_line(text, strlen(text), msglen, msg, msglen))
        wire_raw_text(body, len, msg, msglen);
    json_decref(root);
}

const provider_ops provider_openai = {
    .name = "openai",
    .kind = PROVIDER_OPENAI,
    .build = oa_build,
    .parse_success = oa_parse_success,
    .parse_error = oa_parse_error,
};
