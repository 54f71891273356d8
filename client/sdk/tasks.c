/*
 * Start / Wait / AsCompleted / Cancel. start_nowait opens a session on first use (like
 * lm-deluge's auto-opened tracker); the others need one only when no ids are given.
 * Waits are unary RPCs whose deadline is the wait's timeout plus a margin, so a slow task
 * never turns into a transport error. One Wait blocks at most the server's cap (20 s by
 * default, below proxies' read timeouts) and answers with the tasks still pending; an
 * answer too large for one message leaves some results out (more_task_ids): wait_for_all
 * waits and fetches again, Wait after Wait, until everything came or its own timeout
 * passed. Requests ask for each answer's text once (omit_text_parts): the SDK reads it
 * from Response.completion and never from the text parts. AsCompleted heartbeats are
 * skipped.
 */
#include "sdk_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WAIT_MARGIN_MS 10000u

int sluice_start_many(sluice_client *c, const sluice_prompt *const *prompts, size_t n,
                      char ***task_ids) {
    sdk_clear_error();
    if (task_ids)
        *task_ids = NULL;
    if (!prompts || !n || !task_ids)
        return sdk_fail(SLUICE_EINVAL, "prompts (at least one) and task_ids are required");
    Sluice__V1__Prompt **msgs = calloc(n, sizeof *msgs);
    if (!msgs)
        return sdk_fail(SLUICE_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (!prompts[i]) {
            free(msgs);
            return sdk_fail(SLUICE_EINVAL, "prompts[%zu] is NULL", i);
        }
        msgs[i] = prompts[i]->msg;
    }
    int rc;
    char *session = sdk_session(c, true, &rc);
    if (!session) {
        free(msgs);
        return rc;
    }
    Sluice__V1__StartRequest req = SLUICE__V1__START_REQUEST__INIT;
    req.session_id = session;
    req.n_prompts = n;
    req.prompts = msgs;
    Sluice__V1__StartResponse *resp = NULL;
    sluice_rpc_status st;
    sluice_rpc_call_opts o = sdk_call_opts(c);
    rc = sluice__v1__sluice__start__rpc(c->ch, &req, &resp, &o, &st);
    free(session);
    free(msgs);
    if (rc)
        return sdk_rpc_fail(rc, &st, "Start");
    if (resp->n_task_ids != n) {
        size_t got = resp->n_task_ids;
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        return sdk_fail(SLUICE_EPROTO, "Start answered %zu ids for %zu prompts", got, n);
    }
    char **ids = calloc(n, sizeof *ids);
    for (size_t i = 0; ids && i < n; i++) {
        if (!(ids[i] = sdk_strdup(resp->task_ids[i]))) {
            sluice_task_ids_free(ids, i);
            ids = NULL;
        }
    }
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    if (!ids)
        return sdk_fail(SLUICE_ENOMEM, "out of memory");
    *task_ids = ids;
    return 0;
}

void sluice_task_ids_free(char **task_ids, size_t n) {
    sdk_strings_free(task_ids, n);
}

int sluice_start_nowait(sluice_client *c, const sluice_prompt *prompt, char **task_id) {
    if (!task_id) {
        sdk_clear_error();
        return sdk_fail(SLUICE_EINVAL, "prompt and task_id are required");
    }
    char **ids = NULL;
    int rc = sluice_start_many(c, &prompt, 1, &ids);
    if (rc)
        return rc;
    *task_id = ids[0];
    free(ids);
    return 0;
}

/* The response of a finished task, taken out of tr; *out stays NULL while the task runs.
 * Returns SLUICE_OK or SLUICE_ENOMEM (then tr keeps its response: nothing is lost). */
static int from_result(Sluice__V1__TaskResult *tr, sluice_response **out) {
    *out = NULL;
    if (!tr->response)
        return 0;
    if (sdk_response_take(&tr->response, tr->task_id, tr->custom_id, tr->index, out) != 0)
        return sdk_fail(SLUICE_ENOMEM, "out of memory");
    return 0;
}

/* n task ids must be there (n == 0: none needed). */
static int check_ids(const char *const *ids, size_t n) {
    if (n && !ids)
        return sdk_fail(SLUICE_EINVAL, "task_ids is NULL with n = %zu", n);
    for (size_t i = 0; i < n; i++)
        if (!ids[i])
            return sdk_fail(SLUICE_EINVAL, "task_ids[%zu] is NULL", i);
    return 0;
}

/* The deadline of a Wait call: its timeout plus a margin, so the server answers first (0:
 * none). Saturates rather than wrapping past UINT32_MAX into a short deadline. */
