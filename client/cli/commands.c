/*
 * The sluice commands. `run` reads every input line first (bad lines are reported with
 * their line number and answered with an error result in their place), runs the good ones
 * as one batch on a session of its own, and writes one JSON result per input line: in
 * input order through a reorder buffer, or as they complete with --as-completed.
 * Re-running the same input after an interruption finishes from the cache.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* ---- JSON output -------------------------------------------------------------------- */

static json_t *usage_json(const sluice_response *r) {
    sluice_usage u = sluice_response_usage(r);
    return json_pack("{s:I, s:I, s:I, s:I}", "input_tokens", (json_int_t)u.input_tokens,
                     "output_tokens", (json_int_t)u.output_tokens, "cache_read_tokens",
                     (json_int_t)u.cache_read_tokens, "cache_write_tokens",
                     (json_int_t)u.cache_write_tokens);
}

static json_t *tool_calls_json(const sluice_response *r) {
    json_t *arr = json_array();
    for (size_t i = 0; i < sluice_response_n_tool_calls(r); i++) {
        const char *id, *name, *args;
        sluice_response_tool_call(r, i, &id, &name, &args);
        json_t *parsed = json_loads(args, 0, NULL);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:o}", "id", id, "name", name, "arguments",
                                             parsed ? parsed : json_string(args)));
    }
    return arr;
}

json_t *cli_result_json(const sluice_response *r, bool completions_only) {
    json_t *o = json_object();
    json_object_set_new(o, "custom_id", json_string(sluice_response_custom_id(r)));
    json_object_set_new(o, "task_id", json_string(sluice_response_task_id(r)));
    bool err = sluice_response_is_error(r);
    json_object_set_new(o, "completion",
                        err ? json_null() : json_string(sluice_response_completion(r)));
    json_object_set_new(o, "is_error", json_boolean(err));
    if (err && !completions_only)
        json_object_set_new(o, "error", json_string(sluice_response_error_message(r)));
    if (completions_only)
        return o;
    if (sluice_response_n_tool_calls(r))
        json_object_set_new(o, "tool_calls", tool_calls_json(r));
    json_object_set_new(o, "model", json_string(sluice_response_model_used(r)));
    json_object_set_new(o, "finish_reason", json_string(sluice_response_finish_reason(r)));
    json_object_set_new(o, "usage", usage_json(r));
    json_object_set_new(o, "cost", json_real(sluice_response_cost(r)));
    json_object_set_new(o, "cached", json_boolean(sluice_response_local_cache_hit(r)));
    json_object_set_new(o, "attempts", json_integer((json_int_t)sluice_response_n_attempts(r)));
    json_object_set_new(o, "status_code", json_integer(sluice_response_status_code(r)));
    return o;
}

/* One JSON line. Numbers get 15 significant digits, so a cost prints as 2.12e-05 rather
 * than 2.1200000000000004e-05 (the double's full expansion). */
static void write_json(FILE *out, json_t *j) {
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(15));
    if (s) {
        fputs(s, out);
        fputc('\n', out);
        free(s);
    }
    json_decref(j);
}

/* ---- reading the input -------------------------------------------------------------- */

typedef struct input {
    sluice_prompt **prompts; /* good lines, in order */
    size_t n;
    size_t *slot_of; /* prompts[i] is the slot_of[i]-th non-blank line (its output slot) */
    char **bad;      /* per slot: the error of a bad line, else NULL */
    size_t *lineno;  /* per slot: its line number in the file (1-based, blank lines count) */
    size_t n_lines;  /* non-blank lines: the output slots */
} input;

static void input_free(input *in) {
    for (size_t i = 0; i < in->n; i++)
        sluice_prompt_free(in->prompts[i]);
    for (size_t i = 0; i < in->n_lines; i++)
        free(in->bad[i]);
    free(in->prompts);
    free(in->slot_of);
    free(in->bad);
    free(in->lineno);
}

