/*
 * jfield.h - strict, path-aware JSON field access for the store's decoders (internal to
 * server/store).
 *
 * Every getter reads one member of a JSON object, checks its type and range, and on failure
 * writes "<where>.<key>: <what>" into the caller's error buffer and returns SLUICE_EPROTO.
 * `where` is the path of the object ("" at the top, "messages[2].parts[0]" deeper).
 * Optional members that are absent leave *out at its zero value and return SLUICE_OK.
 *
 * Strings that are not valid UTF-8 cannot be JSON strings; jf_string_new() encodes them as
 * {"b64":"<base64 of the bytes>"} and jf_str() accepts both forms, so no byte is ever lost.
 * Pure; any thread.
 */
#ifndef SLUICE_STORE_JFIELD_H
#define SLUICE_STORE_JFIELD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The caller's error buffer. */
typedef struct jdec {
    char *err;
    size_t errlen;
} jdec;

/* Writes "<where>.<key>: <what>" (or "<key>: <what>" when where is empty, or "<where>: ..."
 * when key is NULL) and returns SLUICE_EPROTO. */
int jf_fail(jdec *d, const char *where, const char *key, const char *what);
/* Fails naming the first member of `o` whose name is not in the NULL-terminated list. */
int jf_check_keys(const json_t *o, const char *where, const char *const *allowed, jdec *d);
/* Requires `j` to be an object (where names it). */
int jf_require_object(const json_t *j, const char *where, jdec *d);

/* Typed members. *out is written only on success; absent optional members leave it alone. */
int jf_str(const json_t *o, const char *where, const char *key, bool required, char **out, jdec *d);
/* A value (not a member) that must be a string; `key` names it in errors. */
int jf_str_value(const json_t *v, const char *where, const char *key, char **out, jdec *d);
int jf_u64(const json_t *o, const char *where, const char *key, bool required, uint64_t *out,
           jdec *d);
int jf_u32(const json_t *o, const char *where, const char *key, bool required, uint32_t *out,
           jdec *d);
int jf_int(const json_t *o, const char *where, const char *key, bool required, int *out, jdec *d);
int jf_double(const json_t *o, const char *where, const char *key, bool required, double *out,
              jdec *d);
int jf_bool(const json_t *o, const char *where, const char *key, bool required, bool *out, jdec *d);
/* Base64 member decoded into a new buffer (free with free()); *len receives its size. */
int jf_bytes(const json_t *o, const char *where, const char *key, bool required, uint8_t **out,
             size_t *len, jdec *d);
/* Array / object members, borrowed. Absent optional members give NULL. */
int jf_array(const json_t *o, const char *where, const char *key, bool required, const json_t **out,
             jdec *d);
int jf_object(const json_t *o, const char *where, const char *key, bool required,
              const json_t **out, jdec *d);
/* Enum stored as one of `names` (index = value; NULL entries are skipped) or, for values
 * without a name, as a plain integer. */
int jf_enum(const json_t *o, const char *where, const char *key, bool required,
            const char *const *names, size_t n_names, int *out, jdec *d);

/* New JSON value for a string (never NULL; see the file comment for invalid UTF-8). */
json_t *jf_string_new(const char *s);
/* New JSON string holding base64 of n bytes. */
json_t *jf_bytes_new(const uint8_t *p, size_t n);
/* New JSON integer for a uint64 (values above INT64_MAX are stored as their two's-complement
 * bit pattern and read back unchanged by jf_u64). */
json_t *jf_u64_new(uint64_t v);
/* New JSON value for a double: a real, or the string "nan", "inf" or "-inf". */
json_t *jf_double_new(double v);
/* New JSON value for an enum: its name when names[v] exists, else an integer. */
json_t *jf_enum_new(int v, const char *const *names, size_t n_names);

/* Base64 (RFC 4648, padded) through OpenSSL. encode returns a NUL-terminated string (free
 * with free()); decode returns 0 and a new buffer, or -1 for invalid input. */
char *jf_b64_encode(const uint8_t *p, size_t n);
int jf_b64_decode(const char *s, size_t slen, uint8_t **out, size_t *outlen);

#endif
