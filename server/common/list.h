/*
 * list.h - intrusive circular doubly linked lists (header only).
 *
 * An object embeds a dlink per list it can be on; a dlist is a sentinel link. O(1) push,
 * and remove. Not thread safe: each list belongs to one thread or is
 * protected by its owner's lock.
 */
#ifndef SLUICE_COMMON_LIST_H
#define SLUICE_COMMON_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct dlink {
    struct dlink *prev, *next;
} dlink;

typedef struct dlist {
    dlink head;
    size_t len;
} dlist;

#define DLIST_ENTRY(link, type, member) ((type *)((char *)(link)-offsetof(type, member)))

static inline void dlist_init(dlist *l) {
    l->head.prev = l->head.next = &l->head;
    l->len = 0;
}

/* A link that is on no list has NULL pointers. */
static inline void dlink_init(dlink *n) {
    n->prev = n->next = NULL;
}

static inline bool dlist_empty(const dlist *l) {
    return l->len == 0;
}

static inline void dlist_insert_after_(dlist *l, dlink *pos, dlink *n) {
    n->prev = pos;
    n->next = pos->next;
    pos->next->prev = n;
    pos->next = n;
    l->len++;
}

static inline void dlist_push_back(dlist *l, dlink *n) {
    dlist_insert_after_(l, l->head.prev, n);
}

static inline void dlist_push_front(dlist *l, dlink *n) {
    dlist_insert_after_(l, &l->head, n);
}

static inline void dlist_remove(dlist *l, dlink *n) {
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
    l->len--;
}

/* First link, NULL when empty. */
static inline dlink *dlist_front(const dlist *l) {
    return l->len ? l->head.next : NULL;
}

static inline dlink *dlist_pop_front(dlist *l) {
    dlink *n = dlist_front(l);
    if (n)
        dlist_remove(l, n);
    return n;
}

/* Last link, NULL when empty. */
static inline dlink *dlist_pop_back(dlist *l) {
    dlink *n = l->len ? l->head.prev : NULL;
    if (n)
        dlist_remove(l, n);
    return n;
}

#endif
