/*
 * text.h - bounded growable strings and a string pool for protoc-gen-sluice.
 *
 * The generator builds its output in `text` buffers and keeps every derived name in one
 * `strpool`, freed at once. Both fail softly: an allocation failure or the size bound sets
 * a sticky `failed` flag that the caller checks once at the end, so emitters stay linear.
 * Single-threaded (the plugin has one thread).
 */
#ifndef SLUICE_CODEGEN_TEXT_H
#define SLUICE_CODEGEN_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Largest text the generator builds (one output file). */
#define TEXT_MAX_BYTES ((size_t)64 << 20)

typedef struct text {
    char *data; /* NUL-terminated once anything was appended; NULL before */
    size_t len;
    size_t cap;
    bool failed; /* out of memory or over TEXT_MAX_BYTES: the content is incomplete */
} text;

void text_init(text *t);
/* Frees the buffer. */
void text_cleanup(text *t);
void text_append(text *t, const char *s);
void text_appendn(text *t, const char *s, size_t n);
void text_appendc(text *t, char c);
void text_printf(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns the malloc'd NUL-terminated content (free with free()) and resets t; NULL when
 * t failed (t is reset either way). An empty text gives "". */
char *text_take(text *t);

/* A list of heap blocks freed together. */
typedef struct strpool {
    void **items;
    size_t n;
    size_t cap;
} strpool;

void strpool_init(strpool *p);
/* Frees every kept block. */
void strpool_cleanup(strpool *p);
/* Takes ownership of `block` (malloc'd). Returns it, or NULL (freeing it) when the pool
 * cannot grow; a NULL block gives NULL. */
void *strpool_keep(strpool *p, void *block);
/* Copies s into the pool; NULL on allocation failure. */
char *strpool_strdup(strpool *p, const char *s);
/* Zeroed array of n elements of `size` bytes kept by the pool; NULL on failure or n == 0. */
void *strpool_calloc(strpool *p, size_t n, size_t size);

#endif
