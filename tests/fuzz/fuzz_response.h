/*
 * fuzz_response.h - the body of the two provider response targets (fuzz_openai.c,
 * fuzz_anthropic.c): a response body through one adapter's parsers and on into the
 * store, as the dispatcher would take it.
 */
#ifndef SLUICE_FUZZ_RESPONSE_H
#define SLUICE_FUZZ_RESPONSE_H

#include "server/providers/provider.h"

#include <stddef.h>
#include <stdint.h>

/* Parses data as a 2xx body (parse_success) and as error bodies (parse_error) of `ops`. */
void fuzz_provider_response(const provider_ops *ops, const uint8_t *data, size_t size);

#endif
