/*
 * fake_control.c - control endpoints and the JSON settings document (see fake_control.h).
 *
 * A settings document is walked twice by the same code: first to validate every field
 * (nothing applied, the first error reported with its field name), then to apply. So a
 * POST /_fake/config with one bad field changes nothing, which keeps crash tests that
 * reconfigure a running fake deterministic.
 */
#include "tests/fake_provider/fake_control.h"

#include "server/common/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cfg_walk {
    fake_state *st;
    bool apply;
    char *err;
    size_t errlen;
} cfg_walk;

static int fail(cfg_walk *w, const char *field, const char *what) {
    snprintf(w->err, w->errlen, "%s: %s", field, what);
    return -1;
}

static int get_u32(cfg_walk *w, const json_t *v, const char *field, uint32_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > (json_int_t)UINT32_MAX)
        return fail(w, field, "expected an integer in [0, 4294967295]");
    *out = (uint32_t)json_integer_value(v);
    return 0;
}

/* Reads an optional unsigned field of `obj`, leaving *out unchanged when absent. */
static int opt_u32(cfg_walk *w, const json_t *obj, const char *field, uint32_t *out) {
    const json_t *v = json_object_get(obj, field);
    return v ? get_u32(w, v, field, out) : 0;
}

static int walk_limits(cfg_walk *w, const json_t *doc) {
    json_t *cur = fake_state_config_json(w->st);
    uint32_t rpm = (uint32_t)json_integer_value(json_object_get(cur, "rpm"));
    uint32_t tpm = (uint32_t)json_integer_value(json_object_get(cur, "tpm"));
    uint32_t win = (uint32_t)json_integer_value(json_object_get(cur, "window_ms"));
    uint32_t lat = (uint32_t)json_integer_value(json_object_get(cur, "latency_ms"));
    uint32_t jit = (uint32_t)json_integer_value(json_object_get(cur, "jitter_ms"));
    json_decref(cur);
    if (opt_u32(w, doc, "rpm", &rpm) || opt_u32(w, doc, "tpm", &tpm) ||
        opt_u32(w, doc, "window_ms", &win) || opt_u32(w, doc, "latency_ms", &lat) ||
        opt_u32(w, doc, "jitter_ms", &jit))
        return -1;
    if (!w->apply)
        return 0;
    if (json_object_get(doc, "rpm") || json_object_get(doc, "tpm") ||
        json_object_get(doc, "window_ms"))
        fake_state_set_limits(w->st, NULL, rpm, tpm, win);
    if (json_object_get(doc, "latency_ms") || json_object_get(doc, "jitter_ms"))
        fake_state_set_latency(w->st, lat, jit);
    return 0;
}

static int walk_keys(cfg_walk *w, const json_t *keys) {
    if (!keys)
        return 0;
    if (!json_is_object(keys))
        return fail(w, "keys", "expected an object of {rpm, tpm, window_ms}");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)keys, k, v) {
        uint32_t rpm = 0, tpm = 0, win = 0;
        if (!json_is_object(v))
            return fail(w, "keys", "each key needs an object");
        if (opt_u32(w, v, "rpm", &rpm) || opt_u32(w, v, "tpm", &tpm) ||
            opt_u32(w, v, "window_ms", &win))
            return -1;
        if (w->apply)
            fake_state_set_limits(w->st, k, rpm, tpm, win);
    }
    return 0;
}

static int walk_models(cfg_walk *w, const json_t *unknown, const json_t *forced) {
    if (unknown && !json_is_array(unknown))
        return fail(w, "unknown_models", "expected an array of strings");
    size_t i;
    json_t *v;
    json_array_foreach(unknown, i, v) {
        if (!json_is_string(v))
            return fail(w, "unknown_models", "expected an array of strings");
        if (w->apply)
            fake_state_add_unknown(w->st, json_string_value(v));
    }
    if (forced && !json_is_object(forced))
        return fail(w, "force_status", "expected an object of model -> status");
    const char *model;
    json_object_foreach((json_t *)forced, model, v) {
        json_int_t s = json_integer_value(v);
        if (!json_is_integer(v) || (s != 0 && (s < 100 || s > 599)))
            return fail(w, "force_status", "status must be 0 (clear) or 100..599");
        if (w->apply)
            fake_state_force_status(w->st, model, (int)s);
    }
    return 0;
}

