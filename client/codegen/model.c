/*
 * model.c - builds the generation model of one file from a CodeGeneratorRequest.
 *
 * Type names are resolved against every file protoc sent (the file itself and its
 * imports), because protobuf-c names a message after the file that declares it: its
 * package and its (pb_c_file).c_package option. Then every identifier the stubs and
 * protobuf-c will define for the file's services is listed, sorted and checked for
 * duplicates, so a clash is a clear plugin error instead of a C compile error later.
 */
#include "client/codegen/model.h"

#include "client/codegen/names.h"
#include "client/codegen/pbc_options.pb-c.h"
#include "sluice/status.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Google__Protobuf__FileDescriptorProto file_proto;
typedef Google__Protobuf__DescriptorProto message_proto;
typedef Google__Protobuf__Compiler__CodeGeneratorRequest request;

/* The extension number of (pb_c_file) on google.protobuf.FileOptions. */
#define PBC_FILE_OPTIONS_FIELD 1019
/* Field numbers in descriptor.proto used as SourceCodeInfo paths. */
#define FILE_SERVICE_FIELD 6
#define SERVICE_METHOD_FIELD 2

typedef struct file_opts {
    bool no_generate;
    const char *c_package; /* in the model's pool; NULL when unset */
} file_opts;

/* The payload of a length-delimited unknown field: protobuf-c keeps the length varint at
 * the start of `data`. */
static bool unknown_payload(const ProtobufCMessageUnknownField *uf, const uint8_t **data,
                            size_t *len) {
    if (uf->tag != PBC_FILE_OPTIONS_FIELD ||
        uf->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED) {
        return false;
    }
    size_t skip = 0;
    while (skip < uf->len && (uf->data[skip] & 0x80) != 0) {
        skip++;
    }
    skip = skip < uf->len ? skip + 1 : uf->len;
    *data = uf->data + skip;
    *len = uf->len - skip;
    return true;
}

/* Concatenates the payloads of every (pb_c_file) occurrence, which merges them (proto
 * rules). *out stays NULL when there is none. */
static int pbc_payload(const ProtobufCMessage *opts, uint8_t **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    size_t total = 0;
    bool found = false;
    const uint8_t *data;
    size_t len;
    for (unsigned i = 0; i < opts->n_unknown_fields; i++) {
        if (unknown_payload(&opts->unknown_fields[i], &data, &len)) {
            total += len;
            found = true;
        }
    }
    if (!found) {
        return SLUICE_OK;
    }
    if ((*out = malloc(total ? total : 1)) == NULL) {
        return SLUICE_ENOMEM;
    }
    for (unsigned i = 0; i < opts->n_unknown_fields; i++) {
        if (unknown_payload(&opts->unknown_fields[i], &data, &len)) {
            memcpy(*out + *out_len, data, len);
            *out_len += len;
        }
    }
    return SLUICE_OK;
}

/* Reads (pb_c_file) from the unknown fields of FileOptions: protobuf-c does not decode
 * extensions. */
static int read_file_opts(const file_proto *fd, strpool *pool, file_opts *out, char *err,
                          size_t errlen) {
    memset(out, 0, sizeof(*out));
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = fd->options != NULL ? pbc_payload(&fd->options->base, &buf, &len) : SLUICE_OK;
    if (rc != SLUICE_OK || buf == NULL) {
        return rc;
    }
    Sluice__Codegen__PbcFileOptions *o = sluice__codegen__pbc_file_options__unpack(NULL, len, buf);
    free(buf);
    if (o == NULL) {
        snprintf(err, errlen, "%s: cannot decode its (pb_c_file) options", fd->name);
        return SLUICE_EINVAL;
    }
    out->no_generate = o->has_no_generate && o->no_generate;
    if (o->c_package != NULL && (out->c_package = strpool_strdup(pool, o->c_package)) == NULL) {
        rc = SLUICE_ENOMEM;
    }
    sluice__codegen__pbc_file_options__free_unpacked(o, NULL);
    return rc;
}

