/* server/common: the token estimate, request validation, sampling merge, config loading,
 * the u64 map and the timers thread. */
#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "server/common/config.h"
#include "server/common/llm.h"
#include "server/common/timers.h"
#include "server/common/u64map.h"
#include "server/common/utf8.h"
#include "sluice/status.h"
#include "unit/test_util.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static llm_request *one_text(llm_role role, const char *text) {
    llm_request *r = llm_request_new();
    llm_request_add_text(r, role, text);
    return r;
}

static void test_add_text_appends_a_message(void) {
    llm_request *r = one_text(LLM_ROLE_SYSTEM, "be brief");
    llm_request_add_text(r, LLM_ROLE_USER, "hi");
    CU_ASSERT_EQUAL_FATAL(r->n_messages, 2);
    CU_ASSERT_EQUAL(r->messages[0].role, LLM_ROLE_SYSTEM);
    CU_ASSERT_EQUAL(r->messages[1].role, LLM_ROLE_USER);
    CU_ASSERT_EQUAL_FATAL(r->messages[1].n_parts, 1);
    CU_ASSERT_EQUAL(r->messages[1].parts[0].kind, LLM_PART_TEXT);
    EXPECT_STR(r->messages[1].parts[0].text, "hi");
    llm_request_free(r);
}

static void test_estimate_matches_lm_deluge(void) {
    /* lm-deluge's example: "Hello, this is a test prompt." with max_new_tokens 5000 */
    llm_request *r = one_text(LLM_ROLE_USER, "Hello, this is a test prompt.");
    CU_ASSERT_EQUAL(llm_request_estimate_tokens(r, 5000), 5013);
    llm_request_free(r);
    /* code points, not bytes: 8 x "é" (2 bytes each) = 8 code points -> 2 */
    r = one_text(LLM_ROLE_USER, "éééééééé");
    CU_ASSERT_EQUAL(llm_request_estimate_tokens(r, 0), 6 + 2);
    /* a non-text part counts 85 */
    r->messages[0].parts = xrealloc(r->messages[0].parts, 2 * sizeof(llm_part));
    memset(&r->messages[0].parts[1], 0, sizeof(llm_part));
    r->messages[0].parts[1].kind = LLM_PART_IMAGE;
    r->messages[0].parts[1].url = xstrdup("https://example.com/a.png");
    r->messages[0].n_parts = 2;
    CU_ASSERT_EQUAL(llm_request_estimate_tokens(r, 0), 6 + 2 + 85);
    llm_request_free(r);
}

static void test_validation_names_the_element(void) {
    char err[256];
    llm_request *r = llm_request_new();
    CU_ASSERT_EQUAL(llm_request_validate(r, err, sizeof err), SLUICE_EINVAL);
    CU_ASSERT_STRING_EQUAL(err, "prompt has no messages");
    llm_request_free(r);
    r = one_text(LLM_ROLE_SYSTEM, "only system");
    CU_ASSERT_EQUAL(llm_request_validate(r, err, sizeof err), SLUICE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "only system messages"));
    r->messages[0].role = LLM_ROLE_ASSISTANT;
    r->messages[0].parts[0].kind = LLM_PART_IMAGE;
    CU_ASSERT_EQUAL(llm_request_validate(r, err, sizeof err), SLUICE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "messages[0].parts[0]: images are only allowed"));
    r->messages[0].parts[0].kind = LLM_PART_TOOL_CALL;
    r->messages[0].parts[0].id = xstrdup("c1");
    r->messages[0].parts[0].name = xstrdup("f");
    r->messages[0].parts[0].arguments = xstrdup("[1,2]");
    CU_ASSERT_EQUAL(llm_request_validate(r, err, sizeof err), SLUICE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "arguments_json is not a JSON object (not an object)"));
    llm_request_free(r);
    r = one_text(LLM_ROLE_USER, "hi");
    r->output_schema = xstrdup("{\"type\":\"object\",\"type\":\"string\"}");
    CU_ASSERT_EQUAL(llm_request_validate(r, err, sizeof err), SLUICE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "output_schema: schema_json is not a JSON object"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "duplicate")); /* jansson's reason is passed on */
    free(r->output_schema);
    r->output_schema = NULL;
    r->tools = XNEWV(llm_tool, 1);
    r->n_tools = 1;
    r->tools[0].name = xstrdup("bad name!");
    CU_ASSERT_EQUAL(llm_request_validate(r, err, sizeof err), SLUICE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "tools[0]"));
    free(r->tools[0].name);
    r->tools[0].name = xstrdup("good_name");
    r->sampling.set = LLM_SET_TEMPERATURE;
    r->sampling.temperature = 3;
    CU_ASSERT_EQUAL(llm_request_validate(r, err, sizeof err), SLUICE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "temperature"));
    r->sampling.temperature = 0.5;
    CU_ASSERT_EQUAL(llm_request_validate(r, err, sizeof err), 0);
    llm_request_free(r);
}

