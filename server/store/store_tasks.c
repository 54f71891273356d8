/*
 * Durable tasks: records, state changes, results, the resume scan and the retention sweep.
 *
 * A task is two values in CF "tasks": the immutable record (<id>'r', a packed
 * sluice.store.v1.TaskRecord: tenant, session, index, custom_id, created_ms and the codec's
 * request), written once, and a small status (<id>'s': a fixed header - format, state,
 * finished_ms, has_result - then the codec's packed result once finished). A state change
 * rewrites only the status (a few bytes), never the request. Two index families make the
 * scans cheap: "tasks_open" holds the id of every unfinished task (the start-up resume scan
 * reads only those, however large the cache and the finished history are), "tasks_done"
 * holds (finished_ms, id) of finished ones in time order for the retention sweep.
 *
 * Records and status values are encoded on the caller's thread (the copy the API promises
 * is the encoding; a request or result the codec refuses fails the call with SLUICE_EINVAL
 * and a log line, before anything is queued); the writer only writes bytes. The writer
 * checks the current status before a state change (reading through the batch, so a change
 * queued right after the put sees it): changes of unknown tasks are ignored, and a finished
 * task stays finished with its first result, so a late or duplicate finish can never
 * overwrite an answer or resurrect a task.
 */
#include "server/store/store_internal.h"

#include "server/common/alloc.h"
#include "server/common/log.h"
#include "server/store/codec.h"
#include "sluice/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATUS_FORMAT 2  /* 1 carried the JSON result of store schema 1 */
#define STATUS_HEADER 11 /* format, state, finished_ms, has_result */

#define REC_TENANT SLUICE__STORE__V1__TASK_RECORD_PRESENCE__TASK_RECORD_PRESENCE_TENANT
#define REC_CUSTOM_ID SLUICE__STORE__V1__TASK_RECORD_PRESENCE__TASK_RECORD_PRESENCE_CUSTOM_ID
#define REC_ALL (REC_TENANT | REC_CUSTOM_ID)

typedef Sluice__Store__V1__TaskRecord pb_task_record;

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

/* The record: a packed TaskRecord around the codec's request tree (which borrows the
 * task's strings until packed). SLUICE_EINVAL when the codec refuses the request. */
static int record_encode(const store_task *t, char **out, size_t *len, char *err, size_t errlen) {
    pb_task_record m = SLUICE__STORE__V1__TASK_RECORD__INIT;
    int rc = codec_request_to_proto(t->request, &m.request, err, errlen);
    if (rc)
        return rc;
    if (t->tenant) {
        m.tenant = t->tenant;
        m.present |= REC_TENANT;
    }
    if (t->custom_id) {
        m.custom_id = t->custom_id;
        m.present |= REC_CUSTOM_ID;
    }
    m.session_id = t->session_id;
    m.index = t->index;
    m.created_ms = t->created_ms;
    uint8_t *v;
    codec_message_pack(&m.base, 0, &v, len);
    codec_request_proto_free(m.request);
    *out = (char *)v;
    return SLUICE_OK;
}

/* The status: the fixed header, then the packed result when there is one (an all-default
 * result packs to no bytes, hence the has_result byte). */
static int status_encode(int state, uint64_t finished_ms, const llm_response *result, char **out,
                         size_t *len, char *err, size_t errlen) {
    uint8_t *v;
    if (result) {
        int rc = codec_response_pack(result, STATUS_HEADER, &v, len, err, errlen);
        if (rc)
            return rc;
    } else {
        v = xmalloc(STATUS_HEADER);
        *len = STATUS_HEADER;
    }
    v[0] = STATUS_FORMAT;
    v[1] = (uint8_t)state;
    be64_put(v + 2, finished_ms);
    v[10] = result != NULL;
    *out = (char *)v;
    return SLUICE_OK;
}

/* A nullable string of the record (see records.proto "Presence"). */
static int record_str(const char *v, bool present, const char *field, char **out, char *err,
                      size_t errlen) {
    if (present)
        *out = xstrdup(v ? v : "");
    else if (v && *v) {
        snprintf(err, errlen, "record.%s: a value without its presence bit", field);
        return SLUICE_EPROTO;
    }
    return SLUICE_OK;
}

static int record_fields(const pb_task_record *m, store_task *t, char *err, size_t errlen) {
    if (m->base.n_unknown_fields) {
        snprintf(err, errlen, "record: unknown field %u", m->base.unknown_fields[0].tag);
        return SLUICE_EPROTO;
    }
    if (m->present & ~(uint32_t)REC_ALL) {
        snprintf(err, errlen, "record.present: undefined bits 0x%x", m->present & ~REC_ALL);
        return SLUICE_EPROTO;
    }
    if (!m->request) {
        snprintf(err, errlen, "record.request: missing");
        return SLUICE_EPROTO;
    }
    int rc = record_str(m->tenant, m->present & REC_TENANT, "tenant", &t->tenant, err, errlen);
    rc = rc ? rc
            : record_str(m->custom_id, m->present & REC_CUSTOM_ID, "custom_id", &t->custom_id, err,
                         errlen);
    t->session_id = m->session_id;
    t->index = m->index;
    t->created_ms = m->created_ms;
    return rc;
}

