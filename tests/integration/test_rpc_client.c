/*
 * test_rpc_client.c - the client call runtime (client/rpc) and the generated stubs of
 * sluice_test.proto against a real, independent gRPC server: Python grpcio
 * (tests/interop/python/test_server.py), started here on 127.0.0.1:0 and stopped at the end.
 *
 * argv[1]: the protoc the server uses to generate its message classes.
 * SLUICE_SOURCE_DIR (set by ctest): where the script and the .proto are.
 *
 * Assertions are about behaviour only; delays exist to create overlap (calls in flight,
 * a read pending while writing), never to measure speed.
 */
#include "unit/test_util.h"
#include "client/rpc/rpc.h"
#include "sluice_test.sluice.h"
#include "tests/fake_provider/fake_test_util.h"

#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef Sluice__Test__V1__EchoRequest echo_req;
typedef Sluice__Test__V1__EchoResponse echo_resp;

static const char *protoc_path = "protoc";

/* How long a wait for something that should come at once may take before the test fails
 * (a liveness bound, not a speed check). */
#define LIVENESS_MS 30000

/* A running test_server.py. */
typedef struct test_server {
    pid_t pid;
    int stdin_fd; /* closing it stops the server */
    char target[64];
} test_server;

static test_server plain = {.pid = -1, .stdin_fd = -1};
static test_server tls = {.pid = -1, .stdin_fd = -1};
static sluice_rpc_channel *chan; /* to `plain` */

/* TLS material made with openssl for "sluice.test", plus an unrelated certificate. */
static char tls_dir[] = "/tmp/sluice-rpc-tls-XXXXXX";
static char *tls_cert_pem, *other_cert_pem;

/* ---- the Python servers ------------------------------------------------------------- */

static void exec_server(int in_fd, int out_fd, const char *cert, const char *key) {
    const char *src = getenv("SLUICE_SOURCE_DIR");
    char script[4096], proto[4096];
    snprintf(script, sizeof(script), "%s/tests/interop/python/test_server.py", src ? src : ".");
    snprintf(proto, sizeof(proto), "%s/tests/proto/sluice_test.proto", src ? src : ".");
    dup2(in_fd, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    if (cert != NULL) {
        execl("/usr/bin/python3", "python3", script, "--proto", proto, "--protoc", protoc_path,
              "--tls-cert", cert, "--tls-key", key, (char *)NULL);
    } else {
        execl("/usr/bin/python3", "python3", script, "--proto", proto, "--protoc", protoc_path,
              (char *)NULL);
    }
    _exit(127);
}

/* Starts a server (before any gRPC use, so fork is safe) and reads its port. */
static int server_start(test_server *s, const char *cert, const char *key) {
    int in[2], out[2];
    /* Close-on-exec: a later server must not inherit this one's stdin, or its EOF never
     * comes (dup2 clears the flag on the child's 0 and 1). */
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
        return -1;
    }
    s->pid = fork();
    if (s->pid == 0) {
        close(in[1]);
        close(out[0]);
        exec_server(in[0], out[1], cert, key);
    }
    close(in[0]);
    close(out[1]);
    s->stdin_fd = in[1];
    FILE *f = fdopen(out[0], "r");
    char line[32] = "";
    bool got = f != NULL && fgets(line, sizeof(line), f) != NULL;
    if (f != NULL) {
        fclose(f);
    }
    long port = got ? strtol(line, NULL, 10) : 0;
    if (s->pid < 0 || port <= 0 || port > 65535) {
        return -1;
    }
    snprintf(s->target, sizeof(s->target), "127.0.0.1:%ld", port);
    return 0;
}

static void server_stop(test_server *s) {
    if (s->stdin_fd >= 0) {
        close(s->stdin_fd);
        s->stdin_fd = -1;
    }
    for (int i = 0; s->pid > 0 && i < 100; i++) { /* it exits at stdin EOF; 5 s, then kill */
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            s->pid = -1;
        } else {
            nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
        }
    }
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = -1;
    }
}

static int start_tls_server(void) {
    if (mkdtemp(tls_dir) == NULL || fake_make_cert_for(tls_dir, "server", "sluice.test") != 0 ||
        fake_make_cert_for(tls_dir, "other", "other.test") != 0) {
        return -1;
    }
    char cert[256], key[256], other[256];
    snprintf(cert, sizeof(cert), "%s/server.crt", tls_dir);
    snprintf(key, sizeof(key), "%s/server.key", tls_dir);
    snprintf(other, sizeof(other), "%s/other.crt", tls_dir);
    tls_cert_pem = fake_read_file(cert);
    other_cert_pem = fake_read_file(other);
    if (tls_cert_pem == NULL || other_cert_pem == NULL) {
        return -1;
    }
    return server_start(&tls, cert, key);
}

