/*
 * The timers thread: a min-heap of pending entries (server/common/timerheap.h), a map
 * from id to entry for cancellation, one mutex and one condition variable. The thread
 * sleeps until the earliest entry is due (or a new earlier one arrives), pops it and runs
 * its callback with the mutex released.
 */
#include "timers.h"

#include "alloc.h"
#include "clock.h"
#include "server/common/timerheap.h"
#include "u64map.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

typedef struct entry {
    theap_node node; /* first member: the heap hands back this pointer */
    uint64_t id;
    timer_fn fn;
    void *arg;
} entry;

struct timers {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    theap heap;
    u64map by_id;
    uint64_t next_id;
    bool stop;
};

/* Sleeps until the earliest entry is due, or, with none, until timers_add or timers_free
 * signals (an idle thread never wakes by itself). */
static void wait_for_next(timers *t) {
    theap_node *next = theap_peek(&t->heap);
    if (!next) {
        pthread_cond_wait(&t->cv, &t->mu);
        return;
    }
    uint64_t now = clock_now_ms();
    clock_cond_wait_ms(&t->cv, &t->mu, next->when_us > now ? next->when_us - now : 0);
}

static void *run(void *arg) {
    timers *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        theap_node *n = theap_pop_due(&t->heap, clock_now_ms());
        if (!n) {
            wait_for_next(t);
            continue;
        }
        entry *e = (entry *)n;
        u64map_del(&t->by_id, e->id);
        pthread_mutex_unlock(&t->mu);
        e->fn(e->arg);
        free(e);
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

timers *timers_new(void) {
    timers *t = XNEW(timers);
    pthread_mutex_init(&t->mu, NULL);
    clock_cond_init(&t->cv);
    theap_init(&t->heap);
    u64map_init(&t->by_id);
    t->next_id = 1;
    if (pthread_create(&t->thread, NULL, run, t) != 0) {
        theap_cleanup(&t->heap);
        u64map_cleanup(&t->by_id);
        free(t);
        return NULL;
    }
    return t;
}

void timers_free(timers *t) {
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    for (size_t i = 0; i < t->by_id.cap; i++)
        free(t->by_id.vals[i]);
    theap_cleanup(&t->heap);
    u64map_cleanup(&t->by_id);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
}

uint64_t timers_add(timers *t, uint64_t delay_ms, timer_fn fn, void *arg) {
    entry *e = XNEW(entry);
    theap_node_init(&e->node, 0);
    e->fn = fn;
    e->arg = arg;
    pthread_mutex_lock(&t->mu);
    e->id = t->next_id++;
    u64map_put(&t->by_id, e->id, e);
    /* The heap field is named when_us but holds milliseconds here. */
    theap_schedule(&t->heap, &e->node, clock_now_ms() + delay_ms);
    if (theap_peek(&t->heap) == &e->node)
        pthread_cond_signal(&t->cv);
    uint64_t id = e->id;
    pthread_mutex_unlock(&t->mu);
    return id;
}

bool timers_cancel(timers *t, uint64_t id) {
    pthread_mutex_lock(&t->mu);
    entry *e = u64map_del(&t->by_id, id);
    if (e)
        theap_cancel(&t->heap, &e->node);
    pthread_mutex_unlock(&t->mu);
    free(e);
    return e != NULL;
}
