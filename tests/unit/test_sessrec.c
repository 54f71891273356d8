/* server/service/sessrec: the session record round trip, and every jansson result checked:
 * a string jansson refuses fails the encoding naming the field (a session named 0xff made
 * json_pack return NULL and sluiced crash in strlen(NULL)); a bad record fails decoding. */
#include "server/common/alloc.h"
#include "server/service/sessrec.h"
#include "sluice/status.h"
#include "unit/test_util.h"

#include <stdlib.h>
#include <string.h>

static void make_config(dsession_config *c) {
    memset(c, 0, sizeof *c);
    c->name = xstrdup("caf\xc3\xa9 batch");
    c->tenant = xstrdup("acme");
    c->n_models = 2;
    c->models = XNEWV(dsession_model, 2);
    c->models[0].name = xstrdup("m-a");
    c->models[0].weight = 3;
    c->models[1].name = xstrdup("m-b");
    c->models[1].sampling.set = LLM_SET_STOP | LLM_SET_TEMPERATURE;
    c->models[1].sampling.temperature = 0.25;
    c->models[1].sampling.stop[0] = xstrdup("END");
    c->models[1].sampling.n_stop = 1;
    c->sampling.set = LLM_SET_MAX_NEW_TOKENS;
    c->sampling.max_new_tokens = 77;
    c->max_requests_per_minute = 600;
    c->task_timeout_ms = 1234;
    c->cache_mode = CACHE_MODE_READ_ONLY;
}

static void test_round_trip(void) {
    dsession_config c, back;
    make_config(&c);
    dsession_status st, st_back;
    memset(&st, 0, sizeof st);
    st.total = 10;
    st.succeeded = 7;
    st.failed = 2;
    st.cost = 0.5;
    char err[256];
    char *text = sessrec_encode(&c, &st, 1765000000123ull, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    uint64_t opened = 0;
    CU_ASSERT_EQUAL_FATAL(
        sessrec_decode(text, strlen(text), "acme", &back, &st_back, &opened, err, sizeof err),
        SLUICE_OK);
    CU_ASSERT_EQUAL(opened, 1765000000123ull); /* the tracker's clock survives a restart */
    EXPECT_STR(back.name, "caf\xc3\xa9 batch");
    EXPECT_STR(back.tenant, "acme");
    CU_ASSERT_EQUAL_FATAL(back.n_models, 2);
    EXPECT_STR(back.models[1].name, "m-b");
    CU_ASSERT_EQUAL(back.models[0].weight, 3);
    CU_ASSERT_EQUAL(back.models[1].sampling.n_stop, 1);
    EXPECT_STR(back.models[1].sampling.stop[0], "END");
    CU_ASSERT_EQUAL(back.models[1].sampling.temperature, 0.25);
    CU_ASSERT_EQUAL(back.sampling.max_new_tokens, 77);
    CU_ASSERT_EQUAL(back.max_requests_per_minute, 600);
    CU_ASSERT_EQUAL(back.task_timeout_ms, 1234);
    CU_ASSERT_EQUAL(back.cache_mode, CACHE_MODE_READ_ONLY);
    CU_ASSERT_EQUAL(st_back.total, 10);
    CU_ASSERT_EQUAL(st_back.started, 9);
    CU_ASSERT_EQUAL(st_back.cost, 0.5);
    free(text);
    dsession_config_cleanup(&back);
    dsession_config_cleanup(&c);
}

/* Regression: jansson refuses these strings; the record is not written and the field is
 * named, where json_pack's NULL used to reach strlen. */
static void test_unencodable_strings_name_the_field(void) {
    dsession_config c;
    make_config(&c);
    dsession_status st;
    memset(&st, 0, sizeof st);
    char err[256];
    free(c.name);
    c.name = xstrdup("\xff");
    CU_ASSERT_PTR_NULL(sessrec_encode(&c, &st, 0, err, sizeof err));
    CU_ASSERT_STRING_EQUAL(err, "name: not valid UTF-8");
    free(c.name);
    c.name = NULL; /* absent: fine */
    free(c.models[1].name);
    c.models[1].name = xstrdup("m-\xc0\x80");
    CU_ASSERT_PTR_NULL(sessrec_encode(&c, &st, 0, err, sizeof err));
    CU_ASSERT_STRING_EQUAL(err, "models[1].name: not valid UTF-8");
    free(c.models[1].name);
    c.models[1].name = xstrdup("m-b");
    free(c.models[1].sampling.stop[0]);
    c.models[1].sampling.stop[0] = xstrdup("\xed\xa0\x80");
    CU_ASSERT_PTR_NULL(sessrec_encode(&c, &st, 0, err, sizeof err));
    CU_ASSERT_STRING_EQUAL(err, "models[1].sampling.stop[0]: not valid UTF-8");
    free(c.models[1].sampling.stop[0]);
    c.models[1].sampling.stop[0] = xstrdup("END");
    c.sampling.stop[0] = xstrdup("fine");
    c.sampling.stop[1] = xstrdup("\x80");
    c.sampling.n_stop = 2;
    CU_ASSERT_PTR_NULL(sessrec_encode(&c, &st, 0, err, sizeof err));
    CU_ASSERT_STRING_EQUAL(err, "sampling.stop[1]: not valid UTF-8");
    free(c.sampling.stop[1]);
    c.sampling.stop[1] = NULL;
    c.sampling.n_stop = 1;
    char *text = sessrec_encode(&c, &st, 0, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL(text);
    free(text);
    dsession_config_cleanup(&c);
}

static void test_bad_records_fail_decoding(void) {
    dsession_config c;
    dsession_status st;
    uint64_t opened;
    char err[256];
    const char *junk = "{not json";
    CU_ASSERT_EQUAL(sessrec_decode(junk, strlen(junk), "", &c, &st, &opened, err, sizeof err),
                    SLUICE_EPROTO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "session record"));
    const char *no_config = "{\"tracker\": {}}";
    CU_ASSERT_EQUAL(
        sessrec_decode(no_config, strlen(no_config), "", &c, &st, &opened, err, sizeof err),
        SLUICE_EPROTO);
    CU_ASSERT_STRING_EQUAL(err, "session record: no config");
    const char *bad_model =
        "{\"config\": {\"name\": \"\", \"models\": [{\"name\": 5}], \"sampling\": {\"set\": 0, "
        "\"temperature\": 0, \"top_p\": 0, \"max_new_tokens\": 0, \"stop\": [], \"effort\": 0, "
        "\"thinking_budget\": 0, \"json_mode\": false}, \"rpm\": 0, \"tpm\": 0, \"concurrent\": 0, "
        "\"max_attempts\": 0, \"request_timeout_ms\": 0, \"task_timeout_ms\": 0, "
        "\"cache_mode\": 0}}";
    CU_ASSERT_EQUAL(
        sessrec_decode(bad_model, strlen(bad_model), "", &c, &st, &opened, err, sizeof err),
        SLUICE_EPROTO);
    CU_ASSERT_STRING_EQUAL(err, "session record: models[0] malformed");
}

int main(void) {
    static const test_case cases[] = {
        {"round trip", test_round_trip},
        {"unencodable strings name the field", test_unencodable_strings_name_the_field},
        {"bad records fail decoding", test_bad_records_fail_decoding},
        {NULL, NULL},
    };
    return test_run_suite("sessrec", cases);
}
