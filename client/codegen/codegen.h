/*
 * codegen.h - protoc-gen-sluice's plugin logic: a serialized CodeGeneratorRequest in, a
 * serialized CodeGeneratorResponse out.
 *
 * For each file_to_generate that declares services it returns "<path>.sluice.h" and
 * "<path>.sluice.c" (path without ".proto"); files without services (or with protobuf-c's
 * no_generate option) produce nothing. Problems in the request (an unknown parameter, a
 * type not found, a C name collision, unparseable input) are reported in the response's
 * `error` field, as protoc expects, never by crashing. Single-threaded; no I/O.
 */
#ifndef SLUICE_CODEGEN_H
#define SLUICE_CODEGEN_H

#include <stddef.h>
#include <stdint.h>

/* Largest CodeGeneratorRequest accepted, bytes. */
#define CODEGEN_MAX_REQUEST_BYTES ((size_t)256 << 20)

/* Runs the generator. On SLUICE_OK *out (free with free()) holds the serialized response,
 * which may carry an error for protoc. Returns SLUICE_ENOMEM when no response could be
 * built at all; the caller then reports codegen_oom_response(). */
int codegen_run(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len);

/* Serializes a response whose error is `message` into buf without allocating. Returns the
 * length, or 0 when buf is too small. */
size_t codegen_error_response(const char *message, uint8_t *buf, size_t buflen);

#endif
