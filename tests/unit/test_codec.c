/*
 * test_codec: JSON round trips of every field of llm_request / llm_response / llm_sampling,
 * and rejection (never a crash) of malformed inputs: hand-written bad shapes naming the bad
 * field, every member of a valid document replaced by every other JSON type, and random byte
 * mutations of valid texts.
 */
#include "server/common/alloc.h"
#include "server/common/llm.h"
#include "server/store/codec.h"
#include "server/store/fastjson.h"
#include "sluice/status.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- builders ------------------------------------------------------------------------ */

static llm_part text_part(const char *t) {
    llm_part p = {.kind = LLM_PART_TEXT, .text = xstrdup(t)};
    return p;
}

static llm_request *rich_request(void) {
    llm_request *r = llm_request_new();
    r->n_messages = 4;
    r->messages = XNEWV(llm_message, 4);
    llm_message *m = r->messages;
    m[0].role = LLM_ROLE_SYSTEM;
    m[0].n_parts = 1;
    m[0].parts = XNEWV(llm_part, 1);
    m[0].parts[0] = text_part("You are terse. \"quotes\" \\ and ünïcödé ✓");
    m[1].role = LLM_ROLE_USER;
    m[1].n_parts = 3;
    m[1].parts = XNEWV(llm_part, 3);
    m[1].parts[0] = text_part("Describe these");
    m[1].parts[1] = (llm_part){.kind = LLM_PART_IMAGE,
                               .url = xstrdup("https://example.com/a.png"),
                               .detail = xstrdup("high")};
    static const uint8_t img[] = {0x89, 'P', 'N', 'G', 0, 1, 2, 0xff, 0xfe, 0};
    m[1].parts[2] = (llm_part){.kind = LLM_PART_IMAGE,
                               .data = xmemdup(img, sizeof img),
                               .data_len = sizeof img,
                               .media_type = xstrdup("image/png")};
    m[2].role = LLM_ROLE_ASSISTANT;
    m[2].n_parts = 3;
    m[2].parts = XNEWV(llm_part, 3);
    m[2].parts[0] = (llm_part){
        .kind = LLM_PART_THINKING, .text = xstrdup("let me think"), .signature = xstrdup("sig==")};
    m[2].parts[1] = text_part("calling a tool");
    m[2].parts[2] = (llm_part){.kind = LLM_PART_TOOL_CALL,
                               .id = xstrdup("call_1"),
                               .name = xstrdup("lookup"),
                               .arguments = xstrdup("{\"q\":\"x\",\"n\":3}")};
    m[3].role = LLM_ROLE_TOOL;
    m[3].n_parts = 1;
    m[3].parts = XNEWV(llm_part, 1);
    m[3].parts[0] = (llm_part){.kind = LLM_PART_TOOL_RESULT,
                               .id = xstrdup("call_1"),
                               .text = xstrdup("not found"),
                               .is_error = true};
    r->n_tools = 2;
    r->tools = XNEWV(llm_tool, 2);
    r->tools[0] = (llm_tool){.name = xstrdup("lookup"),
                             .description = xstrdup("Looks things up"),
                             .parameters = xstrdup("{\"type\":\"object\"}"),
                             .strict = true};
    r->tools[1] = (llm_tool){.name = xstrdup("noop")};
    r->schema_name = xstrdup("answer");
    r->output_schema = xstrdup("{\"type\":\"object\",\"properties\":{}}");
    llm_sampling *s = &r->sampling;
    s->set = LLM_SET_TEMPERATURE | LLM_SET_TOP_P | LLM_SET_MAX_NEW_TOKENS | LLM_SET_STOP |
             LLM_SET_EFFORT | LLM_SET_THINKING_BUDGET | LLM_SET_JSON_MODE;
    s->temperature = 0.1 + 0.2; /* not exactly representable in few digits */
    s->top_p = 0.95;
    s->max_new_tokens = 4000000000u;
    s->n_stop = 4;
    for (int i = 0; i < 4; i++)
        s->stop[i] = xasprintf("stop%d\n", i);
    s->effort = LLM_EFFORT_XHIGH;
    s->thinking_budget = 12345;
    s->json_mode = true;
    r->prefer_model = xstrdup("gpt-4.1-mini");
    return r;
}

