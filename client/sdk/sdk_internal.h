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
/* The session id (copy, free()) opening one when `open_if_needed`. NULL + error if none. */
char *sdk_session(sluice_client *c, bool open_if_needed, int *rc);

#endif
