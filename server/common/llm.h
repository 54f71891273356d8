/*
 * llm.h - sluiced's internal request and response types.
 *
 * The service layer converts sluice.v1 protos into these structs at the edge; everything
 * behind it (dispatcher, providers, cache keys, store) sees only these. They are plain
 * data: heap strings owned by the struct, arrays with counts, one _free per type.
 * Optional numeric fields carry a bit in a `set` mask so per-prompt overrides can be
 * merged over per-model parameters field by field.
 *
 * Ownership: every string and array inside a struct is owned by that struct and freed by its
 * _free/_cleanup. _clone functions return deep copies.
 * Thread safety: none internally; a value is immutable once shared (the dispatcher shares
 * a request between deduplicated tasks read-only).
 */
#ifndef SLUICE_COMMON_LLM_H
#define SLUICE_COMMON_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- conversations ------------------------------------------------------------------ */

typedef enum llm_role {
    LLM_ROLE_SYSTEM = 1,
    LLM_ROLE_USER = 2,
    LLM_ROLE_ASSISTANT = 3,
    LLM_ROLE_TOOL = 4,
} llm_role;

typedef enum llm_part_kind {
    LLM_PART_TEXT = 1,
    LLM_PART_IMAGE = 2,
    LLM_PART_TOOL_CALL = 3,
    LLM_PART_TOOL_RESULT = 4,
    LLM_PART_THINKING = 5,
} llm_part_kind;

/* One content part. Which fields are used depends on `kind`; unused ones are NULL/0. */
typedef struct llm_part {
    llm_part_kind kind;
    char *text;      /* TEXT; THINKING text; TOOL_RESULT content */
    char *id;        /* TOOL_CALL call id; TOOL_RESULT tool_call_id */
    char *name;      /* TOOL_CALL tool name */
    char *arguments; /* TOOL_CALL arguments as JSON object text */
    char *url;       /* IMAGE by URL (http(s) or data:) */
    uint8_t *data;   /* IMAGE inline bytes */
    size_t data_len;
    char *media_type; /* IMAGE MIME type of data */
    char *detail;     /* IMAGE detail hint (OpenAI), may be NULL */
    char *signature;  /* THINKING signature (Anthropic; Gemini thought signature), may be NULL */
    bool is_error;    /* TOOL_RESULT */
} llm_part;

typedef struct llm_message {
    llm_role role;
    llm_part *parts;
    size_t n_parts;
} llm_message;

typedef struct llm_tool {
    char *name;
    char *description; /* may be NULL */
    char *parameters;  /* JSON schema object text (canonical: sorted keys, compact) */
    bool strict;
} llm_tool;

typedef enum llm_effort {
    LLM_EFFORT_UNSET = 0,
    LLM_EFFORT_NONE = 1,
    LLM_EFFORT_MINIMAL = 2,
    LLM_EFFORT_LOW = 3,
    LLM_EFFORT_MEDIUM = 4,
    LLM_EFFORT_HIGH = 5,
    LLM_EFFORT_XHIGH = 6,
} llm_effort;

/* Bits of llm_sampling.set: which fields hold an explicit value. */
enum {
    LLM_SET_TEMPERATURE = 1u << 0,
    LLM_SET_TOP_P = 1u << 1,
    LLM_SET_MAX_NEW_TOKENS = 1u << 2,
    LLM_SET_STOP = 1u << 3,
    LLM_SET_EFFORT = 1u << 4,
    LLM_SET_THINKING_BUDGET = 1u << 5,
    LLM_SET_JSON_MODE = 1u << 6,
};

#define LLM_DEFAULT_TEMPERATURE 1.0
#define LLM_DEFAULT_TOP_P 1.0
#define LLM_DEFAULT_MAX_NEW_TOKENS 512u
#define LLM_MAX_STOP 4

typedef struct llm_sampling {
    unsigned set; /* LLM_SET_* bits */
    double temperature;
    double top_p;
    uint32_t max_new_tokens;
    char *stop[LLM_MAX_STOP];
    size_t n_stop;
    llm_effort effort;
    uint32_t thinking_budget;
    bool json_mode;
} llm_sampling;

/* One prompt with everything that shapes its answer except the model. */
typedef struct llm_request {
    llm_message *messages;
    size_t n_messages;
    llm_tool *tools;
    size_t n_tools;
    char *schema_name;     /* output schema name, NULL when no schema */
    char *output_schema;   /* JSON schema object text (canonical), NULL when none */
    llm_sampling sampling; /* per-prompt overrides (only `set` fields apply) */
    char *prefer_model;    /* may be NULL */
} llm_request;

