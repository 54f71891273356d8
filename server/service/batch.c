/*
 * BatchProcess: the streaming batch path.
 *
 * Header first (a named session, or a config for a session of the batch's own that is
 * closed at the end), then prompts (one per message, or many per PromptBatch), then end or
 * half-close. The prompts of one message become dispatcher tasks in one submission; an
 * invalid prompt gets an error result of its own (nothing accepted before it is lost).
 * Results are collected as tasks end and sent when the dispatcher flushes the batch's sink
 * (once per loop round), up to RESULTS_PER_EVENT per BatchEvent, so a busy batch costs a
 * few large messages instead of one per prompt. Progress snapshots go out every interval
 * when asked for, a heartbeat whenever the stream has queued nothing for the heartbeat
 * interval (whatever show_progress says: proxies close streams that stay silent longer
 * than their read timeout), and a summary ends the stream.
 *
 * Backpressure: the transport reads the next message only when asked (tcall_read_next),
 * and the batch asks only while fewer than max_batch_in_flight of its prompts are inside
 * sluiced (in the dispatcher, collected, or queued for sending - a queued event counted as
 * full). A client that stops reading results therefore stops being read; nothing buffers
 * without bound (one message of prompts beyond the window at most). When the dispatcher is
 * full, the prompts in hand are held and resubmitted as results free room (or after a
 * short timer when none of the batch's tasks is inside). When the outbound queue is full,
 * results wait in `pending` for on_writable.
 *
 * Cancel: when the call ends early (the client cancelled, the stream broke), batch_done
 * cancels the tasks in `live` and drops the held prompts. Held prompts that another thread
 * was submitting at that moment are refused by the dispatcher when it takes them
 * (sink.cancelled), so no prompt of a cancelled batch is sent once the cancel is processed.
 *
 * Lifetime: refs = the call + one per task in the dispatcher (released at the flush that
 * follows its on_done) + a pending progress timer + a pending retry timer + a pending
 * heartbeat timer.
 */
#include "svc_internal.h"

#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "server/common/log.h"
#include "server/common/utf8.h"
#include "sluice/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESULTS_PER_EVENT 256
#define EVENT_BYTES (1u << 20) /* results per event also stop at about this many bytes */
#define MAX_PROMPTS_PER_MESSAGE 1024
#define HELD_RETRY_MS 50 /* retry of held prompts while the dispatcher is full */

typedef enum batch_state {
    BATCH_HEADER = 0, /* waiting for the header */
    BATCH_RUNNING,    /* reading prompts */
    BATCH_ENDED,      /* the client sent everything; results still coming */
    BATCH_DONE,       /* summary sent or call over */
} batch_state;

typedef struct batch {
    service *s;
    tcall *call;
    pthread_mutex_t mu;
    int refs;
    batch_state state;
    svc_session *ss;
    bool own_session;
    Sluice__V1__BatchHeader *header;
    uint64_t received, done, succeeded, failed, cached, cancelled;
    size_t in_dispatcher;
    bool read_pending;
    dispatcher_task_spec *held; /* prompts waiting for dispatcher room */
    size_t n_held;
    Sluice__V1__BatchResult **pending; /* results collected, not yet sent */
    size_t n_pending, cap_pending;
    int flush_refs;        /* task references released at the next flush */
    int sending;           /* threads sending results they took from `pending` */
    uint64_t writable_gen; /* on_writable calls so far (see send_pending) */
    uint64_t retry_timer;  /* retries the held prompts (dispatcher full); 0 = none */
    u64map live;
    uint64_t started_ms;
    uint64_t progress_timer;
    uint64_t heartbeat_timer; /* the next check for silence (0 = none) */
    dispatcher_sink sink;
} batch;

typedef struct prompt_ref {
    uint64_t index;
    char *custom_id;
} prompt_ref;

static void batch_set_state(batch *b, batch_state s) {
    b->state = s;
}

static void free_pending(Sluice__V1__BatchResult **rs, size_t n) {
    for (size_t i = 0; i < n; i++)
        protobuf_c_message_free_unpacked(&rs[i]->base, NULL);
    free(rs);
}

