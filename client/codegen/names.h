/*
 * names.h - protobuf-c's C naming rules, reproduced exactly so the generated stubs refer
 * to protobuf-c's types and descriptors (protoc-c 1.4.1, protoc-c/c_helpers.cc).
 *
 *   camel_to_lower("GetHTTP2Status") = "get_http2_status"   (method and service names)
 *   camel_to_upper("GetHTTP2Status") = "GET_HTTP2_STATUS"
 *   to_camel("deeply_nested")        = "DeeplyNested"       (type names)
 *   full name "sluice.v1.OpenSessionRequest":
 *     NAMES_LOWER "sluice__v1__open_session_request", NAMES_UPPER "SLUICE__V1__...",
 *     NAMES_C "Sluice__V1__OpenSessionRequest"
 *
 * Every function returns a malloc'd string (free with free()) or NULL when out of memory.
 * Pure functions; any thread.
 */
#ifndef SLUICE_CODEGEN_NAMES_H
#define SLUICE_CODEGEN_NAMES_H

typedef enum names_style {
    NAMES_LOWER, /* pieces through camel_to_lower, joined by "__" */
    NAMES_UPPER, /* pieces through camel_to_upper, joined by "__" */
    NAMES_C,     /* pieces through to_camel, joined by "__" */
} names_style;

char *names_camel_to_lower(const char *name);
char *names_camel_to_upper(const char *name);
char *names_to_camel(const char *name);

/* Converts a dotted full name (no leading dot) declared in a file of package `package`.
 * `c_package` is the file's protobuf-c option (pb_c_file).c_package, NULL when unset: it
 * replaces the package part of the name, as protoc-c does. */
char *names_full(const char *full_name, const char *package, const char *c_package,
                 names_style style);

/* "a/b.proto" -> "a/b" (".protodevel" too, like protoc-c); other names are kept. */
char *names_strip_proto(const char *filename);

/* A header guard for a generated file: "SLUICE_GEN_" + the file name with every
 * non-alphanumeric byte as _<hex> + "__INCLUDED" (collision-free, like protoc-c). */
char *names_guard(const char *filename);

#endif
