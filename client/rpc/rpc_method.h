/*
 * rpc_method.h - the method table protoc-gen-sluice emits for every service.
 *
 * protobuf-c's ProtobufCMethodDescriptor lacks the streaming flags and the full path, so
 * our generator emits one sluice_rpc_method per RPC and one sluice_rpc_service per
 * service. The client runtime (rpc.h) and the server transport (server/transport) both
 * drive calls from these tables: adding an RPC to a .proto adds its entry with no
 * hand-written marshalling on either side.
 *
 * Generated tables are const data with static storage: any thread may read them.
 */
#ifndef SLUICE_RPC_METHOD_H
#define SLUICE_RPC_METHOD_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct sluice_rpc_method {
    const char *path; /* "/package.Service/Method", as sent on the wire */
    const char *name; /* "Method" */
    const ProtobufCMessageDescriptor *input;
    const ProtobufCMessageDescriptor *output;
    bool client_streaming;
    bool server_streaming;
} sluice_rpc_method;

typedef struct sluice_rpc_service {
    const char *name; /* "package.Service" */
    size_t n_methods;
    const sluice_rpc_method *methods;
} sluice_rpc_service;

/* Finds a method by its wire path in a service table; NULL when absent. Any thread. */
const sluice_rpc_method *sluice_rpc_service_find(const sluice_rpc_service *svc, const char *path,
                                                 size_t path_len);

#endif