static void remove_tls_dir(void) {
    fake_rmdir_r(tls_dir);
    free(tls_cert_pem);
    free(other_cert_pem);
}

static int suite_init(void) {
    if (server_start(&plain, NULL, NULL) != 0 || start_tls_server() != 0) {
        fprintf(stderr, "test_rpc_client: cannot start the Python test servers\n");
        return -1;
    }
    return sluice_rpc_channel_new(plain.target, NULL, &chan) == SLUICE_OK ? 0 : -1;
}

static int suite_cleanup(void) {
    sluice_rpc_channel_free(chan);
    chan = NULL;
    server_stop(&plain);
    server_stop(&tls);
    remove_tls_dir();
    return 0;
}

static echo_req make_req(const char *text, int64_t number) {
    echo_req req = SLUICE__TEST__V1__ECHO_REQUEST__INIT;
    req.text = (char *)text;
    req.number = number;
    return req;
}

/* Starts a Count call for req on chan; stops the test when it cannot start. */
static sluice_rpc_call *count_start(const echo_req *req, const sluice_rpc_call_opts *opts) {
    sluice_rpc_call *call = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice__test__v1__test_service__count__start(chan, req, opts, &call),
                          SLUICE_OK);
    return call;
}

/* Reads one Count message and frees it; returns what the read returned. */
static int count_read_one(sluice_rpc_call *call) {
    echo_resp *msg = NULL;
    int rc = sluice__test__v1__test_service__count__read(call, &msg);
    if (msg != NULL) {
        sluice__test__v1__echo_response__free_unpacked(msg, NULL);
    }
    return rc;
}

/* Reads a Count stream until a read fails; returns how many messages came. */
static int count_drain(sluice_rpc_call *call) {
    int n = 0;
    while (count_read_one(call) == SLUICE_OK) {
        n++;
    }
    return n;
}

/* Starts a Chat call on chan; stops the test when it cannot start. */
static sluice_rpc_call *chat_start(void) {
    sluice_rpc_call *call = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice__test__v1__test_service__chat__start(chan, NULL, &call),
                          SLUICE_OK);
    return call;
}

/* Finishes call, checking its result and gRPC status code; returns the status. */
static sluice_rpc_status finish_expect(sluice_rpc_call *call, int want_rc, int want_code) {
    sluice_rpc_status st;
    CU_ASSERT_EQUAL(sluice_rpc_call_finish(call, NULL, &st), want_rc);
    CU_ASSERT_EQUAL(st.code, want_code);
    return st;
}

/* ---- unary -------------------------------------------------------------------------- */

