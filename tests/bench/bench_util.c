/* Benchmark helpers (see bench_util.h). */
#include "bench/bench_util.h"

#include <curl/curl.h>
#include <libgen.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int bench_spawn(char *const argv[], child *out) {
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test, even on a crash */
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    int port = 0;
    if (!f || fscanf(f, "port=%d", &port) != 1) {
        fprintf(stderr, "bench: %s did not report its port\n", argv[0]);
        if (f)
            fclose(f);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    fclose(f);
    out->pid = pid;
    out->port = port;
    return 0;
}

void bench_stop(child *c) {
    if (c->pid <= 0)
        return;
    kill(c->pid, SIGTERM);
    for (int i = 0; i < 1000; i++) {
        if (waitpid(c->pid, NULL, WNOHANG) == c->pid) {
            c->pid = 0;
            return;
        }
        usleep(10000);
    }
    kill(c->pid, SIGKILL);
    waitpid(c->pid, NULL, 0);
    c->pid = 0;
}

const char *bench_build_dir(const char *argv0) {
    static char dir[4096];
    const char *env = getenv("SLUICE_BINARY_DIR");
    if (env)
        return env;
    /* benchmarks live in <build>/tests/ */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", argv0);
    snprintf(dir, sizeof dir, "%s/..", dirname(tmp));
    return dir;
}

static double status_mb(pid_t pid, const char *field) {
    char path[64];
    if (pid)
        snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    else
        snprintf(path, sizeof path, "/proc/self/status");
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[256];
    double kb = 0;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0)
            kb = strtod(line + n + 1, NULL);
    fclose(f);
    return kb / 1024.0;
}

double bench_rss_mb(pid_t pid) {
    return status_mb(pid, "VmRSS");
}

double bench_hwm_mb(pid_t pid) {
    return status_mb(pid, "VmHWM");
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_percentile(double *v, size_t n, double p) {
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

char *bench_registry_json(const char *base_url, uint32_t rpm, uint64_t tpm, uint32_t conc) {
    setenv("SLUICE_TEST_KEY_A", "sk-bench", 1);
    char *s = NULL;
    if (asprintf(&s,
                 "{\"keys\":{\"ka\":{\"provider\":\"openai\",\"env\":\"SLUICE_TEST_KEY_A\","
                 "\"requests_per_minute\":%u,\"tokens_per_minute\":%llu,\"max_concurrent\":%u}},"
                 "\"models\":{\"m-a\":{\"provider\":\"openai\",\"upstream\":\"up-a\","
                 "\"base_url\":\"%s/v1\",\"key\":\"ka\",\"input_price\":1,\"output_price\":2,"
                 "\"context_window\":100000}}}",
                 rpm, (unsigned long long)tpm, conc, base_url) < 0)
        return NULL;
    return s;
}

llm_request *bench_text_request(const char *text, uint32_t max_new_tokens) {
    llm_request *r = llm_request_new();
    llm_request_add_text(r, LLM_ROLE_USER, text);
    if (max_new_tokens) {
        r->sampling.set = LLM_SET_MAX_NEW_TOKENS;
        r->sampling.max_new_tokens = max_new_tokens;
    }
    return r;
}

static size_t collect(char *ptr, size_t size, size_t n, void *ud) {
    char **acc = ud;
    size_t old = *acc ? strlen(*acc) : 0, add = size * n;
    char *next = realloc(*acc, old + add + 1);
    if (!next)
        return 0;
    memcpy(next + old, ptr, add);
    next[old + add] = '\0';
    *acc = next;
    return add;
}

static int fake_request(int port, const char *path, const char *json, char **out) {
    CURL *c = curl_easy_init();
    if (!c)
        return -1;
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (json)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    long code = 0;
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    return rc == CURLE_OK && code == 200 ? 0 : -1;
}

int bench_fake_post(int port, const char *path, const char *json) {
    char *body = NULL;
    int rc = fake_request(port, path, json, &body);
    free(body);
    return rc;
}

char *bench_fake_get(int port, const char *path) {
    char *body = NULL;
    if (fake_request(port, path, NULL, &body) != 0) {
        free(body);
        return NULL;
    }
    return body;
}
