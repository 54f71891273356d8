/*
 * anthropic.c - adapter for the Anthropic messages API (POST {base}/messages).
 *
 * Design: build() maps an llm_request onto one messages body; parse_success() and
 * parse_error() map the answer back. Pure (no I/O, no clock, no state), jansson only; the
 * builder records its first failure in a wire_ctx and checks it once.
 *
 * Mapping decisions:
 * - Every system message's text goes into "system", joined with "\n\n" (lm-deluge keeps
 *   only the first one). Tool messages become user messages of tool_result blocks.
 * - A replayed thinking part is sent back only when it carries a signature (Anthropic
 *   rejects unsigned thinking). A thinking part with a signature and no text is a redacted
 *   block (its opaque data travels in `signature`) and is replayed as redacted_thinking.
 * - Thinking: reasoning models only, from thinking_budget or the effort (minimal and low
 *   1024, Anthropic's minimum; medium 4096; high 16384; xhigh 32768). An explicit budget
 *   below 1024 is raised to 1024. max_tokens = max_new_tokens + budget; the budget is cut
 *   when that would pass the model's max_output_tokens. Thinking forces temperature 1 and
 *   drops top_p.
 * - Models whose id contains 4-1, 4-5 or 4-6 take temperature or top_p, not both: top_p
 *   is sent alone only when the caller set top_p and left temperature unset.
 * - An output schema becomes a tool the model is forced to call. The tool is named after
 *   the schema with the reserved prefix OUTPUT_TOOL_PREFIX so parse_success, which does
 *   not see the request, can recognise it and hand its input back as the completion.
 *   Anthropic refuses thinking together with a forced tool, so a schema turns thinking
 *   off. json_mode has no Anthropic equivalent and is ignored.
 * Parse failures (non-JSON, truncated, no content array, a tool_use without an object
 * input) are SLUICE_EPROTO: retryable, never a success.
 */
#include "server/common/alloc.h"
#include "server/providers/provider.h"
#include "server/providers/wire.h"
#include "sluice/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANTHROPIC_VERSION "2023-06-01"
#define OUTPUT_TOOL_PREFIX "structured_output_"
#define OUTPUT_TOOL_DESCRIPTION                                                                    \
    "Give your final answer by calling this tool; its input is the answer, a JSON object "         \
    "matching the schema."
#define MIN_THINKING_BUDGET 1024u

/* ---- request ------------------------------------------------------------------------ */

static bool upstream_contains(const model_info *m, const char *s) {
    return strstr(m->upstream_model, s) != NULL;
}

static uint32_t an_effort_budget(llm_effort effort) {
    switch (effort) {
    case LLM_EFFORT_MINIMAL:
    case LLM_EFFORT_LOW:
        return 1024;
    case LLM_EFFORT_MEDIUM:
        return 4096;
    case LLM_EFFORT_HIGH:
        return 16384;
    case LLM_EFFORT_XHIGH:
        return 32768;
    case LLM_EFFORT_UNSET:
    case LLM_EFFORT_NONE:
        break;
    }
    return 0;
}

/* The thinking budget for this attempt; 0 = thinking off. */
static uint32_t an_thinking_budget(const model_info *m, const llm_request *req,
                                   const llm_sampling *s) {
    if (!m->reasoning || req->output_schema)
        return 0;
    uint32_t budget = s->thinking_budget ? s->thinking_budget : an_effort_budget(s->effort);
    if (budget == 0)
        return 0;
    if (budget < MIN_THINKING_BUDGET)
        budget = MIN_THINKING_BUDGET;
    uint64_t limit = m->max_output_tokens;
    if (limit && budget + (uint64_t)s->max_new_tokens > limit &&
        limit >= (uint64_t)s->max_new_tokens + MIN_THINKING_BUDGET)
        budget = (uint32_t)(limit - s->max_new_tokens);
    return budget;
}

