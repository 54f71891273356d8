/*
 * fake_main.c - sluice-fake-provider: the fake provider as a standalone process.
 *
 * Prints "port=N" as its first stdout line once it listens, then serves until SIGTERM,
 * SIGINT or SIGHUP, and exits 0 after closing every connection. Signals are blocked before
 * any thread starts and taken with sigwait, so no handler runs inside MHD or the timer;
 * SIGPIPE is ignored. --die-with-parent turns the parent's death into a SIGTERM (crash tests
 * that kill their harness leave no orphan fake behind). See fake_provider.h for the endpoints,
 * markers and control API.
 */
#include "tests/fake_provider/fake_provider.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

typedef struct options {
    fake_provider_config cfg;
    const char *cert_path, *key_path, *config_path;
    const char *unknown[64];
    size_t n_unknown;
} options;

static void usage(FILE *f) {
    fprintf(f,
            "usage: sluice-fake-provider [--port N] [--bind ADDR] [--tls-cert PEM --tls-key PEM]\n"
            "         [--http2] [--gzip] [--chunked] [--h2-max-streams N] [--h2-goaway-after N]\n"
            "         [--latency-ms N] [--jitter-ms N] [--rpm N] [--tpm N] [--window-ms N]\n"
            "         [--threads N] [--conn-memory BYTES] [--unknown-model NAME]...\n"
            "         [--request-log] [--config JSON]\n"
            "         [--quiet] [--die-with-parent]\n"
            "Prints port=N first; serves OpenAI (/v1/chat/completions), Anthropic\n"
            "(/v1/messages) and Gemini (/v1beta/models/M:generateContent) shapes; control API\n"
            "under /_fake/; exits on SIGTERM.\n"
            "--http2 (needs TLS) serves HTTP/2 by ALPN (h2, http/1.1); --gzip encodes answers\n"
            "for clients that accept it; --chunked sends them without Content-Length.\n");
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *data = malloc(cap);
    size_t n;
    while (data && (n = fread(data + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            char *bigger = cap < (64u << 20) ? realloc(data, cap * 2) : NULL;
            if (!bigger) {
                free(data);
                data = NULL;
                break;
            }
            data = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (data)
        data[len] = '\0';
    return data;
}

static int parse_u32(const char *flag, const char *s, uint32_t *out) {
    char *end;
    errno = 0;
    unsigned long v = s ? strtoul(s, &end, 10) : 0;
    if (!s || errno || *end || end == s || v > UINT32_MAX || s[0] == '-') {
        fprintf(stderr, "sluice-fake-provider: %s needs a non-negative integer\n", flag);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

/* Handles one flag with a value; returns 1 when consumed, 0 when unknown, -1 on error. */
static int value_flag(options *o, const char *flag, const char *v) {
    uint32_t n = 0;
    uint32_t *dst = NULL;
    if (strcmp(flag, "--latency-ms") == 0)
        dst = &o->cfg.latency_ms;
    else if (strcmp(flag, "--jitter-ms") == 0)
        dst = &o->cfg.jitter_ms;
    else if (strcmp(flag, "--rpm") == 0)
        dst = &o->cfg.rpm;
    else if (strcmp(flag, "--tpm") == 0)
        dst = &o->cfg.tpm;
    else if (strcmp(flag, "--window-ms") == 0)
        dst = &o->cfg.window_ms;
    else if (strcmp(flag, "--h2-max-streams") == 0)
        dst = &o->cfg.h2_max_concurrent_streams;
    else if (strcmp(flag, "--h2-goaway-after") == 0)
        dst = &o->cfg.h2_goaway_after;
    if (dst)
        return parse_u32(flag, v, dst) ? -1 : 1;
    if (strcmp(flag, "--conn-memory") == 0) {
        if (parse_u32(flag, v, &n) || (n && n < 4096))
            return fprintf(stderr, "sluice-fake-provider: --conn-memory is >= 4096\n"), -1;
        o->cfg.connection_memory = n;
        return 1;
    }
    if (strcmp(flag, "--port") == 0 || strcmp(flag, "--threads") == 0) {
        if (parse_u32(flag, v, &n) || (flag[2] == 'p' && n > 65535) || (flag[2] == 't' && n > 64))
            return -1;
        if (flag[2] == 'p')
            o->cfg.port = (uint16_t)n;
        else
            o->cfg.threads = n;
        return 1;
    }
    const char **sdst = strcmp(flag, "--bind") == 0       ? &o->cfg.bind_addr
                        : strcmp(flag, "--tls-cert") == 0 ? &o->cert_path
                        : strcmp(flag, "--tls-key") == 0  ? &o->key_path
                        : strcmp(flag, "--config") == 0   ? &o->config_path
                                                          : NULL;
    if (!sdst && strcmp(flag, "--unknown-model") == 0 && o->n_unknown < 64)
        sdst = &o->unknown[o->n_unknown++];
    if (!sdst)
        return 0;
    if (!v)
        return fprintf(stderr, "sluice-fake-provider: %s needs a value\n", flag), -1;
    *sdst = v;
    return 1;
}

static int parse_args(int argc, char **argv, options *o) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(argv[i], "--request-log") == 0) {
            o->cfg.request_log = true;
            continue;
        }
        bool *sw = strcmp(argv[i], "--quiet") == 0     ? &o->cfg.quiet
                   : strcmp(argv[i], "--http2") == 0   ? &o->cfg.http2
                   : strcmp(argv[i], "--gzip") == 0    ? &o->cfg.gzip
                   : strcmp(argv[i], "--chunked") == 0 ? &o->cfg.chunked
                                                       : NULL;
        if (sw) {
            *sw = true;
            continue;
        }
        if (strcmp(argv[i], "--die-with-parent") == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM); /* taken by sigwait like a normal SIGTERM */
            continue;
        }
        int rc = value_flag(o, argv[i], i + 1 < argc ? argv[i + 1] : NULL);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            fprintf(stderr, "sluice-fake-provider: unknown option %s\n", argv[i]);
            usage(stderr);
            return -1;
        }
        i++;
    }
    return 0;
}