/* True when `rest` ("Outer.Inner") names a message among msgs or their nested types. */
static bool has_message(message_proto *const *msgs, size_t n, const char *rest) {
    for (size_t i = 0; i < n; i++) {
        const char *name = msgs[i]->name != NULL ? msgs[i]->name : "";
        size_t len = strlen(name);
        if (len == 0 || strncmp(rest, name, len) != 0) {
            continue;
        }
        if (rest[len] == '\0') {
            return true;
        }
        if (rest[len] == '.' &&
            has_message(msgs[i]->nested_type, msgs[i]->n_nested_type, rest + len + 1)) {
            return true;
        }
    }
    return false;
}

/* The file among the request's files that declares message `full` (no leading dot). */
static const file_proto *find_message_file(const request *req, const char *full) {
    for (size_t i = 0; i < req->n_proto_file; i++) {
        const file_proto *fd = req->proto_file[i];
        const char *pkg = fd->package != NULL ? fd->package : "";
        size_t plen = strlen(pkg);
        const char *rest = full;
        if (plen > 0) {
            if (strncmp(full, pkg, plen) != 0 || full[plen] != '.') {
                continue;
            }
            rest = full + plen + 1;
        }
        if (has_message(fd->message_type, fd->n_message_type, rest)) {
            return fd;
        }
    }
    return NULL;
}

/* The C type name and lower-case prefix protobuf-c gives message `dotted` (".pkg.Msg"). */
static int type_names(const request *req, cg_file *f, const char *dotted, const char **c_type,
                      const char **lower, char *err, size_t errlen) {
    const file_proto *fd =
        dotted != NULL && dotted[0] == '.' ? find_message_file(req, dotted + 1) : NULL;
    if (fd == NULL) {
        snprintf(err, errlen, "%s: message type %s not found in the request", f->proto_name,
                 dotted != NULL ? dotted : "(none)");
        return SLUICE_EINVAL;
    }
    file_opts opts;
    int rc = read_file_opts(fd, &f->pool, &opts, err, errlen);
    if (rc != SLUICE_OK) {
        return rc;
    }
    const char *pkg = fd->package != NULL ? fd->package : "";
    *c_type = strpool_keep(&f->pool, names_full(dotted + 1, pkg, opts.c_package, NAMES_C));
    *lower = strpool_keep(&f->pool, names_full(dotted + 1, pkg, opts.c_package, NAMES_LOWER));
    return *c_type != NULL && *lower != NULL ? SLUICE_OK : SLUICE_ENOMEM;
}

/* The leading comment recorded for a SourceCodeInfo path, NULL when none. */
static const char *find_comment(const file_proto *fd, const int32_t *path, size_t n) {
    const Google__Protobuf__SourceCodeInfo *info = fd->source_code_info;
    for (size_t i = 0; info != NULL && i < info->n_location; i++) {
        const Google__Protobuf__SourceCodeInfo__Location *loc = info->location[i];
        if (loc->n_path == n && memcmp(loc->path, path, n * sizeof(*path)) == 0 &&
            loc->leading_comments != NULL && loc->leading_comments[0] != '\0') {
            return loc->leading_comments;
        }
    }
    return NULL;
}

/* A formatted string kept by the model's pool; NULL when out of memory. */
__attribute__((format(printf, 2, 3))) static const char *pool_printf(cg_file *f, const char *fmt,
                                                                     ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return strpool_keep(&f->pool, s);
}

/* A copy of an optional string in the pool; true unless the copy failed. */
static bool keep_opt(cg_file *f, const char *s, const char **out) {
    *out = s != NULL ? strpool_strdup(&f->pool, s) : NULL;
    return s == NULL || *out != NULL;
}

