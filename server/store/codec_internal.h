/*
 * codec_internal.h - what codec.c (encoding) and codec_decode.c (decoding) share (internal
 * to server/store/codec*.c).
 *
 * Short names for the generated types and presence bits, the bit sets each message defines,
 * the error buffer with its path prefixing, and the checks both directions apply, so the
 * encoder refuses exactly what the decoder refuses.
 */
#ifndef SLUICE_STORE_CODEC_INTERNAL_H
#define SLUICE_STORE_CODEC_INTERNAL_H

#include "server/store/codec.h"

#include <stdbool.h>

/* Generated message types. */
typedef Sluice__Store__V1__Part pb_part;
typedef Sluice__Store__V1__Message pb_message;
typedef Sluice__Store__V1__Tool pb_tool;
typedef Sluice__Store__V1__Sampling pb_sampling;
typedef Sluice__Store__V1__Request pb_request;
typedef Sluice__Store__V1__Usage pb_usage;
typedef Sluice__Store__V1__Attempt pb_attempt;
typedef Sluice__Store__V1__Response pb_response;

/* Presence bits (records.proto *Presence enums). */
#define PART_TEXT SLUICE__STORE__V1__PART_PRESENCE__PART_PRESENCE_TEXT
#define PART_ID SLUICE__STORE__V1__PART_PRESENCE__PART_PRESENCE_ID
#define PART_NAME SLUICE__STORE__V1__PART_PRESENCE__PART_PRESENCE_NAME
#define PART_ARGUMENTS SLUICE__STORE__V1__PART_PRESENCE__PART_PRESENCE_ARGUMENTS
#define PART_URL SLUICE__STORE__V1__PART_PRESENCE__PART_PRESENCE_URL
#define PART_DATA SLUICE__STORE__V1__PART_PRESENCE__PART_PRESENCE_DATA
#define PART_MEDIA_TYPE SLUICE__STORE__V1__PART_PRESENCE__PART_PRESENCE_MEDIA_TYPE
#define PART_DETAIL SLUICE__STORE__V1__PART_PRESENCE__PART_PRESENCE_DETAIL
#define PART_SIGNATURE SLUICE__STORE__V1__PART_PRESENCE__PART_PRESENCE_SIGNATURE
#define PART_ALL 0x1ffu

#define TOOL_NAME SLUICE__STORE__V1__TOOL_PRESENCE__TOOL_PRESENCE_NAME
#define TOOL_DESCRIPTION SLUICE__STORE__V1__TOOL_PRESENCE__TOOL_PRESENCE_DESCRIPTION
#define TOOL_PARAMETERS SLUICE__STORE__V1__TOOL_PRESENCE__TOOL_PRESENCE_PARAMETERS
#define TOOL_ALL 0x7u

#define SAMPLING_STOP0 SLUICE__STORE__V1__SAMPLING_PRESENCE__SAMPLING_PRESENCE_STOP0
#define SAMPLING_TEMPERATURE_NZ                                                                    \
    SLUICE__STORE__V1__SAMPLING_PRESENCE__SAMPLING_PRESENCE_TEMPERATURE_NEGATIVE_ZERO
#define SAMPLING_TOP_P_NZ                                                                          \
    SLUICE__STORE__V1__SAMPLING_PRESENCE__SAMPLING_PRESENCE_TOP_P_NEGATIVE_ZERO
#define SAMPLING_ALL 0x3fu
/* The LLM_SET_* bits (records.proto SamplingSet). */
#define SAMPLING_SET_ALL 0x7fu

#define REQUEST_SCHEMA_NAME SLUICE__STORE__V1__REQUEST_PRESENCE__REQUEST_PRESENCE_SCHEMA_NAME
#define REQUEST_OUTPUT_SCHEMA SLUICE__STORE__V1__REQUEST_PRESENCE__REQUEST_PRESENCE_OUTPUT_SCHEMA
#define REQUEST_PREFER_MODEL SLUICE__STORE__V1__REQUEST_PRESENCE__REQUEST_PRESENCE_PREFER_MODEL
#define REQUEST_ALL 0x7u

#define ATTEMPT_MODEL SLUICE__STORE__V1__ATTEMPT_PRESENCE__ATTEMPT_PRESENCE_MODEL
#define ATTEMPT_ERROR SLUICE__STORE__V1__ATTEMPT_PRESENCE__ATTEMPT_PRESENCE_ERROR
#define ATTEMPT_ALL 0x3u

#define RESP_ERROR_MESSAGE SLUICE__STORE__V1__RESPONSE_PRESENCE__RESPONSE_PRESENCE_ERROR_MESSAGE
#define RESP_COMPLETION SLUICE__STORE__V1__RESPONSE_PRESENCE__RESPONSE_PRESENCE_COMPLETION
#define RESP_FINISH_REASON SLUICE__STORE__V1__RESPONSE_PRESENCE__RESPONSE_PRESENCE_FINISH_REASON
#define RESP_THINKING SLUICE__STORE__V1__RESPONSE_PRESENCE__RESPONSE_PRESENCE_THINKING
#define RESP_MODEL_REQUESTED SLUICE__STORE__V1__RESPONSE_PRESENCE__RESPONSE_PRESENCE_MODEL_REQUESTED
#define RESP_MODEL_USED SLUICE__STORE__V1__RESPONSE_PRESENCE__RESPONSE_PRESENCE_MODEL_USED
#define RESP_COMPLETION_FROM_CONTENT                                                               \
    SLUICE__STORE__V1__RESPONSE_PRESENCE__RESPONSE_PRESENCE_COMPLETION_FROM_CONTENT
#define RESP_COST_NZ SLUICE__STORE__V1__RESPONSE_PRESENCE__RESPONSE_PRESENCE_COST_NEGATIVE_ZERO
#define RESP_COST_SAVED_NZ                                                                         \
    SLUICE__STORE__V1__RESPONSE_PRESENCE__RESPONSE_PRESENCE_COST_SAVED_NEGATIVE_ZERO
#define RESP_ALL 0x1ffu

/* The caller's error buffer (buf may be NULL when len is 0). */
typedef struct codec_err {
    char *buf;
    size_t len;
} codec_err;

/* Writes the message and returns rc. A message is "<field>: <what>", or ": <what>" when it
 * is about the message being mapped as a whole. */
int codec_fail(codec_err *e, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* When rc is an error, prefixes the message with "<name>[<i>]" ("<name>" when i is
 * SIZE_MAX) and a dot before a field, so paths are built on the failure path only.
 * Returns rc. */
int codec_within(codec_err *e, int rc, const char *name, size_t i);
/* At the top: names the top message ("request: unknown field 9") when the message is about
 * it as a whole. Returns rc. */
int codec_top(codec_err *e, int rc, const char *name);

/* The checks both directions share; rc is what a failure returns (SLUICE_EINVAL when
 * encoding, SLUICE_EPROTO when decoding). */
int codec_check_range(codec_err *e, int rc, const char *field, int v, int lo, int hi);
int codec_check_part(codec_err *e, int rc, int kind, bool has_url, bool has_data);
int codec_check_sampling(codec_err *e, int rc, unsigned set, size_t n_stop, int effort);

#endif
