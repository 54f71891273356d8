/*
 * fake_route.h - what the fake provider answers one HTTP request, whatever carried it.
 *
 * Both HTTP engines of the fake (libmicrohttpd for HTTP/1.1, the nghttp2 front for HTTP/2)
 * read a request into a fake_request and let this module decide: the route (OpenAI,
 * Anthropic, Gemini, control, not found), then fake_decide or fake_control_handle, then how the
 * answer travels (gzip when configured and the client accepts it; chunked or in small
 * DATA frames when configured). So a behaviour is written once and every wire serves it.
 * Thread safety: any thread (fake_state locks itself).
 */
#ifndef SLUICE_TESTS_FAKE_ROUTE_H
#define SLUICE_TESTS_FAKE_ROUTE_H

#include "tests/fake_provider/fake_reply.h"
#include "tests/fake_provider/fake_state.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum fake_route {
    FAKE_ROUTE_NOT_FOUND = 0,
    FAKE_ROUTE_OPENAI,
    FAKE_ROUTE_ANTHROPIC,
    FAKE_ROUTE_GEMINI, /* POST /v1beta/models/{model}:generateContent */
    FAKE_ROUTE_CONTROL,
} fake_route;

/* The longest model name a Gemini URL may carry. */
#define FAKE_MAX_MODEL_NAME 200u

/* Bodies are capped per route (bigger ones set body_too_large). */
#define FAKE_MAX_BODY (8u * 1024u * 1024u)
#define FAKE_MAX_CONTROL_BODY (1024u * 1024u)

/* One request as an HTTP engine read it. Every string may be NULL (absent). */
typedef struct fake_request {
    fake_route route;
    const char *method;
    const char *path; /* without the query */
    const char *authorization, *x_api_key, *x_goog_api_key, *anthropic_version, *accept_encoding;
    const char *arg_all, *arg_key; /* query arguments of control routes */
    const char *body;
    size_t body_len;
    bool body_too_large;
} fake_request;

/* The route of a method and path (the path without its query). Pure. */
fake_route fake_route_of(const char *method, const char *path);
/* True for the provider routes (counted as requests in flight). Pure. */
bool fake_route_is_provider(fake_route r);
/* The most body bytes the route accepts. Pure. */
size_t fake_route_max_body(fake_route r);
/* Decides the reply to `in` (out must be fake_reply_init'ed). */
void fake_route_decide(fake_state *st, const fake_request *in, fake_reply *out);

#endif
