/*
 * codec.h - JSON encoding of the internal request/response types for the store.
 *
 * Used for durable task records and cache values. Round-trips every field of
 * llm_request and llm_response (image bytes as base64). Decoding validates types and
 * fails cleanly on anything malformed (a corrupt store entry is a miss, never a crash).
 * Pure; any thread.
 */
#ifndef SLUICE_STORE_CODEC_H
#define SLUICE_STORE_CODEC_H

#include "server/common/llm.h"

#include <jansson.h>

/* New JSON value (caller json_decref's). */
json_t *codec_request_to_json(const llm_request *r);
json_t *codec_response_to_json(const llm_response *r);
json_t *codec_sampling_to_json(const llm_sampling *s);
/* Decodes; returns SLUICE_OK or SLUICE_EPROTO with a message naming the bad field.
 * *out is freed by the caller with llm_request_free / llm_response_free. */
int codec_request_from_json(const json_t *j, llm_request **out, char *err, size_t errlen);
int codec_response_from_json(const json_t *j, llm_response **out, char *err, size_t errlen);
/* Decodes into *out (cleaned up by the caller with llm_sampling_cleanup). */
int codec_sampling_from_json(const json_t *j, llm_sampling *out, char *err, size_t errlen);

#endif
