/*
 * Configuration loading. The schema is a table: each row names a dotted key, its type,
 * where it goes and its bounds, so validation, unknown-key detection and error messages
 * all come from one place.
 */
#include "config.h"

#include "alloc.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* T_U64Z: a uint64_t that is 0 (derived from another key) or within the bounds. */
typedef enum {
    T_STR,
    T_U32,
    T_U64,
    T_U64Z,
    T_SIZE,
    T_INT,
    T_BOOL,
    T_DOUBLE,
    T_LEVEL,
    T_FORMAT
} ktype;

typedef struct key_spec {
    const char *path; /* "store.cache_ttl_s" */
    ktype type;
    size_t off;
    double min, max;
    const char *env; /* overriding environment variable, or NULL */
} key_spec;

#define F(field) offsetof(sluiced_config, field)
#define BIG 1.8e19
#define SECONDS_MAX 1e12 /* ~31,700 years; times 1000 still fits a uint64_t of ms */

static const key_spec keys[] = {
    {"node_id", T_STR, F(node_id), 0, 0, "SLUICE_NODE_ID"},
    {"listen", T_STR, F(listen), 0, 0, "SLUICE_LISTEN"},
    {"workers", T_INT, F(workers), 0, 256, NULL},
    {"max_message_bytes", T_SIZE, F(max_message_bytes), 1024, 1 << 30, NULL},
    {"drain_grace_ms", T_U32, F(drain_grace_ms), 0, 3600000, "SLUICE_DRAIN_GRACE_MS"},
    {"tls.cert_file", T_STR, F(tls_cert_file), 0, 0, "SLUICE_TLS_CERT_FILE"},
    {"tls.key_file", T_STR, F(tls_key_file), 0, 0, "SLUICE_TLS_KEY_FILE"},
    {"auth.tokens_file", T_STR, F(tokens_file), 0, 0, "SLUICE_TOKENS_FILE"},
    {"rpc.heartbeat_interval_ms", T_U32, F(heartbeat_interval_ms), 0, 3600000,
     "SLUICE_HEARTBEAT_INTERVAL_MS"},
    {"rpc.max_wait_ms", T_U32, F(max_wait_ms), 0, 3600000, "SLUICE_MAX_WAIT_MS"},
    {"keepalive.time_ms", T_U32, F(keepalive_time_ms), 0, 86400000, NULL},
    {"keepalive.timeout_ms", T_U32, F(keepalive_timeout_ms), 1000, 600000, NULL},
    {"keepalive.min_client_ping_interval_ms", T_U32, F(min_client_ping_interval_ms), 0, 86400000,
     NULL},
    {"keepalive.permit_without_calls", T_BOOL, F(keepalive_permit_without_calls), 0, 0, NULL},
    {"store.data_dir", T_STR, F(data_dir), 0, 0, "SLUICE_DATA_DIR"},
    {"store.cache_ttl_s", T_U64, F(cache_ttl_s), 0, SECONDS_MAX, NULL},
    {"store.cache_max_bytes", T_U64, F(cache_max_bytes), 1 << 20, BIG, NULL},
    {"store.result_retention_s", T_U64, F(result_retention_s), 1, SECONDS_MAX, NULL},
    {"store.sync_writes", T_BOOL, F(sync_writes), 0, 0, NULL},
    {"store.memory_budget_bytes", T_U64, F(memory_budget_bytes), 4 << 20, 1ull << 40, NULL},
    {"store.block_cache_bytes", T_U64Z, F(block_cache_bytes), 1 << 20, 1ull << 40, NULL},
    {"store.write_buffer_bytes", T_U64Z, F(write_buffer_bytes), 1 << 20, 1ull << 40, NULL},
    {"store.wal_max_bytes", T_U64Z, F(wal_max_bytes), 1 << 20, 1ull << 40, NULL},
    {"limits.max_batch_in_flight", T_SIZE, F(max_batch_in_flight), 1, 1000000, NULL},
    {"limits.max_batch_prompts", T_U64, F(max_batch_prompts), 1, BIG, NULL},
    {"limits.max_open_tasks_per_tenant", T_SIZE, F(max_open_tasks_per_tenant), 1, 1e9, NULL},
    {"limits.max_sessions_per_tenant", T_SIZE, F(max_sessions_per_tenant), 1, 1e7, NULL},
    {"limits.max_tasks", T_SIZE, F(max_tasks), 1, 1e9, NULL},
    {"dispatch.burst_ms", T_U32, F(burst_ms), 1, 60000, NULL},
    {"dispatch.backoff_base_ms", T_U32, F(backoff_base_ms), 1, 600000, NULL},
    {"dispatch.backoff_max_ms", T_U32, F(backoff_max_ms), 1, 3600000, NULL},
    {"dispatch.default_cooldown_ms", T_U32, F(default_cooldown_ms), 1, 3600000, NULL},
    {"dispatch.retry_budget_ratio", T_DOUBLE, F(retry_budget_ratio), 0.001, 100, NULL},
    {"dispatch.dedup", T_BOOL, F(dedup), 0, 0, NULL},
    {"dispatch.ca_file", T_STR, F(ca_file), 0, 0, "SLUICE_CA_FILE"},
    {"dispatch.max_response_bytes", T_SIZE, F(max_response_bytes), 1024, 1 << 30, NULL},
    {"dispatch.max_connections_per_host", T_U32, F(max_connections_per_host), 0, 1000000, NULL},
    {"registry_file", T_STR, F(registry_file), 0, 0, "SLUICE_REGISTRY_FILE"},
    {"log.level", T_LEVEL, F(log_level), 0, 0, "SLUICE_LOG_LEVEL"},
    {"log.format", T_FORMAT, F(log_format), 0, 0, "SLUICE_LOG_FORMAT"},
    {"metrics.listen", T_STR, F(metrics_listen), 0, 0, "SLUICE_METRICS_LISTEN"},
};
#define N_KEYS (sizeof keys / sizeof *keys)

