/*
 * fake_timer.c - a min-heap of deadlines served by one thread (see fake_timer.h).
 *
 * The thread sleeps on a condition variable bound to CLOCK_MONOTONIC until the earliest
 * deadline or a new earlier item; firing happens under the lock (fire is a flag write plus
 * MHD_resume_connection, which only signals the worker). The heap grows by doubling and
 * holds at most one entry per suspended connection.
 */
#include "tests/fake_provider/fake_timer.h"

#include "server/common/alloc.h"
#include "server/common/clock.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

typedef struct timer_entry {
    uint64_t due_ms;
    uint64_t seq; /* FIFO among equal deadlines */
    void *item;
} timer_entry;

struct fake_timer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    fake_timer_fire_fn fire;
    timer_entry *heap;
    size_t n, cap;
    uint64_t seq;
    bool stopping;
    bool exit;
};

static bool before(const timer_entry *a, const timer_entry *b) {
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static void swap(timer_entry *a, timer_entry *b) {
    timer_entry t = *a;
    *a = *b;
    *b = t;
}

static void heap_push(fake_timer *t, timer_entry e) {
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 256;
        t->heap = xrealloc(t->heap, t->cap * sizeof *t->heap);
    }
    size_t i = t->n++;
    t->heap[i] = e;
    while (i > 0 && before(&t->heap[i], &t->heap[(i - 1) / 2])) {
        swap(&t->heap[i], &t->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
}

static timer_entry heap_pop(fake_timer *t) {
    timer_entry top = t->heap[0];
    t->heap[0] = t->heap[--t->n];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < t->n && before(&t->heap[l], &t->heap[m]))
            m = l;
        if (r < t->n && before(&t->heap[r], &t->heap[m]))
            m = r;
        if (m == i)
            break;
        swap(&t->heap[i], &t->heap[m]);
        i = m;
    }
    return top;
}

static void wait_until(fake_timer *t, uint64_t due_ms) {
    uint64_t now = clock_now_ms();
    uint64_t delta = due_ms > now ? due_ms - now : 0;
    clock_cond_wait_ms(&t->cv, &t->mu, delta > 3600000 ? 3600000 : delta);
}

static void *timer_main(void *arg) {
    fake_timer *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->exit) {
        if (t->n == 0) {
            pthread_cond_wait(&t->cv, &t->mu);
            continue;
        }
        uint64_t now = clock_now_ms();
        if (t->heap[0].due_ms > now) {
            wait_until(t, t->heap[0].due_ms);
            continue;
        }
        timer_entry e = heap_pop(t);
        t->fire(e.item, false);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

fake_timer *fake_timer_new(fake_timer_fire_fn fire) {
    fake_timer *t = XNEW(fake_timer);
    t->fire = fire;
    pthread_mutex_init(&t->mu, NULL);
    clock_cond_init(&t->cv);
    if (pthread_create(&t->thread, NULL, timer_main, t) != 0) {
        pthread_cond_destroy(&t->cv);
        pthread_mutex_destroy(&t->mu);
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
        heap_push(t, (timer_entry){due_ms, t->seq++, item});
        if (t->heap[0].item == item)
            pthread_cond_signal(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
    return ok;
}

void fake_timer_stop(fake_timer *t) {
    pthread_mutex_lock(&t->mu);
    t->stopping = true;
    while (t->n)
        t->fire(heap_pop(t).item, true);
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
    free(t->heap);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
