/*
 * gemini.c - adapter for the Gemini API (POST {base}/models/{model}:generateContent, the key
 * in x-goog-api-key). This file builds requests and holds the ops table; answers and error
 * bodies are read in gemini_reply.c, schemas converted in gemini_schema.c.
 *
 * Design: build() maps an llm_request onto one generateContent body. Pure (no I/O, no
 * clock, no state), jansson only; the builder records its first failure in a wire_ctx and
 * checks it once.
 *
 * Mapping decisions:
 * - Every system message's text goes into systemInstruction, joined with "\n\n". User and
 *   tool messages are "user" contents, assistant messages "model" contents.
 * - Images: bytes and base64 data: URLs go inline (inlineData); other URLs go as fileData
 *   with the part's media type, or one guessed from the URL's extension (Gemini needs a
 *   MIME type; an image whose type cannot be told is refused, SLUICE_EINVAL).
 * - Tool calls are functionCall parts, tool results functionResponse parts named after the
 *   call they answer (Gemini matches results by name: a result whose id matches no earlier
 *   call is refused), with {"output": text} or, for an error, {"error": text} as Gemini's
 *   docs recommend. Ids Gemini issued travel back; ids sluice made up (gemini.h) do not.
 * - Thinking: Gemini's thought signatures arrive as THINKING parts (gemini_reply.c); a
 *   replayed signature goes back on the part that follows it, thought texts are not sent
 *   (Gemini keeps its reasoning in the signatures), unsigned thinking is dropped.
 * - Thinking budget (reasoning models only): thinking_budget, else the effort (minimal 512,
 *   low 1024, medium 4096, high 16384, xhigh 32768), clamped to what the 2.5 family takes
 *   (Pro 128-32768, never off; Flash 1-24576; Flash-Lite 512-24576). Unset or "none"
 *   turns thinking off where the family allows it (Pro: its minimum): Gemini's own default
 *   is to think dynamically inside maxOutputTokens, which with sluice's default of 512 new
 *   tokens often leaves no answer at all. Thinking tokens count against maxOutputTokens, so
 *   it is max_new_tokens + budget (at most the model's max_output_tokens), and
 *   includeThoughts asks for the thought summaries (returned as thinking). Models outside
 *   the 2.5 families get only an explicit budget and no thinkingConfig otherwise.
 * - An output schema is responseMimeType application/json plus responseSchema (converted,
 *   gemini_schema.c); json_mode is responseMimeType alone. A schema on a model without
 *   json_schema support is refused rather than silently dropped.
 * - temperature and topP are always sent; stop sequences as stopSequences.
 * Differences from lm-deluge's Gemini client, on purpose: the key travels in a header, not
 * in the URL's ?key= (URLs end up in logs); thought parts are thinking, not answer text;
 * made-up tool call ids are deterministic (a random id would differ between a cached answer
 * and a fresh one).
 */
#include "server/common/alloc.h"
#include "server/providers/gemini.h"
#include "server/providers/provider.h"
#include "server/providers/wire.h"
#include "sluice/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- thinking ----------------------------------------------------------------------- */

/* The budgets a model family takes (Gemini's thinking guide). */
typedef struct gm_thinking_range {
    const char *prefix; /* of the upstream model id */
    uint32_t min, max;
    bool can_disable; /* a budget of 0 turns thinking off */
} gm_thinking_range;

static const gm_thinking_range thinking_ranges[] = {
    {"gemini-2.5-flash-lite", 512, 24576, true}, /* before its prefix gemini-2.5-flash */
    {"gemini-2.5-flash", 1, 24576, true},
    {"gemini-2.5-pro", 128, 32768, false},
};

static const gm_thinking_range *gm_range(const model_info *m) {
    for (size_t i = 0; i < sizeof thinking_ranges / sizeof *thinking_ranges; i++)
        if (strncmp(m->upstream_model, thinking_ranges[i].prefix,
                    strlen(thinking_ranges[i].prefix)) == 0)
            return &thinking_ranges[i];
    return NULL;
}

