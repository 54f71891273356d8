/*
 * testsvc.c - the test service (see testsvc.h).
 *
 * Owns one timer thread: a list of (due, fn, arg) sorted by due time on the monotonic
 * clock, run one at a time. Delayed Echo replies and every Count message are sent from
 * it, so the transport is exercised the way the dispatcher thread will use it: tcall_send
 * from a thread that is not a CQ worker, racing with cancellation. Per-call jobs hold a
 * tcall reference until their last timer ran or was dropped; a Count job blocked on
 * backpressure is resumed by on_writable, or released by on_done if the call ends first.
 */
#include "tests/integration/testsvc.h"

#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "sluice/status.h"
#include "sluice_test.pb-c.h"
#include "sluice_test.sluice.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef Sluice__Test__V1__EchoRequest echo_req;
typedef Sluice__Test__V1__EchoResponse echo_resp;

/* Runs with run=true when due, or run=false when dropped at testsvc_stop. */
typedef void (*timer_fn)(void *arg, bool run);

typedef struct timer {
    uint64_t due_ms;
    timer_fn fn;
    void *arg;
    struct timer *next;
} timer;

struct testsvc {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    timer *timers;
    bool stopping;
    bool stopped;
    pthread_t thread;
    pthread_mutex_t stats_mu; /* one lock, so snapshots are consistent */
    testsvc_stats stats;
    transport_handler handlers[4];
};

/* ---- timer thread ---------------------------------------------------------------------- */

