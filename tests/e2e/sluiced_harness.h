/*
 * sluiced_harness.h - runs the real sluiced binary against an in-process fake provider.
 *
 * The harness starts the fake provider on 127.0.0.1:0 (on the wire $SLUICE_TEST_WIRE
 * names: plain, HTTP/1.1 over TLS or HTTP/2 over TLS, sluiced trusting its certificate
 * through SLUICE_CA_FILE), writes a model registry whose
 * models point at it (m-a and m-b on OpenAI-shaped key "ka", m-c on Anthropic-shaped key
 * "kb", m-g on Gemini-shaped key "kg") into a temporary directory, and starts sluiced on
 * 127.0.0.1:0 with a fresh data directory there and its metrics endpoint on 127.0.0.1:0, reading
 * both ports back from
 * --port-file. Stopping first checks sluiced's metrics (libcurl must never have refused to
 * set a transfer up: a bug of ours), then sends SIGTERM and checks that sluiced drained and
 * exited 0.
 */
#ifndef SLUICE_TESTS_SLUICED_HARNESS_H
#define SLUICE_TESTS_SLUICED_HARNESS_H

#include "fake_provider/fake_provider.h"
#include "fake_provider/fake_test_util.h"

#include <stdbool.h>
#include <sys/types.h>

typedef struct sluiced_proc {
    fake_provider *fake;
    fake_setup wire; /* the fake's wire and the certificate sluiced trusts */
    char dir[128];   /* temp directory: registry, data, tokens, port file */
    char target[64]; /* "127.0.0.1:PORT" */
    int metrics_port;
    pid_t pid;
    int exit_status; /* after sluiced_stop: the exit code, or -signal */
} sluiced_proc;

typedef struct sluiced_opts {
    const char *tokens;      /* tokens file content ("tenant token" lines), NULL = auth off */
    const char *config_json; /* extra config file content, NULL = none */
    uint32_t key_rpm;        /* limits of key "ka"; 0 = generous */
    bool keep_dir;           /* reuse p->dir if already set (restart on the same store) */
    const char *env_prefix;  /* e.g. "valgrind --errors-for-leak-kinds=definite" (split on
                              * spaces) to run sluiced under a tool; NULL = none */
} sluiced_opts;

/* Starts fake + sluiced. Returns 0, or -1 (the test should fail). When opts->keep_dir is
 * set, p->fake must already run (sluiced is restarted on the same directory). */
int sluiced_start(sluiced_proc *p, const sluiced_opts *opts);
/* Checks the metrics, then SIGTERM, wait (up to 60 s), record the exit status. Returns 0
 * when the metrics were clean and it exited 0. */
int sluiced_stop(sluiced_proc *p);
/* SIGKILL and reap (crash tests). */
void sluiced_kill(sluiced_proc *p);
/* Stops the fake and removes the directory. */
void sluiced_cleanup(sluiced_proc *p);
/* The value of one series of sluiced's /metrics, named as printed with its labels, e.g.
 * "sluice_tasks_alive" or "sluice_tasks_total{outcome=\"cancelled\"}". Returns -1 when
 * the endpoint cannot be read or has no such series. */
double sluiced_metric(const sluiced_proc *p, const char *series);
/* Path of the sluiced binary (from SLUICE_BINARY_DIR). */
const char *sluiced_binary(void);

#endif
