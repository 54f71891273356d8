/*
 * test_codegen.c - protoc-gen-sluice: the tables and stubs it generated for the real
 * protos (sluice.proto, health.proto, sluice_test.proto) and for deliberately odd ones
 * (tests/unit/codegen_odd.proto, codegen_renamed.proto), protobuf-c's naming rules, and
 * the plugin's handling of bad requests (in-process and through the real executable).
 *
 * That this file compiles is half the test: it names the generated identifiers next to
 * protobuf-c's and assigns every stub to a pointer of the exact expected type.
 *
 * argv[1]: the protoc-gen-sluice executable.
 */
#include "client/codegen/codegen.h"
#include "client/codegen/names.h"
#include "client/rpc/rpc.h"
#include "google/protobuf/compiler/plugin.pb-c.h"
#include "grpc/health/v1/health.sluice.h"
#include "sluice/v1/sluice.sluice.h"
#include "sluice_test.sluice.h"
#include "tests/unit/codegen_odd.sluice.h"
#include "tests/unit/codegen_renamed.sluice.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *plugin_path;

static void check_method(const sluice_rpc_method *m, const char *path, const char *name,
                         const ProtobufCMessageDescriptor *in,
                         const ProtobufCMessageDescriptor *out, bool cs, bool ss) {
    CU_ASSERT_STRING_EQUAL(m->path, path);
    CU_ASSERT_STRING_EQUAL(m->name, name);
    CU_ASSERT_PTR_EQUAL(m->input, in);
    CU_ASSERT_PTR_EQUAL(m->output, out);
    CU_ASSERT_EQUAL(m->client_streaming, cs);
    CU_ASSERT_EQUAL(m->server_streaming, ss);
}

/* ---- the real protos ---------------------------------------------------------------- */

static void test_test_service_table(void) {
    const sluice_rpc_service *svc = &sluice__test__v1__test_service__rpc_service;
    const ProtobufCMessageDescriptor *req = &sluice__test__v1__echo_request__descriptor;
    const ProtobufCMessageDescriptor *resp = &sluice__test__v1__echo_response__descriptor;
    CU_ASSERT_STRING_EQUAL(svc->name, "sluice.test.v1.TestService");
    CU_ASSERT_EQUAL_FATAL(svc->n_methods, 4);
    CU_ASSERT_PTR_EQUAL(svc->methods, sluice__test__v1__test_service__rpc_methods);
    check_method(&sluice__test__v1__test_service__echo__method, "/sluice.test.v1.TestService/Echo",
                 "Echo", req, resp, false, false);
    check_method(&sluice__test__v1__test_service__count__method,
                 "/sluice.test.v1.TestService/Count", "Count", req, resp, false, true);
    check_method(&sluice__test__v1__test_service__sum__method, "/sluice.test.v1.TestService/Sum",
                 "Sum", req, resp, true, false);
    check_method(&sluice__test__v1__test_service__chat__method, "/sluice.test.v1.TestService/Chat",
                 "Chat", req, resp, true, true);
    CU_ASSERT_EQUAL(SLUICE__TEST__V1__TEST_SERVICE__RPC_ECHO, 0);
    CU_ASSERT_EQUAL(SLUICE__TEST__V1__TEST_SERVICE__RPC_CHAT, 3);
    CU_ASSERT_PTR_EQUAL(&sluice__test__v1__test_service__sum__method, &svc->methods[2]);
    CU_ASSERT_EQUAL(sizeof(sluice__test__v1__test_service__rpc_methods) / sizeof(sluice_rpc_method),
                    4);
}

