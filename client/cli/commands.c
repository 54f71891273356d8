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

/* A JSON string of s. jansson refuses text that is not UTF-8 (which a misbehaving server
 * could send): such text is written with every non-ASCII byte as '?', rather than lost.
 * NULL only when out of memory. */
static json_t *jstr(const char *s) {
    json_t *j = json_string(s ? s : "");
    if (j || !s)
        return j;
    char *ascii = strdup(s);
    if (!ascii)
        return NULL;
    for (char *c = ascii; *c; c++)
        if ((unsigned char)*c >= 0x80)
            *c = '?';
    j = json_string(ascii);
    free(ascii);
    return j;
}

/* Sets key in o to v (taken); any failure (out of memory) is remembered in *ok. */
static void put(json_t *o, const char *key, json_t *v, bool *ok) {
    if (json_object_set_new(o, key, v) != 0)
        *ok = false;
}

static json_t *usage_json(const sluice_response *r) {
    sluice_usage u = sluice_response_usage(r);
    return json_pack("{s:I, s:I, s:I, s:I}", "input_tokens", (json_int_t)u.input_tokens,
                     "output_tokens", (json_int_t)u.output_tokens, "cache_read_tokens",
                     (json_int_t)u.cache_read_tokens, "cache_write_tokens",
                     (json_int_t)u.cache_write_tokens);
}

