/*
 * Progress on stderr. On a terminal: one line redrawn in place (done/total, rate, ETA, in
 * flight, failed, cached, limiting factor, tokens, cost). Otherwise: a plain line every 5 s
 * (logs stay readable). At the end, a final status like lm-deluge's.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct cli_progress {
    bool quiet, tty;
    uint64_t total;
    time_t last_plain;
    bool drew;
};

static const char *const factors[] = {"-",           "requests/min",   "tokens/min",
                                      "concurrency", "cooldown (429)", "retry budget"};

cli_progress *cli_progress_new(bool quiet, uint64_t total) {
    cli_progress *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->quiet = quiet;
    p->tty = isatty(STDERR_FILENO);
    p->total = total;
    return p;
}

void cli_progress_free(cli_progress *p) {
    free(p);
}

uint32_t cli_progress_interval_ms(const cli_progress *p) {
    return p->tty ? 200 : 1000;
}

static void human(char *out, size_t len, double v) {
    if (v >= 1e6)
        snprintf(out, len, "%.1fM", v / 1e6);
    else if (v >= 1e4)
        snprintf(out, len, "%.1fk", v / 1e3);
    else
        snprintf(out, len, "%.0f", v);
}

static void line(char *buf, size_t len, const sluice_tracker *t, uint64_t done, uint64_t total,
                 double rate, bool bar) {
    char tokens[32];
    human(tokens, sizeof tokens, (double)(t->input_tokens + t->output_tokens));
    double eta = rate > 0 && total > done ? (double)(total - done) / rate : 0;
    char barbuf[32] = "";
    if (bar && total) {
        int w = 20, fill = (int)((double)done / (double)total * w);
        barbuf[0] = '[';
        for (int i = 0; i < w; i++)
            barbuf[1 + i] = i < fill ? '#' : '.';
        barbuf[w + 1] = ']';
        barbuf[w + 2] = ' ';
        barbuf[w + 3] = '\0';
    }
    int lf = t->limiting_factor >= 0 && t->limiting_factor <= 5 ? t->limiting_factor : 0;
    snprintf(buf, len,
             "%s%llu/%llu %.0f/s ETA %.0fs | in flight %llu | failed %llu | cached %llu | "
             "limit %s | %s tok | $%.4f",
             barbuf, (unsigned long long)done, (unsigned long long)total, rate, eta,
             (unsigned long long)t->in_progress, (unsigned long long)t->failed,
             (unsigned long long)t->cached, factors[lf], tokens, t->cost);
}

void cli_progress_update(cli_progress *p, const sluice_tracker *t, uint64_t done, uint64_t expected,
                         double rate) {
    if (!p || p->quiet)
        return;
    uint64_t total = expected > p->total ? expected : p->total;
    char buf[512];
    if (p->tty) {
        line(buf, sizeof buf, t, done, total, rate, true);
        fprintf(stderr, "\r\033[K%s", buf);
        p->drew = true;
    } else {
        time_t now = time(NULL);
        if (now - p->last_plain < 5)
            return;
        p->last_plain = now;
        line(buf, sizeof buf, t, done, total, rate, false);
        fprintf(stderr, "progress: %s\n", buf);
    }
    fflush(stderr);
}

void cli_progress_finish(cli_progress *p, const sluice_tracker *t) {
    if (!p || p->quiet)
        return;
    if (p->drew)
        fputc('\n', stderr);
    if (!t)
        return;
    fprintf(stderr, "done: %llu prompts, %llu succeeded (%llu cached), %llu failed in %.1f s\n",
            (unsigned long long)t->total, (unsigned long long)t->succeeded,
            (unsigned long long)t->cached, (unsigned long long)t->failed, t->elapsed_s);
    if (t->failed)
        fprintf(stderr, "%llu / %llu requests failed.\n", (unsigned long long)t->failed,
                (unsigned long long)t->started);
    if (t->rate_limit_errors)
        fprintf(stderr, "%llu rate limit errors received. Consider running at a lower rate.\n",
                (unsigned long long)t->rate_limit_errors);
    if (t->cost > 0 || t->input_tokens || t->output_tokens) {
        fprintf(stderr, "Cost: $%.4f | Tokens: %llu in / %llu out", t->cost,
                (unsigned long long)t->input_tokens, (unsigned long long)t->output_tokens);
        if (t->cache_read_tokens || t->cache_write_tokens)
            fprintf(stderr, " | Cache: %llu read, %llu write",
                    (unsigned long long)t->cache_read_tokens,
                    (unsigned long long)t->cache_write_tokens);
        if (t->cost_saved > 0)
            fprintf(stderr, " | saved by the cache: $%.4f", t->cost_saved);
        fputc('\n', stderr);
    }
}
