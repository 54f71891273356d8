/* Reading secret files (see secret.h). */
#include "secret.h"

#include "alloc.h"
#include "sluice/status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void secret_free(char *s, size_t len) {
    if (!s)
        return;
    explicit_bzero(s, len);
    free(s);
}

int secret_read_file(const char *path, size_t max, char **out, size_t *len, char *err,
                     size_t errlen) {
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return SLUICE_EIO;
    }
    size_t cap = max < 4096 ? max + 1 : 4096, n = 0;
    char *data = xmalloc(cap);
    int rc = SLUICE_OK;
    for (;;) {
        if (n == cap) { /* grow without leaving the old copy behind (no realloc) */
            size_t bigger = cap > max / 2 ? max + 1 : cap * 2;
            char *d = xmalloc(bigger);
            memcpy(d, data, n);
            secret_free(data, n);
            data = d;
            cap = bigger;
        }
        ssize_t got = read(fd, data + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            rc = SLUICE_EIO;
            break;
        }
        n += (size_t)got;
        if (n > max) {
            snprintf(err, errlen, "%s is larger than %zu bytes", path, max);
            rc = SLUICE_EINVAL;
            break;
        }
        if (got == 0)
            break;
    }
    close(fd);
    if (rc) {
        secret_free(data, n);
        return rc;
    }
    if (n == cap) { /* room for the terminator */
        char *d = xmalloc(n + 1);
        memcpy(d, data, n);
        secret_free(data, n);
        data = d;
    }
    data[n] = '\0';
    *out = data;
    *len = n;
    return SLUICE_OK;
}