/* Anthropic wants an object schema; a schema without "type" gets "type": "object". */
static json_t *an_schema(wire_ctx *w, const char *text, const char *what) {
    json_t *schema = wire_json_text(w, text, WIRE_EMPTY_SCHEMA, true, what);
    if (!schema)
        return NULL;
    const json_t *type = json_object_get(schema, "type");
    if (!type) {
        wire_set(w, schema, "type", json_string("object"));
    } else if (!json_is_string(type) || strcmp(json_string_value(type), "object") != 0) {
        wire_fail(w, SLUICE_EINVAL, "%s: Anthropic needs a schema of type \"object\"", what);
        json_decref(schema);
        return NULL;
    }
    return schema;
}

/* A "data:<type>;base64,<data>" URL as a base64 source; NULL when it is not one. */
static json_t *an_data_url_source(wire_ctx *w, const char *url, const char *where) {
    char *media;
    const char *data;
    if (!wire_data_url(url, &media, &data)) {
        wire_fail(w, SLUICE_EINVAL, "%s: Anthropic takes data: URLs only when base64", where);
        return NULL;
    }
    json_t *src = wire_typed(w, "base64");
    wire_set(w, src, "media_type", wire_str(w, media, where));
    wire_set(w, src, "data", wire_str(w, data, where));
    free(media);
    return src;
}

static json_t *an_image(wire_ctx *w, const model_info *m, const llm_part *p, const char *where) {
    if (!m->images) {
        wire_fail(w, SLUICE_EINVAL, "%s: model %s does not accept images", where, m->name);
        return NULL;
    }
    json_t *src;
    if (p->url && strncmp(p->url, "data:", 5) == 0) {
        src = an_data_url_source(w, p->url, where);
    } else if (p->url && *p->url) {
        src = wire_typed(w, "url");
        wire_set(w, src, "url", wire_str(w, p->url, where));
    } else {
        char *b64 = wire_base64(p->data, p->data_len);
        src = wire_typed(w, "base64");
        wire_set(w, src, "media_type", wire_str(w, p->media_type, where));
        wire_set(w, src, "data", json_string_nocheck(b64)); /* base64 is ASCII */
        free(b64);
    }
    json_t *block = wire_typed(w, "image");
    wire_set(w, block, "source", src);
    return block;
}

static json_t *an_thinking_block(wire_ctx *w, const llm_part *p, const char *where) {
    if (!p->signature || !*p->signature)
        return NULL;
    json_t *b;
    if (p->text && *p->text) {
        b = wire_typed(w, "thinking");
        wire_set(w, b, "thinking", wire_str(w, p->text, where));
        wire_set(w, b, "signature", wire_str(w, p->signature, where));
    } else {
        b = wire_typed(w, "redacted_thinking");
        wire_set(w, b, "data", wire_str(w, p->signature, where));
    }
    return b;
}

/* One content block, or NULL for a part Anthropic does not take back. */
static json_t *an_block(wire_ctx *w, const model_info *m, const llm_part *p, const char *where) {
    json_t *b = NULL;
    switch (p->kind) {
    case LLM_PART_TEXT:
        b = wire_typed(w, "text");
        wire_set(w, b, "text", wire_str(w, p->text, where));
        break;
    case LLM_PART_IMAGE:
        b = an_image(w, m, p, where);
        break;
    case LLM_PART_TOOL_CALL:
        b = wire_typed(w, "tool_use");
        wire_set(w, b, "id", wire_str(w, p->id, where));
        wire_set(w, b, "name", wire_str(w, p->name, where));
        wire_set(w, b, "input", wire_json_text(w, p->arguments, "{}", true, where));
        break;
    case LLM_PART_TOOL_RESULT:
        b = wire_typed(w, "tool_result");
        wire_set(w, b, "tool_use_id", wire_str(w, p->id, where));
        if (p->text && *p->text)
            wire_set(w, b, "content", wire_str(w, p->text, where));
        if (p->is_error)
            wire_set(w, b, "is_error", json_true());
        break;
    case LLM_PART_THINKING:
        b = an_thinking_block(w, p, where);
        break;
    }
    return b;
}

