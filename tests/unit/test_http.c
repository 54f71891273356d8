/*
 * test_http.c - the libcurl multi client (server/http) against the in-process fake provider.
 *
 * One fake serves the suite, on the wire $SLUICE_TEST_WIRE names (plain HTTP/1.1, HTTP/1.1
 * over TLS, HTTP/2 over TLS: ctest runs the suite once per wire); the HTTPS and HTTP/2
 * tests start their own with a certificate made at run time. Each test makes its own http_client,
 * drives it with http_client_poll until its transfers finish, and frees it (ASan/valgrind catch
 * leaks, e.g. after cancel). Timing checks are generous sanity bounds only.
 */
#include "unit/test_util.h"
#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "server/http/http.h"
#include "server/http/http_internal.h"
#include "sluice/status.h"
#include "tests/fake_provider/fake_provider.h"
#include "tests/fake_provider/fake_raw.h"
#include "tests/fake_provider/fake_test_util.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static fake_provider *g_fp;
static fake_setup g_wire; /* the suite fake's wire */
static http_config g_cfg; /* trusts the suite fake's certificate */

/* What one callback saw, copied out (the response is valid only during the callback). */
typedef struct result {
    int calls;
    http_error error;
    int status;
    char *body;
    char content_type[64];
    char request_id[64];
    char error_text[256];
    size_t n_headers;
    bool names_lowercase;
    uint32_t elapsed_ms;
} result;

static void on_done(void *ud, const http_response *resp) {
    result *r = ud;
    r->calls++;
    r->error = resp->error;
    r->status = resp->status;
    free(r->body);
    r->body = xstrndup(resp->body, resp->body_len);
    const char *ct = http_response_header(resp, "Content-Type");
    snprintf(r->content_type, sizeof r->content_type, "%s", ct ? ct : "");
    const char *id = http_response_header(resp, "x-request-id");
    snprintf(r->request_id, sizeof r->request_id, "%s", id ? id : "");
    r->n_headers = resp->n_headers;
    r->names_lowercase = true;
    for (size_t i = 0; i < resp->n_headers; i++)
        for (const char *p = resp->headers[i].name; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                r->names_lowercase = false;
    r->elapsed_ms = resp->elapsed_ms;
    snprintf(r->error_text, sizeof r->error_text, "%s", resp->error_text);
}

static void result_cleanup(result *r) {
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* An OpenAI chat request to base with one user message. */
static provider_request make_req(const char *base, const char *text) {
    provider_request p;
    memset(&p, 0, sizeof p);
    p.url = xasprintf("%s/v1/chat/completions", base);
    p.n_headers = 2;
    p.headers = XNEWV(char *, 2);
    p.headers[0] = xstrdup("Authorization: Bearer sk-test");
    p.headers[1] = xstrdup("Content-Type: application/json");
    p.body = xasprintf("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],"
                       "\"max_completion_tokens\":16}",
                       text);
    p.body_len = strlen(p.body);
    return p;
}

static http_client *new_client(const http_config *cfg) {
    http_client *c = NULL;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(http_client_new(cfg, &c, err, sizeof err), SLUICE_OK);
    return c;
}

/* Polls until `*count` reaches want; not reaching it within timeout_ms ends the test. */
static void run_until(http_client *c, const int *count, int want, int timeout_ms) {
    uint64_t end = clock_now_ms() + (uint64_t)timeout_ms;
    while (*count < want && clock_now_ms() < end)
        http_client_poll(c, 100);
    CU_ASSERT_FATAL(*count >= want);
}

static void submit_text(http_client *c, const char *base, const char *text, uint32_t timeout_ms,
                        result *r) {
    provider_request p = make_req(base, text);
    CU_ASSERT_PTR_NOT_NULL(http_client_submit(c, &p, timeout_ms, on_done, r));
    CU_ASSERT_PTR_NULL(p.url); /* ownership moved */
}

static result one(const http_config *cfg, const char *base, const char *text, uint32_t timeout_ms) {
    http_client *c = new_client(cfg);
    result r;
    memset(&r, 0, sizeof r);
    submit_text(c, base, text, timeout_ms, &r);
    run_until(c, &r.calls, 1, 20000);
    CU_ASSERT_EQUAL(http_client_in_flight(c), 0);
    http_client_free(c);
    return r;
}

static void test_status_headers_body(void) {
    result r = one(&g_cfg, fake_provider_base_url(g_fp), "hello", 10000);
    CU_ASSERT_EQUAL(r.calls, 1);
    CU_ASSERT_EQUAL(r.error, HTTP_OK);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.content_type, "application/json");
    CU_ASSERT_EQUAL(strncmp(r.request_id, "req_", 4), 0);
    CU_ASSERT(r.n_headers >= 3);
    CU_ASSERT(r.names_lowercase);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"content\":\"echo[m]: hello#"));
    result_cleanup(&r);
}

