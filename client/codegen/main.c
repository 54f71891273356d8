/*
 * protoc-gen-sluice: protoc plugin that emits sluice's method tables and typed client
 * stubs (see codegen.h). protoc runs it with a CodeGeneratorRequest on stdin and reads the
 * CodeGeneratorResponse from stdout; this file only moves those bytes.
 *
 *   protoc --plugin=protoc-gen-sluice=<path> --sluice_out=<dir> x.proto
 */
#include "client/codegen/codegen.h"
#include "sluice/status.h"

#include <stdio.h>
#include <stdlib.h>

/* Reads all of stdin, up to CODEGEN_MAX_REQUEST_BYTES + 1 bytes (the excess makes
 * codegen_run report the size). NULL when out of memory or on a read error. */
static uint8_t *read_stdin(size_t *len) {
    size_t cap = 1 << 16;
    size_t n = 0;
    uint8_t *buf = malloc(cap);
    while (buf != NULL) {
        n += fread(buf + n, 1, cap - n, stdin);
        if (n < cap || n > CODEGEN_MAX_REQUEST_BYTES) {
            break;
        }
        uint8_t *bigger = realloc(buf, cap * 2);
        if (bigger == NULL) {
            free(buf);
            return NULL;
        }
        buf = bigger;
        cap *= 2;
    }
    if (buf != NULL && ferror(stdin)) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static int write_stdout(const uint8_t *buf, size_t len) {
    if (fwrite(buf, 1, len, stdout) != len || fflush(stdout) != 0) {
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}

int main(void) {
    size_t in_len = 0;
    uint8_t *in = read_stdin(&in_len);
    uint8_t *out = NULL;
    size_t out_len = 0;
    int rc = in != NULL ? codegen_run(in, in_len, &out, &out_len) : SLUICE_ENOMEM;
    free(in);
    if (rc == SLUICE_OK) {
        rc = write_stdout(out, out_len);
        free(out);
        return rc;
    }
    uint8_t buf[256];
    size_t len = codegen_error_response("protoc-gen-sluice: cannot read the request (out of "
                                        "memory or read error)",
                                        buf, sizeof(buf));
    return write_stdout(buf, len) == EXIT_SUCCESS ? EXIT_SUCCESS : EXIT_FAILURE;
}
