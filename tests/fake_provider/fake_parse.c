/*
 * fake_parse.c - reads a provider request body for the fake provider (pure).
 *
 * One walk over the messages computes everything the fake answers from: the model, the
 * last user text, every message text joined (where fault markers are searched, so markers
 * in tool schemas or ids do not count), lm-deluge's token estimate (which the rate limiter
 * charges), the messages hash (which makes answers deterministic), and whether the request
 * asks for a tool call or a JSON object. Three wire shapes are read: OpenAI chat
 * completions (content as string or parts; tool_calls), Anthropic messages (top-level
 * system; content blocks) and Gemini generateContent (systemInstruction; contents of parts;
 * the model from the URL). Bounded by the body size the caller accepted.
 */
#include "tests/fake_provider/fake_answer.h"

#include "server/common/alloc.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NON_TEXT_TOKENS 85u
#define MESSAGE_TOKENS 6u

void fake_sha256_hex(const void *data, size_t len, char *out, size_t n) {
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(data, len, md);
    static const char hex[] = "0123456789abcdef";
    size_t i = 0;
    for (; i < n && i / 2 < sizeof md; i++)
        out[i] = hex[(i % 2) ? (md[i / 2] & 0xf) : (md[i / 2] >> 4)];
    out[i] = '\0';
}

uint64_t fake_sha256_u64(const void *data, size_t len) {
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(data, len, md);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | md[i];
    return v ? v : 1;
}

