/*
 * session.h - a session as the dispatcher sees it: validated client configuration, the
 * resolved models, and the tracker.
 *
 * A session is created from a dsession_config (the service converts the proto), checked
 * against the model registry (unknown or unavailable models, duplicate names, bad
 * weights, limits above the upstream keys', out-of-range sampling values), and then
 * shared: the service holds a reference and reads the tracker; every task holds one; the
 * dispatcher thread holds one from the session's first task until dispatcher_session_close.
 *
 * Thread safety: the config is immutable after dsession_new; the tracker is guarded by
 * the session's mutex, so status/reset may be called from any thread.
 */
#ifndef SLUICE_DISPATCH_SESSION_H
#define SLUICE_DISPATCH_SESSION_H

#include "server/common/llm.h"
#include "server/providers/registry.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct dsession dsession;

typedef enum cache_mode {
    CACHE_MODE_READ_WRITE = 1, /* serve hits, store answers (default) */
    CACHE_MODE_READ_ONLY = 2,  /* serve hits, never store */
    CACHE_MODE_WRITE_ONLY = 3, /* never serve hits or share calls, store answers */
    CACHE_MODE_OFF = 4,        /* neither: every prompt goes upstream */
} cache_mode;

typedef struct dsession_model {
    char *name;
    double weight;
    llm_sampling sampling; /* the model's own parameters (merged over session defaults) */
} dsession_model;

/* Defaults applied by dsession_new when a field is 0. */
#define DSESSION_DEFAULT_MAX_ATTEMPTS 5u
#define DSESSION_DEFAULT_REQUEST_TIMEOUT_MS 30000u
#define DSESSION_DEFAULT_TASK_TIMEOUT_MS 600000u
#define DSESSION_MAX_MODELS 32u

typedef struct dsession_config {
    char *name;   /* display name; NULL = the single model's name or "session" */
    char *tenant; /* owner; "" with auth off */
    dsession_model *models;
    size_t n_models;
    llm_sampling sampling;            /* session-wide parameters, under each model's own */
    uint32_t max_requests_per_minute; /* 0 = the smallest limit of the models' keys */
    uint32_t max_tokens_per_minute;   /* 0 = likewise */
    uint32_t max_concurrent;          /* 0 = likewise */
    uint32_t max_attempts;            /* 0 = 5 */
    uint32_t request_timeout_ms;      /* 0 = 30 s */
    uint32_t task_timeout_ms;         /* 0 = 10 min, counted from the first attempt */
    cache_mode cache_mode;            /* 0 = READ_WRITE */
} dsession_config;

/* Frees the fields of a config (not the struct). */
void dsession_config_cleanup(dsession_config *c);
/* Deep copy into *dst. */
void dsession_config_copy(dsession_config *dst, const dsession_config *src);

/* Mirrors sluice.v1.LimitingFactor. */
typedef enum limiting_factor {
    LIMITING_NONE = 0,
    LIMITING_REQUESTS = 1,
    LIMITING_TOKENS = 2,
    LIMITING_CONCURRENCY = 3,
    LIMITING_COOLDOWN = 4,
    LIMITING_RETRY_BUDGET = 5,
} limiting_factor;

/* A tracker snapshot. */
typedef struct dsession_status {
    uint64_t total, started, in_progress, succeeded, failed, cached, cancelled;
    uint64_t rate_limit_errors, attempts, queued, deduplicated;
    uint64_t input_tokens, output_tokens, cache_read_tokens, cache_write_tokens;
    double cost, cost_saved;
    double elapsed_s;
    limiting_factor limiting_factor;
} dsession_status;

/* Validates `cfg` against `reg` (borrowed; must outlive the session) and creates a session
 * with a reference count of 1. The config is copied, with defaults filled in. On error
 * returns SLUICE_EINVAL and writes one message naming the offending field into err, e.g.
 * "models[1].name: unknown model 'gpt-9'" or "max_requests_per_minute: 9000 exceeds the
 * 5000 of upstream key 'openai' (used by gpt-4.1-mini)". now_ms starts the tracker clock. */
int dsession_new(const registry *reg, const dsession_config *cfg, uint64_t now_ms, dsession **out,
                 char *err, size_t errlen);
/* Reference counting; the last unref frees. Any thread. */
void dsession_ref(dsession *s);
void dsession_unref(dsession *s);

/* The validated config with defaults filled in. Valid for the session's life. */
const dsession_config *dsession_get_config(const dsession *s);
/* Tracker snapshot now. Any thread. */
void dsession_status_get(dsession *s, uint64_t now_ms, dsession_status *out);
/* Zeroes the counters (in-progress and queued tasks keep being counted as such) and
 * restarts the elapsed clock; *before (may be NULL) receives the status just before. */
void dsession_status_reset(dsession *s, uint64_t now_ms, dsession_status *before);
/* Restores the counters of a tracker saved before a restart (in-progress, queued and the
 * limiting factor stay the live ones; total is taken as saved: the tasks that resume were
 * counted in it, see DISPATCH_COUNT_RESTORED) and its clock: elapsed_s goes on from
 * st->elapsed_s at now_ms. Call before any task of the session is submitted. */
void dsession_status_restore(dsession *s, const dsession_status *st, uint64_t now_ms);
/* Counts n prompts in total before they are submitted (a durable Start counts its tasks in
 * the session record it persists with them, so a restart never counts them again). The
 * reservation ends with a dispatcher_submit_counted(DISPATCH_COUNT_RESERVED) of the tasks,
 * or with dsession_track_release when they will not be submitted. A ResetTracker keeps
 * reserved prompts counted, like queued ones. Any thread. */
void dsession_track_reserve(dsession *s, size_t n);
void dsession_track_release(dsession *s, size_t n);
/* True once dispatcher_session_close was called. */
bool dsession_is_closed(const dsession *s);

#endif
