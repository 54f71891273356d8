/*
 * emit.c - the text of the generated files. See emit.h for what is emitted; the stub
 * shapes are in emit_*_stubs, one function per call kind. Every helper appends to a
 * `text` whose failure flag is sticky, so nothing here checks individual appends; heap
 * strings built on the way are handed to emit_stub, which frees them.
 */
#include "client/codegen/emit.h"

#include "client/codegen/names.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_WIDTH 100

static const char *call_kind(const cg_method *m) {
    if (m->client_streaming && m->server_streaming) {
        return "bidi streaming";
    }
    if (m->client_streaming) {
        return "client streaming";
    }
    return m->server_streaming ? "server streaming" : "unary";
}

/* printf into a fresh heap string; NULL when out of memory. */
__attribute__((format(printf, 1, 0))) static char *vfmt(const char *f, va_list ap) {
    char *s = NULL;
    return vasprintf(&s, f, ap) < 0 ? NULL : s;
}

__attribute__((format(printf, 1, 2))) static char *fmt(const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    char *s = vfmt(f, ap);
    va_end(ap);
    return s;
}

static void emit_spaces(text *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        text_appendc(out, ' ');
    }
}

/* One line of a .proto comment, made safe inside a C block comment: no comment
 * delimiters, no trigraphs, no line splice. */
static void emit_comment_line(text *out, const char *line, size_t len) {
    while (len > 0 && strchr(" \t\r\\", line[len - 1]) != NULL) {
        len--;
    }
    text_append(out, len > 0 && line[0] != ' ' ? " * " : " *");
    for (size_t i = 0; i < len; i++) {
        char c = line[i];
        char next = i + 1 < len ? line[i + 1] : '\0';
        text_appendc(out, c);
        if ((c == '*' && next == '/') || (c == '/' && next == '*') || (c == '?' && next == '?')) {
            text_appendc(out, ' ');
        }
    }
    text_appendc(out, '\n');
}

/* The lines of a .proto leading comment as " * ..." lines, without blank lines at either
 * end. NULL emits nothing. */
static void emit_comment_body(text *out, const char *comment) {
    if (comment == NULL) {
        return;
    }
    while (*comment == '\n' || *comment == '\r') {
        comment++;
    }
    size_t total = strlen(comment);
    while (total > 0 && strchr(" \t\r\n", comment[total - 1]) != NULL) {
        total--;
    }
    for (const char *p = comment, *end = comment + total; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        emit_comment_line(out, p, len);
        p += len + 1;
    }
}

/* A "/ * ==== title ====...=" line filled to the line width, then the comment's lines
 * (or nothing) and the comment's end. */
static void emit_banner(text *out, char fill, const char *title, const char *comment) {
    size_t start = out->len;
    size_t width = comment != NULL ? LINE_WIDTH : LINE_WIDTH - 3;
    text_printf(out, "/* %c%c%c%c %s ", fill, fill, fill, fill, title);
    while (!out->failed && out->len - start < width) {
        text_appendc(out, fill);
    }
    if (comment == NULL) {
        text_append(out, " */\n");
        return;
    }
    text_appendc(out, '\n');
    emit_comment_body(out, comment);
    text_append(out, " */\n");
}

/* Our own prose (no newlines, no comment delimiters) as a block comment wrapped at the
 * line width. */
static void emit_doc(text *out, const char *doc) {
    size_t col = 2;
    text_append(out, "/*");
    for (const char *p = doc; *p;) {
        while (*p == ' ') {
            p++;
        }
        size_t len = strcspn(p, " ");
        if (len == 0) {
            break;
        }
        if (col > 2 && col + 1 + len > LINE_WIDTH - 3) {
            text_append(out, "\n *");
            col = 2;
        }
        text_appendc(out, ' ');
        text_appendn(out, p, len);
        col += 1 + len;
        p += len;
    }
    text_append(out, " */\n");
}

/* "int name(params)tail" on one line when it fits, else one parameter per line aligned
 * after the parenthesis. params is "a, b, c" (no ", " inside a parameter). */
static void emit_signature(text *out, const char *name, const char *params, const char *tail) {
    size_t one_line = strlen("int ") + strlen(name) + strlen(params) + 2 + strlen(tail);
    text_printf(out, "int %s(", name);
    if (one_line > LINE_WIDTH) {
        size_t indent = strlen("int ") + strlen(name) + 1;
        const char *sep;
        while ((sep = strstr(params, ", ")) != NULL) {
            text_appendn(out, params, (size_t)(sep - params));
            text_append(out, ",\n");
            emit_spaces(out, indent);
            params = sep + 2;
        }
    }
    text_printf(out, "%s)%s\n", params, tail);
}

