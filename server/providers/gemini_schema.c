/*
 * gemini_schema.c - JSON Schema to Gemini's Schema object (see gemini.h).
 *
 * Callers write JSON Schema (what OpenAI and Anthropic take). Gemini's responseSchema and
 * functionDeclarations[].parameters take an OpenAPI 3.0 subset instead, and refuse a
 * request whose schema holds a keyword outside it ("Unknown name \"additionalProperties\"")
 * or a string format other than enum and date-time. Schemas written for OpenAI's strict mode
 * carry additionalProperties: false on every object, so sending them as they are would fail
 * every such prompt on Gemini. The conversion copies what Gemini's Schema has, rewrites the
 * few JSON Schema forms with a Gemini equivalent, drops what only loosens or documents a
 * schema, and refuses what would change its meaning if dropped ($ref, allOf, tuples).
 * Recursion is bounded by GEMINI_SCHEMA_DEPTH. Pure; any thread.
 */
#include "server/providers/gemini.h"

#include "sluice/status.h"

#include <ctype.h>
#include <string.h>

#define GEMINI_SCHEMA_DEPTH 32

/* Keywords copied as they are: Gemini's Schema has them with JSON Schema's meaning. */
static const char *const copied[] = {
    "description",      "title",         "nullable",      "minimum",
    "maximum",          "minItems",      "maxItems",      "minLength",
    "maxLength",        "pattern",       "enum",          "required",
    "default",          "minProperties", "maxProperties", "example",
    "propertyOrdering",
};

/* Formats Gemini accepts, by type (others are refused by Gemini, so they are dropped). */
static bool format_known(const char *type, const char *format) {
    static const char *const known[][2] = {
        {"STRING", "enum"},   {"STRING", "date-time"}, {"NUMBER", "float"},
        {"NUMBER", "double"}, {"INTEGER", "int32"},    {"INTEGER", "int64"},
    };
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (type && strcmp(type, known[i][0]) == 0 && strcmp(format, known[i][1]) == 0)
            return true;
    return false;
}

static json_t *upper(const char *s) {
    char buf[32];
    size_t n = 0;
    for (; s[n] && n + 1 < sizeof buf; n++)
        buf[n] = (char)toupper((unsigned char)s[n]);
    buf[n] = '\0';
    return json_string(buf);
}

static json_t *convert(wire_ctx *w, const json_t *in, int depth, const char *what);

/* "type": a name, or a list of one name plus "null" (nullable). */
static void convert_type(wire_ctx *w, const json_t *type, json_t *out, const char *what) {
    if (json_is_string(type)) {
        wire_set(w, out, "type", upper(json_string_value(type)));
        return;
    }
    const char *one = NULL;
    size_t i, n_types = 0;
    const json_t *t;
    bool nullable = false;
    json_array_foreach(type, i, t) {
        const char *name = json_string_value(t);
        if (name && strcmp(name, "null") == 0) {
            nullable = true;
        } else {
            one = name;
            n_types++;
        }
    }
    if (!json_is_array(type) || n_types != 1 || !one) {
        wire_fail(w, SLUICE_EINVAL,
                  "%s: Gemini takes one type per schema (or one type and \"null\")", what);
        return;
    }
    wire_set(w, out, "type", upper(one));
    if (nullable)
        wire_set(w, out, "nullable", json_true());
}

static void convert_properties(wire_ctx *w, const json_t *props, json_t *out, int depth,
                               const char *what) {
    if (!json_is_object(props)) {
        wire_fail(w, SLUICE_EINVAL, "%s: \"properties\" must be an object", what);
        return;
    }
    json_t *o = json_object();
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)props, k, v) wire_set(w, o, k, convert(w, v, depth + 1, what));
    wire_set(w, out, "properties", o);
}

static void convert_any_of(wire_ctx *w, const json_t *list, json_t *out, int depth,
                           const char *what) {
    if (!json_is_array(list) || json_array_size(list) == 0) {
        wire_fail(w, SLUICE_EINVAL, "%s: \"anyOf\"/\"oneOf\" must be a non-empty array", what);
        return;
    }
    json_t *arr = json_array();
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v) wire_append(w, arr, convert(w, v, depth + 1, what));
    wire_set(w, out, "anyOf", arr);
}

/* What JSON Schema has and Gemini does not, where dropping it would change the meaning. */
static bool refused(wire_ctx *w, const json_t *in, const char *what) {
    static const char *const keys[] = {"$ref", "allOf", "not", "if", "prefixItems"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (json_object_get(in, keys[i])) {
            wire_fail(w, SLUICE_EINVAL, "%s: Gemini's schemas have no \"%s\"", what, keys[i]);
            return true;
        }
    if (json_is_array(json_object_get(in, "items"))) {
        wire_fail(w, SLUICE_EINVAL, "%s: Gemini's schemas have no tuple \"items\"", what);
        return true;
    }
    return false;
}

static void convert_const(wire_ctx *w, const json_t *c, json_t *out, const char *what) {
    if (!json_is_string(c)) {
        wire_fail(w, SLUICE_EINVAL, "%s: Gemini takes \"const\" only as a string", what);
        return;
    }
    wire_set(w, out, "enum", json_pack("[O]", c));
    if (!json_object_get(out, "type"))
        wire_set(w, out, "type", json_string("STRING"));
}

static json_t *convert(wire_ctx *w, const json_t *in, int depth, const char *what) {
    if (!json_is_object(in)) {
        wire_fail(w, SLUICE_EINVAL, "%s: every schema must be a JSON object", what);
        return NULL;
    }
    if (depth > GEMINI_SCHEMA_DEPTH) {
        wire_fail(w, SLUICE_EINVAL, "%s: schema nested deeper than %d levels", what,
                  GEMINI_SCHEMA_DEPTH);
        return NULL;
    }
    if (refused(w, in, what))
        return NULL;
    json_t *out = json_object();
    const json_t *v;
    if ((v = json_object_get(in, "type")))
        convert_type(w, v, out, what);
    for (size_t i = 0; i < sizeof copied / sizeof *copied; i++)
        if ((v = json_object_get(in, copied[i])))
            wire_set(w, out, copied[i], json_deep_copy(v));
    if ((v = json_object_get(in, "const")))
        convert_const(w, v, out, what);
    const char *format = json_string_value(json_object_get(in, "format"));
    if (format && format_known(json_string_value(json_object_get(out, "type")), format))
        wire_set(w, out, "format", json_string(format));
    if ((v = json_object_get(in, "properties")))
        convert_properties(w, v, out, depth, what);
    if ((v = json_object_get(in, "items")))
        wire_set(w, out, "items", convert(w, v, depth + 1, what));
    if ((v = json_object_get(in, "anyOf")) || (v = json_object_get(in, "oneOf")))
        convert_any_of(w, v, out, depth, what);
    if (!json_object_get(out, "type") && json_object_get(out, "properties"))
        wire_set(w, out, "type", json_string("OBJECT"));
    return out;
}

json_t *gemini_schema(wire_ctx *w, const char *text, const char *fallback, const char *what) {
    json_t *in = wire_json_text(w, text, fallback, true, what);
    if (!in)
        return NULL;
    json_t *out = convert(w, in, 0, what);
    json_decref(in);
    if (w->rc != SLUICE_OK) {
        json_decref(out);
        return NULL;
    }
    return out;
}
