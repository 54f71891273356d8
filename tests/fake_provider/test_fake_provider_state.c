/*
 * test_fake_provider_state.c - the fake provider's stateful behaviour: per-key rate limits
 * with provider headers, counters and request hashes, the arrival log, scripts and forced
 * statuses, the control API, delayed answers that do not block, and the standalone
 * binary's start/stop contract. Listed in fake_state_tests (main is in
 * test_fake_provider.c).
 */
#include "tests/fake_provider/test_fake_provider.h"

#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "server/http/http.h"
#include "tests/fake_provider/fake_limits.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Sends "x" authenticated with key; checks the status and, when header is not NULL, that
 * header's value. */
static void expect_keyed(const char *key, long status, const char *header, const char *value) {
    fake_http_result r;
    char v[64];
    keyed(key, "x", &r);
    CU_ASSERT_EQUAL(r.status, status);
    if (header)
        CU_ASSERT_STRING_EQUAL(fake_http_header(&r, header, v, sizeof v), value);
    fake_http_result_cleanup(&r);
}

static void test_rate_limit_requests(void) {
    fake_provider_set_limits(g_fp, "k-rpm", 3, 0, 0);
    fake_http_result r;
    char v[64];
    for (int i = 0; i < 3; i++)
        expect_keyed("k-rpm", 200, "x-ratelimit-limit-requests", "3");
    keyed("k-rpm", "x", &r);
    CU_ASSERT_EQUAL(r.status, 429);
    CU_ASSERT_STRING_EQUAL(fake_http_header(&r, "x-ratelimit-remaining-requests", v, sizeof v),
                           "0");
    CU_ASSERT_PTR_NOT_NULL(fake_http_header(&r, "x-ratelimit-reset-requests", v, sizeof v));
    CU_ASSERT_PTR_NOT_NULL(fake_http_header(&r, "retry-after", v, sizeof v));
    long secs = strtol(v, NULL, 10);
    CU_ASSERT(secs >= 1 && secs <= 20); /* one request refills in 20 s */
    CU_ASSERT_PTR_NOT_NULL(fake_http_header(&r, "retry-after-ms", v, sizeof v));
    json_t *j = parse(&r);
    CU_ASSERT_STRING_EQUAL(str_at(j, "error.code"), "rate_limit_exceeded");
    json_decref(j);
    fake_http_result_cleanup(&r);
    expect_keyed("k-other", 200, NULL, NULL); /* limits are per key */
}

static void test_rate_limit_tokens_and_window(void) {
    /* tokens: 100 max + "Be brief." 2 + "x" 0 + 2 messages x 6 = 114 per request */
    fake_provider_set_limits(g_fp, "k-tpm", 0, 300, 0);
    expect_keyed("k-tpm", 200, "x-ratelimit-remaining-tokens", "186");
    expect_keyed("k-tpm", 200, NULL, NULL);
    expect_keyed("k-tpm", 429, NULL, NULL);
    fake_http_result r;
    char v[64];
    fake_provider_set_limits(g_fp, "k-tiny", 0, 50, 0); /* 114 never fits in 50 */
    keyed("k-tiny", "x", &r);
    CU_ASSERT_EQUAL(r.status, 429);
    CU_ASSERT_PTR_NULL(fake_http_header(&r, "retry-after", v, sizeof v));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "Request too large"));
    fake_http_result_cleanup(&r);
    fake_provider_set_limits(g_fp, "k-sec", 60, 0, 1000); /* a bucket of one second's worth */
    expect_keyed("k-sec", 200, NULL, NULL);
    keyed("k-sec", "x", &r);
    CU_ASSERT_EQUAL(r.status, 429);
    CU_ASSERT_PTR_NOT_NULL(fake_http_header(&r, "retry-after-ms", v, sizeof v));
    CU_ASSERT(strtol(v, NULL, 10) <= 1000);
    fake_http_result_cleanup(&r);
}

