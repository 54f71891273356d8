/* fake_reply.c - a reply under construction (see fake_reply.h). */
#include "tests/fake_provider/fake_reply.h"

#include "server/common/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

void fake_reply_init(fake_reply *r) {
    memset(r, 0, sizeof *r);
    buf_init(&r->headers, FAKE_REPLY_HEADER_BYTES);
}

void fake_reply_cleanup(fake_reply *r) {
    free(r->body);
    buf_cleanup(&r->headers);
    memset(r, 0, sizeof *r);
}

void fake_reply_set(fake_reply *r, int status, char *body) {
    free(r->body);
    r->status = status;
    r->body = body ? body : xstrdup("");
    r->body_len = strlen(r->body);
}

static void add(fake_reply *r, const char *name, size_t name_len, const char *value) {
    size_t mark = r->headers.len;
    if (buf_append(&r->headers, name, name_len) != 0 || buf_append(&r->headers, "", 1) != 0 ||
        buf_append(&r->headers, value, strlen(value) + 1) != 0) {
        r->headers.len = mark;
        return;
    }
    r->n_headers++;
}

void fake_reply_header(fake_reply *r, const char *name, const char *fmt, ...) {
    char value[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof value, fmt, ap);
    va_end(ap);
    add(r, name, strlen(name), value);
}

void fake_reply_header_line(fake_reply *r, const char *line) {
    const char *colon = strchr(line, ':');
    if (!colon || colon == line)
        return;
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    add(r, line, (size_t)(colon - line), v);
}

void fake_reply_gzip(fake_reply *r) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    size_t cap = deflateBound(&z, (uLong)r->body_len) + 1;
    char *out = xmalloc(cap);
    z.next_in = (Bytef *)r->body;
    z.avail_in = (uInt)r->body_len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        abort(); /* deflateBound guarantees the room */
    size_t len = z.total_out;
    deflateEnd(&z);
    out[len] = '\0';
    free(r->body);
    r->body = out;
    r->body_len = len;
    fake_reply_header(r, "content-encoding", "gzip");
}

bool fake_reply_next_header(const fake_reply *r, size_t *pos, const char **name,
                            const char **value) {
    if (*pos >= r->headers.len)
        return false;
    *name = r->headers.data + *pos;
    *pos += strlen(*name) + 1;
    *value = r->headers.data + *pos;
    *pos += strlen(*value) + 1;
    return true;
}
