/* server/service/convert: what sluiced sends is valid UTF-8 whatever it holds. A response
 * or task record carrying ill-formed bytes (stored by an older sluiced, or text cut at a
 * byte limit) used to be sent as is, and a Python client could not decode the message. */
#include "server/common/alloc.h"
#include "server/common/utf8.h"
#include "server/service/convert.h"
#include "unit/test_util.h"

#include <stdlib.h>
#include <string.h>

/* Whether every string the test sets in tr is valid UTF-8. */
static bool all_valid(const Sluice__V1__TaskResult *tr) {
    const Sluice__V1__Response *r = tr->response;
    const char *strs[] = {tr->task_id,          tr->custom_id, r->completion,
                          r->error_message,     r->model_used, r->content[0]->text->text,
                          r->attempts[0]->error};
    bool ok = true;
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++)
        ok &= utf8_valid(strs[i], strlen(strs[i]), NULL);
    return ok;
}

static void test_answers_are_valid_utf8(void) {
    llm_response *r = llm_response_new();
    r->completion = xstrdup("caf\xc3");
    r->error_message = xstrdup("cut \xe2\x82");
    r->model_used = xstrdup("m-\xff");
    r->content = XNEWV(llm_part, 1);
    r->n_content = 1;
    r->content[0].kind = LLM_PART_TEXT;
    r->content[0].text = xstrdup("\xed\xa0\x80 surrogate");
    llm_response_add_attempt(r, "m-a", 500, 10, 0, "body \xc0\x80");
    Sluice__V1__TaskResult *tr =
        convert_task_result("local:t1", STORE_TASK_SUCCEEDED, r, 3, "id-\xfe");
    CU_ASSERT_STRING_EQUAL(tr->custom_id, "id-\xef\xbf\xbd");
    CU_ASSERT_STRING_EQUAL(tr->response->completion, "caf\xef\xbf\xbd");
    CU_ASSERT_STRING_EQUAL(tr->response->model_used, "m-\xef\xbf\xbd");
    CU_ASSERT_TRUE(all_valid(tr));
    protobuf_c_message_free_unpacked(&tr->base, NULL);
    llm_response_free(r);
}

static void test_valid_text_is_sent_unchanged(void) {
    llm_response *r = llm_response_new();
    r->completion = xstrdup("caf\xc3\xa9 \xf0\x9f\x98\x80");
    Sluice__V1__Response *o = convert_response(r);
    CU_ASSERT_STRING_EQUAL(o->completion, "caf\xc3\xa9 \xf0\x9f\x98\x80");
    CU_ASSERT_STRING_EQUAL(o->error_message, "");
    protobuf_c_message_free_unpacked(&o->base, NULL);
    llm_response_free(r);
}

int main(void) {
    static const test_case cases[] = {
        {"answers are valid UTF-8", test_answers_are_valid_utf8},
        {"valid text is sent unchanged", test_valid_text_is_sent_unchanged},
        {NULL, NULL},
    };
    return test_run_suite("convert", cases);
}