static llm_response *rich_response(void) {
    llm_response *r = llm_response_new();
    r->n_content = 3;
    r->content = XNEWV(llm_part, 3);
    r->content[0] =
        (llm_part){.kind = LLM_PART_THINKING, .text = xstrdup("hmm"), .signature = xstrdup("s")};
    r->content[1] = text_part("Hello, world");
    r->content[2] = (llm_part){.kind = LLM_PART_TOOL_CALL,
                               .id = xstrdup("c"),
                               .name = xstrdup("f"),
                               .arguments = xstrdup("{}")};
    llm_response_set_completion_from_content(r);
    r->finish_reason = xstrdup("stop");
    r->thinking = xstrdup("hmm");
    r->usage = (llm_usage){10, 20, 30, UINT64_MAX};
    r->cost = 0.000123456789012345;
    r->cost_saved = 1e-300;
    r->model_requested = xstrdup("m1");
    r->model_used = xstrdup("m2");
    llm_response_add_attempt(r, "m1", 429, 120, 3000, "rate limited");
    llm_response_add_attempt(r, "m2", 200, 800, 0, NULL);
    r->local_cache_hit = true;
    r->deduplicated = true;
    r->latency_ms = UINT32_MAX;
    r->status_code = 200;
    return r;
}

/* ---- deep equality ------------------------------------------------------------------- */

