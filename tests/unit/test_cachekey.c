/*
 * test_cachekey: keys are stable (same request built twice, JSON member order and
 * whitespace, unset vs default-valued sampling) and sensitive to every input that changes
 * the answer (tenant, provider, model, every message/part field, images, tools, output
 * schema, every sampling field, order). Dedup keys also follow prefer_model, the model list,
 * weights and per-model sampling. A pinned vector guards the encoding itself.
 */
#include "unit/test_util.h"
#include "server/common/alloc.h"
#include "server/common/llm.h"
#include "server/store/cachekey.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Key of the pinned request for CACHEKEY_SCHEMA_VERSION 1. */
#define PINNED_KEY "4205be77bfc5b33aeb7ba88e8f400782fea41eebbe59318622eb6a715a86cd4b"

/* Everything a model key depends on. */
typedef struct kin {
    char *tenant, *provider, *model;
    llm_request *req;
    llm_sampling s; /* effective */
} kin;

static void set_str(char **p, const char *v) {
    free(*p);
    *p = xstrdup(v);
}

static llm_request *base_request(void) {
    llm_request *r = llm_request_new();
    r->n_messages = 3;
    r->messages = XNEWV(llm_message, 3);
    llm_message *m = r->messages;
    m[0].role = LLM_ROLE_USER;
    m[0].n_parts = 3;
    m[0].parts = XNEWV(llm_part, 3);
    m[0].parts[0] = (llm_part){.kind = LLM_PART_TEXT, .text = xstrdup("hello")};
    m[0].parts[1] = (llm_part){
        .kind = LLM_PART_IMAGE, .url = xstrdup("https://x/a.png"), .detail = xstrdup("low")};
    m[0].parts[2] = (llm_part){.kind = LLM_PART_IMAGE,
                               .data = xmemdup("\x01\x02\x03", 3),
                               .data_len = 3,
                               .media_type = xstrdup("image/png")};
    m[1].role = LLM_ROLE_ASSISTANT;
    m[1].n_parts = 2;
    m[1].parts = XNEWV(llm_part, 2);
    m[1].parts[0] =
        (llm_part){.kind = LLM_PART_THINKING, .text = xstrdup("hm"), .signature = xstrdup("sig")};
    m[1].parts[1] = (llm_part){.kind = LLM_PART_TOOL_CALL,
                               .id = xstrdup("c1"),
                               .name = xstrdup("f"),
                               .arguments = xstrdup("{\"a\":1,\"b\":{\"x\":[1,2],\"y\":null}}")};
    m[2].role = LLM_ROLE_TOOL;
    m[2].n_parts = 1;
    m[2].parts = XNEWV(llm_part, 1);
    m[2].parts[0] =
        (llm_part){.kind = LLM_PART_TOOL_RESULT, .id = xstrdup("c1"), .text = xstrdup("42")};
    r->n_tools = 2;
    r->tools = XNEWV(llm_tool, 2);
    r->tools[0] = (llm_tool){.name = xstrdup("f"),
                             .description = xstrdup("does f"),
                             .parameters = xstrdup("{\"type\":\"object\",\"properties\":"
                                                   "{\"a\":{\"type\":\"integer\"}}}")};
    r->tools[1] = (llm_tool){.name = xstrdup("g"), .parameters = xstrdup("{}")};
    r->schema_name = xstrdup("out");
    r->output_schema = xstrdup("{\"type\":\"object\",\"required\":[\"a\"]}");
    return r;
}

static void kin_init(kin *k) {
    k->tenant = xstrdup("tenant-a");
    k->provider = xstrdup("openai");
    k->model = xstrdup("gpt-4.1-mini");
    k->req = base_request();
    llm_sampling o = {.set = LLM_SET_STOP | LLM_SET_EFFORT, .n_stop = 2, .effort = LLM_EFFORT_LOW};
    o.stop[0] = "END";
    o.stop[1] = "STOP";
    llm_sampling_merge(&k->s, NULL, &o);
}

static void kin_cleanup(kin *k) {
    free(k->tenant);
    free(k->provider);
    free(k->model);
    llm_request_free(k->req);
    llm_sampling_cleanup(&k->s);
}

