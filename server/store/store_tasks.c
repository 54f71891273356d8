/*
 * Durable tasks: records, state changes, results, the resume scan and the retention sweep.
 *
 * A task is two values in CF "tasks": the immutable record (<id>'r', JSON: tenant, session,
 * index, custom_id, created_ms and the codec request), written once, and a small status
 * (<id>'s': format, state, finished_ms, then the codec result once finished). A state change
 * rewrites only the status (a few bytes), never the request. Two index families make the
 * scans cheap: "tasks_open" holds the id of every unfinished task (the start-up resume scan
 * reads only those, however large the cache and the finished history are), "tasks_done"
 * holds (finished_ms, id) of finished ones in time order for the retention sweep.
 *
 * Records and status values are encoded on the caller's thread (the copy the API promises
 * is the encoding); the writer only writes bytes. The writer checks the current status before a
 * state change (reading through the batch, so a change queued right after the put sees it): changes
 * of unknown tasks are ignored, and a finished task stays finished with its first result, so a late
 * or duplicate finish can never overwrite an answer or resurrect a task.
 */
#include "server/store/store_internal.h"

#include "server/common/alloc.h"
#include "server/common/log.h"
#include "server/store/codec.h"
#include "server/store/fastjson.h"
#include "server/store/jfield.h"
#include "sluice/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATUS_FORMAT 1
#define STATUS_HEADER 10 /* format, state, finished_ms */
#define SWEEP_CHUNK 1000

static bool state_valid(int st) {
    return st >= STORE_TASK_QUEUED && st <= STORE_TASK_CANCELLED;
}

static bool state_finished(int st) {
    return st == STORE_TASK_SUCCEEDED || st == STORE_TASK_FAILED || st == STORE_TASK_CANCELLED;
}

static void task_key(uint8_t out[9], uint64_t id, char which) {
    be64_put(out, id);
    out[8] = (uint8_t)which;
}

/* ---- encoding ------------------------------------------------------------------------ */

static char *record_encode(const store_task *t, size_t *len) {
    json_t *j = json_object();
    if (t->tenant)
        json_object_set_new(j, "tenant", jf_string_new(t->tenant));
    json_object_set_new(j, "session_id", jf_u64_new(t->session_id));
    json_object_set_new(j, "index", jf_u64_new(t->index));
    if (t->custom_id)
        json_object_set_new(j, "custom_id", jf_string_new(t->custom_id));
    json_object_set_new(j, "created_ms", jf_u64_new(t->created_ms));
    json_object_set_new(j, "request", codec_request_to_json(t->request));
    char *text = fj_dump(j, len);
    json_decref(j);
    if (!text) { /* cannot happen: the codec writes only finite numbers and UTF-8 */
        text = xstrdup("{}");
        *len = 2;
    }
    return text;
}

static char *status_encode(int state, uint64_t finished_ms, const llm_response *result,
                           size_t *len) {
    char *text = NULL;
    size_t tlen = 0;
    if (result) {
        json_t *j = codec_response_to_json(result);
        text = fj_dump(j, &tlen);
        json_decref(j);
    }
    uint8_t *v = xmalloc(STATUS_HEADER + tlen);
    v[0] = STATUS_FORMAT;
    v[1] = (uint8_t)state;
    be64_put(v + 2, finished_ms);
    if (tlen)
        memcpy(v + STATUS_HEADER, text, tlen);
    free(text);
    *len = STATUS_HEADER + tlen;
    return (char *)v;
}

