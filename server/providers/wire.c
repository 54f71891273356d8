/*
 * wire.c - JSON and text helpers shared by the provider adapters.
 *
 * Design: builders never check each jansson call. They go through wire_str / wire_set /
 * wire_append, which record the first failure in a wire_ctx (invalid UTF-8 in caller text,
 * a JSON-text field that does not parse, jansson refusing a value), and the adapter checks
 * the context once in wire_request_finish. No I/O, no state, no clock; memory comes from
 * alloc.h (aborts on exhaustion) or from jansson's allocator (default malloc/free).
 */
#include "server/providers/wire.h"

#include "server/common/alloc.h"
#include "server/common/utf8.h"
#include "sluice/status.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wire_ctx_init(wire_ctx *w, char *err, size_t errlen) {
    w->rc = SLUICE_OK;
    w->err = err;
    w->errlen = errlen;
    if (err && errlen)
        err[0] = '\0';
}

void wire_fail(wire_ctx *w, int rc, const char *fmt, ...) {
    if (w->rc != SLUICE_OK)
        return;
    w->rc = rc;
    if (w->err && w->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->err, w->errlen, fmt, ap);
        va_end(ap);
    }
}

json_t *wire_str(wire_ctx *w, const char *s, const char *what) {
    json_t *j = json_string(s ? s : "");
    if (!j)
        wire_fail(w, SLUICE_EINVAL, "%s is not valid UTF-8", what);
    return j;
}

json_t *wire_json_text(wire_ctx *w, const char *text, const char *fallback, bool need_object,
                       const char *what) {
    if (!text || !*text)
        text = fallback;
    if (!text)
        return NULL;
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    if (!j) {
        wire_fail(w, SLUICE_EINVAL, "%s is not valid JSON (line %d column %d)", what, e.line,
                  e.column);
        return NULL;
    }
    if (need_object && !json_is_object(j)) {
        json_decref(j);
        wire_fail(w, SLUICE_EINVAL, "%s must be a JSON object", what);
        return NULL;
    }
    return j;
}

json_t *wire_typed(wire_ctx *w, const char *type) {
    json_t *o = json_object();
    wire_set(w, o, "type", json_string(type));
    return o;
}

void wire_set(wire_ctx *w, json_t *obj, const char *key, json_t *value) {
    /* json_object_set_new consumes value even when it fails. */
    if (json_object_set_new(obj, key, value) != 0)
        wire_fail(w, SLUICE_EINVAL, "cannot set \"%s\" in the request body", key);
}

void wire_append(wire_ctx *w, json_t *arr, json_t *value) {
    if (json_array_append_new(arr, value) != 0)
        wire_fail(w, SLUICE_EINVAL, "cannot append to an array of the request body");
}

void wire_set_stop(wire_ctx *w, json_t *obj, const char *key, const llm_sampling *s) {
    if (!s->n_stop)
        return;
    json_t *stop = json_array();
    for (size_t i = 0; i < s->n_stop && i < LLM_MAX_STOP; i++)
        wire_append(w, stop, wire_str(w, s->stop[i], "stop"));
    wire_set(w, obj, key, stop);
}

/* Adds the length of (or, with s, copies) every system text part; returns the length. */
static size_t system_parts(const llm_request *req, char *s) {
    size_t off = 0;
    for (size_t i = 0; i < req->n_messages; i++)
        for (size_t j = 0; j < req->messages[i].n_parts; j++) {
            const llm_part *p = &req->messages[i].parts[j];
            if (req->messages[i].role != LLM_ROLE_SYSTEM || p->kind != LLM_PART_TEXT || !p->text)
                continue;
            size_t n = strlen(p->text);
            if (off) {
                if (s)
                    memcpy(s + off, "\n\n", 2);
                off += 2;
            }
            if (s)
                memcpy(s + off, p->text, n);
            off += n;
        }
    return off;
}

char *wire_system_text(const llm_request *req) {
    size_t len = system_parts(req, NULL);
    if (len == 0)
        return NULL;
    char *s = xmalloc(len + 1);
    system_parts(req, s);
    s[len] = '\0';
    return s;
}

bool wire_data_url(const char *url, char **media_type, const char **data) {
    *media_type = NULL;
    *data = NULL;
    if (!url || strncmp(url, "data:", 5) != 0)
        return false;
    const char *semi = strchr(url + 5, ';');
    if (!semi || strncmp(semi, ";base64,", 8) != 0)
        return false;
    *media_type = xstrndup(url + 5, (size_t)(semi - (url + 5)));
    *data = semi + 8;
    return true;
}

char *wire_base64(const uint8_t *data, size_t len) {
    /* EVP_EncodeBlock takes an int length: encode in chunks whose size is a multiple of 3. */
    enum { CHUNK = 3 * 1024 * 1024 };
    char *out = xmalloc(4 * ((len + 2) / 3) + 1);
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; i < len; i += CHUNK) {
        size_t n = len - i < CHUNK ? len - i : CHUNK;
        off += (size_t)EVP_EncodeBlock((unsigned char *)out + off, data + i, (int)n);
    }
    out[off] = '\0';
    return out;
}