static void free_held(dispatcher_task_spec *held, size_t n) {
    for (size_t i = 0; i < n; i++) {
        prompt_ref *p = held[i].task_ctx;
        llm_request_free(held[i].request);
        free(p->custom_id);
        free(p);
    }
    free(held);
}

static void batch_unref_n(batch *b, int n) {
    if (n <= 0)
        return;
    pthread_mutex_lock(&b->mu);
    b->refs -= n;
    bool last = b->refs == 0;
    pthread_mutex_unlock(&b->mu);
    if (!last)
        return;
    free_held(b->held, b->n_held);
    free_pending(b->pending, b->n_pending);
    if (b->header)
        protobuf_c_message_free_unpacked(&b->header->base, NULL);
    svc_session_put(b->s, b->ss);
    u64map_cleanup(&b->live);
    pthread_mutex_destroy(&b->mu);
    tcall_unref(b->call);
    free(b);
}

/* ---- results ------------------------------------------------------------------------ */

static Sluice__V1__BatchResult *result_proto(batch *b, uint64_t id, uint64_t index,
                                             const char *custom_id, const llm_response *r) {
    Sluice__V1__BatchResult *res = XNEW(Sluice__V1__BatchResult);
    sluice__v1__batch_result__init(res);
    res->index = index;
    res->custom_id = utf8_dup_valid(custom_id); /* see convert.c: answers are valid UTF-8 */
    res->task_id = id ? convert_format_id(b->s->cfg.node_id, 't', id) : xstrdup("");
    if (b->header->return_completions_only) {
        res->is_error = r->is_error;
        if (!r->is_error) {
            res->completion = XNEW(Google__Protobuf__StringValue);
            google__protobuf__string_value__init(res->completion);
            res->completion->value = utf8_dup_valid(r->completion);
        }
    } else {
        res->response = convert_response(r);
        if (b->header->omit_text_parts)
            convert_drop_text_parts(res->response);
    }
    return res;
}

/* Under b->mu: counts a finished prompt and collects its result for the next flush. */
static void collect_locked(batch *b, dtask_state final, Sluice__V1__BatchResult *res,
                           const llm_response *r) {
    b->done++;
    if (final == DTASK_DONE)
        b->succeeded++;
    else if (final == DTASK_CANCELLED)
        b->cancelled++;
    else
        b->failed++;
    b->cached += r && r->local_cache_hit;
    if (!res)
        return;
    if (b->n_pending == b->cap_pending) {
        b->cap_pending = b->cap_pending ? b->cap_pending * 2 : 64;
        b->pending = xrealloc(b->pending, b->cap_pending * sizeof *b->pending);
    }
    b->pending[b->n_pending++] = res;
}

/* Under b->mu: puts results that could not be sent back in front of `pending`. */
static void requeue_locked(batch *b, Sluice__V1__BatchResult **rs, size_t n) {
    size_t total = n + b->n_pending;
    Sluice__V1__BatchResult **all = XNEWV(Sluice__V1__BatchResult *, total);
    memcpy(all, rs, n * sizeof *rs);
    if (b->n_pending)
        memcpy(all + n, b->pending, b->n_pending * sizeof *all);
    free(b->pending);
    b->pending = all;
    b->n_pending = b->cap_pending = total;
}

/* Sends the collected results, up to RESULTS_PER_EVENT (and about EVENT_BYTES) per event,
 * so that an event stays far below the clients' default 4 MB message limit. Any thread,
 * without b->mu.
 * A full outbound queue (ELIMIT) keeps the unsent results for the next on_writable; if
 * that event already came while this thread was sending, it tries again itself. */