/* ---- responses ---------------------------------------------------------------------- */

typedef struct llm_usage {
    uint64_t input_tokens;
    uint64_t output_tokens;
    uint64_t cache_read_tokens;
    uint64_t cache_write_tokens;
} llm_usage;

typedef struct llm_attempt {
    char *model;
    int status_code; /* 0 when no HTTP response arrived */
    uint32_t latency_ms;
    uint32_t retry_after_ms;
    char *error; /* NULL when the attempt succeeded */
} llm_attempt;

/* Mirrors sluice.v1.ErrorKind. */
typedef enum llm_error_kind {
    LLM_ERR_NONE = 0,
    LLM_ERR_PROVIDER = 1,
    LLM_ERR_RATE_LIMITED = 2,
    LLM_ERR_TRANSPORT = 3,
    LLM_ERR_INVALID_REQUEST = 4,
    LLM_ERR_NO_MODEL = 5,
    LLM_ERR_CANCELLED = 6,
    LLM_ERR_TIMEOUT = 7,
} llm_error_kind;

typedef struct llm_response {
    bool is_error;
    llm_error_kind error_kind;
    int status_code;
    char *error_message;
    char *completion; /* all text parts joined; NULL on error */
    llm_part *content;
    size_t n_content;
    char *finish_reason;
    char *thinking;
    llm_usage usage;
    double cost;
    double cost_saved;
    char *model_requested;
    char *model_used;
    llm_attempt *attempts;
    size_t n_attempts;
    bool local_cache_hit;
    bool deduplicated;
    uint32_t latency_ms;
} llm_response;

/* ---- functions ---------------------------------------------------------------------- */

/* Frees the fields of a part / message / tool (not the struct itself). NULL-safe. */
void llm_part_cleanup(llm_part *p);
void llm_message_cleanup(llm_message *m);
void llm_tool_cleanup(llm_tool *t);
void llm_sampling_cleanup(llm_sampling *s);
/* Deep copies into *dst (which is overwritten, not freed). */
void llm_part_copy(llm_part *dst, const llm_part *src);
void llm_sampling_copy(llm_sampling *dst, const llm_sampling *src);

/* Allocates an empty request. Free with llm_request_free. */
llm_request *llm_request_new(void);
/* Frees a request and everything in it. NULL-safe. */
void llm_request_free(llm_request *r);
/* Appends a message of `role` holding one text part (text copied). */
void llm_request_add_text(llm_request *r, llm_role role, const char *text);

/* Writes into *out the parameters in effect: defaults, then `base` (the model's), then
 * `override` (the prompt's), field by field. *out must be cleaned up with
 * llm_sampling_cleanup. Either input may be NULL. */
void llm_sampling_merge(llm_sampling *out, const llm_sampling *base, const llm_sampling *override);

/* lm-deluge's token estimate: max_new_tokens + floor(code points / 4) per text part
 * (text, thinking text, tool-call arguments excluded) + 85 per non-text part
 * + 6 per message. Pure. */
uint64_t llm_request_estimate_tokens(const llm_request *r, uint32_t max_new_tokens);

/* Checks that a request is well formed: at least one message, every message has parts,
 * part kinds fit their roles, images have a source, tool calls have names, tool results
 * ids, JSON fields parse as objects. On failure returns SLUICE_EINVAL and writes a message
 * naming the offending element ("messages[2].parts[0]: ...") into err. Pure. */
int llm_request_validate(const llm_request *r, char *err, size_t errlen);

/* Allocates an empty response. Free with llm_response_free. */
llm_response *llm_response_new(void);
void llm_response_free(llm_response *r);
llm_response *llm_response_clone(const llm_response *r);
/* Appends a copy of an attempt record (strings are copied). */
void llm_response_add_attempt(llm_response *r, const char *model, int status, uint32_t latency_ms,
                              uint32_t retry_after_ms, const char *error);
/* Replaces completion with the concatenation of the text parts of content (NULL if none). */
void llm_response_set_completion_from_content(llm_response *r);
/* Sets is_error, kind, status and a formatted error message (at most 1023 bytes, cut
 * between characters, ill-formed UTF-8 replaced by U+FFFD). */
void llm_response_set_error(llm_response *r, llm_error_kind kind, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