void config_defaults(sluiced_config *c) {
    memset(c, 0, sizeof *c);
    c->node_id = xstrdup("local");
    c->listen = xstrdup("0.0.0.0:50051");
    c->max_message_bytes = 16u << 20;
    c->drain_grace_ms = 25000;
    c->heartbeat_interval_ms = 15000;
    c->max_wait_ms = 20000;
    c->keepalive_time_ms = 60000;
    c->keepalive_timeout_ms = 20000;
    c->min_client_ping_interval_ms = 5000;
    c->keepalive_permit_without_calls = true;
    c->data_dir = xstrdup("./sluice-data");
    c->cache_max_bytes = 1ull << 30;
    c->result_retention_s = 86400;
    c->memory_budget_bytes = 256ull << 20;
    c->max_batch_in_flight = 4096;
    c->max_batch_prompts = 10000000;
    c->max_open_tasks_per_tenant = 100000;
    c->max_sessions_per_tenant = 1000;
    c->max_tasks = 1000000;
    c->burst_ms = 1000;
    c->backoff_base_ms = 500;
    c->backoff_max_ms = 30000;
    c->default_cooldown_ms = 10000;
    c->retry_budget_ratio = 0.2;
    c->dedup = true;
    c->max_response_bytes = 16u << 20;
    c->max_connections_per_host = 128;
    c->log_level = LOG_LEVEL_INFO;
    c->log_format = LOG_FORMAT_JSON;
}

void config_cleanup(sluiced_config *c) {
    for (size_t i = 0; i < N_KEYS; i++) {
        if (keys[i].type == T_STR) {
            char **p = (char **)((char *)c + keys[i].off);
            free(*p);
            *p = NULL;
        }
    }
}

static int set_number(sluiced_config *c, const key_spec *k, double v, char *err, size_t errlen) {
    bool integral = k->type != T_DOUBLE, zero = k->type == T_U64Z && v == 0;
    /* NaN fails the range test; the integer test casts only values a long long holds
     * (every double from 2^53 up is an integer anyway). */
    if (!zero &&
        (!(v >= k->min && v <= k->max) || (integral && v < 9e18 && v != (double)(long long)v))) {
        snprintf(err, errlen, "%s: must be %s%s between %g and %g", k->path,
                 k->type == T_U64Z ? "0 (derived) or " : "", integral ? "an integer" : "a number",
                 k->min, k->max);
        return -1;
    }
    void *p = (char *)c + k->off;
    switch (k->type) {
    case T_U32:
        *(uint32_t *)p = (uint32_t)v;
        break;
    case T_U64:
    case T_U64Z:
        *(uint64_t *)p = (uint64_t)v;
        break;
    case T_SIZE:
        *(size_t *)p = (size_t)v;
        break;
    case T_INT:
        *(int *)p = (int)v;
        break;
    default:
        *(double *)p = v;
        break;
    }
    return 0;
}

