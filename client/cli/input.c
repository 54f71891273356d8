/*
 * JSONL input for `sluice run` / `sluice start`: one prompt per line.
 *
 * A line is either a JSON string (one user message) or an object:
 *   {"prompt": "text"}                               one user message, or
 *   {"messages": [{"role": "system|user|assistant|tool",
 *                  "content": "text" | [{"type": "text", "text": "..."},
 *                                       {"type": "image_url", "image_url": {"url": "..."}}]}]}
 * plus optional "custom_id", "prefer_model", "max_new_tokens", "temperature", "top_p",
 * "tools" ([{"name", "description", "parameters"}]) and "output_schema" (a JSON schema
 * object). Unknown keys are errors, so typos do not pass silently. Blank lines are skipped.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *msg) {
    snprintf(err, errlen, "%s", msg);
    return -1;
}

static int add_content_array(sluice_prompt *p, json_t *arr, char *err, size_t errlen) {
    size_t i;
    json_t *part;
    json_array_foreach(arr, i, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        if (type && strcmp(type, "text") == 0 && json_is_string(json_object_get(part, "text"))) {
            if (sluice_prompt_add_text(p, json_string_value(json_object_get(part, "text"))))
                return fail(err, errlen, sluice_last_error());
        } else if (type && strcmp(type, "image_url") == 0) {
            json_t *u = json_object_get(part, "image_url");
            const char *url = json_string_value(json_is_object(u) ? json_object_get(u, "url") : u);
            if (!url)
                return fail(err, errlen, "image_url part needs image_url.url");
            if (sluice_prompt_add_image_url(p, url, NULL))
                return fail(err, errlen, sluice_last_error());
        } else {
            snprintf(err, errlen, "content[%zu]: expected a text or image_url part", i);
            return -1;
        }
    }
    return 0;
}

static int parse_role(const char *r, sluice_role *out) {
    static const char *const names[] = {"system", "user", "assistant", "tool"};
    for (int i = 0; i < 4; i++) {
        if (r && strcmp(r, names[i]) == 0) {
            *out = (sluice_role)(i + 1);
            return 0;
        }
    }
    return -1;
}

static int add_messages(sluice_prompt *p, json_t *msgs, char *err, size_t errlen) {
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return fail(err, errlen, "messages: a non-empty array is required");
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        sluice_role role;
        if (parse_role(json_string_value(json_object_get(m, "role")), &role) != 0) {
            snprintf(err, errlen, "messages[%zu].role: expected system, user, assistant or tool",
                     i);
            return -1;
        }
        json_t *content = json_object_get(m, "content");
        if (sluice_prompt_message(p, role) != 0)
            return fail(err, errlen, sluice_last_error());
        int rc = json_is_string(content)  ? sluice_prompt_add_text(p, json_string_value(content))
                 : json_is_array(content) ? add_content_array(p, content, err, errlen)
                                          : -2;
        if (rc == -2) {
            snprintf(err, errlen, "messages[%zu].content: expected a string or an array", i);
            return -1;
        }
        if (rc)
            return rc == -1 ? -1 : fail(err, errlen, sluice_last_error());
    }
    return 0;
}

static int add_tools(sluice_prompt *p, json_t *tools, char *err, size_t errlen) {
    size_t i;
    json_t *t;
    if (!json_is_array(tools))
        return fail(err, errlen, "tools: expected an array");
    json_array_foreach(tools, i, t) {
        const char *name = json_string_value(json_object_get(t, "name"));
        json_t *params = json_object_get(t, "parameters");
        char *ptext = params ? json_dumps(params, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        if (params && !ptext) {
            snprintf(err, errlen, "tools[%zu].parameters: could not be serialised", i);
            return -1;
        }
        int rc = name ? sluice_prompt_add_tool(
                            p, name, json_string_value(json_object_get(t, "description")), ptext)
                      : -1;
        free(ptext);
        if (rc) {
            snprintf(err, errlen, "tools[%zu]: %s", i, name ? sluice_last_error() : "needs a name");
            return -1;
        }
    }
    return 0;
}

static const char *const known_keys[] = {"prompt",       "messages",       "custom_id",
                                         "prefer_model", "max_new_tokens", "temperature",
                                         "top_p",        "tools",          "output_schema"};

static int check_keys(json_t *obj, char *err, size_t errlen) {
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        bool ok = false;
        for (size_t i = 0; i < sizeof known_keys / sizeof *known_keys; i++)
            ok |= strcmp(k, known_keys[i]) == 0;
        if (!ok) {
            snprintf(err, errlen, "unknown key \"%s\"", k);
            return -1;
        }
    }
    return 0;
}

static int apply_options(sluice_prompt *p, json_t *obj, char *err, size_t errlen) {
    json_t *v;
    if ((v = json_object_get(obj, "custom_id")) &&
        (!json_is_string(v) || sluice_prompt_set_custom_id(p, json_string_value(v))))
        return fail(err, errlen, "custom_id: expected a string");
    if ((v = json_object_get(obj, "prefer_model")) &&
        (!json_is_string(v) || sluice_prompt_set_prefer_model(p, json_string_value(v))))
        return fail(err, errlen, "prefer_model: expected a string");
    sluice_sampling s;
    memset(&s, 0, sizeof s);
    bool any = false;
    if ((v = json_object_get(obj, "max_new_tokens"))) {
        if (!json_is_integer(v) || json_integer_value(v) <= 0)
            return fail(err, errlen, "max_new_tokens: expected a positive integer");
        s.max_new_tokens = (uint32_t)json_integer_value(v);
        any = true;
    }
    if ((v = json_object_get(obj, "temperature"))) {
        if (!json_is_number(v))
            return fail(err, errlen, "temperature: expected a number");
        s.has_temperature = any = true;
        s.temperature = json_number_value(v);
    }
    if ((v = json_object_get(obj, "top_p"))) {
        if (!json_is_number(v))
            return fail(err, errlen, "top_p: expected a number");
        s.has_top_p = any = true;
        s.top_p = json_number_value(v);
    }
    if (any && sluice_prompt_set_sampling(p, &s))
        return fail(err, errlen, sluice_last_error());
    if ((v = json_object_get(obj, "tools")) && add_tools(p, v, err, errlen))
        return -1;
    if ((v = json_object_get(obj, "output_schema"))) {
        if (!json_is_object(v))
            return fail(err, errlen, "output_schema: expected a JSON schema object");
        char *schema = json_dumps(v, JSON_COMPACT);
        if (!schema)
            return fail(err, errlen, "output_schema: could not be serialised");
        int rc = sluice_prompt_set_output_schema(p, NULL, schema);
        free(schema);
        if (rc)
            return fail(err, errlen, sluice_last_error());
    }
    return 0;
}

/* The message becomes the "error" of the line's JSON result, which jansson refuses unless
 * it is UTF-8; jansson's own parse errors quote the line near the error and can end with
 * half a character. Such a message keeps its ASCII bytes only. */
