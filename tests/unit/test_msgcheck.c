/* server/transport/msgcheck: every string field of a decoded message, by descriptor, with
 * the path of the first bad one (nested, repeated and oneof fields). Messages are built on
 * the stack from sluice.v1 types. */
#include "server/transport/msgcheck.h"
#include "sluice/status.h"
#include "sluice/v1/sluice.pb-c.h"
#include "unit/test_util.h"

#include <string.h>

static char err[600];

static int check(const ProtobufCMessage *m) {
    err[0] = '\0';
    return msgcheck_strings(m, err, sizeof err);
}

/* A StartRequest of two prompts; the second has a message of two parts (text, then a
 * tool call). */
typedef struct start_fixture {
    Sluice__V1__StartRequest req;
    Sluice__V1__Prompt p0, p1;
    Sluice__V1__Prompt *prompts[2];
    Sluice__V1__Message m;
    Sluice__V1__Message *msgs[1];
    Sluice__V1__Part text_part, call_part;
    Sluice__V1__Part *parts[2];
    Sluice__V1__TextPart text;
    Sluice__V1__ToolCall call;
} start_fixture;

static void start_fixture_init(start_fixture *f) {
    sluice__v1__start_request__init(&f->req);
    sluice__v1__prompt__init(&f->p0);
    sluice__v1__prompt__init(&f->p1);
    sluice__v1__message__init(&f->m);
    sluice__v1__part__init(&f->text_part);
    sluice__v1__part__init(&f->call_part);
    sluice__v1__text_part__init(&f->text);
    sluice__v1__tool_call__init(&f->call);
    f->req.session_id = "local:s1";
    f->p0.text = "first";
    f->p0.custom_id = "c-0";
    f->text.text = "caf\xc3\xa9";
    f->text_part.kind_case = SLUICE__V1__PART__KIND_TEXT;
    f->text_part.text = &f->text;
    f->call.id = "call-1";
    f->call.name = "get_weather";
    f->call.arguments_json = "{}";
    f->call_part.kind_case = SLUICE__V1__PART__KIND_TOOL_CALL;
    f->call_part.tool_call = &f->call;
    f->parts[0] = &f->text_part;
    f->parts[1] = &f->call_part;
    f->m.parts = f->parts;
    f->m.n_parts = 2;
    f->msgs[0] = &f->m;
    f->p1.messages = f->msgs;
    f->p1.n_messages = 1;
    f->prompts[0] = &f->p0;
    f->prompts[1] = &f->p1;
    f->req.prompts = f->prompts;
    f->req.n_prompts = 2;
}

static void test_valid_messages_pass(void) {
    start_fixture f;
    start_fixture_init(&f);
    CU_ASSERT_EQUAL(check(&f.req.base), SLUICE_OK);
    Sluice__V1__ListModelsRequest empty = SLUICE__V1__LIST_MODELS_REQUEST__INIT;
    CU_ASSERT_EQUAL(check(&empty.base), SLUICE_OK);
}

static void test_names_the_top_level_field(void) {
    Sluice__V1__OpenSessionRequest req = SLUICE__V1__OPEN_SESSION_REQUEST__INIT;
    Sluice__V1__SessionConfig cfg = SLUICE__V1__SESSION_CONFIG__INIT;
    Sluice__V1__ModelChoice m = SLUICE__V1__MODEL_CHOICE__INIT;
    Sluice__V1__ModelChoice *ms[1] = {&m};
    m.name = "m-a";
    cfg.models = ms;
    cfg.n_models = 1;
    cfg.name = "\xff";
    req.config = &cfg;
    CU_ASSERT_EQUAL(check(&req.base), SLUICE_EINVAL);
    CU_ASSERT_STRING_EQUAL(err, "config.name: not valid UTF-8 (byte 0 is 0xff)");
    cfg.name = "fine";
    m.name = "m-\xc0\x80";
    CU_ASSERT_EQUAL(check(&req.base), SLUICE_EINVAL);
    CU_ASSERT_STRING_EQUAL(err, "config.models[0].name: not valid UTF-8 (byte 2 is 0xc0)");
}

