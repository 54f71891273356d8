/*
 * alloc.h - allocation for the server: failure aborts through one wrapper.
 *
 * sluiced cannot do anything useful once malloc fails, so every server allocation goes
 * through these functions, which log one line and abort() on failure (STYLE.md). The SDK
 * does not use them: it returns SLUICE_ENOMEM instead.
 * Thread safety: all functions may be called from any thread.
 */
#ifndef SLUICE_COMMON_ALLOC_H
#define SLUICE_COMMON_ALLOC_H

#include <stddef.h>

/* malloc/calloc/realloc that never return NULL (abort on failure). Free with free(). */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
/* Duplicates a string; xstrdup(NULL) returns NULL. Free with free(). */
char *xstrdup(const char *s);
/* Duplicates at most n bytes of s and NUL-terminates. Free with free(). */
char *xstrndup(const char *s, size_t n);
/* Duplicates n bytes (n may be 0: returns a 1-byte allocation). Free with free(). */
void *xmemdup(const void *p, size_t n);
/* printf into a new string. Free with free(). */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Allocates one zeroed T. */
#define XNEW(T) ((T *)xcalloc(1, sizeof(T)))
/* Allocates n zeroed T. */
#define XNEWV(T, n) ((T *)xcalloc((n) ? (n) : 1, sizeof(T)))

#endif
