/*
 * bench_dispatch - the dispatcher's figures, against the fake provider in its own process.
 *
 *   bench_dispatch [--quick]
 *
 *  throughput  N prompts through the dispatcher against a zero-latency fake, and in the same
 *              run the same requests sent by a plain curl-multi client (sluice_http) with
 *              the same number in flight: prompts_per_s, direct_per_s, ratio_to_direct;
 *              then the same over HTTP/2 + TLS with gzip-encoded answers, as real providers
 *              serve them (the *_h2_tls figures).
 *  pacing      a key limited to 12,000 requests/min on a fake that enforces the same limit
 *              over one-second windows: the share of the limit achieved over 30 s and the
 *              429s received.
 *  scale       10,000 prompts in flight at once against a fake with 2 s latency: peak RSS
 *              growth of this process (the fake runs elsewhere; the answers arrive together,
 *              so this includes decoding them) and whether all finished, on plain HTTP/1.1
 *              (one connection per prompt in flight) and on HTTP/2 + TLS (128 streams per
 *              connection); and the memory each prompt holds while it waits for its answer:
 *              kb_per_in_flight and kb_per_in_flight_h2_tls.
 * Prints one `name=value target=...` line per figure. Not a test.
 */
#include "bench/bench_util.h"
#include "fake_provider/fake_test_util.h"
#include "server/common/clock.h"
#include "server/common/log.h"
#include "server/dispatch/dispatcher.h"
#include "server/providers/provider.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_uint_fast64_t done_count;
static uint64_t window_end_ms;
static atomic_uint_fast64_t done_in_window;

static void on_done(void *ctx, uint64_t id, void *task_ctx, dtask_state final, llm_response *resp) {
    if (final == DTASK_DONE && clock_now_ms() <= window_end_ms)
        atomic_fetch_add(&done_in_window, 1);
    atomic_fetch_add(&done_count, 1);
    llm_response_free(resp);
}

static const dispatcher_sink sink = {on_done, NULL, NULL, NULL, NULL};

/* Every request of this benchmark, dispatched or sent direct, asks for 16 tokens. */
static llm_request *text_request(const char *text) {
    return bench_text_request(text, 16);
}

typedef struct rig {
    registry *reg;
    dispatcher *d;
    dsession *s;
} rig;

/* A fake provider process and how to reach it. */
typedef struct fake_proc {
    child c;
    char base[64];     /* http(s)://127.0.0.1:PORT */
    const char *ca;    /* certificate to trust, NULL for plain HTTP */
    const char *label; /* "" or "_h2_tls": the suffix of its figures */
} fake_proc;

/* Starts the fake binary on plain HTTP or, when cert_dir is set, on HTTP/2 + TLS with
 * gzip-encoded answers (its certificate is cert_dir/fake.crt). */
static int fake_start(const char *bin, const char *cert_dir, const char *latency, fake_proc *f) {
    char crt[300], key[300];
    snprintf(crt, sizeof crt, "%s/fake.crt", cert_dir ? cert_dir : "");
    snprintf(key, sizeof key, "%s/fake.key", cert_dir ? cert_dir : "");
    char *plain[] = {(char *)bin,    "--quiet",       "--threads", "2",
                     "--latency-ms", (char *)latency, NULL};
    char *tls[] = {(char *)bin,     "--quiet",    "--threads", "2",         "--latency-ms",
                   (char *)latency, "--tls-cert", crt,         "--tls-key", key,
                   "--http2",       "--gzip",     NULL};
    if (bench_spawn(cert_dir ? tls : plain, &f->c) != 0)
        return -1;
    snprintf(f->base, sizeof f->base, "%s://127.0.0.1:%d", cert_dir ? "https" : "http", f->c.port);
    static char ca[300];
    snprintf(ca, sizeof ca, "%s", crt);
    f->ca = cert_dir ? ca : NULL;
    f->label = cert_dir ? "_h2_tls" : "";
    return 0;
}

static int rig_start(rig *r, const fake_proc *f, uint32_t rpm, uint32_t conc) {
    char *text = bench_registry_json(f->base, rpm, 4000000000ull, conc);
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    char err[512];
    if (!j || registry_from_json(j, &r->reg, err, sizeof err) != 0)
        return -1;
    json_decref(j);
    dispatcher_config dc;
    memset(&dc, 0, sizeof dc);
    dc.reg = r->reg;
    dc.no_dedup = true;
    dc.http.ca_file = f->ca;
    if (f->ca) /* sluiced's default: HTTP/2 multiplexes; plain HTTP/1.1 needs a connection each */
        dc.http.max_connections_per_host = 128;
    if (dispatcher_new(&dc, &r->d, err, sizeof err) != 0 || dispatcher_start(r->d) != 0)
        return -1;
    dsession_model m = {"m-a", 1, {0}};
    dsession_config sc;
    memset(&sc, 0, sizeof sc);
    sc.models = &m;
    sc.n_models = 1;
    sc.cache_mode = CACHE_MODE_OFF;
    return dsession_new(r->reg, &sc, clock_now_ms(), &r->s, err, sizeof err);
}