static void test_unary_ok(void) {
    echo_req req = make_req("hello", 42);
    echo_resp *resp = NULL;
    sluice_rpc_status st;
    CU_ASSERT_EQUAL(sluice__test__v1__test_service__echo__rpc(chan, &req, &resp, NULL, &st),
                    SLUICE_OK);
    CU_ASSERT_EQUAL(st.code, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    CU_ASSERT_STRING_EQUAL(resp->text, "hello");
    CU_ASSERT_EQUAL(resp->number, 42);
    CU_ASSERT_STRING_EQUAL(resp->tenant, ""); /* no token on this channel */
    sluice__test__v1__echo_response__free_unpacked(resp, NULL);
}

static void expect_echo_error(int fail_code, const char *text, int want_rc) {
    echo_req req = make_req(text, 1);
    req.fail_code = fail_code;
    echo_resp *resp = (echo_resp *)&req; /* must be reset to NULL */
    sluice_rpc_status st;
    CU_ASSERT_EQUAL(sluice__test__v1__test_service__echo__rpc(chan, &req, &resp, NULL, &st),
                    want_rc);
    CU_ASSERT_PTR_NULL(resp);
    CU_ASSERT_EQUAL(st.code, fail_code);
    CU_ASSERT_STRING_EQUAL(st.details, text);
}

static void test_unary_error_status(void) {
    expect_echo_error(5, "no such task: t42", SLUICE_ENOTFOUND);
    expect_echo_error(3, "field models is empty", SLUICE_EINVAL);
    expect_echo_error(16, "bad token", SLUICE_EAUTH);
    expect_echo_error(13, "boom", SLUICE_EINTERNAL);
}

static void test_unary_details_truncated(void) {
    char text[1201];
    for (int i = 0; i < 600; i++) { /* "é" is two bytes: 511 would split one */
        memcpy(text + 2 * i, "\xc3\xa9", 2);
    }
    text[1200] = '\0';
    echo_req req = make_req(text, 0);
    req.fail_code = 9;
    echo_resp *resp = NULL;
    sluice_rpc_status st;
    CU_ASSERT_EQUAL(sluice__test__v1__test_service__echo__rpc(chan, &req, &resp, NULL, &st),
                    SLUICE_EINVAL);
    CU_ASSERT_EQUAL(strlen(st.details), 510);
    CU_ASSERT_EQUAL(memcmp(st.details, text, 510), 0);
}

static void test_unary_deadline(void) {
    echo_req req = make_req("slow", 0);
    req.delay_ms = 10000;
    sluice_rpc_call_opts opts = {.timeout_ms = 200};
    echo_resp *resp = NULL;
    sluice_rpc_status st;
    CU_ASSERT_EQUAL(sluice__test__v1__test_service__echo__rpc(chan, &req, &resp, &opts, &st),
                    SLUICE_ETIMEDOUT);
    CU_ASSERT_EQUAL(st.code, 4); /* DEADLINE_EXCEEDED */
    CU_ASSERT_PTR_NULL(resp);
}

static void test_unimplemented(void) {
    sluice_rpc_method nope = sluice__test__v1__test_service__echo__method;
    nope.path = "/sluice.test.v1.TestService/Nope";
    echo_req req = make_req("x", 0);
    ProtobufCMessage *resp = NULL;
    sluice_rpc_status st;
    CU_ASSERT_EQUAL(sluice_rpc_unary(chan, &nope, &req.base, &resp, NULL, &st),
                    SLUICE_EUNIMPLEMENTED);
    CU_ASSERT_EQUAL(st.code, 12);
    nope.path = "/no.such.Service/Echo";
    CU_ASSERT_EQUAL(sluice_rpc_unary(chan, &nope, &req.base, &resp, NULL, &st),
                    SLUICE_EUNIMPLEMENTED);
    CU_ASSERT_PTR_NULL(resp);
}

/* A loopback port nothing listens on: bound, read back, closed. */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        port = ntohs(a.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

static void test_no_server(void) {
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", free_port());
    sluice_rpc_channel *ch = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_rpc_channel_new(target, NULL, &ch), SLUICE_OK);
    echo_req req = make_req("anyone?", 0);
    echo_resp *resp = NULL;
    sluice_rpc_status st;
    CU_ASSERT_EQUAL(sluice__test__v1__test_service__echo__rpc(ch, &req, &resp, NULL, &st),
                    SLUICE_EUNAVAILABLE);
    CU_ASSERT_EQUAL(st.code, 14);
    sluice_rpc_call *call = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice__test__v1__test_service__count__start(ch, &req, NULL, &call),
                          SLUICE_OK);
    CU_ASSERT_EQUAL(sluice__test__v1__test_service__count__read(call, &resp), SLUICE_EEOF);
    CU_ASSERT_EQUAL(sluice_rpc_call_finish(call, NULL, &st), SLUICE_EUNAVAILABLE);
    sluice_rpc_call_free(call);
    sluice_rpc_channel_free(ch);
}

static void test_bearer_token(void) {
    sluice_rpc_channel_opts opts = {.bearer_token = "s3cret"};
    sluice_rpc_channel *ch = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_rpc_channel_new(plain.target, &opts, &ch), SLUICE_OK);
    echo_req req = make_req("who am i", 0);
    echo_resp *resp = NULL;
    CU_ASSERT_EQUAL(sluice__test__v1__test_service__echo__rpc(ch, &req, &resp, NULL, NULL),
                    SLUICE_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    CU_ASSERT_STRING_EQUAL(resp->tenant, "Bearer s3cret");
    sluice__test__v1__echo_response__free_unpacked(resp, NULL);
    sluice_rpc_channel_free(ch);
    opts.bearer_token = "two\r\nlines"; /* not a legal header value */
    CU_ASSERT_EQUAL(sluice_rpc_channel_new(plain.target, &opts, &ch), SLUICE_EINVAL);
    CU_ASSERT_PTR_NULL(ch);
}