/* Collects a script's headers object into "Name: value" lines (caller frees). */
static char **header_lines(const json_t *headers, size_t *n) {
    *n = json_object_size(headers);
    char **lines = XNEWV(char *, *n);
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)headers, k, v) {
        lines[i++] = xasprintf("%s: %s", k, json_string_value(v));
    }
    return lines;
}

static int walk_script_entry(cfg_walk *w, const json_t *e) {
    const json_t *model = json_object_get(e, "model"), *headers = json_object_get(e, "headers");
    const json_t *body = json_object_get(e, "body"), *status = json_object_get(e, "status");
    uint32_t count = 1;
    if (!json_is_string(model))
        return fail(w, "script", "each entry needs a \"model\" string");
    if (!json_is_integer(status) || json_integer_value(status) < 100 ||
        json_integer_value(status) > 599)
        return fail(w, "script", "each entry needs a \"status\" in 100..599");
    if (opt_u32(w, e, "count", &count))
        return -1;
    const char *k;
    json_t *v;
    if (headers && !json_is_object(headers))
        return fail(w, "script", "\"headers\" must be an object of strings");
    json_object_foreach((json_t *)headers, k, v) {
        if (!json_is_string(v))
            return fail(w, "script", "\"headers\" must be an object of strings");
    }
    if (!w->apply)
        return 0;
    char *text = json_is_string(body) ? xstrdup(json_string_value(body))
                 : body               ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY)
                                      : NULL;
    size_t n = 0;
    char **lines = header_lines(headers, &n);
    fake_state_script(w->st, json_string_value(model), count, (int)json_integer_value(status),
                      (const char *const *)lines, n, text);
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
    free(text);
    return 0;
}

static int walk_scripts(cfg_walk *w, const json_t *script) {
    if (script && !json_is_array(script))
        return fail(w, "script", "expected an array of entries");
    size_t i;
    json_t *e;
    json_array_foreach(script, i, e) {
        if (walk_script_entry(w, e) != 0)
            return -1;
    }
    return 0;
}

static int walk_log(cfg_walk *w, const json_t *doc) {
    const json_t *on = json_object_get(doc, "request_log");
    uint32_t cap = 0;
    if (on && !json_is_boolean(on))
        return fail(w, "request_log", "expected true or false");
    if (opt_u32(w, doc, "request_log_capacity", &cap))
        return -1;
    if (w->apply && (on || cap)) {
        json_t *cur = fake_state_config_json(w->st);
        bool now_on = on ? json_is_true(on) : json_is_true(json_object_get(cur, "request_log"));
        json_decref(cur);
        fake_state_set_log(w->st, now_on, cap);
    }
    return 0;
}

static int opt_bool(cfg_walk *w, const json_t *obj, const char *field, bool *out) {
    const json_t *v = json_object_get(obj, field);
    if (v && !json_is_boolean(v))
        return fail(w, field, "expected true or false");
    if (v)
        *out = json_is_true(v);
    return 0;
}

/* gzip, chunked, the HTTP/2 settings and the one-shot stream programs. */
static int walk_wire(cfg_walk *w, const json_t *doc) {
    fake_wire wire;
    fake_state_wire(w->st, &wire);
    uint32_t refuse = 0, reset = 0;
    if (opt_bool(w, doc, "gzip", &wire.gzip) || opt_bool(w, doc, "chunked", &wire.chunked) ||
        opt_u32(w, doc, "h2_max_concurrent_streams", &wire.h2_max_streams) ||
        opt_u32(w, doc, "h2_goaway_after", &wire.h2_goaway_after) ||
        opt_u32(w, doc, "h2_refuse_streams", &refuse) || opt_u32(w, doc, "reset_next", &reset))
        return -1;
    if (!w->apply)
        return 0;
    fake_state_set_wire(w->st, &wire);
    if (json_object_get(doc, "h2_refuse_streams"))
        fake_state_refuse_streams(w->st, refuse);
    if (json_object_get(doc, "reset_next"))
        fake_state_reset_next(w->st, reset);
    return 0;
}

