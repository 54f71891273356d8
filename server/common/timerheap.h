/*
 * timerheap.h - a binary min-heap of intrusive timer nodes (pure).
 *
 * Objects that can be scheduled embed a theap_node; the heap stores pointers to nodes
 * and keeps each node's index, so cancelling or moving a timer is O(log n). The heap
 * grows as needed (it is bounded by the number of objects that embed nodes, which the
 * dispatcher bounds). Not thread safe: owned by the dispatcher thread.
 */
#ifndef SLUICE_COMMON_TIMERHEAP_H
#define SLUICE_COMMON_TIMERHEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define THEAP_NONE ((size_t)-1)

typedef struct theap_node {
    uint64_t when_us;
    size_t idx; /* position in the heap, THEAP_NONE when not scheduled */
    int kind;   /* what the embedding object is (the dispatcher's enum) */
} theap_node;

typedef struct theap {
    theap_node **nodes;
    size_t n, cap;
} theap;

void theap_init(theap *h);
void theap_cleanup(theap *h);
/* Initialises a node as not scheduled. */
void theap_node_init(theap_node *node, int kind);
static inline bool theap_scheduled(const theap_node *node) {
    return node->idx != THEAP_NONE;
}
/* Schedules (or reschedules) a node at when_us. */
void theap_schedule(theap *h, theap_node *node, uint64_t when_us);
/* Schedules at when_us unless already scheduled earlier. */
void theap_schedule_earliest(theap *h, theap_node *node, uint64_t when_us);
/* Removes a node if scheduled. */
void theap_cancel(theap *h, theap_node *node);
/* The earliest node, NULL when empty. */
theap_node *theap_peek(const theap *h);
/* Removes and returns the earliest node if it is due (when_us <= now_us), else NULL. */
theap_node *theap_pop_due(theap *h, uint64_t now_us);

#endif
