/*
 * text.c - see text.h. Buffers double up to TEXT_MAX_BYTES; a failure is sticky so the
 * emitters never check individual appends.
 */
#include "client/codegen/text.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void text_init(text *t) {
    memset(t, 0, sizeof(*t));
}

void text_cleanup(text *t) {
    free(t->data);
    text_init(t);
}

/* Makes room for `extra` more bytes plus the terminating NUL. */
static bool text_reserve(text *t, size_t extra) {
    if (t->failed) {
        return false;
    }
    if (extra > TEXT_MAX_BYTES - t->len) {
        t->failed = true;
        return false;
    }
    size_t need = t->len + extra + 1;
    if (need <= t->cap) {
        return true;
    }
    size_t cap = t->cap ? t->cap : 256;
    while (cap < need) {
        cap *= 2;
    }
    char *data = realloc(t->data, cap);
    if (data == NULL) {
        t->failed = true;
        return false;
    }
    t->data = data;
    t->cap = cap;
    return true;
}

void text_appendn(text *t, const char *s, size_t n) {
    if (!text_reserve(t, n)) {
        return;
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = '\0';
}

void text_append(text *t, const char *s) {
    text_appendn(t, s, strlen(s));
}

void text_appendc(text *t, char c) {
    text_appendn(t, &c, 1);
}

void text_printf(text *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !text_reserve(t, (size_t)n)) {
        t->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(t->data + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

char *text_take(text *t) {
    char *out = NULL;
    if (!t->failed) {
        out = t->data != NULL ? t->data : calloc(1, 1);
        t->data = NULL;
    }
    text_cleanup(t);
    return out;
}

void strpool_init(strpool *p) {
    memset(p, 0, sizeof(*p));
}

void strpool_cleanup(strpool *p) {
    for (size_t i = 0; i < p->n; i++) {
        free(p->items[i]);
    }
    free(p->items);
    strpool_init(p);
}

void *strpool_keep(strpool *p, void *block) {
    if (block == NULL) {
        return NULL;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        void **items =
            cap <= SIZE_MAX / sizeof(*items) ? realloc(p->items, cap * sizeof(*items)) : NULL;
        if (items == NULL) {
            free(block);
            return NULL;
        }
        p->items = items;
        p->cap = cap;
    }
    p->items[p->n++] = block;
    return block;
}

char *strpool_strdup(strpool *p, const char *s) {
    return strpool_keep(p, strdup(s));
}

void *strpool_calloc(strpool *p, size_t n, size_t size) {
    return n == 0 ? NULL : strpool_keep(p, calloc(n, size));
}