/* What one method's stubs are emitted for: its declarations or its definitions. */
typedef struct stub_ctx {
    const cg_service *svc;
    const cg_method *m;
    const char *method_ref; /* "<svc>__<method>__method" */
    text *out;
    bool define;
} stub_ctx;

/* Emits one stub "<svc>__<method>__<suffix>": a comment and the prototype, or the
 * definition with `body`. Takes ownership of doc, params and body (heap strings; a NULL
 * one means an allocation failed). */
static void emit_stub(const stub_ctx *c, const char *suffix, char *doc, char *params, char *body) {
    char *name = fmt("%s__%s__%s", c->svc->lower, c->m->snake, suffix);
    char *kind_doc = doc != NULL ? fmt("%s (%s): %s", c->m->name, call_kind(c->m), doc) : NULL;
    if (name == NULL || kind_doc == NULL || params == NULL || body == NULL) {
        c->out->failed = true;
    } else if (c->define) {
        emit_signature(c->out, name, params, " {");
        text_printf(c->out, "%s}\n\n", body);
    } else {
        emit_doc(c->out, kind_doc);
        emit_signature(c->out, name, params, ";");
        text_appendc(c->out, '\n');
    }
    free(name);
    free(kind_doc);
    free(doc);
    free(params);
    free(body);
}

/* Body of a stub that checks `call` belongs to this method, then runs `op`, which may
 * store a message in `m` that is handed back as `*out_name` cast to `type`. */
static char *body_call_op(const stub_ctx *c, const char *op, const char *out_name) {
    if (out_name == NULL) {
        return fmt("    int rc = sluice_rpc_call_check(call, &%s);\n"
                   "    if (rc == SLUICE_OK) {\n"
                   "        rc = %s;\n"
                   "    }\n"
                   "    return rc;\n",
                   c->method_ref, op);
    }
    return fmt("    ProtobufCMessage *m = NULL;\n"
               "    int rc = sluice_rpc_call_check(call, &%s);\n"
               "    if (rc == SLUICE_OK) {\n"
               "        rc = %s;\n"
               "    }\n"
               "    if (%s != NULL) {\n"
               "        *%s = (%s *)m;\n"
               "    }\n"
               "    return rc;\n",
               c->method_ref, op, out_name, out_name, c->m->out_type);
}

static void emit_unary_stubs(const stub_ctx *c) {
    const cg_method *m = c->m;
    emit_stub(c, "rpc",
              fmt("calls and waits (sluice_rpc_unary). On SLUICE_OK *resp is the response; "
                  "free it with %s__free_unpacked(*resp, NULL). status (may be NULL) "
                  "receives the gRPC status.",
                  m->out_lower),
              fmt("sluice_rpc_channel *ch, const %s *req, %s **resp, "
                  "const sluice_rpc_call_opts *opts, sluice_rpc_status *status",
                  m->in_type, m->out_type),
              fmt("    ProtobufCMessage *m = NULL;\n"
                  "    int rc = sluice_rpc_unary(ch, &%s,\n"
                  "                              (const ProtobufCMessage *)req,\n"
                  "                              resp != NULL ? &m : NULL, opts, status);\n"
                  "    if (resp != NULL) {\n"
                  "        *resp = (%s *)m;\n"
                  "    }\n"
                  "    return rc;\n",
                  c->method_ref, m->out_type));
    emit_stub(c, "async",
              fmt("starts the call on an async queue without waiting "
                  "(sluice_rpc_async_unary); sluice_rpc_async_next returns `tag` with its "
                  "%s response.",
                  m->out_type),
              fmt("sluice_rpc_async *a, sluice_rpc_channel *ch, const %s *req, "
                  "const sluice_rpc_call_opts *opts, void *tag",
                  m->in_type),
              fmt("    return sluice_rpc_async_unary(a, ch, &%s,\n"
                  "                                  (const ProtobufCMessage *)req, opts, tag);\n",
                  c->method_ref));
}

static void emit_start_stub(const stub_ctx *c, const char *doc) {
    const cg_method *m = c->m;
    bool with_req = !m->client_streaming;
    emit_stub(c, "start", fmt("%s", doc),
              with_req ? fmt("sluice_rpc_channel *ch, const %s *req, "
                             "const sluice_rpc_call_opts *opts, sluice_rpc_call **out",
                             m->in_type)
                       : fmt("sluice_rpc_channel *ch, const sluice_rpc_call_opts *opts, "
                             "sluice_rpc_call **out"),
              fmt("    return sluice_rpc_call_start(ch, &%s,\n"
                  "                                 %s, opts, out);\n",
                  c->method_ref, with_req ? "(const ProtobufCMessage *)req" : "NULL"));
}