bool wire_is_printable(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

void wire_safe_name(const char *name, const char *fallback, size_t max_chars, char *out,
                    size_t outlen) {
    if (!name || !*name)
        name = fallback;
    size_t n = 0;
    for (const char *p = name; *p && n < max_chars && n + 1 < outlen; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        out[n++] = ok ? c : '_';
    }
    out[n] = '\0';
}

void wire_request_start(provider_request *out, const char *base_url, const char *path) {
    memset(out, 0, sizeof *out);
    out->url = xasprintf("%s%s", base_url, path);
}

void wire_add_header(provider_request *out, const char *name, const char *value) {
    out->headers = xrealloc(out->headers, (out->n_headers + 1) * sizeof *out->headers);
    out->headers[out->n_headers++] = xasprintf("%s: %s", name, value);
}

void wire_add_auth(wire_ctx *w, provider_request *out, const char *name, const char *scheme,
                   const char *api_key) {
    if (!api_key || !*api_key)
        return;
    if (!wire_is_printable(api_key)) {
        wire_fail(w, SLUICE_EINVAL, "the API key holds control characters");
        return;
    }
    char *v = xasprintf("%s%s", scheme, api_key);
    wire_add_header(out, name, v);
    explicit_bzero(v, strlen(v));
    free(v);
}

int wire_request_finish(wire_ctx *w, json_t *body, provider_request *out) {
    if (w->rc == SLUICE_OK) {
        char *text = body ? json_dumps(body, WIRE_DUMP_FLAGS) : NULL;
        if (!text) {
            wire_fail(w, SLUICE_EINVAL, "the request body could not be serialised");
        } else {
            out->body = text;
            out->body_len = strlen(text);
        }
    }
    json_decref(body);
    if (w->rc != SLUICE_OK)
        provider_request_cleanup(out);
    return w->rc;
}

int wire_load_object(const char *body, size_t len, json_t **out, char *err, size_t errlen) {
    *out = NULL;
    if (!body || len == 0) {
        snprintf(err, errlen, "empty response body");
        return SLUICE_EPROTO;
    }
    json_error_t e;
    json_t *j = json_loadb(body, len, 0, &e);
    if (!j) {
        utf8_scrub(e.text); /* it quotes the body, possibly cut inside a character */
        snprintf(err, errlen, "response body is not valid JSON (%s at byte %d of %zu)", e.text,
                 e.position, len);
        return SLUICE_EPROTO;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        snprintf(err, errlen, "response body is not a JSON object");
        return SLUICE_EPROTO;
    }
    *out = j;
    return SLUICE_OK;
}

int wire_parse_success(const char *body, size_t len, wire_parse_fn parse, llm_response *out,
                       char *err, size_t errlen) {
    json_t *root;
    int rc = wire_load_object(body, len, &root, err, errlen);
    if (rc)
        return rc;
    rc = parse(root, out, err, errlen);
    if (rc)
        wire_response_clear(out);
    json_decref(root);
    return rc;
}

size_t wire_line(const char *s, size_t len, size_t max, char *msg, size_t msglen) {
    if (!msglen)
        return 0;
    size_t start = 0;
    while (start < len && (unsigned char)s[start] <= ' ')
        start++;
    size_t n = len - start;
    if (n > max)
        n = max;
    if (n > msglen - 1)
        n = msglen - 1;
    /* Do not end inside a UTF-8 sequence: back up over continuation bytes and their lead. */
    if (start + n < len && ((unsigned char)s[start + n] & 0xC0) == 0x80) {
        while (n > 0 && ((unsigned char)s[start + n] & 0xC0) == 0x80)
            n--;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[start + i];
        msg[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    while (n > 0 && msg[n - 1] == ' ')
        n--;
    msg[n] = '\0';
    return n;
}

void wire_raw_text(const char *body, size_t len, char *msg, size_t msglen) {
    if (!body || !wire_line(body, len, WIRE_RAW_ERROR_MAX, msg, msglen))
        snprintf(msg, msglen, "empty response body");
}

uint64_t wire_uint(const json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return 0;
    return (uint64_t)json_integer_value(v);
}

const char *wire_get_str(const json_t *obj, const char *key) {
    return json_string_value(json_object_get(obj, key));
}

llm_part *wire_push_part(llm_response *r, llm_part_kind kind) {
    r->content = xrealloc(r->content, (r->n_content + 1) * sizeof *r->content);
    llm_part *p = &r->content[r->n_content++];
    memset(p, 0, sizeof *p);
    p->kind = kind;
    return p;
}

void wire_response_clear(llm_response *r) {
    for (size_t i = 0; i < r->n_content; i++)
        llm_part_cleanup(&r->content[i]);
    free(r->content);
    r->content = NULL;
    r->n_content = 0;
    free(r->completion);
    r->completion = NULL;
    free(r->finish_reason);
    r->finish_reason = NULL;
    free(r->thinking);
    r->thinking = NULL;
    memset(&r->usage, 0, sizeof r->usage);
}
