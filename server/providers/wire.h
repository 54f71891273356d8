/*
 * wire.h - helpers shared by the provider adapters (private to server/providers/).
 *
 * The adapters build request bodies with jansson and parse response bodies back. These
 * helpers carry the parts both need: a builder context where the first error wins (so a
 * long chain of json_object_set_new calls is checked once at the end), JSON-text fields
 * parsed with a message naming the field, base64, schema-name sanitising, the load/parse/
 * clear frame of parse_success, bounded error texts from raw bodies and growing
 * llm_response content.
 *
 * Pure functions; any thread. Strings returned are freed with free().
 */
#ifndef SLUICE_PROVIDERS_WIRE_H
#define SLUICE_PROVIDERS_WIRE_H

#include "server/common/llm.h"
#include "server/providers/provider.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bodies are dumped compact; 15 significant digits print 0.7 as 0.7, not 0.69999999999999996. */
#define WIRE_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))
/* How much of a raw (non-JSON) error body is kept. */
#define WIRE_RAW_ERROR_MAX 500
/* The JSON schema of a tool without parameters. */
#define WIRE_EMPTY_SCHEMA "{\"type\":\"object\",\"properties\":{}}"

/* Builder state: rc is SLUICE_OK until the first failure, whose message stays in err. */
typedef struct wire_ctx {
    int rc;
    char *err;
    size_t errlen;
} wire_ctx;

void wire_ctx_init(wire_ctx *w, char *err, size_t errlen);
/* Records a failure unless one is recorded already. */
void wire_fail(wire_ctx *w, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A JSON string of s (NULL -> ""). Invalid UTF-8 fails with SLUICE_EINVAL naming `what`
 * and returns NULL (json_object_set_new/json_array_append_new accept NULL harmlessly). */
json_t *wire_str(wire_ctx *w, const char *s, const char *what);
/* Parses JSON text. NULL or empty text gives `fallback` parsed instead (may be NULL: then
 * returns NULL without failing). With need_object, anything but an object fails. */
json_t *wire_json_text(wire_ctx *w, const char *text, const char *fallback, bool need_object,
                       const char *what);
/* A new object {"type": type}. */
json_t *wire_typed(wire_ctx *w, const char *type);
/* Sets obj[key] = value, failing the context when jansson refuses (NULL value or OOM). */
void wire_set(wire_ctx *w, json_t *obj, const char *key, json_t *value);
/* Appends value to arr, same failure rule. */
void wire_append(wire_ctx *w, json_t *arr, json_t *value);
/* Sets obj[key] to the array of s's stop strings (at most LLM_MAX_STOP); nothing when s has
 * none. Every wire API takes the same list under its own name. */
void wire_set_stop(wire_ctx *w, json_t *obj, const char *key, const llm_sampling *s);

/* Every system message's text, joined with blank lines (Anthropic's "system", Gemini's
 * systemInstruction); NULL when there is none. Free with free(). */
char *wire_system_text(const llm_request *req);
/* Splits "data:<media type>;base64,<data>": true with *media_type (free with free()) and
 * *data (pointing into url) set; false, with both NULL, for any other URL. */
bool wire_data_url(const char *url, char **media_type, const char **data);

/* Base64 (RFC 4648, padded) of len bytes. Free with free(). */
char *wire_base64(const uint8_t *data, size_t len);
/* True when s contains no byte below 0x20 and no 0x7f (safe in a header line or URL). */
bool wire_is_printable(const char *s);
/* Writes a provider-safe tool/schema name ([a-zA-Z0-9_-], at most max_chars, never empty;
 * `fallback` when name is NULL or empty) into out (outlen > max_chars). */
void wire_safe_name(const char *name, const char *fallback, size_t max_chars, char *out,
                    size_t outlen);

/* Starts out (zeroed) with url = base_url + path. */
void wire_request_start(provider_request *out, const char *base_url, const char *path);
/* Appends a header line "Name: value". */
void wire_add_header(provider_request *out, const char *name, const char *value);
/* Adds the key's header "name: <scheme>key" (scheme "" for none) when api_key is set; a key
 * with control characters fails the context instead (it would split the header). */
void wire_add_auth(wire_ctx *w, provider_request *out, const char *name, const char *scheme,
                   const char *api_key);
/* Finishes a build: on success dumps `body` into out->body; on failure (or a dump
 * failure) cleans out up. Consumes body. Returns the context's rc. */
int wire_request_finish(wire_ctx *w, json_t *body, provider_request *out);

/* Parses a response body that must be a JSON object. SLUICE_EPROTO with a message
 * ("response body is not valid JSON: ...") otherwise. Free *out with json_decref. */
int wire_load_object(const char *body, size_t len, json_t **out, char *err, size_t errlen);
/* Parses the part of a response body below its root object into `out`. Returns SLUICE_OK
 * or SLUICE_EPROTO with a message in err. */
typedef int (*wire_parse_fn)(const json_t *root, llm_response *out, char *err, size_t errlen);
/* The frame of an adapter's parse_success: loads body as a JSON object (wire_load_object),
 * runs `parse` on it and, when `parse` fails, clears what it put into out
 * (wire_response_clear). Returns the first failure's code, or SLUICE_OK. */
int wire_parse_success(const char *body, size_t len, wire_parse_fn parse, llm_response *out,
                       char *err, size_t errlen);
/* Copies at most `max` bytes of s[0..len) into msg as one printable line: leading and
 * trailing blanks dropped, control bytes turned into spaces, never a cut UTF-8 sequence,
 * always NUL-terminated. Returns the length written. */
size_t wire_line(const char *s, size_t len, size_t max, char *msg, size_t msglen);
/* The start of a raw body (wire_line with WIRE_RAW_ERROR_MAX), or "empty response body"
 * when it is blank. */
void wire_raw_text(const char *body, size_t len, char *msg, size_t msglen);
/* A non-negative integer member, 0 when absent or of another type. */
uint64_t wire_uint(const json_t *obj, const char *key);
/* A string member or NULL. */
const char *wire_get_str(const json_t *obj, const char *key);

/* Appends a zeroed part of `kind` to r->content and returns it. */
llm_part *wire_push_part(llm_response *r, llm_part_kind kind);
/* Frees what a parser put into r (content, completion, finish_reason, thinking, usage). */
void wire_response_clear(llm_response *r);

#endif
