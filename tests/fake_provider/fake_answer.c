/*
 * fake_answer.c - writes the fake provider's answers and error bodies (pure).
 *
 * Every answer is a function of the parsed request only, so the same request always gets
 * the same bytes (the `created` field is a constant for that reason). Three answer kinds:
 * a tool call (forced tool, or tools plus "[[tool]]" in the final user message; only the
 * final message counts so a tool loop ends once the result comes back), a JSON object built
 * from the output schema, or the echo text. Error bodies follow each provider's published
 * shape so the dispatcher's real parsers and classifiers are exercised; Gemini's carry the
 * google.rpc details (ErrorInfo reason, RetryInfo retryDelay) the real API sends.
 */
#include "tests/fake_provider/fake_answer.h"

#include "server/common/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FAKE_CREATED 1700000000
#define FAKE_ECHO_CHARS 40
#define FAKE_SCHEMA_DEPTH 8
#define OPENAI_CONTEXT 128000u
#define ANTHROPIC_CONTEXT 200000u
#define GEMINI_CONTEXT 1048576u
/* Thinking tokens a Gemini answer reports when thinking was on (billed as output). */
#define GEMINI_THOUGHTS_TOKENS 8u

/* Byte length of the first n code points of s. */
static size_t prefix_bytes(const char *s, size_t n) {
    size_t i = 0;
    for (; s[i]; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80 && n-- == 0)
            break;
    return i;
}

static char *echo_text(const fake_parsed *p) {
    const char *u = p->last_user_text;
    fake_markers m;
    fake_markers_scan(p->prompt_text.data ? p->prompt_text.data : "", &m);
    return xasprintf("echo[%s]: %.*s#%s%*s", p->model, (int)prefix_bytes(u, FAKE_ECHO_CHARS), u,
                     p->msg_hash, (int)m.pad, "");
}

static uint64_t count_words(const char *s) {
    uint64_t n = 0;
    bool in = false;
    for (; *s; s++) {
        bool space = *s == ' ' || *s == '\n' || *s == '\t' || *s == '\r';
        if (!space && !in)
            n++;
        in = !space;
    }
    return n ? n : 1;
}

/* A value that satisfies common JSON schemas (and Gemini's, whose type names are upper
 * case): every property, one array item, the first enum/const/anyOf choice. $ref is not
 * resolved (null). */
static json_t *dummy_value(const json_t *schema, const char *tag, int depth) {
    if (!json_is_object(schema) || depth > FAKE_SCHEMA_DEPTH)
        return json_null();
    const json_t *v;
    if ((v = json_object_get(schema, "const")))
        return json_deep_copy(v);
    if ((v = json_object_get(schema, "enum")) && json_array_size(v))
        return json_deep_copy(json_array_get(v, 0));
    if ((v = json_object_get(schema, "anyOf")) || (v = json_object_get(schema, "oneOf")))
        return dummy_value(json_array_get(v, 0), tag, depth + 1);
    const json_t *t = json_object_get(schema, "type");
    const char *type = json_string_value(t);
    for (size_t i = 0; !type && i < json_array_size(t); i++) {
        type = json_string_value(json_array_get(t, i));
        if (type && strcasecmp(type, "null") == 0)
            type = NULL;
    }
    if (!type)
        type = json_object_get(schema, "properties") ? "object" : "string";
    if (strcasecmp(type, "object") == 0) {
        json_t *o = json_object();
        const char *k;
        json_t *prop;
        json_object_foreach((json_t *)json_object_get(schema, "properties"), k, prop)
            json_object_set_new(o, k, dummy_value(prop, tag, depth + 1));
        return o;
    }
    if (strcasecmp(type, "array") == 0)
        return json_pack("[o]", dummy_value(json_object_get(schema, "items"), tag, depth + 1));
    if (strcasecmp(type, "integer") == 0)
        return json_integer(1);
    if (strcasecmp(type, "number") == 0)
        return json_real(1.5);
    if (strcasecmp(type, "boolean") == 0)
        return json_true();
    if (strcasecmp(type, "null") == 0)
        return json_null();
    return json_string(tag);
}

/* Finds the tool to call and its parameter schema. */
static const char *pick_tool(const fake_parsed *p, const json_t **schema) {
    size_t i;
    const json_t *t;
    json_array_foreach(p->tools, i, t) {
        const json_t *def = p->api == FAKE_API_OPENAI ? json_object_get(t, "function") : t;
        const char *name = json_string_value(json_object_get(def, "name"));
        if (!name || (p->forced_tool && strcmp(name, p->forced_tool) != 0))
            continue;
        *schema =
            json_object_get(def, p->api == FAKE_API_ANTHROPIC ? "input_schema" : "parameters");
        return name;
    }
    return NULL;
}

