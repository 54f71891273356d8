/*
 * sluice.h - the sluice C SDK: lm-deluge's async client API over sluiced's gRPC service.
 *
 *   lm-deluge                         sluice
 *   LLMClient(models, ...)            sluice_client_new(target, &opts)
 *   client.open() / close()           sluice_client_open / sluice_client_close
 *   client.reset_tracker()            sluice_client_reset_tracker
 *   tracker                           sluice_client_status
 *   process_prompts_async(prompts)    sluice_process_prompts (input order, blocking)
 *     return_completions_only=True    sluice_process_prompts_completions
 *     (as results arrive)             sluice_process_prompts_cb / _async
 *   start_nowait(prompt) -> id        sluice_start_nowait
 *   start(prompt)                     sluice_start
 *   wait_for(id) / wait_for_all(ids)  sluice_wait_for / sluice_wait_for_all
 *   as_completed(ids)                 sluice_as_completed + sluice_iter_next
 *
 * Every call goes to sluiced, which owns the one dispatcher (pacing, retries, fallback,
 * cache). Per-prompt failures are responses (sluice_response_is_error), never call errors.
 *
 * Errors: fallible functions return SLUICE_OK (0) or a negative sluice_status (status.h);
 * sluice_last_error() gives a human-readable message for the calling thread's most recent
 * failure. The SDK never prints and never aborts.
 *
 * Ownership: pointers passed in are borrowed for the call unless a comment says the
 * function "takes ownership". Returned memory names its free function.
 *
 * Thread safety: a sluice_client may be used from several threads at once once it has been
 * created (and opened, if you open it). Prompts, responses and iterators belong to one
 * thread at a time.
 */
#ifndef SLUICE_SLUICE_H
#define SLUICE_SLUICE_H

#include "sluice/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors and logging ------------------------------------------------------------- */

/* The message of the calling thread's most recent failed SDK call ("" if none). Valid
 * until that thread's next SDK call. */
SLUICE_API const char *sluice_last_error(void);

typedef void (*sluice_log_fn)(void *ud, const char *message);
/* Routes the SDK's diagnostic messages (few, plus gRPC core's errors: the first
 * sluice_client_new installs a process-wide gRPC log function that forwards them here) to
 * fn; NULL turns them off (the default). Call before other threads use the SDK. */
SLUICE_API void sluice_set_log_callback(sluice_log_fn fn, void *ud);

/* ---- prompts (conversation builders) ------------------------------------------------- */

/* Sampling parameters; a zeroed struct means "all defaults". */
typedef struct sluice_sampling {
    bool has_temperature;
    double temperature; /* 0..2; default 1.0 */
    bool has_top_p;
    double top_p;             /* (0, 1]; default 1.0 */
    uint32_t max_new_tokens;  /* 0 = default (512) */
    int reasoning_effort;     /* 0 unset, 1 none, 2 minimal, 3 low, 4 medium, 5 high, 6 xhigh */
    uint32_t thinking_budget; /* Anthropic / Gemini thinking tokens; 0 = unset */
    bool json_mode;
} sluice_sampling;

typedef struct sluice_prompt sluice_prompt;

typedef enum sluice_role {
    SLUICE_ROLE_SYSTEM = 1,
    SLUICE_ROLE_USER = 2,
    SLUICE_ROLE_ASSISTANT = 3,
    SLUICE_ROLE_TOOL = 4,
} sluice_role;

/* An empty prompt. Free with sluice_prompt_free. NULL on allocation failure. */
SLUICE_API sluice_prompt *sluice_prompt_new(void);
/* A prompt of one user message. Free with sluice_prompt_free. */
SLUICE_API sluice_prompt *sluice_prompt_text(const char *text);
/* Frees a prompt. NULL-safe. */
SLUICE_API void sluice_prompt_free(sluice_prompt *p);