static int grow(input *in, size_t *cap) {
    if (in->n_lines < *cap)
        return 0;
    *cap = *cap ? *cap * 2 : 1024;
    sluice_prompt **p = realloc(in->prompts, *cap * sizeof *p);
    if (p)
        in->prompts = p;
    size_t *l = p ? realloc(in->slot_of, *cap * sizeof *l) : NULL;
    if (l)
        in->slot_of = l;
    char **b = l ? realloc(in->bad, *cap * sizeof *b) : NULL;
    if (b)
        in->bad = b;
    size_t *ln = b ? realloc(in->lineno, *cap * sizeof *ln) : NULL;
    if (ln)
        in->lineno = ln;
    return ln ? 0 : -1;
}

/* Reads JSONL; bad lines are reported on stderr and kept as errors. */
static int read_input(const char *path, input *in, size_t *n_bad) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) {
        fprintf(stderr, "sluice: cannot read %s\n", path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, lcap = 0, lineno = 0;
    ssize_t len;
    int rc = 0;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (strspn(line, " \t") == (size_t)len)
            continue;
        if (grow(in, &cap) != 0) {
            rc = -1;
            break;
        }
        char err[512];
        sluice_prompt *p = cli_parse_line(line, (size_t)len, err, sizeof err);
        in->bad[in->n_lines] = NULL;
        in->lineno[in->n_lines] = lineno;
        if (p) {
            in->prompts[in->n] = p;
            in->slot_of[in->n++] = in->n_lines;
        } else {
            fprintf(stderr, "sluice: line %zu: %s\n", lineno, err);
            size_t m = strlen(err) + 32;
            in->bad[in->n_lines] = malloc(m);
            if (in->bad[in->n_lines])
                snprintf(in->bad[in->n_lines], m, "line %zu: %s", lineno, err);
            (*n_bad)++;
        }
        in->n_lines++;
    }
    free(line);
    if (f != stdin)
        fclose(f);
    return rc;
}

/* ---- run ---------------------------------------------------------------------------- */

typedef struct sink {
    cli_opts *o;
    input *in;
    FILE *out;
    json_t **pending; /* by output slot (input order mode) */
    size_t next;      /* next output slot to write */
    size_t failed;
    cli_progress *progress;
} sink;

/* The error result standing in for bad line `slot`. */
static json_t *bad_line_json(const input *in, size_t slot) {
    return json_pack("{s:I, s:s, s:s, s:n, s:b, s:s}", "line", (json_int_t)in->lineno[slot],
                     "custom_id", "", "task_id", "", "completion", "is_error", 1, "error",
                     in->bad[slot]);
}

/* Writes whatever is ready at the head of the input order. */
static void flush_ordered(sink *s) {
    while (s->next < s->in->n_lines) {
        if (s->in->bad[s->next]) {
            write_json(s->out, bad_line_json(s->in, s->next));
        } else if (s->pending[s->next]) {
            write_json(s->out, s->pending[s->next]);
            s->pending[s->next] = NULL;
        } else {
            break;
        }
        s->next++;
    }
    fflush(s->out);
}

static void on_result(void *ud, sluice_response *r) {
    sink *s = ud;
    size_t idx = (size_t)sluice_response_index(r);
    s->failed += sluice_response_is_error(r);
    json_t *j = cli_result_json(r, s->o->completions_only);
    size_t slot = idx < s->in->n ? s->in->slot_of[idx] : 0;
    if (idx < s->in->n)
        json_object_set_new(j, "line", json_integer((json_int_t)s->in->lineno[slot]));
    sluice_response_free(r);
    if (s->o->as_completed) {
        write_json(s->out, j);
        fflush(s->out);
        return;
    }
    if (idx >= s->in->n || s->pending[slot]) {
        json_decref(j);
        return;
    }
    s->pending[slot] = j;
    flush_ordered(s);
}

static void on_progress(void *ud, const sluice_tracker *t, uint64_t done, uint64_t expected,
                        double rate) {
    sink *s = ud;
    cli_progress_update(s->progress, t, done, expected, rate);
}