static void kin_key(const kin *k, cache_key *out) {
    cachekey_for_model(k->tenant, k->provider, k->model, k->req, &k->s, out);
}

/* ---- stability ----------------------------------------------------------------------- */

static void test_stable_same_request_twice(void) {
    kin a, b;
    kin_init(&a);
    kin_init(&b);
    cache_key ka, kb;
    kin_key(&a, &ka);
    kin_key(&b, &kb);
    CU_ASSERT(memcmp(&ka, &kb, sizeof ka) == 0);
    kin_key(&a, &kb); /* and twice from the same struct */
    CU_ASSERT(memcmp(&ka, &kb, sizeof ka) == 0);
    kin_cleanup(&a);
    kin_cleanup(&b);
}

static void test_stable_json_member_order(void) {
    kin a, b;
    kin_init(&a);
    kin_init(&b);
    set_str(&b.req->tools[0].parameters, "{ \"properties\" : {\"a\": {\"type\": \"integer\"}},\n"
                                         "  \"type\": \"object\" }");
    set_str(&b.req->output_schema, "{\"required\":[\"a\"],\"type\":\"object\"}");
    set_str(&b.req->messages[1].parts[1].arguments, "{\"b\":{\"y\":null,\"x\":[1,2]},\"a\":1}");
    cache_key ka, kb;
    kin_key(&a, &ka);
    kin_key(&b, &kb);
    CU_ASSERT(memcmp(&ka, &kb, sizeof ka) == 0);
    /* Array order inside JSON is meaningful. */
    set_str(&b.req->messages[1].parts[1].arguments, "{\"b\":{\"y\":null,\"x\":[2,1]},\"a\":1}");
    kin_key(&b, &kb);
    CU_ASSERT(memcmp(&ka, &kb, sizeof ka) != 0);
    kin_cleanup(&a);
    kin_cleanup(&b);
}

static void test_stable_effective_sampling(void) {
    kin a;
    kin_init(&a);
    llm_sampling unset = {0},
                 explicit = {.set = LLM_SET_TEMPERATURE | LLM_SET_TOP_P | LLM_SET_MAX_NEW_TOKENS,
                             .temperature = LLM_DEFAULT_TEMPERATURE,
                             .top_p = LLM_DEFAULT_TOP_P,
                             .max_new_tokens = LLM_DEFAULT_MAX_NEW_TOKENS};
    llm_sampling m1, m2;
    llm_sampling_merge(&m1, NULL, &unset);
    llm_sampling_merge(&m2, &explicit, NULL);
    cache_key k1, k2, k3;
    cachekey_for_model(a.tenant, a.provider, a.model, a.req, &m1, &k1);
    cachekey_for_model(a.tenant, a.provider, a.model, a.req, &m2, &k2);
    cachekey_for_model(a.tenant, a.provider, a.model, a.req, NULL, &k3); /* NULL = defaults */
    CU_ASSERT(memcmp(&k1, &k2, sizeof k1) == 0);
    CU_ASSERT(memcmp(&k1, &k3, sizeof k1) == 0);
    /* prefer_model and the request's own override mask are not part of the model key. */
    cache_key ka, kb;
    kin_key(&a, &ka);
    set_str(&a.req->prefer_model, "other");
    a.req->sampling.set = LLM_SET_TEMPERATURE;
    a.req->sampling.temperature = 0.3;
    kin_key(&a, &kb);
    CU_ASSERT(memcmp(&ka, &kb, sizeof ka) == 0);
    llm_sampling_cleanup(&m1);
    llm_sampling_cleanup(&m2);
    kin_cleanup(&a);
}

/* ---- sensitivity --------------------------------------------------------------------- */

typedef struct mutation {
    const char *name;
    void (*apply)(kin *k);
} mutation;

#define P(i, j) (&k->req->messages[i].parts[j])
#define MUT(nm, body)                                                                              \
    static void mut_##nm(kin *k) {                                                                 \
        body;                                                                                      \
    }