static void test_max_message(void) {
    sluice_rpc_channel_opts opts = {.max_message_bytes = 1024};
    sluice_rpc_channel *ch = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_rpc_channel_new(plain.target, &opts, &ch), SLUICE_OK);
    static uint8_t big[4096];
    echo_req req = make_req("big", 0);
    req.payload.data = big;
    req.payload.len = sizeof(big);
    echo_resp *resp = NULL;
    sluice_rpc_status st;
    /* Too big to send. */
    CU_ASSERT_EQUAL(sluice__test__v1__test_service__echo__rpc(ch, &req, &resp, NULL, &st),
                    SLUICE_ELIMIT);
    CU_ASSERT_EQUAL(st.code, 8); /* RESOURCE_EXHAUSTED */
    /* Small request, answer too big to receive. */
    req.payload.len = 0;
    req.count = 4096;
    CU_ASSERT_EQUAL(sluice__test__v1__test_service__echo__rpc(ch, &req, &resp, NULL, &st),
                    SLUICE_ELIMIT);
    CU_ASSERT_EQUAL(st.code, 8);
    CU_ASSERT_PTR_NULL(resp);
    sluice_rpc_channel_free(ch);
}

/* A TLS call to the TLS server with these channel options; returns the sluice status. */
static int tls_echo(const sluice_rpc_channel_opts *opts, const char *target) {
    sluice_rpc_channel *ch = NULL;
    int rc = sluice_rpc_channel_new(target, opts, &ch);
    if (rc != SLUICE_OK) {
        return rc;
    }
    echo_req req = make_req("secret", 7);
    echo_resp *resp = NULL;
    rc = sluice__test__v1__test_service__echo__rpc(ch, &req, &resp, NULL, NULL);
    if (resp != NULL) {
        CU_ASSERT_EQUAL(resp->number, 7);
        sluice__test__v1__echo_response__free_unpacked(resp, NULL);
    }
    sluice_rpc_channel_free(ch);
    return rc;
}

static void test_tls(void) {
    sluice_rpc_channel_opts opts = {
        .use_tls = true, .tls_root_certs_pem = tls_cert_pem, .tls_server_name = "sluice.test"};
    CU_ASSERT_EQUAL(tls_echo(&opts, tls.target), SLUICE_OK);
    opts.tls_server_name = "other.test"; /* the certificate does not name it */
    CU_ASSERT_EQUAL(tls_echo(&opts, tls.target), SLUICE_EUNAVAILABLE);
    opts.tls_server_name = "sluice.test";
    opts.tls_root_certs_pem = other_cert_pem; /* not the server's issuer */
    CU_ASSERT_EQUAL(tls_echo(&opts, tls.target), SLUICE_EUNAVAILABLE);
    sluice_rpc_channel_opts plaintext = {.use_tls = false};
    CU_ASSERT_EQUAL(tls_echo(&plaintext, tls.target), SLUICE_EUNAVAILABLE);
    opts.tls_root_certs_pem = tls_cert_pem; /* TLS to a plaintext server */
    CU_ASSERT_EQUAL(tls_echo(&opts, plain.target), SLUICE_EUNAVAILABLE);
}

/* ---- async -------------------------------------------------------------------------- */

static void test_async_64(void) {
    enum { N = 64 };
    int tags[N];
    bool seen[N] = {false};
    sluice_rpc_async *a = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_rpc_async_new(&a), SLUICE_OK);
    for (int i = 0; i < N; i++) {
        tags[i] = i;
        echo_req req = make_req("async", i);
        req.delay_ms = 100; /* so that they are all in flight together */
        req.fail_code = i % 16 == 15 ? 5 : 0;
        CU_ASSERT_EQUAL(sluice__test__v1__test_service__echo__async(a, chan, &req, NULL, &tags[i]),
                        SLUICE_OK);
    }
    CU_ASSERT_EQUAL(sluice_rpc_async_in_flight(a), N);
    for (int done = 0; done < N; done++) {
        void *tag = NULL;
        ProtobufCMessage *m = NULL;
        sluice_rpc_status st;
        CU_ASSERT_EQUAL_FATAL(sluice_rpc_async_next(a, LIVENESS_MS, &tag, &m, &st), SLUICE_OK);
        int i = *(int *)tag;
        CU_ASSERT_FALSE(seen[i]);
        seen[i] = true;
        if (i % 16 == 15) {
            CU_ASSERT_EQUAL(st.code, 5);
            CU_ASSERT_PTR_NULL(m);
            continue;
        }
        CU_ASSERT_EQUAL(st.code, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        CU_ASSERT_EQUAL(((echo_resp *)m)->number, i);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    CU_ASSERT_EQUAL(sluice_rpc_async_in_flight(a), 0);
    void *tag;
    ProtobufCMessage *m;
    CU_ASSERT_EQUAL(sluice_rpc_async_next(a, 0, &tag, &m, NULL), SLUICE_EINVAL);
    sluice_rpc_async_free(a);
}

static void test_async_timeout_and_free_in_flight(void) {
    sluice_rpc_async *a = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_rpc_async_new(&a), SLUICE_OK);
    for (int i = 0; i < 8; i++) {
        echo_req req = make_req("never collected", i);
        req.delay_ms = 10000;
        CU_ASSERT_EQUAL(sluice__test__v1__test_service__echo__async(a, chan, &req, NULL, NULL),
                        SLUICE_OK);
    }
    void *tag;
    ProtobufCMessage *m;
    CU_ASSERT_EQUAL(sluice_rpc_async_next(a, 0, &tag, &m, NULL), SLUICE_ETIMEDOUT);
    sluice_rpc_async_free(a); /* cancels and drains the 8 calls */
}

