/*
 * utf8.h - keeping text that leaves sluiced well-formed UTF-8.
 *
 * Messages sluiced writes into proto string fields (Response.error_message) and JSON must
 * be well-formed UTF-8: strict clients (Python, Go, Java protobuf) refuse a whole message
 * when one string field is not, and jansson refuses to encode such a string. Texts that
 * quote outside bytes, such as jansson's parse errors ("invalid escape near '...'", which
 * can hold the first byte of a multi-byte character), are scrubbed before they are used.
 *
 * Pure functions; any thread.
 */
#ifndef SLUICE_COMMON_UTF8_H
#define SLUICE_COMMON_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..len) is well-formed UTF-8 (no overlong forms, surrogates or code points
 * past U+10FFFF). */
bool utf8_valid(const char *s, size_t len);

/* Replaces, in the NUL-terminated s, every byte that is not part of a well-formed UTF-8
 * sequence with '?'. Returns how many bytes were replaced. */
size_t utf8_scrub(char *s);

#endif
