/*
 * test_transport_security.c - bearer-token auth and TLS on the server transport.
 *
 * The token table (auth.h) directly; then servers with a tokens file (missing, invalid
 * and valid tokens, the tenant visible to the handler, health exempt) and with TLS from a
 * self-signed certificate made at test time by the openssl CLI in a temporary directory
 * (the client verifies it with tls_root_certs_pem and tls_server_name).
 */
#include "unit/test_util.h"
#include "tests/fake_provider/fake_test_util.h"
#include "tests/integration/testsvc.h"

#include "client/rpc/rpc.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/health/v1/health.sluice.h"
#include "server/transport/auth.h"
#include "sluice/status.h"
#include "sluice_test.pb-c.h"
#include "sluice_test.sluice.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SVC(x) sluice__test__v1__test_service__##x

typedef Sluice__Test__V1__EchoRequest echo_req;
typedef Sluice__Test__V1__EchoResponse echo_resp;

static char g_dir[64];

static const char TOKENS[] = "# tenant token\n"
                             "alice tok-alice-0123456789\n"
                             "\n"
                             "bob   tok-bob-9876543210  \r\n";

static int suite_init(void) {
    fake_make_tmpdir(g_dir, sizeof g_dir);
    return 0;
}

static int suite_clean(void) {
    fake_rmdir_r(g_dir);
    return 0;
}

/* Echo over `ch`; returns the gRPC code, copying tenant/details when given. */
static int echo(sluice_rpc_channel *ch, char *tenant, size_t tlen, char *details, size_t dlen) {
    echo_req req;
    sluice__test__v1__echo_request__init(&req);
    req.text = "hi";
    echo_resp *resp = NULL;
    sluice_rpc_status st = {0};
    SVC(echo__rpc)(ch, &req, &resp, NULL, &st);
    if (tenant)
        snprintf(tenant, tlen, "%s", resp ? resp->tenant : "");
    if (details)
        snprintf(details, dlen, "%s", st.details);
    if (resp)
        sluice__test__v1__echo_response__free_unpacked(resp, NULL);
    return st.code;
}

static sluice_rpc_channel *channel(const char *target, const sluice_rpc_channel_opts *o) {
    sluice_rpc_channel *ch = NULL;
    return sluice_rpc_channel_new(target, o, &ch) == SLUICE_OK ? ch : NULL;
}

/* ---- the token table ------------------------------------------------------------------- */

static void test_auth_table(void) {
    char err[128];
    auth *a = NULL;
    CU_ASSERT_EQUAL_FATAL(auth_parse(TOKENS, strlen(TOKENS), &a, err, sizeof err), SLUICE_OK);
    CU_ASSERT_EQUAL(auth_count(a), 2);
    const char *why = NULL;
    const char *v = "Bearer tok-bob-9876543210";
    CU_ASSERT_STRING_EQUAL(auth_check(a, v, strlen(v), &why), "bob");
    v = "bearer   tok-alice-0123456789 ";
    CU_ASSERT_STRING_EQUAL(auth_check(a, v, strlen(v), &why), "alice");
    v = "Bearer tok-alice-012345678"; /* a prefix of a real token */
    CU_ASSERT_PTR_NULL(auth_check(a, v, strlen(v), &why));
    CU_ASSERT_STRING_EQUAL(why, "invalid bearer token");
    v = "Basic dXNlcjpwYXNz";
    CU_ASSERT_PTR_NULL(auth_check(a, v, strlen(v), &why));
    CU_ASSERT_STRING_EQUAL(why, "missing bearer token");
    CU_ASSERT_PTR_NULL(auth_check(a, NULL, 0, &why));
    CU_ASSERT_STRING_EQUAL(why, "missing bearer token");
    v = "Bearer ";
    CU_ASSERT_PTR_NULL(auth_check(a, v, strlen(v), &why));
    CU_ASSERT_STRING_EQUAL(why, "missing bearer token");
    auth_free(a);

    const char *bad[] = {"alice\n", "alice tok extra\n", "a t1\nb t1\n", "# only comments\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        a = NULL;
        CU_ASSERT_EQUAL(auth_parse(bad[i], strlen(bad[i]), &a, err, sizeof err), SLUICE_EINVAL);
        CU_ASSERT_PTR_NULL(a);
    }
}

static void test_bad_configuration(void) {
    char err[256];
    transport *t = NULL;
    char *missing = fake_write_file(g_dir, "placeholder", "x");
    transport_config cfg = {.listen_addr = "127.0.0.1:0", .tokens_file = "/nonexistent/tokens"};
    CU_ASSERT_EQUAL(transport_new(&cfg, &t, err, sizeof err), SLUICE_EIO);
    cfg = (transport_config){.listen_addr = "127.0.0.1:0", .tls_cert_file = missing};
    CU_ASSERT_EQUAL(transport_new(&cfg, &t, err, sizeof err), SLUICE_EINVAL);
    cfg = (transport_config){.listen_addr = "127.0.0.1:0",
                             .tls_cert_file = "/nonexistent/cert.pem",
                             .tls_key_file = "/nonexistent/key.pem"};
    CU_ASSERT_EQUAL(transport_new(&cfg, &t, err, sizeof err), SLUICE_EIO);
    cfg = (transport_config){.listen_addr = NULL};
    CU_ASSERT_EQUAL(transport_new(&cfg, &t, err, sizeof err), SLUICE_EINVAL);
    CU_ASSERT_PTR_NULL(t);
    free(missing);
}

/* ---- auth on and off ------------------------------------------------------------------- */

