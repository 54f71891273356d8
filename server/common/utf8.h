/*
 * utf8.h - UTF-8 validation and repair.
 *
 * "Valid" is well-formed UTF-8 as the Unicode standard defines it (Table 3-7, RFC 3629):
 * shortest form only (no overlongs such as C0 80 or E0 80 80), no UTF-16 surrogates
 * (U+D800..U+DFFF, ED A0 80..ED BF BF), nothing above U+10FFFF (F4 90 80 80 and up), no
 * stray continuation bytes and no sequence cut short. U+0000 is valid UTF-8, but the
 * functions taking a C string stop at the first NUL byte.
 *
 * proto3 requires every `string` field to hold valid UTF-8 and protobuf-c does not check it;
 * jansson refuses invalid UTF-8 (json_string and json_pack's "s" return NULL). This module
 * is what the edge checks requests with, and what keeps the strings sluiced sends valid.
 *
 * Pure functions; no I/O. Thread safety: any thread.
 */
#ifndef SLUICE_COMMON_UTF8_H
#define SLUICE_COMMON_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Whether s[0 .. len) is valid UTF-8. When it is not and bad_at is not NULL, *bad_at gets
 * the offset of the first byte that does not belong to a valid character. */
bool utf8_valid(const char *s, size_t len, size_t *bad_at);

/* Copies the C string src into dst (capacity cap, at least 1 byte), replacing every
 * ill-formed subsequence with U+FFFD (one per maximal subpart, as Unicode recommends) and
 * cutting, when it does not fit, only between whole characters. Always NUL-terminates.
 * Returns the length written (without the NUL). src may be NULL (""). */
size_t utf8_copy_valid(char *dst, size_t cap, const char *src);

/* A copy of the C string s with ill-formed subsequences replaced as above; s may be NULL
 * (""). Never NULL: allocation failure aborts (server/common/alloc.h). Free with free(). */
char *utf8_dup_valid(const char *s);

/* Replaces, in place in the C string s, every byte of an ill-formed subsequence with '?'
 * (the length never changes, so it suits fixed buffers). Returns how many were replaced. */
size_t utf8_scrub(char *s);

/* The length of the longest prefix of s[0 .. len) that does not end inside a character:
 * a sequence cut short at the end is dropped, nothing else is looked at. */
size_t utf8_whole_prefix(const char *s, size_t len);

#endif