/* Appends a message with one text part (system / user / assistant). */
SLUICE_API int sluice_prompt_system(sluice_prompt *p, const char *text);
SLUICE_API int sluice_prompt_user(sluice_prompt *p, const char *text);
SLUICE_API int sluice_prompt_assistant(sluice_prompt *p, const char *text);
/* Appends an empty message; parts are added to the last message with the _add_ calls. */
SLUICE_API int sluice_prompt_message(sluice_prompt *p, sluice_role role);
/* Adds a text part to the last message. */
SLUICE_API int sluice_prompt_add_text(sluice_prompt *p, const char *text);
/* Adds an image by URL (https: or data:) to the last message; detail may be NULL. */
SLUICE_API int sluice_prompt_add_image_url(sluice_prompt *p, const char *url, const char *detail);
/* Adds an inline image (bytes are copied) to the last message. */
SLUICE_API int sluice_prompt_add_image_data(sluice_prompt *p, const void *data, size_t len,
                                            const char *media_type);
/* Adds a tool call to the last (assistant) message; arguments_json is a JSON object. */
SLUICE_API int sluice_prompt_add_tool_call(sluice_prompt *p, const char *id, const char *name,
                                           const char *arguments_json);
/* Adds a tool result to the last (tool or user) message. */
SLUICE_API int sluice_prompt_add_tool_result(sluice_prompt *p, const char *tool_call_id,
                                             const char *content, bool is_error);
/* Declares a tool the model may call; parameters_json is a JSON schema object. */
SLUICE_API int sluice_prompt_add_tool(sluice_prompt *p, const char *name, const char *description,
                                      const char *parameters_json);
/* Asks for structured output matching schema_json (name may be NULL: "response"). */
SLUICE_API int sluice_prompt_set_output_schema(sluice_prompt *p, const char *name,
                                               const char *schema_json);
/* Prefers this model of the session when it is usable. */
SLUICE_API int sluice_prompt_set_prefer_model(sluice_prompt *p, const char *model);
/* The caller's id, echoed in the response (sluice_response_custom_id). */
SLUICE_API int sluice_prompt_set_custom_id(sluice_prompt *p, const char *custom_id);
/* Per-prompt sampling overrides (fields left unset keep the session's values). */
SLUICE_API int sluice_prompt_set_sampling(sluice_prompt *p, const sluice_sampling *s);

/* ---- responses ---------------------------------------------------------------------- */

typedef struct sluice_response sluice_response;

typedef enum sluice_error_kind {
    SLUICE_ERROR_NONE = 0,
    SLUICE_ERROR_PROVIDER = 1,
    SLUICE_ERROR_RATE_LIMITED = 2,
    SLUICE_ERROR_TRANSPORT = 3,
    SLUICE_ERROR_INVALID_REQUEST = 4,
    SLUICE_ERROR_NO_MODEL = 5,
    SLUICE_ERROR_CANCELLED = 6,
    SLUICE_ERROR_TIMEOUT = 7,
    SLUICE_ERROR_NOT_FOUND = 8, /* sluice_wait_for_all: the id names no task */
} sluice_error_kind;

typedef struct sluice_usage {
    uint64_t input_tokens, output_tokens, cache_read_tokens, cache_write_tokens;
} sluice_usage;

typedef struct sluice_attempt {
    const char *model;    /* owned by the response */
    uint32_t status_code; /* 0 when no HTTP answer arrived */
    uint32_t latency_ms;
    uint32_t retry_after_ms;
    const char *error; /* "" when the attempt succeeded */
} sluice_attempt;

/* Frees a response. NULL-safe. */
SLUICE_API void sluice_response_free(sluice_response *r);
/* Frees an array of n responses and the array. NULL-safe. */
SLUICE_API void sluice_responses_free(sluice_response **rs, size_t n);