static void rig_stop(rig *r) {
    dispatcher_session_close(r->d, r->s, NULL, NULL);
    dsession_unref(r->s);
    dispatcher_free(r->d);
    registry_free(r->reg);
}

static void submit(rig *r, uint64_t first_id, size_t n, const char *prefix) {
    enum { CHUNK = 5000 };
    dispatcher_task_spec *specs = calloc(CHUNK, sizeof *specs);
    for (size_t off = 0; off < n; off += CHUNK) {
        size_t k = n - off < CHUNK ? n - off : CHUNK;
        for (size_t i = 0; i < k; i++) {
            char text[64];
            snprintf(text, sizeof text, "%s %zu", prefix, off + i);
            specs[i].id = first_id + off + i;
            specs[i].request = text_request(text);
        }
        if (dispatcher_submit(r->d, r->s, specs, k, &sink) != 0)
            fprintf(stderr, "bench: submit failed\n");
    }
    free(specs);
}

/* False (and a message) when fewer than target tasks ended within timeout_s. */
static bool wait_done(uint64_t target, uint32_t timeout_s) {
    uint64_t deadline = clock_now_ms() + timeout_s * 1000ull;
    while (atomic_load(&done_count) < target && clock_now_ms() < deadline)
        usleep(2000);
    uint64_t done = atomic_load(&done_count);
    if (done < target)
        fprintf(stderr, "bench: only %llu of %llu tasks ended within %u s\n",
                (unsigned long long)done, (unsigned long long)target, timeout_s);
    return done >= target;
}

/* ---- throughput --------------------------------------------------------------------- */

static uint64_t direct_done;

static void direct_cb(void *ud, const http_response *resp) {
    direct_done++;
}

/* The same requests sent straight to the fake by a curl-multi client. */
static double direct_rate(rig *r, const fake_proc *f, size_t n, size_t in_flight) {
    char err[256];
    http_config hc;
    memset(&hc, 0, sizeof hc);
    hc.ca_file = f->ca;
    http_client *h = NULL;
    if (http_client_new(&hc, &h, err, sizeof err) != 0)
        return 0;
    const model_info *m = registry_find(r->reg, "m-a");
    const upstream_key *k = registry_model_key(r->reg, m);
    direct_done = 0;
    size_t sent = 0;
    uint64_t t0 = clock_now_us();
    while (direct_done < n) {
        while (sent < n && sent - direct_done < in_flight) {
            char text[64];
            snprintf(text, sizeof text, "direct %zu", sent++);
            llm_request *req = text_request(text);
            llm_sampling s;
            llm_sampling_merge(&s, NULL, &req->sampling);
            provider_request pr;
            memset(&pr, 0, sizeof pr);
            provider_openai.build(m, k->secret, req, &s, &pr, err, sizeof err);
            http_client_submit(h, &pr, 30000, direct_cb, NULL);
            llm_sampling_cleanup(&s);
            llm_request_free(req);
        }
        http_client_poll(h, 100);
    }
    double secs = (double)(clock_now_us() - t0) / 1e6;
    http_client_free(h);
    return (double)n / secs;
}

static int bench_throughput(const fake_proc *f, size_t n) {
    rig r;
    const uint32_t conc = 256;
    if (rig_start(&r, f, 100000000, conc) != 0) {
        fprintf(stderr, "bench: throughput setup failed\n");
        return -1;
    }
    atomic_store(&done_count, 0);
    window_end_ms = UINT64_MAX;
    uint64_t t0 = clock_now_us();
    submit(&r, 1, n, "throughput");
    bool ok = wait_done(n, 300);
    double rate = (double)atomic_load(&done_count) / ((double)(clock_now_us() - t0) / 1e6);
    double direct = direct_rate(&r, f, n, conc);
    bool tls = f->ca != NULL; /* the issue sets targets for the plain figures only */
    printf("prompts_per_s%s=%.0f target%s\n", f->label, rate, tls ? "=none" : ">=15000");
    printf("direct_per_s%s=%.0f target=none (plain curl-multi client, %u in flight)\n", f->label,
           direct, conc);
    printf("ratio_to_direct%s=%.2f target%s\n", f->label, direct > 0 ? rate / direct : 0,
           tls ? "=none" : ">=0.5");
    fflush(stdout);
    rig_stop(&r);
    return ok && direct > 0 ? 0 : -1;
}

/* ---- pacing ------------------------------------------------------------------------- */

