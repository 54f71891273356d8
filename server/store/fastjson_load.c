/*
 * Fast compact JSON text to jansson trees for the store (see fastjson.h for why).
 *
 * A recursive descent over the byte range: strings without escapes become jansson strings
 * straight from the input, UTF-8 is validated with jansson's rules (fj_utf8_seq), and
 * numbers follow jansson's lexer (integers that overflow json_int_t and reals that overflow
 * a double are errors). Every error is reported with its byte offset; nothing reads past
 * `len`; nesting is bounded so hostile input cannot exhaust the stack.
 */
#include "server/store/fastjson.h"

#include "server/common/alloc.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 512

static void out_ch(fj_buf *o, char c) {
    fj_buf_put(o, &c, 1);
}

typedef struct parser {
    const unsigned char *p, *end, *start;
    char *err;
    size_t errlen;
    fj_buf scratch; /* decoded string with escapes */
} parser;

static json_t *fail(parser *ps, const char *what) {
    if (ps->err && ps->errlen && !ps->err[0])
        snprintf(ps->err, ps->errlen, "offset %zu: %s", (size_t)(ps->p - ps->start), what);
    return NULL;
}

static void skip_ws(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int hex4(const unsigned char *p) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static void put_utf8(fj_buf *o, uint32_t cp) {
    unsigned char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | cp >> 6);
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | cp >> 12);
        b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xF0 | cp >> 18);
        b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        b[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    fj_buf_put(o, b, n);
}

/* Decodes "\uXXXX" (and its low surrogate) at ps->p (just after the backslash-u). */
static bool parse_uescape(parser *ps) {
    if (ps->end - ps->p < 4 || hex4(ps->p) < 0)
        return fail(ps, "invalid \\u escape"), false;
    uint32_t cp = (uint32_t)hex4(ps->p);
    ps->p += 4;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail(ps, "lone low surrogate"), false;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u' || hex4(ps->p + 2) < 0)
            return fail(ps, "high surrogate without a low one"), false;
        uint32_t lo = (uint32_t)hex4(ps->p + 2);
        if (lo < 0xDC00 || lo > 0xDFFF)
            return fail(ps, "high surrogate without a low one"), false;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        ps->p += 6;
    }
    if (cp == 0)
        return fail(ps, "\\u0000 is not allowed"), false;
    put_utf8(&ps->scratch, cp);
    return true;
}

static bool parse_escape(parser *ps) {
    if (ps->p >= ps->end)
        return fail(ps, "unterminated string"), false;
    unsigned char c = *ps->p++;
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *hit = c ? strchr(from, c) : NULL;
    if (hit) {
        out_ch(&ps->scratch, to[hit - from]);
        return true;
    }
    if (c == 'u')
        return parse_uescape(ps);
    ps->p--;
    return fail(ps, "invalid escape"), false;
}

/* Parses a string at ps->p (after the opening quote). On success *s and *n point either into
 * the input (no escapes) or into ps->scratch. */
static bool parse_string(parser *ps, const char **s, size_t *n) {
    const unsigned char *run = ps->p;
    bool escaped = false;
    ps->scratch.len = 0;
    for (;;) {
        if (ps->p >= ps->end)
            return fail(ps, "unterminated string"), false;
        unsigned c = *ps->p;
        if (c == '"')
            break;
        if (c < 0x20)
            return fail(ps, "control character in string"), false;
        if (c == '\\') {
            fj_buf_put(&ps->scratch, run, (size_t)(ps->p - run));
            ps->p++;
            if (!parse_escape(ps))
                return false;
            run = ps->p;
            escaped = true;
            continue;
        }
        size_t k = c < 0x80 ? 1 : fj_utf8_seq(ps->p, ps->end);
        if (!k)
            return fail(ps, "invalid UTF-8 in string"), false;
        ps->p += k;
    }
    if (escaped) {
        fj_buf_put(&ps->scratch, run, (size_t)(ps->p - run));
        *s = ps->scratch.p;
        *n = ps->scratch.len;
    } else {
        *s = (const char *)run;
        *n = (size_t)(ps->p - run);
    }
    ps->p++; /* closing quote */
    return true;
}

static bool is_digit(const parser *ps) {
    return ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9';
}

static void skip_digits(parser *ps) {
    while (is_digit(ps))
        ps->p++;
}