static uint32_t wait_deadline_ms(uint32_t timeout_ms) {
    if (!timeout_ms)
        return 0;
    return timeout_ms > UINT32_MAX - WAIT_MARGIN_MS ? UINT32_MAX : timeout_ms + WAIT_MARGIN_MS;
}

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int wait_rpc(sluice_client *c, char *const *ids, size_t n, const char *session,
                    uint32_t timeout_ms, Sluice__V1__WaitResponse **resp) {
    Sluice__V1__WaitRequest req = SLUICE__V1__WAIT_REQUEST__INIT;
    req.task_ids = (char **)ids;
    req.n_task_ids = n;
    if (session)
        req.session_id = (char *)session;
    req.timeout_ms = timeout_ms;
    /* what this client accepts: a bigger answer would fail on our side */
    req.max_response_bytes =
        c->max_message_bytes < UINT32_MAX ? (uint32_t)c->max_message_bytes : UINT32_MAX;
    req.omit_text_parts = true; /* the SDK reads the text from completion only */
    sluice_rpc_status st;
    sluice_rpc_call_opts o = {wait_deadline_ms(timeout_ms)};
    int rc = sluice__v1__sluice__wait__rpc(c->ch, &req, resp, &o, &st);
    return rc ? sdk_rpc_fail(rc, &st, "Wait") : 0;
}

/* The ids a wait still wants, in request order, and where their results go: finished
 * tasks an answer left out (more_task_ids: fetched at once) and unfinished ones (pending:
 * waited for, Wait after Wait, since one Wait blocks at most the server's cap). */
typedef struct wanted {
    char **ids;
    size_t *pos;
    bool *more;
    size_t n, n_more;
} wanted;

static void wanted_cleanup(wanted *w) {
    sdk_strings_free(w->ids, w->n);
    free(w->pos);
    free(w->more);
    memset(w, 0, sizeof *w);
}

static int wanted_add(wanted *w, const char *id, size_t pos, bool more) {
    if (!(w->ids[w->n] = sdk_strdup(id)))
        return sdk_fail(SLUICE_ENOMEM, "out of memory");
    w->pos[w->n] = pos;
    w->more[w->n++] = more;
    w->n_more += more;
    return 0;
}

/* Puts the results of an answer whose entries belong at rs[pos[0 .. n_results)] and
 * gathers the ids still wanted into *next: the entries without a response, listed in
 * more_task_ids (in order) or pending. *got counts the results taken. Returns SLUICE_OK,
 * SLUICE_EPROTO (more_task_ids that are not entries of the answer) or SLUICE_ENOMEM. */
static int absorb(Sluice__V1__WaitResponse *resp, const size_t *pos, sluice_response **rs,
                  wanted *next, size_t *got) {
    size_t m = 0, want = resp->n_more_task_ids, k = resp->n_results;
    next->ids = calloc(k ? k : 1, sizeof *next->ids);
    next->pos = calloc(k ? k : 1, sizeof *next->pos);
    next->more = calloc(k ? k : 1, sizeof *next->more);
    if (!next->ids || !next->pos || !next->more)
        return sdk_fail(SLUICE_ENOMEM, "out of memory");
    for (size_t j = 0; j < k; j++) {
        Sluice__V1__TaskResult *tr = resp->results[j];
        int rc = from_result(tr, &rs[pos[j]]);
        if (rc)
            return rc;
        *got += rs[pos[j]] != NULL;
        if (rs[pos[j]])
            continue;
        bool more = m < want && strcmp(tr->task_id, resp->more_task_ids[m]) == 0;
        m += more;
        if ((rc = wanted_add(next, tr->task_id, pos[j], more)) != 0)
            return rc;
    }
    if (m != want)
        return sdk_fail(SLUICE_EPROTO, "Wait named %zu results to fetch again, %zu of its tasks",
                        want, m);
    return 0;
}

/* Past the deadline only results known to be finished are fetched: the pending ids are
 * dropped (their entries stay NULL). */
static void drop_pending(wanted *w) {
    size_t k = 0;
    for (size_t i = 0; i < w->n; i++) {
        if (!w->more[i]) {
            free(w->ids[i]);
            continue;
        }
        w->ids[k] = w->ids[i];
        w->pos[k] = w->pos[i];
        w->more[k++] = true;
    }
    w->n = k;
}

/* Waits for what the first answer did not bring, Wait after Wait, until everything came or
 * the timeout passed (started at start_ms; 0 = none). A round of results left out only
 * for room that brings none fails with SLUICE_ELIMIT instead of going round forever. */
