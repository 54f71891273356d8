/*
 * dispatch_harness.h - drives a real dispatcher against the fake provider in-process.
 *
 * A harness owns a fake provider on 127.0.0.1:0 (on the wire $SLUICE_TEST_WIRE names, or
 * the one the test asks for), a registry whose models point at it
 * (two OpenAI-shaped models on key "ka", one Anthropic-shaped model on key "kb", one
 * Gemini-shaped model on key "kg", plus whatever the test adds), optionally a store in a temp
 * directory, and a started dispatcher. Its sink records every completion (asserting each task ends
 * exactly once) and lets the test thread wait for them. Freeing it asserts that libcurl never
 * refused to set a transfer up (such a refusal is a bug of ours).
 */
#ifndef SLUICE_TESTS_DISPATCH_HARNESS_H
#define SLUICE_TESTS_DISPATCH_HARNESS_H

#include "fake_provider/fake_provider.h"
#include "fake_provider/fake_test_util.h"
#include "server/dispatch/dispatcher.h"

#include <pthread.h>
#include <stdbool.h>

#define HARNESS_MAX_TASKS 20000

typedef struct harness_result {
    bool done;
    unsigned times; /* on_done calls for this task (must end up 1) */
    dtask_state final;
    llm_response *resp;
    uint64_t order; /* completion order, 1-based */
    void *task_ctx;
} harness_result;

typedef struct harness {
    fake_provider *fake;
    uint64_t setup_failures; /* expected at harness_free */
    fake_setup wire;
    char wire_dir[64]; /* the fake's certificate */
    registry *reg;
    store *st;
    char store_dir[128];
    dispatcher *d;
    dispatcher_sink sink;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    harness_result results[HARNESS_MAX_TASKS]; /* indexed by task id */
    uint64_t completed;
    uint64_t next_id;
    unsigned state_events;
    uint64_t launch_ms[HARNESS_MAX_TASKS]; /* when each attempt went out (monotonic clock) */
    size_t n_launches;
} harness;

typedef struct harness_opts {
    bool with_store;
    uint32_t key_rpm, key_tpm, key_conc; /* limits of key "ka" (0 = generous) */
    const char *extra_models_json;       /* extra entries for "models", may be NULL */
    fake_wire_mode wire;                 /* FAKE_WIRE_FROM_ENV (0) = $SLUICE_TEST_WIRE */
    uint32_t h2_max_streams;             /* the fake's SETTINGS_MAX_CONCURRENT_STREAMS (0 = 128) */
    uint64_t setup_failures;             /* refused transfer setups the test provokes on purpose */
    dispatcher_config dcfg;              /* overrides (reg/store/http are filled in) */
} harness_opts;

/* Starts everything; CU_FAIL + returns NULL on error. */
harness *harness_new(const harness_opts *opts);
void harness_free(harness *h);

/* Opens a session over models (comma-separated "name[:weight]" list). */
dsession *harness_session(harness *h, const char *models, uint32_t rpm, uint32_t tpm, uint32_t conc,
                          uint32_t max_attempts, cache_mode mode);
/* Submits n prompts with the given texts (text[i % n_texts]); returns the first id. */
uint64_t harness_submit_texts(harness *h, dsession *s, const char *const *texts, size_t n_texts,
                              size_t n);
/* Submits one request (the dispatcher takes ownership of it); returns its id. */
uint64_t harness_submit_request(harness *h, dsession *s, llm_request *req);
/* Waits until `count` tasks completed in total or timeout_ms passed; returns completed. */
uint64_t harness_wait(harness *h, uint64_t count, uint32_t timeout_ms);
/* Builds a one-user-message request. */
llm_request *harness_text_request(const char *text);

#endif