static bool wants_tool(const fake_parsed *p) {
    if (!p->tools)
        return false;
    return p->forced_tool || (p->last_is_user && strstr(p->last_user_text, "[[tool]]"));
}

static char *dump(json_t *j) {
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s)
        abort();
    return s;
}

typedef struct answer {
    char *text;       /* echo text or JSON object text; NULL for a tool call */
    const char *tool; /* tool name for a tool call */
    json_t *args;     /* tool arguments (owned) */
    uint64_t output_tokens;
} answer;

static void make_answer(const fake_parsed *p, answer *a) {
    memset(a, 0, sizeof *a);
    char tag[32];
    snprintf(tag, sizeof tag, "echo#%s", p->msg_hash);
    const json_t *schema = NULL;
    if (wants_tool(p) && (a->tool = pick_tool(p, &schema))) {
        a->args = dummy_value(schema, tag, 0);
        if (!json_is_object(a->args)) {
            json_decref(a->args);
            a->args = json_object();
        }
        char *s = json_dumps(a->args, JSON_COMPACT);
        a->output_tokens = count_words(s ? s : "");
        free(s);
        return;
    }
    if (p->schema)
        a->text = dump(dummy_value(p->schema, tag, 0));
    else if (p->json_object)
        a->text = dump(json_pack("{s:s%}", "echo", tag, strlen(tag)));
    else
        a->text = echo_text(p);
    a->output_tokens = count_words(a->text);
}

static char *openai_success(const fake_parsed *p, answer *a) {
    json_t *msg = json_pack("{s:s, s:n}", "role", "assistant", "refusal");
    if (a->tool) {
        char *args = json_dumps(a->args, JSON_COMPACT);
        json_object_set_new(msg, "content", json_null());
        json_object_set_new(msg, "tool_calls",
                            json_pack("[{s:s+, s:s, s:{s:s, s:s}}]", "id", "call_", p->msg_hash,
                                      "type", "function", "function", "name", a->tool, "arguments",
                                      args ? args : "{}"));
        free(args);
    } else {
        json_object_set_new(msg, "content", json_string(a->text));
    }
    uint64_t in = p->input_tokens, out = a->output_tokens;
    return dump(json_pack(
        "{s:s+, s:s, s:i, s:s, s:[{s:i, s:o, s:n, s:s}], s:{s:I, s:I, s:I, s:{s:i}, s:{s:i}},"
        " s:s}",
        "id", "chatcmpl-", p->msg_hash, "object", "chat.completion", "created", FAKE_CREATED,
        "model", p->model, "choices", "index", 0, "message", msg, "logprobs", "finish_reason",
        a->tool ? "tool_calls" : "stop", "usage", "prompt_tokens", (json_int_t)in,
        "completion_tokens", (json_int_t)out, "total_tokens", (json_int_t)(in + out),
        "prompt_tokens_details", "cached_tokens", 0, "completion_tokens_details",
        "reasoning_tokens", 0, "system_fingerprint", "fp_fake"));
}

/* Gemini: a thought summary first when asked for, a thought signature on the answer's part
 * when thinking was on (as Gemini 2.5 sends them). */
static char *gemini_success(const fake_parsed *p, answer *a) {
    json_t *parts = json_array();
    if (p->include_thoughts)
        json_array_append_new(
            parts, json_pack("{s:s+, s:b}", "text", "thinking about #", p->msg_hash, "thought", 1));
    json_t *part =
        a->tool ? json_pack("{s:{s:s, s:O}}", "functionCall", "name", a->tool, "args", a->args)
                : json_pack("{s:s}", "text", a->text);
    if (p->thinking)
        json_object_set_new(part, "thoughtSignature", json_pack("s+", "sig_", p->msg_hash));
    json_array_append_new(parts, part);
    uint64_t in = p->input_tokens, out = a->output_tokens;
    uint64_t thoughts = p->thinking ? GEMINI_THOUGHTS_TOKENS : 0;
    json_t *usage =
        json_pack("{s:I, s:I, s:I}", "promptTokenCount", (json_int_t)in, "candidatesTokenCount",
                  (json_int_t)out, "totalTokenCount", (json_int_t)(in + out + thoughts));
    if (thoughts)
        json_object_set_new(usage, "thoughtsTokenCount", json_integer((json_int_t)thoughts));
    return dump(json_pack("{s:[{s:{s:o, s:s}, s:s, s:i}], s:o, s:s, s:s}", "candidates", "content",
                          "parts", parts, "role", "model", "finishReason", "STOP", "index", 0,
                          "usageMetadata", usage, "modelVersion", p->model, "responseId",
                          p->msg_hash));
}