static void test_error_status_is_transport_ok(void) {
    result r = one(&g_cfg, fake_provider_base_url(g_fp), "[[status:503]]", 10000);
    CU_ASSERT_EQUAL(r.error, HTTP_OK);
    CU_ASSERT_EQUAL(r.status, 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "server_error"));
    result_cleanup(&r);
}

static void test_get_without_body(void) {
    http_client *c = new_client(&g_cfg);
    result r;
    memset(&r, 0, sizeof r);
    provider_request p;
    memset(&p, 0, sizeof p);
    p.url = xasprintf("%s/_fake/health", fake_provider_base_url(g_fp));
    CU_ASSERT_PTR_NOT_NULL(http_client_submit(c, &p, 5000, on_done, &r));
    run_until(c, &r.calls, 1, 10000);
    CU_ASSERT_EQUAL(r.status, 200);
    EXPECT_STR(r.body, "{\"ok\":true}");
    result_cleanup(&r);
    http_client_free(c);
}

static void test_hundred_concurrent(void) {
    http_client *c = new_client(&g_cfg);
    result rs[100];
    memset(rs, 0, sizeof rs);
    int done = 0;
    char text[32];
    for (int i = 0; i < 100; i++) {
        snprintf(text, sizeof text, "concurrent %d", i);
        submit_text(c, fake_provider_base_url(g_fp), text, 20000, &rs[i]);
    }
    CU_ASSERT_EQUAL(http_client_in_flight(c), 100);
    uint64_t end = clock_now_ms() + 30000;
    while (done < 100 && clock_now_ms() < end)
        done += http_client_poll(c, 100);
    CU_ASSERT_EQUAL(done, 100);
    for (int i = 0; i < 100; i++) {
        CU_ASSERT_EQUAL(rs[i].calls, 1);
        CU_ASSERT_EQUAL(rs[i].status, 200);
        snprintf(text, sizeof text, "concurrent %d#", i);
        CU_ASSERT_PTR_NOT_NULL(strstr(rs[i].body, text));
        result_cleanup(&rs[i]);
    }
    CU_ASSERT_EQUAL(http_client_in_flight(c), 0);
    http_client_free(c);
}

static void test_keep_alive_reuse(void) {
    http_client *c = new_client(&g_cfg);
    fake_counters before, after;
    fake_provider_counters(g_fp, &before);
    for (int i = 0; i < 50; i++) {
        result r;
        memset(&r, 0, sizeof r);
        submit_text(c, fake_provider_base_url(g_fp), "sequential", 10000, &r);
        run_until(c, &r.calls, 1, 10000);
        CU_ASSERT_EQUAL(r.status, 200);
        result_cleanup(&r);
    }
    fake_provider_counters(g_fp, &after);
    CU_ASSERT(after.connections - before.connections <= 2); /* 50 requests, one connection */
    http_client_free(c);
}

