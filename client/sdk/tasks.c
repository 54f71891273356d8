/*
 * Start / Wait / AsCompleted / Cancel. start_nowait opens a session on first use (like
 * lm-deluge's auto-opened tracker); the others need one only when no ids are given.
 * Waits are unary RPCs whose deadline is the wait's timeout plus a margin, so a slow task
 * never turns into a transport error. An answer too large for one message leaves some
 * results out (WaitResponse.more_task_ids): wait_for_all fetches them with further Waits.
 */
#include "sdk_internal.h"

#include <stdlib.h>
#include <string.h>

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
    sluice_rpc_status st;
    sluice_rpc_call_opts o = {wait_deadline_ms(timeout_ms)};
    int rc = sluice__v1__sluice__wait__rpc(c->ch, &req, resp, &o, &st);
    return rc ? sdk_rpc_fail(rc, &st, "Wait") : 0;
}

/* Ids to fetch again (the answer's more_task_ids) and where their results go. */
typedef struct refetch {
    char **ids;
    size_t *pos;
    size_t n;
} refetch;

static void refetch_cleanup(refetch *f) {
    sdk_strings_free(f->ids, f->n);
    free(f->pos);
    memset(f, 0, sizeof *f);
}

/* Puts the results of an answer whose entries belong at rs[pos[0 .. n_results)] and
 * gathers the ids it left out for another Wait into *next (their entries come without a
 * response, in order). *got counts the results taken. Returns SLUICE_OK, SLUICE_EPROTO
 * (more_task_ids that are not entries of the answer) or SLUICE_ENOMEM. */
static int absorb(Sluice__V1__WaitResponse *resp, const size_t *pos, sluice_response **rs,
                  refetch *next, size_t *got) {
    size_t m = 0, want = resp->n_more_task_ids;
    next->ids = calloc(want ? want : 1, sizeof *next->ids);
    next->pos = calloc(want ? want : 1, sizeof *next->pos);
    if (!next->ids || !next->pos)
        return sdk_fail(SLUICE_ENOMEM, "out of memory");
    for (size_t j = 0; j < resp->n_results; j++) {
        Sluice__V1__TaskResult *tr = resp->results[j];
        int rc = from_result(tr, &rs[pos[j]]);
        if (rc)
            return rc;
        *got += rs[pos[j]] != NULL;
        if (!rs[pos[j]] && m < want && strcmp(tr->task_id, resp->more_task_ids[m]) == 0) {
            if (!(next->ids[next->n] = sdk_strdup(tr->task_id)))
                return sdk_fail(SLUICE_ENOMEM, "out of memory");
            next->pos[next->n++] = pos[j];
            m++;
        }
    }
    if (m != want)
        return sdk_fail(SLUICE_EPROTO, "Wait named %zu results to fetch again, %zu of its tasks",
                        want, m);
    return 0;
}

/* Fetches what the first answer left out (it did not fit in one message), Wait after
 * Wait, until everything came or a Wait brings nothing new. */
static int fetch_rest(sluice_client *c, refetch *f, uint32_t timeout_ms, sluice_response **rs) {
    int rc = 0;
    while (!rc && f->n) {
        Sluice__V1__WaitResponse *resp = NULL;
        if ((rc = wait_rpc(c, f->ids, f->n, NULL, timeout_ms, &resp)) != 0)
            break;
        refetch next = {NULL, NULL, 0};
        size_t got = 0;
        if (resp->n_results != f->n)
            rc = sdk_fail(SLUICE_EPROTO, "Wait answered %zu results for %zu ids", resp->n_results,
                          f->n);
        else if ((rc = absorb(resp, f->pos, rs, &next, &got)) == 0 && got == 0)
            rc = sdk_fail(SLUICE_ELIMIT,
                          "Wait brought none of the %zu results it left out before (each "
                          "too large for an answer of %zu bytes?)",
                          f->n, c->max_message_bytes);
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        refetch_cleanup(f);
        *f = next;
    }
    refetch_cleanup(f);
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
    refetch rest = {NULL, NULL, 0};
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
        rc = fetch_rest(c, &rest, timeout_ms, rs);
    refetch_cleanup(&rest);
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
    if (n == 1) {
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