static const char *const known_fields[] = {"latency_ms",
                                           "jitter_ms",
                                           "rpm",
                                           "tpm",
                                           "window_ms",
                                           "keys",
                                           "unknown_models",
                                           "force_status",
                                           "script",
                                           "request_log",
                                           "request_log_capacity",
                                           "gzip",
                                           "chunked",
                                           "h2_max_concurrent_streams",
                                           "h2_goaway_after",
                                           "h2_refuse_streams",
                                           "reset_next",
                                           NULL};

static int walk_doc(cfg_walk *w, const json_t *doc) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)doc, k, v) {
        size_t i = 0;
        while (known_fields[i] && strcmp(known_fields[i], k) != 0)
            i++;
        if (!known_fields[i])
            return fail(w, k, "unknown field");
    }
    if (walk_limits(w, doc) || walk_keys(w, json_object_get(doc, "keys")) ||
        walk_models(w, json_object_get(doc, "unknown_models"),
                    json_object_get(doc, "force_status")) ||
        walk_scripts(w, json_object_get(doc, "script")) || walk_log(w, doc) || walk_wire(w, doc))
        return -1;
    return 0;
}

int fake_control_configure(fake_state *st, const char *json, size_t len, char *err, size_t errlen) {
    json_error_t jerr;
    json_t *doc = json_loadb(json, len, 0, &jerr);
    if (!json_is_object(doc)) {
        snprintf(err, errlen, "config: %s", doc ? "expected a JSON object" : jerr.text);
        json_decref(doc);
        return -1;
    }
    cfg_walk w = {st, false, err, errlen};
    int rc = walk_doc(&w, doc);
    if (rc == 0) {
        w.apply = true;
        rc = walk_doc(&w, doc);
    }
    json_decref(doc);
    return rc;
}

static void reply_json(fake_reply *out, int status, json_t *j) {
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    fake_reply_set(out, status, s);
}

static bool truthy(const char *v) {
    return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0);
}

static bool is(const fake_control_in *in, const char *method, const char *path) {
    return strcmp(in->method, method) == 0 && strcmp(in->path, path) == 0;
}

void fake_control_handle(fake_state *st, const fake_control_in *in, fake_reply *out) {
    char err[256];
    if (is(in, "GET", "/_fake/health")) {
        reply_json(out, 200, json_pack("{s:b}", "ok", 1));
    } else if (is(in, "GET", "/_fake/counters")) {
        reply_json(out, 200, fake_state_counters_json(st, truthy(in->arg_all)));
    } else if (is(in, "GET", "/_fake/config")) {
        reply_json(out, 200, fake_state_config_json(st));
    } else if (is(in, "GET", "/_fake/log")) {
        reply_json(out, 200, fake_state_log_json(st, in->arg_key));
    } else if (is(in, "POST", "/_fake/reset")) {
        fake_state_reset(st);
        reply_json(out, 200, json_pack("{s:b}", "ok", 1));
    } else if (is(in, "POST", "/_fake/config")) {
        if (in->body_too_large)
            reply_json(out, 413, json_pack("{s:s}", "error", "config document too large"));
        else if (fake_control_configure(st, in->body, in->body_len, err, sizeof err) != 0)
            reply_json(out, 400, json_pack("{s:s}", "error", err));
        else
            reply_json(out, 200, fake_state_config_json(st));
    } else {
        reply_json(out, 404, json_pack("{s:s}", "error", "unknown control endpoint"));
    }
}
