/*
 * The input-order buffer of `sluice run`: results that finished before an earlier line wait
 * here, one JSON line per output slot, until every line before them is written.
 *
 * Bounded: lines are kept in memory while they total at most max_bytes; a line that would
 * go beyond is appended to an unlinked temporary file (in $TMPDIR, else /tmp) and read back
 * when its turn comes. So one slow early line no longer holds every later result in memory
 * (783 MB on 300,000 lines, against 150 MB with --as-completed). The file is emptied
 * whenever no spilled line is waiting, so it holds at most the lines waiting at once.
 * Each slot costs 16 bytes whether used or not (counted apart from max_bytes).
 *
 * If the file cannot be written (disk full), lines stay in memory beyond the bound, with a
 * warning: losing results would be worse. One thread.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { SLOT_EMPTY = 0, SLOT_MEMORY, SLOT_FILE };

typedef struct slot {
    union {
        char *mem;    /* SLOT_MEMORY: the line (len bytes, not terminated) */
        uint64_t off; /* SLOT_FILE: where it starts in the file */
    } at;
    uint32_t len;
    uint8_t where;
} slot;

struct cli_reorder {
    slot *slots;
    size_t n, max_bytes;
    size_t mem_bytes; /* bytes of lines held in memory now */
    int fd;           /* the temporary file, -1 until needed */
    uint64_t file_end;
    size_t in_file; /* lines waiting in the file */
    bool warned;
    char *buf; /* read-back buffer */
    size_t buf_cap;
    cli_reorder_stats st;
};

cli_reorder *cli_reorder_new(size_t n_slots, size_t max_bytes) {
    cli_reorder *r = calloc(1, sizeof *r);
    if (!r || !(r->slots = calloc(n_slots ? n_slots : 1, sizeof *r->slots))) {
        free(r);
        return NULL;
    }
    r->n = n_slots;
    r->max_bytes = max_bytes;
    r->fd = -1;
    return r;
}

void cli_reorder_free(cli_reorder *r) {
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        if (r->slots[i].where == SLOT_MEMORY)
            free(r->slots[i].at.mem);
    if (r->fd >= 0)
        close(r->fd);
    free(r->slots);
    free(r->buf);
    free(r);
}

/* Opens the temporary file, unlinked at once so nothing is left behind. */
static int open_file(cli_reorder *r) {
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/sluice-order-XXXXXX", dir && *dir ? dir : "/tmp");
    r->fd = mkstemp(path);
    if (r->fd < 0)
        return -1;
    unlink(path);
    return 0;
}

static int write_all(int fd, const char *p, size_t len, uint64_t off) {
    while (len) {
        ssize_t w = pwrite(fd, p, len, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* Appends the line to the file. 0, or -1 (the file cannot be made or written). */
static int spill(cli_reorder *r, slot *s, const char *line, size_t len) {
    if ((r->fd < 0 && open_file(r) != 0) || write_all(r->fd, line, len, r->file_end) != 0)
        return -1;
    s->at.off = r->file_end;
    s->where = SLOT_FILE;
    r->file_end += len;
    r->in_file++;
    r->st.spilled_lines++;
    r->st.spilled_bytes += len;
    return 0;
}

int cli_reorder_put(cli_reorder *r, size_t i, const char *line, size_t len) {
    if (i >= r->n || r->slots[i].where != SLOT_EMPTY || len > UINT32_MAX)
        return 0;
    slot *s = &r->slots[i];
    s->len = (uint32_t)len;
    if (r->mem_bytes + len > r->max_bytes) {
        if (spill(r, s, line, len) == 0)
            return 0;
        if (!r->warned)
            fprintf(stderr,
                    "sluice: cannot write the temporary file for results waiting for earlier "
                    "lines (%s): keeping them in memory\n",
                    strerror(errno));
        r->warned = true;
    }
    if (!(s->at.mem = malloc(len ? len : 1)))
        return -2;
    memcpy(s->at.mem, line, len);
    s->where = SLOT_MEMORY;
    r->mem_bytes += len;
    if (r->mem_bytes > r->st.peak_memory_bytes)
        r->st.peak_memory_bytes = r->mem_bytes;
    return 0;
}

bool cli_reorder_has(const cli_reorder *r, size_t i) {
    return i < r->n && r->slots[i].where != SLOT_EMPTY;
}

/* Reads a spilled line into r->buf. 0 or -1. */
static int read_back(cli_reorder *r, const slot *s) {
    if (s->len > r->buf_cap) {
        char *b = realloc(r->buf, s->len);
        if (!b)
            return -1;
        r->buf = b;
        r->buf_cap = s->len;
    }
    size_t got = 0;
    while (got < s->len) {
        ssize_t n = pread(r->fd, r->buf + got, s->len - got, (off_t)(s->at.off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

int cli_reorder_write(cli_reorder *r, size_t i, FILE *out) {
    if (!cli_reorder_has(r, i))
        return -1;
    slot *s = &r->slots[i];
    int rc = 0;
    if (s->where == SLOT_MEMORY) {
        fwrite(s->at.mem, 1, s->len, out);
        free(s->at.mem);
        r->mem_bytes -= s->len;
    } else {
        rc = read_back(r, s);
        if (rc == 0)
            fwrite(r->buf, 1, s->len, out);
        else
            fputs("{\"is_error\":true,\"error\":\"sluice: this result could not be read back "
                  "from its temporary file\"}",
                  out);
        /* Nothing spilled is waiting any more: the file starts over (its space is freed). */
        if (--r->in_file == 0 && ftruncate(r->fd, 0) == 0)
            r->file_end = 0;
    }
    fputc('\n', out);
    s->where = SLOT_EMPTY;
    return rc;
}

void cli_reorder_get_stats(const cli_reorder *r, cli_reorder_stats *out) {
    *out = r->st;
}