MUT(tenant, set_str(&k->tenant, "tenant-b"))
MUT(tenant_null, set_str(&k->tenant, NULL))
MUT(tenant_empty, set_str(&k->tenant, ""))
MUT(provider, set_str(&k->provider, "anthropic"))
MUT(provider_gemini, set_str(&k->provider, "gemini"))
MUT(model, set_str(&k->model, "gpt-4.1"))
MUT(role, k->req->messages[0].role = LLM_ROLE_SYSTEM)
MUT(role2, k->req->messages[2].role = LLM_ROLE_USER)
MUT(kind, P(0, 0)->kind = LLM_PART_THINKING)
MUT(text, set_str(&P(0, 0)->text, "hello!"))
MUT(text_null, set_str(&P(0, 0)->text, NULL))
MUT(text_empty, set_str(&P(0, 0)->text, ""))
MUT(thinking_text, set_str(&P(1, 0)->text, "hmm"))
MUT(signature, set_str(&P(1, 0)->signature, "sig2"))
MUT(signature_null, set_str(&P(1, 0)->signature, NULL))
MUT(call_id, set_str(&P(1, 1)->id, "c2"))
MUT(call_name, set_str(&P(1, 1)->name, "g"))
MUT(call_args, set_str(&P(1, 1)->arguments, "{\"a\":2,\"b\":{\"x\":[1,2],\"y\":null}}"))
MUT(call_args_type, set_str(&P(1, 1)->arguments, "{\"a\":1.0,\"b\":{\"x\":[1,2],\"y\":null}}"))
MUT(result_id, set_str(&P(2, 0)->id, "c9"))
MUT(result_text, set_str(&P(2, 0)->text, "43"))
MUT(result_error, P(2, 0)->is_error = true)
MUT(image_url, set_str(&P(0, 1)->url, "https://x/b.png"))
MUT(image_detail, set_str(&P(0, 1)->detail, "high"))
MUT(image_detail_null, set_str(&P(0, 1)->detail, NULL))
MUT(image_bytes, P(0, 2)->data[1] = 9)
MUT(image_len, P(0, 2)->data_len = 2)
MUT(image_media_type, set_str(&P(0, 2)->media_type, "image/jpeg"))
MUT(image_url_to_bytes, {
    set_str(&P(0, 1)->url, NULL);
    P(0, 1)->data = xmemdup("https://x/a.png", 15);
    P(0, 1)->data_len = 15;
})
MUT(part_dropped, {
    llm_part_cleanup(P(0, 2));
    k->req->messages[0].n_parts = 2;
})
MUT(message_dropped, {
    llm_message_cleanup(&k->req->messages[2]);
    k->req->n_messages = 2;
})
MUT(message_order, {
    llm_message t = k->req->messages[0];
    k->req->messages[0] = k->req->messages[2];
    k->req->messages[2] = t;
})
MUT(part_order, {
    llm_part t = *P(0, 1);
    *P(0, 1) = *P(0, 2);
    *P(0, 2) = t;
})
MUT(tool_name, set_str(&k->req->tools[0].name, "f2"))
MUT(tool_description, set_str(&k->req->tools[0].description, "does f well"))
MUT(tool_description_null, set_str(&k->req->tools[0].description, NULL))
MUT(tool_parameters, set_str(&k->req->tools[1].parameters, "{\"type\":\"object\"}"))
MUT(tool_strict, k->req->tools[1].strict = true)
MUT(tool_dropped, {
    llm_tool_cleanup(&k->req->tools[1]);
    k->req->n_tools = 1;
})
MUT(tool_order, {
    llm_tool t = k->req->tools[0];
    k->req->tools[0] = k->req->tools[1];
    k->req->tools[1] = t;
})
MUT(schema_name, set_str(&k->req->schema_name, "out2"))
MUT(output_schema, set_str(&k->req->output_schema, "{\"type\":\"object\",\"required\":[]}"))
MUT(output_schema_null, set_str(&k->req->output_schema, NULL))
MUT(output_schema_raw, set_str(&k->req->output_schema, "{not json"))
MUT(temperature, k->s.temperature = 0.7)
MUT(temperature_ulp, k->s.temperature = 1.0000000000000002)
MUT(top_p, k->s.top_p = 0.9)
MUT(max_new_tokens, k->s.max_new_tokens = 513)
MUT(stop_value, set_str(&k->s.stop[1], "STOP!"))
MUT(stop_count, {
    free(k->s.stop[1]);
    k->s.stop[1] = NULL;
    k->s.n_stop = 1;
})
MUT(stop_order, {
    char *t = k->s.stop[0];
    k->s.stop[0] = k->s.stop[1];
    k->s.stop[1] = t;
})
MUT(effort, k->s.effort = LLM_EFFORT_HIGH)
MUT(effort_unset, k->s.effort = LLM_EFFORT_UNSET)
MUT(thinking_budget, k->s.thinking_budget = 1024)
MUT(json_mode, k->s.json_mode = true)

