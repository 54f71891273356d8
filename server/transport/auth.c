/*
 * auth.c - the bearer-token table.
 *
 * Owns an immutable array of (tenant, SHA-256(token)) built once at start-up from the
 * tokens file. auth_check runs on the transport's worker threads for every non-health call;
 * it hashes the presented token once and scans the whole table with CRYPTO_memcmp, folding
 * the match into an index without branching on secret data, so its time depends only on
 * the table size. Failure modes: unreadable or malformed files at load (typed errors with
 * the line number); at check time only "missing" or "invalid".
 */
#include "server/transport/auth.h"

#include "server/common/alloc.h"
#include "server/common/secret.h"
#include "sluice/status.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DIGEST_LEN 32
/* Tokens files are small; refuse anything absurd instead of reading it. */
#define AUTH_MAX_FILE (16u * 1024u * 1024u)

typedef struct auth_entry {
    char *tenant;
    unsigned char digest[DIGEST_LEN];
} auth_entry;

struct auth {
    auth_entry *entries;
    size_t n;
    size_t cap;
};

static void digest(const char *token, size_t len, unsigned char out[DIGEST_LEN]) {
    unsigned int n = 0;
    if (!EVP_Digest(token, len, out, &n, EVP_sha256(), NULL) || n != DIGEST_LEN)
        memset(out, 0, DIGEST_LEN); /* cannot happen with the default provider */
}

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Splits a line into at most 3 whitespace-separated fields; returns the field count. */
static int split_fields(const char *line, size_t len, const char *f[3], size_t flen[3]) {
    int n = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && is_space(line[i]))
            i++;
        if (i == len)
            break;
        size_t start = i;
        while (i < len && !is_space(line[i]))
            i++;
        if (n == 3)
            return 4;
        f[n] = line + start;
        flen[n] = i - start;
        n++;
    }
    return n;
}

static int add_entry(auth *a, const char *tenant, size_t tlen, const char *token, size_t klen,
                     size_t lineno, char *err, size_t errlen) {
    unsigned char d[DIGEST_LEN];
    digest(token, klen, d);
    for (size_t i = 0; i < a->n; i++) {
        if (memcmp(a->entries[i].digest, d, DIGEST_LEN) == 0) {
            snprintf(err, errlen, "tokens file line %zu: duplicate token", lineno);
            return SLUICE_EINVAL;
        }
    }
    if (a->n == AUTH_MAX_TOKENS) {
        snprintf(err, errlen, "tokens file: more than %d tokens", AUTH_MAX_TOKENS);
        return SLUICE_EINVAL;
    }
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 8;
        a->entries = xrealloc(a->entries, a->cap * sizeof *a->entries);
    }
    auth_entry *e = &a->entries[a->n++];
    e->tenant = xstrndup(tenant, tlen);
    memcpy(e->digest, d, DIGEST_LEN);
    return SLUICE_OK;
}

static int parse_line(auth *a, const char *line, size_t len, size_t lineno, char *err,
                      size_t errlen) {
    const char *f[3];
    size_t flen[3];
    if (len > AUTH_MAX_LINE) {
        snprintf(err, errlen, "tokens file line %zu: longer than %d bytes", lineno, AUTH_MAX_LINE);
        return SLUICE_EINVAL;
    }
    int n = split_fields(line, len, f, flen);
    if (n == 0 || f[0][0] == '#')
        return SLUICE_OK;
    if (n != 2) {
        snprintf(err, errlen, "tokens file line %zu: expected \"<tenant> <token>\"", lineno);
        return SLUICE_EINVAL;
    }
    return add_entry(a, f[0], flen[0], f[1], flen[1], lineno, err, errlen);
}

int auth_parse(const char *text, size_t len, auth **out, char *err, size_t errlen) {
    auth *a = XNEW(auth);
    size_t lineno = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        int rc = parse_line(a, text + pos, end - pos, ++lineno, err, errlen);
        if (rc != SLUICE_OK) {
            auth_free(a);
            return rc;
        }
        pos = end + 1;
    }
    if (a->n == 0) {
        snprintf(err, errlen, "tokens file holds no tokens");
        auth_free(a);
        return SLUICE_EINVAL;
    }
    *out = a;
    return SLUICE_OK;
}

int auth_load(const char *path, auth **out, char *err, size_t errlen) {
    char *text, why[512];
    size_t len;
    int rc = secret_read_file(path, AUTH_MAX_FILE, &text, &len, why, sizeof why);
    if (rc) {
        snprintf(err, errlen, "tokens file: %s", why);
        return rc;
    }
    rc = auth_parse(text, len, out, err, errlen);
    secret_free(text, len); /* the plaintext tokens must not linger in freed memory */
    return rc;
}

void auth_free(auth *a) {
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++)
        free(a->entries[i].tenant);
    free(a->entries);
    free(a);
}

size_t auth_count(const auth *a) {
    return a ? a->n : 0;
}

/* Extracts the token of "Bearer <token>" (scheme case-insensitive); NULL when absent. */
static const char *bearer_token(const char *v, size_t len, size_t *tlen) {
    static const char scheme[] = "bearer";
    const size_t slen = sizeof scheme - 1;
    if (!v || len <= slen || strncasecmp(v, scheme, slen) != 0 || !is_space(v[slen]))
        return NULL;
    size_t i = slen;
    while (i < len && is_space(v[i]))
        i++;
    size_t end = len;
    while (end > i && is_space(v[end - 1]))
        end--;
    if (end == i)
        return NULL;
    *tlen = end - i;
    return v + i;
}

const char *auth_check(const auth *a, const char *value, size_t len, const char **why) {
    size_t tlen = 0;
    const char *token = bearer_token(value, len, &tlen);
    if (!token) {
        *why = "missing bearer token";
        return NULL;
    }
    unsigned char d[DIGEST_LEN];
    digest(token, tlen, d);
    /* found = index + 1 of the matching entry, 0 for none; no data-dependent branch. */
    size_t found = 0;
    for (size_t i = 0; i < a->n; i++) {
        size_t eq = (size_t)(CRYPTO_memcmp(d, a->entries[i].digest, DIGEST_LEN) == 0);
        found |= (0 - eq) & (i + 1);
    }
    if (found == 0) {
        *why = "invalid bearer token";
        return NULL;
    }
    return a->entries[found - 1].tenant;
}
