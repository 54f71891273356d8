/*
 * secret.h - reading small files that hold secrets (API keys, bearer tokens, TLS keys).
 *
 * Messages name the file, never its contents, and no copy of the contents is left behind
 * in freed memory on any path.
 * Thread safety: any thread.
 */
#ifndef SLUICE_COMMON_SECRET_H
#define SLUICE_COMMON_SECRET_H

#include <stddef.h>

/* Reads all of `path` (at most `max` bytes) into a new NUL-terminated buffer: *out (free
 * with secret_free) and *len. Returns SLUICE_OK, SLUICE_EIO ("cannot read PATH: why") or
 * SLUICE_EINVAL ("PATH is larger than MAX bytes"), with the message in err. An empty file
 * is not an error here. */
int secret_read_file(const char *path, size_t max, char **out, size_t *len, char *err,
                     size_t errlen);
/* Wipes the first `len` bytes of `s` and frees it. NULL-safe. */
void secret_free(char *s, size_t len);

#endif
