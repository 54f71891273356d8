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
                "      --buffer-bytes N       input order holds results that finish before an\n"
                "                             earlier line: up to N bytes of them in memory\n"
                "                             (default 67108864, 64 MiB), the rest in a temporary\n"
                "                             file in $TMPDIR (or /tmp), deleted as it goes\n"
                "      --max-call-bytes N     send the batch in BatchProcess calls of at most N\n"
                "                             request bytes each, on one session (for a proxy\n"
                "                             that limits request bodies, e.g. nginx\n"
                "                             client_max_body_size: give its value); default:\n"
                "                             one call\n"
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
    const char *model = getenv("SLUICE_MODEL") ? getenv("SLUICE_MODEL") : "gpt-4.1-mini";
    int mrc = o->n_models ? 0 : cli_add_model(o, model);
    if (mrc) {
        fprintf(stderr, mrc == -2 ? "sluice: out of memory\n" : "sluice: bad SLUICE_MODEL\n");
        return mrc == -2 ? CLI_ERROR : CLI_USAGE;
    }
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
    while ((ch = getopt_long(argc, argv, "m:s:o:qh", cli_longopts, NULL)) != -1) {
        if (ch == 'h') {
            usage(stdout, cmd);
            return CLI_OK;
        }
        int orc = cli_apply_option(&o, ch, optarg);
        if (orc == -2) {
            fprintf(stderr, "sluice: out of memory\n");
            return CLI_ERROR;
        }
        if (orc != 0) {
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