static void send_pending(batch *b) {
    for (;;) {
        pthread_mutex_lock(&b->mu);
        Sluice__V1__BatchResult **rs = b->pending;
        size_t n = b->n_pending;
        b->pending = NULL;
        b->n_pending = b->cap_pending = 0;
        bool live = b->state != BATCH_DONE;
        uint64_t gen = b->writable_gen;
        b->sending += n > 0; /* the summary waits for these (maybe_finish) */
        pthread_mutex_unlock(&b->mu);
        size_t sent = 0;
        while (live && sent < n) {
            Sluice__V1__BatchResults chunk = SLUICE__V1__BATCH_RESULTS__INIT;
            chunk.results = rs + sent;
            size_t bytes = 0;
            while (sent + chunk.n_results < n && chunk.n_results < RESULTS_PER_EVENT &&
                   (chunk.n_results == 0 || bytes < EVENT_BYTES))
                bytes += protobuf_c_message_get_packed_size(&rs[sent + chunk.n_results++]->base);
            Sluice__V1__BatchEvent ev = SLUICE__V1__BATCH_EVENT__INIT;
            ev.kind_case = SLUICE__V1__BATCH_EVENT__KIND_RESULTS;
            ev.results = &chunk;
            if (tcall_send(b->call, &ev.base) == SLUICE_ELIMIT)
                break;
            sent += chunk.n_results;
        }
        if (!n)
            return;
        for (size_t i = 0; i < sent || (!live && i < n); i++)
            protobuf_c_message_free_unpacked(&rs[i]->base, NULL);
        pthread_mutex_lock(&b->mu);
        bool again = false;
        if (live && sent < n) {
            requeue_locked(b, rs + sent, n - sent);
            again = b->writable_gen != gen;
        }
        b->sending--;
        pthread_mutex_unlock(&b->mu);
        free(rs);
        if (!again)
            return;
    }
}

/* ---- flow control ------------------------------------------------------------------- */

static void try_submit_held(batch *b);

/* Under b->mu: whether to ask the transport for the next message now. */
static bool want_read(batch *b) {
    /* Reading goes on after BatchEnd, until the client half-closes: a prompt sent after it
     * is a client error, answered as such (it used to be dropped without a word). */
    if ((b->state != BATCH_RUNNING && b->state != BATCH_ENDED) || b->read_pending || b->n_held)
        return false;
    size_t inside =
        b->in_dispatcher + b->n_pending + tcall_outbound_pending(b->call) * RESULTS_PER_EVENT;
    if (inside >= b->s->cfg.max_batch_in_flight)
        return false;
    b->read_pending = true;
    return true;
}

/* Returns tcall_send's result. */
static int send_summary(batch *b) {
    dsession_status st;
    dsession_status_get(b->ss->ds, clock_now_ms(), &st);
    Sluice__V1__BatchSummary sum = SLUICE__V1__BATCH_SUMMARY__INIT;
    sum.status = convert_status(&st, b->ss->id_str, dsession_get_config(b->ss->ds)->name);
    sum.prompts = b->received;
    sum.succeeded = b->succeeded;
    sum.failed = b->failed;
    sum.cached = b->cached;
    sum.cancelled = b->cancelled;
    sum.elapsed_s = (double)(clock_now_ms() - b->started_ms) / 1000.0;
    Sluice__V1__BatchEvent ev = SLUICE__V1__BATCH_EVENT__INIT;
    ev.kind_case = SLUICE__V1__BATCH_EVENT__KIND_SUMMARY;
    ev.summary = &sum;
    int rc = tcall_send(b->call, &ev.base);
    protobuf_c_message_free_unpacked(&sum.status->base, NULL);
    return rc;
}

static void close_own_session(batch *b) {
    service *s = b->s;
    pthread_mutex_lock(&s->mu);
    bool first = svc_session_unlist_locked(s, b->ss);
    pthread_mutex_unlock(&s->mu);
    if (first)
        dispatcher_session_close(s->d, b->ss->ds, NULL, NULL);
}

