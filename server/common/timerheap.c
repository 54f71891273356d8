/* Intrusive binary min-heap (see timerheap.h). */
#include "timerheap.h"

#include "alloc.h"

#include <stdlib.h>

void theap_init(theap *h) {
    h->nodes = NULL;
    h->n = h->cap = 0;
}

void theap_cleanup(theap *h) {
    for (size_t i = 0; i < h->n; i++)
        h->nodes[i]->idx = THEAP_NONE;
    free(h->nodes);
    theap_init(h);
}

void theap_node_init(theap_node *node, int kind) {
    node->when_us = 0;
    node->idx = THEAP_NONE;
    node->kind = kind;
}

static void place(theap *h, size_t i, theap_node *node) {
    h->nodes[i] = node;
    node->idx = i;
}

static void sift_up(theap *h, size_t i) {
    theap_node *node = h->nodes[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->nodes[parent]->when_us <= node->when_us)
            break;
        place(h, i, h->nodes[parent]);
        i = parent;
    }
    place(h, i, node);
}

static void sift_down(theap *h, size_t i) {
    theap_node *node = h->nodes[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->n)
            break;
        if (child + 1 < h->n && h->nodes[child + 1]->when_us < h->nodes[child]->when_us)
            child++;
        if (h->nodes[child]->when_us >= node->when_us)
            break;
        place(h, i, h->nodes[child]);
        i = child;
    }
    place(h, i, node);
}

void theap_schedule(theap *h, theap_node *node, uint64_t when_us) {
    if (theap_scheduled(node)) {
        uint64_t old = node->when_us;
        node->when_us = when_us;
        if (when_us < old)
            sift_up(h, node->idx);
        else
            sift_down(h, node->idx);
        return;
    }
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->nodes = xrealloc(h->nodes, h->cap * sizeof *h->nodes);
    }
    node->when_us = when_us;
    place(h, h->n++, node);
    sift_up(h, node->idx);
}

void theap_schedule_earliest(theap *h, theap_node *node, uint64_t when_us) {
    if (!theap_scheduled(node) || when_us < node->when_us)
        theap_schedule(h, node, when_us);
}

void theap_cancel(theap *h, theap_node *node) {
    if (!theap_scheduled(node))
        return;
    size_t i = node->idx;
    node->idx = THEAP_NONE;
    theap_node *last = h->nodes[--h->n];
    if (i == h->n)
        return;
    place(h, i, last);
    if (i > 0 && h->nodes[(i - 1) / 2]->when_us > last->when_us)
        sift_up(h, i);
    else
        sift_down(h, i);
}

theap_node *theap_peek(const theap *h) {
    return h->n ? h->nodes[0] : NULL;
}

theap_node *theap_pop_due(theap *h, uint64_t now_us) {
    theap_node *top = theap_peek(h);
    if (!top || top->when_us > now_us)
        return NULL;
    theap_cancel(h, top);
    return top;
}
