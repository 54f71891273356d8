/*
 * Shaping a Wait answer (see waitfit.h). Sizes are exact protobuf sizes: a message field
 * costs its tag (one byte for the field numbers used here), the varint of its length and
 * its length. The answer is first costed with every finished result left out (each entry
 * without its response, each such id in more_task_ids); then results are put back in
 * request order while they fit (and while fewer than max_results are in), each one
 * costing its response and saving its more id.
 */
#include "waitfit.h"

#include "server/common/alloc.h"
#include "sluice/status.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t varint_len(size_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Bytes of a length-delimited field with a one-byte tag and a `len`-byte payload. */
static size_t field_len(size_t len) {
    return 1 + varint_len(len) + len;
}

static size_t entry_len(const Sluice__V1__TaskResult *r) {
    return field_len(protobuf_c_message_get_packed_size(&r->base));
}

/* The entry's size without its response field. */
static size_t stub_len(const Sluice__V1__TaskResult *r) {
    size_t full = protobuf_c_message_get_packed_size(&r->base);
    size_t resp =
        r->response ? field_len(protobuf_c_message_get_packed_size(&r->response->base)) : 0;
    return field_len(full - resp);
}

/* An error response standing in for a result no answer can carry. */
static Sluice__V1__Response *too_large(size_t bytes, size_t limit) {
    Sluice__V1__Response *e = XNEW(Sluice__V1__Response);
    sluice__v1__response__init(e);
    e->is_error = true;
    e->error_kind = SLUICE__V1__ERROR_KIND__ERROR_KIND_TRANSPORT;
    e->error_message = xasprintf("the result is %zu bytes, more than a Wait answer may carry "
                                 "(limit %zu bytes): it cannot be sent",
                                 bytes, limit);
    return e;
}

/* The entries without a response, as pending_task_ids (pointing into the entries); returns
 * the bytes that list adds to the answer. */
static size_t list_pending(Sluice__V1__WaitResponse *resp) {
    size_t n = resp->n_results, bytes = 0;
    char **pending = XNEWV(char *, n ? n : 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (resp->results[i]->response)
            continue;
        pending[k++] = resp->results[i]->task_id;
        bytes += field_len(strlen(resp->results[i]->task_id));
    }
    resp->pending_task_ids = pending;
    resp->n_pending_task_ids = k;
    return bytes;
}

/* Leaves out the responses that do not fit in `budget` bytes or beyond max_results. */
static void leave_out(Sluice__V1__WaitResponse *resp, size_t limit, int64_t budget,
                      size_t max_results) {
    size_t n = resp->n_results, kept = 0, n_more = 0;
    char **more = XNEWV(char *, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        Sluice__V1__TaskResult *r = resp->results[i];
        if (!r->response)
            continue;
        /* alone in an answer it would not fit either: say so instead of sending it */
        if (2 + entry_len(r) > limit) {
            size_t bytes = protobuf_c_message_get_packed_size(&r->response->base);
            protobuf_c_message_free_unpacked(&r->response->base, NULL);
            r->response = too_large(bytes, limit);
        }
        int64_t cost =
            (int64_t)entry_len(r) - (int64_t)stub_len(r) - (int64_t)field_len(strlen(r->task_id));
        if (cost <= budget && (!max_results || kept < max_results)) {
            budget -= cost;
            kept++;
            continue;
        }
        protobuf_c_message_free_unpacked(&r->response->base, NULL);
        r->response = NULL;
        more[n_more++] = r->task_id;
    }
    resp->more_task_ids = more;
    resp->n_more_task_ids = n_more;
}

int waitfit(Sluice__V1__WaitResponse *resp, size_t limit, size_t max_results, char *err,
            size_t errlen) {
    size_t n = resp->n_results, total = 2, n_resp = 0; /* 2: all_done */
    Sluice__V1__TaskResult **rs = resp->results;
    size_t pending = list_pending(resp);
    total += pending;
    for (size_t i = 0; i < n; i++) {
        total += entry_len(rs[i]);
        n_resp += rs[i]->response != NULL;
    }
    if (total <= limit && (!max_results || n_resp <= max_results)) {
        resp->all_done = resp->n_pending_task_ids == 0;
        return SLUICE_OK;
    }
    /* Everything left out: the fixed part of the answer. */
    size_t base = 2 + pending;
    for (size_t i = 0; i < n; i++)
        base += rs[i]->response ? stub_len(rs[i]) + field_len(strlen(rs[i]->task_id))
                                : entry_len(rs[i]);
    if (base > limit) {
        waitfit_cleanup(resp);
        snprintf(err, errlen,
                 "the answer for %zu tasks is %zu bytes even without their results, more than "
                 "the limit of %zu bytes: wait for fewer tasks at a time",
                 n, base, limit);
        return SLUICE_ELIMIT;
    }
    leave_out(resp, limit, (int64_t)(limit - base), max_results);
    resp->all_done = resp->n_pending_task_ids == 0 && resp->n_more_task_ids == 0;
    return SLUICE_OK;
}

void waitfit_cleanup(Sluice__V1__WaitResponse *resp) {
    free(resp->more_task_ids);
    free(resp->pending_task_ids);
    resp->more_task_ids = resp->pending_task_ids = NULL;
    resp->n_more_task_ids = resp->n_pending_task_ids = 0;
}
