/*
 * The C SDK through a gRPC reverse proxy: Debian's nginx (grpc_pass, TLS terminated with a
 * certificate made at test time, grpc_read_timeout 5 s, client_max_body_size 1m) in front
 * of the real sluiced and the fake provider. nginx cuts a call on which nothing arrived
 * from sluiced for 5 s (the control test shows it does), so every call here must keep
 * talking: streams by heartbeats (rpc.heartbeat_interval_ms 2 s here), Waits by the
 * server's cap on one Wait (rpc.max_wait_ms 3 s here) with the SDK waiting again by
 * itself. Covered: a paced batch, a long Wait by a client pinging every 10 s, an idle
 * AsCompleted, a broken batch re-run that finishes from the cache, and a large batch
 * above the proxy's body limit, sent by the SDK as several calls (max_call_bytes).
 */
#include "e2e/nginx_harness.h"
#include "e2e/sluiced_harness.h"
#include "sluice/sluice.h"
#include "unit/test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROXIED_CONFIG "{\"rpc\": {\"heartbeat_interval_ms\": 2000, \"max_wait_ms\": 3000}}"

static sluiced_proc P;
static nginx_proc N;

/* sluiced with config_json (NULL: PROXIED_CONFIG) behind nginx. */
static void start(const char *config_json) {
    sluiced_opts so;
    memset(&so, 0, sizeof so);
    so.config_json = config_json ? config_json : PROXIED_CONFIG;
    CU_ASSERT_EQUAL_FATAL(sluiced_start(&P, &so), 0);
    CU_ASSERT_EQUAL_FATAL(nginx_start(&N, P.target, NULL), 0);
}

static void stop(void) {
    nginx_stop(&N);
    CU_ASSERT_EQUAL(sluiced_stop(&P), 0);
    sluiced_cleanup(&P);
}

/* A client of m-a through the proxy (TLS, trusting nginx's certificate). */
static sluice_client *proxied_client(uint32_t rpm, uint32_t keepalive_ms) {
    sluice_model m = {.name = "m-a", .weight = 1};
    sluice_client_options o;
    memset(&o, 0, sizeof o);
    o.models = &m;
    o.n_models = 1;
    o.max_requests_per_minute = rpm;
    o.use_tls = true;
    o.tls_root_certs_pem = N.ca_pem;
    o.keepalive_time_ms = keepalive_ms;
    sluice_client *c = NULL;
    CU_ASSERT_EQUAL(sluice_client_new(N.target, &o, &c), 0);
    return c;
}

static sluice_prompt **texts(const char *prefix, size_t n) {
    sluice_prompt **ps = calloc(n, sizeof *ps);
    for (size_t i = 0; i < n; i++) {
        char buf[128];
        snprintf(buf, sizeof buf, "%s %zu", prefix, i);
        ps[i] = sluice_prompt_text(buf);
    }
    return ps;
}

static void free_prompts(sluice_prompt **ps, size_t n) {
    for (size_t i = 0; i < n; i++)
        sluice_prompt_free(ps[i]);
    free(ps);
}

