/*
 * Command-line options of the sluice tool: the option table and how each value lands in
 * cli_opts (main.c runs getopt_long over them).
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int cli_add_model(cli_opts *o, const char *spec) {
    if (o->n_models == MAX_MODELS)
        return -1;
    char *name = strdup(spec);
    if (!name)
        return -2;
    char *colon = strrchr(name, ':');
    double weight = 1;
    if (colon) {
        char *end;
        weight = strtod(colon + 1, &end);
        if (*end || weight < 0) {
            free(name);
            return -1;
        }
        *colon = '\0';
    }
    o->model_names[o->n_models] = name;
    o->models[o->n_models].name = name;
    o->models[o->n_models++].weight = weight;
    return 0;
}

static int parse_u32(const char *s, uint32_t *out) {
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_size(const char *s, size_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || *s == '-' || v > SIZE_MAX)
        return -1;
    *out = (size_t)v;
    return 0;
}

static int parse_cache(const char *s, sluice_cache_mode *m) {
    static const char *const names[] = {"read_write", "read_only", "write_only", "off"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *m = (sluice_cache_mode)i;
            return 0;
        }
    return -1;
}

enum {
    O_RPM = 256,
    O_TPM,
    O_CONC,
    O_ATTEMPTS,
    O_TIMEOUT,
    O_TASK_TIMEOUT,
    O_CACHE,
    O_CO,
    O_AC,
    O_TOKEN,
    O_TLS,
    O_CA,
    O_TLSNAME,
    O_MNT,
    O_TEMP,
    O_SESSION,
    O_WAIT,
    O_BUFFER,
    O_CALL_BYTES
};

const struct option cli_longopts[] = {{"model", required_argument, 0, 'm'},
                                      {"server", required_argument, 0, 's'},
                                      {"output", required_argument, 0, 'o'},
                                      {"quiet", no_argument, 0, 'q'},
                                      {"help", no_argument, 0, 'h'},
                                      {"rpm", required_argument, 0, O_RPM},
                                      {"tpm", required_argument, 0, O_TPM},
                                      {"concurrency", required_argument, 0, O_CONC},
                                      {"max-attempts", required_argument, 0, O_ATTEMPTS},
                                      {"timeout", required_argument, 0, O_TIMEOUT},
                                      {"task-timeout", required_argument, 0, O_TASK_TIMEOUT},
                                      {"cache", required_argument, 0, O_CACHE},
                                      {"completions-only", no_argument, 0, O_CO},
                                      {"as-completed", no_argument, 0, O_AC},
                                      {"token", required_argument, 0, O_TOKEN},
                                      {"tls", no_argument, 0, O_TLS},
                                      {"ca", required_argument, 0, O_CA},
                                      {"tls-server-name", required_argument, 0, O_TLSNAME},
                                      {"max-new-tokens", required_argument, 0, O_MNT},
                                      {"temperature", required_argument, 0, O_TEMP},
                                      {"session", required_argument, 0, O_SESSION},
                                      {"timeout-wait", required_argument, 0, O_WAIT},
                                      {"buffer-bytes", required_argument, 0, O_BUFFER},
                                      {"max-call-bytes", required_argument, 0, O_CALL_BYTES},
                                      {0, 0, 0, 0}};

int cli_apply_option(cli_opts *o, int c, const char *arg) {
    sluice_client_options *co = &o->copts;
    switch (c) {
    case 'm':
        return cli_add_model(o, arg);
    case 's':
        o->server = arg;
        return 0;
    case 'o':
        o->output = arg;
        return 0;
    case 'q':
        o->quiet = true;
        return 0;
    case O_RPM:
        return parse_u32(arg, &co->max_requests_per_minute);
    case O_TPM:
        return parse_u32(arg, &co->max_tokens_per_minute);
    case O_CONC:
        return parse_u32(arg, &co->max_concurrent_requests);
    case O_ATTEMPTS:
        return parse_u32(arg, &co->max_attempts);
    case O_TIMEOUT:
        return parse_u32(arg, &co->request_timeout_ms);
    case O_TASK_TIMEOUT:
        return parse_u32(arg, &co->task_timeout_ms);
    case O_CACHE:
        return parse_cache(arg, &co->cache_mode);
    case O_CO:
        o->completions_only = true;
        return 0;
    case O_AC:
        o->as_completed = true;
        return 0;
    case O_TOKEN:
        o->token = arg;
        return 0;
    case O_TLS:
        o->tls = true;
        return 0;
    case O_CA:
        o->ca_file = arg;
        o->tls = true;
        return 0;
    case O_TLSNAME:
        o->tls_name = arg;
        return 0;
    case O_MNT:
        return parse_u32(arg, &co->sampling.max_new_tokens);
    case O_TEMP: {
        char *end;
        co->sampling.temperature = strtod(arg, &end);
        co->sampling.has_temperature = true;
        return *end ? -1 : 0;
    }
    case O_SESSION:
        o->session = arg;
        return 0;
    case O_WAIT:
        return parse_u32(arg, &o->wait_timeout_ms);
    case O_BUFFER:
        o->buffer_bytes_set = true;
        return parse_size(arg, &o->buffer_bytes);
    case O_CALL_BYTES:
        return parse_size(arg, &co->max_call_bytes);
    default:
        return -1;
    }
}
