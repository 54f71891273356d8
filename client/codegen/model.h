/*
 * model.h - what protoc-gen-sluice generates for one .proto file, with every C name
 * already derived (protobuf-c's rules, names.h) and checked for collisions.
 *
 * Built from a CodeGeneratorRequest, which stays borrowed: the model copies what it keeps
 * into its own pool. Single-threaded.
 */
#ifndef SLUICE_CODEGEN_MODEL_H
#define SLUICE_CODEGEN_MODEL_H

#include "client/codegen/text.h"
#include "google/protobuf/compiler/plugin.pb-c.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct cg_method {
    const char *name;     /* "OpenSession" */
    const char *path;     /* "/sluice.v1.Sluice/OpenSession" */
    const char *snake;    /* "open_session" (protobuf-c's method name) */
    const char *upper;    /* "OPEN_SESSION" */
    const char *in_type;  /* "Sluice__V1__OpenSessionRequest" */
    const char *out_type; /* "Sluice__V1__OpenSessionResponse" */
    const char *in_lower; /* "sluice__v1__open_session_request" (descriptor, free_unpacked) */
    const char *out_lower;
    bool client_streaming;
    bool server_streaming;
    const char *comment; /* the method's leading comment in the .proto, NULL when none */
} cg_method;

typedef struct cg_service {
    const char *full_name; /* "sluice.v1.Sluice" */
    const char *lower;     /* "sluice__v1__sluice" */
    const char *upper;     /* "SLUICE__V1__SLUICE" */
    const char *comment;   /* NULL when none */
    size_t n_methods;
    cg_method *methods;
} cg_service;

typedef struct cg_file {
    const char *proto_name; /* "sluice/v1/sluice.proto" */
    const char *base;       /* "sluice/v1/sluice" */
    size_t n_services;      /* 0: nothing is generated for the file */
    cg_service *services;
    strpool pool; /* owns every string and array above */
} cg_file;

/* Builds the model of `file`, one of req's proto_file entries. Returns SLUICE_OK,
 * SLUICE_EINVAL with a message in err (an unresolvable type, a C name collision, ...) or
 * SLUICE_ENOMEM. On error `out` is cleaned up already. */
int model_build(const Google__Protobuf__Compiler__CodeGeneratorRequest *req,
                const Google__Protobuf__FileDescriptorProto *file, cg_file *out, char *err,
                size_t errlen);
/* Frees the model. */
void model_cleanup(cg_file *f);

#endif
