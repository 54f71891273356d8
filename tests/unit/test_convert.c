/* server/service/convert: what sluiced sends is valid UTF-8 whatever it holds. A response
 * or task record carrying ill-formed bytes (stored by an older sluiced, or text cut at a
 * byte limit) used to be sent as is, and a Python client could not decode the message.
 * Also: the text sent once on request (omit_text_parts), and a Wait entry for an unknown
 * id. */
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

/* Every answer's text went out twice, in completion and again as a text part of content;
 * with omit_text_parts only completion carries it, and the other parts stay in order. */
static void test_text_parts_dropped_other_parts_kept_in_order(void) {
    llm_response *r = llm_response_new();
    r->completion = xstrdup("Let me look. Done.");
    r->content = XNEWV(llm_part, 4);
    r->n_content = 4;
    r->content[0].kind = LLM_PART_THINKING;
    r->content[0].text = xstrdup("hmm");
    r->content[1].kind = LLM_PART_TEXT;
    r->content[1].text = xstrdup("Let me look.");
    r->content[2].kind = LLM_PART_TOOL_CALL;
    r->content[2].id = xstrdup("call-1");
    r->content[2].name = xstrdup("lookup");
    r->content[2].arguments = xstrdup("{}");
    r->content[3].kind = LLM_PART_TEXT;
    r->content[3].text = xstrdup(" Done.");
    Sluice__V1__Response *o = convert_response(r);
    CU_ASSERT_EQUAL(o->n_content, 4); /* by default: as before */
    convert_drop_text_parts(o);
    CU_ASSERT_STRING_EQUAL(o->completion, "Let me look. Done.");
    CU_ASSERT_EQUAL_FATAL(o->n_content, 2);
    CU_ASSERT_EQUAL(o->content[0]->kind_case, SLUICE__V1__PART__KIND_THINKING);
    CU_ASSERT_EQUAL(o->content[1]->kind_case, SLUICE__V1__PART__KIND_TOOL_CALL);
    CU_ASSERT_STRING_EQUAL(o->content[1]->tool_call->name, "lookup");
    convert_drop_text_parts(o); /* nothing left to drop */
    CU_ASSERT_EQUAL(o->n_content, 2);
    protobuf_c_message_free_unpacked(&o->base, NULL);
    llm_response_free(r);
}

static void test_not_found_entry_names_the_id(void) {
    Sluice__V1__TaskResult *tr = convert_not_found("local:t\xff"
                                                   "9");
    CU_ASSERT_EQUAL(tr->state, SLUICE__V1__TASK_STATE__TASK_STATE_NOT_FOUND);
    CU_ASSERT_STRING_EQUAL(tr->task_id, "local:t\xef\xbf\xbd"
                                        "9");
    CU_ASSERT_PTR_NOT_NULL_FATAL(tr->response);
    CU_ASSERT_TRUE(tr->response->is_error);
    CU_ASSERT_EQUAL(tr->response->error_kind, SLUICE__V1__ERROR_KIND__ERROR_KIND_NOT_FOUND);
    CU_ASSERT_STRING_EQUAL(tr->response->error_message, "task 'local:t\xef\xbf\xbd"
                                                        "9' not found");
    protobuf_c_message_free_unpacked(&tr->base, NULL);
}

int main(void) {
    static const test_case cases[] = {
        {"answers are valid UTF-8", test_answers_are_valid_utf8},
        {"valid text is sent unchanged", test_valid_text_is_sent_unchanged},
        {"text parts dropped, other parts kept in order",
         test_text_parts_dropped_other_parts_kept_in_order},
        {"not-found entry names the id", test_not_found_entry_names_the_id},
        {NULL, NULL},
    };
    return test_run_suite("convert", cases);
}