static size_t code_points(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

typedef struct walk {
    fake_parsed *p;
    uint64_t text_tokens;
    uint64_t non_text;
    uint64_t messages;
    buf msg_text; /* text of the message being walked */
} walk;

static void add_text(walk *w, const char *s) {
    if (!s)
        return;
    w->text_tokens += code_points(s) / 4;
    if (w->msg_text.len)
        buf_append(&w->msg_text, "\n", 1);
    buf_append_str(&w->msg_text, s);
}

/* Content as a string or an array of parts/blocks: text counts by length, the rest 85.
 * Gemini's parts have no type: a part holding "text" (and not a thought) is text. */
static void walk_content(walk *w, const json_t *content) {
    if (json_is_string(content)) {
        add_text(w, json_string_value(content));
        return;
    }
    size_t i;
    const json_t *part;
    json_array_foreach(content, i, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        const json_t *text = json_object_get(part, "text");
        if (w->p->api == FAKE_API_GEMINI && json_is_string(text) &&
            !json_is_true(json_object_get(part, "thought")))
            add_text(w, json_string_value(text));
        else if (type && strcmp(type, "text") == 0)
            add_text(w, json_string_value(text));
        else
            w->non_text++;
    }
}

/* Walks one message; `last` is true for the final message of the conversation. */
static void walk_message(walk *w, const json_t *m, bool last) {
    bool gemini = w->p->api == FAKE_API_GEMINI;
    const char *role = json_string_value(json_object_get(m, "role"));
    bool user = role ? strcmp(role, "user") == 0 : gemini; /* Gemini: no role = user */
    buf_reset(&w->msg_text);
    w->messages++;
    walk_content(w, json_object_get(m, gemini ? "parts" : "content"));
    w->non_text += json_array_size(json_object_get(m, "tool_calls"));
    if (w->msg_text.len) {
        fake_parsed *p = w->p;
        if (p->prompt_text.len)
            buf_append(&p->prompt_text, "\n", 1);
        buf_append(&p->prompt_text, w->msg_text.data, w->msg_text.len);
        if (user) {
            free(p->last_user_text);
            p->last_user_text = xstrdup(w->msg_text.data);
        }
    }
    if (last)
        w->p->last_is_user = user && w->msg_text.len > 0;
}

static void walk_system(walk *w, const json_t *system) {
    if (!system)
        return;
    buf_reset(&w->msg_text);
    w->messages++;
    walk_content(w, w->p->api == FAKE_API_GEMINI ? json_object_get(system, "parts") : system);
    if (w->msg_text.len)
        buf_append(&w->p->prompt_text, w->msg_text.data, w->msg_text.len);
}

static void hash_messages(fake_parsed *p, const json_t *messages, const json_t *system) {
    buf all;
    buf_init(&all, (size_t)-1);
    char *m = json_dumps(messages, JSON_COMPACT | JSON_SORT_KEYS);
    buf_append_str(&all, m ? m : "");
    free(m);
    if (system) {
        char *s = json_dumps(system, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        buf_append(&all, "\n", 1);
        buf_append_str(&all, s ? s : "");
        free(s);
    }
    fake_sha256_hex(all.data, all.len, p->msg_hash, 8);
    buf_cleanup(&all);
}

static const char *forced_tool(fake_api api, const json_t *choice) {
    if (api == FAKE_API_GEMINI) {
        const json_t *fc = json_object_get(choice, "functionCallingConfig");
        const char *mode = json_string_value(json_object_get(fc, "mode"));
        if (!mode || strcmp(mode, "ANY") != 0)
            return NULL;
        return json_string_value(json_array_get(json_object_get(fc, "allowedFunctionNames"), 0));
    }
    const char *type = json_string_value(json_object_get(choice, "type"));
    if (!type)
        return NULL;
    if (api == FAKE_API_ANTHROPIC && strcmp(type, "tool") == 0)
        return json_string_value(json_object_get(choice, "name"));
    if (api == FAKE_API_OPENAI && strcmp(type, "function") == 0)
        return json_string_value(json_object_get(json_object_get(choice, "function"), "name"));
    return NULL;
}

/* Gemini: tools[0].functionDeclarations, generationConfig. */
static void read_gemini_options(fake_parsed *p) {
    const json_t *root = p->root;
    const json_t *decls =
        json_object_get(json_array_get(json_object_get(root, "tools"), 0), "functionDeclarations");
    p->tools = json_array_size(decls) ? decls : NULL;
    if (p->tools)
        p->forced_tool = forced_tool(p->api, json_object_get(root, "toolConfig"));
    const json_t *gc = json_object_get(root, "generationConfig");
    const char *mime = json_string_value(json_object_get(gc, "responseMimeType"));
    p->schema = json_object_get(gc, "responseSchema");
    if (!p->schema)
        p->schema = json_object_get(gc, "responseJsonSchema");
    p->json_object = !p->schema && mime && strcmp(mime, "application/json") == 0;
    const json_t *mt = json_object_get(gc, "maxOutputTokens");
    p->max_tokens = json_is_integer(mt) ? (uint64_t)json_integer_value(mt) : 0;
    const json_t *tc = json_object_get(gc, "thinkingConfig");
    const json_t *budget = json_object_get(tc, "thinkingBudget");
    p->thinking = json_is_integer(budget) && json_integer_value(budget) != 0;
    p->include_thoughts = p->thinking && json_is_true(json_object_get(tc, "includeThoughts"));
}

static void read_options(fake_parsed *p) {
    const json_t *root = p->root;
    if (p->api == FAKE_API_GEMINI) {
        read_gemini_options(p);
        return;
    }
    const json_t *tools = json_object_get(root, "tools");
    p->tools = json_array_size(tools) ? tools : NULL;
    if (p->tools)
        p->forced_tool = forced_tool(p->api, json_object_get(root, "tool_choice"));
    if (p->api == FAKE_API_OPENAI) {
        const json_t *rf = json_object_get(root, "response_format");
        const char *type = json_string_value(json_object_get(rf, "type"));
        if (type && strcmp(type, "json_schema") == 0)
            p->schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
        p->json_object = type && strcmp(type, "json_object") == 0;
        const json_t *mt = json_object_get(root, "max_completion_tokens");
        if (!mt)
            mt = json_object_get(root, "max_tokens");
        p->max_tokens = json_is_integer(mt) ? (uint64_t)json_integer_value(mt) : 0;
    } else {
        const json_t *fmt = json_object_get(json_object_get(root, "output_config"), "format");
        if (!fmt)
            fmt = json_object_get(root, "output_format");
        const char *type = json_string_value(json_object_get(fmt, "type"));
        if (type && strcmp(type, "json_schema") == 0)
            p->schema = json_object_get(fmt, "schema");
        p->max_tokens = (uint64_t)json_integer_value(json_object_get(root, "max_tokens"));
    }
}

/* Gemini's checks: contents must be a non-empty array (the model is in the URL). */
static int check_gemini_shape(const json_t *root, char *err, size_t errlen) {
    const json_t *contents = json_object_get(root, "contents");
    if (!json_is_array(contents) || json_array_size(contents) == 0)
        snprintf(err, errlen, "* GenerateContentRequest.contents: contents is not specified");
    else
        return 0;
    return -1;
}

/* Checks the fields every request needs; writes the provider's wording on failure. */
static int check_shape(fake_api api, const json_t *root, char *err, size_t errlen) {
    if (api == FAKE_API_GEMINI)
        return check_gemini_shape(root, err, errlen);
    bool oa = api == FAKE_API_OPENAI;
    const json_t *messages = json_object_get(root, "messages");
    if (!json_is_string(json_object_get(root, "model")))
        snprintf(err, errlen, "%s",
                 oa ? "you must provide a model parameter" : "model: Field required");
    else if (!json_is_array(messages))
        snprintf(err, errlen, "%s",
                 oa ? "Missing required parameter: 'messages'." : "messages: Field required");
    else if (json_array_size(messages) == 0)
        snprintf(err, errlen, "%s",
                 oa ? "Invalid 'messages': empty array. Expected an array with minimum length 1."
                    : "messages: at least one message is required");
    else if (!oa && !json_is_integer(json_object_get(root, "max_tokens")))
        snprintf(err, errlen, "max_tokens: Field required");
    else
        return 0;
    return -1;
}

static const char *json_error_words(fake_api api) {
    switch (api) {
    case FAKE_API_OPENAI:
        return "We could not parse the JSON body of your request";
    case FAKE_API_GEMINI:
        return "Invalid JSON payload received";
    case FAKE_API_ANTHROPIC:
        break;
    }
    return "Invalid JSON";
}

int fake_parse(fake_api api, const char *model, const char *body, size_t len, fake_parsed *out,
               char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!json_is_object(root)) {
        snprintf(err, errlen, "%s: %s", json_error_words(api), root ? "not an object" : jerr.text);
        json_decref(root);
        return -1;
    }
    if (check_shape(api, root, err, errlen) != 0) {
        json_decref(root);
        return -1;
    }
    out->api = api;
    out->root = root;
    if (api == FAKE_API_GEMINI) {
        out->model_buf = xstrdup(model ? model : "");
        out->model = out->model_buf;
    } else {
        out->model = json_string_value(json_object_get(root, "model"));
    }
    buf_init(&out->prompt_text, len + 64);
    walk w = {.p = out};
    buf_init(&w.msg_text, len + 64);
    const json_t *system = api == FAKE_API_ANTHROPIC ? json_object_get(root, "system")
                           : api == FAKE_API_GEMINI  ? json_object_get(root, "systemInstruction")
                                                     : NULL;
    walk_system(&w, system);
    const json_t *messages =
        json_object_get(root, api == FAKE_API_GEMINI ? "contents" : "messages");
    size_t i, n = json_array_size(messages);
    const json_t *m;
    json_array_foreach(messages, i, m) walk_message(&w, m, i + 1 == n);
    buf_cleanup(&w.msg_text);
    if (!out->last_user_text)
        out->last_user_text = xstrdup("");
    if (!out->prompt_text.data)
        buf_append(&out->prompt_text, "", 0);
    read_options(out);
    out->input_tokens = w.text_tokens + NON_TEXT_TOKENS * w.non_text + MESSAGE_TOKENS * w.messages;
    out->est_tokens = out->input_tokens + out->max_tokens;
    hash_messages(out, messages, system);
    return 0;
}

void fake_parsed_cleanup(fake_parsed *p) {
    json_decref(p->root);
    free(p->model_buf);
    free(p->last_user_text);
    buf_cleanup(&p->prompt_text);
    memset(p, 0, sizeof *p);
}

/* ---- markers ------------------------------------------------------------------------ */

static bool parse_uint(const char *s, const char *prefix, long *out) {
    size_t n = strlen(prefix);
    if (strncmp(s, prefix, n) != 0)
        return false;
    char *end;
    long v = strtol(s + n, &end, 10);
    if (end == s + n || v < 0)
        return false;
    *out = v;
    return true;
}

/* "status:NNN[,retry-after:S][,retry-after-ms:M][,retry-after-date]" */
static void parse_status(char *spec, fake_markers *m) {
    long v;
    for (char *tok = spec, *next; tok; tok = next) {
        next = strchr(tok, ',');
        if (next)
            *next++ = '\0';
        while (*tok == ' ')
            tok++;
        if (parse_uint(tok, "status:", &v) && v >= 100 && v <= 599)
            m->status = (int)v;
        else if (parse_uint(tok, "retry-after-ms:", &v))
            m->retry_after_ms = (int)(v > 86400000 ? 86400000 : v);
        else if (parse_uint(tok, "retry-after:", &v))
            m->retry_after_s = (int)(v > 86400 ? 86400 : v);
        else if (strcmp(tok, "retry-after-date") == 0)
            m->retry_after_date = true;
    }
}

static void parse_marker(const char *s, fake_markers *m) {
    const char *end = strstr(s, "]]");
    if (!end || end - s >= 128)
        return;
    char tmp[128];
    memcpy(tmp, s, (size_t)(end - s));
    tmp[end - s] = '\0';
    long v;
    if (strcmp(tmp, "reset") == 0)
        m->reset = true;
    else if (strcmp(tmp, "hang") == 0)
        m->hang = true;
    else if (strcmp(tmp, "truncate") == 0)
        m->truncate = true;
    else if (strcmp(tmp, "malformed") == 0)
        m->malformed = true;
    else if (strcmp(tmp, "context") == 0)
        m->context = true;
    else if (strcmp(tmp, "tool") == 0)
        m->tool = true;
    else if (parse_uint(tmp, "fail-first:", &v))
        m->fail_first = (unsigned)(v > 1000000 ? 1000000 : v);
    else if (parse_uint(tmp, "pad:", &v))
        m->pad = (unsigned)(v > 1000000 ? 1000000 : v);
    else if (strncmp(tmp, "status:", 7) == 0)
        parse_status(tmp, m);
}

void fake_markers_scan(const char *text, fake_markers *m) {
    memset(m, 0, sizeof *m);
    m->retry_after_s = -1;
    m->retry_after_ms = -1;
    for (const char *p = strstr(text, "[["); p; p = strstr(p + 2, "[["))
        parse_marker(p + 2, m);
}