/* Every stub kind, assigned to pointers of the exact types the contract promises. */
static void test_test_service_stub_types(void) {
    int (*unary)(sluice_rpc_channel *, const Sluice__Test__V1__EchoRequest *,
                 Sluice__Test__V1__EchoResponse **, const sluice_rpc_call_opts *,
                 sluice_rpc_status *) = sluice__test__v1__test_service__echo__rpc;
    int (*async)(sluice_rpc_async *, sluice_rpc_channel *, const Sluice__Test__V1__EchoRequest *,
                 const sluice_rpc_call_opts *, void *) =
        sluice__test__v1__test_service__echo__async;
    int (*ss_start)(sluice_rpc_channel *, const Sluice__Test__V1__EchoRequest *,
                    const sluice_rpc_call_opts *, sluice_rpc_call **) =
        sluice__test__v1__test_service__count__start;
    int (*read)(sluice_rpc_call *, Sluice__Test__V1__EchoResponse **) =
        sluice__test__v1__test_service__count__read;
    int (*cs_start)(sluice_rpc_channel *, const sluice_rpc_call_opts *, sluice_rpc_call **) =
        sluice__test__v1__test_service__sum__start;
    int (*write)(sluice_rpc_call *, const Sluice__Test__V1__EchoRequest *) =
        sluice__test__v1__test_service__sum__write;
    int (*finish)(sluice_rpc_call *, Sluice__Test__V1__EchoResponse **, sluice_rpc_status *) =
        sluice__test__v1__test_service__sum__finish;
    int (*bidi_start)(sluice_rpc_channel *, const sluice_rpc_call_opts *, sluice_rpc_call **) =
        sluice__test__v1__test_service__chat__start;
    int (*bidi_write)(sluice_rpc_call *, const Sluice__Test__V1__EchoRequest *) =
        sluice__test__v1__test_service__chat__write;
    int (*start_write)(sluice_rpc_call *, const Sluice__Test__V1__EchoRequest *) =
        sluice__test__v1__test_service__chat__start_write;
    int (*bidi_read)(sluice_rpc_call *, Sluice__Test__V1__EchoResponse **) =
        sluice__test__v1__test_service__chat__read;
    /* Local misuse through every typed stub: no call, no crash, outputs cleared. */
    Sluice__Test__V1__EchoResponse *msg = (Sluice__Test__V1__EchoResponse *)&msg;
    CU_ASSERT_EQUAL(read(NULL, &msg), SLUICE_EINVAL);
    CU_ASSERT_PTR_NULL(msg);
    CU_ASSERT_EQUAL(bidi_read(NULL, &msg), SLUICE_EINVAL);
    CU_ASSERT_EQUAL(write(NULL, NULL), SLUICE_EINVAL);
    CU_ASSERT_EQUAL(unary(NULL, NULL, &msg, NULL, NULL), SLUICE_EINVAL);
    CU_ASSERT_EQUAL(async(NULL, NULL, NULL, NULL, NULL), SLUICE_EINVAL);
    sluice_rpc_call *call = (sluice_rpc_call *)&call;
    CU_ASSERT_EQUAL(ss_start(NULL, NULL, NULL, &call), SLUICE_EINVAL);
    CU_ASSERT_PTR_NULL(call);
    CU_ASSERT_EQUAL(cs_start(NULL, NULL, &call), SLUICE_EINVAL);
    msg = (Sluice__Test__V1__EchoResponse *)&msg;
    CU_ASSERT_EQUAL(finish(NULL, &msg, NULL), SLUICE_EINVAL);
    CU_ASSERT_PTR_NULL(msg);
    CU_ASSERT_EQUAL(bidi_start(NULL, NULL, &call), SLUICE_EINVAL);
    CU_ASSERT_EQUAL(bidi_write(NULL, NULL), SLUICE_EINVAL);
    CU_ASSERT_EQUAL(start_write(NULL, NULL), SLUICE_EINVAL);
}