static int record_decode(const char *v, size_t len, store_task *t, char *err, size_t errlen) {
    static const char *const keys[] = {"tenant",     "session_id", "index", "custom_id",
                                       "created_ms", "request",    NULL};
    jdec d = {err, errlen};
    char why[128];
    json_t *j = fj_load(v, len, why, sizeof why);
    if (!j) {
        snprintf(err, errlen, "record: bad JSON: %s", why);
        return SLUICE_EPROTO;
    }
    const json_t *req = NULL;
    int rc = jf_require_object(j, "record", &d);
    rc = rc ? rc : jf_check_keys(j, "record", keys, &d);
    rc = rc ? rc : jf_str(j, "record", "tenant", false, &t->tenant, &d);
    rc = rc ? rc : jf_u64(j, "record", "session_id", true, &t->session_id, &d);
    rc = rc ? rc : jf_u64(j, "record", "index", true, &t->index, &d);
    rc = rc ? rc : jf_str(j, "record", "custom_id", false, &t->custom_id, &d);
    rc = rc ? rc : jf_u64(j, "record", "created_ms", true, &t->created_ms, &d);
    rc = rc ? rc : jf_object(j, "record", "request", true, &req, &d);
    rc = rc ? rc : codec_request_from_json(req, &t->request, err, errlen);
    json_decref(j);
    return rc;
}

static int status_decode(const char *v, size_t len, store_task *t, char *err, size_t errlen) {
    const uint8_t *p = (const uint8_t *)v;
    if (len < STATUS_HEADER || p[0] != STATUS_FORMAT || !state_valid(p[1])) {
        snprintf(err, errlen, "status: bad header");
        return SLUICE_EPROTO;
    }
    t->state = (store_task_state)p[1];
    t->finished_ms = be64_get(p + 2);
    if (len == STATUS_HEADER)
        return SLUICE_OK;
    char why[128];
    json_t *j = fj_load(v + STATUS_HEADER, len - STATUS_HEADER, why, sizeof why);
    if (!j) {
        snprintf(err, errlen, "status: bad JSON: %s", why);
        return SLUICE_EPROTO;
    }
    int rc = codec_response_from_json(j, &t->result, err, errlen);
    json_decref(j);
    return rc;
}

/* ---- reads --------------------------------------------------------------------------- */

void store_task_free(store_task *t) {
    if (!t)
        return;
    free(t->tenant);
    free(t->custom_id);
    llm_request_free(t->request);
    llm_response_free(t->result);
    free(t);
}

static char *get_value(store *s, uint64_t id, char which, size_t *len, int *rc) {
    uint8_t k[9];
    task_key(k, id, which);
    char *e = NULL;
    char *v = rocksdb_get_cf(s->db, s->ropts, s->cf[CF_TASKS], (const char *)k, sizeof k, len, &e);
    *rc = SLUICE_OK;
    if (e) {
        LOG_ERROR(STORE_MODULE, "task %llu: read failed: %s", (unsigned long long)id, e);
        rocksdb_free(e);
        *rc = SLUICE_EIO;
    } else if (!v) {
        *rc = SLUICE_ENOTFOUND;
    }
    return v;
}

int store_task_get(store *s, uint64_t id, store_task **out) {
    size_t rlen = 0, slen = 0;
    int rc;
    char *r = get_value(s, id, 'r', &rlen, &rc);
    char *st = rc ? NULL : get_value(s, id, 's', &slen, &rc);
    store_task *t = NULL;
    if (!rc) {
        char why[256];
        t = XNEW(store_task);
        t->id = id;
        rc = record_decode(r, rlen, t, why, sizeof why);
        rc = rc ? rc : status_decode(st, slen, t, why, sizeof why);
        if (rc) {
            LOG_WARN(STORE_MODULE, "task %llu: unreadable record: %s", (unsigned long long)id, why);
            store_task_free(t);
            t = NULL;
            rc = SLUICE_EIO;
        }
    }
    rocksdb_free(r);
    rocksdb_free(st);
    *out = t;
    return rc;
}

int store_tasks_scan_unfinished(store *s, store_task_visit_fn fn, void *ud) {
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ropts, s->cf[CF_TASKS_OPEN]);
    int rc = 0;
    for (rocksdb_iter_seek_to_first(it); rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        if (kl != 8)
            continue;
        store_task *t;
        if (store_task_get(s, be64_get(k), &t) != SLUICE_OK)
            continue; /* logged by store_task_get when unreadable */
        if (state_finished(t->state)) {
            store_task_free(t);
            continue;
        }
        rc = fn(ud, t);
    }
    rocksdb_iter_destroy(it);
    return rc;
}

