/*
 * test_util.h - small helpers shared by the CUnit test programs.
 */
#ifndef SLUICE_TEST_UTIL_H
#define SLUICE_TEST_UTIL_H

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>

/* Asserts that the string `actual` is present and equals `want`. */
#define EXPECT_STR(actual, want)                                                                   \
    do {                                                                                           \
        const char *a_ = (actual);                                                                 \
        CU_ASSERT_PTR_NOT_NULL(a_);                                                                \
        if (a_)                                                                                    \
            CU_ASSERT_STRING_EQUAL(a_, want);                                                      \
    } while (0)

typedef struct test_case {
    const char *name;
    void (*fn)(void);
} test_case;

/* Registers one suite with `init`/`cleanup` (either may be NULL) and the given tests
 * ({name, fn} pairs ending with {NULL, NULL}), runs it verbosely and returns the process
 * exit code: 0 only when every test ran and passed (a failed `init` fails the run). */
static inline int test_run_suite_with(const char *suite, CU_InitializeFunc init,
                                      CU_CleanupFunc cleanup, const test_case *cases) {
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite(suite, init, cleanup);
    if (!s) {
        CU_cleanup_registry();
        return 2;
    }
    for (const test_case *c = cases; c->name; c++)
        CU_add_test(s, c->name, c->fn);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed() +
                      CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}

/* test_run_suite_with() without suite set-up or tear-down. */
static inline int test_run_suite(const char *suite, const test_case *cases) {
    return test_run_suite_with(suite, NULL, NULL, cases);
}

#endif