static int wait_rounds(sluice_client *c, wanted *w, uint32_t timeout_ms, uint64_t start_ms,
                       sluice_response **rs) {
    int rc = 0;
    while (!rc && w->n) {
        uint64_t waited = now_ms() - start_ms;
        bool expired = timeout_ms && waited >= timeout_ms;
        if (expired) {
            drop_pending(w);
            if (!w->n)
                break;
        }
        /* a finished task is answered at once whatever the timeout (1: not "none") */
        uint32_t t = expired ? 1 : timeout_ms ? (uint32_t)(timeout_ms - waited) : 0;
        bool only_more = w->n_more == w->n;
        Sluice__V1__WaitResponse *resp = NULL;
        if ((rc = wait_rpc(c, w->ids, w->n, NULL, t, &resp)) != 0)
            break;
        wanted next = {0};
        size_t got = 0;
        if (resp->n_results != w->n)
            rc = sdk_fail(SLUICE_EPROTO, "Wait answered %zu results for %zu ids", resp->n_results,
                          w->n);
        else if ((rc = absorb(resp, w->pos, rs, &next, &got)) == 0 && got == 0 && only_more)
            rc = sdk_fail(SLUICE_ELIMIT,
                          "Wait brought none of the %zu results it left out before (each "
                          "too large for an answer of %zu bytes?)",
                          w->n, c->max_message_bytes);
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        wanted_cleanup(w);
        *w = next;
    }
    wanted_cleanup(w);
    return rc;
}

int sluice_wait_for_all(sluice_client *c, const char *const *task_ids, size_t n,
                        uint32_t timeout_ms, sluice_response ***out, size_t *n_out) {
    sdk_clear_error();
    if (!out || !n_out)
        return sdk_fail(SLUICE_EINVAL, "out and n_out are required");
    *out = NULL;
    *n_out = 0;
    int rc = check_ids(task_ids, n);
    if (rc)
        return rc;
    uint64_t start = now_ms();
    char *session = NULL;
    if (n == 0 && !(session = sdk_session(c, false, &rc)))
        return rc;
    Sluice__V1__WaitResponse *resp = NULL;
    rc = wait_rpc(c, (char *const *)task_ids, n, session, timeout_ms, &resp);
    free(session);
    if (rc)
        return rc;
    size_t k = resp->n_results;
    if (n && k != n) { /* a misbehaving server: nothing of it is used */
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        return sdk_fail(SLUICE_EPROTO, "Wait answered %zu results for %zu ids", k, n);
    }
    sluice_response **rs = calloc(k ? k : 1, sizeof *rs);
    size_t *pos = calloc(k ? k : 1, sizeof *pos);
    wanted rest = {0};
    size_t got = 0;
    if (!rs || !pos) {
        rc = sdk_fail(SLUICE_ENOMEM, "out of memory");
    } else {
        for (size_t i = 0; i < k; i++)
            pos[i] = i;
        rc = absorb(resp, pos, rs, &rest, &got);
    }
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    free(pos);
    if (!rc)
        rc = wait_rounds(c, &rest, timeout_ms, start, rs);
    wanted_cleanup(&rest);
    if (rc) {
        sluice_responses_free(rs, rs ? k : 0);
        return rc;
    }
    bool all = true;
    for (size_t i = 0; i < k; i++)
        all &= rs[i] != NULL;
    *n_out = k;
    *out = rs;
    return all ? 0 : sdk_fail(SLUICE_ETIMEDOUT, "some tasks were still running at the timeout");
}

int sluice_wait_for(sluice_client *c, const char *task_id, uint32_t timeout_ms,
                    sluice_response **out) {
    if (!task_id || !out) {
        sdk_clear_error();
        return sdk_fail(SLUICE_EINVAL, "task_id and out are required");
    }
    *out = NULL;
    sluice_response **rs = NULL;
    size_t n = 0;
    int rc = sluice_wait_for_all(c, &task_id, 1, timeout_ms, &rs, &n);
    if (n == 1 && rs[0] && sluice_response_error_kind(rs[0]) == SLUICE_ERROR_NOT_FOUND) {
        /* one id: its not being found is the call's error (as it always was) */
        rc = sdk_fail(SLUICE_ENOTFOUND, "Wait: %s", sluice_response_error_message(rs[0]));
        sluice_responses_free(rs, n);
    } else if (n == 1) {
        *out = rs[0];
        free(rs);
    } else {
        sluice_responses_free(rs, n);
    }
    return rc;
}

int sluice_start(sluice_client *c, const sluice_prompt *prompt, sluice_response **out) {
    char *id = NULL;
    int rc = sluice_start_nowait(c, prompt, &id);
    if (rc)
        return rc;
    rc = sluice_wait_for(c, id, 0, out);
    free(id);
    return rc;
}