static void test_auth_on(void) {
    char *tokens = fake_write_file(g_dir, "tokens", TOKENS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tokens);
    transport_config cfg = {.tokens_file = tokens};
    testsvc_server srv;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(testsvc_server_start(&cfg, &srv, err, sizeof err), SLUICE_OK);

    char tenant[64], details[600];
    sluice_rpc_channel *none = channel(srv.target, NULL);
    CU_ASSERT_EQUAL(echo(none, NULL, 0, details, sizeof details), GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_STRING_EQUAL(details, "missing bearer token");

    sluice_rpc_channel_opts o = {.bearer_token = "tok-nobody"};
    sluice_rpc_channel *wrong = channel(srv.target, &o);
    CU_ASSERT_EQUAL(echo(wrong, NULL, 0, details, sizeof details), GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_STRING_EQUAL(details, "invalid bearer token");

    o.bearer_token = "tok-bob-9876543210";
    sluice_rpc_channel *bob = channel(srv.target, &o);
    CU_ASSERT_EQUAL(echo(bob, tenant, sizeof tenant, NULL, 0), GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(tenant, "bob");
    o.bearer_token = "tok-alice-0123456789";
    sluice_rpc_channel *alice = channel(srv.target, &o);
    CU_ASSERT_EQUAL(echo(alice, tenant, sizeof tenant, NULL, 0), GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(tenant, "alice");

    /* health is exempt */
    Grpc__Health__V1__HealthCheckRequest hreq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    Grpc__Health__V1__HealthCheckResponse *hresp = NULL;
    sluice_rpc_status st;
    CU_ASSERT_EQUAL(grpc__health__v1__health__check__rpc(none, &hreq, &hresp, NULL, &st),
                    SLUICE_OK);
    CU_ASSERT_EQUAL(hresp ? (int)hresp->status : -1,
                    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    if (hresp)
        grpc__health__v1__health_check_response__free_unpacked(hresp, NULL);

    sluice_rpc_channel_free(none);
    sluice_rpc_channel_free(wrong);
    sluice_rpc_channel_free(bob);
    sluice_rpc_channel_free(alice);
    testsvc_server_stop(&srv, 1000);
    free(tokens);
}

static void test_auth_off_ignores_tokens(void) {
    testsvc_server srv;
    char err[256], tenant[64];
    CU_ASSERT_EQUAL_FATAL(testsvc_server_start(NULL, &srv, err, sizeof err), SLUICE_OK);
    sluice_rpc_channel_opts o = {.bearer_token = "anything"};
    sluice_rpc_channel *ch = channel(srv.target, &o);
    CU_ASSERT_EQUAL(echo(ch, tenant, sizeof tenant, NULL, 0), GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(tenant, "");
    sluice_rpc_channel_free(ch);
    testsvc_server_stop(&srv, 1000);
}

/* ---- TLS ------------------------------------------------------------------------------- */

static void test_tls(void) {
    CU_ASSERT_EQUAL_FATAL(fake_make_cert(g_dir, "server"), 0);
    char cert[512], key[512];
    snprintf(cert, sizeof cert, "%s/server.crt", g_dir);
    snprintf(key, sizeof key, "%s/server.key", g_dir);
    char *pem = fake_read_file(cert);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pem);

    transport_config cfg = {.tls_cert_file = cert, .tls_key_file = key};
    testsvc_server srv;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(testsvc_server_start(&cfg, &srv, err, sizeof err), SLUICE_OK);

    sluice_rpc_channel_opts o = {
        .use_tls = true, .tls_root_certs_pem = pem, .tls_server_name = "localhost"};
    sluice_rpc_channel *tls = channel(srv.target, &o);
    CU_ASSERT_EQUAL(echo(tls, NULL, 0, NULL, 0), GRPC_STATUS_OK);

    /* a plaintext client cannot talk to it, nor one that trusts another name */
    sluice_rpc_channel *plain = channel(srv.target, NULL);
    CU_ASSERT_EQUAL(echo(plain, NULL, 0, NULL, 0), GRPC_STATUS_UNAVAILABLE);
    o.tls_server_name = "not-localhost.example";
    sluice_rpc_channel *wrong_name = channel(srv.target, &o);
    CU_ASSERT_EQUAL(echo(wrong_name, NULL, 0, NULL, 0), GRPC_STATUS_UNAVAILABLE);

    sluice_rpc_channel_free(tls);
    sluice_rpc_channel_free(plain);
    sluice_rpc_channel_free(wrong_name);
    testsvc_server_stop(&srv, 1000);
    free(pem);
}

static void test_tls_bad_material_fails_start(void) {
    char *junk = fake_write_file(g_dir, "junk.pem", "-----BEGIN CERTIFICATE-----\nxx\n");
    transport_config cfg = {.tls_cert_file = junk, .tls_key_file = junk};
    testsvc_server srv;
    char err[256];
    CU_ASSERT_EQUAL(testsvc_server_start(&cfg, &srv, err, sizeof err), SLUICE_EIO);
    free(junk);
}

int main(void) {
    static const test_case tests[] = {
        {"token table", test_auth_table},
        {"bad configuration is refused", test_bad_configuration},
        {"auth on: missing, invalid, valid; tenant; health exempt", test_auth_on},
        {"auth off: tenant is empty", test_auth_off_ignores_tokens},
        {"TLS with a self-signed certificate", test_tls},
        {"bad TLS material fails transport_start", test_tls_bad_material_fails_start},
        {NULL, NULL},
    };
    return test_run_suite_with("transport security", suite_init, suite_clean, tests);
}
