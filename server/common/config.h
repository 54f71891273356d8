/*
 * config.h - sluiced's configuration: one JSON file plus environment overrides.
 *
 * Every key is optional; config_defaults() gives a server that listens on 0.0.0.0:50051,
 * keeps its store under ./sluice-data and uses the built-in model registry. Unknown keys
 * and bad values stop start-up with one message naming the key ("store.cache_ttl_s: must
 * be an integer >= 0"). deploy/sluiced.sample.json lists every key; deploy/CONFIG.md
 * documents each (type, default, environment override, meaning).
 *
 * Environment overrides (applied after the file, for containers):
 *   SLUICE_LISTEN, SLUICE_NODE_ID, SLUICE_DATA_DIR, SLUICE_REGISTRY_FILE,
 *   SLUICE_TOKENS_FILE, SLUICE_TLS_CERT_FILE, SLUICE_TLS_KEY_FILE, SLUICE_METRICS_LISTEN,
 *   SLUICE_LOG_LEVEL, SLUICE_LOG_FORMAT, SLUICE_CA_FILE, SLUICE_DRAIN_GRACE_MS,
 *   SLUICE_HEARTBEAT_INTERVAL_MS, SLUICE_MAX_WAIT_MS.
 *
 * Strings are owned by the config (config_cleanup). Not thread safe: built in main.
 */
#ifndef SLUICE_COMMON_CONFIG_H
#define SLUICE_COMMON_CONFIG_H

#include "log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sluiced_config {
    char *node_id;            /* prefix of ids; default "local" */
    char *listen;             /* gRPC address; default "0.0.0.0:50051" */
    int workers;              /* completion-queue threads; 0 = cores */
    size_t max_message_bytes; /* default 16 MiB */
    uint32_t drain_grace_ms;  /* default 25000 */
    char *tls_cert_file;      /* NULL = plaintext */
    char *tls_key_file;
    char *tokens_file; /* NULL = auth off */

    uint32_t heartbeat_interval_ms;       /* stream heartbeats; 0 = none; default 15000 */
    uint32_t max_wait_ms;                 /* cap on one Wait; 0 = none; default 20000 */
    uint32_t keepalive_time_ms;           /* server pings; 0 = none; default 60000 */
    uint32_t keepalive_timeout_ms;        /* ping ack timeout; default 20000 */
    uint32_t min_client_ping_interval_ms; /* client pings accepted; default 5000 */
    bool keepalive_permit_without_calls;  /* pings on connections without calls; true */

    char *data_dir;              /* default "./sluice-data" */
    uint64_t cache_ttl_s;        /* 0 = forever */
    uint64_t cache_max_bytes;    /* default 1 GiB */
    uint64_t result_retention_s; /* default 86400 */
    bool sync_writes;
    uint64_t memory_budget_bytes; /* RocksDB's memory; default 256 MiB */
    uint64_t block_cache_bytes;   /* 0 = derived from memory_budget_bytes */
    uint64_t write_buffer_bytes;  /* 0 = derived */
    uint64_t wal_max_bytes;       /* 0 = derived */

    size_t max_batch_in_flight;
    uint64_t max_batch_prompts;
    size_t max_open_tasks_per_tenant;
    size_t max_sessions_per_tenant;
    size_t max_tasks;

    uint32_t burst_ms;
    uint32_t backoff_base_ms, backoff_max_ms;
    uint32_t default_cooldown_ms;
    double retry_budget_ratio;
    bool dedup;
    char *ca_file; /* CA bundle for provider TLS (tests); NULL = system */
    size_t max_response_bytes;
    uint32_t max_connections_per_host; /* 0 = unlimited */

    char *registry_file; /* NULL = built-in registry */

    log_level log_level;
    log_format log_format;
    char *metrics_listen; /* "host:port" for Prometheus; NULL/"" = off */
} sluiced_config;

/* Fills in the defaults. */
void config_defaults(sluiced_config *c);
/* Applies a JSON file over *c. Returns 0, or -1 with one message in err naming the file and
 * the key. */
int config_load_file(sluiced_config *c, const char *path, char *err, size_t errlen);
/* Applies a JSON text (same rules; for tests). */
int config_load_text(sluiced_config *c, const char *text, char *err, size_t errlen);
/* Applies SLUICE_* environment overrides. Returns 0 or -1 naming the variable. */
int config_apply_env(sluiced_config *c, char *err, size_t errlen);
/* Frees the strings. */
void config_cleanup(sluiced_config *c);

#endif
