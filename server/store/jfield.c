/*
 * Strict JSON member access for the store's decoders (codec.c, the task records).
 *
 * The store reads back bytes it wrote itself, but a disk, a bug or an older build can hand
 * it anything, so every getter checks presence, type and range and reports the exact path
 * of the first bad member. Nothing here trusts the input: lengths are checked before
 * allocation and base64 is validated character by character before OpenSSL decodes it.
 * Pure functions; any thread.
 */
#include "server/store/jfield.h"

#include "server/common/alloc.h"
#include "sluice/status.h"

#include <limits.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes per EVP_*Block call: a multiple of 3 (encode) and its base64 size (decode), small
 * enough for OpenSSL's int lengths. */
#define B64_RAW_CHUNK (3u << 20)
#define B64_TXT_CHUNK (4u << 20)

int jf_fail(jdec *d, const char *where, const char *key, const char *what) {
    if (d && d->err && d->errlen) {
        if (!key)
            snprintf(d->err, d->errlen, "%s: %s", where && *where ? where : "(top)", what);
        else if (where && *where)
            snprintf(d->err, d->errlen, "%s.%s: %s", where, key, what);
        else
            snprintf(d->err, d->errlen, "%s: %s", key, what);
    }
    return SLUICE_EPROTO;
}

int jf_require_object(const json_t *j, const char *where, jdec *d) {
    if (!json_is_object(j))
        return jf_fail(d, where, NULL, "expected an object");
    return SLUICE_OK;
}

int jf_check_keys(const json_t *o, const char *where, const char *const *allowed, jdec *d) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        bool known = false;
        for (const char *const *a = allowed; *a && !known; a++)
            known = strcmp(*a, k) == 0;
        if (!known)
            return jf_fail(d, where, k, "unknown field");
    }
    return SLUICE_OK;
}

/* Fetches o[key]; *v = NULL for an absent (or null) optional member. */
static int member(const json_t *o, const char *where, const char *key, bool required, json_t **v,
                  jdec *d) {
    *v = json_object_get(o, key);
    if (*v && json_is_null(*v))
        *v = NULL;
    if (!*v && required)
        return jf_fail(d, where, key, "missing");
    return SLUICE_OK;
}

static bool b64_char(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

char *jf_b64_encode(const uint8_t *p, size_t n) {
    char *out = xmalloc((n + 2) / 3 * 4 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += B64_RAW_CHUNK) {
        size_t k = n - i < B64_RAW_CHUNK ? n - i : B64_RAW_CHUNK;
        o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, p + i, (int)k);
    }
    out[o] = '\0';
    return out;
}

int jf_b64_decode(const char *s, size_t slen, uint8_t **out, size_t *outlen) {
    if (slen % 4)
        return -1;
    size_t pad = 0;
    if (slen && s[slen - 1] == '=')
        pad = (slen >= 2 && s[slen - 2] == '=') ? 2 : 1;
    for (size_t i = 0; i < slen - pad; i++)
        if (!b64_char((unsigned char)s[i]))
            return -1;
    uint8_t *buf = xmalloc(slen / 4 * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < slen; i += B64_TXT_CHUNK) {
        size_t k = slen - i < B64_TXT_CHUNK ? slen - i : B64_TXT_CHUNK;
        int r = EVP_DecodeBlock(buf + o, (const unsigned char *)s + i, (int)k);
        if (r < 0) {
            free(buf);
            return -1;
        }
        o += (size_t)r;
    }
    *out = buf;
    *outlen = o - pad;
    return 0;
}

/* A string stored as {"b64": "..."} because it was not valid UTF-8. */
static int str_from_b64_object(const json_t *v, const char *where, const char *key, char **out,
                               jdec *d) {
    const json_t *b = json_object_get(v, "b64");
    if (json_object_size(v) != 1 || !json_is_string(b))
        return jf_fail(d, where, key, "expected a string");
    uint8_t *raw;
    size_t n;
    if (jf_b64_decode(json_string_value(b), json_string_length(b), &raw, &n) != 0)
        return jf_fail(d, where, key, "invalid base64");
    if (memchr(raw, 0, n)) {
        free(raw);
        return jf_fail(d, where, key, "string contains a NUL byte");
    }
    raw[n] = '\0';
    *out = (char *)raw;
    return SLUICE_OK;
}

int jf_str_value(const json_t *v, const char *where, const char *key, char **out, jdec *d) {
    if (json_is_object(v))
        return str_from_b64_object(v, where, key, out, d);
    if (!json_is_string(v))
        return jf_fail(d, where, key, "expected a string");
    if (strlen(json_string_value(v)) != json_string_length(v))
        return jf_fail(d, where, key, "string contains a NUL byte");
    *out = xstrdup(json_string_value(v));
    return SLUICE_OK;
}

int jf_str(const json_t *o, const char *where, const char *key, bool required, char **out,
           jdec *d) {
    json_t *v;
    int rc = member(o, where, key, required, &v, d);
    if (rc || !v)
        return rc;
    return jf_str_value(v, where, key, out, d);
}

int jf_u64(const json_t *o, const char *where, const char *key, bool required, uint64_t *out,
           jdec *d) {
    json_t *v;
    int rc = member(o, where, key, required, &v, d);
    if (rc || !v)
        return rc;
    if (!json_is_integer(v))
        return jf_fail(d, where, key, "expected an integer");
    *out = (uint64_t)json_integer_value(v);
    return SLUICE_OK;
}

