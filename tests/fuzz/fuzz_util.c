/* Helpers shared by the fuzz targets (see fuzz.h). */
#include "fuzz.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void fuzz_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

char *fuzz_strndup(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

char **fuzz_split(const uint8_t *data, size_t size, char sep, size_t max, size_t *n_out) {
    char **out = calloc(max ? max : 1, sizeof *out);
    if (!out)
        abort();
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= size && n < max; i++) {
        if (i == size || (data[i] == (uint8_t)sep && n + 1 < max)) {
            out[n++] = fuzz_strndup(data + start, i - start);
            start = i + 1;
        }
    }
    *n_out = n;
    return out;
}

void fuzz_pieces_free(char **pieces, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(pieces[i]);
    free(pieces);
}

int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t pathlen) {
    int fd = memfd_create("fuzz", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        if (n <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)n;
    }
    snprintf(path, pathlen, "/proc/self/fd/%d", fd);
    return fd;
}