/* Finishes the call once everything is answered. Without b->mu. */
static void maybe_finish(batch *b) {
    pthread_mutex_lock(&b->mu);
    bool finish = b->state == BATCH_ENDED && b->in_dispatcher == 0 && !b->n_held &&
                  b->n_pending == 0 && b->sending == 0;
    if (finish)
        batch_set_state(b, BATCH_DONE);
    uint64_t timer = finish ? b->progress_timer : 0, heartbeat = finish ? b->heartbeat_timer : 0;
    if (finish)
        b->progress_timer = b->heartbeat_timer = 0;
    pthread_mutex_unlock(&b->mu);
    if (!finish)
        return;
    if (timer && timers_cancel(b->s->tm, timer))
        batch_unref_n(b, 1);
    if (heartbeat && timers_cancel(b->s->tm, heartbeat))
        batch_unref_n(b, 1);
    if (send_summary(b) == SLUICE_ELIMIT) { /* the queue is full: on_writable comes back */
        pthread_mutex_lock(&b->mu);
        batch_set_state(b, BATCH_ENDED);
        pthread_mutex_unlock(&b->mu);
        return;
    }
    tcall_finish(b->call, GRPC_STATUS_OK, NULL);
    if (b->own_session)
        close_own_session(b);
}

/* Moves the batch along: held prompts, collected results, the next read, the end. */
static void pump(batch *b) {
    try_submit_held(b);
    send_pending(b);
    pthread_mutex_lock(&b->mu);
    bool read = want_read(b);
    pthread_mutex_unlock(&b->mu);
    if (read && tcall_read_next(b->call) != 0) {
        pthread_mutex_lock(&b->mu);
        b->read_pending = false;
        pthread_mutex_unlock(&b->mu);
    }
    maybe_finish(b);
}

/* ---- the sink (dispatcher thread) --------------------------------------------------- */

static void batch_task_done(void *ctx, uint64_t id, void *task_ctx, dtask_state final,
                            llm_response *resp) {
    batch *b = ctx;
    prompt_ref *p = task_ctx;
    pthread_mutex_lock(&b->mu);
    b->flush_refs++;
    u64map_del(&b->live, id);
    bool live = b->state != BATCH_DONE && final != DTASK_ABANDONED;
    pthread_mutex_unlock(&b->mu);
    Sluice__V1__BatchResult *res = live ? result_proto(b, id, p->index, p->custom_id, resp) : NULL;
    pthread_mutex_lock(&b->mu);
    /* Leaves the dispatcher's count only together with joining `pending`: in between,
     * maybe_finish would see neither and send the summary ahead of this result. */
    b->in_dispatcher--;
    if (final != DTASK_ABANDONED)
        collect_locked(b, final, res, resp);
    pthread_mutex_unlock(&b->mu);
    llm_response_free(resp);
    free(p->custom_id);
    free(p);
}

/* Asked by the dispatcher as it takes a submission of this batch. A call that is over wants
 * none of its tasks: batch_done cancels the ids in `live`, but held prompts being submitted
 * from the dispatcher or timers thread at that moment can reach the dispatcher after its
 * cancel. */
static bool batch_cancelled(void *ctx) {
    batch *b = ctx;
    pthread_mutex_lock(&b->mu);
    bool over = b->state == BATCH_DONE;
    pthread_mutex_unlock(&b->mu);
    return over;
}

static void batch_flush(void *ctx) {
    batch *b = ctx;
    pthread_mutex_lock(&b->mu);
    int refs = b->flush_refs;
    b->flush_refs = 0;
    pthread_mutex_unlock(&b->mu);
    pump(b);
    batch_unref_n(b, refs);
}

static void retry_tick(void *arg);
static void fail_call(batch *b, grpc_status_code code, const char *msg);

/* Submits the held prompts if the dispatcher has room (all or nothing). A full dispatcher
 * (ELIMIT) keeps them held: the batch's own results pump again, and when it has nothing
 * inside the dispatcher a short timer does. A closed session fails the call. */