/* Accessors. Strings are owned by the response and never NULL ("" when absent). */
SLUICE_API const char *sluice_response_completion(const sluice_response *r);
SLUICE_API bool sluice_response_is_error(const sluice_response *r);
SLUICE_API const char *sluice_response_error_message(const sluice_response *r);
SLUICE_API sluice_error_kind sluice_response_error_kind(const sluice_response *r);
SLUICE_API uint32_t sluice_response_status_code(const sluice_response *r);
SLUICE_API const char *sluice_response_finish_reason(const sluice_response *r);
SLUICE_API const char *sluice_response_model_used(const sluice_response *r);
SLUICE_API const char *sluice_response_model_requested(const sluice_response *r);
SLUICE_API const char *sluice_response_thinking(const sluice_response *r);
SLUICE_API sluice_usage sluice_response_usage(const sluice_response *r);
SLUICE_API double sluice_response_cost(const sluice_response *r);
SLUICE_API double sluice_response_cost_saved(const sluice_response *r);
SLUICE_API bool sluice_response_local_cache_hit(const sluice_response *r);
SLUICE_API bool sluice_response_deduplicated(const sluice_response *r);
SLUICE_API uint32_t sluice_response_latency_ms(const sluice_response *r);
SLUICE_API size_t sluice_response_n_attempts(const sluice_response *r);
/* The i-th attempt (i < n_attempts); strings stay owned by the response. */
SLUICE_API sluice_attempt sluice_response_attempt(const sluice_response *r, size_t i);
SLUICE_API size_t sluice_response_n_tool_calls(const sluice_response *r);
/* The i-th tool call of the answer; out pointers are owned by the response. */
SLUICE_API int sluice_response_tool_call(const sluice_response *r, size_t i, const char **id,
                                         const char **name, const char **arguments_json);
/* The task that produced the response ("" for an invalid batch prompt), the prompt's
 * index in its batch (or Prompt order) and its custom id. */
SLUICE_API const char *sluice_response_task_id(const sluice_response *r);
SLUICE_API uint64_t sluice_response_index(const sluice_response *r);
SLUICE_API const char *sluice_response_custom_id(const sluice_response *r);

/* ---- the client --------------------------------------------------------------------- */

typedef enum sluice_cache_mode {
    SLUICE_CACHE_READ_WRITE = 0, /* default */
    SLUICE_CACHE_READ_ONLY = 1,
    SLUICE_CACHE_WRITE_ONLY = 2,
    SLUICE_CACHE_OFF = 3,
} sluice_cache_mode;

typedef struct sluice_model {
    const char *name;         /* registry name, e.g. "gpt-4.1-mini" */
    double weight;            /* relative; 0 = fallback-only (all 0 = uniform) */
    sluice_sampling sampling; /* this model's parameters (over the session's) */
} sluice_model;

typedef struct sluice_client_options {
    const sluice_model *models; /* at least one */
    size_t n_models;
    const char *name;                 /* display name, may be NULL */
    uint32_t max_requests_per_minute; /* 0 = the upstream keys' */
    uint32_t max_tokens_per_minute;
    uint32_t max_concurrent_requests;
    uint32_t max_attempts;       /* 0 = 5 */
    uint32_t request_timeout_ms; /* per attempt; 0 = 30000 */
    uint32_t task_timeout_ms;    /* per prompt overall; 0 = 600000 */
    sluice_cache_mode cache_mode;
    sluice_sampling sampling; /* session-wide parameters */
    const char *auth_token;   /* bearer token, may be NULL */
    bool use_tls;
    const char *tls_root_certs_pem; /* PEM text; NULL = system roots */
    const char *tls_server_name;    /* override the checked name (tests), may be NULL */
    uint32_t rpc_timeout_ms;        /* deadline of unary RPCs; 0 = 60000 */
    size_t max_message_bytes;       /* 0 = 16 MiB */
    /* Batch splitting for proxies that limit a request body: the most request bytes one
     * BatchProcess call sends (every gRPC message with its 5-byte prefix, which is what a
     * proxy counts as the body: nginx's client_max_body_size, 1 MiB by default, ingress-nginx's
     * proxy-body-size). Set it to the proxy's limit; 0 = no limit (one call per batch).
     * A batch that needs more goes out as several BatchProcess calls, one after another, on
     * one session: the open session, or one opened for the batch and closed after it. Each
     * call ends with its prompts answered before the next starts. The caller still sees one
     * batch: results carry their index in the whole batch (the blocking forms return them in
     * input order), progress counts the whole batch (done and expected over all calls), and
     * the session's tracker covers every call. A prompt too large to go in a call alone, or
     * a value under 256, fails the batch with SLUICE_EINVAL before any prompt is sent. */
    size_t max_call_bytes;
    /* Keepalive: while a call is open the channel pings sluiced after keepalive_time_ms
     * without activity and drops the connection when a ping is not acknowledged within
     * keepalive_timeout_ms (its calls fail with SLUICE_EUNAVAILABLE), so a dead server,
     * proxy or network path is noticed instead of waited on. 0 = 30000 and 20000;
     * keepalive_time_ms UINT32_MAX = no pings. sluiced accepts pings every 5 s or more
     * (its keepalive.min_client_ping_interval_ms): one that does not (an older sluiced, a
     * stricter proxy) closes the connection with "too many pings" after the third. */
    uint32_t keepalive_time_ms;
    uint32_t keepalive_timeout_ms;
} sluice_client_options;