static void test_anthropic_limit_headers(void) {
    fake_provider_set_limits(g_fp, "ak-lim", 1, 1000, 0);
    const char *hdrs[] = {"x-api-key: ak-lim", "anthropic-version: 2023-06-01", NULL};
    char *body = anthropic_body("c", "x");
    fake_http_result r;
    char v[64];
    fake_http_request("POST", g_anthropic, hdrs, body, 0, &r);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(fake_http_header(&r, "anthropic-ratelimit-requests-limit", v, sizeof v),
                           "1");
    CU_ASSERT_STRING_EQUAL(
        fake_http_header(&r, "anthropic-ratelimit-requests-remaining", v, sizeof v), "0");
    CU_ASSERT_PTR_NOT_NULL(fake_http_header(&r, "anthropic-ratelimit-tokens-reset", v, sizeof v));
    CU_ASSERT_EQUAL(strlen(v), 20); /* 2026-11-26T13:29:02Z */
    fake_http_result_cleanup(&r);
    fake_http_request("POST", g_anthropic, hdrs, body, 0, &r);
    CU_ASSERT_EQUAL(r.status, 429);
    CU_ASSERT_PTR_NOT_NULL(fake_http_header(&r, "retry-after", v, sizeof v));
    json_t *j = parse(&r);
    CU_ASSERT_STRING_EQUAL(str_at(j, "error.type"), "rate_limit_error");
    json_decref(j);
    fake_http_result_cleanup(&r);
    free(body);
}

static void test_counters_and_hashes(void) {
    fake_provider_reset(g_fp);
    fake_http_result r;
    openai("count-m", "counted", 0, &r);
    fake_http_result_cleanup(&r);
    openai("count-m", "counted", 0, &r);
    fake_http_result_cleanup(&r);
    openai("count-m", "[[status:503]]", 0, &r);
    fake_http_result_cleanup(&r);
    openai("count-m", "[[status:429]]", 0, &r);
    fake_http_result_cleanup(&r);
    openai("count-m", "[[status:404]]", 0, &r);
    fake_http_result_cleanup(&r);
    fake_model_counters mc;
    fake_provider_model_counters(g_fp, "count-m", &mc);
    CU_ASSERT_EQUAL(mc.requests, 5);
    CU_ASSERT_EQUAL(mc.s2xx, 2);
    CU_ASSERT_EQUAL(mc.s5xx, 1);
    CU_ASSERT_EQUAL(mc.s429, 1);
    CU_ASSERT_EQUAL(mc.other, 1);
    char *body = openai_body("count-m", "counted");
    char hex[17];
    fake_provider_request_hash(body, strlen(body), hex);
    uint64_t arrivals, ok;
    fake_provider_hash_counts(g_fp, hex, &arrivals, &ok);
    CU_ASSERT_EQUAL(arrivals, 2);
    CU_ASSERT_EQUAL(ok, 2);
    free(body);
    fake_counters c;
    fake_provider_counters(g_fp, &c);
    CU_ASSERT_EQUAL(c.total, 5);
    CU_ASSERT_EQUAL(c.distinct_requests, 4);
    CU_ASSERT_EQUAL(c.repeated_requests, 1);
    char *js = fake_provider_counters_json(g_fp, false);
    json_t *j = json_loads(js, 0, NULL);
    CU_ASSERT_EQUAL(int_at(j, "models.count-m.2xx"), 2);
    CU_ASSERT_PTR_NOT_NULL(json_object_get(json_object_get(j, "hashes"), hex));
    json_decref(j);
    free(js);
}

static void test_request_log(void) {
    fake_provider_set_request_log(g_fp, true, 4);
    fake_provider_set_limits(g_fp, "k-log", 2, 0, 0);
    fake_http_result r;
    for (int i = 0; i < 6; i++) {
        keyed("k-log", "x", &r);
        fake_http_result_cleanup(&r);
    }
    fake_log_entry e[8];
    size_t n = fake_provider_request_log(g_fp, "k-log", e, 8);
    CU_ASSERT_EQUAL(n, 4); /* bounded ring: the last 4 */
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_FALSE(e[i].admitted); /* only the first 2 were admitted */
        CU_ASSERT(i == 0 || e[i].t_ms >= e[i - 1].t_ms);
        CU_ASSERT(e[i].tokens > 100);
    }
    fake_provider_set_request_log(g_fp, false, 0);
}

