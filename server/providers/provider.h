/*
 * provider.h - provider adapters: const tables of pure functions, one per wire API.
 *
 * An adapter turns an llm_request plus the effective sampling parameters into the HTTP
 * request for one attempt, and turns the HTTP answer back into an llm_response or an
 * error message. Adapters do no I/O and keep no state: the dispatcher owns HTTP, retries
 * and pacing and knows only this header. Adding a provider = one more ops table plus one
 * line in provider_get().
 *
 * Thread safety: every function is pure and may be called from any thread.
 */
#ifndef SLUICE_PROVIDERS_PROVIDER_H
#define SLUICE_PROVIDERS_PROVIDER_H

#include "server/common/llm.h"
#include "server/providers/registry.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One HTTP request to send. Headers are complete "Name: value" lines and contain the API
 * key: never log them. Everything is owned by the struct (provider_request_cleanup). */
typedef struct provider_request {
    char *url;
    char **headers;
    size_t n_headers;
    char *body;
    size_t body_len;
} provider_request;

/* Frees everything r owns, wiping the header lines (they carry the API key) first, and
 * zeroes r. NULL is a no-op. Inline so the HTTP layer, which frees requests it was
 * handed, needs no link dependency on the adapters. */
static inline void provider_request_cleanup(provider_request *r) {
    if (!r)
        return;
    free(r->url);
    for (size_t i = 0; i < r->n_headers; i++) {
        explicit_bzero(r->headers[i], strlen(r->headers[i]));
        free(r->headers[i]);
    }
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof *r);
}

typedef struct provider_ops {
    const char *name; /* "openai" / "anthropic" / "gemini" */
    provider_kind kind;

    /* Builds the request for one attempt of `req` on model `m` with the effective
     * sampling `s` and the key's secret `api_key` (may be NULL: no auth header).
     * Maps system prompt, roles, images, tools, tool calls and results, output schema,
     * temperature, top_p, max_new_tokens, stop, reasoning effort / thinking budget.
     * Returns SLUICE_OK or SLUICE_EINVAL with a message when the request cannot be
     * expressed for this provider (e.g. images on a model without image support). */
    int (*build)(const model_info *m, const char *api_key, const llm_request *req,
                 const llm_sampling *s, provider_request *out, char *err, size_t errlen);

    /* Parses a 2xx body into `out`: content parts (text, tool calls, thinking), completion,
     * finish_reason, thinking and usage (cached tokens included). Does not set cost,
     * models, attempts or errors. Returns SLUICE_OK, or SLUICE_EPROTO with a message for
     * a body that is not the expected JSON (a retryable failure, never a success); on
     * failure out's content, completion, finish_reason, thinking and usage are left empty. */
    int (*parse_success)(const model_info *m, const char *body, size_t len, llm_response *out,
                         char *err, size_t errlen);

    /* Extracts a human-readable error from a non-2xx body: the provider's error.message
     * when the body is its JSON error shape, else the start of the raw text. Always
     * NUL-terminates msg. */
    void (*parse_error)(int status, const char *body, size_t len, char *msg, size_t msglen);

    /* Optional (NULL for a provider that names no delay in its error bodies). The delay in
     * milliseconds a non-2xx body asks for before the next attempt, or -1 when it names
     * none (or names it in a form this adapter does not understand). Gemini carries it in
     * the body as a google.rpc.RetryInfo detail ("retryDelay": "17s"), not in a Retry-After
     * header; the dispatcher consults this only when the answer had no Retry-After header,
     * and then treats the value exactly as one. */
    int64_t (*retry_after_ms)(int status, const char *body, size_t len);
} provider_ops;

/* The adapter for a provider kind; NULL for an unknown kind. */
const provider_ops *provider_get(provider_kind kind);

extern const provider_ops provider_openai;
extern const provider_ops provider_anthropic;
extern const provider_ops provider_gemini;

#endif
