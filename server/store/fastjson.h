/*
 * fastjson.h - a fast text <-> json_t path for the store's hot values (internal to
 * server/store).
 *
 * jansson's own json_loadb/json_dumps cost about 20 us and 12 us for a typical 1.4 KB
 * cached answer on this machine, because its lexer and dumper work byte by byte through
 * callbacks; that capped store reads at ~25k/s. These two functions produce and consume
 * the same text as jansson (fj_dump output equals json_dumps(j, JSON_COMPACT) byte for
 * byte; fj_load accepts exactly what json_loadb(..., JSON_DECODE_ANY) accepts and builds an
 * equal tree), scanning runs of plain bytes at once. The trees are ordinary jansson values,
 * so the codec's strict decoders run unchanged on them.
 *
 * Pure; any thread.
 */
#ifndef SLUICE_STORE_FASTJSON_H
#define SLUICE_STORE_FASTJSON_H

#include <jansson.h>
#include <stddef.h>

/* Compact text of j (members in insertion order). Returns a new NUL-terminated string (free
 * with free()) and its length in *len, or NULL when j holds a value JSON cannot express
 * (a non-finite real, a string that is not UTF-8). */
char *fj_dump(const json_t *j, size_t *len);

/* Parses one JSON value of RFC 8259 (UTF-8 checked; "\u0000" and lone surrogates refused;
 * nesting up to 512 levels; nothing but whitespace after it). Returns a new reference, or
 * NULL with "offset N: reason" in err. */
json_t *fj_load(const char *text, size_t len, char *err, size_t errlen);

/* ---- shared by fastjson.c and fastjson_load.c ---------------------------------------- */

/* A growable byte buffer (xrealloc; free p with free()). */
typedef struct fj_buf {
    char *p;
    size_t len, cap;
} fj_buf;
void fj_buf_put(fj_buf *b, const void *s, size_t n);
/* Length of the valid UTF-8 sequence at p (p < end, *p >= 0x80), or 0 when invalid. */
size_t fj_utf8_seq(const unsigned char *p, const unsigned char *end);
/* The current locale's decimal point (strtod and printf follow it; JSON always uses '.'). */
char fj_decimal_point(void);

#endif
