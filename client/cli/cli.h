/*
 * cli.h - the sluice command-line tool's internal interfaces.
 */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H

#include "sluice/sluice.h"

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

/* Exit codes (documented in README "Command-line tool"). */
enum {
    CLI_OK = 0,            /* every prompt succeeded */
    CLI_PROMPT_FAILED = 1, /* the run finished but some prompt failed (or a line was bad) */
    CLI_USAGE = 2,         /* bad command line or unreadable input */
    CLI_CONNECTION = 3,    /* the server could not be reached, or refused the credentials */
    CLI_ERROR = 4,         /* any other failure (server-side error, ...) */
};

#define MAX_MODELS 16

/* Parsed command line. */

typedef struct cli_opts {
    const char *server, *token, *ca_file, *tls_name, *output, *session;
    bool tls, quiet, completions_only, as_completed;
    sluice_model models[MAX_MODELS];
    char *model_names[MAX_MODELS];
    size_t n_models;
    sluice_client_options copts;
    uint32_t wait_timeout_ms;
    size_t buffer_bytes; /* --buffer-bytes: results held in memory for input order */
    bool buffer_bytes_set;
    char *ca_pem;
} cli_opts;

/* Default of --buffer-bytes. */
#define CLI_BUFFER_BYTES ((size_t)64 << 20)

/* options.c: the long options (for getopt_long), and applying one option to o. Both
 * return 0, -1 (a bad value: a usage error) or -2 (out of memory). cli_add_model adds
 * "NAME[:WEIGHT]" (the name is copied). */
extern const struct option cli_longopts[];
int cli_apply_option(cli_opts *o, int opt, const char *arg);
int cli_add_model(cli_opts *o, const char *spec);

/* Maps an SDK status to an exit code. */
int cli_exit_code(int status);

/* The commands. Each returns an exit code. */
int cli_run(cli_opts *o, sluice_client *c, const char *input, bool start_only);
int cli_wait(cli_opts *o, sluice_client *c, char **ids, int n);
int cli_status(sluice_client *c, const char *session);
int cli_models(sluice_client *c);

/* Parses one JSONL line into a prompt; NULL with a message in err. */
sluice_prompt *cli_parse_line(const char *line, size_t len, char *err, size_t errlen);

/* Progress on stderr: a live bar on a terminal, a plain line every few seconds otherwise. */
typedef struct cli_progress cli_progress;
cli_progress *cli_progress_new(bool quiet, uint64_t total);
void cli_progress_update(cli_progress *p, const sluice_tracker *t, uint64_t done, uint64_t expected,
                         double rate);
void cli_progress_finish(cli_progress *p, const sluice_tracker *final);
void cli_progress_free(cli_progress *p);
/* How often the server should send snapshots for this kind of output, in ms. */
uint32_t cli_progress_interval_ms(const cli_progress *p);

/* reorder.c: the input-order buffer of `run` - results waiting for an earlier line, as JSON
 * lines by output slot, at most max_bytes of them in memory and the rest in an unlinked
 * temporary file. One thread. */
typedef struct cli_reorder cli_reorder;
typedef struct cli_reorder_stats {
    size_t peak_memory_bytes; /* most line bytes held in memory at once */
    size_t spilled_lines;     /* lines that went through the temporary file */
    uint64_t spilled_bytes;
} cli_reorder_stats;
/* A buffer of n_slots slots. NULL when out of memory. Free with cli_reorder_free. */
cli_reorder *cli_reorder_new(size_t n_slots, size_t max_bytes);
void cli_reorder_free(cli_reorder *r);
/* Keeps a copy of line (len bytes, without newline) for slot i (ignored when i is out of
 * range or already held). 0, or -2 when out of memory. */
int cli_reorder_put(cli_reorder *r, size_t i, const char *line, size_t len);
bool cli_reorder_has(const cli_reorder *r, size_t i);
/* Writes slot i's line and a newline to out and forgets it. 0, or -1 when it could not be
 * read back (an error line is written in its place) or i is not held. */
int cli_reorder_write(cli_reorder *r, size_t i, FILE *out);
void cli_reorder_get_stats(const cli_reorder *r, cli_reorder_stats *out);

/* One result as a JSON object (new reference). */
json_t *cli_result_json(const sluice_response *r, bool completions_only);

#endif