static void try_submit_held(batch *b) {
    pthread_mutex_lock(&b->mu);
    if (!b->n_held || b->state == BATCH_DONE) {
        pthread_mutex_unlock(&b->mu);
        return;
    }
    dispatcher_task_spec *specs = b->held;
    size_t n = b->n_held;
    b->held = NULL;
    b->n_held = 0;
    b->refs += (int)n;
    b->in_dispatcher += n;
    for (size_t i = 0; i < n; i++)
        u64map_put(&b->live, specs[i].id, (void *)1);
    pthread_mutex_unlock(&b->mu);
    int rc = dispatcher_submit(b->s->d, b->ss->ds, specs, n, &b->sink);
    if (rc == 0) {
        free(specs);
        return;
    }
    pthread_mutex_lock(&b->mu);
    b->refs -= (int)n;
    b->in_dispatcher -= n;
    for (size_t i = 0; i < n; i++)
        u64map_del(&b->live, specs[i].id);
    bool closed = rc != SLUICE_ELIMIT;
    if (closed) {
        free_held(specs, n);
    } else {
        b->held = specs;
        b->n_held = n;
    }
    /* Armed under b->mu and never once the call is over, so batch_done always finds (and
     * cancels) the timer: none can outlive the drain, when timers stop unrun. */
    if (!closed && b->in_dispatcher == 0 && !b->retry_timer && b->state != BATCH_DONE) {
        b->refs++;
        b->retry_timer = timers_add(b->s->tm, HELD_RETRY_MS, retry_tick, b);
    }
    pthread_mutex_unlock(&b->mu);
    if (closed && dsession_is_closed(b->ss->ds))
        fail_call(b, GRPC_STATUS_NOT_FOUND, "the session was closed while the batch ran");
    else if (closed)
        fail_call(b, GRPC_STATUS_UNAVAILABLE, "the server is stopping");
}

static void retry_tick(void *arg) {
    batch *b = arg;
    pthread_mutex_lock(&b->mu);
    b->retry_timer = 0;
    pthread_mutex_unlock(&b->mu);
    pump(b);
    batch_unref_n(b, 1);
}

/* ---- handlers ----------------------------------------------------------------------- */

static void fail_call(batch *b, grpc_status_code code, const char *msg) {
    pthread_mutex_lock(&b->mu);
    bool already = b->state == BATCH_DONE;
    batch_set_state(b, BATCH_DONE);
    pthread_mutex_unlock(&b->mu);
    if (!already)
        tcall_finish(b->call, code, msg);
}

/* A session of the batch's own from header.config. Returns 0 or fails the call. */
static int open_own_session(batch *b, Sluice__V1__BatchHeader *h, const char *tenant) {
    service *s = b->s;
    dsession_config cfg;
    dsession *ds = NULL;
    char why[512], err[600];
    int rc = convert_session_config(h->config, tenant, &cfg, why, sizeof why);
    if (!rc) {
        rc = dsession_new(s->reg, &cfg, clock_now_ms(), &ds, why, sizeof why);
        dsession_config_cleanup(&cfg);
    }
    uint64_t id = 0;
    if (!rc && store_reserve_ids(s->st, "session", 1, &id) != 0) {
        snprintf(why, sizeof why, "could not allocate a session id");
        rc = SLUICE_EIO;
    }
    if (rc) {
        dsession_unref(ds);
        snprintf(err, sizeof err, "header.%s", why);
        fail_call(b, rc == SLUICE_EINVAL ? GRPC_STATUS_INVALID_ARGUMENT : GRPC_STATUS_INTERNAL,
                  err);
        return -1;
    }
    svc_session *ss = svc_session_new(s, id, tenant, ds); /* the batch's reference */
    ss->ephemeral = true; /* batches are not durable: nothing to restore it for */
    if (!svc_session_add(s, ss)) {
        svc_session_put(s, ss);
        snprintf(err, sizeof err,
                 "limit max_sessions_per_tenant=%zu reached (a batch without session_id opens "
                 "its own): close sessions first",
                 s->cfg.max_sessions_per_tenant);
        fail_call(b, GRPC_STATUS_RESOURCE_EXHAUSTED, err);
        return -1;
    }
    b->ss = ss;
    b->own_session = true;
    return 0;
}

static int take_header(batch *b, Sluice__V1__BatchHeader *h) {
    const char *tenant = tcall_tenant(b->call);
    if (!h->session_id || !*h->session_id)
        return open_own_session(b, h, tenant);
    b->ss = svc_session_get(b->s, h->session_id, tenant);
    if (b->ss)
        return 0;
    char err[600];
    snprintf(err, sizeof err, "header.session_id: session '%s' not found", h->session_id);
    fail_call(b, GRPC_STATUS_NOT_FOUND, err);
    return -1;
}

static void progress_tick(void *arg);