static json_t *an_messages(wire_ctx *w, const model_info *model, const llm_request *req) {
    json_t *msgs = json_array();
    for (size_t i = 0; i < req->n_messages; i++) {
        const llm_message *m = &req->messages[i];
        if (m->role == LLM_ROLE_SYSTEM)
            continue;
        json_t *blocks = json_array();
        for (size_t j = 0; j < m->n_parts; j++) {
            char where[64];
            snprintf(where, sizeof where, "messages[%zu].parts[%zu]", i, j);
            json_t *b = an_block(w, model, &m->parts[j], where);
            if (b)
                wire_append(w, blocks, b);
        }
        if (json_array_size(blocks) == 0) {
            json_decref(blocks); /* e.g. an assistant turn of unsigned thinking only */
            continue;
        }
        json_t *msg = json_object();
        wire_set(w, msg, "role", json_string(m->role == LLM_ROLE_ASSISTANT ? "assistant" : "user"));
        wire_set(w, msg, "content", blocks);
        wire_append(w, msgs, msg);
    }
    return msgs;
}

static void an_sampling(wire_ctx *w, const model_info *m, const llm_sampling *s, uint32_t budget,
                        json_t *body) {
    bool one_of =
        upstream_contains(m, "4-1") || upstream_contains(m, "4-5") || upstream_contains(m, "4-6");
    if (budget) {
        wire_set(w, body, "temperature", json_real(1.0));
    } else if (one_of && (s->set & LLM_SET_TOP_P) && !(s->set & LLM_SET_TEMPERATURE)) {
        wire_set(w, body, "top_p", json_real(s->top_p));
    } else {
        wire_set(w, body, "temperature", json_real(s->temperature));
        if (!one_of)
            wire_set(w, body, "top_p", json_real(s->top_p));
    }
    wire_set_stop(w, body, "stop_sequences", s);
    if (budget) {
        json_t *thinking = wire_typed(w, "enabled");
        wire_set(w, thinking, "budget_tokens", json_integer(budget));
        wire_set(w, body, "thinking", thinking);
    }
}

/* Appends the forced output tool to `tools` and writes its name into name. */
static void an_output_tool(wire_ctx *w, const llm_request *req, json_t *tools, char *name,
                           size_t namelen) {
    char base[64];
    wire_safe_name(req->schema_name, "response", 64 - strlen(OUTPUT_TOOL_PREFIX), base,
                   sizeof base);
    snprintf(name, namelen, "%s%s", OUTPUT_TOOL_PREFIX, base);
    json_t *tool = json_object();
    wire_set(w, tool, "name", json_string(name));
    wire_set(w, tool, "description", json_string(OUTPUT_TOOL_DESCRIPTION));
    wire_set(w, tool, "input_schema", an_schema(w, req->output_schema, "output_schema"));
    wire_append(w, tools, tool);
}

static void an_tools(wire_ctx *w, const llm_request *req, json_t *body) {
    json_t *tools = json_array();
    for (size_t i = 0; i < req->n_tools; i++) {
        const llm_tool *t = &req->tools[i];
        char where[64];
        snprintf(where, sizeof where, "tools[%zu]", i);
        if (t->name && strncmp(t->name, OUTPUT_TOOL_PREFIX, strlen(OUTPUT_TOOL_PREFIX)) == 0)
            wire_fail(w, SLUICE_EINVAL, "%s: tool names starting with \"%s\" are reserved", where,
                      OUTPUT_TOOL_PREFIX);
        json_t *tool = json_object();
        wire_set(w, tool, "name", wire_str(w, t->name, where));
        if (t->description && *t->description)
            wire_set(w, tool, "description", wire_str(w, t->description, where));
        wire_set(w, tool, "input_schema", an_schema(w, t->parameters, where));
        wire_append(w, tools, tool);
    }
    char forced[96] = "";
    if (req->output_schema)
        an_output_tool(w, req, tools, forced, sizeof forced);
    if (json_array_size(tools))
        wire_set(w, body, "tools", tools);
    else
        json_decref(tools);
    if (*forced) {
        json_t *choice = wire_typed(w, "tool");
        wire_set(w, choice, "name", json_string(forced));
        wire_set(w, body, "tool_choice", choice);
    }
}

