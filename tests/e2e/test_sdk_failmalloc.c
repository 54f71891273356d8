/*
 * The SDK when memory runs out: for each public call, the n-th allocation the call makes
 * fails, for n = 1, 2, ... until the call runs through without meeting the failure. Every
 * such run must return SLUICE_ENOMEM (or NULL, for the functions returning a pointer) with
 * a message - never a crash, a hang, another error or a leak (the ASan build's
 * LeakSanitizer checks at exit). The SDK's sources are compiled into this test with
 * wrapped allocators (failmalloc.h); the calls go to a real sluiced (sluiced_harness.h),
 * whose in-process fake provider runs on threads of its own, untouched by the failures.
 */
#include "e2e/failmalloc.h"
#include "e2e/sluiced_harness.h"
#include "sluice/sluice.h"
#include "unit/test_util.h"

#include <stdlib.h>
#include <string.h>

#define MAX_RUNS 2000 /* a call making more allocations than this fails the test */

static sluiced_proc P;

static int suite_init(void) {
    return sluiced_start(&P, NULL);
}

static int suite_clean(void) {
    int rc = sluiced_stop(&P);
    sluiced_cleanup(&P);
    return rc;
}

/* What one call needs and leaves: op runs the call (armed), done checks and frees what a
 * successful call returned (disarmed). */
typedef struct fx {
    sluice_client *c;
    sluice_prompt *prompts[3];
    char **ids;
    size_t n_ids;
    void *out;
    size_t n_out;
    bool checked; /* the op checked the failure's message itself (later calls clear it) */
} fx;

typedef int (*op_fn)(fx *f);
typedef void (*done_fn)(fx *f, int rc);

/* Runs op with its n-th allocation failing, n = 1, 2, ...; returns the allocations made by
 * the run that met no failure (0 when every run failed). */
static long each_failure(const char *what, fx *f, op_fn op, done_fn done) {
    for (long n = 1; n <= MAX_RUNS; n++) {
        f->checked = false;
        failmalloc_arm(n);
        int rc = op(f);
        long made = failmalloc_disarm();
        bool failed = failmalloc_failed();
        if (failed && (rc != SLUICE_ENOMEM || (!f->checked && !sluice_last_error()[0])))
            fprintf(stderr, "\n  %s: allocation %ld failed, the call returned %d (\"%s\")\n", what,
                    n, rc, sluice_last_error());
        if (failed) {
            CU_ASSERT_EQUAL(rc, SLUICE_ENOMEM);
            CU_ASSERT_TRUE(f->checked || strlen(sluice_last_error()) > 0);
        } else {
            CU_ASSERT_EQUAL(rc, 0);
        }
        if (done)
            done(f, rc);
        if (!failed)
            return made;
    }
    CU_FAIL("more allocations than MAX_RUNS");
    return 0;
}

static sluice_client *make_client(void) {
    sluice_model m[2] = {{.name = "m-a", .weight = 1}, {.name = "m-b", .weight = 1}};
    sluice_client_options o;
    memset(&o, 0, sizeof o);
    o.models = m;
    o.n_models = 2;
    o.name = "fail-malloc";
    o.sampling.has_temperature = true;
    o.sampling.temperature = 0.5;
    o.max_attempts = 1; /* a prompt that fails does at once, without backing off */
    sluice_client *c = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_client_new(P.target, &o, &c), 0);
    return c;
}

/* ---- prompts --------------------------------------------------------------------------- */

/* Every builder in turn; the first that fails ends the build (its return value). */
static int build_prompt(fx *f) {
    static const unsigned char png[] = {0x89, 'P', 'N', 'G'};
    sluice_sampling s = {.has_temperature = true, .temperature = 0.2, .max_new_tokens = 9};
    sluice_prompt *p = sluice_prompt_new();
    f->out = p;
    if (!p)
        return SLUICE_ENOMEM;
    int rc;
    if ((rc = sluice_prompt_system(p, "be brief")) || (rc = sluice_prompt_user(p, "hello")) ||
        (rc = sluice_prompt_message(p, SLUICE_ROLE_USER)) ||
        (rc = sluice_prompt_add_text(p, "look")) ||
        (rc = sluice_prompt_add_image_url(p, "https://example.com/a.png", "low")) ||
        (rc = sluice_prompt_add_image_data(p, png, sizeof png, "image/png")) ||
        (rc = sluice_prompt_assistant(p, "calling")) ||
        (rc = sluice_prompt_message(p, SLUICE_ROLE_ASSISTANT)) ||
        (rc = sluice_prompt_add_tool_call(p, "call-1", "get_weather", "{\"where\":\"Paris\"}")) ||
        (rc = sluice_prompt_message(p, SLUICE_ROLE_TOOL)) ||
        (rc = sluice_prompt_add_tool_result(p, "call-1", "sunny", false)) ||
        (rc = sluice_prompt_add_tool(p, "get_weather", "the weather", NULL)) ||
        (rc = sluice_prompt_set_output_schema(p, "answer", "{\"type\":\"object\"}")) ||
        (rc = sluice_prompt_set_prefer_model(p, "m-a")) ||
        (rc = sluice_prompt_set_custom_id(p, "c-1")) || (rc = sluice_prompt_set_sampling(p, &s)))
        return rc;
    return 0;
}