static void schedule_progress(batch *b) {
    uint32_t every = b->header->progress_interval_ms ? b->header->progress_interval_ms : 1000;
    pthread_mutex_lock(&b->mu);
    if (b->state != BATCH_DONE) {
        b->refs++;
        b->progress_timer = timers_add(b->s->tm, every, progress_tick, b);
    }
    pthread_mutex_unlock(&b->mu);
}

static void progress_tick(void *arg) {
    batch *b = arg;
    pthread_mutex_lock(&b->mu);
    b->progress_timer = 0;
    bool send = b->state != BATCH_DONE;
    Sluice__V1__ProgressSnapshot snap = SLUICE__V1__PROGRESS_SNAPSHOT__INIT;
    snap.batch_received = b->received;
    snap.batch_done = b->done;
    snap.batch_expected =
        b->header->expected_prompts > b->received ? b->header->expected_prompts : b->received;
    double elapsed = (double)(clock_now_ms() - b->started_ms) / 1000.0;
    snap.rate_per_s = elapsed > 0 ? (double)b->done / elapsed : 0;
    pthread_mutex_unlock(&b->mu);
    if (send) {
        dsession_status st;
        dsession_status_get(b->ss->ds, clock_now_ms(), &st);
        snap.status = convert_status(&st, b->ss->id_str, dsession_get_config(b->ss->ds)->name);
        Sluice__V1__BatchEvent ev = SLUICE__V1__BATCH_EVENT__INIT;
        ev.kind_case = SLUICE__V1__BATCH_EVENT__KIND_PROGRESS;
        ev.progress = &snap;
        tcall_send(b->call, &ev.base); /* a full queue just skips a snapshot */
        protobuf_c_message_free_unpacked(&snap.status->base, NULL);
        schedule_progress(b);
    }
    batch_unref_n(b, 1);
}

static void heartbeat_tick(void *arg);

/* Under b->mu: checks again for silence after delay_ms, unless the call is over. */
static void arm_heartbeat_locked(batch *b, uint64_t delay_ms) {
    if (b->state == BATCH_DONE || !b->s->cfg.heartbeat_interval_ms)
        return;
    b->refs++;
    b->heartbeat_timer = timers_add(b->s->tm, delay_ms, heartbeat_tick, b);
}

/* Sends a heartbeat when the stream has been silent for the interval (a full outbound
 * queue is not silent: nothing is lost by skipping), then re-arms. */
static void heartbeat_tick(void *arg) {
    batch *b = arg;
    pthread_mutex_lock(&b->mu);
    b->heartbeat_timer = 0;
    bool live = b->state != BATCH_DONE;
    pthread_mutex_unlock(&b->mu);
    uint64_t next = 0;
    if (live && svc_heartbeat_due(b->s, b->call, b->started_ms, clock_now_ms(), &next)) {
        Sluice__V1__Heartbeat hb = SLUICE__V1__HEARTBEAT__INIT;
        Sluice__V1__BatchEvent ev = SLUICE__V1__BATCH_EVENT__INIT;
        ev.kind_case = SLUICE__V1__BATCH_EVENT__KIND_HEARTBEAT;
        ev.heartbeat = &hb;
        tcall_send(b->call, &ev.base);
    }
    pthread_mutex_lock(&b->mu);
    if (live)
        arm_heartbeat_locked(b, next);
    pthread_mutex_unlock(&b->mu);
    batch_unref_n(b, 1);
}

static void on_header(batch *b, Sluice__V1__BatchHeader *h) {
    if (b->state != BATCH_HEADER) {
        protobuf_c_message_free_unpacked(&h->base, NULL);
        fail_call(b, GRPC_STATUS_INVALID_ARGUMENT, "header: sent twice");
        return;
    }
    b->header = h;
    if (take_header(b, h) != 0)
        return;
    b->started_ms = clock_now_ms();
    pthread_mutex_lock(&b->mu);
    batch_set_state(b, BATCH_RUNNING);
    arm_heartbeat_locked(b, b->s->cfg.heartbeat_interval_ms);
    pthread_mutex_unlock(&b->mu);
    if (h->show_progress)
        schedule_progress(b);
}