/* NaN compared false both ways and passed the range checks; no provider body can carry it
 * (found by fuzz_service: corpus/service/start_temperature_nan_passed_validation). */
static void test_validation_refuses_nan_sampling(void) {
    char err[256];
    llm_request *r = one_text(LLM_ROLE_USER, "hi");
    r->sampling.set = LLM_SET_TEMPERATURE;
    r->sampling.temperature = NAN;
    CU_ASSERT_EQUAL(llm_request_validate(r, err, sizeof err), SLUICE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "temperature"));
    r->sampling.set = LLM_SET_TOP_P;
    r->sampling.top_p = NAN;
    CU_ASSERT_EQUAL(llm_request_validate(r, err, sizeof err), SLUICE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "top_p"));
    llm_request_free(r);
}

/* jansson's parse errors quote the text near the error, which can end with the first byte
 * of a character ("invalid escape near '\"\\\xc3'"): scrubbed, the reason stays UTF-8 (found
 * by fuzz_service: corpus/service/start_tool_arguments_error_quotes_half_a_character). */
static void test_validation_reason_is_utf8(void) {
    char err[256];
    llm_request *r = one_text(LLM_ROLE_USER, "hi");
    r->output_schema = xstrdup("{\"a\":\"\\\xc3\xa9\"}");
    CU_ASSERT_EQUAL(llm_request_validate(r, err, sizeof err), SLUICE_EINVAL);
    CU_ASSERT_TRUE(utf8_valid(err, strlen(err), NULL));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "invalid escape"));
    llm_request_free(r);
}