static int run_batch(cli_opts *o, sluice_client *c, input *in, FILE *out, size_t *failed) {
    sink s = {o,
              in,
              out,
              calloc(in->n_lines ? in->n_lines : 1, sizeof(json_t *)),
              0,
              0,
              cli_progress_new(o->quiet, in->n)};
    sluice_batch_options bo;
    memset(&bo, 0, sizeof bo);
    bo.show_progress = !o->quiet;
    bo.progress_interval_ms = s.progress ? cli_progress_interval_ms(s.progress) : 1000;
    bo.on_progress = o->quiet ? NULL : on_progress; /* quiet: no progress events at all */
    bo.progress_ud = &s;
    int rc = in->n ? sluice_process_prompts_cb(c, in->prompts, in->n, &bo, on_result, &s) : 0;
    if (o->as_completed) {
        for (size_t i = 0; i < in->n_lines; i++)
            if (in->bad[i])
                write_json(out, bad_line_json(in, i));
    } else {
        flush_ordered(&s);
    }
    for (size_t i = 0; i < in->n_lines; i++)
        json_decref(s.pending[i]);
    free(s.pending);
    sluice_tracker final;
    int crc = sluice_client_close(c, &final);
    cli_progress_finish(s.progress, crc == 0 ? &final : NULL);
    cli_progress_free(s.progress);
    *failed = s.failed;
    if (rc)
        fprintf(stderr,
                "sluice: %s\n(re-run the same input to finish: answers so far are "
                "cached)\n",
                sluice_last_error());
    return rc;
}

/* Prompts per Start call of `sluice start`: few round trips. */
#define START_CHUNK 256

static void print_started(FILE *out, sluice_client *c, const input *in, size_t slot,
                          const char *id) {
    write_json(out, json_pack("{s:I, s:s, s:s}", "line", (json_int_t)in->lineno[in->slot_of[slot]],
                              "task_id", id, "session_id", sluice_client_session_id(c)));
}

/* Starts prompts [i, i + k) and prints their ids. A call sluiced refused as a whole (a bad
 * prompt, the open-task limit, a message too large: nothing was started) is made again one
 * prompt at a time, so everything before the prompt that cannot start is started and
 * printed, as when each prompt is sent alone. */
static int start_chunk(sluice_client *c, const input *in, size_t i, size_t k, FILE *out) {
    char **ids = NULL;
    int rc = sluice_start_many(c, (const sluice_prompt *const *)&in->prompts[i], k, &ids);
    if (rc == 0) {
        for (size_t j = 0; j < k; j++)
            print_started(out, c, in, i + j, ids[j]);
        sluice_task_ids_free(ids, k);
        return 0;
    }
    if (k == 1 || (rc != SLUICE_EINVAL && rc != SLUICE_ELIMIT))
        return rc;
    for (size_t j = 0; j < k; j++) {
        char *id = NULL;
        if ((rc = sluice_start_nowait(c, in->prompts[i + j], &id)) != 0)
            return rc;
        print_started(out, c, in, i + j, id);
        free(id);
    }
    return 0;
}

static int start_tasks(cli_opts *o, sluice_client *c, input *in, FILE *out) {
    fprintf(stderr, "session: %s\n", sluice_client_session_id(c));
    for (size_t i = 0; i < in->n_lines; i++)
        if (in->bad[i])
            write_json(out, json_pack("{s:I, s:n, s:s}", "line", (json_int_t)in->lineno[i],
                                      "task_id", "error", in->bad[i]));
    int rc = 0;
    for (size_t i = 0; i < in->n && rc == 0; i += START_CHUNK) {
        rc = start_chunk(c, in, i, in->n - i < START_CHUNK ? in->n - i : START_CHUNK, out);
        if (rc)
            fprintf(stderr, "sluice: %s\n", sluice_last_error());
    }
    /* The session stays open for `sluice wait`, also after a failed Start: the tasks
     * already printed keep running. */
    sluice_client_detach(c);
    return rc;
}