static void test_sluice_table(void) {
    static const struct {
        const char *name;
        const ProtobufCMessageDescriptor *in, *out;
        bool cs, ss;
    } want[] = {
        {"OpenSession", &sluice__v1__open_session_request__descriptor,
         &sluice__v1__open_session_response__descriptor, false, false},
        {"CloseSession", &sluice__v1__close_session_request__descriptor,
         &sluice__v1__close_session_response__descriptor, false, false},
        {"ResetTracker", &sluice__v1__reset_tracker_request__descriptor,
         &sluice__v1__reset_tracker_response__descriptor, false, false},
        {"GetStatus", &sluice__v1__get_status_request__descriptor,
         &sluice__v1__get_status_response__descriptor, false, false},
        {"BatchProcess", &sluice__v1__batch_request__descriptor,
         &sluice__v1__batch_event__descriptor, true, true},
        {"Start", &sluice__v1__start_request__descriptor, &sluice__v1__start_response__descriptor,
         false, false},
        {"Wait", &sluice__v1__wait_request__descriptor, &sluice__v1__wait_response__descriptor,
         false, false},
        {"AsCompleted", &sluice__v1__as_completed_request__descriptor,
         &sluice__v1__task_result__descriptor, false, true},
        {"Cancel", &sluice__v1__cancel_request__descriptor,
         &sluice__v1__cancel_response__descriptor, false, false},
        {"ListModels", &sluice__v1__list_models_request__descriptor,
         &sluice__v1__list_models_response__descriptor, false, false},
    };
    const sluice_rpc_service *svc = &sluice__v1__sluice__rpc_service;
    CU_ASSERT_STRING_EQUAL(svc->name, "sluice.v1.Sluice");
    CU_ASSERT_EQUAL_FATAL(svc->n_methods, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < svc->n_methods; i++) {
        char path[128];
        snprintf(path, sizeof(path), "/sluice.v1.Sluice/%s", want[i].name);
        check_method(&svc->methods[i], path, want[i].name, want[i].in, want[i].out, want[i].cs,
                     want[i].ss);
    }
    CU_ASSERT_PTR_EQUAL(&sluice__v1__sluice__batch_process__method,
                        &svc->methods[SLUICE__V1__SLUICE__RPC_BATCH_PROCESS]);
    CU_ASSERT_EQUAL(SLUICE__V1__SLUICE__RPC_LIST_MODELS, 9);
    /* The stubs sit next to protobuf-c's own service functions without clashing (naming
     * both is the check, at compile time) and refuse local misuse. */
    CU_ASSERT_PTR_NOT_NULL(sluice__v1__sluice__open_session);
    Sluice__V1__OpenSessionResponse *opened = NULL;
    CU_ASSERT_EQUAL(sluice__v1__sluice__open_session__rpc(NULL, NULL, &opened, NULL, NULL),
                    SLUICE_EINVAL);
    CU_ASSERT_EQUAL(sluice__v1__sluice__batch_process__start_write(NULL, NULL), SLUICE_EINVAL);
    Sluice__V1__TaskResult *result = NULL;
    CU_ASSERT_EQUAL(sluice__v1__sluice__as_completed__read(NULL, &result), SLUICE_EINVAL);
}

static void test_health_table(void) {
    const sluice_rpc_service *svc = &grpc__health__v1__health__rpc_service;
    CU_ASSERT_STRING_EQUAL(svc->name, "grpc.health.v1.Health");
    CU_ASSERT_EQUAL_FATAL(svc->n_methods, 2);
    check_method(&grpc__health__v1__health__check__method, "/grpc.health.v1.Health/Check", "Check",
                 &grpc__health__v1__health_check_request__descriptor,
                 &grpc__health__v1__health_check_response__descriptor, false, false);
    check_method(&grpc__health__v1__health__watch__method, "/grpc.health.v1.Health/Watch", "Watch",
                 &grpc__health__v1__health_check_request__descriptor,
                 &grpc__health__v1__health_check_response__descriptor, false, true);
    sluice_rpc_call *call = NULL;
    CU_ASSERT_EQUAL(grpc__health__v1__health__watch__start(NULL, NULL, NULL, &call), SLUICE_EINVAL);
}

static void test_service_find(void) {
    const sluice_rpc_service *svc = &sluice__test__v1__test_service__rpc_service;
    for (size_t i = 0; i < svc->n_methods; i++) {
        const char *p = svc->methods[i].path;
        CU_ASSERT_PTR_EQUAL(sluice_rpc_service_find(svc, p, strlen(p)), &svc->methods[i]);
    }
    const char *sum = "/sluice.test.v1.TestService/Sum";
    CU_ASSERT_PTR_EQUAL(
        sluice_rpc_service_find(&sluice__v1__sluice__rpc_service, "/sluice.v1.Sluice/Wait", 22),
        &sluice__v1__sluice__wait__method);
    /* Not NUL-terminated: the length decides. */
    CU_ASSERT_PTR_EQUAL(sluice_rpc_service_find(svc, "/sluice.test.v1.TestService/SumXYZ", 31),
                        &sluice__test__v1__test_service__sum__method);
    CU_ASSERT_PTR_NULL(sluice_rpc_service_find(svc, sum, strlen(sum) - 1)); /* a prefix */
    CU_ASSERT_PTR_NULL(sluice_rpc_service_find(svc, "/sluice.test.v1.TestService/Sums", 32));
    CU_ASSERT_PTR_NULL(sluice_rpc_service_find(svc, "/sluice.test.v1.TestService/sum", 31));
    CU_ASSERT_PTR_NULL(sluice_rpc_service_find(svc, "/sluice.test.v1.TestService/S\0m", 31));
    CU_ASSERT_PTR_NULL(sluice_rpc_service_find(svc, "/sluice.v1.Sluice/Wait", 22));
    CU_ASSERT_PTR_NULL(sluice_rpc_service_find(svc, "", 0));
    CU_ASSERT_PTR_NULL(sluice_rpc_service_find(svc, NULL, 0));
    CU_ASSERT_PTR_NULL(sluice_rpc_service_find(NULL, sum, strlen(sum)));
    CU_ASSERT_PTR_NULL(sluice_rpc_service_find(&odd__deeply_nested__v2beta__no_methods__rpc_service,
                                               sum, strlen(sum)));
}

