/*
 * sluice_test_server - serves sluice.test.v1.TestService (and health) for interop tests.
 *
 *   sluice_test_server [--listen ADDR] [--tls-cert PEM --tls-key PEM] [--tokens FILE]
 *                      [--max-message-bytes N] [--grace-ms N]
 *
 * Prints "port=N" as its first stdout line once serving, then waits for SIGTERM or SIGINT
 * and drains (grace period, then cancel) before exiting 0. The signals are blocked before
 * the transport calls grpc_init, so every gRPC thread inherits the mask and only sigwait
 * here sees them.
 */
#include "tests/integration/testsvc.h"

#include "server/common/log.h"
#include "sluice/status.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_size(const char *s, size_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || !end || *end || end == s)
        return -1;
    *out = (size_t)v;
    return 0;
}

static int usage(void) {
    fprintf(stderr, "usage: sluice_test_server [--listen ADDR] [--tls-cert PEM --tls-key PEM] "
                    "[--tokens FILE] [--max-message-bytes N] [--grace-ms N]\n");
    return 2;
}

/* Fills cfg and *grace_ms from the command line; returns 0 or -1 on a bad argument. */
static int parse_args(int argc, char **argv, transport_config *cfg, size_t *grace_ms) {
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return -1;
        if (strcmp(a, "--listen") == 0)
            cfg->listen_addr = v;
        else if (strcmp(a, "--tls-cert") == 0)
            cfg->tls_cert_file = v;
        else if (strcmp(a, "--tls-key") == 0)
            cfg->tls_key_file = v;
        else if (strcmp(a, "--tokens") == 0)
            cfg->tokens_file = v;
        else if (strcmp(a, "--max-message-bytes") == 0) {
            if (parse_size(v, &cfg->max_message_bytes) != 0)
                return -1;
        } else if (strcmp(a, "--grace-ms") == 0) {
            if (parse_size(v, grace_ms) != 0)
                return -1;
        } else
            return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    transport_config cfg = {.listen_addr = "127.0.0.1:0"};
    size_t grace_ms = 5000;
    if (parse_args(argc, argv, &cfg, &grace_ms) != 0)
        return usage();
    log_set_format(LOG_FORMAT_TEXT);

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    testsvc_server srv;
    char err[256];
    int rc = testsvc_server_start(&cfg, &srv, err, sizeof err);
    if (rc != SLUICE_OK) {
        fprintf(stderr, "sluice_test_server: %s (%s)\n", err, sluice_strerror(rc));
        return 1;
    }
    printf("port=%d\n", srv.port);
    fflush(stdout);

    int sig = 0;
    sigwait(&sigs, &sig);
    LOG_INFO("test_server", "signal %d: draining", sig);
    testsvc_server_stop(&srv, grace_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)grace_ms);
    return 0;
}
