/*
 * auth.h - bearer-token authentication for the transport.
 *
 * A tokens file binds tokens to tenant names: one "<tenant> <token>" pair per line, blank
 * lines and lines starting with '#' ignored. Only SHA-256 digests of the tokens are kept
 * in memory. A presented token is hashed and compared with every digest in constant time
 * (no early exit), so neither the position of a mismatch nor which entry matched leaks
 * through timing. Tokens and their digests are never logged.
 *
 * Bounds: lines up to AUTH_MAX_LINE bytes, AUTH_MAX_TOKENS entries.
 * Thread safety: auth_load/auth_free from one thread; auth_check from any thread once
 * loaded (the table is immutable).
 */
#ifndef SLUICE_TRANSPORT_AUTH_H
#define SLUICE_TRANSPORT_AUTH_H

#include <stddef.h>

#define AUTH_MAX_LINE 4096
#define AUTH_MAX_TOKENS 65536

typedef struct auth auth;

/* Reads a tokens file. Returns SLUICE_OK with *out (free with auth_free), SLUICE_EIO when
 * the file cannot be read, or SLUICE_EINVAL for a malformed file (a line without a token,
 * a duplicate token, an over-long line, no tokens at all); err names the line. */
int auth_load(const char *path, auth **out, char *err, size_t errlen);

/* Parses tokens from memory (same format). Same results as auth_load. */
int auth_parse(const char *text, size_t len, auth **out, char *err, size_t errlen);

/* Frees the table. NULL-safe. */
void auth_free(auth *a);

/* Number of tokens loaded. */
size_t auth_count(const auth *a);

/* Checks the value of an "authorization" header (`value` may be NULL when the header is
 * absent; it need not be NUL-terminated). Returns the tenant bound to the token (owned by
 * the table, valid until auth_free), or NULL with *why set to a static reason:
 * "missing bearer token" or "invalid bearer token". */
const char *auth_check(const auth *a, const char *value, size_t len, const char **why);

#endif