static json_t *tool_calls_json(const sluice_response *r) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < sluice_response_n_tool_calls(r); i++) {
        const char *id, *name, *args;
        sluice_response_tool_call(r, i, &id, &name, &args);
        json_t *parsed = json_loads(args, 0, NULL);
        json_t *call = json_object();
        bool ok = call != NULL;
        put(call, "id", jstr(id), &ok);
        put(call, "name", jstr(name), &ok);
        put(call, "arguments", parsed ? parsed : jstr(args), &ok);
        if (!ok || json_array_append_new(arr, call) != 0) {
            json_decref(call);
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

json_t *cli_result_json(const sluice_response *r, bool completions_only) {
    json_t *o = json_object();
    bool ok = o != NULL, err = sluice_response_is_error(r);
    put(o, "custom_id", jstr(sluice_response_custom_id(r)), &ok);
    put(o, "task_id", jstr(sluice_response_task_id(r)), &ok);
    put(o, "completion", err ? json_null() : jstr(sluice_response_completion(r)), &ok);
    put(o, "is_error", json_boolean(err), &ok);
    if (err && !completions_only)
        put(o, "error", jstr(sluice_response_error_message(r)), &ok);
    if (!completions_only) {
        if (sluice_response_n_tool_calls(r))
            put(o, "tool_calls", tool_calls_json(r), &ok);
        put(o, "model", jstr(sluice_response_model_used(r)), &ok);
        put(o, "finish_reason", jstr(sluice_response_finish_reason(r)), &ok);
        put(o, "usage", usage_json(r), &ok);
        put(o, "cost", json_real(sluice_response_cost(r)), &ok);
        put(o, "cached", json_boolean(sluice_response_local_cache_hit(r)), &ok);
        put(o, "attempts", json_integer((json_int_t)sluice_response_n_attempts(r)), &ok);
        put(o, "status_code", json_integer(sluice_response_status_code(r)), &ok);
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Stands in for a value that could not be built or written (out of memory), so every input
 * line still gets exactly one output line. */
static const char oom_line[] = "{\"is_error\":true,\"error\":\"sluice: this result could not be "
                               "written as JSON (out of memory)\"}";

/* The JSON text of j (taken; NULL allowed), free with free(), or NULL when it could not be
 * built. Numbers get 15 significant digits, so a cost prints as 2.12e-05 rather than
 * 2.1200000000000004e-05 (the double's full expansion). */
static char *dump_json(json_t *j) {
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(j);
    return s;
}

/* One JSON line (j is taken; NULL allowed): oom_line when it cannot be built. Returns 0, or
 * -1 for such a line. */
static int write_json(FILE *out, json_t *j) {
    char *s = dump_json(j);
    fputs(s ? s : oom_line, out);
    fputc('\n', out);
    free(s);
    return s ? 0 : -1;
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

/* Reads JSONL; bad lines are reported on stderr and kept as errors. Returns 0, -1 (the
 * input cannot be read) or -2 (out of memory), saying so on stderr. */
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
            rc = -2;
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
            if (!(in->bad[in->n_lines] = malloc(m))) {
                rc = -2;
                break;
            }
            snprintf(in->bad[in->n_lines], m, "line %zu: %s", lineno, err);
            (*n_bad)++;
        }
        in->n_lines++;
    }
    free(line);
    if (f != stdin)
        fclose(f);
    if (rc == -2)
        fprintf(stderr, "sluice: out of memory reading %s\n", path);
    return rc;
}

/* ---- run ---------------------------------------------------------------------------- */

typedef struct sink {
    cli_opts *o;
    input *in;
    FILE *out;
    cli_reorder *pending; /* by output slot (input order mode) */
    size_t next;          /* next output slot to write */
    size_t failed;
    bool nomem; /* a result could not be kept (out of memory): the run fails */
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
        if (s->in->bad[s->next])
            write_json(s->out, bad_line_json(s->in, s->next));
        else if (cli_reorder_has(s->pending, s->next))
            s->failed += cli_reorder_write(s->pending, s->next, s->out) != 0;
        else
            break;
        s->next++;
    }
    fflush(s->out);
}

/* A result's line for `slot` in input order: written at once when it is next (and what
 * waited behind it), else kept in the bounded buffer. */
static void place_ordered(sink *s, size_t slot, json_t *j) {
    flush_ordered(s); /* bad lines at the head go first */
    char *text = dump_json(j);
    const char *line = text ? text : oom_line;
    s->failed += text == NULL;
    if (slot == s->next) {
        fputs(line, s->out);
        fputc('\n', s->out);
        s->next++;
        flush_ordered(s);
    } else if (cli_reorder_put(s->pending, slot, line, strlen(line)) != 0) {
        s->nomem = true;
    }
    free(text);
}

static void on_result(void *ud, sluice_response *r) {
    sink *s = ud;
    size_t idx = (size_t)sluice_response_index(r);
    s->failed += sluice_response_is_error(r);
    json_t *j = cli_result_json(r, s->o->completions_only);
    size_t slot = idx < s->in->n ? s->in->slot_of[idx] : 0;
    if (j && idx < s->in->n &&
        json_object_set_new(j, "line", json_integer((json_int_t)s->in->lineno[slot])) != 0) {
        json_decref(j);
        j = NULL;
    }
    if (!j)              /* out of memory: the slot is still answered (write_json's error line) */
        j = json_null(); /* a static value, never NULL */
    sluice_response_free(r);
    if (s->o->as_completed) {
        s->failed += write_json(s->out, j) != 0;
        fflush(s->out);
        return;
    }
    if (idx >= s->in->n || slot < s->next || cli_reorder_has(s->pending, slot)) {
        json_decref(j); /* an index never sent, or a duplicate */
        return;
    }
    place_ordered(s, slot, j);
}

static void on_progress(void *ud, const sluice_tracker *t, uint64_t done, uint64_t expected,
                        double rate) {
    sink *s = ud;
    cli_progress_update(s->progress, t, done, expected, rate);
}

/* Whether running the same input again can finish a batch that failed with `rc`: the
 * connection or the server failed on the way (the answers so far are cached). A refused
 * request (a limit, a bad argument, the credentials, an unsupported call) or a local
 * failure fails the same way again. */
static bool rerun_can_fix(int rc) {
    switch (rc) {
    case SLUICE_EUNAVAILABLE:
    case SLUICE_ETIMEDOUT:
    case SLUICE_ECANCELLED:
    case SLUICE_EIO:
    case SLUICE_EPROTO:
    case SLUICE_EINTERNAL:
        return true;
    default:
        return false;
    }
}

/* The batch failed with rc and message why: says so, and how to go on when there is a
 * way. A proxy that refuses a request body as too large answers HTTP 413, which gRPC reports
 * as "Received http2 header with status: 413". */
static void report_batch_error(int rc, const char *why) {
    fprintf(stderr, "sluice: %s\n", *why ? why : sluice_strerror(rc));
    if (strstr(why, "status: 413"))
        fprintf(stderr, "(a proxy refused the request as too large: send the batch in smaller "
                        "calls with --max-call-bytes, e.g. its client_max_body_size)\n");
    else if (rerun_can_fix(rc))
        fprintf(stderr, "(re-run the same input to finish: answers so far are cached)\n");
}

/* Says how much waited for earlier lines in the temporary file (when any did). */
static void report_spill(const sink *s) {
    cli_reorder_stats st;
    cli_reorder_get_stats(s->pending, &st);
    if (s->o->quiet || !st.spilled_lines)
        return;
    fprintf(stderr,
            "sluice: %zu results (%.1f MiB) waited for earlier lines in a temporary file; memory "
            "held at most %zu bytes of them (--buffer-bytes %zu)\n",
            st.spilled_lines, (double)st.spilled_bytes / (1 << 20), st.peak_memory_bytes,
            s->o->buffer_bytes);
}

static int run_batch(cli_opts *o, sluice_client *c, input *in, FILE *out, size_t *failed) {
    if (!o->buffer_bytes_set)
        o->buffer_bytes = CLI_BUFFER_BYTES;
    sink s = {o, in, out,   cli_reorder_new(in->n_lines, o->buffer_bytes),
              0, 0,  false, cli_progress_new(o->quiet, in->n)};
    if (!s.pending) {
        cli_progress_free(s.progress);
        fprintf(stderr, "sluice: out of memory\n");
        return SLUICE_ENOMEM;
    }
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
        report_spill(&s);
    }
    cli_reorder_free(s.pending);
    /* The batch's message, kept before closing the session clears it (it used to be
     * printed after the close: an empty "sluice: "). */
    char why[1024];
    snprintf(why, sizeof why, "%s", rc ? sluice_last_error() : "");
    if (s.nomem && !rc) { /* a result could not be kept, so its line is missing */
        rc = SLUICE_ENOMEM;
        snprintf(why, sizeof why, "out of memory keeping results in input order");
    }
    sluice_tracker final;
    int crc = sluice_client_close(c, &final);
    cli_progress_finish(s.progress, crc == 0 ? &final : NULL);
    cli_progress_free(s.progress);
    *failed = s.failed;
    if (rc)
        report_batch_error(rc, why);
    return rc;
}

