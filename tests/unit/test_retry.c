/* The retry policy table, context-length detection, backoff and the RNG. */
#include "server/dispatch/retry.h"
#include "unit/test_util.h"

#include <stdio.h>

static retry_action act(provider_kind p, int status) {
    return retry_classify(p, RETRY_FAILURE_NONE, status, "some error").action;
}

static void test_table_rows_every_provider(void) {
    provider_kind ps[] = {PROVIDER_OPENAI, PROVIDER_ANTHROPIC, PROVIDER_GEMINI};
    for (int i = 0; i < 3; i++) {
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
    CU_ASSERT_EQUAL(act(PROVIDER_GEMINI, 529), RETRY_SAME);
}

/* Gemini's rows, with the error texts its adapter writes ("<STATUS> (<reason>): ..."). */
static void test_gemini_rows(void) {
    static const struct {
        int status;
        const char *text;
        retry_action want;
    } rows[] = {
        {429, "RESOURCE_EXHAUSTED: You exceeded your current quota", RETRY_RATE_LIMITED},
        {503, "UNAVAILABLE: The model is overloaded. Please try again later.", RETRY_OTHER},
        {500, "INTERNAL: An internal error has occurred.", RETRY_SAME},
        {504, "DEADLINE_EXCEEDED: Deadline expired before operation could complete.", RETRY_SAME},
        {400, "INVALID_ARGUMENT: Invalid JSON payload received.", RETRY_OTHER_OR_FAIL},
        {400, "INVALID_ARGUMENT (API_KEY_INVALID): API key not valid.", RETRY_BLOCKLIST},
        {400, "FAILED_PRECONDITION: User location is not supported for the API use.",
         RETRY_BLOCKLIST},
        {401, "UNAUTHENTICATED: Request had invalid authentication credentials.", RETRY_BLOCKLIST},
        {403, "PERMISSION_DENIED: Method doesn't allow unregistered callers.", RETRY_BLOCKLIST},
        {404, "NOT_FOUND: models/x is not found for API version v1beta.", RETRY_BLOCKLIST},
        {400,
         "INVALID_ARGUMENT: The input token count (1200000) exceeds the maximum number of "
         "tokens allowed (1048576).",
         RETRY_FAIL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        retry_verdict v =
            retry_classify(PROVIDER_GEMINI, RETRY_FAILURE_NONE, rows[i].status, rows[i].text);
        CU_ASSERT_EQUAL(v.action, rows[i].want);
        if (v.action != rows[i].want)
            fprintf(stderr, "\n  %d %s: got %d\n", rows[i].status, rows[i].text, (int)v.action);
    }
    CU_ASSERT_TRUE(retry_classify(PROVIDER_GEMINI, RETRY_FAILURE_NONE, 400,
                                  "INVALID_ARGUMENT: The input token count (2) exceeds the "
                                  "maximum number of tokens allowed (1).")
                       .context_exceeded);
    /* The status words are Gemini's alone: another provider's 400 saying them still moves. */
    CU_ASSERT_EQUAL(
        retry_classify(PROVIDER_OPENAI, RETRY_FAILURE_NONE, 400, "FAILED_PRECONDITION").action,
        RETRY_OTHER_OR_FAIL);
    CU_ASSERT_EQUAL(retry_classify(PROVIDER_GEMINI, RETRY_FAILURE_NONE, 400, NULL).action,
                    RETRY_OTHER_OR_FAIL);
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
        {"table_rows_every_provider", test_table_rows_every_provider},
        {"gemini_rows", test_gemini_rows},
        {"rate_limited_flag", test_rate_limited_flag},
        {"context_errors_fail_now_case_insensitive", test_context_errors_fail_now_case_insensitive},
        {"transport_failures_are_retryable", test_transport_failures_are_retryable},
        {"backoff_bounds_and_growth", test_backoff_bounds_and_growth},
        {"rng_uniformish", test_rng_uniformish},
        {NULL, NULL},
    };
    return test_run_suite("retry", cases);
}
