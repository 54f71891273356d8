/*
 * The session record (see sessrec.h):
 *   {"config": {"name", "models": [{"name", "weight", "sampling"}], "sampling", "rpm",
 *               "tpm", "concurrent", "max_attempts", "request_timeout_ms",
 *               "task_timeout_ms", "cache_mode"},
 *    "tracker": {"total", "succeeded", ... "cost", "cost_saved"}, "opened_unix_ms"}
 * "total" counts the durable tasks that resume after a restart (they are counted before
 * they are persisted), and "opened_unix_ms" carries the tracker's clock across it.
 * Sampling parameters carry their `set` mask and every value (only set ones matter).
 * Objects are packed with "O" (the packer takes a reference of its own), so a failed pack
 * leaves nothing behind whatever jansson does with stolen references on error.
 */
#include "sessrec.h"

#include "server/common/alloc.h"
#include "sluice/status.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- encoding ----------------------------------------------------------------------- */

/* Fails the encoding: the first message wins. */
static json_t *encode_fail(char *err, size_t errlen, const char *field) {
    if (err && errlen && !err[0])
        snprintf(err, errlen, "%s: not valid UTF-8", field);
    return NULL;
}

static json_t *sampling_to_json(const llm_sampling *s, const char *where, char *err,
                                size_t errlen) {
    json_t *stop = json_array();
    for (size_t i = 0; stop && i < s->n_stop; i++) {
        if (json_array_append_new(stop, json_string(s->stop[i])) != 0) {
            char field[96];
            snprintf(field, sizeof field, "%s.stop[%zu]", where, i);
            json_decref(stop);
            return encode_fail(err, errlen, field);
        }
    }
    json_t *j = stop ? json_pack("{s:i, s:f, s:f, s:I, s:O, s:i, s:I, s:b}", "set", (int)s->set,
                                 "temperature", s->temperature, "top_p", s->top_p, "max_new_tokens",
                                 (json_int_t)s->max_new_tokens, "stop", stop, "effort",
                                 (int)s->effort, "thinking_budget", (json_int_t)s->thinking_budget,
                                 "json_mode", (int)s->json_mode)
                     : NULL;
    json_decref(stop);
    return j ? j : encode_fail(err, errlen, where);
}

static json_t *models_to_json(const dsession_config *c, char *err, size_t errlen) {
    json_t *models = json_array();
    for (size_t i = 0; models && i < c->n_models; i++) {
        char where[64];
        snprintf(where, sizeof where, "models[%zu].sampling", i);
        json_t *sampling = sampling_to_json(&c->models[i].sampling, where, err, errlen);
        json_t *m = sampling ? json_pack("{s:s, s:f, s:O}", "name", c->models[i].name, "weight",
                                         c->models[i].weight, "sampling", sampling)
                             : NULL;
        json_decref(sampling);
        if (json_array_append_new(models, m) != 0) {
            snprintf(where, sizeof where, "models[%zu].name", i);
            json_decref(models);
            return encode_fail(err, errlen, where);
        }
    }
    return models;
}

static json_t *config_to_json(const dsession_config *c, char *err, size_t errlen) {
    json_t *models = models_to_json(c, err, errlen);
    json_t *sampling = models ? sampling_to_json(&c->sampling, "sampling", err, errlen) : NULL;
    json_t *j =
        sampling
            ? json_pack("{s:s, s:O, s:O, s:I, s:I, s:I, s:I, s:I, s:I, s:i}", "name",
                        c->name ? c->name : "", "models", models, "sampling", sampling, "rpm",
                        (json_int_t)c->max_requests_per_minute, "tpm",
                        (json_int_t)c->max_tokens_per_minute, "concurrent",
                        (json_int_t)c->max_concurrent, "max_attempts", (json_int_t)c->max_attempts,
                        "request_timeout_ms", (json_int_t)c->request_timeout_ms, "task_timeout_ms",
                        (json_int_t)c->task_timeout_ms, "cache_mode", (int)c->cache_mode)
            : NULL;
    json_decref(models);
    json_decref(sampling);
    return j ? j : encode_fail(err, errlen, "name");
}

static json_t *status_to_json(const dsession_status *st) {
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f}",
                     "total", (json_int_t)st->total, "succeeded", (json_int_t)st->succeeded,
                     "failed", (json_int_t)st->failed, "cached", (json_int_t)st->cached,
                     "cancelled", (json_int_t)st->cancelled, "rate_limit_errors",
                     (json_int_t)st->rate_limit_errors, "attempts", (json_int_t)st->attempts,
                     "deduplicated", (json_int_t)st->deduplicated, "input_tokens",
                     (json_int_t)st->input_tokens, "output_tokens", (json_int_t)st->output_tokens,
                     "cache_read_tokens", (json_int_t)st->cache_read_tokens, "cache_write_tokens",
                     (json_int_t)st->cache_write_tokens, "cost", st->cost, "cost_saved",
                     st->cost_saved);
}

char *sessrec_encode(const dsession_config *cfg, const dsession_status *st, uint64_t opened_unix_ms,
                     char *err, size_t errlen) {
    if (err && errlen)
        err[0] = '\0';
    json_t *config = config_to_json(cfg, err, errlen);
    json_t *tracker = config ? status_to_json(st) : NULL;
    json_t *rec = tracker ? json_pack("{s:O, s:O, s:I}", "config", config, "tracker", tracker,
                                      "opened_unix_ms", (json_int_t)opened_unix_ms)
                          : NULL;
    char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(config);
    json_decref(tracker);
    json_decref(rec);
    if (!text && err && errlen && !err[0])
        snprintf(err, errlen, "the session record could not be encoded");
    return text;
}

/* ---- decoding ----------------------------------------------------------------------- */