static void test_scripts_and_forced_status(void) {
    const char *hdrs[] = {"retry-after: 1", "x-scripted: yes"};
    fake_provider_script(g_fp, "scripted", 2, 503, hdrs, 2, NULL);
    fake_provider_script(g_fp, "scripted", 1, 200, NULL, 0, "{\"custom\":true}");
    fake_http_result r;
    char v[16];
    for (int i = 0; i < 2; i++) {
        openai("scripted", "x", 0, &r);
        CU_ASSERT_EQUAL(r.status, 503);
        CU_ASSERT_STRING_EQUAL(fake_http_header(&r, "x-scripted", v, sizeof v), "yes");
        fake_http_result_cleanup(&r);
    }
    openai("scripted", "x", 0, &r);
    CU_ASSERT_STRING_EQUAL(r.body, "{\"custom\":true}");
    fake_http_result_cleanup(&r);
    expect_status("back to normal", 200);
    fake_provider_force_status(g_fp, "forced", 500);
    openai("forced", "x", 0, &r);
    CU_ASSERT_EQUAL(r.status, 500);
    fake_http_result_cleanup(&r);
    fake_provider_force_status(g_fp, "forced", 0);
    openai("forced", "x", 0, &r);
    CU_ASSERT_EQUAL(r.status, 200);
    fake_http_result_cleanup(&r);
}

static void control(const char *method, const char *path, const char *body, fake_http_result *r) {
    char url[160];
    snprintf(url, sizeof url, "%s%s", fake_provider_base_url(g_fp), path);
    fake_http_request(method, url, NULL, body, 0, r);
}

static void test_control_api(void) {
    fake_http_result r;
    control("POST", "/_fake/config",
            "{\"force_status\":{\"ctl\":502},\"script\":[{\"model\":"
            "\"ctl2\",\"status\":429,\"headers\":{\"retry-after\":\"3\"}}]}",
            &r);
    CU_ASSERT_EQUAL(r.status, 200);
    fake_http_result_cleanup(&r);
    openai("ctl", "x", 0, &r);
    CU_ASSERT_EQUAL(r.status, 502);
    fake_http_result_cleanup(&r);
    openai("ctl2", "x", 0, &r);
    CU_ASSERT_EQUAL(r.status, 429);
    fake_http_result_cleanup(&r);
    control("POST", "/_fake/config", "{\"force_status\":{\"ctl\":0},\"latency_ms\":\"slow\"}", &r);
    CU_ASSERT_EQUAL(r.status, 400); /* nothing applied: ctl stays forced */
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "latency_ms"));
    fake_http_result_cleanup(&r);
    expect_status("x", 200);
    openai("ctl", "x", 0, &r);
    CU_ASSERT_EQUAL(r.status, 502);
    fake_http_result_cleanup(&r);
    control("GET", "/_fake/counters?all=1", NULL, &r);
    json_t *j = parse(&r);
    CU_ASSERT(int_at(j, "total") > 0);
    CU_ASSERT(json_object_size(json_object_get(j, "hashes")) > 0);
    json_decref(j);
    fake_http_result_cleanup(&r);
    control("POST", "/_fake/reset", "", &r);
    CU_ASSERT_EQUAL(r.status, 200);
    fake_http_result_cleanup(&r);
    openai("ctl", "x", 0, &r);
    CU_ASSERT_EQUAL(r.status, 200); /* reset cleared forced statuses */
    fake_http_result_cleanup(&r);
    control("GET", "/_fake/counters", NULL, &r);
    j = parse(&r);
    CU_ASSERT_EQUAL(int_at(j, "total"), 1);
    json_decref(j);
    fake_http_result_cleanup(&r);
    control("GET", "/_fake/log?key=sk-a", NULL, &r);
    CU_ASSERT_EQUAL(r.status, 200);
    fake_http_result_cleanup(&r);
    control("GET", "/_fake/nope", NULL, &r);
    CU_ASSERT_EQUAL(r.status, 404);
    fake_http_result_cleanup(&r);
}

static void on_done(void *ud, const http_response *resp) {
    int *ok = ud;
    if (resp->error == HTTP_OK && resp->status == 200)
        (*ok)++;
}