typedef struct sluice_client sluice_client;

/* Mirrors sluice.v1.TrackerStatus. */
typedef struct sluice_tracker {
    char session_id[96];
    uint64_t total, started, in_progress, succeeded, failed, cached, cancelled;
    uint64_t rate_limit_errors, attempts, queued, deduplicated;
    uint64_t input_tokens, output_tokens, cache_read_tokens, cache_write_tokens;
    double cost, cost_saved, elapsed_s;
    int limiting_factor; /* 0 none, 1 requests, 2 tokens, 3 concurrency, 4 cooldown, 5 retry budget
                          */
} sluice_tracker;

/* Creates a client for sluiced at `target` ("host:port"). The options are copied.
 * Connects lazily. Returns SLUICE_OK, SLUICE_EINVAL (no models, ...) or SLUICE_ENOMEM.
 * Free with sluice_client_free. */
SLUICE_API int sluice_client_new(const char *target, const sluice_client_options *opts,
                                 sluice_client **out);
/* Closes the session if open (ignoring errors) and frees the client. NULL-safe. Must not
 * race other calls on the client. */
SLUICE_API void sluice_client_free(sluice_client *c);

/* Opens a session (OpenSession) with the client's options; later batches and starts use
 * its tracker, which accumulates until close or reset. Without open, a batch uses a
 * session of its own, and start_nowait opens one on first use. Returns SLUICE_OK,
 * SLUICE_EBUSY if already open, or the RPC's error (SLUICE_EINVAL names the bad field). */
SLUICE_API int sluice_client_open(sluice_client *c);
/* Uses an existing session (opened earlier, possibly by another process of the same
 * tenant) instead of opening one: checks it with GetStatus. SLUICE_EBUSY if the client is
 * already open, SLUICE_ENOTFOUND for an unknown session. */
SLUICE_API int sluice_client_attach(sluice_client *c, const char *session_id);
/* sluice_client_attach that also fills *status (may be NULL) with the tracker read to check
 * the session: attach and status in one GetStatus. */
SLUICE_API int sluice_client_attach_status(sluice_client *c, const char *session_id,
                                           sluice_tracker *status);
/* Forgets the session without closing it (it stays open in sluiced). */
SLUICE_API void sluice_client_detach(sluice_client *c);
/* Closes the session (cancelling its unfinished tasks) and fills *final (may be NULL)
 * with the final tracker. SLUICE_ECLOSED if not open. */
SLUICE_API int sluice_client_close(sluice_client *c, sluice_tracker *final);
/* Zeroes the tracker (optionally forgetting blocklisted models); *before gets the status
 * just before. SLUICE_ECLOSED if not open. */
SLUICE_API int sluice_client_reset_tracker(sluice_client *c, bool clear_blocklist,
                                           sluice_tracker *before);
