/* Weighted model choice: weights, blocklist, exclusion, zero weights. */
#include "server/dispatch/models.h"
#include "unit/test_util.h"

#include <stdbool.h>

static void counts(const double *w, const bool *blocked, size_t n, int exclude, unsigned *out,
                   int draws) {
    uint64_t rng = 7;
    for (size_t i = 0; i < n; i++)
        out[i] = 0;
    for (int i = 0; i < draws; i++) {
        int c = models_choose(w, blocked, n, exclude, &rng);
        CU_ASSERT_TRUE(c >= 0 && (size_t)c < n);
        if (c >= 0)
            out[c]++;
    }
}

static void test_weights_respected(void) {
    double w[3] = {1, 3, 0};
    bool b[3] = {false, false, false};
    unsigned c[3];
    counts(w, b, 3, -1, c, 40000);
    CU_ASSERT_TRUE(c[0] > 9000 && c[0] < 11000);
    CU_ASSERT_TRUE(c[1] > 29000 && c[1] < 31000);
    CU_ASSERT_EQUAL(c[2], 0); /* weight 0 is fallback-only */
}

static void test_all_zero_is_uniform(void) {
    double w[2] = {0, 0};
    bool b[2] = {false, false};
    unsigned c[2];
    counts(w, b, 2, -1, c, 20000);
    CU_ASSERT_TRUE(c[0] > 9000 && c[1] > 9000);
}

static void test_blocklist_and_exclude(void) {
    double w[3] = {1, 1, 1};
    bool b[3] = {true, false, false};
    unsigned c[3];
    counts(w, b, 3, 1, c, 1000);
    CU_ASSERT_EQUAL(c[0], 0);
    CU_ASSERT_EQUAL(c[1], 0);
    CU_ASSERT_EQUAL(c[2], 1000);
}

static void test_zero_weight_fallback_when_others_gone(void) {
    double w[2] = {5, 0};
    bool b[2] = {true, false};
    uint64_t rng = 1;
    CU_ASSERT_EQUAL(models_choose(w, b, 2, -1, &rng), 1);
    bool none[2] = {false, false};
    CU_ASSERT_EQUAL(models_choose(w, none, 2, 0, &rng), 1);
}

static void test_nothing_left(void) {
    double w[2] = {1, 1};
    bool b[2] = {true, true};
    uint64_t rng = 1;
    CU_ASSERT_EQUAL(models_choose(w, b, 2, -1, &rng), -1);
    bool one[1] = {false};
    CU_ASSERT_EQUAL(models_choose(w, one, 1, 0, &rng), -1);
}

int main(void) {
    static const test_case cases[] = {
        {"weights_respected", test_weights_respected},
        {"all_zero_is_uniform", test_all_zero_is_uniform},
        {"blocklist_and_exclude", test_blocklist_and_exclude},
        {"zero_weight_fallback_when_others_gone", test_zero_weight_fallback_when_others_gone},
        {"nothing_left", test_nothing_left},
        {NULL, NULL},
    };
    return test_run_suite("models", cases);
}
