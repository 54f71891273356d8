/*
 * testsvc.h - sluice.test.v1.TestService on the server transport (tests and bench only).
 *
 * Echo answers the request (text, number, payload, the caller's tenant); fail_code != 0
 * answers that status with the text as details; delay_ms waits on the service's timer
 * thread, never on a transport worker. Count streams `count` messages numbered 0..count-1,
 * delay_ms apart, all pushed from the timer thread (a non-CQ thread, like the dispatcher)
 * and paced by backpressure (SLUICE_ELIMIT -> wait for on_writable). Sum adds the numbers
 * of every request and answers after half-close. Chat answers every request with
 * max(count, 1) copies of it, pushed from its callbacks under the same backpressure rule,
 * and reads the next request only when they are all queued.
 *
 * Counters (testsvc_stats) let in-process tests observe the server side: calls started
 * and done, cancelled ones, and backpressure events.
 * Thread safety: stats from any thread; the rest from the thread that owns the service.
 */
#ifndef SLUICE_TESTS_TESTSVC_H
#define SLUICE_TESTS_TESTSVC_H

#include "server/transport/transport.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct testsvc testsvc;

typedef struct testsvc_stats {
    uint64_t started;          /* on_start calls */
    uint64_t done;             /* on_done calls */
    uint64_t done_cancelled;   /* on_done with cancelled=true */
    uint64_t elimit_hits;      /* tcall_send returned SLUICE_ELIMIT */
    uint64_t writable_events;  /* on_writable calls */
    uint64_t pending_at_limit; /* tcall_outbound_pending() at the last SLUICE_ELIMIT */
    uint64_t blocked_now;      /* calls waiting for on_writable right now */
} testsvc_stats;

/* Creates the service and starts its timer thread. Free with testsvc_free. */
testsvc *testsvc_new(void);
/* Registers the four methods on t (before transport_start). Returns transport_register's
 * result. */
int testsvc_register(testsvc *s, transport *t);
/* Stops the timer thread, dropping timers not yet run (their calls are released). Call
 * after transport_drain and before transport_free. Idempotent. */
void testsvc_stop(testsvc *s);
/* Stops (if needed) and frees. NULL-safe. */
void testsvc_free(testsvc *s);
/* A snapshot of the counters. Any thread. */
void testsvc_get_stats(testsvc *s, testsvc_stats *out);

/* ---- a running server: transport + service (tests, bench, sluice_test_server) --------
 * The fixture and the helpers below live in test_transport_util.c. */

typedef struct testsvc_server {
    transport *t;
    testsvc *svc;
    int port;
    char target[64]; /* "127.0.0.1:<port>" */
} testsvc_server;

/* Starts a transport serving the test service. cfg->listen_addr NULL means
 * "127.0.0.1:0"; cfg may be NULL for all defaults. Returns SLUICE_OK or the transport's
 * error with a message in err. */
int testsvc_server_start(const transport_config *cfg, testsvc_server *out, char *err,
                         size_t errlen);
/* Drains with grace_ms, stops the service and frees everything. */
void testsvc_server_stop(testsvc_server *s, uint32_t grace_ms);

/* ---- helpers for the tests ------------------------------------------------------------ */

/* Polls the counters (every 5 ms) until done >= done_min and done_cancelled >=
 * cancelled_min, or timeout_ms passes. A liveness bound, never a speed assertion: pick it
 * generously. Returns true when reached. */
bool testsvc_wait_done(testsvc *s, uint64_t done_min, uint64_t cancelled_min, uint32_t timeout_ms);
/* Polls until a call is blocked on backpressure (blocked_now > 0) after at least
 * elimit_min SLUICE_ELIMIT results, the last one seen with at least pending_min messages
 * queued (same rules). On success *snap is the consistent snapshot that showed it. */
bool testsvc_wait_blocked(testsvc *s, uint64_t elimit_min, uint64_t pending_min,
                          uint32_t timeout_ms, testsvc_stats *snap);
#endif