static int load_tls(options *o, char **cert, char **key) {
    *cert = *key = NULL;
    if (!o->cert_path && !o->key_path)
        return 0;
    if (!o->cert_path || !o->key_path) {
        fprintf(stderr, "sluice-fake-provider: --tls-cert and --tls-key go together\n");
        return -1;
    }
    *cert = read_file(o->cert_path);
    *key = read_file(o->key_path);
    if (!*cert || !*key) {
        fprintf(stderr, "sluice-fake-provider: cannot read %s\n",
                *cert ? o->key_path : o->cert_path);
        return -1;
    }
    o->cfg.tls_cert_pem = *cert;
    o->cfg.tls_key_pem = *key;
    return 0;
}

static int apply_settings(fake_provider *fp, const options *o) {
    for (size_t i = 0; i < o->n_unknown; i++)
        fake_provider_add_unknown_model(fp, o->unknown[i]);
    if (!o->config_path)
        return 0;
    char *doc = read_file(o->config_path);
    char err[256];
    if (!doc || fake_provider_configure(fp, doc, err, sizeof err) != 0) {
        fprintf(stderr, "sluice-fake-provider: %s: %s\n", o->config_path,
                doc ? err : "cannot read");
        free(doc);
        return -1;
    }
    free(doc);
    return 0;
}

int main(int argc, char **argv) {
    options o;
    memset(&o, 0, sizeof o);
    char *cert = NULL, *key = NULL;
    if (parse_args(argc, argv, &o) != 0 || load_tls(&o, &cert, &key) != 0)
        return 2;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    fake_provider *fp = NULL;
    char err[256];
    if (fake_provider_new(&o.cfg, &fp, err, sizeof err) != 0) {
        fprintf(stderr, "sluice-fake-provider: %s\n", err);
        return 1;
    }
    int rc = apply_settings(fp, &o);
    if (rc == 0) {
        printf("port=%u\n", fake_provider_port(fp));
        fflush(stdout);
        int sig = 0;
        while (sigwait(&set, &sig) != 0)
            ;
    }
    fake_provider_free(fp);
    free(cert);
    free(key);
    return rc == 0 ? 0 : 1;
}
