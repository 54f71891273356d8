/*
 * buf.h - a growable byte buffer with a hard maximum.
 *
 * Used wherever bytes accumulate from outside (HTTP bodies, packed messages). Appending
 * past `max` fails with SLUICE_ELIMIT and leaves the buffer as it was, so every buffer
 * in sluiced is bounded. The data is always NUL-terminated (the terminator is not counted
 * in len). Caller-embedded: buf_init / buf_cleanup.
 * Thread safety: none; a buffer belongs to one thread at a time.
 */
#ifndef SLUICE_COMMON_BUF_H
#define SLUICE_COMMON_BUF_H

#include <stddef.h>

typedef struct buf {
    char *data; /* NULL until the first append; NUL-terminated afterwards */
    size_t len; /* bytes used, terminator excluded */
    size_t cap; /* bytes allocated */
    size_t max; /* appends beyond this many bytes fail */
} buf;

/* Initialises an empty buffer that may hold up to max bytes. */
void buf_init(buf *b, size_t max);
/* Frees the storage; the buffer is empty and reusable afterwards. */
void buf_cleanup(buf *b);
/* Empties the buffer, keeping its storage. */
void buf_reset(buf *b);
/* Appends n bytes. Returns 0, or SLUICE_ELIMIT when len + n would exceed max. */
int buf_append(buf *b, const void *p, size_t n);
/* Appends a NUL-terminated string. Same errors as buf_append. */
int buf_append_str(buf *b, const char *s);
/* Transfers the data out (caller frees with free()); the buffer becomes empty.
 * Returns an empty string (not NULL) when nothing was appended. */
char *buf_steal(buf *b, size_t *len);

#endif
