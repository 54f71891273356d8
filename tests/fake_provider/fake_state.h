/*
 * fake_state.h - everything the fake provider remembers, behind one mutex.
 *
 * Settings (latency, limits, unknown models, forced statuses, scripts, log switch) and
 * observations (counters per model, per request body, per key buckets and arrival logs,
 * concurrency, connections). Each HTTP request takes the lock twice: once on arrival
 * (fake_state_arrive decides everything that depends on shared state) and once when its
 * status is known (fake_state_answered). Bounds: FAKE_MAX_KEYS keys, FAKE_MAX_MODELS
 * models, FAKE_MAX_HASHES distinct bodies (later ones are served but not counted per body),
 * FAKE_MAX_SCRIPTS script entries, and the per-key log capacity.
 * Thread safety: every function may be called from any thread.
 */
#ifndef SLUICE_TESTS_FAKE_STATE_H
#define SLUICE_TESTS_FAKE_STATE_H

#include "tests/fake_provider/fake_limits.h"
#include "tests/fake_provider/fake_provider.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FAKE_MAX_KEYS 1024u
#define FAKE_MAX_MODELS 1024u
#define FAKE_MAX_HASHES (1u << 20)
#define FAKE_MAX_SCRIPTS 4096u
#define FAKE_DEFAULT_LOG_CAPACITY 65536u

typedef struct fake_state fake_state;

/* A scripted reply copied out of the script queue (owned; fake_arrival_cleanup). */
typedef struct fake_script_reply {
    int status;
    char **headers; /* "Name: value" */
    size_t n_headers;
    char *body; /* NULL = derive from status */
} fake_script_reply;

/* What shared state says about one arriving request. */
typedef struct fake_arrival {
    uint64_t arrivals;  /* arrivals of this exact body, this one included */
    bool unknown_model; /* configured as unknown: 404 */
    fake_verdict verdict;
    bool scripted;
    fake_script_reply script;
    int forced_status; /* 0 = none */
    uint32_t delay_ms; /* latency + jitter drawn for this request */
    bool reset;        /* a reset_next program applies: no answer */
} fake_arrival;

/* How answers travel and how HTTP/2 connections behave (see fake_provider_config). */
typedef struct fake_wire {
    bool gzip;
    bool chunked;
    uint32_t h2_max_streams;  /* SETTINGS_MAX_CONCURRENT_STREAMS of new h2 connections */
    uint32_t h2_goaway_after; /* requests per h2 connection before a GOAWAY; 0 = never */
} fake_wire;

/* What the HTTP/2 front reports for the counters. */
typedef enum fake_h2_event {
    FAKE_H2_CONNECTION = 0, /* a connection negotiated h2 */
    FAKE_H2_STREAM,         /* a request stream opened */
    FAKE_H2_RESET,          /* a stream reset by the fake with INTERNAL_ERROR */
    FAKE_H2_GOAWAY,         /* a GOAWAY sent */
    FAKE_H2_CLIENT_RESET,   /* an RST_STREAM received from the client */
} fake_h2_event;

fake_state *fake_state_new(const fake_provider_config *cfg);
void fake_state_free(fake_state *st);

/* Counts a parsed provider request and decides from shared state: per-body arrivals,
 * unknown model, the key's limiter (charging it when admitted; skipped for unknown
 * models), a script entry or forced status for the model, the delay. `key` may be NULL
 * (no limits). Release *out with fake_arrival_cleanup. */
void fake_state_arrive(fake_state *st, const char *key, const char *model, uint64_t body_key,
                       uint64_t tokens, uint64_t now_ms, fake_arrival *out);
void fake_arrival_cleanup(fake_arrival *a);
/* Records the status a parsed request got (0 = none: reset or hang). */
void fake_state_answered(fake_state *st, const char *model, uint64_t body_key, int status);
/* Counts a provider request rejected before parsing (auth, bad JSON). */
void fake_state_rejected(fake_state *st);
/* Tracks requests in flight (+1 on arrival, -1 when finished). */
void fake_state_in_flight(fake_state *st, int delta);
void fake_state_connection(fake_state *st, bool opened);

/* The wire settings; fake_state_set_wire replaces them (new connections see new h2 ones). */
void fake_state_wire(fake_state *st, fake_wire *out);
void fake_state_set_wire(fake_state *st, const fake_wire *w);
/* Programs: the next n h2 streams are refused (REFUSED_STREAM, before being read); the next
 * n provider requests are read and counted, then answered by no answer at all. */
void fake_state_refuse_streams(fake_state *st, uint32_t n);
void fake_state_reset_next(fake_state *st, uint32_t n);
/* Takes one pending stream refusal, counting it; false when none is pending. */
bool fake_state_take_refusal(fake_state *st);
void fake_state_h2_event(fake_state *st, fake_h2_event e);

/* Settings: see the matching fake_provider_* functions. */
void fake_state_set_latency(fake_state *st, uint32_t latency_ms, uint32_t jitter_ms);
void fake_state_set_limits(fake_state *st, const char *key, uint32_t rpm, uint32_t tpm,
                           uint32_t window_ms);
void fake_state_add_unknown(fake_state *st, const char *model);
void fake_state_force_status(fake_state *st, const char *model, int status);
void fake_state_script(fake_state *st, const char *model, unsigned count, int status,
                       const char *const *headers, size_t n_headers, const char *body);
void fake_state_set_log(fake_state *st, bool on, size_t capacity);
void fake_state_reset(fake_state *st);

/* Reports. */
void fake_state_counters(fake_state *st, fake_counters *out);
void fake_state_model_counters(fake_state *st, const char *model, fake_model_counters *out);
void fake_state_hash_counts(fake_state *st, uint64_t body_key, uint64_t *arrivals, uint64_t *ok);
size_t fake_state_log(fake_state *st, const char *key, fake_log_entry *out, size_t max);
/* JSON documents (new references). */
json_t *fake_state_counters_json(fake_state *st, bool all_hashes);
json_t *fake_state_config_json(fake_state *st);
json_t *fake_state_log_json(fake_state *st, const char *key);

#endif