/* Sets one key from a string (environment variable or JSON string). */
static int set_string(sluiced_config *c, const key_spec *k, const char *v, char *err,
                      size_t errlen) {
    void *p = (char *)c + k->off;
    switch (k->type) {
    case T_STR:
        free(*(char **)p);
        *(char **)p = *v ? xstrdup(v) : NULL;
        return 0;
    case T_LEVEL:
        if (log_level_parse(v, (log_level *)p) == 0)
            return 0;
        snprintf(err, errlen, "%s: '%s' is not one of debug, info, warn, error, off", k->path, v);
        return -1;
    case T_FORMAT:
        if (strcmp(v, "json") == 0 || strcmp(v, "text") == 0) {
            *(log_format *)p = strcmp(v, "json") == 0 ? LOG_FORMAT_JSON : LOG_FORMAT_TEXT;
            return 0;
        }
        snprintf(err, errlen, "%s: '%s' is not json or text", k->path, v);
        return -1;
    case T_BOOL:
        if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0) {
            *(bool *)p = strcmp(v, "true") == 0;
            return 0;
        }
        snprintf(err, errlen, "%s: '%s' is not true or false", k->path, v);
        return -1;
    default: {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (errno || end == v || *end) {
            snprintf(err, errlen, "%s: '%s' is not a number", k->path, v);
            return -1;
        }
        return set_number(c, k, d, err, errlen);
    }
    }
}

static int set_json(sluiced_config *c, const key_spec *k, json_t *v, char *err, size_t errlen) {
    if (json_is_null(v) && k->type == T_STR) {
        free(*(char **)((char *)c + k->off));
        *(char **)((char *)c + k->off) = NULL;
        return 0;
    }
    if (k->type == T_BOOL) {
        if (!json_is_boolean(v)) {
            snprintf(err, errlen, "%s: must be true or false", k->path);
            return -1;
        }
        *(bool *)((char *)c + k->off) = json_is_true(v);
        return 0;
    }
    if (k->type == T_STR || k->type == T_LEVEL || k->type == T_FORMAT) {
        if (!json_is_string(v)) {
            snprintf(err, errlen, "%s: must be a string", k->path);
            return -1;
        }
        return set_string(c, k, json_string_value(v), err, errlen);
    }
    if (!json_is_number(v)) {
        snprintf(err, errlen, "%s: must be a number", k->path);
        return -1;
    }
    return set_number(c, k, json_number_value(v), err, errlen);
}

static const key_spec *find_key(const char *path) {
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].path, path) == 0)
            return &keys[i];
    return NULL;
}

/* True when some key lives under "prefix." (so prefix is a section). */
static bool is_section(const char *prefix) {
    size_t n = strlen(prefix);
    for (size_t i = 0; i < N_KEYS; i++)
        if (strncmp(keys[i].path, prefix, n) == 0 && keys[i].path[n] == '.')
            return true;
    return false;
}

static int apply_object(sluiced_config *c, json_t *obj, const char *prefix, char *err,
                        size_t errlen) {
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v) {
        char path[128];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", name);
        const key_spec *k = find_key(path);
        int rc;
        if (k) {
            rc = set_json(c, k, v, err, errlen);
        } else if (is_section(path)) {
            if (!json_is_object(v)) {
                snprintf(err, errlen, "%s: must be an object", path);
                return -1;
            }
            rc = apply_object(c, v, path, err, errlen);
        } else {
            snprintf(err, errlen, "%s: unknown key", path);
            return -1;
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int apply_root(sluiced_config *c, json_t *root, char *err, size_t errlen) {
    if (!json_is_object(root)) {
        snprintf(err, errlen, "the configuration must be a JSON object");
        return -1;
    }
    return apply_object(c, root, "", err, errlen);
}

int config_load_text(sluiced_config *c, const char *text, char *err, size_t errlen) {
    json_error_t je;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "line %d: %s", je.line, je.text);
        return -1;
    }
    int rc = apply_root(c, root, err, errlen);
    json_decref(root);
    return rc;
}

int config_load_file(sluiced_config *c, const char *path, char *err, size_t errlen) {
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "%s: line %d: %s", path, je.line, je.text);
        return -1;
    }
    char inner[512];
    int rc = apply_root(c, root, inner, sizeof inner);
    if (rc)
        snprintf(err, errlen, "%s: %s", path, inner);
    json_decref(root);
    return rc;
}

int config_apply_env(sluiced_config *c, char *err, size_t errlen) {
    for (size_t i = 0; i < N_KEYS; i++) {
        const char *v = keys[i].env ? getenv(keys[i].env) : NULL;
        if (!v)
            continue;
        char inner[512];
        if (set_string(c, &keys[i], v, inner, sizeof inner) != 0) {
            snprintf(err, errlen, "environment %s: %s", keys[i].env, inner);
            return -1;
        }
    }
    return 0;
}
