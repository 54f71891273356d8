/*
 * sdk_internal.h - private to libsluice: the structures behind the public handles.
 */
#ifndef SLUICE_SDK_INTERNAL_H
#define SLUICE_SDK_INTERNAL_H

#include "client/rpc/rpc.h"
#include "sluice/sluice.h"
#include "sluice/v1/sluice.pb-c.h"
#include "sluice/v1/sluice.sluice.h"

#include <pthread.h>

struct sluice_prompt {
    Sluice__V1__Prompt *msg; /* malloc'd tree (protobuf_c_message_free_unpacked) */
};

struct sluice_response {
    Sluice__V1__Response *msg; /* unpacked or built; never NULL */
    char *task_id;
    char *custom_id;
    uint64_t index;
};

struct sluice_client {
    char *target;
    sluice_rpc_channel *ch;
    Sluice__V1__SessionConfig *config; /* built from the options */
    uint32_t rpc_timeout_ms;
    size_t max_message_bytes; /* the channel's receive limit (Wait answers stay within it) */
    size_t max_call_bytes;    /* request bytes per BatchProcess call; 0 = no limit */
    pthread_mutex_t mu;       /* guards session_id */
    char *session_id;         /* open session, or NULL */
};

/* error.c */
int sdk_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sdk_rpc_fail(int rc, const sluice_rpc_status *st, const char *what);
void sdk_clear_error(void);
void sdk_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Routes gRPC core's log lines to the log callback (once per process). */
void sdk_route_grpc_logs(void);

/* prompt.c */
char *sdk_strdup(const char *s);
/* Frees n strings and the array. NULL-safe. */
void sdk_strings_free(char **v, size_t n);
/* A SamplingParams proto from the public struct; NULL on ENOMEM. */
Sluice__V1__SamplingParams *sdk_sampling_new(const sluice_sampling *s);
/* Deep copy of a prompt message. NULL on ENOMEM. */
Sluice__V1__Prompt *sdk_prompt_copy(const Sluice__V1__Prompt *p);

/* response.c: a response holding *msg, which it takes only on success (*msg = NULL):
 * SLUICE_OK with *out, or SLUICE_ENOMEM with *msg still the caller's. */
int sdk_response_take(Sluice__V1__Response **msg, const char *task_id, const char *custom_id,
                      uint64_t index, sluice_response **out);
/* response.c: takes ownership of msg (may be NULL: an empty response is made). */
sluice_response *sdk_response_new(Sluice__V1__Response *msg, const char *task_id,
                                  const char *custom_id, uint64_t index);
void sdk_tracker_from(sluice_tracker *out, const Sluice__V1__TrackerStatus *st);

/* client.c */
sluice_rpc_call_opts sdk_call_opts(const sluice_client *c);
/* OpenSession with the client's config, leaving the client as it is: *id (free()) is a
 * session of the caller's. SLUICE_OK or the RPC's error (message set). */
int sdk_open_session(sluice_client *c, char **id);
/* CloseSession of `id` (borrowed); *final (may be NULL) gets its tracker. */
int sdk_close_session(sluice_client *c, const char *id, sluice_tracker *final);

/* batch_call.c: one BatchProcess call. */

/* A batch running in the background, shared with sluice_batch_cancel: the call in flight
 * (mu). */
typedef struct sdk_batch_run {
    pthread_mutex_t mu;
    sluice_rpc_call *call;
    bool cancelled;
} sdk_batch_run;

/* What one call sends and where its results and progress go. Borrowed for the call. */
typedef struct sdk_call_plan {
    sluice_prompt *const *prompts;
    size_t first, n;     /* prompts[first, n) are left: the call sends as many as fit */
    size_t max_bytes;    /* request bytes of the call (gRPC prefixes included); 0 = no limit */
    const size_t *cost;  /* with max_bytes: sdk_prompt_cost of each prompt */
    const char *session; /* NULL: header.config, a session of the call's own */
    const sluice_batch_options *opts;
    bool completions_only;
    sluice_result_fn cb;
    void *ud;
    size_t total;        /* prompts of the whole batch (progress) */
    double t0;           /* when the batch started (sdk_monotonic_s), for its rate */
    uint32_t timeout_ms; /* the call's deadline; 0 = none */
} sdk_call_plan;

/* Runs one call of p; *next is the first prompt it did not send (p->n when it sent them
 * all). Results go to p->cb as they arrive, on the calling thread. SLUICE_OK or the call's
 * error (message set). r (may be NULL) lets another thread cancel the call. */
int sdk_batch_call(sluice_client *c, const sdk_call_plan *p, sdk_batch_run *r, size_t *next);
/* Bytes prompt p adds to a call at index i (its PromptBatch entry). */
size_t sdk_prompt_cost(const sluice_prompt *p, size_t i);
/* Bytes of a call of p besides its prompts: header, one message's framing, the end. */
size_t sdk_call_fixed_bytes(const sluice_client *c, const sdk_call_plan *p);
/* Whether prompts[first, n) all fit in one call within p->max_bytes (p->cost set). */
bool sdk_call_fits_all(const sluice_client *c, const sdk_call_plan *p);
/* Seconds on the monotonic clock. */
double sdk_monotonic_s(void);
/* The session id (copy, free()) opening one when `open_if_needed`. NULL + error if none. */
char *sdk_session(sluice_client *c, bool open_if_needed, int *rc);

#endif