static char *anthropic_success(const fake_parsed *p, answer *a) {
    json_t *block;
    if (a->tool)
        block = json_pack("{s:s, s:s+, s:s, s:O}", "type", "tool_use", "id", "toolu_", p->msg_hash,
                          "name", a->tool, "input", a->args);
    else
        block = json_pack("{s:s, s:s}", "type", "text", "text", a->text);
    return dump(json_pack(
        "{s:s+, s:s, s:s, s:s, s:[o], s:s, s:n, s:{s:I, s:I, s:i, s:i}}", "id", "msg_", p->msg_hash,
        "type", "message", "role", "assistant", "model", p->model, "content", block, "stop_reason",
        a->tool ? "tool_use" : "end_turn", "stop_sequence", "usage", "input_tokens",
        (json_int_t)p->input_tokens, "output_tokens", (json_int_t)a->output_tokens,
        "cache_creation_input_tokens", 0, "cache_read_input_tokens", 0));
}

char *fake_answer_success(const fake_parsed *p) {
    answer a;
    make_answer(p, &a);
    char *body = p->api == FAKE_API_OPENAI   ? openai_success(p, &a)
                 : p->api == FAKE_API_GEMINI ? gemini_success(p, &a)
                                             : anthropic_success(p, &a);
    free(a.text);
    json_decref(a.args);
    return body;
}