static void test_timeout(void) {
    result r = one(&g_cfg, fake_provider_base_url(g_fp), "[[hang]]", 300);
    CU_ASSERT_EQUAL(r.error, HTTP_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT(r.elapsed_ms >= 250 && r.elapsed_ms < 10000);
    result_cleanup(&r);
}

static void test_reset(void) {
    result r = one(&g_cfg, fake_provider_base_url(g_fp), "[[reset]]", 5000);
    CU_ASSERT_EQUAL(r.error, HTTP_ERR_RESET);
    result_cleanup(&r);
}

static void test_truncated(void) {
    result r = one(&g_cfg, fake_provider_base_url(g_fp), "[[truncate]]", 5000);
    /* HTTP/2 has no short body: a server that stops mid-body resets the stream */
    CU_ASSERT_EQUAL(r.error, g_wire.mode == FAKE_WIRE_H2_TLS ? HTTP_ERR_RESET : HTTP_ERR_TRUNCATED);
    result_cleanup(&r);
}

static void test_body_cap(void) {
    http_config cfg = {.max_response_bytes = 64, .ca_file = g_cfg.ca_file};
    result r = one(&cfg, fake_provider_base_url(g_fp), "a body longer than the cap", 5000);
    CU_ASSERT_EQUAL(r.error, HTTP_ERR_TOO_LARGE);
    CU_ASSERT(strlen(r.body) <= 64);
    result_cleanup(&r);
}

static void test_connect_refused(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    socklen_t len = sizeof sa;
    CU_ASSERT_EQUAL(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    getsockname(s, (struct sockaddr *)&sa, &len);
    close(s); /* nothing listens on that port now */
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%u", ntohs(sa.sin_port));
    result r = one(NULL, base, "x", 5000);
    CU_ASSERT_EQUAL(r.error, HTTP_ERR_CONNECT);
    result_cleanup(&r);
}

static void test_unsupported_url_is_other(void) {
    result r = one(NULL, "nosuchscheme://127.0.0.1:1", "x", 5000);
    CU_ASSERT_EQUAL(r.calls, 1);
    CU_ASSERT_EQUAL(r.error, HTTP_ERR_OTHER);
    CU_ASSERT(strlen(r.body) == 0);
    result_cleanup(&r);
}

static void test_cancel(void) {
    fake_provider_set_latency(g_fp, 300, 0);
    http_client *c = new_client(&g_cfg);
    result r;
    memset(&r, 0, sizeof r);
    http_request *reqs[10];
    for (int i = 0; i < 10; i++) {
        provider_request p = make_req(fake_provider_base_url(g_fp), "to cancel");
        reqs[i] = http_client_submit(c, &p, 10000, on_done, &r);
    }
    for (int i = 0; i < 5; i++)
        http_client_cancel(c, reqs[i]); /* before any I/O */
    http_client_poll(c, 50);
    for (int i = 5; i < 10; i++)
        http_client_cancel(c, reqs[i]); /* mid-transfer */
    CU_ASSERT_EQUAL(http_client_in_flight(c), 0);
    uint64_t end = clock_now_ms() + 600;
    while (clock_now_ms() < end)
        http_client_poll(c, 50);
    CU_ASSERT_EQUAL(r.calls, 0);
    http_client_free(c);
    fake_provider_set_latency(g_fp, 0, 0);
}

static void *wake_later(void *arg) {
    usleep(100 * 1000);
    http_client_wakeup(arg);
    return NULL;
}

static void test_wakeup(void) {
    http_client *c = new_client(&g_cfg);
    pthread_t t;
    uint64_t start = clock_now_ms();
    CU_ASSERT_EQUAL(pthread_create(&t, NULL, wake_later, c), 0);
    CU_ASSERT_EQUAL(http_client_poll(c, 5000), 0);
    CU_ASSERT(clock_now_ms() - start < 4000); /* returned early, not after 5 s */
    pthread_join(t, NULL);
    http_client_wakeup(c); /* before the poll: the next poll returns at once */
    start = clock_now_ms();
    http_client_poll(c, 5000);
    CU_ASSERT(clock_now_ms() - start < 4000);
    http_client_free(c);
}

typedef struct chain {
    http_client *c;
    int calls;
    int status[2];
} chain;

static void on_chain(void *ud, const http_response *resp) {
    chain *ch = ud;
    ch->status[ch->calls++] = resp->status;
    if (ch->calls == 1) {
        provider_request p = make_req(fake_provider_base_url(g_fp), "second");
        CU_ASSERT_PTR_NOT_NULL(http_client_submit(ch->c, &p, 5000, on_chain, ch));
    }
}

static void test_submit_from_callback(void) {
    chain ch = {.c = new_client(&g_cfg)};
    provider_request p = make_req(fake_provider_base_url(g_fp), "first");
    http_client_submit(ch.c, &p, 5000, on_chain, &ch);
    run_until(ch.c, &ch.calls, 2, 10000);
    CU_ASSERT_EQUAL(ch.calls, 2);
    CU_ASSERT_EQUAL(ch.status[0], 200);
    CU_ASSERT_EQUAL(ch.status[1], 200);
    http_client_free(ch.c);
}

static void test_free_with_transfers_in_flight(void) {
    fake_provider_set_latency(g_fp, 500, 0);
    http_client *c = new_client(&g_cfg);
    result r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < 5; i++)
        submit_text(c, fake_provider_base_url(g_fp), "abandoned", 10000, &r);
    http_client_poll(c, 50);
    http_client_free(c); /* aborts without callbacks */
    CU_ASSERT_EQUAL(r.calls, 0);
    fake_provider_set_latency(g_fp, 0, 0);
}

static void test_https(void) {
    char dir[64], path[128];
    fake_make_tmpdir(dir, sizeof dir);
    if (fake_make_cert(dir, "server") != 0 || fake_make_cert(dir, "other") != 0) {
        fprintf(stderr, "openssl CLI unavailable: skipping HTTPS checks\n");
        fake_rmdir_r(dir);
        return;
    }
    snprintf(path, sizeof path, "%s/server.crt", dir);
    char *cert = fake_read_file(path);
    snprintf(path, sizeof path, "%s/server.key", dir);
    char *key = fake_read_file(path);
    fake_provider_config fcfg = {.tls_cert_pem = cert, .tls_key_pem = key, .quiet = true};
    fake_provider *tls = NULL;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(fake_provider_new(&fcfg, &tls, err, sizeof err), 0);
    CU_ASSERT_EQUAL(strncmp(fake_provider_base_url(tls), "https://", 8), 0);
    snprintf(path, sizeof path, "%s/server.crt", dir);
    http_config trusted = {.ca_file = path};
    result r = one(&trusted, fake_provider_base_url(tls), "over tls", 10000);
    CU_ASSERT_EQUAL(r.error, HTTP_OK);
    CU_ASSERT_EQUAL(r.status, 200);
    result_cleanup(&r);
    char other[128];
    snprintf(other, sizeof other, "%s/other.crt", dir);
    http_config wrong_ca = {.ca_file = other};
    r = one(&wrong_ca, fake_provider_base_url(tls), "unknown ca", 10000);
    CU_ASSERT_EQUAL(r.error, HTTP_ERR_CONNECT);
    CU_ASSERT(strlen(r.error_text) > 0);
    result_cleanup(&r);
    r = one(NULL, fake_provider_base_url(tls), "system CAs", 10000); /* not in the bundle */
    CU_ASSERT_EQUAL(r.error, HTTP_ERR_CONNECT);
    result_cleanup(&r);
    fake_provider_free(tls);
    free(cert);
    free(key);
    fake_rmdir_r(dir);
}

/* ---- HTTP/2 over TLS: fakes of their own, whatever the suite's wire --------------------- */

/* A client that keeps `window` transfers in flight until `total` have ended: each callback
 * submits the next, so easy handles are reused while their h2 connection is still busy. */
typedef struct pump {
    http_client *c;
    const char *base;
    int window, total, submitted, ended, ok, resets, other;
    int errors[8]; /* http_error counts */
} pump;

static void pump_submit(pump *p);

static void on_pump(void *ud, const http_response *resp) {
    pump *p = ud;
    p->ended++;
    if (resp->error == HTTP_OK && resp->status == 200 && strstr(resp->body, "\"content\":\"echo["))
        p->ok++;
    else if (resp->error == HTTP_ERR_RESET)
        p->resets++;
    else
        p->other++;
    if (resp->error >= 0 && resp->error < 8)
        p->errors[resp->error]++;
    if (p->submitted < p->total)
        pump_submit(p);
}

static void pump_submit(pump *p) {
    char text[48];
    snprintf(text, sizeof text, "pumped %d", p->submitted++);
    provider_request r = make_req(p->base, text);
    CU_ASSERT_PTR_NOT_NULL(http_client_submit(p->c, &r, 20000, on_pump, p));
}

/* Runs `total` transfers, `window` at a time, against fp; returns the tally. */
static pump pump_run(fake_provider *fp, const fake_setup *s, int window, int total) {
    http_config cfg = {.ca_file = s->ca_file};
    pump p = {.c = new_client(&cfg),
              .base = fake_provider_base_url(fp),
              .window = window,
              .total = total};
    for (int i = 0; i < window && p.submitted < total; i++)
        pump_submit(&p);
    run_until(p.c, &p.ended, total, 60000);
    CU_ASSERT_EQUAL(http_client_in_flight(p.c), 0);
    CU_ASSERT_EQUAL(http_client_setup_failures(p.c), 0); /* a refused setup is a bug of ours */
    http_client_free(p.c);
    return p;
}

typedef struct h2_rig {
    char dir[64];
    fake_setup setup;
    fake_provider *fp;
} h2_rig;

static void h2_start(h2_rig *g, uint32_t max_streams, uint32_t goaway_after) {
    fake_make_tmpdir(g->dir, sizeof g->dir);
    fake_setup_init(&g->setup, FAKE_WIRE_H2_TLS, g->dir);
    g->setup.cfg.h2_max_concurrent_streams = max_streams;
    g->setup.cfg.h2_goaway_after = goaway_after;
    g->setup.cfg.latency_ms = 2; /* answers overlap: streams end on a busy connection */
    char err[256];
    CU_ASSERT_EQUAL_FATAL(fake_provider_new(&g->setup.cfg, &g->fp, err, sizeof err), 0);
}

static fake_counters h2_stop(h2_rig *g) {
    fake_counters n;
    fake_provider_counters(g->fp, &n);
    fake_provider_free(g->fp);
    fake_setup_cleanup(&g->setup);
    fake_rmdir_r(g->dir);
    return n;
}

/* The regression: every transfer after the first window failed with "A libcurl function was
 * given a bad argument" (a reset handle refused CURLOPT_BUFFERSIZE on a busy h2 connection). */
static void test_h2_many_transfers_one_connection(void) {
    h2_rig g;
    h2_start(&g, 0, 0);
    /* with a Content-Length (see test_dispatcher's h2_answers_without_length for why) */
    char err[128];
    CU_ASSERT_EQUAL(fake_provider_configure(g.fp, "{\"chunked\":false}", err, sizeof err), 0);
    pump p = pump_run(g.fp, &g.setup, 64, 1000);
    fake_counters n = h2_stop(&g);
    CU_ASSERT_EQUAL(p.ok, 1000);
    CU_ASSERT_EQUAL(n.total, 1000);
    CU_ASSERT_EQUAL(n.h2_connections, 1); /* all of them multiplexed on one connection */
    CU_ASSERT_EQUAL(n.h2_streams, 1000);
    CU_ASSERT_EQUAL(n.client_resets, 0); /* finished streams are not reset */
}

static void test_h2_stream_limit_below_concurrency(void) {
    h2_rig g;
    h2_start(&g, 4, 0); /* SETTINGS_MAX_CONCURRENT_STREAMS 4, 64 transfers at a time */
    pump p = pump_run(g.fp, &g.setup, 64, 400);
    fake_counters n = h2_stop(&g);
    /* Streams opened before the server's SETTINGS arrived and refused by it end as resets
     * (libcurl does not say why it would send them again); the rest are answered, and
     * nothing reaches the fake twice. */
    CU_ASSERT_EQUAL(p.ok + p.resets, 400);
    CU_ASSERT_EQUAL(p.other, 0);
    CU_ASSERT_EQUAL(n.total, (uint64_t)p.ok);
    CU_ASSERT(p.ok >= 400 - 100); /* libcurl opens at most 100 streams before SETTINGS */
}

/* Streams sent past a GOAWAY were never processed, but libcurl does not say why it wants to
 * send them again, so it may not: they end as resets (the dispatcher retries them as counted
 * attempts). Nothing reaches the fake twice. */
static void test_h2_goaway_mid_run(void) {
    h2_rig g;
    h2_start(&g, 0, 50); /* a graceful GOAWAY after every 50 requests on a connection */
    pump p = pump_run(g.fp, &g.setup, 32, 400);
    fake_counters n = h2_stop(&g);
    CU_ASSERT_EQUAL(p.ok + p.resets, 400);
    CU_ASSERT_EQUAL(p.other, 0);
    CU_ASSERT_EQUAL(n.total, (uint64_t)p.ok);
    CU_ASSERT(n.goaways >= n.total / 50 - 1);
    CU_ASSERT(n.h2_connections >= n.goaways);
}

/* A refused stream ends as a reset unless libcurl had not begun its body (then it sends
 * it again itself: nothing of it was delivered). Nothing reaches the fake twice. */
static void test_h2_refused_stream(void) {
    h2_rig g;
    h2_start(&g, 0, 0);
    fake_provider_refuse_streams(g.fp, 5);
    pump p = pump_run(g.fp, &g.setup, 8, 50);
    fake_counters n = h2_stop(&g);
    CU_ASSERT_EQUAL(p.ok + p.resets, 50);
    CU_ASSERT(p.resets <= 5);
    CU_ASSERT_EQUAL(n.refused_streams, 5);
    CU_ASSERT_EQUAL(n.total, (uint64_t)p.ok);
}

static void test_h2_internal_error_fails_that_transfer(void) {
    h2_rig g;
    h2_start(&g, 0, 0);
    fake_provider_reset_next(g.fp, 3); /* read, counted, then RST_STREAM(INTERNAL_ERROR) */
    pump p = pump_run(g.fp, &g.setup, 8, 40);
    fake_counters n = h2_stop(&g);
    CU_ASSERT_EQUAL(p.ok, 37);
    CU_ASSERT_EQUAL(p.resets, 3); /* an attempt that failed, not retried by libcurl */
    CU_ASSERT_EQUAL(n.reset_streams, 3);
    CU_ASSERT_EQUAL(n.total, 40);
    CU_ASSERT_EQUAL(n.h2_connections, 1); /* the connection and its other streams went on */
}

/* A transfer libcurl refuses to set up (here: a URL over its 8 MB input limit) ends with
 * HTTP_ERR_SETUP and libcurl's reason, and is counted; nothing is sent. */
static void test_setup_refusal_is_reported(void) {
    http_client *c = new_client(&g_cfg);
    size_t len = 9u << 20;
    char *url = xmalloc(len + 1);
    int n = snprintf(url, len + 1, "%s/v1/chat/completions?pad=", fake_provider_base_url(g_fp));
    memset(url + n, 'a', len - (size_t)n);
    url[len] = '\0';
    provider_request p = make_req(fake_provider_base_url(g_fp), "never sent");
    free(p.url);
    p.url = url;
    fake_counters before, after;
    fake_provider_counters(g_fp, &before);
    result r;
    memset(&r, 0, sizeof r);
    CU_ASSERT_PTR_NOT_NULL(http_client_submit(c, &p, 5000, on_done, &r));
    run_until(c, &r.calls, 1, 10000);
    CU_ASSERT_EQUAL(r.error, HTTP_ERR_SETUP);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.error_text, "CURLOPT_URL"));
    CU_ASSERT_EQUAL(http_client_setup_failures(c), 1);
    CU_ASSERT_EQUAL(http_client_in_flight(c), 0);
    fake_provider_counters(g_fp, &after);
    CU_ASSERT_EQUAL(after.total, before.total);
    result_cleanup(&r);
    http_client_free(c);
}