/* ---- streaming ---------------------------------------------------------------------- */

static void test_server_stream_1000(void) {
    echo_req req = make_req("n", 0);
    req.count = 1000;
    sluice_rpc_call *call = count_start(&req, NULL);
    int n = 0;
    echo_resp *msg = NULL;
    int rc;
    while ((rc = sluice__test__v1__test_service__count__read(call, &msg)) == SLUICE_OK) {
        CU_ASSERT_EQUAL(msg->number, n);
        CU_ASSERT_STRING_EQUAL(msg->text, "n");
        n++;
        sluice__test__v1__echo_response__free_unpacked(msg, NULL);
    }
    CU_ASSERT_EQUAL(rc, SLUICE_EEOF);
    CU_ASSERT_PTR_NULL(msg);
    CU_ASSERT_EQUAL(n, 1000);
    CU_ASSERT_EQUAL(sluice__test__v1__test_service__count__read(call, &msg), SLUICE_EEOF);
    finish_expect(call, SLUICE_OK, 0);
    finish_expect(call, SLUICE_OK, 0); /* again: same */
    sluice_rpc_call_free(call);
}

static void test_server_stream_error_after_messages(void) {
    echo_req req = make_req("quota gone", 0);
    req.count = 5;
    req.fail_code = 9; /* FAILED_PRECONDITION */
    sluice_rpc_call *call = count_start(&req, NULL);
    CU_ASSERT(count_drain(call) <= 5);
    sluice_rpc_status st = finish_expect(call, SLUICE_EINVAL, 9);
    CU_ASSERT_STRING_EQUAL(st.details, "quota gone");
    sluice_rpc_call_free(call);
}

static void test_finish_discards_unread(void) {
    echo_req req = make_req("rest", 0);
    req.count = 50;
    sluice_rpc_call *call = count_start(&req, NULL);
    CU_ASSERT_EQUAL(count_read_one(call), SLUICE_OK);
    CU_ASSERT_EQUAL(sluice_rpc_call_finish(call, NULL, NULL), SLUICE_OK);
    sluice_rpc_call_free(call);
}

static void test_client_stream(void) {
    sluice_rpc_call *call = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice__test__v1__test_service__sum__start(chan, NULL, &call), SLUICE_OK);
    for (int i = 1; i <= 100; i++) {
        echo_req req = make_req("", i);
        CU_ASSERT_EQUAL(sluice__test__v1__test_service__sum__write(call, &req), SLUICE_OK);
    }
    echo_resp *resp = NULL;
    sluice_rpc_status st;
    CU_ASSERT_EQUAL(sluice__test__v1__test_service__sum__finish(call, &resp, &st), SLUICE_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    CU_ASSERT_EQUAL(resp->number, 5050);
    CU_ASSERT_STRING_EQUAL(resp->text, "100");
    sluice__test__v1__echo_response__free_unpacked(resp, NULL);
    echo_req late = make_req("", 1);
    CU_ASSERT_EQUAL(sluice__test__v1__test_service__sum__write(call, &late), SLUICE_ECLOSED);
    sluice_rpc_call_free(call);
}

/* Bidi through the event API: many large messages, so that flow control pushes back and a
 * client that did not read while writing would deadlock. */
