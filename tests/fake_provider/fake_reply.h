/*
 * fake_reply.h - what the fake provider will send for one request, decided before sending.
 *
 * Built by fake_decide.c (provider routes) and fake_control.c (control routes), shaped by
 * fake_route.c (gzip, chunking), turned into an MHD response by fake_provider.c or HTTP/2
 * frames by fake_h2.c, possibly after a delay. Headers are kept as
 * "name\0value\0" pairs in one bounded buffer (one allocation per reply).
 * Thread safety: none; a reply belongs to one request.
 */
#ifndef SLUICE_TESTS_FAKE_REPLY_H
#define SLUICE_TESTS_FAKE_REPLY_H

#include "server/common/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FAKE_REPLY_HEADER_BYTES (16u * 1024u)
/* A chunked answer goes out in pieces of at most this many bytes (HTTP/1.1 chunks, HTTP/2
 * DATA frames), so clients see bodies that arrive in many reads, as real ones do. */
#define FAKE_CHUNK_BYTES 256u

typedef enum fake_action {
    FAKE_ACT_RESPOND = 0, /* send status, headers, body */
    FAKE_ACT_RESET,       /* close the connection without an answer */
    FAKE_ACT_HANG,        /* never answer (closed after FAKE_HANG_MAX_MS or at stop) */
    FAKE_ACT_TRUNCATE,    /* announce more body than is sent, then close */
} fake_action;

typedef struct fake_reply {
    fake_action action;
    int status;
    char *body; /* owned, NUL-terminated */
    size_t body_len;
    buf headers; /* "name\0value\0" pairs */
    size_t n_headers;
    uint32_t delay_ms;
    bool chunked; /* no Content-Length; FAKE_CHUNK_BYTES pieces */
} fake_reply;

void fake_reply_init(fake_reply *r);
void fake_reply_cleanup(fake_reply *r);
/* Sets the status and body (takes ownership of body; NULL = empty). */
void fake_reply_set(fake_reply *r, int status, char *body);
/* Adds a header; silently dropped past FAKE_REPLY_HEADER_BYTES. */
void fake_reply_header(fake_reply *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Adds a "Name: value" line (ignored without a colon). */
void fake_reply_header_line(fake_reply *r, const char *line);
/* Compresses the body with gzip and adds "content-encoding: gzip". */
void fake_reply_gzip(fake_reply *r);
/* Iterates: pass *pos = 0 first; returns false at the end. */
bool fake_reply_next_header(const fake_reply *r, size_t *pos, const char **name,
                            const char **value);

#endif
