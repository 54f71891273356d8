/* The retry policy table, context-length detection, backoff and the RNG. */
#include "server/dispatch/retry.h"
#include "unit/test_util.h"

static retry_action act(provider_kind p, int status) {
    return retry_classify(p, RETRY_FAILURE_NONE, status, "some error").action;
}

static void test_table_rows_both_providers(void) {
    provider_kind ps[] = {PROVIDER_OPENAI, PROVIDER_ANTHROPIC};
    for (int i = 0; i < 2; i++) {
        provider_kind p = ps[i];
        CU_ASSERT_EQUAL(act(p, 200), RETRY_NONE);
        CU_ASSERT_EQUAL(act(p, 429), RETRY_RATE_LIMITED);
        CU_ASSERT_EQUAL(act(p, 401), RETRY_BLOCKLIST);
        CU_ASSERT_EQUAL(act(p, 403), RETRY_BLOCKLIST);
        CU_ASSERT_EQUAL(act(p, 404), RETRY_BLOCKLIST);
        CU_ASSERT_EQUAL(act(p, 400), RETRY_OTHER_OR_FAIL);
        CU_ASSERT_EQUAL(act(p, 422), RETRY_OTHER_OR_FAIL);
        CU_ASSERT_EQUAL(act(p, 413), RETRY_FAIL);
        CU_ASSERT_EQUAL(act(p, 418), RETRY_FAIL);
        CU_ASSERT_EQUAL(act(p, 408), RETRY_SAME);
        CU_ASSERT_EQUAL(act(p, 500), RETRY_SAME);
        CU_ASSERT_EQUAL(act(p, 502), RETRY_SAME);
        CU_ASSERT_EQUAL(act(p, 504), RETRY_SAME);
        CU_ASSERT_EQUAL(act(p, 503), RETRY_OTHER);
    }
    /* Anthropic's overloaded status cools the key down; for OpenAI it is a plain 5xx. */
    CU_ASSERT_EQUAL(act(PROVIDER_ANTHROPIC, 529), RETRY_RATE_LIMITED);
    CU_ASSERT_EQUAL(act(PROVIDER_OPENAI, 529), RETRY_SAME);
}

static void test_rate_limited_flag(void) {
    retry_verdict v = retry_classify(PROVIDER_ANTHROPIC, RETRY_FAILURE_NONE, 529, NULL);
    CU_ASSERT_TRUE(v.rate_limited);
    v = retry_classify(PROVIDER_OPENAI, RETRY_FAILURE_NONE, 500, NULL);
    CU_ASSERT_FALSE(v.rate_limited);
}

static void test_context_errors_fail_now_case_insensitive(void) {
    const char *msgs[] = {
        "This model's maximum context length is 128000 tokens. However, you requested 130000",
        "prompt is too long: 210000 tokens > 200000 maximum",
        "PROMPT IS TOO LONG",
        "{\"code\":\"context_length_exceeded\"}",
        "Context Length exceeded",
    };
    for (size_t i = 0; i < sizeof msgs / sizeof *msgs; i++) {
        retry_verdict v = retry_classify(PROVIDER_ANTHROPIC, RETRY_FAILURE_NONE, 400, msgs[i]);
        CU_ASSERT_EQUAL(v.action, RETRY_FAIL);
        CU_ASSERT_TRUE(v.context_exceeded);
        v = retry_classify(PROVIDER_OPENAI, RETRY_FAILURE_NONE, 400, msgs[i]);
        CU_ASSERT_EQUAL(v.action, RETRY_FAIL);
    }
    CU_ASSERT_FALSE(retry_is_context_error("invalid api key"));
    CU_ASSERT_FALSE(retry_is_context_error(NULL));
    /* A context phrase inside a 5xx body is not a context error. */
    CU_ASSERT_EQUAL(act(PROVIDER_OPENAI, 500), RETRY_SAME);
    CU_ASSERT_EQUAL(
        retry_classify(PROVIDER_OPENAI, RETRY_FAILURE_NONE, 500, "context length").action,
        RETRY_SAME);
}

static void test_transport_failures_are_retryable(void) {
    retry_failure fs[] = {RETRY_FAILURE_TIMEOUT,   RETRY_FAILURE_CONNECT,   RETRY_FAILURE_RESET,
                          RETRY_FAILURE_TRUNCATED, RETRY_FAILURE_MALFORMED, RETRY_FAILURE_OTHER};
    for (size_t i = 0; i < sizeof fs / sizeof *fs; i++) {
        retry_verdict v = retry_classify(PROVIDER_OPENAI, fs[i], 0, NULL);
        CU_ASSERT_EQUAL(v.action, RETRY_SAME);
        CU_ASSERT_PTR_NOT_NULL(v.why);
    }
    /* A malformed 2xx is never a success, whatever the status. */
    CU_ASSERT_EQUAL(retry_classify(PROVIDER_OPENAI, RETRY_FAILURE_MALFORMED, 200, NULL).action,
                    RETRY_SAME);
    CU_ASSERT_EQUAL(retry_classify(PROVIDER_OPENAI, RETRY_FAILURE_TOO_LARGE, 200, NULL).action,
                    RETRY_FAIL);
}

static void test_backoff_bounds_and_growth(void) {
    uint64_t rng = 12345;
    for (uint32_t r = 1; r <= 12; r++) {
        uint32_t full = 500u << (r - 1);
        if (full > 30000 || r > 7)
            full = 30000;
        for (int i = 0; i < 200; i++) {
            uint32_t b = retry_backoff_ms(r, 500, 30000, &rng);
            CU_ASSERT_TRUE(b >= full / 2 && b < full + 1);
        }
    }
}

static void test_rng_uniformish(void) {
    uint64_t rng = 42;
    unsigned buckets[10] = {0};
    for (int i = 0; i < 100000; i++) {
        double u = retry_rng_unit(&rng);
        CU_ASSERT_TRUE(u >= 0 && u < 1);
        buckets[(int)(u * 10)]++;
    }
    for (int i = 0; i < 10; i++)
        CU_ASSERT_TRUE(buckets[i] > 9000 && buckets[i] < 11000);
}

int main(void) {
    static const test_case cases[] = {
        {"table_rows_both_providers", test_table_rows_both_providers},
        {"rate_limited_flag", test_rate_limited_flag},
        {"context_errors_fail_now_case_insensitive", test_context_errors_fail_now_case_insensitive},
        {"transport_failures_are_retryable", test_transport_failures_are_retryable},
        {"backoff_bounds_and_growth", test_backoff_bounds_and_growth},
        {"rng_uniformish", test_rng_uniformish},
        {NULL, NULL},
    };
    return test_run_suite("retry", cases);
}