static void test_names_nested_repeated_and_oneof_fields(void) {
    start_fixture f;
    start_fixture_init(&f);
    f.call.arguments_json = "{\"a\": \"\xed\xa0\x80\"}"; /* a surrogate */
    CU_ASSERT_EQUAL(check(&f.req.base), SLUICE_EINVAL);
    CU_ASSERT_STRING_EQUAL(
        err, "prompts[1].messages[0].parts[1].tool_call.arguments_json: not valid UTF-8 "
             "(byte 7 is 0xed)");
    f.call.arguments_json = "{}";
    f.text.text = "\xf4\x90\x80\x80"; /* above U+10FFFF */
    CU_ASSERT_EQUAL(check(&f.req.base), SLUICE_EINVAL);
    CU_ASSERT_STRING_EQUAL(
        err, "prompts[1].messages[0].parts[0].text.text: not valid UTF-8 (byte 0 is 0xf4)");
    f.text.text = "ok";
    f.p0.custom_id = "\x80";
    CU_ASSERT_EQUAL(check(&f.req.base), SLUICE_EINVAL);
    CU_ASSERT_STRING_EQUAL(err, "prompts[0].custom_id: not valid UTF-8 (byte 0 is 0x80)");
    f.p0.custom_id = "c-0";
    f.req.session_id = "local:s1\xe2\x82";
    CU_ASSERT_EQUAL(check(&f.req.base), SLUICE_EINVAL);
    CU_ASSERT_STRING_EQUAL(err, "session_id: not valid UTF-8 (byte 8 is 0xe2)");
}

/* Only the member a oneof holds is looked at: the others' storage is not a field. */
static void test_only_the_set_oneof_member_counts(void) {
    Sluice__V1__ImagePart img = SLUICE__V1__IMAGE_PART__INIT;
    static uint8_t bytes[] = {0xff, 0xfe, 0x00, 0x80}; /* bytes fields are not strings */
    img.source_case = SLUICE__V1__IMAGE_PART__SOURCE_DATA;
    img.data.data = bytes;
    img.data.len = sizeof bytes;
    img.media_type = "image/png";
    CU_ASSERT_EQUAL(check(&img.base), SLUICE_OK);
    img.source_case = SLUICE__V1__IMAGE_PART__SOURCE_URL;
    img.url = "https://example.com/\xff.png";
    CU_ASSERT_EQUAL(check(&img.base), SLUICE_EINVAL);
    CU_ASSERT_STRING_EQUAL(err, "url: not valid UTF-8 (byte 20 is 0xff)");

    Sluice__V1__BatchRequest br = SLUICE__V1__BATCH_REQUEST__INIT;
    Sluice__V1__PromptBatch pb = SLUICE__V1__PROMPT_BATCH__INIT;
    start_fixture f;
    start_fixture_init(&f);
    f.p1.prefer_model = "m-\xff";
    pb.prompts = f.prompts;
    pb.n_prompts = 2;
    br.kind_case = SLUICE__V1__BATCH_REQUEST__KIND_PROMPTS;
    br.prompts = &pb;
    CU_ASSERT_EQUAL(check(&br.base), SLUICE_EINVAL);
    CU_ASSERT_STRING_EQUAL(err,
                           "prompts.prompts[1].prefer_model: not valid UTF-8 (byte 2 is 0xff)");
    Sluice__V1__BatchEnd end = SLUICE__V1__BATCH_END__INIT;
    br.kind_case = SLUICE__V1__BATCH_REQUEST__KIND_END;
    br.end = &end; /* the same storage, now another member */
    CU_ASSERT_EQUAL(check(&br.base), SLUICE_OK);
}

static void test_repeated_strings_and_wait_ids(void) {
    Sluice__V1__WaitRequest w = SLUICE__V1__WAIT_REQUEST__INIT;
    char *ids[3] = {"local:t1", "local:t2", "local:t\xc3("};
    w.task_ids = ids;
    w.n_task_ids = 3;
    CU_ASSERT_EQUAL(check(&w.base), SLUICE_EINVAL);
    CU_ASSERT_STRING_EQUAL(err, "task_ids[2]: not valid UTF-8 (byte 7 is 0xc3)");
    w.n_task_ids = 2;
    CU_ASSERT_EQUAL(check(&w.base), SLUICE_OK);
}

int main(void) {
    static const test_case cases[] = {
        {"valid messages pass", test_valid_messages_pass},
        {"names the top-level field", test_names_the_top_level_field},
        {"names nested, repeated and oneof fields", test_names_nested_repeated_and_oneof_fields},
        {"only the set oneof member counts", test_only_the_set_oneof_member_counts},
        {"repeated strings and Wait ids", test_repeated_strings_and_wait_ids},
        {NULL, NULL},
    };
    return test_run_suite("msgcheck", cases);
}
