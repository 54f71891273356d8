/* UTF-8 well-formedness (see utf8.h): RFC 3629 sequences, checked byte by byte. */
#include "utf8.h"

#include <stdint.h>
#include <string.h>

/* Length of the well-formed sequence at s[0..len), or 0 when there is none. */
static size_t sequence_len(const unsigned char *s, size_t len) {
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t n = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (!n || n > len)
        return 0;
    uint32_t cp = c & (0x7Fu >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

bool utf8_valid(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = sequence_len(p + i, len - i);
        if (!n)
            return false;
        i += n;
    }
    return true;
}

size_t utf8_scrub(char *s) {
    unsigned char *p = (unsigned char *)s;
    size_t len = strlen(s), replaced = 0;
    for (size_t i = 0; i < len;) {
        size_t n = sequence_len(p + i, len - i);
        if (n) {
            i += n;
        } else {
            p[i++] = '?';
            replaced++;
        }
    }
    return replaced;
}