static int op_prompt_text(fx *f) {
    f->out = sluice_prompt_text("just text");
    return f->out ? 0 : SLUICE_ENOMEM;
}

static void free_prompt(fx *f, int rc) {
    sluice_prompt_free(f->out);
    f->out = NULL;
}

static void test_prompt_builders(void) {
    fx f = {0};
    CU_ASSERT_TRUE(each_failure("prompt builders", &f, build_prompt, free_prompt) > 10);
    CU_ASSERT_TRUE(each_failure("sluice_prompt_text", &f, op_prompt_text, free_prompt) > 0);
}

/* ---- the client ------------------------------------------------------------------------- */

static int op_client_new(fx *f) {
    sluice_model m = {.name = "m-a", .weight = 1};
    sluice_client_options o;
    memset(&o, 0, sizeof o);
    o.models = &m;
    o.n_models = 1;
    o.name = "named";
    o.auth_token = "token";
    return sluice_client_new(P.target, &o, (sluice_client **)&f->out);
}

static void free_client(fx *f, int rc) {
    sluice_client_free(rc ? NULL : f->out);
    f->out = NULL;
}

static int op_open(fx *f) {
    return sluice_client_open(f->c);
}

static void after_open(fx *f, int rc) {
    if (rc == 0)
        sluice_client_detach(f->c); /* the next run opens again */
}

static int op_status(fx *f) {
    sluice_tracker t;
    return sluice_client_status(f->c, &t);
}

static int op_reset(fx *f) {
    sluice_tracker t;
    return sluice_client_reset_tracker(f->c, false, &t);
}

static int op_list_models(fx *f) {
    return sluice_list_models(f->c, (sluice_model_info **)&f->out, &f->n_out);
}

static void free_plain(fx *f, int rc) {
    free(rc ? NULL : f->out);
    f->out = NULL;
}

static int op_close(fx *f) {
    sluice_tracker t;
    return sluice_client_close(f->c, &t);
}

static void reopen(fx *f, int rc) {
    if (rc) /* the session was forgotten whatever happened: open another */
        sluice_client_detach(f->c);
    CU_ASSERT_EQUAL(sluice_client_open(f->c), 0);
}

static void test_client_calls(void) {
    fx f = {0};
    CU_ASSERT_TRUE(each_failure("sluice_client_new", &f, op_client_new, free_client) > 0);
    f.c = make_client();
    CU_ASSERT_TRUE(each_failure("sluice_client_open", &f, op_open, after_open) > 0);
    CU_ASSERT_EQUAL_FATAL(sluice_client_open(f.c), 0);
    CU_ASSERT_TRUE(each_failure("sluice_client_status", &f, op_status, NULL) > 0);
    CU_ASSERT_TRUE(each_failure("sluice_client_reset_tracker", &f, op_reset, NULL) > 0);
    CU_ASSERT_TRUE(each_failure("sluice_list_models", &f, op_list_models, free_plain) > 0);
    CU_ASSERT_TRUE(each_failure("sluice_client_close", &f, op_close, reopen) > 0);
    sluice_client_free(f.c);
}

/* ---- start / wait / as_completed / cancel ------------------------------------------------ */

static int op_start_many(fx *f) {
    return sluice_start_many(f->c, (const sluice_prompt *const *)f->prompts, 3, &f->ids);
}

static void keep_ids(fx *f, int rc) {
    if (rc == 0 && !f->n_ids) {
        f->n_ids = 3; /* the first successful start: its tasks are waited for below */
        return;
    }
    sluice_task_ids_free(f->ids, rc ? 0 : 3);
    f->ids = rc ? f->ids : NULL;
}

static int op_wait_for_all(fx *f) {
    return sluice_wait_for_all(f->c, (const char *const *)f->ids, f->n_ids, 30000,
                               (sluice_response ***)&f->out, &f->n_out);
}

static void free_responses(fx *f, int rc) {
    if (rc == 0) {
        CU_ASSERT_EQUAL(f->n_out, f->n_ids);
        sluice_responses_free(f->out, f->n_out);
    }
    f->out = NULL;
    f->n_out = 0;
}

static int op_wait_for(fx *f) {
    return sluice_wait_for(f->c, f->ids[0], 30000, (sluice_response **)&f->out);
}

static void free_response(fx *f, int rc) {
    sluice_response_free(rc ? NULL : f->out);
    f->out = NULL;
}

/* as_completed and every iter_next; an ENOMEM of iter_next keeps its task: the loop goes
 * on (disarmed) and must still see every task. */
static int op_as_completed(fx *f) {
    sluice_iter *it = NULL;
    int rc = sluice_as_completed(f->c, (const char *const *)f->ids, f->n_ids, &it);
    if (rc)
        return rc;
    size_t seen = 0;
    int first = 0;
    sluice_response *r;
    for (;;) {
        int nrc = sluice_iter_next(it, &r);
        if (nrc == SLUICE_EEOF)
            break;
        if (nrc == SLUICE_ENOMEM && !first) {
            first = nrc;
            failmalloc_disarm();
            CU_ASSERT_TRUE(strlen(sluice_last_error()) > 0);
            f->checked = true;
            continue;
        }
        if (nrc) {
            first = first ? first : nrc;
            break;
        }
        seen++;
        sluice_response_free(r);
    }
    sluice_iter_free(it);
    if (!first)
        CU_ASSERT_EQUAL(seen, f->n_ids);
    return first;
}