static void test_bidi_events(void) {
    enum { N = 200, PAYLOAD = 32 * 1024 };
    static uint8_t payload[PAYLOAD];
    memset(payload, 'z', sizeof(payload));
    sluice_rpc_call *call = chat_start();
    CU_ASSERT_EQUAL_FATAL(sluice_rpc_call_start_read(call), SLUICE_OK);
    int sent = 0, received = 0;
    bool closed = false, eof = false, overlapped = false;
    while (!eof) {
        if (!sluice_rpc_call_write_pending(call) && sent < N) {
            echo_req req = make_req("chat", sent++);
            req.payload.data = payload;
            req.payload.len = sizeof(payload);
            CU_ASSERT_EQUAL_FATAL(sluice__test__v1__test_service__chat__start_write(call, &req),
                                  SLUICE_OK);
        } else if (!sluice_rpc_call_write_pending(call) && !closed) {
            CU_ASSERT_EQUAL(sluice_rpc_call_close_send(call), SLUICE_OK);
            closed = true;
        }
        overlapped |= sluice_rpc_call_write_pending(call) && sluice_rpc_call_read_pending(call);
        sluice_rpc_event ev;
        CU_ASSERT_EQUAL_FATAL(sluice_rpc_call_next(call, LIVENESS_MS, &ev), SLUICE_OK);
        CU_ASSERT_NOT_EQUAL_FATAL(ev.kind, SLUICE_RPC_EVENT_NONE); /* nothing came in time */
        if (ev.kind == SLUICE_RPC_EVENT_WRITE_DONE) {
            CU_ASSERT(ev.ok);
        } else if (ev.msg != NULL) {
            CU_ASSERT_EQUAL(((echo_resp *)ev.msg)->number, received);
            CU_ASSERT_EQUAL(((echo_resp *)ev.msg)->payload.len, PAYLOAD);
            received++;
            protobuf_c_message_free_unpacked(ev.msg, NULL);
            CU_ASSERT_EQUAL_FATAL(sluice_rpc_call_start_read(call), SLUICE_OK);
        } else {
            CU_ASSERT_EQUAL(ev.kind, SLUICE_RPC_EVENT_READ_DONE);
            CU_ASSERT(ev.ok); /* a clean end */
            eof = true;
        }
    }
    CU_ASSERT_EQUAL(received, N);
    CU_ASSERT(overlapped);
    CU_ASSERT_EQUAL(sluice_rpc_call_start_read(call), SLUICE_EEOF);
    CU_ASSERT_EQUAL(sluice_rpc_call_finish(call, NULL, NULL), SLUICE_OK);
    sluice_rpc_call_free(call);
}

/* A read started with the event API stays pending across blocking writes; whatever a
 * blocking wait sees complete for it is kept for sluice_rpc_call_next. */
static void test_bidi_mixed_styles(void) {
    sluice_rpc_call *call = chat_start();
    CU_ASSERT_EQUAL_FATAL(sluice_rpc_call_start_read(call), SLUICE_OK);
    echo_resp *msg = NULL;
    CU_ASSERT_EQUAL(sluice__test__v1__test_service__chat__read(call, &msg), SLUICE_EBUSY);
    for (int i = 0; i < 3; i++) {
        echo_req req = make_req("mixed", i);
        CU_ASSERT_EQUAL(sluice__test__v1__test_service__chat__write(call, &req), SLUICE_OK);
        /* Let the answer arrive while nobody waits, so the next wait takes it. */
        nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
    }
    CU_ASSERT_TRUE(sluice_rpc_call_read_pending(call));
    sluice_rpc_event ev;
    CU_ASSERT_EQUAL(sluice_rpc_call_next(call, LIVENESS_MS, &ev), SLUICE_OK);
    CU_ASSERT_EQUAL(ev.kind, SLUICE_RPC_EVENT_READ_DONE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev.msg);
    CU_ASSERT_EQUAL(((echo_resp *)ev.msg)->number, 0);
    protobuf_c_message_free_unpacked(ev.msg, NULL);
    CU_ASSERT_FALSE(sluice_rpc_call_read_pending(call));
    CU_ASSERT_EQUAL(sluice_rpc_call_next(call, 0, &ev), SLUICE_EINVAL); /* nothing started */
    for (int i = 1; i < 3; i++) {
        CU_ASSERT_EQUAL(sluice__test__v1__test_service__chat__read(call, &msg), SLUICE_OK);
        CU_ASSERT_EQUAL(msg->number, i);
        sluice__test__v1__echo_response__free_unpacked(msg, NULL);
    }
    CU_ASSERT_EQUAL(sluice_rpc_call_close_send(call), SLUICE_OK);
    CU_ASSERT_EQUAL(sluice__test__v1__test_service__chat__read(call, &msg), SLUICE_EEOF);
    CU_ASSERT_EQUAL(sluice_rpc_call_finish(call, NULL, NULL), SLUICE_OK);
    sluice_rpc_call_free(call);
}

static void test_event_timeout(void) {
    sluice_rpc_call *call = chat_start();
    CU_ASSERT_EQUAL(sluice_rpc_call_start_read(call), SLUICE_OK);
    sluice_rpc_event ev;
    CU_ASSERT_EQUAL(sluice_rpc_call_next(call, 50, &ev), SLUICE_OK); /* nothing was sent */
    CU_ASSERT_EQUAL(ev.kind, SLUICE_RPC_EVENT_NONE);
    CU_ASSERT_EQUAL(sluice_rpc_call_finish(call, NULL, NULL), SLUICE_EBUSY);
    sluice_rpc_call_free(call); /* cancels with the read pending */
}