static const mutation mutations[] = {
#define M(nm)                                                                                      \
    { #nm, mut_##nm }
    M(tenant),
    M(tenant_null),
    M(tenant_empty),
    M(provider),
    M(provider_gemini),
    M(model),
    M(role),
    M(role2),
    M(kind),
    M(text),
    M(text_null),
    M(text_empty),
    M(thinking_text),
    M(signature),
    M(signature_null),
    M(call_id),
    M(call_name),
    M(call_args),
    M(call_args_type),
    M(result_id),
    M(result_text),
    M(result_error),
    M(image_url),
    M(image_detail),
    M(image_detail_null),
    M(image_bytes),
    M(image_len),
    M(image_media_type),
    M(image_url_to_bytes),
    M(part_dropped),
    M(message_dropped),
    M(message_order),
    M(part_order),
    M(tool_name),
    M(tool_description),
    M(tool_description_null),
    M(tool_parameters),
    M(tool_strict),
    M(tool_dropped),
    M(tool_order),
    M(schema_name),
    M(output_schema),
    M(output_schema_null),
    M(output_schema_raw),
    M(temperature),
    M(temperature_ulp),
    M(top_p),
    M(max_new_tokens),
    M(stop_value),
    M(stop_count),
    M(stop_order),
    M(effort),
    M(effort_unset),
    M(thinking_budget),
    M(json_mode),
#undef M
};
#define N_MUT (sizeof mutations / sizeof mutations[0])

static void test_sensitive_every_field(void) {
    kin base;
    kin_init(&base);
    cache_key keys[N_MUT + 1];
    kin_key(&base, &keys[N_MUT]);
    for (size_t i = 0; i < N_MUT; i++) {
        kin k;
        kin_init(&k);
        mutations[i].apply(&k);
        kin_key(&k, &keys[i]);
        kin_cleanup(&k);
    }
    /* Every mutation changes the key, and no two mutations give the same key. */
    size_t collisions = 0;
    for (size_t i = 0; i <= N_MUT; i++) {
        for (size_t j = i + 1; j <= N_MUT; j++) {
            if (memcmp(&keys[i], &keys[j], sizeof keys[i]) == 0) {
                fprintf(stderr, "\n  same key: %s / %s\n", mutations[i].name,
                        j == N_MUT ? "(base)" : mutations[j].name);
                collisions++;
            }
        }
    }
    CU_ASSERT_EQUAL(collisions, 0);
    CU_ASSERT(N_MUT >= 50);
    kin_cleanup(&base);
}

/* ---- dedup keys ---------------------------------------------------------------------- */

typedef struct dkin {
    llm_request *req;
    const char *models[2];
    double weights[2];
    llm_sampling ms[2];
    const llm_sampling *msp[2];
} dkin;

static void dkin_init(dkin *d) {
    d->req = base_request();
    d->models[0] = "m-a";
    d->models[1] = "m-b";
    d->weights[0] = 0.75;
    d->weights[1] = 0.25;
    memset(d->ms, 0, sizeof d->ms);
    d->ms[0].set = LLM_SET_TEMPERATURE;
    d->ms[0].temperature = 0.2;
    d->msp[0] = &d->ms[0];
    d->msp[1] = &d->ms[1];
}

static void dkin_key(const dkin *d, const char *tenant, cache_key *out) {
    cachekey_for_dedup(tenant, d->req, d->models, d->weights, d->msp, 2, out);
}

static bool dedup_differs(void (*mut)(dkin *)) {
    dkin a, b;
    dkin_init(&a);
    dkin_init(&b);
    mut(&b);
    cache_key ka, kb;
    dkin_key(&a, "t", &ka);
    dkin_key(&b, "t", &kb);
    llm_request_free(a.req);
    llm_request_free(b.req);
    return memcmp(&ka, &kb, sizeof ka) != 0;
}

static void dm_prefer(dkin *d) {
    set_str(&d->req->prefer_model, "m-b");
}
static void dm_model_name(dkin *d) {
    d->models[1] = "m-c";
}
static void dm_model_order(dkin *d) {
    d->models[0] = "m-b";
    d->models[1] = "m-a";
}
static void dm_weight(dkin *d) {
    d->weights[1] = 0.5;
}
static void dm_model_sampling(dkin *d) {
    d->ms[1].set = LLM_SET_MAX_NEW_TOKENS;
    d->ms[1].max_new_tokens = 100;
}
static void dm_override_effective(dkin *d) {
    d->req->sampling.set = LLM_SET_TOP_P;
    d->req->sampling.top_p = 0.5;
}
static void dm_message(dkin *d) {
    set_str(&d->req->messages[0].parts[0].text, "bye");
}

static void test_dedup_sensitivity(void) {
    CU_ASSERT(dedup_differs(dm_prefer));
    CU_ASSERT(dedup_differs(dm_model_name));
    CU_ASSERT(dedup_differs(dm_model_order));
    CU_ASSERT(dedup_differs(dm_weight));
    CU_ASSERT(dedup_differs(dm_model_sampling));
    CU_ASSERT(dedup_differs(dm_override_effective));
    CU_ASSERT(dedup_differs(dm_message));
    dkin a;
    dkin_init(&a);
    cache_key k1, k2, k3;
    dkin_key(&a, "t", &k1);
    dkin_key(&a, "u", &k2);
    CU_ASSERT(memcmp(&k1, &k2, sizeof k1) != 0); /* tenant */
    /* Fewer models is a different choice. */
    cachekey_for_dedup("t", a.req, a.models, a.weights, a.msp, 1, &k2);
    CU_ASSERT(memcmp(&k1, &k2, sizeof k1) != 0);
    /* An override that sets what every model already has changes nothing effective. */
    a.ms[1].set = LLM_SET_TEMPERATURE;
    a.ms[1].temperature = 0.2;
    dkin_key(&a, "t", &k1);
    a.req->sampling.set = LLM_SET_TEMPERATURE;
    a.req->sampling.temperature = 0.2;
    dkin_key(&a, "t", &k2);
    CU_ASSERT(memcmp(&k1, &k2, sizeof k1) == 0);
    /* Dedup and model keys live in different domains. */
    cachekey_for_model("t", "p", "m-a", a.req, NULL, &k3);
    CU_ASSERT(memcmp(&k1, &k3, sizeof k1) != 0);
    llm_request_free(a.req);
}

/* ---- pinned vector ------------------------------------------------------------------- */

static void test_pinned_vector(void) {
    llm_request *r = llm_request_new();
    llm_request_add_text(r, LLM_ROLE_USER, "hi");
    cache_key k;
    cachekey_for_model("t", "openai", "gpt-4.1-mini", r, NULL, &k);
    char hex[65];
    cachekey_hex(&k, hex);
    CU_ASSERT_EQUAL(strlen(hex), 64);
    /* If this changes, the encoding changed: bump CACHEKEY_SCHEMA_VERSION and re-pin. */
    if (strcmp(hex, PINNED_KEY) != 0) {
        fprintf(stderr, "\n  key of the pinned request is %s\n", hex);
        CU_FAIL("cache-key encoding changed");
    }
    llm_request_free(r);
}

int main(void) {
    static const test_case tests[] = {
        {"same request built twice", test_stable_same_request_twice},
        {"JSON member order does not matter", test_stable_json_member_order},
        {"key is over effective sampling", test_stable_effective_sampling},
        {"every field changes the key", test_sensitive_every_field},
        {"dedup key sensitivity", test_dedup_sensitivity},
        {"pinned vector", test_pinned_vector},
        {NULL, NULL},
    };
    return test_run_suite("cachekey", tests);
}