static uint32_t gm_effort_budget(llm_effort effort) {
    switch (effort) {
    case LLM_EFFORT_MINIMAL:
        return 512;
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

/* The thinkingBudget to send, or -1 to send no thinkingConfig. */
static int64_t gm_thinking_budget(const model_info *m, const llm_sampling *s) {
    if (!m->reasoning)
        return -1;
    uint32_t want = s->thinking_budget ? s->thinking_budget : gm_effort_budget(s->effort);
    const gm_thinking_range *r = gm_range(m);
    if (!r)
        return want ? (int64_t)want : -1;
    if (want == 0)
        return r->can_disable ? 0 : r->min;
    return want < r->min ? r->min : want > r->max ? r->max : want;
}

/* ---- contents ----------------------------------------------------------------------- */

/* The name of the tool call `id` answered in message `mi`: the latest call with that id
 * before it. NULL when there is none. */
static const char *gm_call_name(const llm_request *req, size_t mi, const char *id) {
    for (size_t i = mi; i-- > 0;) {
        const llm_message *m = &req->messages[i];
        for (size_t j = m->n_parts; j-- > 0;) {
            const llm_part *p = &m->parts[j];
            if (p->kind == LLM_PART_TOOL_CALL && p->id && id && strcmp(p->id, id) == 0)
                return p->name;
        }
    }
    return NULL;
}

/* Adds "id" unless it is empty or one sluice made up. */
static void gm_set_id(wire_ctx *w, json_t *obj, const char *id, const char *where) {
    if (id && *id && strncmp(id, GEMINI_CALL_ID_PREFIX, strlen(GEMINI_CALL_ID_PREFIX)) != 0)
        wire_set(w, obj, "id", wire_str(w, id, where));
}

/* The MIME type of an image URL from its extension; NULL when unknown. */
static const char *gm_guess_mime(const char *url) {
    static const char *const types[][2] = {
        {".png", "image/png"},   {".jpg", "image/jpeg"},  {".jpeg", "image/jpeg"},
        {".webp", "image/webp"}, {".heic", "image/heic"}, {".heif", "image/heif"},
    };
    size_t n = strcspn(url, "?#");
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        size_t e = strlen(types[i][0]);
        if (n > e && strncasecmp(url + n - e, types[i][0], e) == 0)
            return types[i][1];
    }
    return NULL;
}

static json_t *gm_inline(wire_ctx *w, const char *mime, json_t *data, const char *where) {
    if (!mime || !*mime)
        wire_fail(w, SLUICE_EINVAL, "%s: Gemini needs the image's media type", where);
    json_t *in = json_object();
    wire_set(w, in, "mimeType", wire_str(w, mime, where));
    wire_set(w, in, "data", data);
    json_t *part = json_object();
    wire_set(w, part, "inlineData", in);
    return part;
}

static json_t *gm_image(wire_ctx *w, const model_info *m, const llm_part *p, const char *where) {
    if (!m->images) {
        wire_fail(w, SLUICE_EINVAL, "%s: model %s does not accept images", where, m->name);
        return NULL;
    }
    char *media;
    const char *data;
    if (p->url && wire_data_url(p->url, &media, &data)) {
        json_t *part = gm_inline(w, media, wire_str(w, data, where), where);
        free(media);
        return part;
    }
    if (p->url && strncmp(p->url, "data:", 5) == 0) {
        wire_fail(w, SLUICE_EINVAL, "%s: Gemini takes data: URLs only when base64", where);
        return NULL;
    }
    if (!p->url || !*p->url) {
        char *b64 = wire_base64(p->data, p->data_len);
        json_t *part = gm_inline(w, p->media_type, json_string_nocheck(b64), where);
        free(b64);
        return part;
    }
    const char *mime = p->media_type && *p->media_type ? p->media_type : gm_guess_mime(p->url);
    if (!mime) {
        wire_fail(w, SLUICE_EINVAL, "%s: Gemini needs the media type of image URL", where);
        return NULL;
    }
    json_t *fd = json_object();
    wire_set(w, fd, "mimeType", wire_str(w, mime, where));
    wire_set(w, fd, "fileUri", wire_str(w, p->url, where));
    json_t *part = json_object();
    wire_set(w, part, "fileData", fd);
    return part;
}

static json_t *gm_function_call(wire_ctx *w, const llm_part *p, const char *where) {
    json_t *fc = json_object();
    wire_set(w, fc, "name", wire_str(w, p->name, where));
    wire_set(w, fc, "args", wire_json_text(w, p->arguments, "{}", true, where));
    gm_set_id(w, fc, p->id, where);
    json_t *part = json_object();
    wire_set(w, part, "functionCall", fc);
    return part;
}

static json_t *gm_function_response(wire_ctx *w, const llm_request *req, size_t mi,
                                    const llm_part *p, const char *where) {
    const char *name = gm_call_name(req, mi, p->id);
    if (!name) {
        wire_fail(w, SLUICE_EINVAL,
                  "%s: tool result '%s' answers no earlier tool call (Gemini needs its name)",
                  where, p->id ? p->id : "");
        return NULL;
    }
    json_t *response = json_object();
    wire_set(w, response, p->is_error ? "error" : "output", wire_str(w, p->text, where));
    json_t *fr = json_object();
    wire_set(w, fr, "name", wire_str(w, name, where));
    wire_set(w, fr, "response", response);
    gm_set_id(w, fr, p->id, where);
    json_t *part = json_object();
    wire_set(w, part, "functionResponse", fr);
    return part;
}

/* One part, or NULL for a part Gemini does not take (empty text, thinking). */
static json_t *gm_part(wire_ctx *w, const model_info *m, const llm_request *req, size_t mi,
                       const llm_part *p, const char *where) {
    switch (p->kind) {
    case LLM_PART_TEXT: {
        if (!p->text || !*p->text)
            return NULL; /* Gemini refuses empty text parts */
        json_t *part = json_object();
        wire_set(w, part, "text", wire_str(w, p->text, where));
        return part;
    }
    case LLM_PART_IMAGE:
        return gm_image(w, m, p, where);
    case LLM_PART_TOOL_CALL:
        return gm_function_call(w, p, where);
    case LLM_PART_TOOL_RESULT:
        return gm_function_response(w, req, mi, p, where);
    case LLM_PART_THINKING:
        break;
    }
    return NULL;
}

/* The parts of message mi; a replayed thought signature rides on the part after it. */
static json_t *gm_parts(wire_ctx *w, const model_info *m, const llm_request *req, size_t mi) {
    const llm_message *msg = &req->messages[mi];
    json_t *parts = json_array();
    const char *signature = NULL;
    for (size_t j = 0; j < msg->n_parts; j++) {
        const llm_part *p = &msg->parts[j];
        char where[64];
        snprintf(where, sizeof where, "messages[%zu].parts[%zu]", mi, j);
        if (p->kind == LLM_PART_THINKING) {
            if (p->signature && *p->signature)
                signature = p->signature;
            continue;
        }
        json_t *part = gm_part(w, m, req, mi, p, where);
        if (!part)
            continue;
        if (signature && msg->role == LLM_ROLE_ASSISTANT)
            wire_set(w, part, "thoughtSignature", wire_str(w, signature, where));
        signature = NULL;
        wire_append(w, parts, part);
    }
    return parts;
}

static json_t *gm_contents(wire_ctx *w, const model_info *m, const llm_request *req) {
    json_t *contents = json_array();
    for (size_t i = 0; i < req->n_messages; i++) {
        const llm_message *msg = &req->messages[i];
        if (msg->role == LLM_ROLE_SYSTEM)
            continue;
        json_t *parts = gm_parts(w, m, req, i);
        if (json_array_size(parts) == 0) {
            json_decref(parts); /* e.g. an assistant turn of thinking only */
            continue;
        }
        json_t *c = json_object();
        wire_set(w, c, "role", json_string(msg->role == LLM_ROLE_ASSISTANT ? "model" : "user"));
        wire_set(w, c, "parts", parts);
        wire_append(w, contents, c);
    }
    if (w->rc == SLUICE_OK && json_array_size(contents) == 0)
        wire_fail(w, SLUICE_EINVAL, "Gemini needs at least one user or assistant message");
    return contents;
}

/* ---- tools and generation config ----------------------------------------------------- */

/* A tool's parameters, or NULL when it takes none (Gemini refuses an OBJECT schema without
 * properties, so a parameterless tool has no "parameters" at all). */
static json_t *gm_parameters(wire_ctx *w, const llm_tool *t, const char *where) {
    json_t *schema = gemini_schema(w, t->parameters, WIRE_EMPTY_SCHEMA, where);
    const char *type = json_string_value(json_object_get(schema, "type"));
    if (schema && type && strcmp(type, "OBJECT") == 0 &&
        json_object_size(json_object_get(schema, "properties")) == 0) {
        json_decref(schema);
        return NULL;
    }
    return schema;
}

static void gm_tools(wire_ctx *w, const llm_request *req, json_t *body) {
    if (req->n_tools == 0)
        return;
    json_t *decls = json_array();
    for (size_t i = 0; i < req->n_tools; i++) {
        const llm_tool *t = &req->tools[i];
        char where[64];
        snprintf(where, sizeof where, "tools[%zu]", i);
        json_t *fn = json_object();
        wire_set(w, fn, "name", wire_str(w, t->name, where));
        if (t->description && *t->description)
            wire_set(w, fn, "description", wire_str(w, t->description, where));
        json_t *params = gm_parameters(w, t, where);
        if (params)
            wire_set(w, fn, "parameters", params);
        wire_append(w, decls, fn);
    }
    json_t *tool = json_object();
    wire_set(w, tool, "functionDeclarations", decls);
    json_t *tools = json_array();
    wire_append(w, tools, tool);
    wire_set(w, body, "tools", tools);
}

static void gm_output(wire_ctx *w, const model_info *m, const llm_request *req,
                      const llm_sampling *s, json_t *gc) {
    if (req->output_schema) {
        if (!m->json_schema) {
            wire_fail(w, SLUICE_EINVAL, "model %s does not support output schemas", m->name);
            return;
        }
        wire_set(w, gc, "responseMimeType", json_string("application/json"));
        wire_set(w, gc, "responseSchema",
                 gemini_schema(w, req->output_schema, NULL, "output_schema"));
    } else if (s->json_mode) {
        wire_set(w, gc, "responseMimeType", json_string("application/json"));
    }
}

static json_t *gm_generation_config(wire_ctx *w, const model_info *m, const llm_request *req,
                                    const llm_sampling *s) {
    json_t *gc = json_object();
    wire_set(w, gc, "temperature", json_real(s->temperature));
    wire_set(w, gc, "topP", json_real(s->top_p));
    int64_t budget = gm_thinking_budget(m, s);
    uint64_t max_out = (uint64_t)s->max_new_tokens + (uint64_t)(budget > 0 ? budget : 0);
    if (m->max_output_tokens && max_out > m->max_output_tokens)
        max_out = m->max_output_tokens;
    wire_set(w, gc, "maxOutputTokens", json_integer((json_int_t)max_out));
    wire_set_stop(w, gc, "stopSequences", s);
    if (budget >= 0) {
        json_t *tc = json_object();
        wire_set(w, tc, "thinkingBudget", json_integer(budget));
        if (budget > 0)
            wire_set(w, tc, "includeThoughts", json_true());
        wire_set(w, gc, "thinkingConfig", tc);
    }
    gm_output(w, m, req, s, gc);
    return gc;
}

/* "/models/<id>:generateContent" for an upstream id ("models/" prefix optional); NULL when
 * the id would not survive as a URL path segment. Free with free(). */
static char *gm_path(const char *upstream) {
    if (strncmp(upstream, "models/", 7) == 0)
        upstream += 7;
    if (!*upstream)
        return NULL;
    for (const char *p = upstream; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok)
            return NULL;
    }
    return xasprintf("/models/%s:generateContent", upstream);
}