/* An invalid prompt: an error result in its place. */
static void reject_prompt(batch *b, const Sluice__V1__Prompt *p, const char *why) {
    llm_response *r = llm_response_new();
    llm_response_set_error(r, LLM_ERR_INVALID_REQUEST, 0, "invalid prompt %llu: %s",
                           (unsigned long long)p->index, why);
    Sluice__V1__BatchResult *res = result_proto(b, 0, p->index, p->custom_id, r);
    pthread_mutex_lock(&b->mu);
    collect_locked(b, DTASK_FAILED, res, r);
    pthread_mutex_unlock(&b->mu);
    llm_response_free(r);
}

/* Turns the prompts of one message into held tasks (submitted by pump). */
static void on_prompts(batch *b, Sluice__V1__Prompt **ps, size_t n) {
    service *s = b->s;
    if (n == 0)
        return;
    pthread_mutex_lock(&b->mu);
    b->received += n;
    bool over = b->received > s->cfg.max_batch_prompts;
    pthread_mutex_unlock(&b->mu);
    char err[512];
    if (over || n > MAX_PROMPTS_PER_MESSAGE) {
        snprintf(err, sizeof err, "limit %s=%llu reached",
                 over ? "max_batch_prompts" : "prompts_per_message",
                 over ? (unsigned long long)s->cfg.max_batch_prompts
                      : (unsigned long long)MAX_PROMPTS_PER_MESSAGE);
        fail_call(b, GRPC_STATUS_RESOURCE_EXHAUSTED, err);
        return;
    }
    uint64_t first = 0;
    if (svc_next_task_ids(s, n, &first) != 0) {
        fail_call(b, GRPC_STATUS_INTERNAL, "could not allocate task ids");
        return;
    }
    dispatcher_task_spec *specs = XNEWV(dispatcher_task_spec, n);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        llm_request *req = NULL;
        if (convert_prompt(ps[i], b->header, &req, err, sizeof err) != 0) {
            reject_prompt(b, ps[i], err);
            continue;
        }
        prompt_ref *ref = XNEW(prompt_ref);
        ref->index = ps[i]->index;
        ref->custom_id = *ps[i]->custom_id ? xstrdup(ps[i]->custom_id) : NULL;
        specs[k++] = (dispatcher_task_spec){first + i, req, ref};
    }
    if (k == 0) {
        free(specs);
        return;
    }
    pthread_mutex_lock(&b->mu);
    b->held = specs;
    b->n_held = k;
    pthread_mutex_unlock(&b->mu);
}

static void batch_message(tcall *call, ProtobufCMessage *msg, void *ctx) {
    batch *b = tcall_user(call);
    Sluice__V1__BatchRequest *req = (Sluice__V1__BatchRequest *)msg;
    pthread_mutex_lock(&b->mu);
    b->read_pending = false;
    batch_state st = b->state;
    pthread_mutex_unlock(&b->mu);
    char err[160];
    if (req->kind_case == SLUICE__V1__BATCH_REQUEST__KIND_HEADER && st != BATCH_HEADER) {
        fail_call(b, GRPC_STATUS_INVALID_ARGUMENT, "a second header: the header comes once, first");
    } else if (req->kind_case == SLUICE__V1__BATCH_REQUEST__KIND_HEADER) {
        on_header(b, req->header);
        req->header = NULL; /* kept by the batch */
        req->kind_case = SLUICE__V1__BATCH_REQUEST__KIND__NOT_SET;
    } else if (st == BATCH_ENDED) {
        if (req->kind_case == SLUICE__V1__BATCH_REQUEST__KIND_PROMPT)
            snprintf(err, sizeof err, "prompt %llu arrived after BatchEnd, which must be last",
                     (unsigned long long)req->prompt->index);
        else if (req->kind_case == SLUICE__V1__BATCH_REQUEST__KIND_PROMPTS)
            snprintf(err, sizeof err, "%zu prompts arrived after BatchEnd, which must be last",
                     req->prompts->n_prompts);
        else
            snprintf(err, sizeof err, "a message arrived after BatchEnd, which must be last");
        fail_call(b, GRPC_STATUS_INVALID_ARGUMENT, err);
    } else if (st == BATCH_HEADER) {
        fail_call(b, GRPC_STATUS_INVALID_ARGUMENT, "the first message must be a header");
    } else if (req->kind_case == SLUICE__V1__BATCH_REQUEST__KIND_PROMPT && st == BATCH_RUNNING) {
        on_prompts(b, &req->prompt, 1);
    } else if (req->kind_case == SLUICE__V1__BATCH_REQUEST__KIND_PROMPTS && st == BATCH_RUNNING) {
        on_prompts(b, req->prompts->prompts, req->prompts->n_prompts);
    } else if (req->kind_case == SLUICE__V1__BATCH_REQUEST__KIND_END && st == BATCH_RUNNING) {
        pthread_mutex_lock(&b->mu);
        batch_set_state(b, BATCH_ENDED);
        pthread_mutex_unlock(&b->mu);
    } else if (st == BATCH_RUNNING) {
        fail_call(b, GRPC_STATUS_INVALID_ARGUMENT, "a message with no kind");
    }
    protobuf_c_message_free_unpacked(msg, NULL);
    pump(b);
}