static bool str_eq(const char *a, const char *b) {
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool dbl_eq(double a, double b) {
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

static bool part_eq(const llm_part *a, const llm_part *b) {
    return a->kind == b->kind && str_eq(a->text, b->text) && str_eq(a->id, b->id) &&
           str_eq(a->name, b->name) && str_eq(a->arguments, b->arguments) &&
           str_eq(a->url, b->url) && (!a->data == !b->data) && a->data_len == b->data_len &&
           (!a->data || memcmp(a->data, b->data, a->data_len) == 0) &&
           str_eq(a->media_type, b->media_type) && str_eq(a->detail, b->detail) &&
           str_eq(a->signature, b->signature) && a->is_error == b->is_error;
}

static bool sampling_eq(const llm_sampling *a, const llm_sampling *b) {
    if (a->set != b->set || !dbl_eq(a->temperature, b->temperature) ||
        !dbl_eq(a->top_p, b->top_p) || a->max_new_tokens != b->max_new_tokens ||
        a->n_stop != b->n_stop || a->effort != b->effort ||
        a->thinking_budget != b->thinking_budget || a->json_mode != b->json_mode)
        return false;
    for (size_t i = 0; i < a->n_stop; i++)
        if (!str_eq(a->stop[i], b->stop[i]))
            return false;
    return true;
}

static bool request_eq(const llm_request *a, const llm_request *b) {
    if (a->n_messages != b->n_messages || a->n_tools != b->n_tools)
        return false;
    for (size_t i = 0; i < a->n_messages; i++) {
        const llm_message *x = &a->messages[i], *y = &b->messages[i];
        if (x->role != y->role || x->n_parts != y->n_parts)
            return false;
        for (size_t j = 0; j < x->n_parts; j++)
            if (!part_eq(&x->parts[j], &y->parts[j]))
                return false;
    }
    for (size_t i = 0; i < a->n_tools; i++) {
        const llm_tool *x = &a->tools[i], *y = &b->tools[i];
        if (!str_eq(x->name, y->name) || !str_eq(x->description, y->description) ||
            !str_eq(x->parameters, y->parameters) || x->strict != y->strict)
            return false;
    }
    return str_eq(a->schema_name, b->schema_name) && str_eq(a->output_schema, b->output_schema) &&
           sampling_eq(&a->sampling, &b->sampling) && str_eq(a->prefer_model, b->prefer_model);
}

static bool response_eq(const llm_response *a, const llm_response *b) {
    if (a->is_error != b->is_error || a->error_kind != b->error_kind ||
        a->status_code != b->status_code || !str_eq(a->error_message, b->error_message) ||
        !str_eq(a->completion, b->completion) || a->n_content != b->n_content ||
        !str_eq(a->finish_reason, b->finish_reason) || !str_eq(a->thinking, b->thinking) ||
        memcmp(&a->usage, &b->usage, sizeof a->usage) != 0 || !dbl_eq(a->cost, b->cost) ||
        !dbl_eq(a->cost_saved, b->cost_saved) || !str_eq(a->model_requested, b->model_requested) ||
        !str_eq(a->model_used, b->model_used) || a->n_attempts != b->n_attempts ||
        a->local_cache_hit != b->local_cache_hit || a->deduplicated != b->deduplicated ||
        a->latency_ms != b->latency_ms)
        return false;
    for (size_t i = 0; i < a->n_content; i++)
        if (!part_eq(&a->content[i], &b->content[i]))
            return false;
    for (size_t i = 0; i < a->n_attempts; i++) {
        const llm_attempt *x = &a->attempts[i], *y = &b->attempts[i];
        if (!str_eq(x->model, y->model) || x->status_code != y->status_code ||
            x->latency_ms != y->latency_ms || x->retry_after_ms != y->retry_after_ms ||
            !str_eq(x->error, y->error))
            return false;
    }
    return true;
}

/* Encodes to text and back (through the text, as the store does). */
static llm_request *request_roundtrip(const llm_request *r) {
    json_t *j = codec_request_to_json(r);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    j = json_loads(text, 0, NULL);
    free(text);
    llm_request *out = NULL;
    char err[256] = "";
    int rc = codec_request_from_json(j, &out, err, sizeof err);
    json_decref(j);
    if (rc)
        fprintf(stderr, "decode failed: %s\n", err);
    return out;
}

static llm_response *response_roundtrip(const llm_response *r) {
    json_t *j = codec_response_to_json(r);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    j = json_loads(text, 0, NULL);
    free(text);
    llm_response *out = NULL;
    char err[256] = "";
    int rc = codec_response_from_json(j, &out, err, sizeof err);
    json_decref(j);
    if (rc)
        fprintf(stderr, "decode failed: %s\n", err);
    return out;
}

/* ---- round trips --------------------------------------------------------------------- */

static void test_request_roundtrip_rich(void) {
    llm_request *r = rich_request();
    llm_request *back = request_roundtrip(r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT(request_eq(r, back));
    llm_request_free(back);
    llm_request_free(r);
}

static void test_request_roundtrip_minimal(void) {
    llm_request *r = llm_request_new();
    r->n_messages = 1;
    r->messages = XNEWV(llm_message, 1);
    r->messages[0].role = LLM_ROLE_USER;
    r->messages[0].n_parts = 1;
    r->messages[0].parts = XNEWV(llm_part, 1);
    r->messages[0].parts[0] = text_part("");
    llm_request *back = request_roundtrip(r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT(request_eq(r, back));
    CU_ASSERT_PTR_NOT_NULL(back->messages[0].parts[0].text); /* "" stays "", not NULL */
    llm_request_free(back);
    llm_request_free(r);
}

static void test_request_roundtrip_odd_values(void) {
    llm_request *r = rich_request();
    free(r->messages[0].parts[0].text);
    r->messages[0].parts[0].text = xstrdup("bad utf8: \xff\xfe \xc3"); /* not valid UTF-8 */
    r->messages[0].role = (llm_role)9;                                 /* out of range */
    free(r->messages[1].parts[2].data);
    r->messages[1].parts[2].data = xmemdup("", 0); /* present but empty */
    r->messages[1].parts[2].data_len = 0;
    r->sampling.temperature = NAN;
    r->sampling.top_p = -INFINITY;
    llm_request *back = request_roundtrip(r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT(request_eq(r, back));
    llm_request_free(back);
    llm_request_free(r);
}

static void test_response_roundtrip(void) {
    llm_response *r = rich_response();
    llm_response *back = response_roundtrip(r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT(response_eq(r, back));
    llm_response_free(back);
    /* completion NULL next to text parts, then different from them. */
    free(r->completion);
    r->completion = NULL;
    back = response_roundtrip(r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT(response_eq(r, back));
    llm_response_free(back);
    r->completion = xstrdup("edited");
    back = response_roundtrip(r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT(response_eq(r, back));
    llm_response_free(back);
    llm_response_set_completion_from_content(r);
    llm_response_set_error(r, LLM_ERR_RATE_LIMITED, 429, "slow down after %d tries", 3);
    r->status_code = -1;
    back = response_roundtrip(r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT(response_eq(r, back));
    llm_response_free(back);
    llm_response_free(r);
    llm_response *empty = llm_response_new();
    back = response_roundtrip(empty);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT(response_eq(empty, back));
    llm_response_free(back);
    llm_response_free(empty);
}

static void test_sampling_roundtrip(void) {
    llm_sampling base = {
        .set = LLM_SET_TEMPERATURE | LLM_SET_STOP, .temperature = 0.25, .n_stop = 1};
    base.stop[0] = xstrdup("END");
    llm_sampling merged, back;
    llm_sampling_merge(&merged, &base, NULL); /* defaults filled in with their bits off */
    const llm_sampling *cases[] = {&base, &merged};
    for (size_t i = 0; i < 2; i++) {
        json_t *j = codec_sampling_to_json(cases[i]);
        char err[128];
        CU_ASSERT_EQUAL_FATAL(codec_sampling_from_json(j, &back, err, sizeof err), SLUICE_OK);
        CU_ASSERT(sampling_eq(cases[i], &back));
        llm_sampling_cleanup(&back);
        json_decref(j);
    }
    llm_sampling empty = {0};
    json_t *j = codec_sampling_to_json(&empty);
    char err[128];
    CU_ASSERT_EQUAL(codec_sampling_from_json(j, &back, err, sizeof err), SLUICE_OK);
    CU_ASSERT(sampling_eq(&empty, &back));
    llm_sampling_cleanup(&back);
    json_decref(j);
    llm_sampling_cleanup(&merged);
    llm_sampling_cleanup(&base);
}

/* ---- malformed inputs ---------------------------------------------------------------- */

typedef struct bad_case {
    const char *json;
    const char *names; /* substring the error message must contain */
} bad_case;

#define M "\"messages\":[{\"role\":\"user\",\"parts\":[{\"kind\":\"text\",\"text\":\"hi\"}]}]"

static const bad_case bad_requests[] = {
    {"[]", "expected an object"},
    {"\"x\"", "expected an object"},
    {"{}", "messages: missing"},
    {"{\"messages\":{}}", "messages: expected an array"},
    {"{\"messages\":[1]}", "messages[0]: expected an object"},
    {"{\"messages\":[{\"parts\":[]}]}", "messages[0].role: missing"},
    {"{\"messages\":[{\"role\":\"robot\",\"parts\":[]}]}", "messages[0].role: unknown name"},
    {"{\"messages\":[{\"role\":true,\"parts\":[]}]}", "messages[0].role"},
    {"{\"messages\":[{\"role\":\"user\"}]}", "messages[0].parts: missing"},
    {"{\"messages\":[{\"role\":\"user\",\"parts\":[{}]}]}", "messages[0].parts[0].kind: missing"},
    {"{\"messages\":[{\"role\":\"user\",\"parts\":[{\"kind\":\"text\",\"text\":5}]}]}",
     "messages[0].parts[0].text: expected a string"},
    {"{\"messages\":[{\"role\":\"user\",\"parts\":[{\"kind\":\"image\",\"data\":\"@@@@\"}]}]}",
     "messages[0].parts[0].data: invalid base64"},
    {"{\"messages\":[{\"role\":\"user\",\"parts\":[{\"kind\":\"image\",\"data\":\"QQ\"}]}]}",
     "parts[0].data: invalid base64"},
    {"{\"messages\":[{\"role\":\"user\",\"parts\":[{\"kind\":\"text\",\"colour\":1}]}]}",
     "messages[0].parts[0].colour: unknown field"},
    {"{\"messages\":[{\"role\":\"user\",\"parts\":[{\"kind\":\"text\",\"is_error\":\"yes\"}]}]}",
     "is_error: expected a boolean"},
    {"{\"messages\":[{\"role\":\"user\",\"parts\":[{\"kind\":\"text\",\"text\":{\"b64\":1}}]}]}",
     "text: expected a string"},
    {"{" M ",\"extra\":1}", "extra: unknown field"},
    {"{" M ",\"tools\":{}}", "tools: expected an array"},
    {"{" M ",\"tools\":[{\"name\":1}]}", "tools[0].name: expected a string"},
    {"{" M ",\"tools\":[{\"strict\":1}]}", "tools[0].strict: expected a boolean"},
    {"{" M ",\"sampling\":[]}", "sampling: expected an object"},
    {"{" M ",\"sampling\":{}}", "sampling.set: missing"},
    {"{" M ",\"sampling\":{\"set\":[\"warmth\"]}}", "sampling.set: unknown field name"},
    {"{" M ",\"sampling\":{\"set\":[],\"temperature\":\"hot\"}}", "sampling.temperature"},
    {"{" M ",\"sampling\":{\"set\":[],\"max_new_tokens\":-1}}",
     "sampling.max_new_tokens: integer out of range"},
    {"{" M ",\"sampling\":{\"set\":[],\"max_new_tokens\":4294967296}}",
     "sampling.max_new_tokens: integer out of range"},
    {"{" M ",\"sampling\":{\"set\":[],\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}}",
     "sampling.stop: more than 4"},
    {"{" M ",\"sampling\":{\"set\":[],\"stop\":[1]}}", "sampling.stop[0]: expected a string"},
    {"{" M ",\"sampling\":{\"set\":[],\"effort\":\"max\"}}", "sampling.effort: unknown name"},
    {"{" M ",\"sampling\":{\"set\":[],\"json_mode\":0}}", "sampling.json_mode"},
    {"{" M ",\"prefer_model\":[]}", "prefer_model: expected a string"},
};

#define U                                                                                          \
    "\"usage\":{\"input_tokens\":1,\"output_tokens\":2,\"cache_read_tokens\":3,"                   \
    "\"cache_write_tokens\":4}"
#define R                                                                                          \
    "\"is_error\":false,\"error_kind\":\"none\",\"status_code\":200,\"cost\":0.5,"                 \
    "\"cost_saved\":0,\"local_cache_hit\":false,\"deduplicated\":false,\"latency_ms\":1"

static const bad_case bad_responses[] = {
    {"null", "expected an object"},
    {"{" R "}", "usage: missing"},
    {"{" U "}", "is_error: missing"},
    {"{" R "," U ",\"cost\":\"x\"}", NULL}, /* duplicate key: the later value is read */
    {"{" R "," U ",\"usage\":{\"input_tokens\":1}}", "usage.output_tokens: missing"},
    {"{" R "," U ",\"content\":[{\"kind\":9.5}]}", "content[0].kind"},
    {"{" R "," U ",\"attempts\":[{\"status_code\":200}]}", "attempts[0].latency_ms: missing"},
    {"{" R "," U ",\"attempts\":[{\"status_code\":99999999999,\"latency_ms\":1,"
     "\"retry_after_ms\":0}]}",
     "attempts[0].status_code: integer out of range"},
    {"{" R "," U ",\"error_kind\":\"meteor\"}", "error_kind: unknown name"},
    {"{" R "," U ",\"completion\":null,\"bogus\":null}", "bogus: unknown field"},
};

static void check_bad(const bad_case *c, bool request) {
    json_error_t je;
    json_t *j = json_loads(c->json, JSON_DECODE_ANY, &je);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    char err[256] = "";
    int rc;
    if (request) {
        llm_request *r = NULL;
        rc = codec_request_from_json(j, &r, err, sizeof err);
        CU_ASSERT_PTR_NULL(r);
    } else {
        llm_response *r = NULL;
        rc = codec_response_from_json(j, &r, err, sizeof err);
        CU_ASSERT_PTR_NULL(r);
    }
    json_decref(j);
    CU_ASSERT_EQUAL(rc, SLUICE_EPROTO);
    if (c->names && !strstr(err, c->names)) {
        fprintf(stderr, "\n  input %s\n  error \"%s\" does not name \"%s\"\n", c->json, err,
                c->names);
        CU_FAIL("error message does not name the field");
    }
}

static void test_malformed_named(void) {
    for (size_t i = 0; i < sizeof bad_requests / sizeof bad_requests[0]; i++)
        check_bad(&bad_requests[i], true);
    for (size_t i = 0; i < sizeof bad_responses / sizeof bad_responses[0]; i++)
        check_bad(&bad_responses[i], false);
}

/* Decodes j as a request or response; the result must be OK or EPROTO, never anything
 * else (and ASan/valgrind watch for crashes and leaks). */
static size_t dump_mismatches;

/* fj_dump must write exactly what json_dumps(JSON_COMPACT) writes. */
static void check_dump_equal(const json_t *j) {
    char *a = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    size_t n = 0;
    char *b = fj_dump(j, &n);
    if (!a || !b || strcmp(a, b) != 0 || n != strlen(b)) {
        if (dump_mismatches++ < 3)
            fprintf(stderr, "\n  jansson: %s\n  fastjson: %s\n", a ? a : "(null)",
                    b ? b : "(null)");
    }
    free(a);
    free(b);
}

static void decode_any(const json_t *j, bool request) {
    check_dump_equal(j);
    char err[256];
    int rc;
    if (request) {
        llm_request *r = NULL;
        rc = codec_request_from_json(j, &r, err, sizeof err);
        llm_request_free(r);
    } else {
        llm_response *r = NULL;
        rc = codec_response_from_json(j, &r, err, sizeof err);
        llm_response_free(r);
    }
    CU_ASSERT(rc == SLUICE_OK || rc == SLUICE_EPROTO);
}

/* Replaces every member / element of `node` in turn by each JSON type, decoding the whole
 * document each time, then recurses. */
static void mutate_tree(json_t *root, json_t *node, bool request, size_t *count) {
    json_t *subs[] = {json_null(),     json_true(),  json_integer(-1), json_real(1.5),
                      json_string(""), json_array(), json_object(),    json_string("@@")};
    size_t n_subs = sizeof subs / sizeof subs[0];
    if (json_is_object(node)) {
        /* Keys are collected first: deleting and re-adding a member moves it to the end. */
        size_t nk = json_object_size(node), ki = 0;
        char **keys = XNEWV(char *, nk);
        const char *k;
        json_t *v;
        json_object_foreach(node, k, v) {
            keys[ki++] = xstrdup(k);
        }
        for (ki = 0; ki < nk; ki++) {
            json_t *orig = json_incref(json_object_get(node, keys[ki]));
            for (size_t i = 0; i < n_subs; i++) {
                json_object_set(node, keys[ki], subs[i]);
                decode_any(root, request);
                (*count)++;
            }
            json_object_del(node, keys[ki]);
            decode_any(root, request);
            json_object_set_new(node, keys[ki], orig);
            mutate_tree(root, orig, request, count);
            free(keys[ki]);
        }
        free(keys);
    } else if (json_is_array(node)) {
        for (size_t idx = 0; idx < json_array_size(node); idx++) {
            json_t *orig = json_incref(json_array_get(node, idx));
            for (size_t i = 0; i < n_subs; i++) {
                json_array_set(node, idx, subs[i]);
                decode_any(root, request);
                (*count)++;
            }
            json_array_set_new(node, idx, orig);
            mutate_tree(root, orig, request, count);
        }
    }
    for (size_t i = 0; i < n_subs; i++)
        json_decref(subs[i]);
}

static void test_malformed_type_swaps(void) {
    llm_request *r = rich_request();
    json_t *j = codec_request_to_json(r);
    size_t count = 0;
    mutate_tree(j, j, true, &count);
    json_decref(j);
    llm_request_free(r);
    llm_response *resp = rich_response();
    j = codec_response_to_json(resp);
    mutate_tree(j, j, false, &count);
    json_decref(j);
    llm_response_free(resp);
    CU_ASSERT(count > 500);
    CU_ASSERT_EQUAL(dump_mismatches, 0);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_malformed_byte_mutations(void) {
    llm_request *r = rich_request();
    json_t *j = codec_request_to_json(r);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    llm_request_free(r);
    size_t len = strlen(text);
    char *buf = xmalloc(len + 1);
    size_t parsed = 0;
    for (int iter = 0; iter < 4000; iter++) {
        memcpy(buf, text, len + 1);
        size_t n = len;
        for (int k = 0, muts = 1 + (int)(rng() % 4); k < muts; k++) {
            size_t pos = rng() % n;
            switch (rng() % 3) {
            case 0:
                buf[pos] = (char)(rng() & 0xff);
                break;
            case 1:
                n = pos; /* truncate */
                buf[n] = '\0';
                break;
            default:
                buf[pos] = "{}[]\",:0a\\"[rng() % 10];
            }
            if (n == 0)
                break;
        }
        json_t *m = json_loadb(buf, n, 0, NULL);
        if (m) {
            parsed++;
            decode_any(m, iter % 2 == 0);
            json_decref(m);
        }
    }
    CU_ASSERT(parsed > 0);
    free(buf);
    free(text);
}

/* ---- fastjson against jansson --------------------------------------------------------- */

static size_t load_mismatches;

/* fj_load must accept exactly what jansson accepts, giving an equal tree. */
static void check_load_same(const char *text, size_t len) {
    json_t *a = json_loadb(text, len, JSON_DECODE_ANY, NULL);
    char err[128];
    json_t *b = fj_load(text, len, err, sizeof err);
    bool same = (!a && !b) || (a && b && json_equal(a, b));
    /* jansson quirk: a NUL byte right after a number is skipped ("[1\0]" loads). fastjson
     * refuses every NUL outside strings, as RFC 8259 requires. */
    if (a && !b && memchr(text, 0, len))
        same = true;
    if (a && b)
        check_dump_equal(b);
    if (!same && getenv("SLUICE_TEST_DUMP")) {
        FILE *f = fopen(getenv("SLUICE_TEST_DUMP"), "wb");
        fwrite(text, 1, len, f);
        fclose(f);
    }
    if (!same && load_mismatches++ < 5)
        fprintf(stderr, "\n  input [%.*s]: jansson %s, fastjson %s (%s)\n", (int)len, text,
                a ? "accepts" : "rejects", b ? "accepts" : "rejects", b ? "" : err);
    json_decref(a);
    json_decref(b);
}

static const char *const edge_texts[] = {
    "",
    " ",
    "{}",
    "[]",
    " [ ] ",
    "[1,2,]",
    "{\"a\":1,}",
    "01",
    "-01",
    "-0",
    "-0.0",
    "1.",
    ".5",
    "1e5",
    "1E+5",
    "1e-5",
    "1.5e-07",
    "-",
    "+1",
    "1e",
    "1e+",
    "0x10",
    "00",
    "0.0e0",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "1e400",
    "-1e400",
    "1e-400",
    "1.7976931348623157e308",
    "2.2250738585072014e-308",
    "4.9e-324",
    "0.1",
    "123456789012345678901234567890.5",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\\udc00\"",
    "\"\\ud83d\\ude00\"",
    "\"\\ud83dx\"",
    "\"\\ud83d\\u0041\"",
    "\"\\uD83D\\uDE00\"",
    "\"\\u00e9\\u00E9\"",
    "\"\\u12\"",
    "\"\\u12g4\"",
    "\"\\x\"",
    "\"a\tb\"",
    "\"\x7f\"",
    "\"\xc3\xa9\"",
    "\"\xc3\"",
    "\"\xc3(\"",
    "\"\xe0\x80\x80\"",
    "\"\xe0\xa0\x80\"",
    "\"\xed\xa0\x80\"",
    "\"\xed\x9f\xbf\"",
    "\"\xf4\x90\x80\x80\"",
    "\"\xf4\x8f\xbf\xbf\"",
    "\"\xf0\x8f\xbf\xbf\"",
    "\"\xf0\x9f\x98\x80\"",
    "\"\xf5\x80\x80\x80\"",
    "\"\xc0\x80\"",
    "\"\xc1\xbf\"",
    "\"\x80\"",
    "\"\xbf\"",
    "\"\xff\"",
    "true",
    "tru",
    "truex",
    "nul",
    "null ",
    " null",
    "false",
    "fals",
    "[true,false,null]",
    "{\"a\" 1}",
    "{a:1}",
    "{\"a\":1 \"b\":2}",
    "{\"a\":1}x",
    "[[[[]]]]",
    "[[[[]]]",
    "{\"a\":{\"b\":[1,{\"c\":\"d\"}]}}",
    "{\"dup\":1,\"dup\":2}",
    "\"\\/\"",
    "\"\\b\\f\\n\\r\\t\\\"\\\\\"",
    "123abc",
    "[1 2]",
    "\xef\xbb\xbf{}",
    "\"unterminated",
    "[",
    "{",
    "{\"a\"",
    "{\"a\":",
    "{\"a\":1",
    "[1,",
    "\"\\",
    "\"\\u",
    "\"\\ud800\\u",
    "{\"\\u00e9\":1}",
    "{\"\":0}",
    "{\"k\\nx\":[\"v\"]}",
    "[\"\x01\"]",
    "\t\r\n 7 \n",
    "[1e5,-2E-3,0.5,-0.5,100]",
    "[-]",
    "[--1]",
    "[1.e5]",
    "[1e5.5]",
    "/* */ 1",
    "[1]//",
};

static void test_fastjson_edge_cases(void) {
    for (size_t i = 0; i < sizeof edge_texts / sizeof edge_texts[0]; i++)
        check_load_same(edge_texts[i], strlen(edge_texts[i]));
    check_load_same("[1]\0", 4);    /* NUL after the value */
    check_load_same("[1\0]", 4);    /* jansson skips it; fastjson refuses (see above) */
    check_load_same("\"a\0b\"", 5); /* NUL inside a string */
    CU_ASSERT_EQUAL(load_mismatches, 0);
    CU_ASSERT_EQUAL(dump_mismatches, 0);
    /* Deep nesting is refused, not a stack overflow. */
    size_t depth = 100000;
    char *deep = xmalloc(2 * depth);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    char err[128];
    json_t *j = fj_load(deep, 2 * depth, err, sizeof err);
    CU_ASSERT_PTR_NULL(j);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "nested too deeply"));
    free(deep);
    /* Values JSON cannot hold are refused by the dumper. */
    json_t *bad = json_pack("[f]", 1.0);
    json_real_set(json_array_get(bad, 0), 2.0);
    size_t n;
    char *t = fj_dump(bad, &n);
    CU_ASSERT_STRING_EQUAL(t, "[2.0]");
    free(t);
    json_array_append_new(bad, json_stringn_nocheck("\xff", 1));
    CU_ASSERT_PTR_NULL(fj_dump(bad, &n));
    json_decref(bad);
}

static const char mut_chars[] = "{}[]\",:0-.eE\\u9\x80\xc3 tfn";

static void test_fastjson_mutations(void) {
    llm_request *r = rich_request();
    llm_response *resp = rich_response();
    json_t *docs[2] = {codec_request_to_json(r), codec_response_to_json(resp)};
    for (int d = 0; d < 2; d++) {
        char *text = json_dumps(docs[d], JSON_COMPACT);
        size_t len = strlen(text);
        char *buf = xmalloc(len + 1);
        check_load_same(text, len);
        for (int iter = 0; iter < 20000; iter++) {
            memcpy(buf, text, len + 1);
            size_t n = len;
            for (int k = 0, muts = 1 + (int)(rng() % 3); k < muts && n; k++) {
                size_t pos = rng() % n;
                uint64_t what = rng() % 4;
                if (what == 0)
                    buf[pos] = (char)(rng() & 0xff);
                else if (what == 1)
                    n = pos;
                else if (what == 2)
                    buf[pos] = mut_chars[rng() % (sizeof mut_chars - 1)];
                else if (pos + 1 < n) /* delete one byte */
                    memmove(buf + pos, buf + pos + 1, --n - pos);
            }
            check_load_same(buf, n);
        }
        free(buf);
        free(text);
        json_decref(docs[d]);
    }
    llm_request_free(r);
    llm_response_free(resp);
    CU_ASSERT_EQUAL(load_mismatches, 0);
    CU_ASSERT_EQUAL(dump_mismatches, 0);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("codec", NULL, NULL);
    CU_add_test(s, "request round trip (rich)", test_request_roundtrip_rich);
    CU_add_test(s, "request round trip (minimal)", test_request_roundtrip_minimal);
    CU_add_test(s, "request round trip (odd values)", test_request_roundtrip_odd_values);
    CU_add_test(s, "response round trip", test_response_roundtrip);
    CU_add_test(s, "sampling round trip", test_sampling_roundtrip);
    CU_add_test(s, "malformed inputs name the field", test_malformed_named);
    CU_add_test(s, "every member swapped for every type", test_malformed_type_swaps);
    CU_add_test(s, "random byte mutations", test_malformed_byte_mutations);
    CU_add_test(s, "fastjson agrees with jansson (edge cases)", test_fastjson_edge_cases);
    CU_add_test(s, "fastjson agrees with jansson (mutations)", test_fastjson_mutations);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures ? 1 : 0;
}