static int bench_pacing(const fake_proc *f, uint32_t seconds) {
    int fake_port = f->c.port;
    bench_fake_post(fake_port, "/_fake/reset", "{}");
    bench_fake_post(fake_port, "/_fake/config",
                    "{\"keys\":{\"sk-bench\":{\"rpm\":12000,\"tpm\":0,\"window_ms\":1000}}}");
    rig r;
    if (rig_start(&r, f, 12000, 1000) != 0) {
        fprintf(stderr, "bench: pacing setup failed\n");
        return -1;
    }
    atomic_store(&done_count, 0);
    atomic_store(&done_in_window, 0);
    uint64_t t0 = clock_now_ms();
    window_end_ms = t0 + seconds * 1000ull;
    size_t n = 200 * seconds + 2000; /* more than the window can take */
    submit(&r, 1, n, "paced");
    while (clock_now_ms() < window_end_ms)
        usleep(10000);
    double share = (double)atomic_load(&done_in_window) / (200.0 * seconds);
    dispatcher_stats st;
    memset(&st, 0, sizeof st);
    dispatcher_get_stats(r.d, &st);
    printf("pacing_share=%.3f target>=0.97 (12000 rpm over %u s)\n", share, seconds);
    printf("upstream_429s=%llu target<=0\n", (unsigned long long)st.upstream_429);
    fflush(stdout);
    dispatcher_stats_cleanup(&st);
    rig_stop(&r);
    bench_fake_post(fake_port, "/_fake/config", "{\"keys\":{\"sk-bench\":{\"rpm\":0,\"tpm\":0}}}");
    return 0;
}

/* ---- scale -------------------------------------------------------------------------- */

/* n prompts in flight at once against f (a fake with 2 s latency). */
static int bench_scale(const fake_proc *f, size_t n) {
    rig r;
    if (rig_start(&r, f, 100000000, (uint32_t)n + 100) != 0) {
        fprintf(stderr, "bench: scale setup failed\n");
        return -1;
    }
    atomic_store(&done_count, 0);
    window_end_ms = UINT64_MAX;
    double base = bench_rss_mb(0), peak = base, waiting = base;
    submit(&r, 1, n, "scale prompt with a little more text to look like a real one");
    uint64_t deadline = clock_now_ms() + 120000;
    while (atomic_load(&done_count) < n && clock_now_ms() < deadline) {
        double rss = bench_rss_mb(0);
        if (rss > peak)
            peak = rss;
        if (atomic_load(&done_count) == 0 && rss > waiting)
            waiting = rss; /* every prompt sent, no answer yet */
        usleep(20000);
    }
    uint64_t done = atomic_load(&done_count);
    if (f->ca) {
        printf("rss_growth_mb%s=%.1f target=none (%zu in flight; %llu of %zu finished)\n", f->label,
               peak - base, n, (unsigned long long)done, n);
    } else {
        printf("rss_growth_mb=%.1f target<=250 (%zu in flight; %llu of %zu finished)\n",
               peak - base, n, (unsigned long long)done, n);
    }
    printf("kb_per_in_flight%s=%.1f target=none (while all %zu wait for their answers)\n", f->label,
           (waiting - base) * 1024.0 / (double)n, n);
    fflush(stdout);
    rig_stop(&r);
    return done == n ? 0 : -1;
}

/* Both wires for one phase: plain HTTP, then HTTP/2 + TLS (figures side by side). */
static int on_both_wires(const char *bin, const char *dir, const char *latency, size_t arg,
                         int (*phase)(const fake_proc *, size_t)) {
    int rc = 0;
    for (int tls = 0; tls < 2; tls++) {
        fake_proc f;
        if (fake_start(bin, tls ? dir : NULL, latency, &f) != 0)
            return -1;
        rc |= phase(&f, arg);
        bench_stop(&f.c);
    }
    return rc;
}

int main(int argc, char **argv) {
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    log_set_level(LOG_LEVEL_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    http_raise_fd_limit();
    char fake_bin[4096], dir[64];
    snprintf(fake_bin, sizeof fake_bin, "%s/tests/sluice-fake-provider", bench_build_dir(argv[0]));
    fake_make_tmpdir(dir, sizeof dir);
    if (fake_make_cert(dir, "fake") != 0) {
        fprintf(stderr, "bench: openssl could not make a certificate\n");
        return 1;
    }
    int rc = on_both_wires(fake_bin, dir, "0", quick ? 20000 : 100000, bench_throughput);
    fake_proc plain;
    if (fake_start(fake_bin, NULL, "0", &plain) != 0)
        return 1;
    rc |= bench_pacing(&plain, quick ? 10 : 30);
    bench_stop(&plain.c);
    rc |= on_both_wires(fake_bin, dir, "2000", quick ? 2000 : 10000, bench_scale);
    fake_rmdir_r(dir);
    curl_global_cleanup();
    return rc ? 1 : 0;
}
