/*
 * gemini.h - the pieces of the Gemini adapter (private to server/providers/).
 *
 * gemini.c builds requests and holds the ops table; gemini_schema.c turns the JSON Schemas
 * callers give sluice into the Schema objects Gemini takes; gemini_reply.c reads answers
 * and error bodies. All pure: no I/O, no clock, no state; any thread.
 */
#ifndef SLUICE_PROVIDERS_GEMINI_H
#define SLUICE_PROVIDERS_GEMINI_H

#include "server/common/llm.h"
#include "server/providers/wire.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Tool calls Gemini answers without an id get "gcall_<n>" (n counts the answer's calls):
 * unique within the answer and the same every time, so a cached answer stays valid. Such
 * ids are not sent back to Gemini, which never issued them. */
#define GEMINI_CALL_ID_PREFIX "gcall_"

/* The JSON Schema text `text` (`fallback` when NULL or empty; may be NULL: then NULL is
 * returned without failing) as a Gemini Schema object: types upper-cased, a type list
 * [T, "null"] as T plus nullable, const as a one-value enum, oneOf as anyOf, formats Gemini
 * does not know dropped, and every keyword outside Gemini's Schema (additionalProperties,
 * $schema, $defs, examples, ...) left out. $ref, allOf, tuple items and other type lists
 * fail the context (SLUICE_EINVAL naming `what`): Gemini has no equivalent. A new
 * reference, or NULL after a failure. */
json_t *gemini_schema(wire_ctx *w, const char *text, const char *fallback, const char *what);

/* provider_ops.parse_success, parse_error and retry_after_ms for Gemini (gemini_reply.c). */
int gemini_parse_success(const model_info *m, const char *body, size_t len, llm_response *out,
                         char *err, size_t errlen);
void gemini_parse_error(int status, const char *body, size_t len, char *msg, size_t msglen);
int64_t gemini_retry_after_ms(int status, const char *body, size_t len);

#endif