static void test_cancel_mid_stream(void) {
    echo_req req = make_req("endless", 0);
    req.count = 1000000;
    sluice_rpc_call *call = count_start(&req, NULL);
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL_FATAL(count_read_one(call), SLUICE_OK);
    }
    sluice_rpc_call_cancel(call);
    count_drain(call); /* what was already buffered */
    finish_expect(call, SLUICE_ECANCELLED, 1);
    sluice_rpc_call_free(call);
}

static void *cancel_later(void *arg) {
    nanosleep(&(struct timespec){.tv_nsec = 200 * 1000 * 1000}, NULL);
    sluice_rpc_call_cancel(arg);
    return NULL;
}

static void test_cancel_from_another_thread(void) {
    echo_req req = make_req("slow", 0);
    req.count = 1000000;
    req.delay_ms = 20;
    sluice_rpc_call *call = count_start(&req, NULL);
    pthread_t t;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, cancel_later, call), 0);
    count_drain(call);
    pthread_join(t, NULL);
    finish_expect(call, SLUICE_ECANCELLED, 1);
    sluice_rpc_call_free(call);
}

static void test_stream_deadline(void) {
    echo_req req = make_req("slow", 0);
    req.count = 1000;
    req.delay_ms = 50;
    sluice_rpc_call_opts opts = {.timeout_ms = 300};
    sluice_rpc_call *call = count_start(&req, &opts);
    CU_ASSERT(count_drain(call) < 1000);
    finish_expect(call, SLUICE_ETIMEDOUT, 4);
    sluice_rpc_call_free(call);
}

static void test_free_unfinished(void) {
    echo_req req = make_req("abandoned", 0);
    req.count = 100000;
    sluice_rpc_call *call = count_start(&req, NULL);
    CU_ASSERT_EQUAL(count_read_one(call), SLUICE_OK);
    sluice_rpc_call_free(call); /* cancels, drains; ASan checks nothing leaks */
    CU_ASSERT_EQUAL(sluice__test__v1__test_service__chat__start(chan, NULL, &call), SLUICE_OK);
    sluice_rpc_call_free(call); /* never used */
}

/* ---- misuse is reported, not crashed on ------------------------------------------- */

static void test_misuse(void) {
    echo_req req = make_req("x", 0);
    Sluice__Test__V1__EchoResponse wrong = SLUICE__TEST__V1__ECHO_RESPONSE__INIT;
    ProtobufCMessage *out = NULL;
    sluice_rpc_status st;
    const sluice_rpc_method *count = &sluice__test__v1__test_service__count__method;
    const sluice_rpc_method *echo = &sluice__test__v1__test_service__echo__method;
    CU_ASSERT_EQUAL(sluice_rpc_unary(chan, count, &req.base, &out, NULL, &st), SLUICE_EINVAL);
    CU_ASSERT_EQUAL(st.code, 2); /* UNKNOWN: a local error */
    CU_ASSERT_EQUAL(sluice_rpc_unary(chan, echo, &wrong.base, &out, NULL, NULL), SLUICE_EINVAL);
    CU_ASSERT_EQUAL(sluice_rpc_unary(NULL, echo, &req.base, &out, NULL, NULL), SLUICE_EINVAL);
    sluice_rpc_call *call = NULL;
    CU_ASSERT_EQUAL(sluice_rpc_call_start(chan, echo, &req.base, NULL, &call), SLUICE_EINVAL);
    CU_ASSERT_EQUAL(sluice_rpc_call_start(chan, count, NULL, NULL, &call), SLUICE_EINVAL);
    CU_ASSERT_EQUAL(sluice__test__v1__test_service__chat__start(chan, NULL, &call), SLUICE_OK);
    CU_ASSERT_EQUAL(sluice__test__v1__test_service__sum__write(call, &req), SLUICE_EINVAL);
    CU_ASSERT_EQUAL(sluice_rpc_call_write(call, &wrong.base), SLUICE_EINVAL);
    CU_ASSERT_EQUAL(sluice__test__v1__test_service__chat__start_write(call, &req), SLUICE_OK);
    CU_ASSERT_EQUAL(sluice__test__v1__test_service__chat__start_write(call, &req), SLUICE_EBUSY);
    CU_ASSERT_EQUAL(sluice__test__v1__test_service__chat__write(call, &req), SLUICE_EBUSY);
    CU_ASSERT_EQUAL(sluice_rpc_call_close_send(call), SLUICE_EBUSY);
    CU_ASSERT_EQUAL(sluice_rpc_call_finish(call, NULL, NULL), SLUICE_EBUSY);
    sluice_rpc_event ev;
    CU_ASSERT_EQUAL(sluice_rpc_call_next(call, LIVENESS_MS, &ev), SLUICE_OK);
    CU_ASSERT_EQUAL(ev.kind, SLUICE_RPC_EVENT_WRITE_DONE);
    sluice_rpc_call_free(call);
    CU_ASSERT_EQUAL(sluice__test__v1__test_service__sum__start(chan, NULL, &call), SLUICE_OK);
    CU_ASSERT_EQUAL(sluice_rpc_call_read(call, &out), SLUICE_EINVAL); /* use _finish */
    CU_ASSERT_EQUAL(sluice_rpc_call_start_read(call), SLUICE_EINVAL);
    sluice_rpc_call_free(call);
    CU_ASSERT_EQUAL(sluice_rpc_channel_new("", NULL, NULL), SLUICE_EINVAL);
    sluice_rpc_channel *ch = (sluice_rpc_channel *)&req;
    CU_ASSERT_EQUAL(sluice_rpc_channel_new(NULL, NULL, &ch), SLUICE_EINVAL);
    CU_ASSERT_PTR_NULL(ch);
    sluice_rpc_channel_free(NULL);
    sluice_rpc_call_free(NULL);
    sluice_rpc_async_free(NULL);
}