/* A provider that reads a request on a kept-alive connection and closes it (FIN or RST)
 * without answering: libcurl would send the request again on a fresh connection, a second
 * request nobody counts as an attempt. It must not: the provider sees it once and the
 * transfer fails, for the dispatcher to decide. */
static void dropped_after_reading(bool reset) {
    fake_raw_config rc = {.answer_per_connection = 1, .reset = reset};
    fake_raw *raw = fake_raw_start(&rc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
    http_client *c = new_client(NULL);
    result warm, dropped;
    memset(&warm, 0, sizeof warm);
    memset(&dropped, 0, sizeof dropped);
    submit_text(c, fake_raw_url(raw), "warms the connection", 5000, &warm);
    run_until(c, &warm.calls, 1, 10000);
    CU_ASSERT_EQUAL(warm.status, 200);
    submit_text(c, fake_raw_url(raw), "read, then dropped", 5000, &dropped);
    run_until(c, &dropped.calls, 1, 10000);
    CU_ASSERT_EQUAL(dropped.error, HTTP_ERR_RESET);
    CU_ASSERT_PTR_NOT_NULL(strstr(dropped.error_text, "not sent again"));
    http_client_free(c);
    CU_ASSERT_EQUAL(fake_raw_requests(raw), 2); /* the dropped request arrived once */
    fake_raw_stop(raw);
    result_cleanup(&warm);
    result_cleanup(&dropped);
}

static void test_no_hidden_resend_after_close(void) {
    dropped_after_reading(false);
}

static void test_no_hidden_resend_after_reset(void) {
    dropped_after_reading(true);
}

/* gzip-encoded, chunked answers on plain HTTP/1.1 decode to the same body. */
static void test_gzip_chunked_answers(void) {
    fake_provider_config cfg = {.quiet = true, .gzip = true, .chunked = true};
    fake_provider *fp = NULL;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(fake_provider_new(&cfg, &fp, err, sizeof err), 0);
    char text[80];
    snprintf(text, sizeof text, "[[pad:3000]] a long answer");
    result r = one(NULL, fake_provider_base_url(fp), text, 10000);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"content\":\"echo[m]: [[pad:3000]] a long answer"));
    CU_ASSERT(strlen(r.body) > 3000);
    result_cleanup(&r);
    fake_provider_free(fp);
}