static void timer_add(testsvc *s, uint32_t delay_ms, timer_fn fn, void *arg) {
    pthread_mutex_lock(&s->mu);
    if (s->stopped) {
        pthread_mutex_unlock(&s->mu);
        fn(arg, false);
        return;
    }
    timer *tm = XNEW(timer);
    tm->due_ms = clock_now_ms() + delay_ms;
    tm->fn = fn;
    tm->arg = arg;
    timer **p = &s->timers;
    while (*p && (*p)->due_ms <= tm->due_ms)
        p = &(*p)->next;
    tm->next = *p;
    *p = tm;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

static void *timer_main(void *arg) {
    testsvc *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        timer *tm = s->timers;
        uint64_t now = clock_now_ms();
        if (!tm) {
            pthread_cond_wait(&s->cond, &s->mu);
        } else if (tm->due_ms <= now) {
            s->timers = tm->next;
            pthread_mutex_unlock(&s->mu);
            tm->fn(tm->arg, true);
            free(tm);
            pthread_mutex_lock(&s->mu);
        } else {
            clock_cond_wait_ms(&s->cond, &s->mu, tm->due_ms - now);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- shared helpers -------------------------------------------------------------------- */

/* Counts a SLUICE_ELIMIT; `blocked`: the call now waits for on_writable. */
static void note_elimit(testsvc *s, tcall *call, bool blocked) {
    size_t pending = tcall_outbound_pending(call);
    pthread_mutex_lock(&s->stats_mu);
    s->stats.elimit_hits++;
    s->stats.pending_at_limit = pending;
    s->stats.blocked_now += blocked;
    pthread_mutex_unlock(&s->stats_mu);
}

/* Counts an on_writable; `unblocked`: it resumed a blocked call. */
static void note_writable(testsvc *s, bool unblocked) {
    pthread_mutex_lock(&s->stats_mu);
    s->stats.writable_events++;
    s->stats.blocked_now -= unblocked;
    pthread_mutex_unlock(&s->stats_mu);
}

static void note_unblocked(testsvc *s) {
    pthread_mutex_lock(&s->stats_mu);
    s->stats.blocked_now--;
    pthread_mutex_unlock(&s->stats_mu);
}

static void fill_resp(echo_resp *r, tcall *call, const char *text, int64_t number,
                      ProtobufCBinaryData payload) {
    sluice__test__v1__echo_response__init(r);
    r->text = (char *)text;
    r->number = number;
    r->tenant = (char *)tcall_tenant(call);
    r->payload = payload;
}

static void common_start(tcall *call, void *ctx) {
    testsvc *s = ctx;
    pthread_mutex_lock(&s->stats_mu);
    s->stats.started++;
    pthread_mutex_unlock(&s->stats_mu);
}

static void common_done(testsvc *s, bool cancelled) {
    pthread_mutex_lock(&s->stats_mu);
    s->stats.done++;
    s->stats.done_cancelled += cancelled;
    pthread_mutex_unlock(&s->stats_mu);
}

/* ---- Echo ------------------------------------------------------------------------------ */

typedef struct echo_job {
    tcall *call;
    echo_req *req;
} echo_job;

static void echo_reply(tcall *call, const echo_req *req) {
    echo_resp r;
    fill_resp(&r, call, req->text, req->number, req->payload);
    tcall_reply(call, &r.base);
}

static void echo_later(void *arg, bool run) {
    echo_job *job = arg;
    if (run)
        echo_reply(job->call, job->req);
    sluice__test__v1__echo_request__free_unpacked(job->req, NULL);
    tcall_unref(job->call);
    free(job);
}

static void echo_on_message(tcall *call, ProtobufCMessage *msg, void *ctx) {
    testsvc *s = ctx;
    echo_req *req = (echo_req *)msg;
    if (req->fail_code != 0) {
        tcall_finish(call, (grpc_status_code)req->fail_code, req->text);
    } else if (req->delay_ms > 0) {
        echo_job *job = XNEW(echo_job);
        job->call = call;
        job->req = req;
        tcall_ref(call);
        timer_add(s, req->delay_ms, echo_later, job);
        return;
    } else {
        echo_reply(call, req);
    }
    sluice__test__v1__echo_request__free_unpacked(req, NULL);
}

static void plain_on_done(tcall *call, bool cancelled, void *ctx) {
    common_done(ctx, cancelled);
}

/* ---- Count ----------------------------------------------------------------------------- */

typedef struct count_job {
    testsvc *s;
    tcall *call;
    atomic_int refs;
    pthread_mutex_t mu;
    bool blocked;  /* waiting for on_writable (holds a reference) */
    bool writable; /* on_writable came while not blocked */
    char *text;
    uint32_t count, next, delay_ms;
} count_job;

static void count_unref(count_job *job) {
    if (atomic_fetch_sub(&job->refs, 1) != 1)
        return;
    tcall_unref(job->call);
    pthread_mutex_destroy(&job->mu);
    free(job->text);
    free(job);
}

/* Returns true when the push should go on (a stale on_writable), false when now blocked
 * (the caller's reference moves to the blocked state). */
static bool count_block(count_job *job) {
    pthread_mutex_lock(&job->mu);
    bool retry = job->writable;
    job->writable = false;
    job->blocked = !retry;
    pthread_mutex_unlock(&job->mu);
    return retry;
}

static void count_push(void *arg, bool run) {
    count_job *job = arg;
    while (run) {
        if (job->next >= job->count) {
            tcall_finish(job->call, GRPC_STATUS_OK, NULL);
            break;
        }
        echo_resp r;
        fill_resp(&r, job->call, job->text, job->next, (ProtobufCBinaryData){0, NULL});
        int rc = tcall_send(job->call, &r.base);
        if (rc == SLUICE_OK) {
            job->next++;
            if (job->delay_ms > 0 && job->next < job->count) {
                timer_add(job->s, job->delay_ms, count_push, job);
                return;
            }
        } else if (rc == SLUICE_ELIMIT) {
            bool retry = count_block(job);
            note_elimit(job->s, job->call, !retry);
            if (!retry)
                return;
        } else {
            break; /* the call is over */
        }
    }
    count_unref(job);
}

static void count_on_message(tcall *call, ProtobufCMessage *msg, void *ctx) {
    testsvc *s = ctx;
    echo_req *req = (echo_req *)msg;
    count_job *job = XNEW(count_job);
    job->s = s;
    job->call = call;
    tcall_ref(call);
    atomic_init(&job->refs, 2); /* the call's (until on_done) + the timer's */
    pthread_mutex_init(&job->mu, NULL);
    job->text = xstrdup(req->text);
    job->count = req->count;
    job->delay_ms = req->delay_ms;
    sluice__test__v1__echo_request__free_unpacked(req, NULL);
    tcall_set_user(call, job);
    timer_add(s, 0, count_push, job);
}

static void count_on_writable(tcall *call, void *ctx) {
    testsvc *s = ctx;
    count_job *job = tcall_user(call);
    if (!job) {
        note_writable(s, false);
        return;
    }
    pthread_mutex_lock(&job->mu);
    bool resume = job->blocked;
    job->blocked = false;
    job->writable = !resume;
    pthread_mutex_unlock(&job->mu);
    note_writable(s, resume);
    if (resume)
        timer_add(s, 0, count_push, job);
}

static void count_on_done(tcall *call, bool cancelled, void *ctx) {
    count_job *job = tcall_user(call);
    common_done(ctx, cancelled);
    if (!job)
        return;
    tcall_set_user(call, NULL);
    pthread_mutex_lock(&job->mu);
    bool was_blocked = job->blocked;
    job->blocked = false;
    pthread_mutex_unlock(&job->mu);
    if (was_blocked) {
        note_unblocked(ctx);
        count_unref(job); /* no on_writable will resume it */
    }
    count_unref(job);
}

/* ---- Sum ------------------------------------------------------------------------------- */

static void sum_on_start(tcall *call, void *ctx) {
    common_start(call, ctx);
    tcall_set_user(call, XNEW(int64_t));
}

static void sum_on_message(tcall *call, ProtobufCMessage *msg, void *ctx) {
    int64_t *sum = tcall_user(call);
    *sum += ((echo_req *)msg)->number;
    protobuf_c_message_free_unpacked(msg, NULL);
    tcall_read_next(call);
}

static void sum_on_half_close(tcall *call, void *ctx) {
    int64_t *sum = tcall_user(call);
    echo_resp r;
    fill_resp(&r, call, "sum", *sum, (ProtobufCBinaryData){0, NULL});
    tcall_reply(call, &r.base);
}

static void sum_on_done(tcall *call, bool cancelled, void *ctx) {
    common_done(ctx, cancelled);
    free(tcall_user(call));
    tcall_set_user(call, NULL);
}

/* ---- Chat ------------------------------------------------------------------------------ */

typedef struct chat_state {
    echo_req *cur; /* the request being answered, NULL when reading */
    uint32_t left; /* copies of it still to queue */
    bool blocked;  /* waiting for on_writable */
} chat_state;

/* Queues the remaining copies; on backpressure waits for on_writable. */
static void chat_pump(testsvc *s, tcall *call, chat_state *st) {
    while (st->left > 0) {
        echo_resp r;
        fill_resp(&r, call, st->cur->text, st->cur->number, st->cur->payload);
        int rc = tcall_send(call, &r.base);
        if (rc == SLUICE_ELIMIT) {
            st->blocked = true;
            note_elimit(s, call, true);
            return;
        }
        if (rc != SLUICE_OK)
            break;
        st->left--;
    }
    sluice__test__v1__echo_request__free_unpacked(st->cur, NULL);
    st->cur = NULL;
    tcall_read_next(call);
}

static void chat_on_start(tcall *call, void *ctx) {
    common_start(call, ctx);
    tcall_set_user(call, XNEW(chat_state));
}

static void chat_on_message(tcall *call, ProtobufCMessage *msg, void *ctx) {
    chat_state *st = tcall_user(call);
    st->cur = (echo_req *)msg;
    st->left = st->cur->count > 1 ? st->cur->count : 1;
    chat_pump(ctx, call, st);
}

static void chat_on_writable(tcall *call, void *ctx) {
    testsvc *s = ctx;
    chat_state *st = tcall_user(call);
    bool resume = st->blocked;
    st->blocked = false;
    note_writable(s, resume);
    if (resume)
        chat_pump(s, call, st);
}

static void chat_on_half_close(tcall *call, void *ctx) {
    tcall_finish(call, GRPC_STATUS_OK, NULL);
}

static void chat_on_done(tcall *call, bool cancelled, void *ctx) {
    chat_state *st = tcall_user(call);
    common_done(ctx, cancelled);
    if (st->blocked)
        note_unblocked(ctx);
    if (st->cur)
        sluice__test__v1__echo_request__free_unpacked(st->cur, NULL);
    free(st);
    tcall_set_user(call, NULL);
}

/* ---- lifecycle ------------------------------------------------------------------------- */

testsvc *testsvc_new(void) {
    testsvc *s = XNEW(testsvc);
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->stats_mu, NULL);
    clock_cond_init(&s->cond);
    if (pthread_create(&s->thread, NULL, timer_main, s) != 0)
        abort();
    s->handlers[0] = (transport_handler){
        .method = &sluice__test__v1__test_service__echo__method,
        .on_start = common_start,
        .on_message = echo_on_message,
        .on_done = plain_on_done,
        .ctx = s,
    };
    s->handlers[1] = (transport_handler){
        .method = &sluice__test__v1__test_service__count__method,
        .on_start = common_start,
        .on_message = count_on_message,
        .on_writable = count_on_writable,
        .on_done = count_on_done,
        .ctx = s,
    };
    s->handlers[2] = (transport_handler){
        .method = &sluice__test__v1__test_service__sum__method,
        .on_start = sum_on_start,
        .on_message = sum_on_message,
        .on_half_close = sum_on_half_close,
        .on_done = sum_on_done,
        .ctx = s,
    };
    s->handlers[3] = (transport_handler){
        .method = &sluice__test__v1__test_service__chat__method,
        .on_start = chat_on_start,
        .on_message = chat_on_message,
        .on_half_close = chat_on_half_close,
        .on_writable = chat_on_writable,
        .on_done = chat_on_done,
        .ctx = s,
    };
    return s;
}

int testsvc_register(testsvc *s, transport *t) {
    return transport_register(t, &sluice__test__v1__test_service__rpc_service, s->handlers,
                              sizeof s->handlers / sizeof s->handlers[0]);
}

void testsvc_stop(testsvc *s) {
    pthread_mutex_lock(&s->mu);
    if (s->stopped) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    s->stopping = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_mutex_lock(&s->mu);
    s->stopped = true;
    timer *list = s->timers;
    s->timers = NULL;
    pthread_mutex_unlock(&s->mu);
    while (list) {
        timer *next = list->next;
        list->fn(list->arg, false);
        free(list);
        list = next;
    }
}

void testsvc_free(testsvc *s) {
    if (!s)
        return;
    testsvc_stop(s);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->stats_mu);
    free(s);
}

void testsvc_get_stats(testsvc *s, testsvc_stats *out) {
    pthread_mutex_lock(&s->stats_mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->stats_mu);
}