static void batch_half_close(tcall *call, void *ctx) {
    batch *b = tcall_user(call);
    pthread_mutex_lock(&b->mu);
    batch_state st = b->state;
    if (st == BATCH_RUNNING)
        batch_set_state(b, BATCH_ENDED);
    pthread_mutex_unlock(&b->mu);
    if (st == BATCH_HEADER)
        fail_call(b, GRPC_STATUS_INVALID_ARGUMENT, "the stream ended before a header");
    else
        maybe_finish(b);
}

static void batch_writable(tcall *call, void *ctx) {
    batch *b = tcall_user(call);
    pthread_mutex_lock(&b->mu);
    b->writable_gen++;
    pthread_mutex_unlock(&b->mu);
    pump(b);
}

static void batch_start(tcall *call, void *ctx) {
    batch *b = XNEW(batch);
    b->s = ctx;
    b->call = call;
    tcall_ref(call);
    pthread_mutex_init(&b->mu, NULL);
    b->refs = 1; /* the call */
    u64map_init(&b->live);
    b->sink.on_done = batch_task_done;
    b->sink.on_flush = batch_flush;
    b->sink.cancelled = batch_cancelled;
    b->sink.ctx = b;
    tcall_set_user(call, b);
}

/* The call is over: cancel whatever of the batch still runs. */
static void batch_done(tcall *call, bool cancelled, void *ctx) {
    batch *b = tcall_user(call);
    pthread_mutex_lock(&b->mu);
    batch_set_state(b, BATCH_DONE);
    size_t n = 0;
    uint64_t *ids = XNEWV(uint64_t, b->live.len);
    for (size_t i = 0; i < b->live.cap; i++)
        if (b->live.vals[i])
            ids[n++] = b->live.keys[i];
    uint64_t timer = b->progress_timer, retry = b->retry_timer, heartbeat = b->heartbeat_timer;
    b->progress_timer = b->retry_timer = b->heartbeat_timer = 0;
    pthread_mutex_unlock(&b->mu);
    if (n)
        dispatcher_cancel_tasks(b->s->d, ids, n);
    free(ids);
    if (timer && timers_cancel(b->s->tm, timer))
        batch_unref_n(b, 1);
    if (heartbeat && timers_cancel(b->s->tm, heartbeat))
        batch_unref_n(b, 1);
    if (retry && timers_cancel(b->s->tm, retry))
        batch_unref_n(b, 1);
    if (b->own_session && b->ss)
        close_own_session(b);
    batch_unref_n(b, 1);
}

void svc_batch_register(service *s, transport_handler *h, size_t *n) {
    transport_handler *x = &h[(*n)++];
    x->method = &sluice__v1__sluice__batch_process__method;
    x->on_start = batch_start;
    x->on_message = batch_message;
    x->on_half_close = batch_half_close;
    x->on_writable = batch_writable;
    x->on_done = batch_done;
    x->ctx = s;
}