/* Every response present, no error, and the completion echoing its prompt. */
static void check_answers(sluice_response **rs, size_t n, const char *prefix) {
    for (size_t i = 0; i < n; i++) {
        char want[128];
        snprintf(want, sizeof want, "%s %zu", prefix, i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(rs[i]);
        CU_ASSERT_FALSE(sluice_response_is_error(rs[i]));
        CU_ASSERT_PTR_NOT_NULL(strstr(sluice_response_completion(rs[i]), want));
    }
}

static void drop(void *ud, sluice_response *r) {
    (void)ud;
    sluice_response_free(r);
}

static void sleep_ms(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- tests -------------------------------------------------------------------------- */

/* Regression: a batch paced by its session's requests/min sends nothing for longer than a
 * proxy's read timeout between results, and without show_progress nothing else either: the
 * proxy cut it ("upstream timed out", the client saw INTERNAL RST_STREAM). Heartbeats keep
 * it open whatever show_progress says. */
static void test_paced_batch_through_the_proxy(void) {
    start(NULL);
    sluice_client *c = proxied_client(10, 0); /* 10/min: a result every 6 s */
    enum { n = 3 };
    sluice_prompt **ps = texts("paced", n);
    sluice_response **rs = NULL;
    CU_ASSERT_EQUAL(sluice_process_prompts(c, ps, n, NULL, &rs), 0);
    check_answers(rs, n, "paced");
    sluice_responses_free(rs, n);
    CU_ASSERT_EQUAL(nginx_log_count(&N, "error", "upstream timed out"), 0);
    free_prompts(ps, n);
    sluice_client_free(c);
    stop();
}

/* The control: the same proxy with heartbeats off cuts a stream that stays quiet (the
 * provider takes 8 s), so the tests above do exercise its timeout. */
static void test_quiet_stream_is_cut_without_heartbeats(void) {
    start("{\"rpc\": {\"heartbeat_interval_ms\": 0, \"max_wait_ms\": 3000}}");
    fake_provider_set_latency(P.fake, 8000, 0);
    sluice_client *c = proxied_client(0, 0);
    sluice_prompt **ps = texts("quiet", 1);
    sluice_response **rs = NULL;
    CU_ASSERT_NOT_EQUAL(sluice_process_prompts(c, ps, 1, NULL, &rs), 0);
    sluice_responses_free(rs, 1);
    CU_ASSERT_TRUE(nginx_log_count(&N, "error", "upstream timed out") > 0);
    free_prompts(ps, 1);
    sluice_client_free(c);
    stop();
}

/* A task that takes 12 s, waited for with no timeout of the caller's by a client pinging
 * every 10 s: one Wait would have been cut at 5 s; sluiced answers each Wait after 3 s with
 * the task pending and the SDK waits again, so the caller sees one call that succeeds. A
 * timeout of the caller's shorter than the task still ends the wait, with the entry NULL. */
static void test_long_wait_through_the_proxy(void) {
    start(NULL);
    fake_provider_set_latency(P.fake, 12000, 0);
    sluice_client *c = proxied_client(0, 10000);
    sluice_prompt *p = sluice_prompt_text("long wait");
    char *id = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_start_nowait(c, p, &id), 0);
    sluice_response **rs = NULL;
    size_t n = 0;
    const char *ids[] = {id};
    CU_ASSERT_EQUAL(sluice_wait_for_all(c, ids, 1, 1000, &rs, &n), SLUICE_ETIMEDOUT);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_PTR_NULL(n ? rs[0] : NULL);
    sluice_responses_free(rs, n);
    sluice_response *r = NULL;
    CU_ASSERT_EQUAL(sluice_wait_for(c, id, 0, &r), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_FALSE(sluice_response_is_error(r));
    CU_ASSERT_PTR_NOT_NULL(strstr(sluice_response_completion(r), "long wait"));
    sluice_response_free(r);
    /* it took several Waits, and none was cut */
    CU_ASSERT_TRUE(nginx_log_count(&N, "access", "POST /sluice.v1.Sluice/Wait") >= 3);
    CU_ASSERT_EQUAL(nginx_log_count(&N, "error", "upstream timed out"), 0);
    free(id);
    sluice_prompt_free(p);
    sluice_client_free(c);
    stop();
}

/* An AsCompleted stream over tasks that take 9 s sends no result for longer than the
 * proxy's timeout: heartbeats keep it open, and the SDK skips them. */
static void test_idle_as_completed_through_the_proxy(void) {
    start(NULL);
    fake_provider_set_latency(P.fake, 9000, 0);
    sluice_client *c = proxied_client(0, 0);
    enum { n = 2 };
    sluice_prompt **ps = texts("idle stream", n);
    char **ids = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_start_many(c, (const sluice_prompt *const *)ps, n, &ids), 0);
    sluice_iter *it = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_as_completed(c, (const char *const *)ids, n, &it), 0);
    bool seen[n] = {false, false};
    sluice_response *r;
    int rc;
    size_t got = 0;
    while ((rc = sluice_iter_next(it, &r)) == 0) {
        for (size_t i = 0; i < n; i++)
            if (strcmp(sluice_response_task_id(r), ids[i]) == 0) {
                CU_ASSERT_FALSE(seen[i]);
                seen[i] = true;
            }
        CU_ASSERT_FALSE(sluice_response_is_error(r));
        got++;
        sluice_response_free(r);
    }
    CU_ASSERT_EQUAL(rc, SLUICE_EEOF);
    CU_ASSERT_EQUAL(got, n);
    CU_ASSERT_EQUAL(nginx_log_count(&N, "error", "upstream timed out"), 0);
    sluice_iter_free(it);
    sluice_task_ids_free(ids, n);
    free_prompts(ps, n);
    sluice_client_free(c);
    stop();
}

/* A batch broken while its attempts are on their way (the client cancels; through a
 * proxy the same happens when the connection drops) is re-sent: the attempts went on as
 * ghosts and their answers fill the cache, so the re-run finishes through the proxy
 * without a single new upstream request. */
