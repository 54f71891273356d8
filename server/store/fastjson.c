/*
 * Fast compact JSON text from jansson trees for the store (see fastjson.h for why), and the
 * helpers the parser (fastjson_load.c) shares.
 *
 * The dumper appends to one growable buffer and copies runs of bytes that need no escaping
 * with a single memcpy; reals use jansson's exact formatting ("%.17g", ".0" appended to
 * integral values, '+' and leading zeros dropped from exponents). UTF-8 is checked with
 * jansson's rules: no overlongs, surrogates or code points past U+10FFFF.
 */
#include "server/store/fastjson.h"

#include "server/common/alloc.h"

#include <locale.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 512

/* ---- UTF-8 --------------------------------------------------------------------------- */

size_t fj_utf8_seq(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0; /* overlong */
    else if (c == 0xED)
        hi = 0x9F; /* surrogates */
    else if (c == 0xF0)
        lo = 0x90; /* overlong */
    else if (c == 0xF4)
        hi = 0x8F; /* past U+10FFFF */
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

/* ---- dumping ------------------------------------------------------------------------- */

void fj_buf_put(fj_buf *o, const void *s, size_t n) {
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 1024;
        while (cap < o->len + n + 1)
            cap *= 2;
        o->p = xrealloc(o->p, cap);
        o->cap = cap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void out_ch(fj_buf *o, char c) {
    fj_buf_put(o, &c, 1);
}

char fj_decimal_point(void) {
    const char *dp = localeconv()->decimal_point;
    return dp && dp[0] ? dp[0] : '.';
}

static bool dump_real(fj_buf *o, double v) {
    if (!isfinite(v))
        return false;
    char buf[64];
    int n = snprintf(buf, sizeof buf - 3, "%.17g", v);
    if (n < 0 || (size_t)n >= sizeof buf - 3)
        return false;
    size_t len = (size_t)n;
    char dp = fj_decimal_point();
    if (dp != '.') {
        char *pos = strchr(buf, dp);
        if (pos)
            *pos = '.';
    }
    if (!strchr(buf, '.') && !strchr(buf, 'e')) {
        memcpy(buf + len, ".0", 3);
        len += 2;
    }
    char *start = strchr(buf, 'e');
    if (start) { /* "e+05" -> "e5", "e-05" -> "e-5", as jansson does */
        start++;
        char *end = start + 1;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, len - (size_t)(end - buf) + 1);
            len -= (size_t)(end - start);
        }
    }
    fj_buf_put(o, buf, len);
    return true;
}

static bool dump_string(fj_buf *o, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s, *end = p + n, *run = p;
    out_ch(o, '"');
    while (p < end) {
        unsigned c = *p;
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0x80) {
            size_t k = fj_utf8_seq(p, end);
            if (!k)
                return false;
            p += k;
            continue;
        }
        fj_buf_put(o, run, (size_t)(p - run));
        char esc[8];
        const char *short_esc = c == '"'    ? "\\\""
                                : c == '\\' ? "\\\\"
                                : c == '\b' ? "\\b"
                                : c == '\f' ? "\\f"
                                : c == '\n' ? "\\n"
                                : c == '\r' ? "\\r"
                                : c == '\t' ? "\\t"
                                            : NULL;
        if (!short_esc) {
            snprintf(esc, sizeof esc, "\\u%04X", c);
            short_esc = esc;
        }
        fj_buf_put(o, short_esc, strlen(short_esc));
        run = ++p;
    }
    fj_buf_put(o, run, (size_t)(p - run));
    out_ch(o, '"');
    return true;
}

static bool dump_value(fj_buf *o, const json_t *j, int depth);

static bool dump_object(fj_buf *o, const json_t *j, int depth) {
    const char *key;
    json_t *v;
    bool first = true;
    out_ch(o, '{');
    json_object_foreach((json_t *)j, key, v) {
        if (!first)
            out_ch(o, ',');
        first = false;
        size_t klen = json_object_iter_key_len(json_object_key_to_iter(key));
        if (!dump_string(o, key, klen))
            return false;
        out_ch(o, ':');
        if (!dump_value(o, v, depth + 1))
            return false;
    }
    out_ch(o, '}');
    return true;
}

static bool dump_value(fj_buf *o, const json_t *j, int depth) {
    if (depth > MAX_DEPTH)
        return false;
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return dump_object(o, j, depth);
    case JSON_ARRAY:
        out_ch(o, '[');
        for (size_t i = 0; i < json_array_size(j); i++) {
            if (i)
                out_ch(o, ',');
            if (!dump_value(o, json_array_get(j, i), depth + 1))
                return false;
        }
        out_ch(o, ']');
        return true;
    case JSON_STRING:
        return dump_string(o, json_string_value(j), json_string_length(j));
    case JSON_INTEGER: {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        fj_buf_put(o, buf, (size_t)n);
        return true;
    }
    case JSON_REAL:
        return dump_real(o, json_real_value(j));
    case JSON_TRUE:
        fj_buf_put(o, "true", 4);
        return true;
    case JSON_FALSE:
        fj_buf_put(o, "false", 5);
        return true;
    case JSON_NULL:
        fj_buf_put(o, "null", 4);
        return true;
    }
    return false;
}

char *fj_dump(const json_t *j, size_t *len) {
    fj_buf o = {0};
    if (!j || !dump_value(&o, j, 0)) {
        free(o.p);
        return NULL;
    }
    out_ch(&o, '\0');
    if (len)
        *len = o.len - 1;
    return o.p;
}
