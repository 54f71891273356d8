/*
 * provider.c - the adapter table and provider_request lifetime.
 *
 * Adding a provider is one ops table plus one case here; the dispatcher only ever asks
 * provider_get() for the adapter of a model's provider kind.
 */
#include "server/providers/provider.h"

#include <stdlib.h>
#include <string.h>

const provider_ops *provider_get(provider_kind kind) {
    switch (kind) {
    case PROVIDER_OPENAI:
        return &provider_openai;
    case PROVIDER_ANTHROPIC:
        return &provider_anthropic;
    }
    return NULL;
}

void provider_request_cleanup(provider_request *r) {
    if (!r)
        return;
    free(r->url);
    for (size_t i = 0; i < r->n_headers; i++) {
        /* Header lines carry the API key: wipe them before giving the memory back. */
        explicit_bzero(r->headers[i], strlen(r->headers[i]));
        free(r->headers[i]);
    }
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof *r);
}
