/*
 * msgcheck.h - the check protobuf-c leaves out: every `string` of a decoded message must
 * be valid UTF-8.
 *
 * proto3 says a string field holds UTF-8, and the other gRPC runtimes refuse a message
 * whose strings do not (their parsers fail). protobuf-c 1.4.1 accepts any bytes, so
 * without this check such a string travels on into sluiced (where jansson refuses it) and
 * back out in answers (which strict clients then cannot decode at all). The transport
 * runs this on every request it decodes, for every method, and answers INVALID_ARGUMENT
 * naming the field; being a walk over the message descriptors, it covers every field of
 * every message, nested, repeated and oneof members included, added ones too.
 *
 * Thread safety: pure; any thread.
 */
#ifndef SLUICE_TRANSPORT_MSGCHECK_H
#define SLUICE_TRANSPORT_MSGCHECK_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

/* Nesting beyond this many messages is refused (the walk is recursive). */
#define MSGCHECK_MAX_DEPTH 64

/* Checks every string field of msg (borrowed). Returns SLUICE_OK, or SLUICE_EINVAL with
 * the path of the first bad field in err, in proto field names:
 * "prompts[3].messages[0].parts[1].text.text: not valid UTF-8 (byte 0 is 0xff)", or
 * "...: messages nested deeper than 64". */
int msgcheck_strings(const ProtobufCMessage *msg, char *err, size_t errlen);

#endif