static void test_utf8(void) {
    CU_ASSERT_TRUE(utf8_valid("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10, NULL));
    CU_ASSERT_FALSE(utf8_valid("\xc3", 1, NULL));             /* cut */
    CU_ASSERT_FALSE(utf8_valid("\xc0\xaf", 2, NULL));         /* overlong */
    CU_ASSERT_FALSE(utf8_valid("\xed\xa0\x80", 3, NULL));     /* surrogate */
    CU_ASSERT_FALSE(utf8_valid("\xf4\x90\x80\x80", 4, NULL)); /* past U+10FFFF */
    char s[] = "ok \xc3\xa9 \xc3 \xff.";
    CU_ASSERT_EQUAL(utf8_scrub(s), 2);
    CU_ASSERT_STRING_EQUAL(s, "ok \xc3\xa9 ? ?.");
}

static void test_sampling_merge(void) {
    llm_sampling base, over, out;
    memset(&base, 0, sizeof base);
    memset(&over, 0, sizeof over);
    base.set = LLM_SET_TEMPERATURE | LLM_SET_MAX_NEW_TOKENS;
    base.temperature = 0.2;
    base.max_new_tokens = 100;
    over.set = LLM_SET_MAX_NEW_TOKENS | LLM_SET_STOP;
    over.max_new_tokens = 7;
    over.n_stop = 1;
    over.stop[0] = "END";
    llm_sampling_merge(&out, &base, &over);
    CU_ASSERT_DOUBLE_EQUAL(out.temperature, 0.2, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(out.top_p, LLM_DEFAULT_TOP_P, 1e-12);
    CU_ASSERT_EQUAL(out.max_new_tokens, 7);
    CU_ASSERT_EQUAL(out.n_stop, 1);
    CU_ASSERT_STRING_EQUAL(out.stop[0], "END");
    llm_sampling_cleanup(&out);
    llm_sampling_merge(&out, NULL, NULL);
    CU_ASSERT_EQUAL(out.max_new_tokens, LLM_DEFAULT_MAX_NEW_TOKENS);
    CU_ASSERT_DOUBLE_EQUAL(out.temperature, LLM_DEFAULT_TEMPERATURE, 1e-12);
    llm_sampling_cleanup(&out);
}

/* An error message cut at its 1023-byte bound used to end inside a character: invalid
 * UTF-8 in Response.error_message, which strict clients cannot decode. */
static void test_error_message_cut_between_characters(void) {
    char quote[1200];
    size_t n = 0;
    quote[n++] = 'x'; /* shifts the 2-byte characters so the cut falls inside one */
    while (n + 2 < sizeof quote) {
        quote[n++] = (char)0xc3;
        quote[n++] = (char)0xa9;
    }
    quote[n] = '\0';
    llm_response *r = llm_response_new();
    llm_response_set_error(r, LLM_ERR_PROVIDER, 500, "upstream said: %s", quote);
    size_t len = strlen(r->error_message);
    CU_ASSERT_TRUE(len > 1000 && len <= 1023);
    CU_ASSERT_TRUE(utf8_valid(r->error_message, len, NULL));
    llm_response_set_error(r, LLM_ERR_PROVIDER, 500, "raw: %s", "bad \xff byte");
    CU_ASSERT_STRING_EQUAL(r->error_message, "raw: bad \xef\xbf\xbd byte");
    llm_response_free(r);
}

static void test_config(void) {
    sluiced_config c;
    char err[256];
    config_defaults(&c);
    CU_ASSERT_EQUAL(config_load_text(&c,
                                     "{\"listen\":\"127.0.0.1:7\",\"store\":{\"cache_ttl_s\":60},"
                                     "\"log\":{\"level\":\"debug\",\"format\":\"text\"}}",
                                     err, sizeof err),
                    0);
    CU_ASSERT_STRING_EQUAL(c.listen, "127.0.0.1:7");
    CU_ASSERT_EQUAL(c.cache_ttl_s, 60);
    CU_ASSERT_EQUAL(c.log_level, LOG_LEVEL_DEBUG);
    CU_ASSERT_EQUAL(c.log_format, LOG_FORMAT_TEXT);
    struct {
        const char *text, *want;
    } bad[] = {
        {"{\"colour\":1}", "colour: unknown key"},
        {"{\"store\":{\"colour\":1}}", "store.colour: unknown key"},
        {"{\"store\":5}", "store: must be an object"},
        {"{\"store\":{\"cache_ttl_s\":-1}}", "store.cache_ttl_s: must be an integer"},
        {"{\"workers\":1.5}", "workers: must be an integer"},
        /* seconds that would overflow as milliseconds, and a value beyond long long */
        {"{\"store\":{\"result_retention_s\":1e17}}", "store.result_retention_s: must be"},
        {"{\"limits\":{\"max_batch_prompts\":1e30}}", "limits.max_batch_prompts: must be"},
        {"{\"dispatch\":{\"dedup\":\"yes\"}}", "dispatch.dedup: must be true or false"},
        {"{\"log\":{\"level\":\"loud\"}}", "log.level: 'loud' is not one of"},
        {"{\"listen\":\"a\",\"listen\":\"b\"}", "duplicate"},
        /* RocksDB's sizes: 0 (derived from the budget) or at least 1 MiB */
        {"{\"store\":{\"block_cache_bytes\":4096}}",
         "store.block_cache_bytes: must be 0 (derived) or an integer between 1.04858e+06"},
        {"{\"store\":{\"memory_budget_bytes\":0}}", "store.memory_budget_bytes: must be an"},
        {"[1]", "must be a JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CU_ASSERT_EQUAL(config_load_text(&c, bad[i].text, err, sizeof err), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].want));
    }
    /* within range but beyond long long: accepted, with no out-of-range cast (UBSan) */
    CU_ASSERT_EQUAL(
        config_load_text(&c, "{\"limits\":{\"max_batch_prompts\":1e19}}", err, sizeof err), 0);
    CU_ASSERT_EQUAL(c.max_batch_prompts, 10000000000000000000ull);
    CU_ASSERT_EQUAL(c.memory_budget_bytes, 256ull << 20); /* the default */
    CU_ASSERT_EQUAL(config_load_text(&c,
                                     "{\"store\":{\"memory_budget_bytes\":16777216,"
                                     "\"wal_max_bytes\":0,\"write_buffer_bytes\":2097152}}",
                                     err, sizeof err),
                    0);
    CU_ASSERT_EQUAL(c.memory_budget_bytes, 16u << 20);
    CU_ASSERT_EQUAL(c.wal_max_bytes, 0);
    CU_ASSERT_EQUAL(c.write_buffer_bytes, 2u << 20);
    setenv("SLUICE_DATA_DIR", "/srv/sluice", 1);
    setenv("SLUICE_DRAIN_GRACE_MS", "1234", 1);
    CU_ASSERT_EQUAL(config_apply_env(&c, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(c.data_dir, "/srv/sluice");
    CU_ASSERT_EQUAL(c.drain_grace_ms, 1234);
    setenv("SLUICE_DRAIN_GRACE_MS", "soon", 1);
    CU_ASSERT_EQUAL(config_apply_env(&c, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "SLUICE_DRAIN_GRACE_MS"));
    unsetenv("SLUICE_DATA_DIR");
    unsetenv("SLUICE_DRAIN_GRACE_MS");
    config_cleanup(&c);
}

/* Streams and waits behind proxies: heartbeats and the Wait cap are on by default, well
 * under nginx's 60 s grpc_read_timeout; client pings every 10 s are accepted; each can be
 * set from the file, and the two rpc keys from the environment. */
static void test_config_streams_and_keepalive(void) {
    sluiced_config c;
    char err[256];
    config_defaults(&c);
    CU_ASSERT_EQUAL(c.heartbeat_interval_ms, 15000);
    CU_ASSERT_EQUAL(c.max_wait_ms, 20000);
    CU_ASSERT_EQUAL(c.keepalive_time_ms, 60000);
    CU_ASSERT_EQUAL(c.keepalive_timeout_ms, 20000);
    CU_ASSERT_TRUE(c.min_client_ping_interval_ms > 0 && c.min_client_ping_interval_ms <= 10000);
    CU_ASSERT_TRUE(c.keepalive_permit_without_calls);
    CU_ASSERT_EQUAL(config_load_text(&c,
                                     "{\"rpc\":{\"heartbeat_interval_ms\":0,\"max_wait_ms\":"
                                     "3000},\"keepalive\":{\"time_ms\":0,\"timeout_ms\":"
                                     "5000,\"min_client_ping_interval_ms\":1000,"
                                     "\"permit_without_calls\":false}}",
                                     err, sizeof err),
                    0);
    CU_ASSERT_EQUAL(c.heartbeat_interval_ms, 0);
    CU_ASSERT_EQUAL(c.max_wait_ms, 3000);
    CU_ASSERT_EQUAL(c.keepalive_time_ms, 0);
    CU_ASSERT_EQUAL(c.keepalive_timeout_ms, 5000);
    CU_ASSERT_EQUAL(c.min_client_ping_interval_ms, 1000);
    CU_ASSERT_FALSE(c.keepalive_permit_without_calls);
    CU_ASSERT_EQUAL(config_load_text(&c, "{\"keepalive\":{\"timeout_ms\":10}}", err, sizeof err),
                    -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "keepalive.timeout_ms: must be"));
    setenv("SLUICE_HEARTBEAT_INTERVAL_MS", "2000", 1);
    setenv("SLUICE_MAX_WAIT_MS", "4000", 1);
    CU_ASSERT_EQUAL(config_apply_env(&c, err, sizeof err), 0);
    CU_ASSERT_EQUAL(c.heartbeat_interval_ms, 2000);
    CU_ASSERT_EQUAL(c.max_wait_ms, 4000);
    unsetenv("SLUICE_HEARTBEAT_INTERVAL_MS");
    unsetenv("SLUICE_MAX_WAIT_MS");
    config_cleanup(&c);
}

static void test_u64map(void) {
    u64map m;
    u64map_init(&m);
    for (uint64_t i = 1; i <= 5000; i++)
        u64map_put(&m, i * 7919, (void *)(uintptr_t)i);
    CU_ASSERT_EQUAL(m.len, 5000);
    for (uint64_t i = 1; i <= 5000; i += 2)
        CU_ASSERT_EQUAL((uintptr_t)u64map_del(&m, i * 7919), i);
    CU_ASSERT_EQUAL(m.len, 2500);
    for (uint64_t i = 1; i <= 5000; i++) {
        void *v = u64map_get(&m, i * 7919);
        if (i % 2) {
            CU_ASSERT_PTR_NULL(v);
        } else {
            CU_ASSERT_EQUAL((uintptr_t)v, i);
        }
    }
    CU_ASSERT_PTR_NULL(u64map_del(&m, 42));
    u64map_cleanup(&m);
}

static atomic_int fired;

static void bump(void *arg) {
    atomic_fetch_add(&fired, (int)(intptr_t)arg);
}

static void test_timers(void) {
    timers *t = timers_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    atomic_store(&fired, 0);
    timers_add(t, 10, bump, (void *)1);
    uint64_t late = timers_add(t, 60000, bump, (void *)100);
    timers_add(t, 20, bump, (void *)10);
    for (int i = 0; i < 500 && atomic_load(&fired) != 11; i++)
        usleep(2000);
    CU_ASSERT_EQUAL(atomic_load(&fired), 11);
    CU_ASSERT_TRUE(timers_cancel(t, late));
    CU_ASSERT_FALSE(timers_cancel(t, late));
    timers_free(t);
    CU_ASSERT_EQUAL(atomic_load(&fired), 11);
}

int main(void) {
    static const test_case cases[] = {
        {"add_text_appends_a_message", test_add_text_appends_a_message},
        {"estimate_matches_lm_deluge", test_estimate_matches_lm_deluge},
        {"validation_names_the_element", test_validation_names_the_element},
        {"validation_refuses_nan_sampling", test_validation_refuses_nan_sampling},
        {"validation_reason_is_utf8", test_validation_reason_is_utf8},
        {"utf8", test_utf8},
        {"sampling_merge", test_sampling_merge},
        {"error_message_cut_between_characters", test_error_message_cut_between_characters},
        {"config", test_config},
        {"config_streams_and_keepalive", test_config_streams_and_keepalive},
        {"u64map", test_u64map},
        {"timers", test_timers},
        {NULL, NULL},
    };
    return test_run_suite("common", cases);
}
