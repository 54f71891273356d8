#include "buf.h"

#include "alloc.h"
#include "sluice/status.h"

#include <stdlib.h>
#include <string.h>

void buf_init(buf *b, size_t max) {
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void buf_cleanup(buf *b) {
    free(b->data);
    buf_init(b, b->max);
}

void buf_reset(buf *b) {
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

int buf_append(buf *b, const void *p, size_t n) {
    if (n > b->max || b->len > b->max - n)
        return SLUICE_ELIMIT;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int buf_append_str(buf *b, const char *s) {
    return buf_append(b, s, strlen(s));
}

char *buf_steal(buf *b, size_t *len) {
    char *d = b->data ? b->data : xstrdup("");
    if (len)
        *len = b->len;
    buf_init(b, b->max);
    return d;
}