/* ---- the odd protos ----------------------------------------------------------------- */

#define ODD "/odd.deeply_nested.v2beta.HTTP2Gateway/"

static void test_odd_tables(void) {
    const sluice_rpc_service *svc = &odd__deeply_nested__v2beta__http2_gateway__rpc_service;
    CU_ASSERT_STRING_EQUAL(svc->name, "odd.deeply_nested.v2beta.HTTP2Gateway");
    CU_ASSERT_EQUAL_FATAL(svc->n_methods, 5);
    check_method(&odd__deeply_nested__v2beta__http2_gateway__get_http2_status__method,
                 ODD "GetHTTP2Status", "GetHTTP2Status",
                 &odd__deeply_nested__v2beta__outer__inner__descriptor,
                 &google__protobuf__string_value__descriptor, false, false);
    check_method(&odd__deeply_nested__v2beta__http2_gateway__get2_fa__method, ODD "Get2FA",
                 "Get2FA", &odd__deeply_nested__v2beta__lower_snake_msg__descriptor,
                 &odd__deeply_nested__v2beta__outer__descriptor, true, false);
    check_method(&odd__deeply_nested__v2beta__http2_gateway__abc__method, ODD "ABC", "ABC",
                 &odd__deeply_nested__v2beta__outer__descriptor,
                 &odd__deeply_nested__v2beta__outer__inner__descriptor, false, true);
    check_method(&odd__deeply_nested__v2beta__http2_gateway__do_thing_v2__method, ODD "do_thing_v2",
                 "do_thing_v2", &google__protobuf__int32_value__descriptor,
                 &odd__deeply_nested__v2beta__lower_snake_msg__descriptor, true, true);
    check_method(&odd__deeply_nested__v2beta__http2_gateway__xmlhttp_request__method,
                 ODD "XMLHttpRequest", "XMLHttpRequest", &other_c__pkg2__ping__descriptor,
                 &odd__deeply_nested__v2beta__outer__descriptor, false, false);
    CU_ASSERT_EQUAL(ODD__DEEPLY_NESTED__V2BETA__HTTP2_GATEWAY__RPC_GET_HTTP2_STATUS, 0);
    CU_ASSERT_EQUAL(ODD__DEEPLY_NESTED__V2BETA__HTTP2_GATEWAY__RPC_GET2_FA, 1);
    CU_ASSERT_EQUAL(ODD__DEEPLY_NESTED__V2BETA__HTTP2_GATEWAY__RPC_XMLHTTP_REQUEST, 4);
    CU_ASSERT_EQUAL(odd__deeply_nested__v2beta__no_methods__rpc_service.n_methods, 0);
    CU_ASSERT_PTR_NULL(odd__deeply_nested__v2beta__no_methods__rpc_service.methods);
}

/* Our stub names derive from the same snake_case names as protobuf-c's service functions
 * (which exist because protoc-c emitted them), and the types are protobuf-c's. Naming
 * protobuf-c's functions is a compile-time check; our stubs are called with local misuse. */