/* Converts the number text [b, e) with strtoll / strtod as jansson does. */
static json_t *number_value(parser *ps, const unsigned char *b, const unsigned char *e, bool real) {
    char small[64];
    size_t n = (size_t)(e - b);
    char *t = n < sizeof small ? small : xmalloc(n + 1);
    memcpy(t, b, n);
    t[n] = '\0';
    json_t *v = NULL;
    errno = 0;
    if (!real) {
        long long x = strtoll(t, NULL, 10);
        v = errno == ERANGE ? fail(ps, "integer out of range") : json_integer(x);
    } else {
        char dp = fj_decimal_point();
        char *pos = dp != '.' ? strchr(t, '.') : NULL;
        if (pos)
            *pos = dp;
        double d = strtod(t, NULL);
        v = (d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE ? fail(ps, "real number overflow")
                                                                 : json_real(d);
    }
    if (t != small)
        free(t);
    return v;
}

static json_t *parse_number(parser *ps) {
    const unsigned char *b = ps->p;
    bool real = false;
    if (ps->p < ps->end && *ps->p == '-')
        ps->p++;
    if (ps->p < ps->end && *ps->p == '0')
        ps->p++;
    else if (is_digit(ps))
        skip_digits(ps);
    else
        return fail(ps, "invalid number");
    if (is_digit(ps))
        return fail(ps, "invalid number (leading zero)");
    if (ps->p < ps->end && *ps->p == '.') {
        ps->p++;
        if (!is_digit(ps))
            return fail(ps, "invalid number");
        skip_digits(ps);
        real = true;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
            ps->p++;
        if (!is_digit(ps))
            return fail(ps, "invalid number");
        skip_digits(ps);
        real = true;
    }
    return number_value(ps, b, ps->p, real);
}

static json_t *parse_value(parser *ps, int depth);

static json_t *parse_array(parser *ps, int depth) {
    json_t *a = json_array();
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return a;
    }
    for (;;) {
        json_t *v = parse_value(ps, depth + 1);
        if (!v)
            break;
        json_array_append_new(a, v);
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            return a;
        }
        fail(ps, "expected ',' or ']'");
        break;
    }
    json_decref(a);
    return NULL;
}

/* One "key": value member into o. */
static bool parse_member(parser *ps, json_t *o, int depth) {
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != '"')
        return fail(ps, "expected a string key"), false;
    ps->p++;
    const char *k;
    size_t kn;
    if (!parse_string(ps, &k, &kn))
        return false;
    char small[128];
    char *key = kn < sizeof small ? small : xmalloc(kn + 1);
    memcpy(key, k, kn);
    key[kn] = '\0';
    skip_ws(ps);
    json_t *v = NULL;
    if (ps->p < ps->end && *ps->p == ':') {
        ps->p++;
        v = parse_value(ps, depth + 1);
    } else {
        fail(ps, "expected ':'");
    }
    if (v)
        json_object_setn_new_nocheck(o, key, kn, v);
    if (key != small)
        free(key);
    return v != NULL;
}

static json_t *parse_object(parser *ps, int depth) {
    json_t *o = json_object();
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return o;
    }
    for (;;) {
        if (!parse_member(ps, o, depth))
            break;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            return o;
        }
        fail(ps, "expected ',' or '}'");
        break;
    }
    json_decref(o);
    return NULL;
}

static json_t *parse_literal(parser *ps, const char *word, json_t *v) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail(ps, "invalid token");
    ps->p += n;
    return v;
}

static json_t *parse_value(parser *ps, int depth) {
    if (depth > MAX_DEPTH)
        return fail(ps, "nested too deeply");
    skip_ws(ps);
    if (ps->p >= ps->end)
        return fail(ps, "unexpected end of input");
    switch (*ps->p) {
    case '{':
        ps->p++;
        return parse_object(ps, depth);
    case '[':
        ps->p++;
        return parse_array(ps, depth);
    case '"': {
        ps->p++;
        const char *s;
        size_t n;
        return parse_string(ps, &s, &n) ? json_stringn_nocheck(s, n) : NULL;
    }
    case 't':
        return parse_literal(ps, "true", json_true());
    case 'f':
        return parse_literal(ps, "false", json_false());
    case 'n':
        return parse_literal(ps, "null", json_null());
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
            return parse_number(ps);
        return fail(ps, "invalid token");
    }
}

json_t *fj_load(const char *text, size_t len, char *err, size_t errlen) {
    parser ps = {.p = (const unsigned char *)text,
                 .end = (const unsigned char *)text + len,
                 .start = (const unsigned char *)text,
                 .err = err,
                 .errlen = errlen};
    if (err && errlen)
        err[0] = '\0';
    json_t *v = parse_value(&ps, 0);
    if (v) {
        skip_ws(&ps);
        if (ps.p != ps.end) {
            fail(&ps, "data after the value");
            json_decref(v);
            v = NULL;
        }
    }
    free(ps.scratch.p);
    return v;
}
