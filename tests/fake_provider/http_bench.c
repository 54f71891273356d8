/*
 * http_bench.c - sluice-http-bench: drives http_client against the fake provider and prints
 * figures (requests/s, errors, peak in flight, client RSS per in-flight transfer).
 *
 * Keeps --concurrency transfers in flight (each completion submits the next) until
 * --requests have finished. Against an in-process fake (default) it measures the pair;
 * with --url it loads an external sluice-fake-provider so RSS is the client's alone. With
 * --latency-ms (set through the fake's control API) every transfer is held open, so the
 * RSS growth at the peak divided by the transfers in flight is the client's memory per
 * in-flight transfer, libcurl's buffers included. Timing lives here, not in tests.
 */
#include "server/common/clock.h"
#include "server/http/http.h"
#include "tests/fake_provider/fake_provider.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

typedef struct bench {
    http_client *client;
    char url[256];
    unsigned long total, submitted, done, ok, errors, non2xx;
    unsigned long concurrency;
    size_t peak_in_flight;
    long rss_peak_kb;
    int body_pad;
} bench;

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (!d)
        abort();
    memcpy(d, s, n);
    return d;
}

static void submit_one(bench *b);

static void on_done(void *ud, const http_response *resp) {
    bench *b = ud;
    b->done++;
    if (resp->error != HTTP_OK)
        b->errors++;
    else if (resp->status / 100 != 2)
        b->non2xx++;
    else
        b->ok++;
    if (b->submitted < b->total)
        submit_one(b);
}

static void submit_one(bench *b) {
    provider_request req;
    memset(&req, 0, sizeof req);
    char body[512];
    int n = snprintf(body, sizeof body,
                     "{\"model\":\"bench-model\",\"messages\":[{\"role\":\"user\",\"content\":"
                     "\"benchmark prompt number %lu %.*s\"}],\"max_completion_tokens\":16}",
                     b->submitted, b->body_pad, "................................................");
    req.url = dup_str(b->url);
    req.n_headers = 2;
    req.headers = calloc(2, sizeof *req.headers);
    req.headers[0] = dup_str("Authorization: Bearer sk-bench");
    req.headers[1] = dup_str("Content-Type: application/json");
    req.body = dup_str(body);
    req.body_len = (size_t)n;
    b->submitted++;
    if (!http_client_submit(b->client, &req, 60000, on_done, b)) {
        fprintf(stderr, "submit failed\n");
        exit(1);
    }
}

static void configure_latency(const char *base, unsigned latency_ms) {
    char url[300], body[64];
    snprintf(url, sizeof url, "%s/_fake/config", base);
    snprintf(body, sizeof body, "{\"latency_ms\":%u}", latency_ms);
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, fwrite);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, stderr);
    if (curl_easy_perform(e) != CURLE_OK)
        fprintf(stderr, "cannot configure the fake at %s\n", base);
    fputc('\n', stderr);
    curl_easy_cleanup(e);
}

static void run(bench *b) {
    long rss0 = rss_kb();
    double cpu0 = cpu_seconds();
    uint64_t t0 = clock_now_us();
    for (unsigned long i = 0; i < b->concurrency && b->submitted < b->total; i++)
        submit_one(b);
    uint64_t next_sample = 0;
    unsigned long polls = 0;
    while (b->done < b->total) {
        http_client_poll(b->client, 1000);
        polls++;
        size_t inf = http_client_in_flight(b->client);
        if (inf > b->peak_in_flight)
            b->peak_in_flight = inf;
        if (inf == b->peak_in_flight && clock_now_ms() >= next_sample) {
            next_sample = clock_now_ms() + 100; /* /proc reads are not free */
            long r = rss_kb();
            if (r > b->rss_peak_kb)
                b->rss_peak_kb = r;
        }
    }
    double secs = (double)(clock_now_us() - t0) / 1e6;
    double per_in_flight =
        b->peak_in_flight ? (double)(b->rss_peak_kb - rss0) * 1024.0 / (double)b->peak_in_flight
                          : 0.0;
    /* One figure per line, as the benchmarks print them; no issue sets targets for these. */
    printf("req_per_s=%.0f target=none (%lu requests in %.3f s: %lu ok, %lu non-2xx, %lu "
           "errors)\n",
           (double)b->done / secs, b->done, secs, b->ok, b->non2xx, b->errors);
    printf("cpu_us_per_request=%.1f target=none (%.1f requests per poll, %lu polls)\n",
           (cpu_seconds() - cpu0) * 1e6 / (double)b->done, (double)b->done / (double)polls, polls);
    printf("per_in_flight_bytes=%.0f target=none (peak %zu in flight; RSS %ld -> %ld KB)\n",
           per_in_flight, b->peak_in_flight, rss0, b->rss_peak_kb);
}

int main(int argc, char **argv) {
    bench b;
    memset(&b, 0, sizeof b);
    b.total = 200000;
    b.concurrency = 256;
    const char *base = NULL;
    unsigned latency = 0, threads = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        unsigned long v = strtoul(argv[i + 1], NULL, 10);
        if (strcmp(argv[i], "--url") == 0)
            base = argv[i + 1];
        else if (strcmp(argv[i], "--requests") == 0)
            b.total = v;
        else if (strcmp(argv[i], "--concurrency") == 0)
            b.concurrency = v;
        else if (strcmp(argv[i], "--latency-ms") == 0)
            latency = (unsigned)v;
        else if (strcmp(argv[i], "--fake-threads") == 0)
            threads = (unsigned)v;
        else if (strcmp(argv[i], "--pad") == 0)
            b.body_pad = (int)(v > 48 ? 48 : v);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    printf("(file descriptor limit raised to %d)\n", http_raise_fd_limit());
    fake_provider *fp = NULL;
    char err[256];
    if (!base) {
        fake_provider_config cfg = {.threads = threads, .latency_ms = latency, .quiet = true};
        if (fake_provider_new(&cfg, &fp, err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        base = fake_provider_base_url(fp);
    } else if (latency) {
        configure_latency(base, latency);
    }
    snprintf(b.url, sizeof b.url, "%s/v1/chat/completions", base);
    if (http_client_new(NULL, &b.client, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    run(&b);
    http_client_free(b.client);
    fake_provider_free(fp);
    curl_global_cleanup();
    return b.errors ? 1 : 0;
}
