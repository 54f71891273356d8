/* Token bucket math and waits, on a fake clock (microseconds). */
#include "server/dispatch/ratelimit.h"
#include "unit/test_util.h"

#include <math.h>

#define SEC 1000000ull

static void test_starts_empty(void) {
    rl_bucket b;
    rl_bucket_init(&b, 600, 1000, 0); /* 10/s, capacity 10 */
    CU_ASSERT_FALSE(rl_bucket_can_take(&b, 1, 0));
    CU_ASSERT_EQUAL(rl_bucket_wait_us(&b, 1, 0), SEC / 10);
    CU_ASSERT_TRUE(rl_bucket_can_take(&b, 1, SEC / 10));
}

static void test_refill_caps_at_burst(void) {
    rl_bucket b;
    rl_bucket_init(&b, 600, 1000, 0);
    /* After an hour idle, only one second's worth (10) is available. */
    CU_ASSERT_DOUBLE_EQUAL(rl_bucket_level(&b, 3600 * SEC), 10.0, 1e-9);
    for (int i = 0; i < 10; i++) {
        CU_ASSERT_TRUE(rl_bucket_can_take(&b, 1, 3600 * SEC));
        rl_bucket_take(&b, 1, 3600 * SEC);
    }
    CU_ASSERT_FALSE(rl_bucket_can_take(&b, 1, 3600 * SEC));
}

static void test_steady_rate_is_exact(void) {
    /* Take greedily on a fake clock stepping 1 ms for 60 s: exactly the limit passes. */
    rl_bucket b;
    rl_bucket_init(&b, 1200, 1000, 0);
    unsigned taken = 0;
    for (uint64_t t = 0; t <= 60 * SEC; t += 1000) {
        while (rl_bucket_can_take(&b, 1, t)) {
            rl_bucket_take(&b, 1, t);
            taken++;
        }
    }
    CU_ASSERT_EQUAL(taken, 1200);
}

static void test_big_request_goes_into_debt(void) {
    rl_bucket b;
    rl_bucket_init(&b, 6000, 1000, 0); /* 100 tokens/s, capacity 100 */
    /* A 500-token request waits for a full bucket, then leaves a debt of 400. */
    CU_ASSERT_EQUAL(rl_bucket_wait_us(&b, 500, 0), SEC);
    CU_ASSERT_TRUE(rl_bucket_can_take(&b, 500, SEC));
    rl_bucket_take(&b, 500, SEC);
    CU_ASSERT_DOUBLE_EQUAL(rl_bucket_level(&b, SEC), -400.0, 1e-6);
    /* The next 1-token request waits for the debt to be repaid. */
    CU_ASSERT_EQUAL(rl_bucket_wait_us(&b, 1, SEC), 4 * SEC + SEC / 100);
}

static void test_adjust_and_clamp(void) {
    rl_bucket b;
    rl_bucket_init(&b, 6000, 1000, 0);
    rl_bucket_take(&b, 50, 0);
    rl_bucket_adjust(&b, 30, 0); /* refund an over-estimate */
    CU_ASSERT_DOUBLE_EQUAL(rl_bucket_level(&b, 0), -20.0, 1e-9);
    rl_bucket_adjust(&b, 1000, 0); /* never above capacity */
    CU_ASSERT_DOUBLE_EQUAL(rl_bucket_level(&b, 0), 100.0, 1e-9);
    rl_bucket_clamp(&b, 7, 0);
    CU_ASSERT_DOUBLE_EQUAL(rl_bucket_level(&b, 0), 7.0, 1e-9);
    rl_bucket_clamp(&b, 50, 0); /* clamp never raises */
    CU_ASSERT_DOUBLE_EQUAL(rl_bucket_level(&b, 0), 7.0, 1e-9);
}

static void test_unlimited(void) {
    rl_bucket b;
    rl_bucket_init(&b, 0, 1000, 0);
    CU_ASSERT_TRUE(rl_bucket_can_take(&b, 1e12, 0));
    CU_ASSERT_EQUAL(rl_bucket_wait_us(&b, 1e12, 0), 0);
}

static void test_tiny_rate_has_capacity_one(void) {
    rl_bucket b;
    rl_bucket_init(&b, 6, 1000, 0); /* one request per 10 s */
    CU_ASSERT_EQUAL(rl_bucket_wait_us(&b, 1, 0), 10 * SEC);
    CU_ASSERT_DOUBLE_EQUAL(rl_bucket_level(&b, 100 * SEC), 1.0, 1e-9);
}

static void test_concurrency(void) {
    rl_concurrency c = {0, 2};
    CU_ASSERT_FALSE(rl_concurrency_full(&c));
    c.in_flight = 2;
    CU_ASSERT_TRUE(rl_concurrency_full(&c));
    rl_concurrency none = {100, 0};
    CU_ASSERT_FALSE(rl_concurrency_full(&none));
}

int main(void) {
    static const test_case cases[] = {
        {"starts_empty", test_starts_empty},
        {"refill_caps_at_burst", test_refill_caps_at_burst},
        {"steady_rate_is_exact", test_steady_rate_is_exact},
        {"big_request_goes_into_debt", test_big_request_goes_into_debt},
        {"adjust_and_clamp", test_adjust_and_clamp},
        {"unlimited", test_unlimited},
        {"tiny_rate_has_capacity_one", test_tiny_rate_has_capacity_one},
        {"concurrency", test_concurrency},
        {NULL, NULL},
    };
    return test_run_suite("ratelimit", cases);
}
