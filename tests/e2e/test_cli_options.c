/* client/cli/options.c: how option values land in cli_opts, and what an allocation failure
 * does (options.c is compiled into this test with failmalloc's wrapped allocators). */
#include "client/cli/cli.h"
#include "e2e/failmalloc.h"
#include "unit/test_util.h"

#include <stdlib.h>
#include <string.h>

static void opts_cleanup(cli_opts *o) {
    for (size_t i = 0; i < o->n_models; i++)
        free(o->model_names[i]);
}

static void test_models_and_weights(void) {
    cli_opts o;
    memset(&o, 0, sizeof o);
    CU_ASSERT_EQUAL(cli_add_model(&o, "m-a:2.5"), 0);
    CU_ASSERT_EQUAL(cli_apply_option(&o, 'm', "m-b"), 0);
    CU_ASSERT_EQUAL_FATAL(o.n_models, 2);
    CU_ASSERT_STRING_EQUAL(o.models[0].name, "m-a");
    CU_ASSERT_EQUAL(o.models[0].weight, 2.5);
    CU_ASSERT_STRING_EQUAL(o.models[1].name, "m-b");
    CU_ASSERT_EQUAL(o.models[1].weight, 1);
    CU_ASSERT_EQUAL(cli_add_model(&o, "m-c:heavy"), -1);
    CU_ASSERT_EQUAL(o.n_models, 2);
    opts_cleanup(&o);
}

/* Regression: add_model used strdup's result unchecked (a NULL name, then a crash in
 * strrchr). Out of memory is now -2 (sluice says so and exits 4), nothing added. */
static void test_model_out_of_memory(void) {
    cli_opts o;
    memset(&o, 0, sizeof o);
    failmalloc_arm(1);
    int rc = cli_add_model(&o, "m-a:3");
    failmalloc_disarm();
    CU_ASSERT_TRUE(failmalloc_failed());
    CU_ASSERT_EQUAL(rc, -2);
    CU_ASSERT_EQUAL(o.n_models, 0);
    failmalloc_arm(1);
    rc = cli_apply_option(&o, 'm', "m-a");
    failmalloc_disarm();
    CU_ASSERT_EQUAL(rc, -2);
    CU_ASSERT_EQUAL(o.n_models, 0);
    opts_cleanup(&o);
}

int main(void) {
    static const test_case cases[] = {
        {"models and weights", test_models_and_weights},
        {"model out of memory", test_model_out_of_memory},
        {NULL, NULL},
    };
    return test_run_suite("cli_options", cases);
}