/* The tracker now. SLUICE_ECLOSED if not open. */
SLUICE_API int sluice_client_status(sluice_client *c, sluice_tracker *out);
/* The open session's id, or NULL. Owned by the client and valid until the session changes:
 * do not call this while another thread opens, attaches, detaches or closes `c`. */
SLUICE_API const char *sluice_client_session_id(const sluice_client *c);

/* ---- batches ------------------------------------------------------------------------ */

typedef struct sluice_batch_options {
    bool show_progress;            /* ask for progress events (delivered to on_progress) */
    uint32_t progress_interval_ms; /* 0 = 1000 */
    /* Called with each progress snapshot (may be NULL). */
    void (*on_progress)(void *ud, const sluice_tracker *session, uint64_t done, uint64_t expected,
                        double rate_per_s);
    void *progress_ud;
    uint32_t timeout_ms; /* deadline of the whole batch; 0 = none */
} sluice_batch_options;

/* Receives each result as it arrives (completion order); takes ownership of r (free with
 * sluice_response_free). sluice_response_index(r) is the prompt's position. */
typedef void (*sluice_result_fn)(void *ud, sluice_response *r);

/* Runs a batch (BatchProcess) and returns the responses in input order: *out is an array
 * of n responses (free with sluice_responses_free). Blocks. Per-prompt failures are
 * error responses; an invalid prompt gets one too. Returns SLUICE_EINVAL for n == 0, or
 * the stream's error (SLUICE_EUNAVAILABLE, SLUICE_ETIMEDOUT, ...), in which case *out
 * holds the responses that arrived (NULL for the others) - re-sending the same prompts
 * finishes the rest from the cache. opts may be NULL. */
SLUICE_API int sluice_process_prompts(sluice_client *c, sluice_prompt *const *prompts, size_t n,
                                      const sluice_batch_options *opts, sluice_response ***out);
/* Like sluice_process_prompts, but returns only the completion texts (the server sends
 * only those): *out is an array of n strings, NULL for failed prompts (free with
 * sluice_completions_free). */
SLUICE_API int sluice_process_prompts_completions(sluice_client *c, sluice_prompt *const *prompts,
                                                  size_t n, const sluice_batch_options *opts,
                                                  char ***out);
SLUICE_API void sluice_completions_free(char **completions, size_t n);
/* Runs a batch and hands each result to on_result on the calling thread as it arrives.
 * Blocks until the batch ends. */
SLUICE_API int sluice_process_prompts_cb(sluice_client *c, sluice_prompt *const *prompts, size_t n,
                                         const sluice_batch_options *opts,
                                         sluice_result_fn on_result, void *ud);

/* A batch running on a background thread. */
typedef struct sluice_batch sluice_batch;
/* Starts sluice_process_prompts_cb on a new thread and returns at once; on_result and
 * on_progress run on that thread. The prompts are copied. Free with sluice_batch_free. */
SLUICE_API int sluice_process_prompts_async(sluice_client *c, sluice_prompt *const *prompts,
                                            size_t n, const sluice_batch_options *opts,
                                            sluice_result_fn on_result, void *ud,
                                            sluice_batch **out);
/* Waits for the batch to end; returns its status (as sluice_process_prompts_cb would), and
 * sluice_last_error() on the calling thread then says why it failed. */
SLUICE_API int sluice_batch_wait(sluice_batch *b);
/* Cancels the batch (its unfinished prompts are cancelled in sluiced). Any thread. */
SLUICE_API void sluice_batch_cancel(sluice_batch *b);
/* Waits for the batch if needed and frees it. NULL-safe. */
SLUICE_API void sluice_batch_free(sluice_batch *b);

/* ---- start / wait ------------------------------------------------------------------- */

/* Enqueues one prompt (durable in sluiced) and returns its task id at once (free with
 * free()). Opens a session on first use if the client is not open. */
