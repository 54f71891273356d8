/*
 * gemini_reply.c - reading Gemini's answers and error bodies (see gemini.h).
 *
 * Answers: the first candidate's parts become content parts: text; functionCall (a tool
 * call, with Gemini's id or a made-up deterministic one); a part with "thought": true is
 * thinking (its text a thought summary); a thoughtSignature on any other part becomes a
 * THINKING part holding only the signature, placed just before that part, which is how
 * gemini.c knows where to put it back when the turn is replayed. Parts sluice has no kind
 * for (executable code, inline data) are skipped.
 *
 * Usage: input_tokens = promptTokenCount (cached tokens included, as OpenAI counts them) +
 * toolUsePromptTokenCount; output_tokens = candidatesTokenCount + thoughtsTokenCount
 * (Gemini bills thoughts as output); cache_read_tokens = cachedContentTokenCount.
 *
 * Finish reasons are kept as Gemini sends them (STOP, MAX_TOKENS, SAFETY, RECITATION,
 * LANGUAGE, BLOCKLIST, PROHIBITED_CONTENT, SPII, MALFORMED_FUNCTION_CALL, OTHER, ...), as the
 * contract says ("the provider's finish reason as sent"). What they mean here:
 * - any reason with text or tool calls: an answer (cut short for MAX_TOKENS);
 * - a filter or limit with nothing in it (SAFETY, RECITATION, PROHIBITED_CONTENT, MAX_TOKENS
 *   spent on thinking, ...): an answer without text, like OpenAI's content_filter; retrying
 *   the same prompt would meet the same filter;
 * - STOP (or none) with nothing in it, Gemini's known empty answer, and a function call the
 *   model botched (MALFORMED_FUNCTION_CALL, UNEXPECTED_TOOL_CALL) with nothing else:
 *   SLUICE_EPROTO, retried (another sample usually succeeds; an empty answer must not be
 *   cached);
 * - no candidate at all: a prompt Gemini blocked (promptFeedback.blockReason, which becomes
 *   the finish reason, with the prompt's usage), or SLUICE_EPROTO when no reason is given.
 * Other parse failures (not JSON, parts that are not objects, a functionCall without a name
 * or with non-object args) are SLUICE_EPROTO: retryable, never a success.
 *
 * Errors: {"error": {"code", "message", "status", "details": [...]}} (also wrapped in an
 * array). The message is "<STATUS> (<ErrorInfo reason>): <message>", so the retry table can
 * tell a bad key (400 INVALID_ARGUMENT, reason API_KEY_INVALID) or a project that cannot use
 * the model (400 FAILED_PRECONDITION) from a request Gemini refused. A 429's delay is the
 * google.rpc.RetryInfo detail's retryDelay, a protobuf Duration ("17s", "1.5s").
 */
#include "server/common/alloc.h"
#include "server/providers/gemini.h"
#include "sluice/status.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- answers ------------------------------------------------------------------------ */

static void gm_add_thinking(llm_response *out, const char *text, const char *signature) {
    llm_part *p = wire_push_part(out, LLM_PART_THINKING);
    p->text = text ? xstrdup(text) : NULL;
    p->signature = signature ? xstrdup(signature) : NULL;
    if (!text || !*text)
        return;
    /* Thought summaries may come in several parts: out->thinking holds them all. */
    char *all = out->thinking ? xasprintf("%s\n\n%s", out->thinking, text) : xstrdup(text);
    free(out->thinking);
    out->thinking = all;
}