/* ---- pure parts ------------------------------------------------------------------------ */

static void test_error_mapping(void) {
    CU_ASSERT_EQUAL(http_error_from_curl(CURLE_OK, false), HTTP_OK);
    CU_ASSERT_EQUAL(http_error_from_curl(CURLE_OPERATION_TIMEDOUT, false), HTTP_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(http_error_from_curl(CURLE_COULDNT_CONNECT, false), HTTP_ERR_CONNECT);
    CU_ASSERT_EQUAL(http_error_from_curl(CURLE_COULDNT_RESOLVE_HOST, false), HTTP_ERR_CONNECT);
    CU_ASSERT_EQUAL(http_error_from_curl(CURLE_SSL_CONNECT_ERROR, false), HTTP_ERR_CONNECT);
    CU_ASSERT_EQUAL(http_error_from_curl(CURLE_PEER_FAILED_VERIFICATION, false), HTTP_ERR_CONNECT);
    CU_ASSERT_EQUAL(http_error_from_curl(CURLE_RECV_ERROR, false), HTTP_ERR_RESET);
    CU_ASSERT_EQUAL(http_error_from_curl(CURLE_SEND_ERROR, false), HTTP_ERR_RESET);
    CU_ASSERT_EQUAL(http_error_from_curl(CURLE_GOT_NOTHING, false), HTTP_ERR_RESET);
    CU_ASSERT_EQUAL(http_error_from_curl(CURLE_HTTP2, false), HTTP_ERR_RESET);
    CU_ASSERT_EQUAL(http_error_from_curl(CURLE_HTTP2_STREAM, false), HTTP_ERR_RESET);
    CU_ASSERT_EQUAL(http_error_from_curl(CURLE_PARTIAL_FILE, false), HTTP_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(http_error_from_curl(CURLE_WRITE_ERROR, true), HTTP_ERR_TOO_LARGE);
    CU_ASSERT_EQUAL(http_error_from_curl(CURLE_WRITE_ERROR, false), HTTP_ERR_OTHER);
    CU_ASSERT_EQUAL(http_error_from_curl(CURLE_UNSUPPORTED_PROTOCOL, false), HTTP_ERR_OTHER);
    CU_ASSERT_STRING_EQUAL(http_error_name(HTTP_ERR_TIMEOUT), "timeout");
}

static bool feed(http_headers *h, const char *line) {
    return http_headers_feed(h, line, strlen(line));
}

static void test_header_collection(void) {
    http_headers h;
    http_headers_init(&h);
    feed(&h, "HTTP/1.1 100 Continue\r\n");
    feed(&h, "X-Interim: yes\r\n");
    feed(&h, "\r\n");
    feed(&h, "HTTP/1.1 429 Too Many Requests\r\n"); /* the final response starts over */
    feed(&h, "Retry-After:   7  \r\n");
    feed(&h, "X-RateLimit-Remaining-Requests:0\r\n");
    feed(&h, "\r\n");
    size_t n;
    const http_header *hs = http_headers_view(&h, &n);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(hs[0].name, "retry-after");
    CU_ASSERT_STRING_EQUAL(hs[0].value, "7");
    CU_ASSERT_STRING_EQUAL(hs[1].name, "x-ratelimit-remaining-requests");
    CU_ASSERT_STRING_EQUAL(hs[1].value, "0");
    http_response resp = {.headers = hs, .n_headers = n};
    CU_ASSERT_STRING_EQUAL(http_response_header(&resp, "RETRY-AFTER"), "7");
    CU_ASSERT_PTR_NULL(http_response_header(&resp, "x-interim"));
    http_headers_reset(&h);
    char line[64];
    bool ok = true;
    for (int i = 0; i <= HTTP_MAX_HEADERS && ok; i++) {
        snprintf(line, sizeof line, "h%d: v\r\n", i);
        ok = feed(&h, line);
    }
    CU_ASSERT_FALSE(ok); /* the count bound is enforced */
    http_headers_reset(&h);
    char *big = XNEWV(char, HTTP_MAX_HEADER_BYTES + 16);
    memset(big, 'a', HTTP_MAX_HEADER_BYTES + 8);
    memcpy(big, "big: ", 5);
    CU_ASSERT_FALSE(feed(&h, big)); /* and the size bound */
    free(big);
    http_headers_cleanup(&h);
}

static void test_fd_limit(void) {
    CU_ASSERT(http_raise_fd_limit() > 0);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    http_raise_fd_limit();
    char err[256], dir[64];
    fake_make_tmpdir(dir, sizeof dir);
    fake_setup_init(&g_wire, FAKE_WIRE_FROM_ENV, dir);
    g_cfg.ca_file = g_wire.ca_file[0] ? g_wire.ca_file : NULL;
    if (fake_provider_new(&g_wire.cfg, &g_fp, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    fprintf(stderr, "test_http: fake provider on %s (%s)\n", fake_provider_base_url(g_fp),
            fake_wire_name(g_wire.mode));
    static const test_case tests[] = {
        {"status, headers and body", test_status_headers_body},
        {"error status is a transport success", test_error_status_is_transport_ok},
        {"GET without a body", test_get_without_body},
        {"100 concurrent transfers", test_hundred_concurrent},
        {"keep-alive reuse", test_keep_alive_reuse},
        {"timeout", test_timeout},
        {"reset", test_reset},
        {"truncated body", test_truncated},
        {"body cap", test_body_cap},
        {"connection refused", test_connect_refused},
        {"unsupported URL", test_unsupported_url_is_other},
        {"cancel", test_cancel},
        {"wakeup from another thread", test_wakeup},
        {"submit from a callback", test_submit_from_callback},
        {"free with transfers in flight", test_free_with_transfers_in_flight},
        {"HTTPS with a run-time CA", test_https},
        {"h2: many more transfers than the window, one connection",
         test_h2_many_transfers_one_connection},
        {"h2: a stream limit below the concurrency", test_h2_stream_limit_below_concurrency},
        {"h2: GOAWAY mid-run", test_h2_goaway_mid_run},
        {"h2: REFUSED_STREAM", test_h2_refused_stream},
        {"h2: INTERNAL_ERROR fails that transfer only", test_h2_internal_error_fails_that_transfer},
        {"gzip-encoded chunked answers", test_gzip_chunked_answers},
        {"a refused setup is reported", test_setup_refusal_is_reported},
        {"no hidden re-send after a close", test_no_hidden_resend_after_close},
        {"no hidden re-send after a reset", test_no_hidden_resend_after_reset},
        {"CURLcode mapping", test_error_mapping},
        {"header collection", test_header_collection},
        {"fd limit", test_fd_limit},
        {NULL, NULL},
    };
    int rc = test_run_suite("http", tests);
    fake_provider_free(g_fp);
    fake_setup_cleanup(&g_wire);
    fake_rmdir_r(dir);
    curl_global_cleanup();
    return rc;
}
