/*
 * fake_answer.h - the fake provider's pure request reading and answer writing.
 *
 * No I/O, no clock, no shared state: a parsed request in, JSON text out. Used by the HTTP
 * glue (fake_provider.c) on MHD worker threads; every function is thread-safe because it
 * touches only its arguments. Returned strings are malloc'd; free with free().
 */
#ifndef SLUICE_TESTS_FAKE_ANSWER_H
#define SLUICE_TESTS_FAKE_ANSWER_H

#include "server/common/buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum fake_api {
    FAKE_API_OPENAI = 1,
    FAKE_API_ANTHROPIC = 2,
    FAKE_API_GEMINI = 3, /* generateContent: the model is in the URL, not the body */
} fake_api;

/* A provider request body, read once. Borrowed pointers point into `root`. */
typedef struct fake_parsed {
    fake_api api;
    json_t *root;          /* owned */
    const char *model;     /* borrowed (from root, or model_buf for Gemini) */
    char *model_buf;       /* owned: the model a Gemini URL names */
    char *last_user_text;  /* owned; text of the last user message, "" if none */
    bool last_is_user;     /* the conversation ends with a user text message */
    buf prompt_text;       /* every message text (system included), '\n'-joined: markers */
    uint64_t est_tokens;   /* lm-deluge estimate: text/4 + 85 per non-text + 6 per message
                              + max tokens */
    uint64_t input_tokens; /* est_tokens without the max tokens */
    uint64_t max_tokens;
    char msg_hash[9];        /* 8 hex of sha256(messages [+ system]) */
    const json_t *tools;     /* non-empty tools array, or NULL */
    const char *forced_tool; /* tool the request forces, or NULL */
    const json_t *schema;    /* output JSON schema, or NULL */
    bool json_object;        /* OpenAI json_object mode, Gemini JSON without a schema */
    bool thinking;           /* Gemini: a thinking budget other than 0 */
    bool include_thoughts;   /* Gemini: thought summaries asked for */
} fake_parsed;

/* Parses a body. `model` is the model a Gemini URL names (ignored for the others, whose
 * body names it). Returns 0, or -1 with a provider-style message (answer 400). On success
 * out must be released with fake_parsed_cleanup; on failure it needs no cleanup. */
int fake_parse(fake_api api, const char *model, const char *body, size_t len, fake_parsed *out,
               char *err, size_t errlen);
void fake_parsed_cleanup(fake_parsed *p);

/* Markers found in a request's text (see fake_provider.h). */
typedef struct fake_markers {
    int status;         /* [[status:N...]]; 0 when absent */
    int retry_after_s;  /* -1 when absent */
    int retry_after_ms; /* -1 when absent */
    bool retry_after_date;
    bool reset, hang, truncate, malformed, context, tool;
    unsigned fail_first; /* 0 when absent */
    unsigned pad;        /* [[pad:N]]: N more bytes (spaces) of answer text; 0 when absent */
} fake_markers;

void fake_markers_scan(const char *text, fake_markers *m);

/* The deterministic 2xx answer body for a request. */
char *fake_answer_success(const fake_parsed *p);
/* A 200 body that is not valid JSON. */
char *fake_answer_malformed(fake_api api);
/* The provider's error body: OpenAI {"error":{message,type,param,code}}, Anthropic
 * {"type":"error","error":{type,message}}, Gemini {"error":{code,message,status}}. type/code
 * may be NULL (derived from status; for Gemini, type is the status word). */
char *fake_error_body(fake_api api, int status, const char *type, const char *code,
                      const char *message);
/* Gemini's error body, with a google.rpc.ErrorInfo detail when `reason` is set and a
 * google.rpc.RetryInfo detail ("retryDelay": "2s", "1.500s") when retry_delay_ms >= 0.
 * `state` NULL = the status word of the HTTP status. */
char *fake_gemini_error(int status, const char *state, const char *reason, const char *message,
                        int64_t retry_delay_ms);
/* The provider's canned error for a status (500, 503, 529, 404 ...). */
char *fake_error_for_status(fake_api api, int status, const char *model);
/* The same with a retry delay, which only Gemini carries in the body (the others in
 * headers, so for them it is ignored); -1 = none. */
char *fake_error_for_status_delay(fake_api api, int status, const char *model,
                                  int64_t retry_delay_ms);
/* The provider's real context-length error (status 400). */
char *fake_error_context(fake_api api, const fake_parsed *p);

/* Lowercase hex of the first n/2 bytes of sha256(data); out holds n + 1 bytes. */
void fake_sha256_hex(const void *data, size_t len, char *out, size_t n);
/* The first 8 bytes of sha256(data) as an integer, never 0. */
uint64_t fake_sha256_u64(const void *data, size_t len);

#endif