static void an_headers(wire_ctx *w, const char *api_key, provider_request *out) {
    wire_add_auth(w, out, "x-api-key", "", api_key);
    wire_add_header(out, "anthropic-version", ANTHROPIC_VERSION);
    wire_add_header(out, "content-type", "application/json");
}

static int an_build(const model_info *m, const char *api_key, const llm_request *req,
                    const llm_sampling *s, provider_request *out, char *err, size_t errlen) {
    wire_ctx w;
    wire_ctx_init(&w, err, errlen);
    wire_request_start(out, m->base_url, "/messages");
    an_headers(&w, api_key, out);
    uint32_t budget = an_thinking_budget(m, req, s);
    json_t *body = json_object();
    wire_set(&w, body, "model", wire_str(&w, m->upstream_model, "model"));
    wire_set(&w, body, "max_tokens", json_integer((json_int_t)s->max_new_tokens + budget));
    char *system = wire_system_text(req);
    if (system)
        wire_set(&w, body, "system", wire_str(&w, system, "system"));
    free(system);
    wire_set(&w, body, "messages", an_messages(&w, m, req));
    an_sampling(&w, m, s, budget, body);
    an_tools(&w, req, body);
    return wire_request_finish(&w, body, out);
}

/* ---- response ----------------------------------------------------------------------- */

static bool is_output_tool(const char *name) {
    return strncmp(name, OUTPUT_TOOL_PREFIX, strlen(OUTPUT_TOOL_PREFIX)) == 0;
}

static int an_parse_tool_use(const json_t *b, size_t i, llm_response *out, char **structured,
                             char *err, size_t errlen) {
    const char *id = wire_get_str(b, "id"), *name = wire_get_str(b, "name");
    const json_t *input = json_object_get(b, "input");
    if (!id || !*id || !name || !*name || !json_is_object(input)) {
        snprintf(err, errlen, "content[%zu]: tool_use lacks an id, a name or an object input", i);
        return SLUICE_EPROTO;
    }
    char *args = json_dumps(input, WIRE_DUMP_FLAGS);
    if (!args) {
        snprintf(err, errlen, "content[%zu]: tool_use input could not be serialised", i);
        return SLUICE_EPROTO;
    }
    if (is_output_tool(name)) {
        wire_push_part(out, LLM_PART_TEXT)->text = xstrdup(args);
        free(*structured);
        *structured = args;
        return SLUICE_OK;
    }
    llm_part *p = wire_push_part(out, LLM_PART_TOOL_CALL);
    p->id = xstrdup(id);
    p->name = xstrdup(name);
    p->arguments = xstrdup(args);
    free(args);
    return SLUICE_OK;
}

static void an_parse_thinking(const json_t *b, bool redacted, llm_response *out) {
    llm_part *p = wire_push_part(out, LLM_PART_THINKING);
    if (redacted) {
        p->signature = xstrdup(wire_get_str(b, "data"));
        return;
    }
    p->text = xstrdup(wire_get_str(b, "thinking"));
    p->signature = xstrdup(wire_get_str(b, "signature"));
    if (p->text) {
        free(out->thinking);
        out->thinking = xstrdup(p->text);
    }
}