static int build_method(const request *req, const file_proto *fd, size_t si, size_t mi,
                        const cg_service *svc, cg_file *f, char *err, size_t errlen) {
    const Google__Protobuf__MethodDescriptorProto *md = fd->service[si]->method[mi];
    cg_method *m = &svc->methods[mi];
    if (md->name == NULL || md->name[0] == '\0') {
        snprintf(err, errlen, "%s: a method of %s has no name", f->proto_name, svc->full_name);
        return SLUICE_EINVAL;
    }
    m->path = pool_printf(f, "/%s/%s", svc->full_name, md->name);
    m->name = strpool_strdup(&f->pool, md->name);
    m->snake = strpool_keep(&f->pool, names_camel_to_lower(md->name));
    m->upper = strpool_keep(&f->pool, names_camel_to_upper(md->name));
    if (m->path == NULL || m->name == NULL || m->snake == NULL || m->upper == NULL) {
        return SLUICE_ENOMEM;
    }
    m->client_streaming = md->has_client_streaming && md->client_streaming;
    m->server_streaming = md->has_server_streaming && md->server_streaming;
    const int32_t where[] = {FILE_SERVICE_FIELD, (int32_t)si, SERVICE_METHOD_FIELD, (int32_t)mi};
    if (!keep_opt(f, find_comment(fd, where, 4), &m->comment)) {
        return SLUICE_ENOMEM;
    }
    int rc = type_names(req, f, md->input_type, &m->in_type, &m->in_lower, err, errlen);
    if (rc == SLUICE_OK) {
        rc = type_names(req, f, md->output_type, &m->out_type, &m->out_lower, err, errlen);
    }
    return rc;
}

static int build_service(const request *req, const file_proto *fd, size_t si, const file_opts *opts,
                         cg_file *f, char *err, size_t errlen) {
    const Google__Protobuf__ServiceDescriptorProto *sd = fd->service[si];
    cg_service *svc = &f->services[si];
    const char *pkg = fd->package != NULL ? fd->package : "";
    if (sd->name == NULL || sd->name[0] == '\0') {
        snprintf(err, errlen, "%s: a service has no name", f->proto_name);
        return SLUICE_EINVAL;
    }
    svc->full_name = pool_printf(f, "%s%s%s", pkg, pkg[0] ? "." : "", sd->name);
    if (svc->full_name == NULL) {
        return SLUICE_ENOMEM;
    }
    const char *full = svc->full_name;
    svc->lower = strpool_keep(&f->pool, names_full(full, pkg, opts->c_package, NAMES_LOWER));
    svc->upper = strpool_keep(&f->pool, names_full(full, pkg, opts->c_package, NAMES_UPPER));
    const int32_t where[] = {FILE_SERVICE_FIELD, (int32_t)si};
    if (svc->lower == NULL || svc->upper == NULL ||
        !keep_opt(f, find_comment(fd, where, 2), &svc->comment)) {
        return SLUICE_ENOMEM;
    }
    svc->n_methods = sd->n_method;
    svc->methods = strpool_calloc(&f->pool, sd->n_method, sizeof(cg_method));
    if (sd->n_method > 0 && svc->methods == NULL) {
        return SLUICE_ENOMEM;
    }
    for (size_t mi = 0; mi < sd->n_method; mi++) {
        int rc = build_method(req, fd, si, mi, svc, f, err, errlen);
        if (rc != SLUICE_OK) {
            return rc;
        }
    }
    return SLUICE_OK;
}

/* Identifiers defined per method: protobuf-c's own function (""), then ours. */
static const char *const method_suffixes[] = {
    "", "__method", "__rpc", "__async", "__start", "__read", "__write", "__start_write", "__finish",
};
/* Per service: protobuf-c's descriptor and init functions, then our two tables. */
static const char *const service_suffixes[] = {
    "__descriptor",
    "__init",
    "__rpc_methods",
    "__rpc_service",
};
#define N_METHOD_SUFFIXES (sizeof(method_suffixes) / sizeof(method_suffixes[0]))
#define N_SERVICE_SUFFIXES (sizeof(service_suffixes) / sizeof(service_suffixes[0]))

/* A generated identifier and the .proto element it comes from. */
typedef struct gen_name {
    const char *id;
    const char *origin; /* "method GetFoo of t.S", "service t.S" */
} gen_name;

static int cmp_names(const void *a, const void *b) {
    return strcmp(((const gen_name *)a)->id, ((const gen_name *)b)->id);
}

/* Lists every identifier the file's services get, from us and from protobuf-c. Returns
 * false when out of memory. */
