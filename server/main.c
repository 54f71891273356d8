/*
 * sluiced: wiring only. Reads the configuration, opens the store, starts the dispatcher,
 * the service and the transport, waits for SIGINT/SIGTERM, then drains and stops them in
 * the reverse order. Every module gets its configuration as a parameter.
 */
#include "server/common/alloc.h"
#include "server/common/config.h"
#include "server/common/log.h"
#include "server/common/timers.h"
#include "server/dispatch/dispatcher.h"
#include "server/http/http.h"
#include "server/metrics/metrics.h"
#include "server/providers/registry.h"
#include "server/service/service.h"
#include "server/store/store.h"
#include "server/transport/transport.h"
#include "sluice/status.h"

#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLUICED_VERSION "0.1.0"

typedef struct options {
    const char *config_file;
    const char *listen;
    const char *data_dir;
    const char *registry_file;
    const char *port_file;
    bool check_only;
} options;

static void usage(FILE *out) {
    fprintf(out, "usage: sluiced [--config FILE] [--listen HOST:PORT] [--data-dir DIR]\n"
                 "               [--registry FILE] [--port-file FILE] [--check-config]\n"
                 "\n"
                 "Serves sluice.v1.Sluice (gRPC) on one dispatcher with a RocksDB store.\n"
                 "  --config FILE     JSON configuration (see deploy/sluiced.sample.json)\n"
                 "  --listen ADDR     gRPC address, e.g. 127.0.0.1:0 (0 picks a free port)\n"
                 "  --data-dir DIR    store directory (default ./sluice-data)\n"
                 "  --registry FILE   model registry JSON (default: the built-in registry)\n"
                 "  --port-file FILE  once serving, write the gRPC port (line 1) and the metrics\n"
                 "                    port (line 2, 0 when off) to FILE\n"
                 "  --check-config    validate the configuration and registry, then exit\n"
                 "Environment overrides: SLUICE_LISTEN, SLUICE_DATA_DIR, SLUICE_NODE_ID, ...\n"
                 "(see README \"Configuration\"). SIGTERM/SIGINT drain and exit 0.\n");
}

static int parse_args(int argc, char **argv, options *o) {
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--version") == 0) {
            printf("sluiced %s\n", SLUICED_VERSION);
            exit(0);
        } else if (strcmp(a, "--check-config") == 0) {
            o->check_only = true;
            continue;
        } else if (strcmp(a, "--config") == 0) {
            dst = &o->config_file;
        } else if (strcmp(a, "--listen") == 0) {
            dst = &o->listen;
        } else if (strcmp(a, "--data-dir") == 0) {
            dst = &o->data_dir;
        } else if (strcmp(a, "--registry") == 0) {
            dst = &o->registry_file;
        } else if (strcmp(a, "--port-file") == 0) {
            dst = &o->port_file;
        } else {
            fprintf(stderr, "sluiced: unknown argument '%s'\n", a);
            usage(stderr);
            return -1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "sluiced: %s needs a value\n", a);
            return -1;
        }
        *dst = argv[++i];
    }
    return 0;
}

static void replace(char **field, const char *value) {
    if (value) {
        free(*field);
        *field = xstrdup(value);
    }
}

static int load_config(const options *o, sluiced_config *c) {
    char err[700];
    config_defaults(c);
    if ((o->config_file && config_load_file(c, o->config_file, err, sizeof err) != 0) ||
        config_apply_env(c, err, sizeof err) != 0) {
        fprintf(stderr, "sluiced: configuration: %s\n", err);
        config_cleanup(c);
        return -1;
    }
    replace(&c->listen, o->listen);
    replace(&c->data_dir, o->data_dir);
    replace(&c->registry_file, o->registry_file);
    log_set_level(c->log_level);
    log_set_format(c->log_format);
    return 0;
}

static registry *load_registry(const sluiced_config *c) {
    char err[700];
    registry *reg = NULL;
    if (c->registry_file) {
        if (registry_load_file(c->registry_file, &reg, err, sizeof err) != 0) {
            LOG_ERROR("main", "model registry: %s", err);
            return NULL;
        }
        return reg;
    }
    json_error_t je;
    json_t *j = json_loads(registry_default_json(), 0, &je);
    int rc = j ? registry_from_json(j, &reg, err, sizeof err) : -1;
    json_decref(j);
    if (rc) {
        LOG_ERROR("main", "built-in model registry: %s", j ? err : je.text);
        return NULL;
    }
    return reg;
}

/* Everything sluiced runs, in start order. */
typedef struct server {
    sluiced_config cfg;
    registry *reg;
    store *st;
    timers *tm;
    dispatcher *d;
    service *svc;
    transport *tr;
    metrics_server *ms;
} server;