char *fake_answer_malformed(fake_api api) {
    switch (api) {
    case FAKE_API_OPENAI:
        return xstrdup("{\"id\":\"chatcmpl-broken\",\"object\":\"chat.completion\",\"choices\":"
                       "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"ech");
    case FAKE_API_GEMINI:
        return xstrdup("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"ech");
    case FAKE_API_ANTHROPIC:
        break;
    }
    return xstrdup("{\"id\":\"msg_broken\",\"type\":\"message\",\"content\":[{\"type\":"
                   "\"text\",\"text\":\"ech");
}

static const char *openai_type(int status) {
    if (status == 429)
        return "requests";
    if (status >= 500)
        return "server_error";
    return "invalid_request_error";
}

static const char *anthropic_type(int status) {
    switch (status) {
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 529:
        return "overloaded_error";
    default:
        return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

/* The google.rpc.Code name Gemini sends with an HTTP status. */
static const char *gemini_state(int status) {
    switch (status) {
    case 400:
        return "INVALID_ARGUMENT";
    case 401:
        return "UNAUTHENTICATED";
    case 403:
        return "PERMISSION_DENIED";
    case 404:
        return "NOT_FOUND";
    case 409:
        return "ABORTED";
    case 429:
        return "RESOURCE_EXHAUSTED";
    case 499:
        return "CANCELLED";
    case 500:
        return "INTERNAL";
    case 501:
        return "NOT_IMPLEMENTED";
    case 503:
        return "UNAVAILABLE";
    case 504:
        return "DEADLINE_EXCEEDED";
    default:
        return status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
    }
}

/* A protobuf Duration as JSON: "2s", "1.500s". */
static json_t *duration(int64_t ms) {
    char s[40];
    if (ms % 1000 == 0)
        snprintf(s, sizeof s, "%llds", (long long)(ms / 1000));
    else
        snprintf(s, sizeof s, "%lld.%03llds", (long long)(ms / 1000), (long long)(ms % 1000));
    return json_string(s);
}

char *fake_gemini_error(int status, const char *state, const char *reason, const char *message,
                        int64_t retry_delay_ms) {
    json_t *details = json_array();
    if (reason)
        json_array_append_new(details, json_pack("{s:s, s:s, s:s}", "@type",
                                                 "type.googleapis.com/google.rpc.ErrorInfo",
                                                 "reason", reason, "domain", "googleapis.com"));
    if (status == 429)
        json_array_append_new(
            details, json_pack("{s:s, s:[{s:s, s:s}]}", "@type",
                               "type.googleapis.com/google.rpc.QuotaFailure", "violations",
                               "quotaMetric", "generativelanguage.googleapis.com/fake_requests",
                               "quotaId", "GenerateRequestsPerMinutePerProjectPerModel"));
    if (retry_delay_ms >= 0)
        json_array_append_new(details, json_pack("{s:s, s:o}", "@type",
                                                 "type.googleapis.com/google.rpc.RetryInfo",
                                                 "retryDelay", duration(retry_delay_ms)));
    json_t *e = json_pack("{s:i, s:s, s:s}", "code", status, "message", message, "status",
                          state ? state : gemini_state(status));
    if (json_array_size(details))
        json_object_set_new(e, "details", details);
    else
        json_decref(details);
    return dump(json_pack("{s:o}", "error", e));
}

char *fake_error_body(fake_api api, int status, const char *type, const char *code,
                      const char *message) {
    if (api == FAKE_API_GEMINI)
        return fake_gemini_error(status, type, NULL, message, -1);
    if (api == FAKE_API_ANTHROPIC)
        return dump(json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type",
                              type ? type : anthropic_type(status), "message", message));
    return dump(json_pack("{s:{s:s, s:s, s:n, s:s?}}", "error", "message", message, "type",
                          type ? type : openai_type(status), "param", "code", code));
}

static const char *openai_message(int status) {
    switch (status) {
    case 500:
        return "The server had an error while processing your request. Sorry about that!";
    case 502:
        return "Bad gateway.";
    case 503:
        return "The server is overloaded or not ready yet.";
    case 429:
        return "Rate limit reached for requests (fake provider).";
    default:
        return NULL;
    }
}

static const char *anthropic_message(int status) {
    switch (status) {
    case 500:
        return "Internal server error";
    case 529:
        return "Overloaded";
    case 503:
        return "Service unavailable";
    case 429:
        return "Number of request tokens has exceeded your rate limit (fake provider).";
    default:
        return NULL;
    }
}

static const char *gemini_message(int status) {
    switch (status) {
    case 401:
        return "Request had invalid authentication credentials. Expected OAuth 2 access token, "
               "login cookie or other valid authentication credential.";
    case 403:
        return "Method doesn't allow unregistered callers (callers without established "
               "identity). Please use API Key or other form of API consumer identity to call "
               "this API.";
    case 429:
        return "Resource has been exhausted (e.g. check quota).";
    case 500:
        return "An internal error has occurred. Please retry or report in "
               "https://developers.generativeai.google/guide/troubleshooting";
    case 503:
        return "The model is overloaded. Please try again later.";
    case 504:
        return "Deadline expired before operation could complete.";
    default:
        return NULL;
    }
}

static char *gemini_error_for_status(int status, const char *model, int64_t retry_delay_ms) {
    char msg[320];
    const char *m = gemini_message(status);
    if (status == 404)
        snprintf(msg, sizeof msg,
                 "models/%s is not found for API version v1beta, or is not supported for "
                 "generateContent. Call ListModels to see the list of available models and their "
                 "supported methods.",
                 model ? model : "");
    else if (m)
        snprintf(msg, sizeof msg, "%s", m);
    else
        snprintf(msg, sizeof msg, "fake provider error (status %d)", status);
    return fake_gemini_error(status, NULL, NULL, msg, retry_delay_ms);
}

char *fake_error_for_status_delay(fake_api api, int status, const char *model,
                                  int64_t retry_delay_ms) {
    if (api == FAKE_API_GEMINI)
        return gemini_error_for_status(status, model, retry_delay_ms);
    return fake_error_for_status(api, status, model);
}

char *fake_error_for_status(fake_api api, int status, const char *model) {
    if (api == FAKE_API_GEMINI)
        return gemini_error_for_status(status, model, -1);
    char msg[256];
    const char *code = NULL;
    if (status == 404 && api == FAKE_API_OPENAI) {
        snprintf(msg, sizeof msg, "The model `%s` does not exist or you do not have access to it.",
                 model ? model : "");
        code = "model_not_found";
    } else if (status == 404) {
        snprintf(msg, sizeof msg, "model: %s", model ? model : "");
    } else {
        const char *m = api == FAKE_API_OPENAI ? openai_message(status) : anthropic_message(status);
        snprintf(msg, sizeof msg, "%s", m ? m : "fake provider error");
        if (!m)
            snprintf(msg, sizeof msg, "fake provider error (status %d)", status);
        if (status == 429 && api == FAKE_API_OPENAI)
            code = "rate_limit_exceeded";
    }
    return fake_error_body(api, status, NULL, code, msg);
}

char *fake_error_context(fake_api api, const fake_parsed *p) {
    char msg[320];
    if (api == FAKE_API_GEMINI) {
        snprintf(msg, sizeof msg,
                 "The input token count (%llu) exceeds the maximum number of tokens allowed "
                 "(%u).",
                 (unsigned long long)(GEMINI_CONTEXT + p->input_tokens), GEMINI_CONTEXT);
        return fake_gemini_error(400, NULL, NULL, msg, -1);
    }
    if (api == FAKE_API_OPENAI) {
        snprintf(msg, sizeof msg,
                 "This model's maximum context length is %u tokens. However, your messages "
                 "resulted in %llu tokens. Please reduce the length of the messages.",
                 OPENAI_CONTEXT, (unsigned long long)(OPENAI_CONTEXT + p->input_tokens));
        return dump(json_pack("{s:{s:s, s:s, s:s, s:s}}", "error", "message", msg, "type",
                              "invalid_request_error", "param", "messages", "code",
                              "context_length_exceeded"));
    }
    snprintf(msg, sizeof msg, "prompt is too long: %llu tokens > %u maximum",
             (unsigned long long)(ANTHROPIC_CONTEXT + p->input_tokens), ANTHROPIC_CONTEXT);
    return fake_error_body(api, 400, "invalid_request_error", NULL, msg);
}