static int op_cancel(fx *f) {
    size_t k;
    return sluice_cancel(f->c, (const char *const *)f->ids, f->n_ids, &k);
}

static void test_start_wait_as_completed(void) {
    fx f = {0};
    f.c = make_client();
    f.prompts[0] = sluice_prompt_text("fail-malloc start 0");
    f.prompts[1] = sluice_prompt_text("fail-malloc start 1");
    f.prompts[2] = sluice_prompt_text("fail-malloc start 2");
    CU_ASSERT_TRUE(each_failure("sluice_start_many", &f, op_start_many, keep_ids) > 0);
    CU_ASSERT_EQUAL_FATAL(f.n_ids, 3);
    CU_ASSERT_TRUE(each_failure("sluice_wait_for_all", &f, op_wait_for_all, free_responses) > 0);
    CU_ASSERT_TRUE(each_failure("sluice_wait_for", &f, op_wait_for, free_response) > 0);
    CU_ASSERT_TRUE(each_failure("as_completed + iter_next", &f, op_as_completed, NULL) > 0);
    CU_ASSERT_TRUE(each_failure("sluice_cancel", &f, op_cancel, NULL) > 0);
    sluice_task_ids_free(f.ids, f.n_ids);
    for (int i = 0; i < 3; i++)
        sluice_prompt_free(f.prompts[i]);
    sluice_client_free(f.c);
}

/* ---- batches ----------------------------------------------------------------------------- */

static const sluice_batch_options batch_opts = {.timeout_ms = 20000}; /* a hang fails */

static int op_process_prompts(fx *f) {
    return sluice_process_prompts(f->c, f->prompts, 3, &batch_opts, (sluice_response ***)&f->out);
}

static void free_batch(fx *f, int rc) {
    sluice_responses_free(f->out, f->out ? 3 : 0); /* NULL entries for missing ones */
    f->out = NULL;
}

static int op_completions(fx *f) {
    return sluice_process_prompts_completions(f->c, f->prompts, 3, &batch_opts, (char ***)&f->out);
}

static void free_completions(fx *f, int rc) {
    sluice_completions_free(f->out, f->out ? 3 : 0);
    f->out = NULL;
}

static void count_result(void *ud, sluice_response *r) {
    (*(size_t *)ud)++;
    sluice_response_free(r);
}

static int op_callback(fx *f) {
    size_t n = 0;
    int rc = sluice_process_prompts_cb(f->c, f->prompts, 3, &batch_opts, count_result, &n);
    if (rc == 0)
        CU_ASSERT_EQUAL(n, 3);
    return rc;
}

static int op_async(fx *f) {
    size_t n = 0;
    sluice_batch *b = NULL;
    int rc = sluice_process_prompts_async(f->c, f->prompts, 3, &batch_opts, count_result, &n, &b);
    if (rc)
        return rc;
    rc = sluice_batch_wait(b); /* the batch's own thread is not armed */
    sluice_batch_free(b);
    return rc;
}

static void test_batches(void) {
    fx f = {0};
    f.c = make_client();
    f.prompts[0] = sluice_prompt_text("fail-malloc batch 0");
    build_prompt(&f);
    f.prompts[1] = f.out;
    f.out = NULL;
    CU_ASSERT_EQUAL(sluice_prompt_set_prefer_model(f.prompts[1], "m-c"), 0); /* an unknown one */
    f.prompts[2] = sluice_prompt_text("fail-malloc batch 2");
    CU_ASSERT_TRUE(each_failure("sluice_process_prompts", &f, op_process_prompts, free_batch) > 0);
    CU_ASSERT_TRUE(each_failure("sluice_process_prompts_completions", &f, op_completions,
                                free_completions) > 0);
    CU_ASSERT_TRUE(each_failure("sluice_process_prompts_cb", &f, op_callback, NULL) > 0);
    CU_ASSERT_TRUE(each_failure("sluice_process_prompts_async", &f, op_async, NULL) > 0);
    /* the same on an open session */
    CU_ASSERT_EQUAL_FATAL(sluice_client_open(f.c), 0);
    CU_ASSERT_TRUE(
        each_failure("sluice_process_prompts (session)", &f, op_process_prompts, free_batch) > 0);
    for (int i = 0; i < 3; i++)
        sluice_prompt_free(f.prompts[i]);
    sluice_client_free(f.c);
}

int main(void) {
    static const test_case cases[] = {
        {"prompt builders", test_prompt_builders},
        {"client calls", test_client_calls},
        {"start, wait, as_completed, cancel", test_start_wait_as_completed},
        {"batches", test_batches},
        {NULL, NULL},
    };
    return test_run_suite_with("sdk_failmalloc", suite_init, suite_clean, cases);
}