static int start_store(server *s) {
    char err[700];
    store_config sc;
    memset(&sc, 0, sizeof sc);
    sc.dir = s->cfg.data_dir;
    sc.cache_ttl_ms = s->cfg.cache_ttl_s * 1000;
    sc.cache_max_bytes = s->cfg.cache_max_bytes;
    sc.result_retention_ms = s->cfg.result_retention_s * 1000;
    sc.sync_writes = s->cfg.sync_writes;
    sc.memory_budget_bytes = s->cfg.memory_budget_bytes;
    sc.block_cache_bytes = s->cfg.block_cache_bytes;
    sc.write_buffer_bytes = s->cfg.write_buffer_bytes;
    sc.wal_max_bytes = s->cfg.wal_max_bytes;
    /* Room for a Start of a tenant's whole open-task allowance (persisted as one atomic
     * batch: all or none) on top of the usual queue. */
    sc.write_queue_max = 65536 + s->cfg.max_open_tasks_per_tenant;
    if (store_open(&sc, &s->st, err, sizeof err) != 0) {
        LOG_ERROR("main", "%s", err);
        return -1;
    }
    store_sizes z;
    store_sizes_derive(&sc, &z);
    LOG_INFO("main",
             "store: memory budget %llu MiB (block cache %llu MiB, write buffers %llu MiB), WAL "
             "cap %llu MiB, cache cap %llu MiB",
             (unsigned long long)(z.memory_budget_bytes >> 20),
             (unsigned long long)(z.block_cache_bytes >> 20),
             (unsigned long long)(z.write_buffer_bytes >> 20),
             (unsigned long long)(z.wal_max_bytes >> 20),
             (unsigned long long)(sc.cache_max_bytes >> 20));
    return 0;
}

/* An HTTP/1.1 provider needs a connection per prompt in flight; HTTPS ones multiplex over
 * HTTP/2. Says so when a plain-HTTP key may have more prompts in flight than the
 * connection cap allows (the rest would wait inside libcurl, their timeouts running). */
static void warn_connection_cap(const server *s) {
    uint32_t cap = s->cfg.max_connections_per_host;
    for (size_t i = 0; cap && i < s->reg->n_models; i++) {
        const model_info *m = &s->reg->models[i];
        const upstream_key *k = &s->reg->keys[m->key_index];
        if (strncmp(m->base_url, "http:", 5) == 0 && k->max_concurrent > cap)
            LOG_WARN("main",
                     "model '%s': key '%s' allows %u prompts in flight, but plain-HTTP %s gets "
                     "at most %u connections (dispatch.max_connections_per_host): raise it",
                     m->name, k->name, k->max_concurrent, m->base_url, cap);
    }
}

static int start_dispatcher(server *s) {
    char err[700];
    dispatcher_config dc;
    memset(&dc, 0, sizeof dc);
    dc.reg = s->reg;
    dc.store = s->st;
    dc.http.ca_file = s->cfg.ca_file;
    dc.http.max_response_bytes = s->cfg.max_response_bytes;
    dc.http.max_connections_per_host = s->cfg.max_connections_per_host;
    warn_connection_cap(s);
    dc.max_tasks = s->cfg.max_tasks;
    dc.burst_ms = s->cfg.burst_ms;
    dc.backoff_base_ms = s->cfg.backoff_base_ms;
    dc.backoff_max_ms = s->cfg.backoff_max_ms;
    dc.default_cooldown_ms = s->cfg.default_cooldown_ms;
    dc.retry_budget_ratio = s->cfg.retry_budget_ratio;
    dc.no_dedup = !s->cfg.dedup;
    if (dispatcher_new(&dc, &s->d, err, sizeof err) != 0 || dispatcher_start(s->d) != 0) {
        LOG_ERROR("main", "dispatcher: %s", err);
        return -1;
    }
    return 0;
}