SLUICE_API int sluice_start_nowait(sluice_client *c, const sluice_prompt *prompt, char **task_id);
/* start_nowait for n prompts in one Start call. sluiced enqueues all or none: a refusal
 * (SLUICE_EINVAL naming the bad prompt, SLUICE_ELIMIT naming the open-task limit, ...)
 * started nothing. *task_ids gets n ids in the order of prompts (NULL on failure); free
 * with sluice_task_ids_free(ids, n). The prompts stay the caller's. As with any unary call,
 * a transport failure after sluiced accepted the call leaves tasks whose ids were lost
 * (sluice_wait_for_all with n == 0 still finds them in the session). Keep each call well
 * under the server's max message size (16 MiB by default). */
SLUICE_API int sluice_start_many(sluice_client *c, const sluice_prompt *const *prompts, size_t n,
                                 char ***task_ids);
/* Frees n ids from sluice_start_many and the array. NULL-safe. */
SLUICE_API void sluice_task_ids_free(char **task_ids, size_t n);
/* start_nowait + wait_for: blocks for the response (free with sluice_response_free). */
SLUICE_API int sluice_start(sluice_client *c, const sluice_prompt *prompt, sluice_response **out);
/* Waits for one task. timeout_ms 0 = no limit (however long it takes: sluiced answers one
 * Wait after at most its wait cap, and the SDK waits again). SLUICE_ETIMEDOUT when it is
 * still running at the timeout; SLUICE_ENOTFOUND for an unknown id. */
SLUICE_API int sluice_wait_for(sluice_client *c, const char *task_id, uint32_t timeout_ms,
                               sluice_response **out);
/* Waits for several tasks (n == 0: every task of the open session unfinished now) and
 * returns their responses in the order of ids: *out has *n_out entries (n, or the
 * session's count), free with sluice_responses_free. timeout_ms 0 = no limit. Entries of
 * tasks still running at the timeout are NULL and the call returns SLUICE_ETIMEDOUT. An
 * id that names no task gets an error response of kind SLUICE_ERROR_NOT_FOUND naming it
 * (the other tasks are waited for as usual). Results too large for one answer of the
 * server, and tasks still running when sluiced's cap on one Wait passed, are fetched with
 * further Waits. SLUICE_ENOMEM when out of memory (never reported as a timeout). */
SLUICE_API int sluice_wait_for_all(sluice_client *c, const char *const *task_ids, size_t n,
                                   uint32_t timeout_ms, sluice_response ***out, size_t *n_out);
/* Cancels tasks (n == 0: every unfinished task of the open session). */
SLUICE_API int sluice_cancel(sluice_client *c, const char *const *task_ids, size_t n,
                             size_t *cancelled);

/* as_completed: an iterator over results in completion order, each task exactly once. */
typedef struct sluice_iter sluice_iter;
/* Starts iterating the given tasks (n == 0: the open session's unfinished tasks). */
SLUICE_API int sluice_as_completed(sluice_client *c, const char *const *task_ids, size_t n,
                                   sluice_iter **out);
/* The next finished task: SLUICE_OK with *out (free with sluice_response_free; its
 * sluice_response_task_id names the task), SLUICE_EEOF when every task was yielded, or the
 * stream's error (returned again by every later call: the iteration is incomplete).
 * SLUICE_ENOMEM loses nothing: the next call yields the same task. */
SLUICE_API int sluice_iter_next(sluice_iter *it, sluice_response **out);
/* Stops iterating and frees. NULL-safe. */
SLUICE_API void sluice_iter_free(sluice_iter *it);

/* ---- models ------------------------------------------------------------------------- */

typedef struct sluice_model_info {
    char name[96];
    char provider[32];
    char upstream_model[128];
    uint32_t context_window;
    double input_price, output_price; /* USD per million tokens */
    bool available;
    uint32_t max_requests_per_minute, max_tokens_per_minute, max_concurrent_requests;
} sluice_model_info;

/* The server's model registry: *out has *n entries (free with free()). */
SLUICE_API int sluice_list_models(sluice_client *c, sluice_model_info **out, size_t *n);

#ifdef __cplusplus
}
#endif
#endif