static int int_in_range(const json_t *o, const char *where, const char *key, bool required,
                        long long lo, long long hi, long long *out, bool *present, jdec *d) {
    json_t *v;
    *present = false;
    int rc = member(o, where, key, required, &v, d);
    if (rc || !v)
        return rc;
    if (!json_is_integer(v))
        return jf_fail(d, where, key, "expected an integer");
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return jf_fail(d, where, key, "integer out of range");
    *out = x;
    *present = true;
    return SLUICE_OK;
}

int jf_u32(const json_t *o, const char *where, const char *key, bool required, uint32_t *out,
           jdec *d) {
    long long x;
    bool present;
    int rc = int_in_range(o, where, key, required, 0, UINT32_MAX, &x, &present, d);
    if (!rc && present)
        *out = (uint32_t)x;
    return rc;
}

int jf_int(const json_t *o, const char *where, const char *key, bool required, int *out, jdec *d) {
    long long x;
    bool present;
    int rc = int_in_range(o, where, key, required, INT_MIN, INT_MAX, &x, &present, d);
    if (!rc && present)
        *out = (int)x;
    return rc;
}

int jf_double(const json_t *o, const char *where, const char *key, bool required, double *out,
              jdec *d) {
    json_t *v;
    int rc = member(o, where, key, required, &v, d);
    if (rc || !v)
        return rc;
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return SLUICE_OK;
    }
    const char *s = json_string_value(v);
    if (s && strcmp(s, "nan") == 0)
        *out = NAN;
    else if (s && strcmp(s, "inf") == 0)
        *out = INFINITY;
    else if (s && strcmp(s, "-inf") == 0)
        *out = -INFINITY;
    else
        return jf_fail(d, where, key, "expected a number");
    return SLUICE_OK;
}

int jf_bool(const json_t *o, const char *where, const char *key, bool required, bool *out,
            jdec *d) {
    json_t *v;
    int rc = member(o, where, key, required, &v, d);
    if (rc || !v)
        return rc;
    if (!json_is_boolean(v))
        return jf_fail(d, where, key, "expected a boolean");
    *out = json_is_true(v);
    return SLUICE_OK;
}

int jf_bytes(const json_t *o, const char *where, const char *key, bool required, uint8_t **out,
             size_t *len, jdec *d) {
    json_t *v;
    int rc = member(o, where, key, required, &v, d);
    if (rc || !v)
        return rc;
    if (!json_is_string(v))
        return jf_fail(d, where, key, "expected a base64 string");
    if (jf_b64_decode(json_string_value(v), json_string_length(v), out, len) != 0)
        return jf_fail(d, where, key, "invalid base64");
    return SLUICE_OK;
}

int jf_array(const json_t *o, const char *where, const char *key, bool required, const json_t **out,
             jdec *d) {
    json_t *v;
    int rc = member(o, where, key, required, &v, d);
    if (rc)
        return rc;
    if (v && !json_is_array(v))
        return jf_fail(d, where, key, "expected an array");
    *out = v;
    return SLUICE_OK;
}

int jf_object(const json_t *o, const char *where, const char *key, bool required,
              const json_t **out, jdec *d) {
    json_t *v;
    int rc = member(o, where, key, required, &v, d);
    if (rc)
        return rc;
    if (v && !json_is_object(v))
        return jf_fail(d, where, key, "expected an object");
    *out = v;
    return SLUICE_OK;
}

int jf_enum(const json_t *o, const char *where, const char *key, bool required,
            const char *const *names, size_t n_names, int *out, jdec *d) {
    json_t *v;
    int rc = member(o, where, key, required, &v, d);
    if (rc || !v)
        return rc;
    if (json_is_integer(v)) {
        long long x = json_integer_value(v);
        if (x < INT_MIN || x > INT_MAX)
            return jf_fail(d, where, key, "integer out of range");
        *out = (int)x;
        return SLUICE_OK;
    }
    const char *s = json_string_value(v);
    if (!s)
        return jf_fail(d, where, key, "expected a name");
    for (size_t i = 0; i < n_names; i++) {
        if (names[i] && strcmp(names[i], s) == 0) {
            *out = (int)i;
            return SLUICE_OK;
        }
    }
    return jf_fail(d, where, key, "unknown name");
}

json_t *jf_string_new(const char *s) {
    json_t *j = json_string(s ? s : "");
    if (j)
        return j;
    char *b = jf_b64_encode((const uint8_t *)s, strlen(s));
    j = json_pack("{s:s}", "b64", b);
    free(b);
    return j;
}

json_t *jf_bytes_new(const uint8_t *p, size_t n) {
    char *b = jf_b64_encode(p, n);
    json_t *j = json_string(b);
    free(b);
    return j;
}

json_t *jf_u64_new(uint64_t v) {
    return json_integer((json_int_t)v);
}

json_t *jf_double_new(double v) {
    if (isnan(v))
        return json_string("nan");
    if (isinf(v))
        return json_string(v > 0 ? "inf" : "-inf");
    return json_real(v);
}

json_t *jf_enum_new(int v, const char *const *names, size_t n_names) {
    if (v >= 0 && (size_t)v < n_names && names[v])
        return json_string(names[v]);
    return json_integer(v);
}
