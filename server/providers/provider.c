/*
 * provider.c - the adapter table.
 *
 * Adding a provider is one ops table plus one case here; the dispatcher only ever asks
 * provider_get() for the adapter of a model's provider kind.
 */
#include "server/providers/provider.h"

const provider_ops *provider_get(provider_kind kind) {
    switch (kind) {
    case PROVIDER_OPENAI:
        return &provider_openai;
    case PROVIDER_ANTHROPIC:
        return &provider_anthropic;
    case PROVIDER_GEMINI:
        return &provider_gemini;
    }
    return NULL;
}