static void keep_utf8(char *err) {
    json_t *s = json_string(err);
    if (s) {
        json_decref(s);
        return;
    }
    for (char *c = err; *c; c++)
        if ((unsigned char)*c >= 0x80)
            *c = '?';
}

sluice_prompt *cli_parse_line(const char *line, size_t len, char *err, size_t errlen) {
    err[0] = '\0';
    json_error_t je;
    json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!j) {
        snprintf(err, errlen, "invalid JSON at column %d: %s", je.column, je.text);
        keep_utf8(err);
        return NULL;
    }
    sluice_prompt *p = NULL;
    if (json_is_string(j)) {
        if (!(p = sluice_prompt_text(json_string_value(j))))
            snprintf(err, errlen, "%s", sluice_last_error());
    } else if (json_is_object(j) && check_keys(j, err, errlen) == 0) {
        json_t *text = json_object_get(j, "prompt");
        json_t *msgs = json_object_get(j, "messages");
        p = sluice_prompt_new();
        int rc = !p               ? fail(err, errlen, "out of memory")
                 : (text && msgs) ? fail(err, errlen, "give \"prompt\" or \"messages\", not both")
                 : json_is_string(text) ? sluice_prompt_user(p, json_string_value(text))
                 : msgs                 ? add_messages(p, msgs, err, errlen)
                                        : fail(err, errlen, "needs \"prompt\" or \"messages\"");
        if (rc == 0)
            rc = apply_options(p, j, err, errlen);
        if (rc) {
            if (!err[0])
                snprintf(err, errlen, "%s", sluice_last_error());
            sluice_prompt_free(p);
            p = NULL;
        }
    } else if (!json_is_object(j)) {
        snprintf(err, errlen, "expected a JSON string or object");
    }
    json_decref(j);
    if (!p)
        keep_utf8(err);
    return p;
}
