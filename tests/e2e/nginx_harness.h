/*
 * nginx_harness.h - Debian's nginx as a gRPC reverse proxy in front of a test's sluiced.
 *
 * nginx runs as a child of the test (daemon off, master_process off: one process, no
 * privilege drop), with its configuration, pid file, logs and temp paths in the test's
 * directory. It terminates TLS with a certificate made at start (openssl, for 127.0.0.1
 * and localhost) and forwards every call with grpc_pass to the upstream target, with the
 * short grpc_read_timeout and small client_max_body_size the options give: what the
 * proxies and ingress controllers sluice is deployed behind do to quiet streams, long
 * unary calls and large request streams. Its port is picked at run time (a free
 * 127.0.0.1 port, written into the generated nginx.conf).
 * Test code: one thread, not thread safe.
 */
#ifndef SLUICE_TESTS_NGINX_HARNESS_H
#define SLUICE_TESTS_NGINX_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct nginx_opts {
    uint32_t read_timeout_s;     /* grpc_read_timeout (and grpc_send_timeout); 0 = 5 */
    const char *client_max_body; /* client_max_body_size, e.g. "1m"; NULL = "1m" */
} nginx_opts;

typedef struct nginx_proc {
    char dir[128];     /* made by nginx_start, removed by nginx_stop */
    char target[64];   /* "127.0.0.1:PORT": connect here with TLS */
    char ca_file[200]; /* the certificate to trust (self-signed) */
    char *ca_pem;      /* its text (free with nginx_stop) */
    pid_t pid;
} nginx_proc;

/* Starts nginx in front of `upstream` ("127.0.0.1:PORT", plaintext gRPC) and waits until it
 * accepts connections. Returns 0, or -1 (nginx missing or refusing its configuration: the
 * error log is printed). opts may be NULL. */
int nginx_start(nginx_proc *n, const char *upstream, const nginx_opts *opts);
/* Stops nginx (SIGTERM, then SIGKILL), removes its directory. NULL-safe on a zeroed n. */
void nginx_stop(nginx_proc *n);
/* How often `needle` occurs in nginx's log `log` ("error" or "access"; 0 when it cannot be
 * read): the access log has a line per call ("POST /sluice.v1.Sluice/Wait ..."), the error
 * log says why nginx cut one ("upstream timed out"). */
int nginx_log_count(const nginx_proc *n, const char *log, const char *needle);

#endif