static void test_status_mapping(void) {
    static const struct {
        int code, want;
    } map[] = {
        {0, SLUICE_OK},
        {1, SLUICE_ECANCELLED},
        {2, SLUICE_EINTERNAL},
        {3, SLUICE_EINVAL},
        {4, SLUICE_ETIMEDOUT},
        {5, SLUICE_ENOTFOUND},
        {6, SLUICE_EINTERNAL},
        {7, SLUICE_EAUTH},
        {8, SLUICE_ELIMIT},
        {9, SLUICE_EINVAL},
        {10, SLUICE_EINTERNAL},
        {11, SLUICE_EINVAL},
        {12, SLUICE_EUNIMPLEMENTED},
        {13, SLUICE_EINTERNAL},
        {14, SLUICE_EUNAVAILABLE},
        {15, SLUICE_EINTERNAL},
        {16, SLUICE_EAUTH},
        {99, SLUICE_EINTERNAL},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        CU_ASSERT_EQUAL(sluice_rpc_status_to_error(map[i].code), map[i].want);
    }
    for (int s = 0; s >= SLUICE_EBUSY; s--) {
        CU_ASSERT_STRING_NOT_EQUAL(sluice_strerror(s), "unknown error");
    }
    CU_ASSERT_STRING_EQUAL(sluice_strerror(SLUICE_ETIMEDOUT), "timed out");
    CU_ASSERT_STRING_EQUAL(sluice_strerror(-1000), "unknown error");
    CU_ASSERT_STRING_EQUAL(sluice_strerror(3), "unknown error");
}

int main(int argc, char **argv) {
    if (argc > 1) {
        protoc_path = argv[1];
    }
    signal(SIGPIPE, SIG_IGN);
    static const test_case tests[] = {
        {"unary ok", test_unary_ok},
        {"unary error status with details", test_unary_error_status},
        {"unary details truncated at a UTF-8 boundary", test_unary_details_truncated},
        {"unary deadline exceeded", test_unary_deadline},
        {"unknown method is UNIMPLEMENTED", test_unimplemented},
        {"no server is UNAVAILABLE", test_no_server},
        {"bearer token reaches the server", test_bearer_token},
        {"max message size is RESOURCE_EXHAUSTED", test_max_message},
        {"TLS with root certificates and a server name override", test_tls},
        {"64 async unary calls in flight", test_async_64},
        {"async timeout and free with calls in flight", test_async_timeout_and_free_in_flight},
        {"server stream of 1000 messages", test_server_stream_1000},
        {"server stream error after messages", test_server_stream_error_after_messages},
        {"finish discards unread messages", test_finish_discards_unread},
        {"client stream", test_client_stream},
        {"bidi with the event API", test_bidi_events},
        {"bidi mixing blocking and event styles", test_bidi_mixed_styles},
        {"event wait times out", test_event_timeout},
        {"cancel mid-stream is CANCELLED", test_cancel_mid_stream},
        {"cancel from another thread", test_cancel_from_another_thread},
        {"stream deadline exceeded", test_stream_deadline},
        {"free an unfinished call", test_free_unfinished},
        {"misuse returns errors", test_misuse},
        {"status mapping and names", test_status_mapping},
        {NULL, NULL},
    };
    return test_run_suite_with("rpc_client_vs_python", suite_init, suite_cleanup, tests);
}