/* Prompts per Start call of `sluice start`: few round trips. */
#define START_CHUNK 256

static void print_started(FILE *out, sluice_client *c, const input *in, size_t slot,
                          const char *id) {
    json_t *o = json_object();
    bool ok = o != NULL;
    put(o, "line", json_integer((json_int_t)in->lineno[in->slot_of[slot]]), &ok);
    put(o, "task_id", jstr(id), &ok);
    put(o, "session_id", jstr(sluice_client_session_id(c)), &ok);
    if (!ok) {
        json_decref(o);
        o = NULL;
    }
    write_json(out, o);
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
    int rrc = read_input(path, &in, &n_bad);
    if (rrc != 0) {
        input_free(&in);
        return rrc == -2 ? CLI_ERROR : CLI_USAGE;
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

/* The line of a task without a result: still running at the timeout, or an id that names
 * no task (`error` then says so). NULL when out of memory. */
static json_t *state_row(const char *task_id, const char *state, const char *error) {
    json_t *row = json_object();
    bool ok = row != NULL;
    put(row, "task_id", jstr(task_id), &ok);
    put(row, "state", json_string(state), &ok);
    if (error) {
        put(row, "is_error", json_true(), &ok);
        put(row, "error", jstr(error), &ok);
    }
    if (!ok) {
        json_decref(row);
        row = NULL;
    }
    return row;
}

/* Waits for the tasks (the SDK waits again, Wait after Wait, past sluiced's cap on one
 * Wait) and prints a line per id in order. An unknown id is a line saying so, not the end
 * of the others: the exit code is then 2. */
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
    size_t failed = 0, unknown = 0;
    for (size_t i = 0; i < n_out; i++) {
        const char *id = i < (size_t)n ? ids[i] : "";
        if (rs[i] && sluice_response_error_kind(rs[i]) == SLUICE_ERROR_NOT_FOUND) {
            unknown++;
            write_json(stdout, state_row(id, "not_found", sluice_response_error_message(rs[i])));
            fprintf(stderr, "sluice wait: %s\n", sluice_response_error_message(rs[i]));
        } else if (rs[i]) {
            failed += sluice_response_is_error(rs[i]);
            failed += write_json(stdout, cli_result_json(rs[i], o->completions_only)) != 0;
        } else {
            write_json(stdout, state_row(id, "running", NULL));
        }
    }
    sluice_responses_free(rs, n_out);
    sluice_client_detach(c);
    if (rc && rc != SLUICE_ETIMEDOUT) {
        fprintf(stderr, "sluice: %s\n", sluice_last_error());
        return cli_exit_code(rc);
    }
    if (unknown)
        return cli_exit_code(SLUICE_ENOTFOUND);
    return (failed || rc) ? CLI_PROMPT_FAILED : CLI_OK;
}

/* One GetStatus: attaching reads the tracker it checks the session with. */
int cli_status(sluice_client *c, const char *session) {
    sluice_tracker t;
    int rc = sluice_client_attach_status(c, session, &t);
    sluice_client_detach(c);
    if (rc) {
        fprintf(stderr, "sluice: %s\n", sluice_last_error());
        return cli_exit_code(rc);
    }
    json_t *o = json_object(),
           *counts = json_pack(
               "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f}", "total",
               (json_int_t)t.total, "succeeded", (json_int_t)t.succeeded, "failed",
               (json_int_t)t.failed, "cached", (json_int_t)t.cached, "in_progress",
               (json_int_t)t.in_progress, "queued", (json_int_t)t.queued, "rate_limit_errors",
               (json_int_t)t.rate_limit_errors, "attempts", (json_int_t)t.attempts, "input_tokens",
               (json_int_t)t.input_tokens, "output_tokens", (json_int_t)t.output_tokens, "cost",
               t.cost, "elapsed_s", t.elapsed_s);
    bool ok = o != NULL;
    put(o, "session_id", jstr(t.session_id), &ok);
    if (!counts || json_object_update(o, counts) != 0)
        ok = false;
    json_decref(counts);
    if (!ok) {
        json_decref(o);
        o = NULL;
    }
    return write_json(stdout, o) == 0 ? CLI_OK : CLI_ERROR;
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
