/*
 * rpc_internal.h - pieces shared by the client runtime's files (rpc_channel.c,
 * rpc_unary.c, rpc_call.c). Not part of any public API.
 */
#ifndef SLUICE_RPC_INTERNAL_H
#define SLUICE_RPC_INTERNAL_H

#include "client/rpc/rpc.h"

#include <grpc/grpc.h>
#include <grpc/support/time.h>

struct sluice_rpc_channel {
    grpc_channel *channel;
    char *auth_value; /* "Bearer <token>", NULL when no token */
};

/* The initial metadata one call sends: the channel's authorization header, if any. The
 * slices are copies, so a call never depends on the channel struct staying alive. */
typedef struct rpc_metadata {
    grpc_metadata items[1];
    size_t count;
} rpc_metadata;

void rpc_metadata_init(rpc_metadata *md, const sluice_rpc_channel *ch);
void rpc_metadata_cleanup(rpc_metadata *md);

/* True when msg is a message of type `want` (same descriptor, or the same full name when
 * two copies of the generated code are linked). */
bool rpc_same_type(const ProtobufCMessage *msg, const ProtobufCMessageDescriptor *want);

/* True when two table entries name the same method. */
bool rpc_same_method(const sluice_rpc_method *a, const sluice_rpc_method *b);

/* Creates the gRPC call for m on cq with the deadline of opts. NULL on failure. */
grpc_call *rpc_create_call(sluice_rpc_channel *ch, const sluice_rpc_method *m,
                           const sluice_rpc_call_opts *opts, grpc_completion_queue *cq);

/* Packs msg into a new byte buffer for SEND_MESSAGE (destroy it after the batch
 * completes). SLUICE_OK, SLUICE_ENOMEM or SLUICE_ELIMIT (over 4 GiB). */
int rpc_pack(const ProtobufCMessage *msg, grpc_byte_buffer **out);

/* Unpacks bb (borrowed) as type d into *out (free with protobuf_c_message_free_unpacked).
 * SLUICE_OK, SLUICE_EPROTO or SLUICE_ENOMEM. */
int rpc_unpack(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb, ProtobufCMessage **out);

/* Fills *st (may be NULL) from a received status; details are truncated at a UTF-8
 * character boundary to fit. */
void rpc_status_set(sluice_rpc_status *st, grpc_status_code code, grpc_slice details);
/* Fills *st (may be NULL) for a call that never reached gRPC: UNKNOWN with the sluice
 * error's name as details. */
void rpc_status_local(sluice_rpc_status *st, int err);

/* A deadline timeout_ms from now on the monotonic clock; negative = infinite. */
gpr_timespec rpc_deadline_ms(int64_t timeout_ms);

#endif
