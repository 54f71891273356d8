/*
 * test_codec: the store's binary codec (protobuf-c, sluice.store.v1).
 *
 * Exact round trips of every field of llm_request / llm_response (NULL vs "", NULL vs
 * zero-length image data, NULL stop entries, NaN / infinities / -0.0, bytes that are not
 * UTF-8, extreme integers), the encoder's refusals, malformed messages whose errors name the
 * field (built by tampering with a valid message tree before packing), raw bytes that are
 * not a message, every single-byte change and truncation of packed values, and 10,000
 * random mutations: decoding must fail cleanly with SLUICE_EPROTO or yield a struct the
 * encoder accepts and that round-trips unchanged. ASan/UBSan and valgrind watch for the
 * rest.
 */
#include "server/common/alloc.h"
#include "server/common/llm.h"
#include "server/store/codec.h"
#include "sluice/status.h"
#include "test_util.h"

#include <CUnit/Basic.h>
#include <limits.h>
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

/* ---- round trips through bytes ------------------------------------------------------- */

/* Packs (after `headroom` bytes, as the store does) and unpacks. NULL on any failure. */
static llm_request *request_roundtrip_at(const llm_request *r, size_t headroom) {
    uint8_t *b = NULL;
    size_t n = 0;
    char err[256] = "";
    if (codec_request_pack(r, headroom, &b, &n, err, sizeof err) != SLUICE_OK) {
        fprintf(stderr, "\n  encode failed: %s\n", err);
        return NULL;
    }
    llm_request *out = NULL;
    int rc = codec_request_unpack(b + headroom, n - headroom, &out, err, sizeof err);
    free(b);
    if (rc)
        fprintf(stderr, "\n  decode failed: %s\n", err);
    return out;
}

static llm_request *request_roundtrip(const llm_request *r) {
    return request_roundtrip_at(r, 0);
}

static llm_response *response_roundtrip(const llm_response *r) {
    uint8_t *b = NULL;
    size_t n = 0;
    char err[256] = "";
    if (codec_response_pack(r, 11, &b, &n, err, sizeof err) != SLUICE_OK) {
        fprintf(stderr, "\n  encode failed: %s\n", err);
        return NULL;
    }
    llm_response *out = NULL;
    int rc = codec_response_unpack(b + 11, n - 11, &out, err, sizeof err);
    free(b);
    if (rc)
        fprintf(stderr, "\n  decode failed: %s\n", err);
    return out;
}