static int sampling_from_json(const json_t *j, llm_sampling *s, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    int set = 0, effort = 0, json_mode = 0;
    json_int_t mnt = 0, budget = 0;
    json_t *stop = NULL;
    if (!j ||
        json_unpack((json_t *)j, "{s:i, s:F, s:F, s:I, s:o, s:i, s:I, s:b}", "set", &set,
                    "temperature", &s->temperature, "top_p", &s->top_p, "max_new_tokens", &mnt,
                    "stop", &stop, "effort", &effort, "thinking_budget", &budget, "json_mode",
                    &json_mode) != 0 ||
        !json_is_array(stop) || json_array_size(stop) > LLM_MAX_STOP) {
        snprintf(err, errlen, "session record: malformed sampling");
        return SLUICE_EPROTO;
    }
    s->set = (unsigned)set;
    s->max_new_tokens = (uint32_t)mnt;
    s->effort = (llm_effort)effort;
    s->thinking_budget = (uint32_t)budget;
    s->json_mode = json_mode;
    for (size_t i = 0; i < json_array_size(stop); i++) {
        const char *v = json_string_value(json_array_get(stop, i));
        s->stop[s->n_stop++] = xstrdup(v ? v : "");
    }
    return 0;
}

static int models_from_json(const json_t *models, dsession_config *c, char *err, size_t errlen) {
    c->n_models = json_array_size(models);
    c->models = XNEWV(dsession_model, c->n_models);
    for (size_t i = 0; i < c->n_models; i++) {
        const char *mn = "";
        double w = 0;
        json_t *ms = NULL;
        if (json_unpack(json_array_get(models, i), "{s:s, s:F, s:o}", "name", &mn, "weight", &w,
                        "sampling", &ms)) {
            snprintf(err, errlen, "session record: models[%zu] malformed", i);
            return SLUICE_EPROTO;
        }
        c->models[i].name = xstrdup(mn);
        c->models[i].weight = w;
        int rc = sampling_from_json(ms, &c->models[i].sampling, err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

static int config_from_json(const json_t *j, const char *tenant, dsession_config *c, char *err,
                            size_t errlen) {
    memset(c, 0, sizeof *c);
    const char *name = "";
    json_t *models = NULL, *sampling = NULL;
    json_int_t rpm, tpm, conc, att, rto, tto;
    int mode;
    json_error_t je;
    if (!j ||
        json_unpack_ex((json_t *)j, &je, 0, "{s:s, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:i}",
                       "name", &name, "models", &models, "sampling", &sampling, "rpm", &rpm, "tpm",
                       &tpm, "concurrent", &conc, "max_attempts", &att, "request_timeout_ms", &rto,
                       "task_timeout_ms", &tto, "cache_mode", &mode) != 0 ||
        !json_is_array(models)) {
        snprintf(err, errlen, "session record: %s", j ? je.text : "no config");
        return SLUICE_EPROTO;
    }
    c->tenant = xstrdup(tenant);
    c->name = *name ? xstrdup(name) : NULL;
    c->max_requests_per_minute = (uint32_t)rpm;
    c->max_tokens_per_minute = (uint32_t)tpm;
    c->max_concurrent = (uint32_t)conc;
    c->max_attempts = (uint32_t)att;
    c->request_timeout_ms = (uint32_t)rto;
    c->task_timeout_ms = (uint32_t)tto;
    c->cache_mode = (cache_mode)mode;
    int rc = sampling_from_json(sampling, &c->sampling, err, errlen);
    if (!rc)
        rc = models_from_json(models, c, err, errlen);
    if (rc)
        dsession_config_cleanup(c);
    return rc;
}

static void status_from_json(const json_t *j, dsession_status *st) {
    memset(st, 0, sizeof *st);
    json_int_t v[12] = {0};
    json_unpack((json_t *)j,
                "{s?I, s?I, s?I, s?I, s?I, s?I, s?I, s?I, s?I, s?I, s?I, s?I, s?F, s?F}", "total",
                &v[0], "succeeded", &v[1], "failed", &v[2], "cached", &v[3], "cancelled", &v[4],
                "rate_limit_errors", &v[5], "attempts", &v[6], "deduplicated", &v[7],
                "input_tokens", &v[8], "output_tokens", &v[9], "cache_read_tokens", &v[10],
                "cache_write_tokens", &v[11], "cost", &st->cost, "cost_saved", &st->cost_saved);
    uint64_t *dst[12] = {&st->total,         &st->succeeded,         &st->failed,
                         &st->cached,        &st->cancelled,         &st->rate_limit_errors,
                         &st->attempts,      &st->deduplicated,      &st->input_tokens,
                         &st->output_tokens, &st->cache_read_tokens, &st->cache_write_tokens};
    for (int i = 0; i < 12; i++)
        *dst[i] = (uint64_t)v[i];
    st->started = st->succeeded + st->failed;
}

int sessrec_decode(const char *data, size_t len, const char *tenant, dsession_config *cfg,
                   dsession_status *st, uint64_t *opened_unix_ms, char *err, size_t errlen) {
    json_error_t je;
    *opened_unix_ms = 0;
    json_t *rec = json_loadb(data, len, 0, &je);
    if (!rec) {
        memset(cfg, 0, sizeof *cfg);
        snprintf(err, errlen, "session record: %s", je.text);
        return SLUICE_EPROTO;
    }
    int rc = config_from_json(json_object_get(rec, "config"), tenant, cfg, err, errlen);
    if (!rc) {
        status_from_json(json_object_get(rec, "tracker"), st);
        json_t *opened = json_object_get(rec, "opened_unix_ms");
        if (json_is_integer(opened) && json_integer_value(opened) > 0)
            *opened_unix_ms = (uint64_t)json_integer_value(opened);
    }
    json_decref(rec);
    return rc;
}
