/*
 * u64map.h - a hash map from uint64_t keys to pointers (open addressing, linear probing,
 * backward-shift deletion). Grows by doubling at 50% load and never shrinks below its
 * initial size. Not thread safe: owned by one thread or guarded by its owner's lock.
 */
#ifndef SLUICE_COMMON_U64MAP_H
#define SLUICE_COMMON_U64MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct u64map {
    uint64_t *keys;
    void **vals; /* NULL = empty slot (values may not be NULL) */
    size_t cap;  /* power of two */
    size_t len;
} u64map;

void u64map_init(u64map *m);
void u64map_cleanup(u64map *m);
/* Inserts or replaces; val must not be NULL. */
void u64map_put(u64map *m, uint64_t key, void *val);
/* The value for key, or NULL. */
void *u64map_get(const u64map *m, uint64_t key);
/* Removes key; returns its value or NULL. */
void *u64map_del(u64map *m, uint64_t key);

/* Iteration: for (size_t i = 0; i < m->cap; i++) if (m->vals[i]) ... (no changes while
 * iterating). */

#endif
