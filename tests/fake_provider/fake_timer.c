/*
 * fake_timer.c - deadlines served by one thread (see fake_timer.h), on the project's
 * timer heap (server/common/timerheap.h).
 *
 * The thread sleeps on a condition variable bound to CLOCK_MONOTONIC until the earliest
 * deadline or a new earlier item; firing happens under the lock (fire is a flag write plus
 * MHD_resume_connection, which only signals the worker). The heap holds at most one entry
 * per suspended connection.
 */
#include "tests/fake_provider/fake_timer.h"

#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "server/common/timerheap.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct timer_entry {
    theap_node node; /* first: the heap hands back node pointers */
    void *item;
} timer_entry;

struct fake_timer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    fake_timer_fire_fn fire;
    theap heap; /* of timer_entry, deadlines in µs */
    bool stopping;
    bool exit;
};

/* Pops the earliest entry (due by `now_us`) and fires it. Caller holds mu. */
static bool fire_due(fake_timer *t, uint64_t now_us, bool stopping) {
    timer_entry *e = (timer_entry *)theap_pop_due(&t->heap, now_us);
    if (!e)
        return false;
    t->fire(e->item, stopping);
    free(e);
    return true;
}

static void *timer_main(void *arg) {
    fake_timer *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->exit) {
        theap_node *next = theap_peek(&t->heap);
        if (!next) {
            pthread_cond_wait(&t->cv, &t->mu);
            continue;
        }
        uint64_t now = clock_now_us();
        if (fire_due(t, now, false))
            continue;
        uint64_t wait_ms = (next->when_us - now + 999) / 1000;
        clock_cond_wait_ms(&t->cv, &t->mu, wait_ms > 3600000 ? 3600000 : wait_ms);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

fake_timer *fake_timer_new(fake_timer_fire_fn fire) {
    fake_timer *t = XNEW(fake_timer);
    t->fire = fire;
    theap_init(&t->heap);
    pthread_mutex_init(&t->mu, NULL);
    clock_cond_init(&t->cv);
    if (pthread_create(&t->thread, NULL, timer_main, t) != 0) {
        pthread_cond_destroy(&t->cv);
        pthread_mutex_destroy(&t->mu);
        theap_cleanup(&t->heap);
        free(t);
        return NULL;
    }
    return t;
}

bool fake_timer_schedule(fake_timer *t, uint64_t due_ms, void *item,
                         fake_timer_prepare_fn prepare) {
    pthread_mutex_lock(&t->mu);
    bool ok = !t->stopping;
    if (ok) {
        prepare(item);
        timer_entry *e = XNEW(timer_entry);
        e->item = item;
        theap_node_init(&e->node, 0);
        theap_schedule(&t->heap, &e->node, due_ms * 1000);
        if (theap_peek(&t->heap) == &e->node)
            pthread_cond_signal(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
    return ok;
}

void fake_timer_stop(fake_timer *t) {
    pthread_mutex_lock(&t->mu);
    t->stopping = true;
    while (fire_due(t, UINT64_MAX, true))
        ;
    pthread_mutex_unlock(&t->mu);
}

void fake_timer_free(fake_timer *t) {
    if (!t)
        return;
    fake_timer_stop(t);
    pthread_mutex_lock(&t->mu);
    t->exit = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    theap_cleanup(&t->heap);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