static void emit_read_stub(const stub_ctx *c) {
    emit_stub(c, "read",
              fmt("waits for the next message (sluice_rpc_call_read): SLUICE_OK with *msg "
                  "(free it with %s__free_unpacked(*msg, NULL)), SLUICE_EEOF at the end of "
                  "the stream (then sluice_rpc_call_finish).",
                  c->m->out_lower),
              fmt("sluice_rpc_call *call, %s **msg", c->m->out_type),
              body_call_op(c, "sluice_rpc_call_read(call, msg != NULL ? &m : NULL)", "msg"));
}

static void emit_write_stub(const stub_ctx *c, const char *suffix, const char *doc,
                            const char *op) {
    emit_stub(c, suffix, fmt("%s", doc), fmt("sluice_rpc_call *call, const %s *msg", c->m->in_type),
              body_call_op(c, op, NULL));
}

static void emit_server_streaming_stubs(const stub_ctx *c) {
    emit_start_stub(c, "sends req, half-closes and starts the stream (sluice_rpc_call_start). "
                       "Read with the _read stub, then sluice_rpc_call_finish and "
                       "sluice_rpc_call_free.");
    emit_read_stub(c);
}

static void emit_client_streaming_stubs(const stub_ctx *c) {
    emit_start_stub(c, "starts the call (sluice_rpc_call_start). Send with the _write stub, "
                       "end with the _finish stub, then sluice_rpc_call_free.");
    emit_write_stub(c, "write",
                    "sends one message and waits until it is written "
                    "(sluice_rpc_call_write).",
                    "sluice_rpc_call_write(call, (const ProtobufCMessage *)msg)");
    emit_stub(
        c, "finish",
        fmt("half-closes, then waits for the response and the status "
            "(sluice_rpc_call_finish). On SLUICE_OK *resp is the response; free it with "
            "%s__free_unpacked(*resp, NULL).",
            c->m->out_lower),
        fmt("sluice_rpc_call *call, %s **resp, sluice_rpc_status *status", c->m->out_type),
        body_call_op(c, "sluice_rpc_call_finish(call, resp != NULL ? &m : NULL, status)", "resp"));
}

static void emit_bidi_stubs(const stub_ctx *c) {
    emit_start_stub(c, "starts the call (sluice_rpc_call_start). Keep a read pending while "
                       "writing (sluice_rpc_call_start_read, the _start_write stub, "
                       "sluice_rpc_call_next), then sluice_rpc_call_close_send, "
                       "sluice_rpc_call_finish and sluice_rpc_call_free.");
    emit_write_stub(c, "write",
                    "sends one message and waits until it is written "
                    "(sluice_rpc_call_write).",
                    "sluice_rpc_call_write(call, (const ProtobufCMessage *)msg)");
    emit_write_stub(c, "start_write",
                    "starts sending one message without waiting "
                    "(sluice_rpc_call_start_write); sluice_rpc_call_next "
                    "reports its completion.",
                    "sluice_rpc_call_start_write(call, (const ProtobufCMessage *)msg)");
    emit_read_stub(c);
}

static void emit_method_stubs(const cg_service *svc, const cg_method *m, text *out, bool define) {
    char *ref = fmt("%s__%s__method", svc->lower, m->snake);
    if (ref == NULL) {
        out->failed = true;
        return;
    }
    stub_ctx c = {.svc = svc, .m = m, .method_ref = ref, .out = out, .define = define};
    if (m->client_streaming && m->server_streaming) {
        emit_bidi_stubs(&c);
    } else if (m->client_streaming) {
        emit_client_streaming_stubs(&c);
    } else if (m->server_streaming) {
        emit_server_streaming_stubs(&c);
    } else {
        emit_unary_stubs(&c);
    }
    free(ref);
}

/* emit_doc of a formatted text; an allocation failure marks out failed. */
__attribute__((format(printf, 2, 3))) static void emit_docf(text *out, const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    char *doc = vfmt(f, ap);
    va_end(ap);
    if (doc == NULL) {
        out->failed = true;
        return;
    }
    emit_doc(out, doc);
    free(doc);
}

static void emit_method_decls(const cg_service *svc, const cg_method *m, text *out) {
    char *title = fmt("%s (%s)", m->name, call_kind(m));
    emit_banner(out, '-', title != NULL ? title : m->name, m->comment);
    free(title);
    emit_docf(out, "%s (%s): its entry in the method table, %s.", m->name, call_kind(m), m->path);
    text_printf(out, "#define %s__%s__method \\\n    (%s__rpc_methods[%s__RPC_%s])\n\n", svc->lower,
                m->snake, svc->lower, svc->upper, m->upper);
    emit_method_stubs(svc, m, out, false);
}

