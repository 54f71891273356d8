/*
 * codegen.c - the request/response loop of protoc-gen-sluice (see codegen.h). Generation
 * of one file is model_build (names, collisions) then emit_header/emit_source (text).
 * Response files are built in a small owned list and packed at the end; any allocation
 * failure after the request was parsed becomes an "out of memory" error response.
 */
#include "client/codegen/codegen.h"

#include "client/codegen/emit.h"
#include "client/codegen/model.h"
#include "google/protobuf/compiler/plugin.pb-c.h"
#include "sluice/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Google__Protobuf__Compiler__CodeGeneratorRequest request;
typedef Google__Protobuf__Compiler__CodeGeneratorResponse response;
typedef Google__Protobuf__Compiler__CodeGeneratorResponse__File response_file;

/* CodeGeneratorResponse.Feature.FEATURE_PROTO3_OPTIONAL: the stubs do not depend on
 * message fields, so proto3 optional is no concern of ours (protoc-c still rejects it). */
#define FEATURE_PROTO3_OPTIONAL 1u

/* The response under construction; owns the files and their strings. */
typedef struct builder {
    response resp;
    response_file **files;
    size_t n_files;
    size_t cap_files;
    char err[1024];
} builder;

static void builder_init(builder *b) {
    memset(b, 0, sizeof(*b));
    response init = GOOGLE__PROTOBUF__COMPILER__CODE_GENERATOR_RESPONSE__INIT;
    b->resp = init;
    b->resp.has_supported_features = 1;
    b->resp.supported_features = FEATURE_PROTO3_OPTIONAL;
}

static void builder_cleanup(builder *b) {
    for (size_t i = 0; i < b->n_files; i++) {
        free(b->files[i]->name);
        free(b->files[i]->content);
        free(b->files[i]);
    }
    free(b->files);
    memset(b, 0, sizeof(*b));
}

/* Adds a file named base+suffix with `content` (taken). */
static int builder_add(builder *b, const char *base, const char *suffix, char *content) {
    if (content == NULL) {
        return SLUICE_ENOMEM;
    }
    if (b->n_files == b->cap_files) {
        size_t cap = b->cap_files ? b->cap_files * 2 : 8;
        response_file **files = realloc(b->files, cap * sizeof(*files));
        if (files == NULL) {
            free(content);
            return SLUICE_ENOMEM;
        }
        b->files = files;
        b->cap_files = cap;
    }
    response_file *f = malloc(sizeof(*f));
    size_t len = strlen(base) + strlen(suffix) + 1;
    char *name = malloc(len);
    if (f == NULL || name == NULL) {
        free(f);
        free(name);
        free(content);
        return SLUICE_ENOMEM;
    }
    snprintf(name, len, "%s%s", base, suffix);
    response_file init = GOOGLE__PROTOBUF__COMPILER__CODE_GENERATOR_RESPONSE__FILE__INIT;
    *f = init;
    f->name = name;
    f->content = content;
    b->files[b->n_files++] = f;
    return SLUICE_OK;
}

static const Google__Protobuf__FileDescriptorProto *find_file(const request *req,
                                                              const char *name) {
    for (size_t i = 0; i < req->n_proto_file; i++) {
        if (req->proto_file[i]->name != NULL && strcmp(req->proto_file[i]->name, name) == 0) {
            return req->proto_file[i];
        }
    }
    return NULL;
}

static int generate_file(const request *req, const char *name, builder *b) {
    const Google__Protobuf__FileDescriptorProto *fd = find_file(req, name);
    if (fd == NULL) {
        snprintf(b->err, sizeof(b->err), "%s: not among the request's proto_file", name);
        return SLUICE_EINVAL;
    }
    cg_file model;
    int rc = model_build(req, fd, &model, b->err, sizeof(b->err));
    if (rc != SLUICE_OK || model.n_services == 0) {
        model_cleanup(&model);
        return rc;
    }
    text h, c;
    text_init(&h);
    text_init(&c);
    emit_header(&model, &h);
    emit_source(&model, &c);
    rc = builder_add(b, model.base, ".sluice.h", text_take(&h));
    if (rc == SLUICE_OK) {
        rc = builder_add(b, model.base, ".sluice.c", text_take(&c));
    }
    text_cleanup(&c);
    model_cleanup(&model);
    return rc;
}

static int generate(const request *req, builder *b) {
    if (req->parameter != NULL && req->parameter[0] != '\0') {
        snprintf(b->err, sizeof(b->err),
                 "unknown parameter \"%.200s\" (protoc-gen-sluice "
                 "takes none)",
                 req->parameter);
        return SLUICE_EINVAL;
    }
    for (size_t i = 0; i < req->n_file_to_generate; i++) {
        int rc = generate_file(req, req->file_to_generate[i], b);
        if (rc != SLUICE_OK) {
            return rc;
        }
    }
    return SLUICE_OK;
}

static int pack(const response *resp, uint8_t **out, size_t *out_len) {
    size_t len = protobuf_c_message_get_packed_size(&resp->base);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL) {
        return SLUICE_ENOMEM;
    }
    *out_len = protobuf_c_message_pack(&resp->base, buf);
    *out = buf;
    return SLUICE_OK;
}

int codegen_run(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    builder b;
    builder_init(&b);
    request *req =
        in_len <= CODEGEN_MAX_REQUEST_BYTES
            ? google__protobuf__compiler__code_generator_request__unpack(NULL, in_len, in)
            : NULL;
    int rc = SLUICE_EINVAL;
    if (req == NULL) {
        /* protobuf-c does not tell a malformed request from an allocation failure. */
        snprintf(b.err, sizeof(b.err), "cannot parse the CodeGeneratorRequest (%zu bytes)", in_len);
    } else {
        rc = generate(req, &b);
        google__protobuf__compiler__code_generator_request__free_unpacked(req, NULL);
    }
    if (rc == SLUICE_ENOMEM) {
        snprintf(b.err, sizeof(b.err), "out of memory");
    }
    if (rc == SLUICE_OK) {
        b.resp.n_file = b.n_files;
        b.resp.file = b.files;
    } else {
        b.resp.error = b.err;
    }
    rc = pack(&b.resp, out, out_len);
    builder_cleanup(&b);
    return rc;
}

size_t codegen_error_response(const char *message, uint8_t *buf, size_t buflen) {
    response resp = GOOGLE__PROTOBUF__COMPILER__CODE_GENERATOR_RESPONSE__INIT;
    resp.error = (char *)message; /* only read by pack */
    size_t len = protobuf_c_message_get_packed_size(&resp.base);
    return len <= buflen ? protobuf_c_message_pack(&resp.base, buf) : 0;
}
