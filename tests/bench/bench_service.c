/*
 * bench_service - end to end through gRPC: the C SDK -> sluiced -> a zero-latency fake,
 * each in its own process.
 *
 *   bench_service [--quick] [--latency-only]
 *
 *  batch_prompts_per_s   BatchProcess of 100,000 distinct prompts
 *  cached_replay_per_s   the same batch again (every answer from the cache)
 *  added_p50/p99_ms_c1   Start+Wait latency minus a direct call to the fake, 1 in flight
 *  added_p50/p99_ms_c64  the same with 64 in flight
 *  peak_rss_mb           sluiced's peak resident memory (VmHWM) after the 100k batch
 * Prints one `name=value target=...` line per figure. Not a test.
 */
#include "bench/bench_util.h"
#include "tests/fake_provider/fake_test_util.h"
#include "server/common/clock.h"
#include "server/http/http.h"
#include "client/rpc/rpc.h"
#include "sluice/sluice.h"
#include "sluice/v1/sluice.sluice.h"

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[64] = "/tmp/sluice-bench-XXXXXX";

/* Starts sluiced on 127.0.0.1:0 with a registry pointing at the fake; reads its port back
 * from --port-file. */
static int start_sluiced(const char *build, int fake_port, child *out) {
    char base[64], reg_path[128], data[128], port_file[128], bin[4096];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", fake_port);
    char *reg = bench_registry_json(base, 100000000, 4000000000ull, 256);
    snprintf(reg_path, sizeof reg_path, "%s/registry.json", tmpdir);
    FILE *f = fopen(reg_path, "w");
    if (!f || fputs(reg, f) < 0 || fclose(f) != 0)
        return -1;
    free(reg);
    snprintf(data, sizeof data, "%s/data", tmpdir);
    snprintf(port_file, sizeof port_file, "%s/port", tmpdir);
    snprintf(bin, sizeof bin, "%s/server/sluiced", build);
    setenv("SLUICE_LOG_LEVEL", "error", 1);
    pid_t pid = fork();
    if (pid == 0) {
        execl(bin, bin, "--listen", "127.0.0.1:0", "--data-dir", data, "--registry", reg_path,
              "--port-file", port_file, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 3000; i++) {
        FILE *pf = fopen(port_file, "r");
        int port = 0;
        if (pf && fscanf(pf, "%d", &port) == 1 && port > 0) {
            fclose(pf);
            out->pid = pid;
            out->port = port;
            return 0;
        }
        if (pf)
            fclose(pf);
        usleep(10000);
    }
    return -1;
}

static sluice_client *client(const char *target, sluice_cache_mode mode) {
    sluice_model m = {"m-a", 1, {0}};
    sluice_client_options o;
    memset(&o, 0, sizeof o);
    o.models = &m;
    o.n_models = 1;
    o.cache_mode = mode;
    o.sampling.max_new_tokens = 16;
    sluice_client *c = NULL;
    if (sluice_client_new(target, &o, &c) != 0)
        fprintf(stderr, "bench: %s\n", sluice_last_error());
    return c;
}

static atomic_uint_fast64_t results;

static void count(void *ud, sluice_response *r) {
    atomic_fetch_add(&results, 1);
    sluice_response_free(r);
}

static double run_batch(sluice_client *c, sluice_prompt **ps, size_t n) {
    atomic_store(&results, 0);
    uint64_t t0 = clock_now_us();
    int rc = sluice_process_prompts_cb(c, ps, n, NULL, count, NULL);
    double secs = (double)(clock_now_us() - t0) / 1e6;
    if (rc || atomic_load(&results) != n)
        fprintf(stderr, "bench: batch ended with %s after %llu results\n", sluice_last_error(),
                (unsigned long long)atomic_load(&results));
    return (double)n / secs;
}

/* ---- latency ------------------------------------------------------------------------ */

/* Start+Wait pairs kept `in_flight` deep from one thread on one completion queue (the
 * generated async stubs), so the load generator is as light as the direct baseline's. */
typedef struct slot {
    uint64_t t0;
    bool waiting; /* Start answered, Wait outstanding */
} slot;

static void issue_start(sluice_rpc_async *a, sluice_rpc_channel *ch, const char *session, slot *sl,
                        size_t seq) {
    char text[64];
    snprintf(text, sizeof text, "latency %zu", seq);
    Sluice__V1__Prompt p = SLUICE__V1__PROMPT__INIT;
    p.text = text;
    Sluice__V1__Prompt *pp = &p;
    Sluice__V1__StartRequest req = SLUICE__V1__START_REQUEST__INIT;
    req.session_id = (char *)session;
    req.n_prompts = 1;
    req.prompts = &pp;
    sluice_rpc_call_opts o = {30000};
    sl->t0 = clock_now_us();
    sl->waiting = false;
    sluice__v1__sluice__start__async(a, ch, &req, &o, sl);
}

static void issue_wait(sluice_rpc_async *a, sluice_rpc_channel *ch, slot *sl, char *task_id) {
    Sluice__V1__WaitRequest req = SLUICE__V1__WAIT_REQUEST__INIT;
    req.task_ids = &task_id;
    req.n_task_ids = 1;
    req.timeout_ms = 20000;
    sluice_rpc_call_opts o = {30000};
    sl->waiting = true;
    sluice__v1__sluice__wait__async(a, ch, &req, &o, sl);
}

/* Fills ms[0..n) with Start+Wait latencies; returns how many it measured (fewer than n when
 * a call failed or nothing finished within a minute). */
static size_t sluice_latency(const char *target, const char *session, size_t in_flight, size_t n,
                             double *ms) {
    sluice_rpc_channel *ch = NULL;
    sluice_rpc_async *a = NULL;
    if (sluice_rpc_channel_new(target, NULL, &ch) != 0 || sluice_rpc_async_new(&a) != 0)
        return 0;
    slot *slots = calloc(in_flight, sizeof *slots);
    size_t started = 0, done = 0;
    for (; started < in_flight && started < n; started++)
        issue_start(a, ch, session, &slots[started], started);
    while (done < n) {
        void *tag;
        ProtobufCMessage *resp = NULL;
        sluice_rpc_status st;
        if (sluice_rpc_async_next(a, 60000, &tag, &resp, &st) != 0 || !resp) {
            fprintf(stderr, "bench: Start+Wait stopped after %zu of %zu\n", done, n);
            break;
        }
        slot *sl = tag;
        if (!sl->waiting) {
            Sluice__V1__StartResponse *sr = (Sluice__V1__StartResponse *)resp;
            issue_wait(a, ch, sl, sr->task_ids[0]);
        } else {
            ms[done++] = (double)(clock_now_us() - sl->t0) / 1000.0;
            if (started < n)
                issue_start(a, ch, session, sl, started++);
        }
        protobuf_c_message_free_unpacked(resp, NULL);
    }
    free(slots);
    sluice_rpc_async_free(a);
    sluice_rpc_channel_free(ch);
    return done;
}

typedef struct direct_req {
    uint64_t t0;
    double *slot;
    size_t *done;
} direct_req;

static void direct_cb(void *ud, const http_response *resp) {
    direct_req *r = ud;
    *r->slot = (double)(clock_now_us() - r->t0) / 1000.0;
    (*r->done)++;
    free(r);
}

/* Direct calls to the fake with `in_flight` outstanding: the baseline latency. */
static void direct_latency(int fake_port, size_t in_flight, size_t n, double *ms) {
    char err[256], url[128];
    http_config hc;
    memset(&hc, 0, sizeof hc);
    http_client *h = NULL;
    http_client_new(&hc, &h, err, sizeof err);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", fake_port);
    size_t sent = 0, done = 0;
    while (done < n) {
        while (sent < n && sent - done < in_flight) {
            char *body = NULL;
            if (asprintf(&body,
                         "{\"model\":\"up-a\",\"max_completion_tokens\":16,\"messages\":"
                         "[{\"role\":\"user\",\"content\":\"direct %zu\"}]}",
                         sent) < 0)
                return;
            char *hdrs[] = {strdup("Authorization: Bearer sk-bench"),
                            strdup("Content-Type: application/json")};
            provider_request pr = {strdup(url), malloc(sizeof hdrs), 2, body, strlen(body)};
            memcpy(pr.headers, hdrs, sizeof hdrs);
            direct_req *r = malloc(sizeof *r);
            *r = (direct_req){clock_now_us(), &ms[sent++], &done};
            http_client_submit(h, &pr, 30000, direct_cb, r);
        }
        http_client_poll(h, 100);
    }
    http_client_free(h);
}

static void added(const char *suffix, double *direct, size_t nd, double *sl, size_t ns,
                  const char *p99_target) {
    double d50 = bench_percentile(direct, nd, 50), d99 = bench_percentile(direct, nd, 99);
    double s50 = bench_percentile(sl, ns, 50), s99 = bench_percentile(sl, ns, 99);
    printf("added_p50_ms_%s=%.3f target=none (start+wait %.3f vs direct %.3f)\n", suffix, s50 - d50,
           s50, d50);
    printf("added_p99_ms_%s=%.3f target%s (start+wait %.3f vs direct %.3f)\n", suffix, s99 - d99,
           p99_target, s99, d99);
}

int main(int argc, char **argv) {
    bool quick = false, latency_only = false;
    for (int i = 1; i < argc; i++) {
        quick |= strcmp(argv[i], "--quick") == 0;
        latency_only |= strcmp(argv[i], "--latency-only") == 0;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    http_raise_fd_limit();
    const char *build = bench_build_dir(argv[0]);
    if (!mkdtemp(tmpdir))
        return 1;
    char fake_bin[4096];
    snprintf(fake_bin, sizeof fake_bin, "%s/tests/sluice-fake-provider", build);
    char *fargv[] = {fake_bin, "--quiet", "--threads", "2", NULL};
    child fake, sd;
    if (bench_spawn(fargv, &fake) != 0 || start_sluiced(build, fake.port, &sd) != 0)
        return 1;
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", sd.port);
    int spid = (int)sd.pid;

    size_t n = latency_only ? 0 : quick ? 20000 : 100000;
    sluice_prompt **ps = calloc(n, sizeof *ps);
    for (size_t i = 0; i < n; i++) {
        char text[64];
        snprintf(text, sizeof text, "bench prompt %zu", i);
        ps[i] = sluice_prompt_text(text);
    }
    sluice_client *c = client(target, SLUICE_CACHE_READ_WRITE);
    if (n) {
        double batch = run_batch(c, ps, n);
        printf("batch_prompts_per_s=%.0f target>=10000 (%zu prompts)\n", batch, n);
        fflush(stdout);
        usleep(500000); /* let the cache writes land */
        double replay = run_batch(c, ps, n);
        printf("cached_replay_per_s=%.0f target>=50000\n", replay);
        printf("peak_rss_mb=%.1f target=none (sluiced VmHWM after the %zu batch)\n",
               spid ? bench_hwm_mb(spid) : 0.0, n);
        fflush(stdout);
    }

    sluice_client *lc = client(target, SLUICE_CACHE_OFF);
    if (sluice_client_open(lc) != 0)
        fprintf(stderr, "bench: %s\n", sluice_last_error());
    const char *session = sluice_client_session_id(lc);
    size_t n1 = quick ? 300 : 2000, per64 = quick ? 20 : 100;
    double *d1 = calloc(n1, sizeof *d1), *s1 = calloc(n1, sizeof *s1);
    double *d64 = calloc(64 * per64, sizeof *d64), *s64 = calloc(64 * per64, sizeof *s64);
    direct_latency(fake.port, 1, n1, d1);
    size_t got1 = sluice_latency(target, session, 1, n1, s1);
    added("c1", d1, n1, s1, got1, "=none");
    direct_latency(fake.port, 64, 64 * per64, d64);
    size_t got64 = sluice_latency(target, session, 64, 64 * per64, s64);
    added("c64", d64, 64 * per64, s64, got64, "<=1");
    fflush(stdout);

    for (size_t i = 0; i < n; i++)
        sluice_prompt_free(ps[i]);
    free(ps);
    free(d1);
    free(s1);
    free(d64);
    free(s64);
    sluice_client_free(c);
    sluice_client_free(lc);
    bench_stop(&sd);
    bench_stop(&fake);
    fake_rmdir_r(tmpdir);
    curl_global_cleanup();
    return 0;
}