static int an_parse_blocks(const json_t *content, llm_response *out, char **structured, char *err,
                           size_t errlen) {
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b) {
        const char *type = wire_get_str(b, "type");
        if (!type) {
            snprintf(err, errlen, "content[%zu] has no type", i);
            return SLUICE_EPROTO;
        }
        if (strcmp(type, "text") == 0) {
            const char *text = wire_get_str(b, "text");
            if (text && *text)
                wire_push_part(out, LLM_PART_TEXT)->text = xstrdup(text);
        } else if (strcmp(type, "thinking") == 0 || strcmp(type, "redacted_thinking") == 0) {
            an_parse_thinking(b, type[0] == 'r', out);
        } else if (strcmp(type, "tool_use") == 0) {
            int rc = an_parse_tool_use(b, i, out, structured, err, errlen);
            if (rc)
                return rc;
        }
        /* Server-tool blocks (web search, code execution) are not part of the contract. */
    }
    return SLUICE_OK;
}

static void an_parse_usage(const json_t *u, llm_usage *usage) {
    usage->input_tokens = wire_uint(u, "input_tokens");
    usage->output_tokens = wire_uint(u, "output_tokens");
    usage->cache_read_tokens = wire_uint(u, "cache_read_input_tokens");
    usage->cache_write_tokens = wire_uint(u, "cache_creation_input_tokens");
}

/* finish_reason, usage and completion once the blocks are in. */
static void an_finish(const json_t *root, char *structured, llm_response *out) {
    const char *stop = wire_get_str(root, "stop_reason");
    /* The forced output tool ends the turn with "tool_use"; to the caller it is an answer. */
    if (structured && stop && strcmp(stop, "tool_use") == 0)
        stop = "end_turn";
    out->finish_reason = xstrdup(stop);
    an_parse_usage(json_object_get(root, "usage"), &out->usage);
    if (structured) {
        free(out->completion);
        out->completion = structured;
    } else {
        llm_response_set_completion_from_content(out);
    }
}

static int an_parse_root(const json_t *root, llm_response *out, char *err, size_t errlen) {
    const json_t *content = json_object_get(root, "content");
    if (!json_is_array(content)) {
        const char *emsg = wire_get_str(json_object_get(root, "error"), "message");
        char line[301] = "";
        if (emsg)
            wire_line(emsg, strlen(emsg), sizeof line - 1, line, sizeof line);
        snprintf(err, errlen, "response has no content array%s%s%s", emsg ? " (error: " : "", line,
                 emsg ? ")" : "");
        return SLUICE_EPROTO;
    }
    char *structured = NULL;
    int rc = an_parse_blocks(content, out, &structured, err, errlen);
    if (rc) {
        free(structured);
        return rc;
    }
    an_finish(root, structured, out);
    return SLUICE_OK;
}

static int an_parse_success(const model_info *m, const char *body, size_t len, llm_response *out,
                            char *err, size_t errlen) {
    return wire_parse_success(body, len, an_parse_root, out, err, errlen);
}

static void an_parse_error(int status, const char *body, size_t len, char *msg, size_t msglen) {
    json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    const json_t *e = json_object_get(root, "error");
    const char *type = wire_get_str(e, "type"), *text = wire_get_str(e, "message");
    bool done = false;
    if (text && *text) {
        /* Both parts are the provider's text: each becomes one printable line. */
        char line[1024], kind[128], both[sizeof kind + 2 + sizeof line];
        size_t n = wire_line(text, strlen(text), sizeof line - 1, line, sizeof line);
        size_t k = type ? wire_line(type, strlen(type), sizeof kind - 1, kind, sizeof kind) : 0;
        if (n) {
            snprintf(both, sizeof both, "%s%s%s", k ? kind : "", k ? ": " : "", line);
            /* Cut to msglen at a character boundary (a cut UTF-8 sequence in the message
             * would make strict clients refuse the Response carrying it). */
            wire_line(both, strlen(both), msglen, msg, msglen);
            done = true;
        }
    }
    if (!done)
        wire_raw_text(body, len, msg, msglen);
    json_decref(root);
}

const provider_ops provider_anthropic = {
    .name = "anthropic",
    .kind = PROVIDER_ANTHROPIC,
    .build = an_build,
    .parse_success = an_parse_success,
    .parse_error = an_parse_error,
};
