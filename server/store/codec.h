/*
 * codec.h - the store's binary encoding of llm_request / llm_response (protobuf-c).
 *
 * Maps the internal structs of server/common/llm.h one to one onto the generated
 * sluice.store.v1 messages (proto/sluice/store/v1/records.proto) and packs / unpacks them
 * with protobuf-c. Used for durable task records and results and for cache values. The
 * round trip is exact: every field, NULL strings distinct from "", NULL image data distinct
 * from zero-length data, NULL stop entries, any double (NaN, infinities, -0.0), any bytes
 * in a string.
 *
 * Symmetric strictness: the encoder refuses (SLUICE_EINVAL) exactly the structs the decoder
 * would refuse (SLUICE_EPROTO), so the store never writes a value it cannot read back:
 * an enum out of its range (role 1..4, part kind 1..5, effort 0..6, error kind 0..7),
 * sampling `set` bits other than LLM_SET_*, more than LLM_MAX_STOP stop sequences, an image
 * part with neither url nor data. The decoder also refuses bytes protobuf-c cannot unpack,
 * unknown fields, undefined presence bits and a value whose presence bit is clear.
 * Every error writes one message naming the field ("messages[1].parts[0].kind: 9 is out of
 * range") into err (errlen bytes, may be 0). Decoding never crashes and never reads past
 * `len`, whatever the bytes.
 *
 * Pure (no I/O, no mutable state); any thread. Allocation failure aborts
 * (server/common/alloc.h).
 */
#ifndef SLUICE_STORE_CODEC_H
#define SLUICE_STORE_CODEC_H

#include "server/common/llm.h"
#include "sluice/store/v1/records.pb-c.h"

#include <stddef.h>
#include <stdint.h>

/* ---- bytes --------------------------------------------------------------------------- */

/* Packs r as a sluice.store.v1.Request into a new buffer: `headroom` bytes left free at the
 * front (for the caller's own header, uninitialised), then the packed message. *len is the
 * whole size (headroom included). Returns SLUICE_OK, or SLUICE_EINVAL (see above; *out and
 * *len untouched). *out is freed by the caller with free(). */
int codec_request_pack(const llm_request *r, size_t headroom, uint8_t **out, size_t *len, char *err,
                       size_t errlen);
/* The same for a response (sluice.store.v1.Response). */
int codec_response_pack(const llm_response *r, size_t headroom, uint8_t **out, size_t *len,
                        char *err, size_t errlen);

/* Decodes len bytes (data may be NULL when len is 0) into a new struct. Returns SLUICE_OK
 * with *out (freed by the caller with llm_request_free / llm_response_free), or
 * SLUICE_EPROTO with *out NULL. */
int codec_request_unpack(const uint8_t *data, size_t len, llm_request **out, char *err,
                         size_t errlen);
int codec_response_unpack(const uint8_t *data, size_t len, llm_response **out, char *err,
                          size_t errlen);

/* ---- generated structs (for records that embed a request, e.g. the task record) ------ */

/* Builds the message tree of r into *out. The tree BORROWS r's strings and bytes: r must
 * outlive it and stay unchanged; free it with codec_request_proto_free, never with
 * protobuf_c_message_free_unpacked. Returns SLUICE_OK or SLUICE_EINVAL (*out NULL). */
int codec_request_to_proto(const llm_request *r, Sluice__Store__V1__Request **out, char *err,
                           size_t errlen);
/* Frees a tree built by codec_request_to_proto (not the borrowed strings). NULL-safe. */
void codec_request_proto_free(Sluice__Store__V1__Request *m);
/* Maps an unpacked message (borrowed, typically from protobuf_c_message_unpack) onto a new
 * struct, checking it as described above. SLUICE_OK with *out (llm_request_free), or
 * SLUICE_EPROTO with *out NULL. */
int codec_request_from_proto(const Sluice__Store__V1__Request *m, llm_request **out, char *err,
                             size_t errlen);

/* The same three for a response. */
int codec_response_to_proto(const llm_response *r, Sluice__Store__V1__Response **out, char *err,
                            size_t errlen);
void codec_response_proto_free(Sluice__Store__V1__Response *m);
int codec_response_from_proto(const Sluice__Store__V1__Response *m, llm_response **out, char *err,
                              size_t errlen);

/* ---- any message ---------------------------------------------------------------------- */

/* Packs m into a new buffer after `headroom` free bytes (as codec_request_pack). Cannot fail.
 * *out is freed with free(). */
void codec_message_pack(const ProtobufCMessage *m, size_t headroom, uint8_t **out, size_t *len);
/* Unpacks len bytes as a message of type d with the store's allocator (xmalloc: running out
 * of memory aborts instead of looking like corrupt bytes). Returns the message (free with
 * codec_message_free) or NULL with "not a valid <type> (<len> bytes)" in err. Checks the
 * wire format only; the *_from_proto functions check the values. */
ProtobufCMessage *codec_message_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *data,
                                       size_t len, char *err, size_t errlen);
/* Frees a message returned by codec_message_unpack. NULL-safe. */
void codec_message_free(ProtobufCMessage *m);

#endif