/* ---- writes -------------------------------------------------------------------------- */

static void enc_task(store_task_enc *e, const store_task *t) {
    e->id = t->id;
    e->record = record_encode(t, &e->record_len);
    e->finished = state_finished(t->state);
    e->finished_ms = e->finished ? t->finished_ms : 0;
    e->status =
        status_encode(t->state, e->finished_ms, e->finished ? t->result : NULL, &e->status_len);
}

int store_tasks_put(store *s, const store_task *const *tasks, size_t n, store_done_fn done,
                    void *ud) {
    if (!tasks || n == 0)
        return SLUICE_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!tasks[i] || !tasks[i]->request || !state_valid(tasks[i]->state))
            return SLUICE_EINVAL;
    if (n > s->cfg.write_queue_max)
        return SLUICE_ELIMIT; /* could never fit: fail before encoding */
    store_op *op = store_op_new(OP_TASKS_PUT, n);
    op->tasks = XNEWV(store_task_enc, n);
    op->n_tasks = n;
    for (size_t i = 0; i < n; i++)
        enc_task(&op->tasks[i], tasks[i]);
    op->done = done;
    op->ud = ud;
    return store_enqueue(s, op);
}

/* Queues a status change; the new status value is encoded here, on the caller's thread. */
static int queue_change(store *s, uint64_t id, store_task_state state, const llm_response *result,
                        store_done_fn done, void *ud) {
    bool finish = state_finished((int)state);
    store_op *op = store_op_new(finish ? OP_TASK_FINISH : OP_TASK_STATE, 1);
    op->id = id;
    op->state = (int)state;
    op->when_ms = finish ? store_now(s) : 0;
    op->blob = status_encode((int)state, op->when_ms, result, &op->blob_len);
    op->done = done;
    op->ud = ud;
    return store_enqueue(s, op);
}

int store_task_set_state(store *s, uint64_t id, store_task_state state) {
    if (!state_valid((int)state))
        return SLUICE_EINVAL;
    return queue_change(s, id, state, NULL, NULL, NULL);
}

int store_task_finish(store *s, uint64_t id, store_task_state state, const llm_response *result,
                      store_done_fn done, void *ud) {
    if (!state_finished((int)state))
        return SLUICE_EINVAL;
    return queue_change(s, id, state, result, done, ud);
}

static void done_key(uint8_t out[16], uint64_t finished_ms, uint64_t id) {
    be64_put(out, finished_ms);
    be64_put(out + 8, id);
}

/* A put over an existing finished task must not leave its old retention entry behind
 * (the sweep would delete the new record at the old time). */
static void drop_old_done_entry(store *s, store_batch *b, uint64_t id) {
    uint8_t k[9], dk[16];
    task_key(k, id, 's');
    size_t len = 0;
    char *v = store_batch_get(s, b, CF_TASKS, k, sizeof k, &len);
    if (v && len >= STATUS_HEADER && v[0] == STATUS_FORMAT && state_finished(v[1])) {
        done_key(dk, be64_get((const uint8_t *)v + 2), id);
        store_batch_delete(b, s, CF_TASKS_DONE, dk, sizeof dk);
    }
    rocksdb_free(v);
}

static void apply_put(store *s, store_batch *b, const store_task_enc *e) {
    uint8_t k[9], ok[8], dk[16];
    drop_old_done_entry(s, b, e->id);
    task_key(k, e->id, 'r');
    store_batch_put(b, s, CF_TASKS, k, sizeof k, e->record, e->record_len);
    task_key(k, e->id, 's');
    store_batch_put(b, s, CF_TASKS, k, sizeof k, e->status, e->status_len);
    be64_put(ok, e->id);
    if (e->finished) {
        store_batch_delete(b, s, CF_TASKS_OPEN, ok, sizeof ok);
        done_key(dk, e->finished_ms, e->id);
        store_batch_put(b, s, CF_TASKS_DONE, dk, sizeof dk, "", 0);
        if (e->finished_ms < s->done_hint_ms)
            s->done_hint_ms = e->finished_ms;
    } else {
        store_batch_put(b, s, CF_TASKS_OPEN, ok, sizeof ok, "", 0);
    }
    b->tasks_written++;
}

