/*
 * UTF-8 validation and repair (see utf8.h). One decoder, after the Unicode standard's
 * Table 3-7: the lead byte fixes the length and the range of the second byte (which is
 * what rules out overlongs, surrogates and code points above U+10FFFF); later bytes are
 * plain continuation bytes. Runs of ASCII are skipped eight bytes at a time.
 */
#include "utf8.h"

#include "alloc.h"

#include <stdint.h>
#include <string.h>

#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */

/* The length (1..4) of the valid character at p[0 .. n), or 0 when none starts there;
 * then *sub is the length (>= 1) of the maximal subpart of the ill-formed sequence (the
 * bytes that could still have begun a character), which repair replaces as one. */
static size_t decode(const unsigned char *p, size_t n, size_t *sub) {
    unsigned char b = p[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF) {
        len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3;
        if (b == 0xE0)
            lo = 0xA0; /* E0 80..9F would be overlong */
        else if (b == 0xED)
            hi = 0x9F; /* ED A0..BF would be a surrogate */
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4;
        if (b == 0xF0)
            lo = 0x90; /* F0 80..8F would be overlong */
        else if (b == 0xF4)
            hi = 0x8F; /* F4 90.. would be above U+10FFFF */
    } else {
        *sub = 1; /* a continuation byte, C0, C1 (always overlong) or F5..FF */
        return 0;
    }
    size_t i = 1;
    if (n > 1 && p[1] >= lo && p[1] <= hi)
        for (i = 2; i < len && i < n && (p[i] & 0xC0) == 0x80; i++)
            ;
    if (i == len)
        return len;
    *sub = i;
    return 0;
}

bool utf8_valid(const char *s, size_t len, size_t *bad_at) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (len - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, sizeof w);
            if (!(w & 0x8080808080808080ull)) {
                i += 8;
                continue;
            }
        }
        size_t sub, k = decode(p + i, len - i, &sub);
        if (!k) {
            if (bad_at)
                *bad_at = i;
            return false;
        }
        i += k;
    }
    return true;
}

size_t utf8_copy_valid(char *dst, size_t cap, const char *src) {
    if (cap == 0)
        return 0;
    const unsigned char *p = (const unsigned char *)(src ? src : "");
    size_t n = strlen((const char *)p), i = 0, o = 0;
    while (i < n) {
        size_t sub, k = decode(p + i, n - i, &sub);
        const char *piece = k ? (const char *)p + i : REPLACEMENT;
        size_t plen = k ? k : sizeof REPLACEMENT - 1;
        if (plen > cap - 1 - o)
            break; /* only whole characters */
        memcpy(dst + o, piece, plen);
        o += plen;
        i += k ? k : sub;
    }
    dst[o] = '\0';
    return o;
}

char *utf8_dup_valid(const char *s) {
    if (!s)
        s = "";
    size_t n = strlen(s);
    if (utf8_valid(s, n, NULL))
        return xmemdup(s, n + 1);
    size_t cap = 3 * n + 1; /* each replaced byte grows to at most three */
    char *d = xmalloc(cap);
    utf8_copy_valid(d, cap, s);
    return d;
}

size_t utf8_whole_prefix(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t j = len, cont = 0;
    while (j > 0 && cont < 3 && (p[j - 1] & 0xC0) == 0x80) {
        j--;
        cont++;
    }
    if (j == 0)
        return len;
    unsigned char b = p[j - 1];
    size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
    return need > cont + 1 ? j - 1 : len;
}

size_t utf8_scrub(char *s) {
    unsigned char *p = (unsigned char *)s;
    size_t len = strlen(s), replaced = 0;
    for (size_t i = 0; i < len;) {
        size_t sub = 1, n = decode(p + i, len - i, &sub);
        if (n) {
            i += n;
            continue;
        }
        for (size_t k = 0; k < sub; k++)
            p[i + k] = '?';
        i += sub;
        replaced += sub;
    }
    return replaced;
}