int sluice_cancel(sluice_client *c, const char *const *task_ids, size_t n, size_t *cancelled) {
    sdk_clear_error();
    int rc = check_ids(task_ids, n);
    if (rc)
        return rc;
    char *session = sdk_session(c, false, &rc);
    if (!session)
        return rc;
    Sluice__V1__CancelRequest req = SLUICE__V1__CANCEL_REQUEST__INIT;
    req.session_id = session;
    req.task_ids = (char **)task_ids;
    req.n_task_ids = n;
    Sluice__V1__CancelResponse *resp = NULL;
    sluice_rpc_status st;
    sluice_rpc_call_opts o = sdk_call_opts(c);
    rc = sluice__v1__sluice__cancel__rpc(c->ch, &req, &resp, &o, &st);
    free(session);
    if (rc)
        return sdk_rpc_fail(rc, &st, "Cancel");
    if (cancelled)
        *cancelled = resp->cancelled;
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return 0;
}

/* ---- as_completed ------------------------------------------------------------------- */

struct sluice_iter {
    sluice_rpc_call *call;
    bool done;
    int failed;                   /* the error that ended the stream (then done too) */
    Sluice__V1__TaskResult *held; /* read, not yet handed out (out of memory last time) */
};

int sluice_as_completed(sluice_client *c, const char *const *task_ids, size_t n,
                        sluice_iter **out) {
    sdk_clear_error();
    if (!out)
        return sdk_fail(SLUICE_EINVAL, "out is required");
    int rc = check_ids(task_ids, n);
    if (rc)
        return rc;
    char *session = NULL;
    if (n == 0 && !(session = sdk_session(c, false, &rc)))
        return rc;
    sluice_iter *it = calloc(1, sizeof *it);
    if (!it) {
        free(session);
        return sdk_fail(SLUICE_ENOMEM, "out of memory");
    }
    Sluice__V1__AsCompletedRequest req = SLUICE__V1__AS_COMPLETED_REQUEST__INIT;
    req.task_ids = (char **)task_ids;
    req.n_task_ids = n;
    if (session)
        req.session_id = session;
    req.omit_text_parts = true;
    sluice_rpc_call_opts o = {0};
    rc = sluice__v1__sluice__as_completed__start(c->ch, &req, &o, &it->call);
    free(session);
    if (rc) {
        free(it);
        return sdk_fail(rc, "AsCompleted: could not start the call");
    }
    *out = it;
    return 0;
}

/* The next message of the stream; SLUICE_EEOF at its end. A stream that ended with an
 * error keeps returning it (never a plain end: tasks may be missing). */
static int read_next(sluice_iter *it, Sluice__V1__TaskResult **tr) {
    if (it->failed)
        return sdk_fail(it->failed, "AsCompleted: the stream ended with an error before (%s)",
                        sluice_strerror(it->failed));
    if (it->done)
        return SLUICE_EEOF;
    int rc = sluice__v1__sluice__as_completed__read(it->call, tr);
    if (rc == SLUICE_EEOF) {
        it->done = true;
        sluice_rpc_status st;
        int frc = sluice_rpc_call_finish(it->call, NULL, &st);
        if (!frc)
            return SLUICE_EEOF;
        it->failed = frc;
        return sdk_rpc_fail(frc, &st, "AsCompleted");
    }
    if (rc) { /* a local failure: abandon the call rather than drain it */
        it->done = true;
        it->failed = rc;
        sluice_rpc_call_cancel(it->call);
        return sdk_fail(rc, "AsCompleted: %s", sluice_strerror(rc));
    }
    return 0;
}

int sluice_iter_next(sluice_iter *it, sluice_response **out) {
    sdk_clear_error();
    for (;;) {
        Sluice__V1__TaskResult *tr = it->held;
        it->held = NULL;
        int rc = tr ? 0 : read_next(it, &tr);
        if (rc)
            return rc;
        if (tr->heartbeat) { /* the server keeping an idle stream open: nothing to yield */
            protobuf_c_message_free_unpacked(&tr->base, NULL);
            continue;
        }
        sluice_response *r;
        if ((rc = from_result(tr, &r)) != 0) {
            it->held = tr; /* handed out by the next call */
            return rc;
        }
        protobuf_c_message_free_unpacked(&tr->base, NULL);
        if (r) {
            *out = r;
            return 0;
        }
    }
}

void sluice_iter_free(sluice_iter *it) {
    if (!it)
        return;
    if (it->held)
        protobuf_c_message_free_unpacked(&it->held->base, NULL);
    sluice_rpc_call_free(it->call);
    free(it);
}
