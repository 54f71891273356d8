/* Open-addressing u64 -> pointer map (see u64map.h). */
#include "u64map.h"

#include "alloc.h"

#include <stdlib.h>

static size_t slot(uint64_t key, size_t cap) {
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key & (cap - 1);
}

static void alloc_table(u64map *m, size_t cap) {
    m->keys = XNEWV(uint64_t, cap);
    m->vals = XNEWV(void *, cap);
    m->cap = cap;
    m->len = 0;
}

void u64map_init(u64map *m) {
    alloc_table(m, 64);
}

void u64map_cleanup(u64map *m) {
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->len = 0;
}

static void grow(u64map *m) {
    u64map old = *m;
    alloc_table(m, old.cap * 2);
    for (size_t i = 0; i < old.cap; i++)
        if (old.vals[i])
            u64map_put(m, old.keys[i], old.vals[i]);
    u64map_cleanup(&old);
}

void u64map_put(u64map *m, uint64_t key, void *val) {
    if ((m->len + 1) * 2 > m->cap)
        grow(m);
    size_t i = slot(key, m->cap);
    while (m->vals[i] && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    if (!m->vals[i])
        m->len++;
    m->keys[i] = key;
    m->vals[i] = val;
}

void *u64map_get(const u64map *m, uint64_t key) {
    size_t i = slot(key, m->cap);
    while (m->vals[i]) {
        if (m->keys[i] == key)
            return m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    return NULL;
}

void *u64map_del(u64map *m, uint64_t key) {
    size_t mask = m->cap - 1, i = slot(key, m->cap);
    while (m->vals[i] && m->keys[i] != key)
        i = (i + 1) & mask;
    void *val = m->vals[i];
    if (!val)
        return NULL;
    m->len--;
    /* Backward-shift: pull later entries of the probe run into the hole. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->vals[j]; j = (j + 1) & mask) {
        size_t home = slot(m->keys[j], m->cap);
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            m->keys[hole] = m->keys[j];
            m->vals[hole] = m->vals[j];
            hole = j;
        }
    }
    m->vals[hole] = NULL;
    return val;
}