int cli_run(cli_opts *o, sluice_client *c, const char *path, bool start_only) {
    input in;
    memset(&in, 0, sizeof in);
    size_t n_bad = 0, failed = 0;
    if (read_input(path, &in, &n_bad) != 0) {
        input_free(&in);
        return CLI_USAGE;
    }
    FILE *out = o->output ? fopen(o->output, "w") : stdout;
    if (!out) {
        fprintf(stderr, "sluice: cannot write %s\n", o->output);
        input_free(&in);
        return CLI_USAGE;
    }
    int rc = sluice_client_open(c);
    if (rc)
        fprintf(stderr, "sluice: %s\n", sluice_last_error());
    else
        rc = start_only ? start_tasks(o, c, &in, out) : run_batch(o, c, &in, out, &failed);
    if (out != stdout)
        fclose(out);
    input_free(&in);
    if (rc)
        return cli_exit_code(rc);
    return (failed || n_bad) ? CLI_PROMPT_FAILED : CLI_OK;
}

/* ---- wait / status / models --------------------------------------------------------- */

int cli_wait(cli_opts *o, sluice_client *c, char **ids, int n) {
    if (n == 0 && !o->session) {
        fprintf(stderr, "sluice wait: give task ids or --session\n");
        return CLI_USAGE;
    }
    int rc = o->session ? sluice_client_attach(c, o->session) : 0;
    sluice_response **rs = NULL;
    size_t n_out = 0;
    if (!rc)
        rc = sluice_wait_for_all(c, (const char *const *)ids, (size_t)n, o->wait_timeout_ms, &rs,
                                 &n_out);
    size_t failed = 0;
    for (size_t i = 0; i < n_out; i++) {
        if (rs[i]) {
            failed += sluice_response_is_error(rs[i]);
            write_json(stdout, cli_result_json(rs[i], o->completions_only));
        } else {
            write_json(stdout, json_pack("{s:s, s:s}", "task_id", i < (size_t)n ? ids[i] : "",
                                         "state", "running"));
        }
    }
    sluice_responses_free(rs, n_out);
    sluice_client_detach(c);
    if (rc && rc != SLUICE_ETIMEDOUT) {
        fprintf(stderr, "sluice: %s\n", sluice_last_error());
        return cli_exit_code(rc);
    }
    return (failed || rc) ? CLI_PROMPT_FAILED : CLI_OK;
}

int cli_status(sluice_client *c, const char *session) {
    sluice_tracker t;
    int rc = sluice_client_attach(c, session);
    if (!rc)
        rc = sluice_client_status(c, &t);
    sluice_client_detach(c);
    if (rc) {
        fprintf(stderr, "sluice: %s\n", sluice_last_error());
        return cli_exit_code(rc);
    }
    write_json(stdout,
               json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f}",
                         "session_id", t.session_id, "total", (json_int_t)t.total, "succeeded",
                         (json_int_t)t.succeeded, "failed", (json_int_t)t.failed, "cached",
                         (json_int_t)t.cached, "in_progress", (json_int_t)t.in_progress, "queued",
                         (json_int_t)t.queued, "rate_limit_errors", (json_int_t)t.rate_limit_errors,
                         "attempts", (json_int_t)t.attempts, "input_tokens",
                         (json_int_t)t.input_tokens, "output_tokens", (json_int_t)t.output_tokens,
                         "cost", t.cost, "elapsed_s", t.elapsed_s));
    return CLI_OK;
}

int cli_models(sluice_client *c) {
    sluice_model_info *m = NULL;
    size_t n = 0;
    int rc = sluice_list_models(c, &m, &n);
    if (rc) {
        fprintf(stderr, "sluice: %s\n", sluice_last_error());
        return cli_exit_code(rc);
    }
    printf("%-22s %-10s %-32s %9s %9s %s\n", "MODEL", "PROVIDER", "UPSTREAM", "IN $/M", "OUT $/M",
           "KEY");
    for (size_t i = 0; i < n; i++)
        printf("%-22s %-10s %-32s %9.3f %9.3f %s\n", m[i].name, m[i].provider, m[i].upstream_model,
               m[i].input_price, m[i].output_price, m[i].available ? "configured" : "missing");
    free(m);
    return CLI_OK;
}