static int gm_parse_call(const json_t *fc, size_t i, size_t *n_calls, llm_response *out, char *err,
                         size_t errlen) {
    const char *name = wire_get_str(fc, "name"), *id = wire_get_str(fc, "id");
    const json_t *args = json_object_get(fc, "args");
    if (!name || !*name || (args && !json_is_object(args))) {
        snprintf(err, errlen,
                 "candidates[0].content.parts[%zu]: functionCall lacks a name or object args", i);
        return SLUICE_EPROTO;
    }
    char *text = args ? json_dumps(args, WIRE_DUMP_FLAGS) : xstrdup("{}");
    if (!text) {
        snprintf(err, errlen, "candidates[0].content.parts[%zu]: args could not be serialised", i);
        return SLUICE_EPROTO;
    }
    llm_part *p = wire_push_part(out, LLM_PART_TOOL_CALL);
    p->id = id && *id ? xstrdup(id) : xasprintf(GEMINI_CALL_ID_PREFIX "%zu", *n_calls);
    p->name = xstrdup(name);
    p->arguments = text;
    (*n_calls)++;
    return SLUICE_OK;
}

static int gm_parse_part(const json_t *part, size_t i, size_t *n_calls, llm_response *out,
                         char *err, size_t errlen) {
    if (!json_is_object(part)) {
        snprintf(err, errlen, "candidates[0].content.parts[%zu] is not an object", i);
        return SLUICE_EPROTO;
    }
    const char *signature = wire_get_str(part, "thoughtSignature");
    const char *text = wire_get_str(part, "text");
    if (json_is_true(json_object_get(part, "thought"))) {
        gm_add_thinking(out, text, signature);
        return SLUICE_OK;
    }
    if (signature && *signature)
        gm_add_thinking(out, NULL, signature);
    const json_t *fc = json_object_get(part, "functionCall");
    if (fc)
        return gm_parse_call(fc, i, n_calls, out, err, errlen);
    if (text && *text)
        wire_push_part(out, LLM_PART_TEXT)->text = xstrdup(text);
    return SLUICE_OK;
}

static void gm_parse_usage(const json_t *u, llm_usage *usage) {
    usage->input_tokens =
        wire_uint(u, "promptTokenCount") + wire_uint(u, "toolUsePromptTokenCount");
    usage->output_tokens =
        wire_uint(u, "candidatesTokenCount") + wire_uint(u, "thoughtsTokenCount");
    usage->cache_read_tokens = wire_uint(u, "cachedContentTokenCount");
}

/* Finish reasons that leave nothing worth keeping when no text or call came with them. */
static bool gm_retry_when_empty(const char *finish) {
    static const char *const reasons[] = {"STOP", "FINISH_REASON_UNSPECIFIED",
                                          "MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL"};
    for (size_t i = 0; finish && i < sizeof reasons / sizeof *reasons; i++)
        if (strcmp(finish, reasons[i]) == 0)
            return true;
    return !finish;
}

static bool gm_has_answer(const llm_response *r) {
    for (size_t i = 0; i < r->n_content; i++)
        if (r->content[i].kind == LLM_PART_TEXT || r->content[i].kind == LLM_PART_TOOL_CALL)
            return true;
    return false;
}

/* No candidate: a prompt Gemini blocked, or a body that is no answer. */
static int gm_no_candidate(const json_t *root, llm_response *out, char *err, size_t errlen) {
    const char *blocked = wire_get_str(json_object_get(root, "promptFeedback"), "blockReason");
    if (blocked && *blocked) {
        out->finish_reason = xstrdup(blocked);
        return SLUICE_OK;
    }
    const char *emsg = wire_get_str(json_object_get(root, "error"), "message");
    snprintf(err, errlen, "response has no candidates%s%.300s%s", emsg ? " (error: " : "",
             emsg ? emsg : "", emsg ? ")" : "");
    return SLUICE_EPROTO;
}