static void test_odd_names_match_protobuf_c(void) {
    CU_ASSERT_PTR_NOT_NULL(odd__deeply_nested__v2beta__http2_gateway__get_http2_status);
    Google__Protobuf__StringValue *status_value = NULL;
    CU_ASSERT_EQUAL(odd__deeply_nested__v2beta__http2_gateway__get_http2_status__rpc(
                        NULL, NULL, &status_value, NULL, NULL),
                    SLUICE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(odd__deeply_nested__v2beta__http2_gateway__get2_fa);
    Odd__DeeplyNested__V2beta__Outer *outer = NULL;
    CU_ASSERT_EQUAL(odd__deeply_nested__v2beta__http2_gateway__get2_fa__finish(NULL, &outer, NULL),
                    SLUICE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(odd__deeply_nested__v2beta__http2_gateway__abc);
    Odd__DeeplyNested__V2beta__Outer__Inner *inner = NULL;
    CU_ASSERT_EQUAL(odd__deeply_nested__v2beta__http2_gateway__abc__read(NULL, &inner),
                    SLUICE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(odd__deeply_nested__v2beta__http2_gateway__do_thing_v2);
    CU_ASSERT_EQUAL(odd__deeply_nested__v2beta__http2_gateway__do_thing_v2__start_write(NULL, NULL),
                    SLUICE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(odd__deeply_nested__v2beta__http2_gateway__xmlhttp_request);
    CU_ASSERT_EQUAL(odd__deeply_nested__v2beta__http2_gateway__xmlhttp_request__async(
                        NULL, NULL, NULL, NULL, NULL),
                    SLUICE_EINVAL);
    int (*rpc)(sluice_rpc_channel *, const OtherC__Pkg2__Ping *, OtherC__Pkg2__Ping **,
               const sluice_rpc_call_opts *, sluice_rpc_status *) =
        other_c__pkg2__pinger__send_ping__rpc;
    OtherC__Pkg2__Ping *pong = NULL;
    CU_ASSERT_EQUAL(rpc(NULL, NULL, &pong, NULL, NULL), SLUICE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(other_c__pkg2__pinger__send_ping); /* protobuf-c's, renamed too */
    CU_ASSERT_STRING_EQUAL(other_c__pkg2__pinger__rpc_service.name, "renamed.pkg.Pinger");
    check_method(&other_c__pkg2__pinger__send_ping__method, "/renamed.pkg.Pinger/SendPing",
                 "SendPing", &other_c__pkg2__ping__descriptor, &other_c__pkg2__ping__descriptor,
                 false, false);
}

/* Reads a generated file of the build into a heap string (NULL when unreadable). */
static char *read_generated(const char *rel) {
    const char *bin = getenv("SLUICE_BINARY_DIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/gen/%s", bin != NULL ? bin : ".", rel);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    char *buf = calloc(1, 1 << 20);
    if (buf != NULL) {
        size_t n = fread(buf, 1, (1 << 20) - 1, f);
        buf[n] = '\0';
    }
    fclose(f);
    return buf;
}

static void test_odd_comments(void) {
    char *h = read_generated("tests/unit/codegen_odd.sluice.h");
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    /* The method's leading comment, defused: no comment end, no trigraph, no splice. */
    CU_ASSERT_PTR_NOT_NULL(
        strstr(h, " * Status of HTTP/2: * / ends nothing / * starts nothing ? ?/"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, " * trailing backslash does not splice lines\n */"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, " * A service named with an acronym and a digit.\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "/* ---- ABC (server streaming) ---"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "/* do_thing_v2 (bidi streaming): starts sending"));
    CU_ASSERT_PTR_NULL(strstr(h, "?\?/"));
    free(h);
}

/* ---- protobuf-c's naming rules (names.c) -------------------------------------------- */

static void expect_name(char *got, const char *want) {
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(got, want);
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "\n  got \"%s\", want \"%s\"\n", got, want);
    }
    free(got);
}

static void test_names(void) {
    static const struct {
        const char *in, *lower, *upper, *camel;
    } cases[] = {
        {"OpenSession", "open_session", "OPEN_SESSION", "OpenSession"},
        {"GetHTTP2Status", "get_http2_status", "GET_HTTP2_STATUS", "GetHTTP2Status"},
        {"Get2FA", "get2_fa", "GET2_FA", "Get2FA"},
        {"ABC", "abc", "ABC", "ABC"},
        {"XMLHttpRequest", "xmlhttp_request", "XMLHTTP_REQUEST", "XMLHttpRequest"},
        {"do_thing_v2", "do_thing_v2", "DO_THING_V2", "DoThingV2"},
        {"lower_snake_msg", "lower_snake_msg", "LOWER_SNAKE_MSG", "LowerSnakeMsg"},
        {"v2beta", "v2beta", "V2BETA", "V2beta"},
        {"x", "x", "X", "X"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        expect_name(names_camel_to_lower(cases[i].in), cases[i].lower);
        expect_name(names_camel_to_upper(cases[i].in), cases[i].upper);
        expect_name(names_to_camel(cases[i].in), cases[i].camel);
    }
    expect_name(names_full("sluice.v1.OpenSessionRequest", "sluice.v1", NULL, NAMES_C),
                "Sluice__V1__OpenSessionRequest");
    expect_name(names_full("sluice.v1.Sluice", "sluice.v1", NULL, NAMES_LOWER),
                "sluice__v1__sluice");
    expect_name(names_full("a.b_c.Outer.Inner", "a.b_c", NULL, NAMES_UPPER),
                "A__B_C__OUTER__INNER");
    expect_name(names_full("renamed.pkg.Ping", "renamed.pkg", "other_c.pkg2", NAMES_C),
                "OtherC__Pkg2__Ping");
    expect_name(names_full("Top", "", "cpkg", NAMES_LOWER), "cpkg__top");
    expect_name(names_full("Top", "", NULL, NAMES_LOWER), "top");
    expect_name(names_strip_proto("a/b.proto"), "a/b");
    expect_name(names_strip_proto("a/b.protodevel"), "a/b");
    expect_name(names_strip_proto("noext"), "noext");
    expect_name(names_guard("a/b-c.proto"), "SLUICE_GEN_a_2fb_2dc_2eproto__INCLUDED");
}

/* ---- the plugin on hand-made requests ----------------------------------------------- */

typedef Google__Protobuf__Compiler__CodeGeneratorResponse response;

/* What make_request puts in a request for "t/x.proto" (package t, message M). */
typedef struct req_spec {
    const char *const *methods; /* unary methods of service S, M -> M */
    size_t n_methods;           /* at most 8 */
    bool no_service;
    const char *input;       /* input type instead of ".t.M" */
    const char *parameter;   /* plugin parameter */
    const char *to_generate; /* instead of "t/x.proto" */
    const uint8_t *pbc_file; /* a (pb_c_file) option payload, as protoc sends it */
    size_t pbc_len;
} req_spec;

static uint8_t *make_request(const req_spec *spec, size_t *len) {
    Google__Protobuf__MethodDescriptorProto md[8], *pmd[8];
    size_t n_methods = spec->n_methods < 8 ? spec->n_methods : 8;
    for (size_t i = 0; i < n_methods; i++) {
        Google__Protobuf__MethodDescriptorProto init =
            GOOGLE__PROTOBUF__METHOD_DESCRIPTOR_PROTO__INIT;
        md[i] = init;
        md[i].name = (char *)spec->methods[i];
        md[i].input_type = (char *)(spec->input != NULL ? spec->input : ".t.M");
        md[i].output_type = (char *)".t.M";
        pmd[i] = &md[i];
    }
    Google__Protobuf__ServiceDescriptorProto svc = GOOGLE__PROTOBUF__SERVICE_DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__ServiceDescriptorProto *psvc = &svc;
    svc.name = (char *)"S";
    svc.n_method = n_methods;
    svc.method = pmd;
    Google__Protobuf__DescriptorProto msg = GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__DescriptorProto *pmsg = &msg;
    msg.name = (char *)"M";
    /* protobuf-c keeps an unknown length-delimited field with its length prefix. */
    uint8_t ext[64];
    ProtobufCMessageUnknownField uf = {.tag = 1019,
                                       .wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED,
                                       .len = spec->pbc_len + 1,
                                       .data = ext};
    ext[0] = (uint8_t)spec->pbc_len;
    if (spec->pbc_len > 0 && spec->pbc_len < sizeof(ext) - 1) {
        memcpy(ext + 1, spec->pbc_file, spec->pbc_len);
    }
    Google__Protobuf__FileOptions fopts = GOOGLE__PROTOBUF__FILE_OPTIONS__INIT;
    fopts.base.n_unknown_fields = 1;
    fopts.base.unknown_fields = &uf;
    Google__Protobuf__FileDescriptorProto file = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__FileDescriptorProto *pfile = &file;
    file.name = (char *)"t/x.proto";
    file.package = (char *)"t";
    file.n_message_type = 1;
    file.message_type = &pmsg;
    file.n_service = spec->no_service ? 0 : 1;
    file.service = &psvc;
    file.options = spec->pbc_len > 0 ? &fopts : NULL;
    Google__Protobuf__Compiler__CodeGeneratorRequest req =
        GOOGLE__PROTOBUF__COMPILER__CODE_GENERATOR_REQUEST__INIT;
    char *gen = (char *)(spec->to_generate != NULL ? spec->to_generate : "t/x.proto");
    req.n_file_to_generate = 1;
    req.file_to_generate = &gen;
    req.n_proto_file = 1;
    req.proto_file = &pfile;
    req.parameter = (char *)spec->parameter;
    *len = protobuf_c_message_get_packed_size(&req.base);
    uint8_t *buf = malloc(*len + 1);
    if (buf != NULL) {
        protobuf_c_message_pack(&req.base, buf);
    }
    return buf;
}

static response *run_bytes(const uint8_t *in, size_t len) {
    uint8_t *out = NULL;
    size_t out_len = 0;
    CU_ASSERT_EQUAL_FATAL(codegen_run(in, len, &out, &out_len), SLUICE_OK);
    response *r = google__protobuf__compiler__code_generator_response__unpack(NULL, out_len, out);
    free(out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    return r;
}

static response *run(const req_spec *spec) {
    size_t len = 0;
    uint8_t *req = make_request(spec, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(req);
    response *r = run_bytes(req, len);
    free(req);
    return r;
}

static void expect_error(response *r, const char *fragment) {
    CU_ASSERT_PTR_NOT_NULL(r->error);
    CU_ASSERT_EQUAL(r->n_file, 0);
    if (r->error != NULL && strstr(r->error, fragment) == NULL) {
        fprintf(stderr, "\n  error \"%s\" lacks \"%s\"\n", r->error, fragment);
        CU_FAIL("error text");
    }
    google__protobuf__compiler__code_generator_response__free_unpacked(r, NULL);
}

static const char *const ping[] = {"Ping"};

static void test_plugin_generates(void) {
    const char *methods[] = {"Ping", "GetHTTP2Status"};
    response *r = run(&(req_spec){.methods = methods, .n_methods = 2});
    CU_ASSERT_PTR_NULL(r->error);
    CU_ASSERT_EQUAL_FATAL(r->n_file, 2);
    CU_ASSERT_STRING_EQUAL(r->file[0]->name, "t/x.sluice.h");
    CU_ASSERT_STRING_EQUAL(r->file[1]->name, "t/x.sluice.c");
    const char *h = r->file[0]->content, *c = r->file[1]->content;
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "#include \"t/x.pb-c.h\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "int t__s__get_http2_status__rpc("));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "extern const sluice_rpc_method t__s__rpc_methods[2];"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c, "#include \"t/x.sluice.h\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(c, ".path = \"/t.S/GetHTTP2Status\""));
    CU_ASSERT_TRUE(r->has_supported_features);
    google__protobuf__compiler__code_generator_response__free_unpacked(r, NULL);
}

static void test_plugin_generates_nothing(void) {
    response *r = run(&(req_spec){.no_service = true});
    CU_ASSERT_PTR_NULL(r->error);
    CU_ASSERT_EQUAL(r->n_file, 0);
    google__protobuf__compiler__code_generator_response__free_unpacked(r, NULL);
    static const uint8_t no_generate[] = {0x08, 0x01}; /* no_generate = true */
    r = run(&(req_spec){.methods = ping, .n_methods = 1, .pbc_file = no_generate, .pbc_len = 2});
    CU_ASSERT_PTR_NULL(r->error);
    CU_ASSERT_EQUAL(r->n_file, 0);
    google__protobuf__compiler__code_generator_response__free_unpacked(r, NULL);
}

static void test_plugin_c_package(void) {
    static const uint8_t c_package[] = {0x32, 0x04, 'c', '_', 'p', 'k'}; /* c_package "c_pk" */
    response *r = run(&(req_spec){
        .methods = ping, .n_methods = 1, .pbc_file = c_package, .pbc_len = sizeof(c_package)});
    CU_ASSERT_PTR_NULL(r->error);
    CU_ASSERT_EQUAL_FATAL(r->n_file, 2);
    const char *h = r->file[0]->content, *c = r->file[1]->content;
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "int c_pk__s__ping__rpc(sluice_rpc_channel *ch,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "const CPk__M *req,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c, ".input = &c_pk__m__descriptor,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c, ".path = \"/t.S/Ping\""));
    google__protobuf__compiler__code_generator_response__free_unpacked(r, NULL);
    static const uint8_t broken[] = {0x32, 0x09, 'x'}; /* string longer than its data */
    expect_error(
        run(&(req_spec){
            .methods = ping, .n_methods = 1, .pbc_file = broken, .pbc_len = sizeof(broken)}),
        "(pb_c_file)");
}

static void test_plugin_errors(void) {
    const char *twins[] = {"GetFoo", "get_foo"};
    expect_error(run(&(req_spec){.methods = twins, .n_methods = 2}),
                 "method GetFoo of t.S and method get_foo of t.S");
    const char *table[] = {"RpcMethods"};
    expect_error(run(&(req_spec){.methods = table, .n_methods = 1}),
                 "C name t__s__rpc_methods twice");
    const char *init[] = {"Init"};
    expect_error(run(&(req_spec){.methods = init, .n_methods = 1}), "C name t__s__init twice");
    expect_error(run(&(req_spec){.methods = ping, .n_methods = 1, .input = ".t.Missing"}),
                 ".t.Missing");
    expect_error(run(&(req_spec){.methods = ping, .n_methods = 1, .input = "t.M"}), "t.M");
    expect_error(run(&(req_spec){.methods = ping, .n_methods = 1, .parameter = "lite=true"}),
                 "lite=true");
    expect_error(run(&(req_spec){.methods = ping, .n_methods = 1, .to_generate = "t/o.proto"}),
                 "t/o.proto");
    const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
    expect_error(run_bytes(garbage, sizeof(garbage)), "cannot parse");
}

/* The real executable: stdin to stdout, errors in the response, exit status 0. */
static response *run_plugin(const uint8_t *in, size_t len) {
    char in_path[] = "/tmp/test_codegen_inXXXXXX";
    char out_path[] = "/tmp/test_codegen_outXXXXXX";
    int in_fd = mkstemp(in_path), out_fd = mkstemp(out_path);
    CU_ASSERT_FATAL(in_fd >= 0 && out_fd >= 0);
    CU_ASSERT_EQUAL(write(in_fd, in, len), (ssize_t)len);
    close(in_fd);
    close(out_fd);
    char cmd[8192];
    snprintf(cmd, sizeof(cmd), "'%s' < '%s' > '%s'", plugin_path, in_path, out_path);
    CU_ASSERT_EQUAL(system(cmd), 0);
    static uint8_t buf[1 << 16];
    FILE *f = fopen(out_path, "rb");
    size_t n = f != NULL ? fread(buf, 1, sizeof(buf), f) : 0;
    if (f != NULL) {
        fclose(f);
    }
    unlink(in_path);
    unlink(out_path);
    response *r = google__protobuf__compiler__code_generator_response__unpack(NULL, n, buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    return r;
}

static void test_plugin_executable(void) {
    if (plugin_path == NULL) {
        CU_FAIL("no plugin path given");
        return;
    }
    const uint8_t garbage[] = {0x0a, 0xff, 0xff, 0xff};
    expect_error(run_plugin(garbage, sizeof(garbage)), "cannot parse");
    response *r = run_plugin(garbage, 0); /* an empty request asks for nothing */
    CU_ASSERT_PTR_NULL(r->error);
    CU_ASSERT_EQUAL(r->n_file, 0);
    google__protobuf__compiler__code_generator_response__free_unpacked(r, NULL);
    size_t len = 0;
    uint8_t *req = make_request(&(req_spec){.methods = ping, .n_methods = 1}, &len);
    r = run_plugin(req, len);
    free(req);
    CU_ASSERT_PTR_NULL(r->error);
    CU_ASSERT_EQUAL(r->n_file, 2);
    google__protobuf__compiler__code_generator_response__free_unpacked(r, NULL);
}

int main(int argc, char **argv) {
    plugin_path = argc > 1 ? argv[1] : NULL;
    if (CU_initialize_registry() != CUE_SUCCESS) {
        return 1;
    }
    CU_pSuite tables = CU_add_suite("generated_tables", NULL, NULL);
    CU_add_test(tables, "sluice_test.proto table", test_test_service_table);
    CU_add_test(tables, "sluice_test.proto stub types", test_test_service_stub_types);
    CU_add_test(tables, "sluice.proto table", test_sluice_table);
    CU_add_test(tables, "health.proto table", test_health_table);
    CU_add_test(tables, "sluice_rpc_service_find hits and misses", test_service_find);
    CU_pSuite odd = CU_add_suite("odd_protos", NULL, NULL);
    CU_add_test(odd, "odd tables", test_odd_tables);
    CU_add_test(odd, "odd names match protobuf-c", test_odd_names_match_protobuf_c);
    CU_add_test(odd, "odd comments are defused", test_odd_comments);
    CU_pSuite plugin = CU_add_suite("plugin", NULL, NULL);
    CU_add_test(plugin, "protobuf-c naming rules", test_names);
    CU_add_test(plugin, "generates both files", test_plugin_generates);
    CU_add_test(plugin, "nothing without services or with no_generate",
                test_plugin_generates_nothing);
    CU_add_test(plugin, "protobuf-c's c_package option", test_plugin_c_package);
    CU_add_test(plugin, "errors go in the response", test_plugin_errors);
    CU_add_test(plugin, "the executable", test_plugin_executable);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures ? 1 : 0;
}