static bool list_names(cg_file *f, gen_name *names) {
    size_t n = 0;
    for (size_t s = 0; s < f->n_services; s++) {
        const cg_service *svc = &f->services[s];
        const char *origin = pool_printf(f, "service %s", svc->full_name);
        for (size_t k = 0; k < N_SERVICE_SUFFIXES; k++) {
            names[n].origin = origin;
            names[n].id = pool_printf(f, "%s%s", svc->lower, service_suffixes[k]);
            if (origin == NULL || names[n++].id == NULL) {
                return false;
            }
        }
        for (size_t i = 0; i < svc->n_methods; i++) {
            const cg_method *m = &svc->methods[i];
            origin = pool_printf(f, "method %s of %s", m->name, svc->full_name);
            for (size_t k = 0; k <= N_METHOD_SUFFIXES; k++) {
                names[n].origin = origin;
                names[n].id =
                    k < N_METHOD_SUFFIXES
                        ? pool_printf(f, "%s__%s%s", svc->lower, m->snake, method_suffixes[k])
                        : pool_printf(f, "%s__RPC_%s", svc->upper, m->upper);
                if (origin == NULL || names[n++].id == NULL) {
                    return false;
                }
            }
        }
    }
    return true;
}

/* Fails when two identifiers generated for the file (by us or by protobuf-c) would be
 * equal, e.g. methods "GetFoo" and "get_foo", or a method named "RpcMethods". */
static int check_collisions(cg_file *f, char *err, size_t errlen) {
    size_t total = 0;
    for (size_t s = 0; s < f->n_services; s++) {
        total += N_SERVICE_SUFFIXES + f->services[s].n_methods * (N_METHOD_SUFFIXES + 1);
    }
    if (total == 0) {
        return SLUICE_OK;
    }
    gen_name *names = strpool_calloc(&f->pool, total, sizeof(*names));
    if (names == NULL || !list_names(f, names)) {
        return SLUICE_ENOMEM;
    }
    qsort(names, total, sizeof(*names), cmp_names);
    for (size_t i = 1; i < total; i++) {
        if (strcmp(names[i - 1].id, names[i].id) == 0) {
            bool same = strcmp(names[i - 1].origin, names[i].origin) == 0;
            snprintf(err, errlen,
                     "%s: %s%s%s gives the C name %s twice (with protobuf-c's names); "
                     "rename the method",
                     f->proto_name, names[i - 1].origin, same ? "" : " and ",
                     same ? "" : names[i].origin, names[i].id);
            return SLUICE_EINVAL;
        }
    }
    return SLUICE_OK;
}

int model_build(const request *req, const file_proto *file, cg_file *out, char *err,
                size_t errlen) {
    memset(out, 0, sizeof(*out));
    strpool_init(&out->pool);
    out->proto_name = strpool_strdup(&out->pool, file->name != NULL ? file->name : "");
    out->base = strpool_keep(&out->pool, names_strip_proto(file->name != NULL ? file->name : ""));
    if (out->proto_name == NULL || out->base == NULL) {
        model_cleanup(out);
        return SLUICE_ENOMEM;
    }
    file_opts opts;
    int rc = read_file_opts(file, &out->pool, &opts, err, errlen);
    if (rc == SLUICE_OK && !opts.no_generate && file->n_service > 0) {
        out->services = strpool_calloc(&out->pool, file->n_service, sizeof(cg_service));
        rc = out->services != NULL ? SLUICE_OK : SLUICE_ENOMEM;
        out->n_services = out->services != NULL ? file->n_service : 0;
        for (size_t si = 0; rc == SLUICE_OK && si < out->n_services; si++) {
            rc = build_service(req, file, si, &opts, out, err, errlen);
        }
    }
    if (rc == SLUICE_OK) {
        rc = check_collisions(out, err, errlen);
    }
    if (rc != SLUICE_OK) {
        model_cleanup(out);
    }
    return rc;
}

void model_cleanup(cg_file *f) {
    strpool_cleanup(&f->pool);
    memset(f, 0, sizeof(*f));
}