static void check_request_roundtrip(const llm_request *r) {
    llm_request *back = request_roundtrip(r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT(request_eq(r, back));
    llm_request_free(back);
}

static void check_response_roundtrip(const llm_response *r) {
    llm_response *back = response_roundtrip(r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT(response_eq(r, back));
    llm_response_free(back);
}

static void test_request_roundtrip_rich(void) {
    llm_request *r = rich_request();
    check_request_roundtrip(r);
    llm_request *back = request_roundtrip_at(r, 100); /* headroom does not change the bytes */
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT(request_eq(r, back));
    llm_request_free(back);
    llm_request_free(r);
}

static void test_request_roundtrip_minimal(void) {
    llm_request *r = llm_request_new();
    llm_request_add_text(r, LLM_ROLE_USER, "");
    llm_request *back = request_roundtrip(r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT(request_eq(r, back));
    CU_ASSERT_PTR_NOT_NULL(back->messages[0].parts[0].text); /* "" stays "", not NULL */
    CU_ASSERT_PTR_NULL(back->messages[0].parts[0].id);       /* NULL stays NULL */
    llm_request_free(back);
    llm_request_free(r);
    /* No bytes at all are the empty request (and the empty response). */
    llm_request *empty = NULL;
    char err[128];
    CU_ASSERT_EQUAL(codec_request_unpack(NULL, 0, &empty, err, sizeof err), SLUICE_OK);
    CU_ASSERT(empty && empty->n_messages == 0 && !empty->schema_name);
    llm_request_free(empty);
    llm_response *none = NULL;
    CU_ASSERT_EQUAL(codec_response_unpack(NULL, 0, &none, err, sizeof err), SLUICE_OK);
    CU_ASSERT(none && !none->completion && none->n_content == 0);
    llm_response_free(none);
}

/* Every nullable string once as "" and once as NULL. */
static void test_empty_and_null_stay_distinct(void) {
    llm_request *r = rich_request();
    for (size_t i = 0; i < r->n_messages; i++) {
        for (size_t j = 0; j < r->messages[i].n_parts; j++) {
            llm_part *p = &r->messages[i].parts[j];
            llm_part_kind kind = p->kind;
            bool image = kind == LLM_PART_IMAGE;
            llm_part_cleanup(p);
            *p = (llm_part){.kind = kind,
                            .text = xstrdup(""),
                            .id = xstrdup(""),
                            .name = xstrdup(""),
                            .arguments = xstrdup(""),
                            .url = xstrdup(""),
                            .data = image && j % 2 ? xmemdup("", 0) : NULL,
                            .media_type = xstrdup(""),
                            .detail = xstrdup(""),
                            .signature = xstrdup("")};
        }
    }
    free(r->tools[0].description);
    r->tools[0].description = xstrdup("");
    free(r->schema_name);
    r->schema_name = xstrdup("");
    free(r->prefer_model);
    r->prefer_model = NULL;
    free(r->sampling.stop[0]);
    r->sampling.stop[0] = xstrdup("");
    free(r->sampling.stop[2]);
    r->sampling.stop[2] = NULL; /* a NULL entry among others */
    check_request_roundtrip(r);
    llm_request *back = request_roundtrip(r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT_PTR_NOT_NULL(back->messages[1].parts[1].data); /* zero bytes, not NULL */
    CU_ASSERT_PTR_NULL(back->messages[1].parts[0].data);
    CU_ASSERT_PTR_NULL(back->sampling.stop[2]);
    CU_ASSERT_PTR_NOT_NULL(back->sampling.stop[0]);
    llm_request_free(back);
    llm_request_free(r);
}

static void test_request_roundtrip_odd_values(void) {
    llm_request *r = rich_request();
    free(r->messages[0].parts[0].text);
    r->messages[0].parts[0].text = xstrdup("bad utf8: \xff\xfe \xc3"); /* not valid UTF-8 */
    char all[256];
    for (int i = 1; i < 256; i++)
        all[i - 1] = (char)i;
    all[255] = '\0';
    free(r->messages[2].parts[1].text);
    r->messages[2].parts[1].text = xstrdup(all); /* every byte but NUL */
    free(r->messages[1].parts[2].data);
    r->messages[1].parts[2].data = xmemdup("", 0); /* present but empty */
    r->messages[1].parts[2].data_len = 0;
    r->sampling.temperature = NAN;
    r->sampling.top_p = -INFINITY;
    r->sampling.max_new_tokens = UINT32_MAX;
    r->sampling.thinking_budget = UINT32_MAX;
    check_request_roundtrip(r);
    r->sampling.temperature = -0.0;
    r->sampling.top_p = INFINITY;
    check_request_roundtrip(r);
    r->sampling.top_p = -0.0;
    r->sampling.temperature = 0.0;
    check_request_roundtrip(r);
    llm_request_free(r);
}

/* Samplings as the dispatcher holds them: overrides (bits on) and merged ones (defaults
 * filled in, bits off) and nothing at all. */
static void test_sampling_roundtrip(void) {
    llm_sampling base = {
        .set = LLM_SET_TEMPERATURE | LLM_SET_STOP, .temperature = 0.25, .n_stop = 1};
    base.stop[0] = xstrdup("END");
    llm_sampling merged;
    llm_sampling_merge(&merged, &base, NULL);
    llm_sampling empty = {0};
    const llm_sampling *cases[] = {&base, &merged, &empty};
    for (size_t i = 0; i < 3; i++) {
        llm_request *r = llm_request_new();
        llm_sampling_copy(&r->sampling, cases[i]);
        llm_request *back = request_roundtrip(r);
        CU_ASSERT_PTR_NOT_NULL_FATAL(back);
        CU_ASSERT(sampling_eq(cases[i], &back->sampling));
        llm_request_free(back);
        llm_request_free(r);
    }
    llm_sampling_cleanup(&merged);
    llm_sampling_cleanup(&base);
}

static void test_response_roundtrip(void) {
    llm_response *r = rich_response();
    check_response_roundtrip(r);
    /* completion NULL next to text parts, then different from them, then "" */
    free(r->completion);
    r->completion = NULL;
    check_response_roundtrip(r);
    r->completion = xstrdup("edited");
    check_response_roundtrip(r);
    free(r->completion);
    r->completion = xstrdup("");
    check_response_roundtrip(r);
    llm_response_set_completion_from_content(r);
    r->cost = -0.0;
    r->cost_saved = NAN;
    r->usage = (llm_usage){UINT64_MAX, UINT64_MAX - 1, 1ull << 63, 0};
    r->attempts[0].status_code = INT_MIN;
    check_response_roundtrip(r);
    llm_response_set_error(r, LLM_ERR_TIMEOUT, 429, "slow down after %d tries", 3);
    r->status_code = -1;
    check_response_roundtrip(r);
    llm_response_free(r);
    llm_response *empty = llm_response_new();
    check_response_roundtrip(empty);
    empty->completion = xstrdup(""); /* "" with no text parts is stored, not derived */
    check_response_roundtrip(empty);
    llm_response_free(empty);
}

/* The usual answer's text is stored once: the derived completion costs no bytes. */
static void test_completion_stored_once(void) {
    llm_response *r = rich_response();
    free(r->content[1].text);
    r->content[1].text = xmalloc(1001);
    memset(r->content[1].text, 'a', 1000);
    r->content[1].text[1000] = '\0';
    llm_response_set_completion_from_content(r);
    uint8_t *b;
    size_t n;
    char err[128];
    CU_ASSERT_EQUAL_FATAL(codec_response_pack(r, 0, &b, &n, err, sizeof err), SLUICE_OK);
    CU_ASSERT(n > 1000 && n < 1300);
    free(b);
    check_response_roundtrip(r);
    llm_response_free(r);
}

/* The message-tree functions the task record uses, without packing. */
static void test_proto_mapping(void) {
    llm_request *r = rich_request();
    Sluice__Store__V1__Request *m = NULL;
    char err[128];
    CU_ASSERT_EQUAL_FATAL(codec_request_to_proto(r, &m, err, sizeof err), SLUICE_OK);
    llm_request *back = NULL;
    CU_ASSERT_EQUAL(codec_request_from_proto(m, &back, err, sizeof err), SLUICE_OK);
    CU_ASSERT(back && request_eq(r, back));
    llm_request_free(back);
    codec_request_proto_free(m);
    codec_request_proto_free(NULL);
    llm_request_free(r);
    llm_response *resp = rich_response();
    Sluice__Store__V1__Response *rm = NULL;
    CU_ASSERT_EQUAL_FATAL(codec_response_to_proto(resp, &rm, err, sizeof err), SLUICE_OK);
    llm_response *rback = NULL;
    CU_ASSERT_EQUAL(codec_response_from_proto(rm, &rback, err, sizeof err), SLUICE_OK);
    CU_ASSERT(rback && response_eq(resp, rback));
    llm_response_free(rback);
    codec_response_proto_free(rm);
    llm_response_free(resp);
}

/* ---- the encoder's refusals ---------------------------------------------------------- */

static void expect_text(const char *err, const char *needle) {
    if (!strstr(err, needle)) {
        fprintf(stderr, "\n  error \"%s\" does not name \"%s\"\n", err, needle);
        CU_FAIL("error message does not name the field");
    }
}

static void expect_request_refused(const llm_request *r, const char *needle) {
    uint8_t *b = NULL;
    size_t n = 0;
    char err[256] = "";
    CU_ASSERT_EQUAL(codec_request_pack(r, 0, &b, &n, err, sizeof err), SLUICE_EINVAL);
    CU_ASSERT_PTR_NULL(b);
    expect_text(err, needle);
}

static void expect_response_refused(const llm_response *r, const char *needle) {
    uint8_t *b = NULL;
    size_t n = 0;
    char err[256] = "";
    CU_ASSERT_EQUAL(codec_response_pack(r, 0, &b, &n, err, sizeof err), SLUICE_EINVAL);
    CU_ASSERT_PTR_NULL(b);
    expect_text(err, needle);
}

static void test_encoder_refusals(void) {
    llm_request *r = rich_request();
    r->messages[0].role = (llm_role)9;
    expect_request_refused(r, "messages[0].role: 9 is out of range");
    r->messages[0].role = (llm_role)0;
    expect_request_refused(r, "messages[0].role: 0 is out of range");
    r->messages[0].role = LLM_ROLE_SYSTEM;
    r->messages[2].parts[1].kind = (llm_part_kind)6;
    expect_request_refused(r, "messages[2].parts[1].kind: 6 is out of range");
    r->messages[2].parts[1].kind = LLM_PART_TEXT;
    char *url = r->messages[1].parts[1].url;
    r->messages[1].parts[1].url = NULL;
    expect_request_refused(r, "messages[1].parts[1]: image part without a url or data");
    r->messages[1].parts[1].url = url;
    r->sampling.set |= 0x80;
    expect_request_refused(r, "sampling.set: undefined bits 0x80");
    r->sampling.set &= ~0x80u;
    r->sampling.effort = (llm_effort)7;
    expect_request_refused(r, "sampling.effort: 7 is out of range");
    r->sampling.effort = LLM_EFFORT_LOW;
    r->sampling.n_stop = 5; /* never read: refused before the stop array is looked at */
    expect_request_refused(r, "sampling.stop: 5 sequences, at most 4");
    r->sampling.n_stop = 4;
    check_request_roundtrip(r); /* everything restored: accepted again */
    llm_request_free(r);

    llm_response *resp = rich_response();
    resp->error_kind = (llm_error_kind)8;
    expect_response_refused(resp, "error_kind: 8 is out of range");
    resp->error_kind = LLM_ERR_NONE;
    resp->content[2].kind = (llm_part_kind)0;
    expect_response_refused(resp, "content[2].kind: 0 is out of range");
    resp->content[2].kind = LLM_PART_TOOL_CALL;
    check_response_roundtrip(resp);
    llm_response_free(resp);
}

/* ---- malformed messages name the field ----------------------------------------------- */

static uint8_t unknown_data[] = {1};
static ProtobufCMessageUnknownField unknown = {99, PROTOBUF_C_WIRE_TYPE_VARINT, 1, unknown_data};

static void add_unknown(ProtobufCMessage *m) {
    m->n_unknown_fields = 1;
    m->unknown_fields = &unknown;
}

typedef void (*request_tamper)(Sluice__Store__V1__Request *m);
typedef void (*response_tamper)(Sluice__Store__V1__Response *m);

/* Builds the rich request's message tree, lets `t` damage it, packs it and expects the
 * decoder to refuse it naming `needle`. */
static void expect_request_malformed(request_tamper t, const char *needle) {
    llm_request *r = rich_request();
    Sluice__Store__V1__Request *m = NULL;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(codec_request_to_proto(r, &m, err, sizeof err), SLUICE_OK);
    t(m);
    uint8_t *b;
    size_t n;
    codec_message_pack(&m->base, 0, &b, &n);
    llm_request *out = (llm_request *)1;
    CU_ASSERT_EQUAL(codec_request_unpack(b, n, &out, err, sizeof err), SLUICE_EPROTO);
    CU_ASSERT_PTR_NULL(out);
    expect_text(err, needle);
    free(b);
    codec_request_proto_free(m);
    llm_request_free(r);
}

static void expect_response_malformed(response_tamper t, const char *needle) {
    llm_response *r = rich_response();
    Sluice__Store__V1__Response *m = NULL;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(codec_response_to_proto(r, &m, err, sizeof err), SLUICE_OK);
    t(m);
    uint8_t *b;
    size_t n;
    codec_message_pack(&m->base, 0, &b, &n);
    llm_response *out = (llm_response *)1;
    CU_ASSERT_EQUAL(codec_response_unpack(b, n, &out, err, sizeof err), SLUICE_EPROTO);
    CU_ASSERT_PTR_NULL(out);
    expect_text(err, needle);
    free(b);
    codec_response_proto_free(m);
    llm_response_free(r);
}

#define PART(m, i, j) ((m)->messages[i]->parts[j])

static void rq_role_high(Sluice__Store__V1__Request *m) {
    m->messages[0]->role = 9;
}
static void rq_role_zero(Sluice__Store__V1__Request *m) {
    m->messages[3]->role = 0;
}
static void rq_kind(Sluice__Store__V1__Request *m) {
    PART(m, 1, 0)->kind = 6;
}
static void rq_image_no_source(Sluice__Store__V1__Request *m) {
    PART(m, 1, 1)->present &= ~(uint32_t)SLUICE__STORE__V1__PART_PRESENCE__PART_PRESENCE_URL;
    PART(m, 1, 1)->url = "";
}
static void rq_text_without_bit(Sluice__Store__V1__Request *m) {
    PART(m, 0, 0)->present &= ~(uint32_t)SLUICE__STORE__V1__PART_PRESENCE__PART_PRESENCE_TEXT;
}
static void rq_data_without_bit(Sluice__Store__V1__Request *m) {
    PART(m, 1, 2)->url = "https://example.com/b.png"; /* still an image with a source */
    PART(m, 1, 2)->present |= SLUICE__STORE__V1__PART_PRESENCE__PART_PRESENCE_URL;
    PART(m, 1, 2)->present &= ~(uint32_t)SLUICE__STORE__V1__PART_PRESENCE__PART_PRESENCE_DATA;
}
static void rq_part_bits(Sluice__Store__V1__Request *m) {
    PART(m, 2, 0)->present |= 0x200;
}
static void rq_part_unknown(Sluice__Store__V1__Request *m) {
    add_unknown(&PART(m, 2, 2)->base);
}
static void rq_message_unknown(Sluice__Store__V1__Request *m) {
    add_unknown(&m->messages[1]->base);
}
static void rq_top_unknown(Sluice__Store__V1__Request *m) {
    add_unknown(&m->base);
}
static void rq_top_bits(Sluice__Store__V1__Request *m) {
    m->present |= 0x8;
}
static void rq_schema_without_bit(Sluice__Store__V1__Request *m) {
    m->present &= ~(uint32_t)SLUICE__STORE__V1__REQUEST_PRESENCE__REQUEST_PRESENCE_SCHEMA_NAME;
}
static void rq_tool_name(Sluice__Store__V1__Request *m) {
    m->tools[0]->present &= ~(uint32_t)SLUICE__STORE__V1__TOOL_PRESENCE__TOOL_PRESENCE_NAME;
}
static void rq_tool_unknown(Sluice__Store__V1__Request *m) {
    add_unknown(&m->tools[1]->base);
}
static void rq_set_bits(Sluice__Store__V1__Request *m) {
    m->sampling->set |= 0x80;
}
static char *five_stops[] = {"a", "b", "c", "d", "e"};
static void rq_five_stops(Sluice__Store__V1__Request *m) {
    m->sampling->stop = five_stops;
    m->sampling->n_stop = 5;
    m->sampling->present |= 0xf;
}
static void rq_effort(Sluice__Store__V1__Request *m) {
    m->sampling->effort = 7;
}
static void rq_stop_without_bit(Sluice__Store__V1__Request *m) {
    m->sampling->present &= ~1u;
}
static void rq_stop_bit_without_stop(Sluice__Store__V1__Request *m) {
    m->sampling->n_stop = 2; /* bits 2 and 3 stay set */
}
static void rq_negative_zero_flag(Sluice__Store__V1__Request *m) {
    m->sampling->present |=
        SLUICE__STORE__V1__SAMPLING_PRESENCE__SAMPLING_PRESENCE_TEMPERATURE_NEGATIVE_ZERO;
}
static void rq_sampling_bits(Sluice__Store__V1__Request *m) {
    m->sampling->present |= 0x40;
}
static void rq_sampling_unknown(Sluice__Store__V1__Request *m) {
    add_unknown(&m->sampling->base);
}

static void rs_error_kind(Sluice__Store__V1__Response *m) {
    m->error_kind = 8;
}
static void rs_completion_twice(Sluice__Store__V1__Response *m) {
    m->present |= SLUICE__STORE__V1__RESPONSE_PRESENCE__RESPONSE_PRESENCE_COMPLETION;
    m->completion = "x";
}
static void rs_content_kind(Sluice__Store__V1__Response *m) {
    m->content[0]->kind = 0;
}
static void rs_attempt_model(Sluice__Store__V1__Response *m) {
    m->attempts[1]->present &=
        ~(uint32_t)SLUICE__STORE__V1__ATTEMPT_PRESENCE__ATTEMPT_PRESENCE_MODEL;
}
static void rs_attempt_unknown(Sluice__Store__V1__Response *m) {
    add_unknown(&m->attempts[0]->base);
}
static void rs_usage_unknown(Sluice__Store__V1__Response *m) {
    add_unknown(&m->usage->base);
}
static void rs_bits(Sluice__Store__V1__Response *m) {
    m->present |= 0x200;
}
static void rs_cost_flag(Sluice__Store__V1__Response *m) {
    m->present |= SLUICE__STORE__V1__RESPONSE_PRESENCE__RESPONSE_PRESENCE_COST_NEGATIVE_ZERO;
}
static void rs_finish_without_bit(Sluice__Store__V1__Response *m) {
    m->present &= ~(uint32_t)SLUICE__STORE__V1__RESPONSE_PRESENCE__RESPONSE_PRESENCE_FINISH_REASON;
}
static void rs_top_unknown(Sluice__Store__V1__Response *m) {
    add_unknown(&m->base);
}

static void test_malformed_named(void) {
    static const struct {
        request_tamper t;
        const char *needle;
    } rq[] = {
        {rq_role_high, "messages[0].role: 9 is out of range"},
        {rq_role_zero, "messages[3].role: 0 is out of range"},
        {rq_kind, "messages[1].parts[0].kind: 6 is out of range"},
        {rq_image_no_source, "messages[1].parts[1]: image part without a url or data"},
        {rq_text_without_bit, "messages[0].parts[0].text: a value without its presence bit"},
        {rq_data_without_bit, "messages[1].parts[2].data: a value without its presence bit"},
        {rq_part_bits, "messages[2].parts[0].present: undefined bits 0x200"},
        {rq_part_unknown, "messages[2].parts[2]: unknown field 99"},
        {rq_message_unknown, "messages[1]: unknown field 99"},
        {rq_top_unknown, "request: unknown field 99"},
        {rq_top_bits, "present: undefined bits 0x8"},
        {rq_schema_without_bit, "schema_name: a value without its presence bit"},
        {rq_tool_name, "tools[0].name: a value without its presence bit"},
        {rq_tool_unknown, "tools[1]: unknown field 99"},
        {rq_set_bits, "sampling.set: undefined bits 0x80"},
        {rq_five_stops, "sampling.stop: 5 sequences, at most 4"},
        {rq_effort, "sampling.effort: 7 is out of range"},
        {rq_stop_without_bit, "sampling.stop[0]: a value without its presence bit"},
        {rq_stop_bit_without_stop, "sampling.present: a stop bit without its stop sequence"},
        {rq_negative_zero_flag, "sampling.temperature: a -0.0 flag next to a value"},
        {rq_sampling_bits, "sampling.present: undefined bits 0x40"},
        {rq_sampling_unknown, "sampling: unknown field 99"},
    };
    static const struct {
        response_tamper t;
        const char *needle;
    } rs[] = {
        {rs_error_kind, "error_kind: 8 is out of range"},
        {rs_completion_twice, "present: completion both stored and derived"},
        {rs_content_kind, "content[0].kind: 0 is out of range"},
        {rs_attempt_model, "attempts[1].model: a value without its presence bit"},
        {rs_attempt_unknown, "attempts[0]: unknown field 99"},
        {rs_usage_unknown, "usage: unknown field 99"},
        {rs_bits, "present: undefined bits 0x200"},
        {rs_cost_flag, "cost: a -0.0 flag next to a value"},
        {rs_finish_without_bit, "finish_reason: a value without its presence bit"},
        {rs_top_unknown, "response: unknown field 99"},
    };
    for (size_t i = 0; i < sizeof rq / sizeof rq[0]; i++)
        expect_request_malformed(rq[i].t, rq[i].needle);
    for (size_t i = 0; i < sizeof rs / sizeof rs[0]; i++)
        expect_response_malformed(rs[i].t, rs[i].needle);
}

/* Bytes that are not a message at all. */
static void test_not_a_message(void) {
    static const struct {
        const char *bytes;
        size_t len;
    } bad[] = {
        {"\xff\xff\xff", 3}, /* field 0 / bad tag */
        {"\x12\x05\x08", 3}, /* messages: length past the end */
        {"\x38\x01", 2},     /* field 7 (a string / a message) as a varint */
        {"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12}, /* varint too long */
        {"{\"messages\":[]}", 15},                                /* a schema-1 JSON value */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        llm_request *r = (llm_request *)1;
        CU_ASSERT_EQUAL(
            codec_request_unpack((const uint8_t *)bad[i].bytes, bad[i].len, &r, err, sizeof err),
            SLUICE_EPROTO);
        CU_ASSERT_PTR_NULL(r);
        CU_ASSERT(strlen(err) > 0);
        llm_response *resp = (llm_response *)1;
        CU_ASSERT_EQUAL(codec_response_unpack((const uint8_t *)bad[i].bytes, bad[i].len, &resp, err,
                                              sizeof err),
                        SLUICE_EPROTO);
        CU_ASSERT_PTR_NULL(resp);
    }
    char err[256];
    llm_request *r = NULL;
    codec_request_unpack((const uint8_t *)"\xff\xff\xff", 3, &r, err, sizeof err);
    expect_text(err, "not a valid sluice.store.v1.Request (3 bytes)");
    codec_request_unpack((const uint8_t *)"\xff", 1, &r, NULL, 0); /* no error buffer */
    CU_ASSERT_PTR_NULL(r);
}

/* ---- mutations ----------------------------------------------------------------------- */

static size_t decoded_ok, decoded_bad;

/* Decodes bytes as a request or response: EPROTO, or a struct the encoder accepts and that
 * round-trips unchanged (so the decoder never yields what the store could not write). */
static void decode_any(const uint8_t *b, size_t n, bool request) {
    char err[256];
    int rc;
    if (request) {
        llm_request *r = NULL;
        rc = codec_request_unpack(b, n, &r, err, sizeof err);
        if (rc == SLUICE_OK) {
            llm_request *back = request_roundtrip(r);
            CU_ASSERT(back && request_eq(r, back));
            llm_request_free(back);
        } else {
            CU_ASSERT_PTR_NULL(r);
        }
        llm_request_free(r);
    } else {
        llm_response *r = NULL;
        rc = codec_response_unpack(b, n, &r, err, sizeof err);
        if (rc == SLUICE_OK) {
            llm_response *back = response_roundtrip(r);
            CU_ASSERT(back && response_eq(r, back));
            llm_response_free(back);
        } else {
            CU_ASSERT_PTR_NULL(r);
        }
        llm_response_free(r);
    }
    CU_ASSERT(rc == SLUICE_OK || rc == SLUICE_EPROTO);
    if (rc == SLUICE_OK)
        decoded_ok++;
    else
        decoded_bad++;
}

static void packed_rich(bool request, uint8_t **b, size_t *n) {
    char err[128];
    if (request) {
        llm_request *r = rich_request();
        CU_ASSERT_EQUAL_FATAL(codec_request_pack(r, 0, b, n, err, sizeof err), SLUICE_OK);
        llm_request_free(r);
    } else {
        llm_response *r = rich_response();
        CU_ASSERT_EQUAL_FATAL(codec_response_pack(r, 0, b, n, err, sizeof err), SLUICE_OK);
        llm_response_free(r);
    }
}

/* Every single-byte change (to a few telling values) and every truncation. The copy is
 * exactly n bytes, so ASan sees any read past the end. */
static void test_every_byte(void) {
    decoded_ok = decoded_bad = 0;
    for (int request = 0; request < 2; request++) {
        uint8_t *b;
        size_t n;
        packed_rich(request, &b, &n);
        for (size_t pos = 0; pos < n; pos++) {
            const uint8_t vals[] = {
                0x00, 0xff, 0x80, 0x7f, (uint8_t)(b[pos] ^ 1), (uint8_t)(b[pos] + 1)};
            for (size_t v = 0; v < sizeof vals; v++) {
                uint8_t *m = xmemdup(b, n);
                m[pos] = vals[v];
                decode_any(m, n, request);
                free(m);
            }
            uint8_t *cut = xmemdup(b, pos);
            decode_any(cut, pos, request);
            free(cut);
        }
        free(b);
    }
    CU_ASSERT(decoded_ok > 0 && decoded_bad > 0);
    fprintf(stderr, " (%zu decoded, %zu refused) ", decoded_ok, decoded_bad);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* One random edit of buf (n bytes, room for cap): set, truncate, delete, insert or copy a
 * slice over another place. */
static void mutate(uint8_t *buf, size_t *n, size_t cap) {
    if (*n == 0)
        return;
    size_t pos = rng() % *n;
    switch (rng() % 5) {
    case 0:
        buf[pos] = (uint8_t)rng();
        break;
    case 1:
        *n = pos;
        break;
    case 2:
        memmove(buf + pos, buf + pos + 1, *n - pos - 1);
        (*n)--;
        break;
    case 3:
        if (*n < cap) {
            memmove(buf + pos + 1, buf + pos, *n - pos);
            buf[pos] = (uint8_t)rng();
            (*n)++;
        }
        break;
    default: {
        size_t from = rng() % *n, len = 1 + rng() % 8;
        if (from + len <= *n && pos + len <= *n)
            memmove(buf + pos, buf + from, len);
    }
    }
}

static void test_random_mutations(void) {
    decoded_ok = decoded_bad = 0;
    uint8_t *orig[2];
    size_t olen[2];
    packed_rich(true, &orig[0], &olen[0]);
    packed_rich(false, &orig[1], &olen[1]);
    for (int iter = 0; iter < 10000; iter++) {
        int which = iter % 2;
        size_t cap = olen[which] + 16, n = olen[which];
        uint8_t *buf = xmalloc(cap);
        memcpy(buf, orig[which], n);
        for (int k = 0, muts = 1 + (int)(rng() % 4); k < muts; k++)
            mutate(buf, &n, cap);
        uint8_t *exact = xmemdup(buf, n); /* exactly n bytes for ASan */
        decode_any(exact, n, which == 0);
        free(exact);
        free(buf);
    }
    free(orig[0]);
    free(orig[1]);
    CU_ASSERT(decoded_ok > 0 && decoded_bad > 0);
    fprintf(stderr, " (%zu decoded, %zu refused) ", decoded_ok, decoded_bad);
}

int main(void) {
    static const test_case cases[] = {
        {"request round trip (rich)", test_request_roundtrip_rich},
        {"request round trip (minimal, empty bytes)", test_request_roundtrip_minimal},
        {"empty and NULL stay distinct", test_empty_and_null_stay_distinct},
        {"request round trip (odd values)", test_request_roundtrip_odd_values},
        {"sampling round trip", test_sampling_roundtrip},
        {"response round trip", test_response_roundtrip},
        {"completion stored once", test_completion_stored_once},
        {"message trees without packing", test_proto_mapping},
        {"encoder refuses what the decoder would", test_encoder_refusals},
        {"malformed messages name the field", test_malformed_named},
        {"bytes that are not a message", test_not_a_message},
        {"every byte changed, every truncation", test_every_byte},
        {"10,000 random mutations", test_random_mutations},
        {NULL, NULL},
    };
    return test_run_suite("codec", cases);
}