static void test_rerun_finishes_behind_the_proxy(void) {
    start(NULL);
    fake_provider_set_latency(P.fake, 3000, 0);
    sluice_client *c = proxied_client(0, 0);
    enum { n = 20 };
    sluice_prompt **ps = texts("rerun", n);
    sluice_batch *b = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_process_prompts_async(c, ps, n, NULL, drop, NULL, &b), 0);
    fake_counters fc;
    for (int i = 0; i < 1000; i++) { /* every attempt has reached the provider */
        fake_provider_counters(P.fake, &fc);
        if (fc.total == n)
            break;
        sleep_ms(10);
    }
    CU_ASSERT_EQUAL_FATAL(fc.total, n);
    sluice_batch_cancel(b);
    CU_ASSERT_NOT_EQUAL(sluice_batch_wait(b), 0);
    sluice_batch_free(b);
    sluice_response **rs = NULL;
    CU_ASSERT_EQUAL(sluice_process_prompts(c, ps, n, NULL, &rs), 0);
    check_answers(rs, n, "rerun");
    for (size_t i = 0; i < n; i++)
        CU_ASSERT_TRUE(rs[i] && (sluice_response_local_cache_hit(rs[i]) ||
                                 sluice_response_deduplicated(rs[i])));
    sluice_responses_free(rs, n);
    fake_provider_counters(P.fake, &fc);
    CU_ASSERT_EQUAL(fc.total, n);
    free_prompts(ps, n);
    sluice_client_free(c);
    stop();
}

/* A batch whose prompts add up to more than the proxy's client_max_body_size (1m): nginx
 * resets the stream (the client sees INTERNAL "RST_STREAM with error code 2"), because it
 * counts every message of the request stream against the limit. A client whose
 * max_call_bytes is the proxy's limit sends the same batch as several calls below it, and
 * every prompt goes through, answered in input order. */
static void test_large_batch_through_the_proxy(void) {
    start(NULL);
    enum { n = 1500 };
    char *pad = malloc(1001);
    memset(pad, 'x', 1000);
    pad[1000] = '\0';
    sluice_prompt **ps = calloc(n, sizeof *ps);
    for (size_t i = 0; i < n; i++) { /* ~1 KB each: ~1.5 MB in all */
        char *text = malloc(1100);
        snprintf(text, 1100, "large %zu %s", i, pad);
        ps[i] = sluice_prompt_text(text);
        free(text);
    }
    sluice_client *c = proxied_client(0, 0);
    sluice_response **rs = NULL;
    CU_ASSERT_NOT_EQUAL(sluice_process_prompts(c, ps, n, NULL, &rs), 0);
    sluice_responses_free(rs, n);
    CU_ASSERT_TRUE(nginx_log_count(&N, "error", "too large") > 0);
    sluice_client_free(c);

    sluice_model m = {.name = "m-a", .weight = 1};
    sluice_client_options o;
    memset(&o, 0, sizeof o);
    o.models = &m;
    o.n_models = 1;
    o.use_tls = true;
    o.tls_root_certs_pem = N.ca_pem;
    o.max_call_bytes = 1u << 20; /* nginx's client_max_body_size 1m */
    c = NULL;
    CU_ASSERT_EQUAL_FATAL(sluice_client_new(N.target, &o, &c), 0);
    rs = NULL;
    CU_ASSERT_EQUAL(sluice_process_prompts(c, ps, n, NULL, &rs), 0);
    size_t good = 0;
    for (size_t i = 0; rs && i < n; i++) {
        char want[64];
        snprintf(want, sizeof want, "large %zu ", i);
        good += rs[i] && strstr(sluice_response_completion(rs[i]), want) != NULL;
    }
    CU_ASSERT_EQUAL(good, n);
    sluice_responses_free(rs, n);
    free_prompts(ps, n);
    free(pad);
    sluice_client_free(c);
    stop();
}

int main(void) {
    static const test_case cases[] = {
        {"paced_batch_through_the_proxy", test_paced_batch_through_the_proxy},
        {"quiet_stream_is_cut_without_heartbeats", test_quiet_stream_is_cut_without_heartbeats},
        {"long_wait_through_the_proxy", test_long_wait_through_the_proxy},
        {"idle_as_completed_through_the_proxy", test_idle_as_completed_through_the_proxy},
        {"rerun_finishes_behind_the_proxy", test_rerun_finishes_behind_the_proxy},
        {"large_batch_through_the_proxy", test_large_batch_through_the_proxy},
        {NULL, NULL},
    };
    return test_run_suite("sdk_proxy", cases);
}