/* The current state of task id as the batch sees it; 0 when unknown or unreadable. */
static int current_state(store *s, store_batch *b, uint64_t id) {
    uint8_t k[9];
    task_key(k, id, 's');
    size_t len = 0;
    char *v = store_batch_get(s, b, CF_TASKS, k, sizeof k, &len);
    int st = 0;
    if (v && len >= STATUS_HEADER && v[0] == STATUS_FORMAT && state_valid(v[1]))
        st = v[1];
    rocksdb_free(v);
    return st;
}

static void apply_change(store *s, store_batch *b, const store_op *op) {
    int cur = current_state(s, b, op->id);
    if (!cur || state_finished(cur)) {
        LOG_DEBUG(STORE_MODULE, "task %llu: state change to %d ignored (task %s)",
                  (unsigned long long)op->id, op->state, cur ? "already finished" : "unknown");
        return;
    }
    uint8_t k[9], ok[8], dk[16];
    task_key(k, op->id, 's');
    store_batch_put(b, s, CF_TASKS, k, sizeof k, op->blob, op->blob_len);
    if (op->kind != OP_TASK_FINISH)
        return;
    be64_put(ok, op->id);
    store_batch_delete(b, s, CF_TASKS_OPEN, ok, sizeof ok);
    done_key(dk, op->when_ms, op->id);
    store_batch_put(b, s, CF_TASKS_DONE, dk, sizeof dk, "", 0);
    if (op->when_ms < s->done_hint_ms)
        s->done_hint_ms = op->when_ms;
}

void store_tasks_apply(store *s, store_batch *b, const store_op *op) {
    if (op->kind == OP_TASKS_PUT) {
        for (size_t i = 0; i < op->n_tasks; i++)
            apply_put(s, b, &op->tasks[i]);
    } else {
        apply_change(s, b, op);
    }
}

/* ---- retention ----------------------------------------------------------------------- */

static void delete_task(store *s, store_batch *b, const uint8_t dk[16]) {
    uint8_t k[9];
    uint64_t id = be64_get(dk + 8);
    task_key(k, id, 'r');
    store_batch_delete(b, s, CF_TASKS, k, sizeof k);
    task_key(k, id, 's');
    store_batch_delete(b, s, CF_TASKS, k, sizeof k);
    store_batch_delete(b, s, CF_TASKS_DONE, dk, 16);
    b->tasks_deleted++;
}

bool store_tasks_sweep(store *s) {
    uint64_t now = store_now(s), keep = s->cfg.result_retention_ms;
    uint8_t lower[8];
    be64_put(lower, s->done_hint_ms);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)lower, sizeof lower);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, ro, s->cf[CF_TASKS_DONE]);
    store_batch b;
    store_batch_init(&b);
    int rc = SLUICE_OK;
    size_t done = 0;
    bool more = false;
    for (rocksdb_iter_seek(it, (const char *)lower, sizeof lower);
         rc == SLUICE_OK && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        if (done++ == STORE_SWEEP_PASS_MAX) {
            more = true;
            break;
        }
        size_t kl;
        const uint8_t *dk = (const uint8_t *)rocksdb_iter_key(it, &kl);
        if (kl != 16)
            continue;
        uint64_t fin = be64_get(dk);
        if (now < fin || now - fin < keep)
            break;
        delete_task(s, &b, dk);
        s->done_hint_ms = fin;
        if (rocksdb_writebatch_wi_count(b.wb) >= SWEEP_CHUNK)
            rc = store_batch_commit(s, &b);
    }
    rc = rc ? rc : store_batch_commit(s, &b);
    if (rc)
        s->done_hint_ms = 0;
    store_batch_cleanup(&b);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    return more && rc == SLUICE_OK;
}