static int gm_parse_candidate(const json_t *cand, llm_response *out, char *err, size_t errlen) {
    if (!json_is_object(cand)) {
        snprintf(err, errlen, "candidates[0] is not an object");
        return SLUICE_EPROTO;
    }
    const json_t *parts = json_object_get(json_object_get(cand, "content"), "parts");
    if (parts && !json_is_array(parts)) {
        snprintf(err, errlen, "candidates[0].content.parts is not an array");
        return SLUICE_EPROTO;
    }
    size_t i, n_calls = 0;
    const json_t *part;
    json_array_foreach(parts, i, part) {
        int rc = gm_parse_part(part, i, &n_calls, out, err, errlen);
        if (rc)
            return rc;
    }
    const char *finish = wire_get_str(cand, "finishReason");
    if (!gm_has_answer(out) && gm_retry_when_empty(finish)) {
        snprintf(err, errlen, "candidates[0] holds no text and no function call (finishReason %s)",
                 finish ? finish : "absent");
        return SLUICE_EPROTO;
    }
    out->finish_reason = xstrdup(finish);
    return SLUICE_OK;
}

static int gm_parse_root(const json_t *root, llm_response *out, char *err, size_t errlen) {
    const json_t *cands = json_object_get(root, "candidates");
    int rc = json_array_size(cands) ? gm_parse_candidate(json_array_get(cands, 0), out, err, errlen)
                                    : gm_no_candidate(root, out, err, errlen);
    if (rc)
        return rc;
    gm_parse_usage(json_object_get(root, "usageMetadata"), &out->usage);
    llm_response_set_completion_from_content(out);
    return SLUICE_OK;
}

int gemini_parse_success(const model_info *m, const char *body, size_t len, llm_response *out,
                         char *err, size_t errlen) {
    (void)m;
    return wire_parse_success(body, len, gm_parse_root, out, err, errlen);
}

/* ---- errors ------------------------------------------------------------------------- */

/* The "error" object of an error body (also the first element of an array). Borrowed. */
static const json_t *gm_error_object(const json_t *root) {
    if (json_is_array(root))
        root = json_array_get(root, 0);
    const json_t *e = json_object_get(root, "error");
    return json_is_object(e) ? e : NULL;
}

/* The first detail of error `e` whose @type ends with `type`; NULL when none. */
static const json_t *gm_detail(const json_t *e, const char *type) {
    size_t i, n = strlen(type);
    const json_t *d;
    json_array_foreach(json_object_get(e, "details"), i, d) {
        const char *t = wire_get_str(d, "@type");
        size_t tn = t ? strlen(t) : 0;
        if (tn >= n && strcmp(t + tn - n, type) == 0)
            return d;
    }
    return NULL;
}

void gemini_parse_error(int status, const char *body, size_t len, char *msg, size_t msglen) {
    (void)status;
    json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    const json_t *e = gm_error_object(root);
    const char *state = wire_get_str(e, "status"), *text = wire_get_str(e, "message");
    const char *reason = wire_get_str(gm_detail(e, "google.rpc.ErrorInfo"), "reason");
    char line[1024];
    if (text && wire_line(text, strlen(text), sizeof line - 1, line, sizeof line)) {
        snprintf(msg, msglen, "%s%s%s%s%s%s", state ? state : "", reason ? " (" : "",
                 reason ? reason : "", reason ? ")" : "", state || reason ? ": " : "", line);
    } else {
        wire_raw_text(body, len, msg, msglen);
    }
    json_decref(root);
}

/* A protobuf Duration in its JSON form ("17s", "1.5s", "0.017s") in milliseconds, rounded
 * up; -1 when s is not one. */
static int64_t gm_duration_ms(const char *s) {
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    double secs = strtod(s, &end);
    if (end == s || errno || strcmp(end, "s") != 0 || !isfinite(secs) || secs < 0)
        return -1;
    double ms = secs * 1000.0;
    if (ms > 9e15)
        return (int64_t)9e15;
    int64_t whole = (int64_t)ms;
    return (double)whole < ms ? whole + 1 : whole; /* rounded up, without libm */
}

int64_t gemini_retry_after_ms(int status, const char *body, size_t len) {
    (void)status;
    json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    const json_t *info = gm_detail(gm_error_object(root), "google.rpc.RetryInfo");
    int64_t ms = gm_duration_ms(wire_get_str(info, "retryDelay"));
    json_decref(root);
    return ms;
}