static void test_latency_does_not_block(void) {
    fake_provider_reset(g_fp);
    fake_provider_set_latency(g_fp, 200, 50);
    http_client *c = NULL;
    char err[128];
    CU_ASSERT_EQUAL_FATAL(http_client_new(NULL, &c, err, sizeof err), 0);
    int ok = 0;
    for (int i = 0; i < 50; i++) {
        provider_request p = {.url = xasprintf("%s", g_openai), .n_headers = 1};
        p.headers = XNEWV(char *, 1);
        p.headers[0] = xstrdup("Authorization: Bearer sk-a");
        p.body = openai_body("lat", "waiting");
        p.body_len = strlen(p.body);
        http_client_submit(c, &p, 20000, on_done, &ok);
    }
    uint64_t end = clock_now_ms() + 20000;
    while (ok < 50 && clock_now_ms() < end)
        http_client_poll(c, 100);
    CU_ASSERT_EQUAL(ok, 50);
    fake_counters fc;
    fake_provider_counters(g_fp, &fc);
    CU_ASSERT(fc.max_in_flight >= 50); /* all waited at once on 2 server threads */
    http_client_free(c);
    fake_provider_set_latency(g_fp, 0, 0);
}

/* ---- pure parts ------------------------------------------------------------------------ */
static void test_bucket_math(void) {
    fake_bucket req, tok;
    fake_bucket_init(&req, 60, 0, 1000); /* 60/min: capacity 60, 1 per second */
    fake_bucket_init(&tok, 0, 0, 1000);
    fake_verdict v;
    for (int i = 0; i < 60; i++) {
        fake_limits_admit(&req, &tok, 10, 1000, &v);
        CU_ASSERT_FALSE(v.limited);
    }
    fake_limits_admit(&req, &tok, 10, 1000, &v);
    CU_ASSERT(v.limited);
    CU_ASSERT_EQUAL(v.wait_ms, 1000);
    fake_limits_admit(&req, &tok, 10, 2000, &v); /* refilled one */
    CU_ASSERT_FALSE(v.limited);
    CU_ASSERT_EQUAL(v.req_remaining, 0);
    CU_ASSERT_EQUAL(v.req_reset_ms, 60000);
    fake_bucket_init(&req, 60, 1000, 0); /* one second's worth: capacity 1 */
    fake_limits_admit(&req, &tok, 10, 0, &v);
    CU_ASSERT_FALSE(v.limited);
    fake_limits_admit(&req, &tok, 10, 500, &v);
    CU_ASSERT(v.limited);
    CU_ASSERT_EQUAL(v.wait_ms, 500);
}

/* ---- the standalone binary ------------------------------------------------------------- */

/* Waits up to timeout_ms for pid to exit and returns its wait status; after that, kills
 * it and returns -1 (a binary that hangs on SIGTERM fails the test instead of blocking it). */
static int reap_within(pid_t pid, unsigned timeout_ms) {
    for (unsigned waited = 0; waited < timeout_ms; waited += 10) {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return status;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static void test_binary_start_stop(void) {
    const char *bin = getenv("SLUICE_FAKE_PROVIDER_BIN");
    if (!bin) {
        fprintf(stderr, "SLUICE_FAKE_PROVIDER_BIN unset: skipping\n");
        return;
    }
    int out[2];
    CU_ASSERT_EQUAL_FATAL(pipe(out), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        execl(bin, bin, "--quiet", "--latency-ms", "1", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    char line[64] = "";
    CU_ASSERT_PTR_NOT_NULL(fgets(line, sizeof line, f));
    unsigned port = 0;
    CU_ASSERT_EQUAL(sscanf(line, "port=%u", &port), 1);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/v1/chat/completions", port);
    fake_http_result r;
    char *body = openai_body("m", "from another process");
    fake_http_request("POST", url, OPENAI_HDRS, body, 0, &r);
    CU_ASSERT_EQUAL(r.status, 200);
    fake_http_result_cleanup(&r);
    char *hang = openai_body("m", "[[hang]]");
    fake_http_request("POST", url, OPENAI_HDRS, hang, 200, &r); /* leaves a suspended request */
    fake_http_result_cleanup(&r);
    kill(pid, SIGTERM);
    int status = reap_within(pid, 10000);
    CU_ASSERT(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    fclose(f);
    free(body);
    free(hang);
}

const test_case fake_state_tests[] = {
    {"rate limit: requests", test_rate_limit_requests},
    {"rate limit: tokens and window", test_rate_limit_tokens_and_window},
    {"rate limit: Anthropic headers", test_anthropic_limit_headers},
    {"counters and request hashes", test_counters_and_hashes},
    {"request log", test_request_log},
    {"scripts and forced status", test_scripts_and_forced_status},
    {"control API", test_control_api},
    {"latency does not block", test_latency_does_not_block},
    {"bucket math", test_bucket_math},
    {"binary start and SIGTERM", test_binary_start_stop},
    {NULL, NULL},
};
