/*
 * sluice - the command-line tool: run a JSONL batch through sluiced, start and wait for
 * durable tasks, show a session's tracker, list models. Built on the C SDK only.
 */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out, const char *cmd) {
    if (!cmd || strcmp(cmd, "run") == 0 || strcmp(cmd, "start") == 0)
        fprintf(out,
                "usage: sluice run   [options] [INPUT.jsonl|-]   run a batch, write JSONL results\n"
                "       sluice start [options] [INPUT.jsonl|-]   start durable tasks, print ids\n"
                "  -m, --model NAME[:WEIGHT]  model to use (repeatable; default gpt-4.1-mini)\n"
                "      --rpm N --tpm N --concurrency N   session limits (default: the keys')\n"
                "      --max-attempts N       attempts per prompt (default 5)\n"
                "      --timeout MS           per attempt (default 30000)\n"
                "      --task-timeout MS      per prompt overall (default 600000)\n"
                "      --max-new-tokens N --temperature T   session-wide sampling\n"
                "      --cache MODE           read_write (default), read_only, write_only, off\n"
                "      --completions-only     results carry only the text\n"
                "      --as-completed         write results as they finish (default: input order)\n"
                "  -o, --output FILE          results file (default stdout)\n"
                "  -q, --quiet                no progress on stderr\n");
    if (!cmd || strcmp(cmd, "wait") == 0)
        fprintf(out, "       sluice wait [--timeout-wait MS] [--session ID] [TASK_ID...]\n"
                     "                                             print results of tasks\n");
    if (!cmd || strcmp(cmd, "status") == 0)
        fprintf(out, "       sluice status SESSION_ID                 print a session's tracker\n");
    if (!cmd || strcmp(cmd, "models") == 0)
        fprintf(out, "       sluice models                            list the server's models\n");
    fprintf(out,
            "common: -s, --server HOST:PORT (default $SLUICE_SERVER or 127.0.0.1:50051)\n"
            "        --token TOKEN ($SLUICE_TOKEN)  --tls  --ca FILE  --tls-server-name NAME\n"
            "exit codes: 0 all prompts succeeded, 1 some prompt failed or an input line was\n"
            "bad, 2 usage error, 3 server unreachable or credentials refused, 4 other error\n");
}

static int add_model(cli_opts *o, const char *spec) {
    if (o->n_models == MAX_MODELS)
        return -1;
    char *name = strdup(spec);
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
    O_WAIT
};

static const struct option longopts[] = {{"model", required_argument, 0, 'm'},
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
                                         {0, 0, 0, 0}};

/* Applies one option; returns 0 or -1 (usage error). */
static int apply_opt(cli_opts *o, int c, const char *arg) {
    sluice_client_options *co = &o->copts;
    switch (c) {
    case 'm':
        return add_model(o, arg);
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
    default:
        return -1;
    }
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, len = 0, n;
    char chunk[8192];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf ? buf : strdup("");
}

static int make_client(cli_opts *o, sluice_client **c) {
    const char *server = o->server ? o->server : getenv("SLUICE_SERVER");
    const char *token = o->token ? o->token : getenv("SLUICE_TOKEN");
    if (o->n_models == 0)
        add_model(o, getenv("SLUICE_MODEL") ? getenv("SLUICE_MODEL") : "gpt-4.1-mini");
    o->copts.models = o->models;
    o->copts.n_models = o->n_models;
    o->copts.auth_token = token;
    o->copts.use_tls = o->tls;
    o->copts.tls_server_name = o->tls_name;
    if (o->ca_file && !(o->ca_pem = read_file(o->ca_file))) {
        fprintf(stderr, "sluice: cannot read --ca %s\n", o->ca_file);
        return CLI_USAGE;
    }
    o->copts.tls_root_certs_pem = o->ca_pem;
    if (sluice_client_new(server ? server : "127.0.0.1:50051", &o->copts, c) != 0) {
        fprintf(stderr, "sluice: %s\n", sluice_last_error());
        return CLI_USAGE;
    }
    return CLI_OK;
}

int cli_exit_code(int status) {
    switch (status) {
    case SLUICE_OK:
        return CLI_OK;
    case SLUICE_EINVAL:
    case SLUICE_ENOTFOUND:
        return CLI_USAGE;
    case SLUICE_EUNAVAILABLE:
    case SLUICE_EAUTH:
        return CLI_CONNECTION;
    default:
        return CLI_ERROR;
    }
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout, argc > 2 ? argv[2] : NULL);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") && strcmp(cmd, "start") && strcmp(cmd, "wait") &&
        strcmp(cmd, "status") && strcmp(cmd, "models")) {
        fprintf(stderr, "sluice: unknown command '%s'\n", cmd);
        usage(stderr, NULL);
        return CLI_USAGE;
    }
    cli_opts o;
    memset(&o, 0, sizeof o);
    int ch;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "m:s:o:qh", longopts, NULL)) != -1) {
        if (ch == 'h') {
            usage(stdout, cmd);
            return CLI_OK;
        }
        if (apply_opt(&o, ch, optarg) != 0) {
            fprintf(stderr, "sluice %s: bad value for option\n", cmd);
            usage(stderr, cmd);
            return CLI_USAGE;
        }
    }
    sluice_client *c = NULL;
    int rc = make_client(&o, &c);
    if (rc == CLI_OK) {
        if (strcmp(cmd, "run") == 0 || strcmp(cmd, "start") == 0)
            rc = optind + 1 < argc ? (usage(stderr, cmd), CLI_USAGE)
                                   : cli_run(&o, c, optind < argc ? argv[optind] : "-",
                                             strcmp(cmd, "start") == 0);
        else if (strcmp(cmd, "wait") == 0)
            rc = cli_wait(&o, c, argv + optind, argc - optind);
        else if (strcmp(cmd, "status") == 0)
            rc = optind + 1 == argc ? cli_status(c, argv[optind]) : (usage(stderr, cmd), CLI_USAGE);
        else
            rc = cli_models(c);
    }
    sluice_client_free(c);
    for (size_t i = 0; i < o.n_models; i++)
        free(o.model_names[i]);
    free(o.ca_pem);
    return rc;
}
