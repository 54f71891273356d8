/*
 * fuzz.h - what the fuzz targets of tests/fuzz/ share.
 *
 * Each fuzz_<name>.c defines LLVMFuzzerTestOneInput: libFuzzer calls it in the fuzz build
 * (scripts/build.sh fuzz), replay_main.c calls it once per corpus file in every other build
 * (ctest label "fuzz"). A target must not keep state between inputs beyond what it builds
 * once on its first call, must free everything it allocates (LeakSanitizer checks) and
 * reports a broken invariant with fuzz_fail, which aborts so either driver sees a crash.
 */
#ifndef SLUICE_FUZZ_H
#define SLUICE_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* The entry point every target defines. Returns 0 (libFuzzer reserves other values). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Prints "fuzz: <message>" on stderr and aborts. */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* A NUL-terminated copy of data (embedded NUL bytes stay; the text simply ends at the first
 * one for C string functions). Free with free(). */
char *fuzz_strndup(const uint8_t *data, size_t size);

/* Splits data at each `sep` byte: *n_out pieces, each a NUL-terminated copy, at most `max`
 * (the last piece keeps the rest). Free with fuzz_pieces_free. */
char **fuzz_split(const uint8_t *data, size_t size, char sep, size_t max, size_t *n_out);
void fuzz_pieces_free(char **pieces, size_t n);

/* True when data[0..size) is well-formed UTF-8 (no overlongs, surrogates or code points
 * past U+10FFFF), as protobuf requires of every string field a client decodes. */
int fuzz_utf8_valid(const uint8_t *data, size_t size);

/* An anonymous in-memory file (memfd) holding data, and its path under /proc/self/fd, for
 * loaders that take a path; nothing touches the disk. Returns the fd (close it when done)
 * or -1. path gets at least 32 bytes. */
int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t pathlen);

#endif