static void emit_service_decls(const cg_service *svc, text *out) {
    emit_banner(out, '=', svc->full_name, svc->comment);
    text_append(out, "\n");
    if (svc->n_methods > 0) {
        emit_docf(out, "The methods of %s in declaration order (index: the %s__RPC_* constants).",
                  svc->full_name, svc->upper);
        text_printf(out, "extern const sluice_rpc_method %s__rpc_methods[%zu];\n", svc->lower,
                    svc->n_methods);
    }
    emit_docf(out,
              "%s: its name and method table (sluice_rpc_service_find, server "
              "registration).",
              svc->full_name);
    text_printf(out, "extern const sluice_rpc_service %s__rpc_service;\n\n", svc->lower);
    if (svc->n_methods == 0) {
        return;
    }
    emit_docf(out, "Positions in %s__rpc_methods.", svc->lower);
    text_append(out, "enum {\n");
    for (size_t i = 0; i < svc->n_methods; i++) {
        text_printf(out, "    %s__RPC_%s = %zu,\n", svc->upper, svc->methods[i].upper, i);
    }
    text_append(out, "};\n\n");
    for (size_t i = 0; i < svc->n_methods; i++) {
        emit_method_decls(svc, &svc->methods[i], out);
    }
}

void emit_header(const cg_file *f, text *out) {
    char *guard = names_guard(f->proto_name);
    if (guard == NULL) {
        out->failed = true;
        return;
    }
    text_printf(out,
                "/* Generated by protoc-gen-sluice from %s. DO NOT EDIT.\n"
                " *\n"
                " * Method tables and typed client stubs over client/rpc/rpc.h. Message types,\n"
                " * descriptors and free functions are protobuf-c's (%s.pb-c.h). */\n"
                "#ifndef %s\n#define %s\n\n"
                "#include \"client/rpc/rpc.h\"\n"
                "#include \"sluice/status.h\"\n"
                "#include \"%s.pb-c.h\"\n\n"
                "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n",
                f->proto_name, f->base, guard, guard, f->base);
    for (size_t s = 0; s < f->n_services; s++) {
        emit_service_decls(&f->services[s], out);
    }
    text_printf(out, "#ifdef __cplusplus\n}\n#endif\n\n#endif /* %s */\n", guard);
    free(guard);
}

/* The C string literal of s. */
static void emit_c_string(text *out, const char *s) {
    text_appendc(out, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            text_printf(out, "\\%c", *p);
        } else if (*p < 0x20 || *p >= 0x7f || *p == '?') {
            text_printf(out, "\\%03o", (unsigned)*p); /* '?': no trigraphs */
        } else {
            text_appendc(out, (char)*p);
        }
    }
    text_appendc(out, '"');
}

static void emit_service_tables(const cg_service *svc, text *out) {
    if (svc->n_methods > 0) {
        text_printf(out, "const sluice_rpc_method %s__rpc_methods[%zu] = {\n", svc->lower,
                    svc->n_methods);
    }
    for (size_t i = 0; i < svc->n_methods; i++) {
        const cg_method *m = &svc->methods[i];
        text_append(out, "    {\n        .path = ");
        emit_c_string(out, m->path);
        text_append(out, ",\n        .name = ");
        emit_c_string(out, m->name);
        text_printf(out,
                    ",\n        .input = &%s__descriptor,\n"
                    "        .output = &%s__descriptor,\n"
                    "        .client_streaming = %s,\n"
                    "        .server_streaming = %s,\n    },\n",
                    m->in_lower, m->out_lower, m->client_streaming ? "true" : "false",
                    m->server_streaming ? "true" : "false");
    }
    if (svc->n_methods > 0) {
        text_append(out, "};\n\n");
    }
    text_printf(out, "const sluice_rpc_service %s__rpc_service = {\n    .name = ", svc->lower);
    emit_c_string(out, svc->full_name);
    if (svc->n_methods > 0) {
        text_printf(out, ",\n    .n_methods = %zu,\n    .methods = %s__rpc_methods,\n};\n\n",
                    svc->n_methods, svc->lower);
    } else {
        text_append(out, ",\n    .n_methods = 0,\n    .methods = NULL,\n};\n\n");
    }
}

void emit_source(const cg_file *f, text *out) {
    text_printf(out,
                "/* Generated by protoc-gen-sluice from %s. DO NOT EDIT. */\n"
                "#include \"%s.sluice.h\"\n"
                "#include \"%s.pb-c.h\"\n\n"
                "#include <stdbool.h>\n#include <stddef.h>\n\n",
                f->proto_name, f->base, f->base);
    for (size_t s = 0; s < f->n_services; s++) {
        const cg_service *svc = &f->services[s];
        emit_service_tables(svc, out);
        for (size_t i = 0; i < svc->n_methods; i++) {
            emit_method_stubs(svc, &svc->methods[i], out, true);
        }
    }
}