static int start_service(server *s) {
    char err[700];
    service_config vc;
    memset(&vc, 0, sizeof vc);
    vc.node_id = s->cfg.node_id;
    vc.max_batch_in_flight = s->cfg.max_batch_in_flight;
    vc.max_batch_prompts = s->cfg.max_batch_prompts;
    vc.max_open_tasks_per_tenant = s->cfg.max_open_tasks_per_tenant;
    vc.max_sessions_per_tenant = s->cfg.max_sessions_per_tenant;
    vc.max_message_bytes = s->cfg.max_message_bytes;
    vc.heartbeat_interval_ms = s->cfg.heartbeat_interval_ms;
    vc.max_wait_ms = s->cfg.max_wait_ms;
    transport_config tc;
    memset(&tc, 0, sizeof tc);
    tc.listen_addr = s->cfg.listen;
    tc.n_workers = s->cfg.workers;
    tc.max_message_bytes = s->cfg.max_message_bytes;
    tc.max_outbound_per_call = service_outbound_needed(&vc);
    tc.tls_cert_file = s->cfg.tls_cert_file;
    tc.tls_key_file = s->cfg.tls_key_file;
    tc.tokens_file = s->cfg.tokens_file;
    tc.keepalive_time_ms = s->cfg.keepalive_time_ms;
    tc.keepalive_timeout_ms = s->cfg.keepalive_timeout_ms;
    tc.min_client_ping_interval_ms = s->cfg.min_client_ping_interval_ms;
    tc.keepalive_permit_without_calls = s->cfg.keepalive_permit_without_calls;
    if (service_new(&vc, s->d, s->st, s->reg, s->tm, &s->svc, err, sizeof err) != 0 ||
        transport_new(&tc, &s->tr, err, sizeof err) != 0 || service_register(s->svc, s->tr) != 0 ||
        service_restore(s->svc, err, sizeof err) != 0 ||
        transport_start(s->tr, err, sizeof err) != 0) {
        LOG_ERROR("main", "%s", err);
        return -1;
    }
    return 0;
}

static int start_metrics(server *s) {
    if (!s->cfg.metrics_listen)
        return 0;
    char err[512];
    metrics_sources src = {s->d, s->st, s->svc};
    if (metrics_server_start(s->cfg.metrics_listen, &src, &s->ms, err, sizeof err) != 0) {
        LOG_ERROR("main", "%s", err);
        return -1;
    }
    LOG_INFO("main", "metrics on %s (port %d) at /metrics", s->cfg.metrics_listen,
             metrics_server_port(s->ms));
    return 0;
}

/* Line 1: the gRPC port; line 2: the metrics port (0 when off). Written atomically. */
static void write_port_file(const char *path, int port, int metrics_port) {
    if (!path)
        return;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%d\n%d\n", port, metrics_port) < 0 || fclose(f) != 0 ||
        rename(tmp, path) != 0)
        LOG_WARN("main", "could not write port file %s", path);
}

/* Drain, then stop in reverse order. */
static void stop(server *s) {
    if (s->tr) {
        LOG_INFO("main", "draining for up to %u ms", s->cfg.drain_grace_ms);
        transport_drain(s->tr, s->cfg.drain_grace_ms);
    }
    metrics_server_stop(s->ms);
    if (s->d)
        dispatcher_stop(s->d);
    if (s->svc)
        service_shutdown(s->svc);
    timers_free(s->tm);
    store_close(s->st);
    transport_free(s->tr);
    service_free(s->svc);
    dispatcher_free(s->d);
    registry_free(s->reg);
    config_cleanup(&s->cfg);
}

static int wait_for_signal(const sigset_t *set) {
    int sig = 0;
    while (sigwait(set, &sig) == 0) {
        if (sig == SIGINT || sig == SIGTERM)
            return sig;
    }
    return 0;
}

int main(int argc, char **argv) {
    options o;
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    /* Block the signals before any thread starts (gRPC's included): main takes them with
     * sigwait, never in a handler. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    json_set_alloc_funcs(xmalloc, free);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    server s;
    memset(&s, 0, sizeof s);
    if (load_config(&o, &s.cfg) != 0)
        return 2;
    if (!(s.reg = load_registry(&s.cfg))) {
        config_cleanup(&s.cfg);
        return 2;
    }
    if (o.check_only) {
        printf("configuration and registry are valid (%zu models)\n", s.reg->n_models);
        stop(&s);
        return 0;
    }
    http_raise_fd_limit();
    s.tm = timers_new();
    int rc =
        (!s.tm || start_store(&s) || start_dispatcher(&s) || start_service(&s) || start_metrics(&s))
            ? 1
            : 0;
    if (rc == 0) {
        int port = transport_port(s.tr);
        LOG_INFO("main", "sluiced %s serving on %s (port %d), store %s, node %s", SLUICED_VERSION,
                 s.cfg.listen, port, s.cfg.data_dir, s.cfg.node_id);
        write_port_file(o.port_file, port, s.ms ? metrics_server_port(s.ms) : 0);
        int sig = wait_for_signal(&set);
        LOG_INFO("main", "%s received", sig == SIGINT ? "SIGINT" : "SIGTERM");
    }
    stop(&s);
    curl_global_cleanup();
    if (rc == 0)
        LOG_INFO("main", "stopped");
    return rc;
}