int store_task_record_decode(const char *v, size_t len, store_task *t, char *err, size_t errlen) {
    char why[192]; /* the caller's buffer has room for it and a prefix */
    ProtobufCMessage *pm = codec_message_unpack(&sluice__store__v1__task_record__descriptor,
                                                (const uint8_t *)v, len, why, sizeof why);
    if (!pm) {
        snprintf(err, errlen, "record: %s", why);
        return SLUICE_EPROTO;
    }
    const pb_task_record *m = (const pb_task_record *)pm;
    int rc = record_fields(m, t, err, errlen);
    if (!rc) {
        rc = codec_request_from_proto(m->request, &t->request, why, sizeof why);
        if (rc)
            snprintf(err, errlen, "record.request.%s", why);
    }
    codec_message_free(pm);
    return rc;
}

int store_task_status_decode(const char *v, size_t len, store_task *t, char *err, size_t errlen) {
    const uint8_t *p = (const uint8_t *)v;
    if (len < STATUS_HEADER || p[0] != STATUS_FORMAT || !state_valid(p[1]) || p[10] > 1 ||
        (!p[10] && len != STATUS_HEADER)) {
        snprintf(err, errlen, "status: bad header");
        return SLUICE_EPROTO;
    }
    t->state = (store_task_state)p[1];
    t->finished_ms = be64_get(p + 2);
    if (!p[10])
        return SLUICE_OK;
    char why[192];
    int rc =
        codec_response_unpack(p + STATUS_HEADER, len - STATUS_HEADER, &t->result, why, sizeof why);
    if (rc)
        snprintf(err, errlen, "status.result: %s", why);
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
        rc = store_task_record_decode(r, rlen, t, why, sizeof why);
        rc = rc ? rc : store_task_status_decode(st, slen, t, why, sizeof why);
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

static int enc_task(store_task_enc *e, const store_task *t) {
    char why[256];
    e->id = t->id;
    e->finished = state_finished(t->state);
    e->finished_ms = e->finished ? t->finished_ms : 0;
    int rc = record_encode(t, &e->record, &e->record_len, why, sizeof why);
    rc = rc ? rc
            : status_encode(t->state, e->finished_ms, e->finished ? t->result : NULL, &e->status,
                            &e->status_len, why, sizeof why);
    if (rc)
        LOG_WARN(STORE_MODULE, "task %llu: not stored: %s", (unsigned long long)t->id, why);
    return rc;
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
    for (size_t i = 0; i < n; i++) {
        if (enc_task(&op->tasks[i], tasks[i]) != SLUICE_OK) {
            store_op_free(op);
            return SLUICE_EINVAL;
        }
    }
    op->done = done;
    op->ud = ud;
    return store_enqueue(s, op);
}

/* Queues a status change; the new status value is encoded here, on the caller's thread. */
static int queue_change(store *s, uint64_t id, store_task_state state, const llm_response *result,
                        store_done_fn done, void *ud) {
    bool finish = state_finished((int)state);
    uint64_t when_ms = finish ? store_now(s) : 0;
    char *blob, why[256];
    size_t blob_len;
    if (status_encode((int)state, when_ms, result, &blob, &blob_len, why, sizeof why)) {
        LOG_WARN(STORE_MODULE, "task %llu: result not stored: %s", (unsigned long long)id, why);
        return SLUICE_EINVAL;
    }
    store_op *op = store_op_new(finish ? OP_TASK_FINISH : OP_TASK_STATE, 1);
    op->id = id;
    op->state = (int)state;
    op->when_ms = when_ms;
    op->blob = blob;
    op->blob_len = blob_len;
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

static sweep_verdict retention_visit(store *s, store_batch *b, const uint8_t *dk, size_t kl,
                                     const uint8_t *v, size_t vl, void *ctx) {
    (void)v;
    (void)vl;
    uint64_t now = *(const uint64_t *)ctx, keep = s->cfg.result_retention_ms;
    if (kl != 16)
        return SWEEP_SKIP;
    uint64_t fin = be64_get(dk);
    if (now < fin || now - fin < keep)
        return SWEEP_STOP;
    delete_task(s, b, dk);
    return SWEEP_DELETED;
}

bool store_tasks_sweep(store *s) {
    uint64_t now = store_now(s);
    return store_sweep_index(s, CF_TASKS_DONE, &s->done_hint_ms, retention_visit, &now);
}