static int gm_build(const model_info *m, const char *api_key, const llm_request *req,
                    const llm_sampling *s, provider_request *out, char *err, size_t errlen) {
    wire_ctx w;
    wire_ctx_init(&w, err, errlen);
    char *path = gm_path(m->upstream_model);
    bool path_ok = path != NULL;
    wire_request_start(out, m->base_url, path_ok ? path : "");
    free(path);
    if (!path_ok)
        wire_fail(&w, SLUICE_EINVAL,
                  "model %s: upstream id '%s' is not a Gemini model id ([A-Za-z0-9._-])", m->name,
                  m->upstream_model);
    wire_add_auth(&w, out, "x-goog-api-key", "", api_key);
    wire_add_header(out, "content-type", "application/json");
    json_t *body = json_object();
    char *system = wire_system_text(req);
    if (system) {
        json_t *part = json_object();
        wire_set(&w, part, "text", wire_str(&w, system, "system"));
        json_t *parts = json_array();
        wire_append(&w, parts, part);
        json_t *si = json_object();
        wire_set(&w, si, "parts", parts);
        wire_set(&w, body, "systemInstruction", si);
    }
    free(system);
    wire_set(&w, body, "contents", gm_contents(&w, m, req));
    gm_tools(&w, req, body);
    wire_set(&w, body, "generationConfig", gm_generation_config(&w, m, req, s));
    return wire_request_finish(&w, body, out);
}

const provider_ops provider_gemini = {
    .name = "gemini",
    .kind = PROVIDER_GEMINI,
    .build = gm_build,
    .parse_success = gemini_parse_success,
    .parse_error = gemini_parse_error,
    .retry_after_ms = gemini_retry_after_ms,
};
