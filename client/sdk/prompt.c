/*
 * Conversation builders. A prompt is a sluice.v1.Prompt tree built with malloc, so one
 * protobuf_c_message_free_unpacked releases it. Every allocation is checked: on failure
 * the prompt is left as it was and SLUICE_ENOMEM is returned.
 */
#include "sdk_internal.h"

#include <stdlib.h>
#include <string.h>

char *sdk_strdup(const char *s) {
    if (!s)
        s = "";
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void sdk_strings_free(char **v, size_t n) {
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

sluice_prompt *sluice_prompt_new(void) {
    sluice_prompt *p = calloc(1, sizeof *p);
    Sluice__V1__Prompt *m = malloc(sizeof *m);
    if (!p || !m) {
        free(p);
        free(m);
        sdk_fail(SLUICE_ENOMEM, "out of memory");
        return NULL;
    }
    sluice__v1__prompt__init(m);
    p->msg = m;
    return p;
}

void sluice_prompt_free(sluice_prompt *p) {
    if (!p)
        return;
    if (p->msg) /* NULL in a copy that could not be made */
        protobuf_c_message_free_unpacked(&p->msg->base, NULL);
    free(p);
}

sluice_prompt *sluice_prompt_text(const char *text) {
    sluice_prompt *p = sluice_prompt_new();
    if (p && sluice_prompt_user(p, text) != 0) {
        sluice_prompt_free(p);
        return NULL;
    }
    return p;
}

/* Appends item to a (n, array) pair of pointers. */
static int append(void ***arr, size_t *n, void *item) {
    void **a = realloc(*arr, (*n + 1) * sizeof *a);
    if (!a)
        return SLUICE_ENOMEM;
    a[*n] = item;
    *arr = a;
    (*n)++;
    return 0;
}

static int nomem(void) {
    return sdk_fail(SLUICE_ENOMEM, "out of memory");
}

int sluice_prompt_message(sluice_prompt *p, sluice_role role) {
    if (!p || role < SLUICE_ROLE_SYSTEM || role > SLUICE_ROLE_TOOL)
        return sdk_fail(SLUICE_EINVAL, "sluice_prompt_message: bad prompt or role");
    Sluice__V1__Message *m = malloc(sizeof *m);
    if (!m)
        return nomem();
    sluice__v1__message__init(m);
    m->role = (Sluice__V1__Role)role;
    if (append((void ***)&p->msg->messages, &p->msg->n_messages, m) != 0) {
        free(m);
        return nomem();
    }
    return 0;
}

/* Adds a part to the last message (taking ownership of part on success). */
static int add_part(sluice_prompt *p, Sluice__V1__Part *part) {
    if (!p || p->msg->n_messages == 0) {
        protobuf_c_message_free_unpacked(&part->base, NULL);
        return sdk_fail(SLUICE_EINVAL, p ? "add a message (sluice_prompt_message) before parts"
                                         : "the prompt is NULL");
    }
    Sluice__V1__Message *m = p->msg->messages[p->msg->n_messages - 1];
    if (append((void ***)&m->parts, &m->n_parts, part) != 0) {
        protobuf_c_message_free_unpacked(&part->base, NULL);
        return nomem();
    }
    return 0;
}

static Sluice__V1__Part *new_part(void) {
    Sluice__V1__Part *part = malloc(sizeof *part);
    if (part)
        sluice__v1__part__init(part);
    return part;
}

int sluice_prompt_add_text(sluice_prompt *p, const char *text) {
    Sluice__V1__Part *part = new_part();
    Sluice__V1__TextPart *t = malloc(sizeof *t);
    char *s = sdk_strdup(text);
    if (!part || !t || !s) {
        free(part);
        free(t);
        free(s);
        return nomem();
    }
    sluice__v1__text_part__init(t);
    t->text = s;
    part->kind_case = SLUICE__V1__PART__KIND_TEXT;
    part->text = t;
    return add_part(p, part);
}

static int message_with_text(sluice_prompt *p, sluice_role role, const char *text) {
    int rc = sluice_prompt_message(p, role);
    if (rc == 0 && (rc = sluice_prompt_add_text(p, text)) != 0) {
        /* roll back the empty message */
        Sluice__V1__Message *m = p->msg->messages[--p->msg->n_messages];
        protobuf_c_message_free_unpacked(&m->base, NULL);
    }
    return rc;
}

int sluice_prompt_system(sluice_prompt *p, const char *text) {
    return message_with_text(p, SLUICE_ROLE_SYSTEM, text);
}

int sluice_prompt_user(sluice_prompt *p, const char *text) {
    return message_with_text(p, SLUICE_ROLE_USER, text);
}

int sluice_prompt_assistant(sluice_prompt *p, const char *text) {
    return message_with_text(p, SLUICE_ROLE_ASSISTANT, text);
}

static Sluice__V1__ImagePart *new_image(void) {
    Sluice__V1__ImagePart *img = malloc(sizeof *img);
    if (img)
        sluice__v1__image_part__init(img);
    return img;
}

static int add_image(sluice_prompt *p, Sluice__V1__ImagePart *img) {
    Sluice__V1__Part *part = new_part();
    if (!part) {
        protobuf_c_message_free_unpacked(&img->base, NULL);
        return nomem();
    }
    part->kind_case = SLUICE__V1__PART__KIND_IMAGE;
    part->image = img;
    return add_part(p, part);
}

int sluice_prompt_add_image_url(sluice_prompt *p, const char *url, const char *detail) {
    Sluice__V1__ImagePart *img = new_image();
    if (!img)
        return nomem();
    img->source_case = SLUICE__V1__IMAGE_PART__SOURCE_URL;
    img->url = sdk_strdup(url);
    if (detail)
        img->detail = sdk_strdup(detail);
    if (!img->url || (detail && !img->detail)) {
        protobuf_c_message_free_unpacked(&img->base, NULL);
        return nomem();
    }
    return add_image(p, img);
}

int sluice_prompt_add_image_data(sluice_prompt *p, const void *data, size_t len,
                                 const char *media_type) {
    if (!data || !len || !media_type)
        return sdk_fail(SLUICE_EINVAL, "image data needs bytes and a media type");
    Sluice__V1__ImagePart *img = new_image();
    if (!img)
        return nomem();
    img->source_case = SLUICE__V1__IMAGE_PART__SOURCE_DATA;
    img->data.data = malloc(len);
    img->media_type = sdk_strdup(media_type);
    if (!img->data.data || !img->media_type) {
        protobuf_c_message_free_unpacked(&img->base, NULL);
        return nomem();
    }
    memcpy(img->data.data, data, len);
    img->data.len = len;
    return add_image(p, img);
}

int sluice_prompt_add_tool_call(sluice_prompt *p, const char *id, const char *name,
                                const char *arguments_json) {
    Sluice__V1__Part *part = new_part();
    Sluice__V1__ToolCall *tc = malloc(sizeof *tc);
    if (!part || !tc) {
        free(part);
        free(tc);
        return nomem();
    }
    sluice__v1__tool_call__init(tc);
    part->kind_case = SLUICE__V1__PART__KIND_TOOL_CALL;
    part->tool_call = tc;
    tc->id = sdk_strdup(id);
    tc->name = sdk_strdup(name);
    tc->arguments_json = sdk_strdup(arguments_json ? arguments_json : "{}");
    if (!tc->id || !tc->name || !tc->arguments_json) {
        protobuf_c_message_free_unpacked(&part->base, NULL);
        return nomem();
    }
    return add_part(p, part);
}

int sluice_prompt_add_tool_result(sluice_prompt *p, const char *tool_call_id, const char *content,
                                  bool is_error) {
    Sluice__V1__Part *part = new_part();
    Sluice__V1__ToolResult *tr = malloc(sizeof *tr);
    if (!part || !tr) {
        free(part);
        free(tr);
        return nomem();
    }
    sluice__v1__tool_result__init(tr);
    part->kind_case = SLUICE__V1__PART__KIND_TOOL_RESULT;
    part->tool_result = tr;
    tr->tool_call_id = sdk_strdup(tool_call_id);
    tr->content = sdk_strdup(content);
    tr->is_error = is_error;
    if (!tr->tool_call_id || !tr->content) {
        protobuf_c_message_free_unpacked(&part->base, NULL);
        return nomem();
    }
    return add_part(p, part);
}

int sluice_prompt_add_tool(sluice_prompt *p, const char *name, const char *description,
                           const char *parameters_json) {
    if (!p || !name)
        return sdk_fail(SLUICE_EINVAL, "a tool needs a name");
    Sluice__V1__ToolDefinition *t = malloc(sizeof *t);
    if (!t)
        return nomem();
    sluice__v1__tool_definition__init(t);
    t->name = sdk_strdup(name);
    t->description = sdk_strdup(description);
    t->parameters_json = sdk_strdup(parameters_json ? parameters_json : "{\"type\":\"object\"}");
    if (!t->name || !t->description || !t->parameters_json ||
        append((void ***)&p->msg->tools, &p->msg->n_tools, t) != 0) {
        protobuf_c_message_free_unpacked(&t->base, NULL);
        return nomem();
    }
    return 0;
}

/* Replaces a string field (freeing the old value unless it is protobuf-c's empty default). */
static int set_string(char **field, const char *value) {
    char *s = sdk_strdup(value);
    if (!s)
        return nomem();
    if (*field && *field != protobuf_c_empty_string)
        free(*field);
    *field = s;
    return 0;
}

int sluice_prompt_set_output_schema(sluice_prompt *p, const char *name, const char *schema_json) {
    if (!p || !schema_json)
        return sdk_fail(SLUICE_EINVAL, "an output schema needs schema_json");
    Sluice__V1__OutputSchema *o = p->msg->output_schema;
    if (!o) {
        if (!(o = malloc(sizeof *o)))
            return nomem();
        sluice__v1__output_schema__init(o);
        p->msg->output_schema = o;
    }
    int rc = set_string(&o->name, name ? name : "response");
    return rc ? rc : set_string(&o->schema_json, schema_json);
}

int sluice_prompt_set_prefer_model(sluice_prompt *p, const char *model) {
    if (!p)
        return sdk_fail(SLUICE_EINVAL, "sluice_prompt_set_prefer_model: the prompt is NULL");
    return set_string(&p->msg->prefer_model, model);
}

int sluice_prompt_set_custom_id(sluice_prompt *p, const char *custom_id) {
    if (!p)
        return sdk_fail(SLUICE_EINVAL, "sluice_prompt_set_custom_id: the prompt is NULL");
    return set_string(&p->msg->custom_id, custom_id);
}

int sluice_prompt_set_sampling(sluice_prompt *p, const sluice_sampling *s) {
    if (!p || !s)
        return sdk_fail(SLUICE_EINVAL, "sluice_prompt_set_sampling: NULL argument");
    Sluice__V1__SamplingParams *sp = sdk_sampling_new(s);
    if (!sp)
        return nomem();
    if (p->msg->sampling)
        protobuf_c_message_free_unpacked(&p->msg->sampling->base, NULL);
    p->msg->sampling = sp;
    return 0;
}

Sluice__V1__SamplingParams *sdk_sampling_new(const sluice_sampling *s) {
    Sluice__V1__SamplingParams *sp = malloc(sizeof *sp);
    if (!sp)
        return NULL;
    sluice__v1__sampling_params__init(sp);
    sp->max_new_tokens = s->max_new_tokens;
    sp->reasoning_effort = (Sluice__V1__ReasoningEffort)s->reasoning_effort;
    sp->thinking_budget = s->thinking_budget;
    if (s->has_temperature && (sp->temperature = malloc(sizeof *sp->temperature))) {
        google__protobuf__double_value__init(sp->temperature);
        sp->temperature->value = s->temperature;
    }
    if (s->has_top_p && (sp->top_p = malloc(sizeof *sp->top_p))) {
        google__protobuf__double_value__init(sp->top_p);
        sp->top_p->value = s->top_p;
    }
    if (s->json_mode && (sp->json_mode = malloc(sizeof *sp->json_mode))) {
        google__protobuf__bool_value__init(sp->json_mode);
        sp->json_mode->value = true;
    }
    bool ok = (!s->has_temperature || sp->temperature) && (!s->has_top_p || sp->top_p) &&
              (!s->json_mode || sp->json_mode);
    if (!ok) {
        protobuf_c_message_free_unpacked(&sp->base, NULL);
        return NULL;
    }
    return sp;
}

Sluice__V1__Prompt *sdk_prompt_copy(const Sluice__V1__Prompt *p) {
    size_t len = protobuf_c_message_get_packed_size(&p->base);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return NULL;
    protobuf_c_message_pack(&p->base, buf);
    Sluice__V1__Prompt *copy = sluice__v1__prompt__unpack(NULL, len, buf);
    free(buf);
    return copy;
}
