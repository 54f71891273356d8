/* fake_test_util.c - helpers for tests of and with the fake provider (see the header). */
#include "tests/fake_provider/fake_test_util.h"

#include "server/common/alloc.h"
#include "server/common/buf.h"

#include <curl/curl.h>
#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static size_t collect(char *p, size_t size, size_t n, void *ud) {
    return buf_append(ud, p, size * n) == 0 ? size * n : 0;
}

void fake_http_request(const char *method, const char *url, const char *const *headers,
                       const char *body, long timeout_ms, fake_http_result *out) {
    memset(out, 0, sizeof *out);
    buf b, h;
    buf_init(&b, 64u << 20);
    buf_init(&h, 1u << 20);
    CURL *e = curl_easy_init();
    struct curl_slist *sl = curl_slist_append(NULL, "Expect:");
    for (size_t i = 0; headers && headers[i]; i++)
        sl = curl_slist_append(sl, headers[i]);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, sl);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms ? timeout_ms : 10000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &h);
    if (body)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    out->curl_code = (int)curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &out->status);
    curl_easy_cleanup(e);
    curl_slist_free_all(sl);
    out->body = buf_steal(&b, &out->body_len);
    out->headers = buf_steal(&h, NULL);
}

void fake_http_result_cleanup(fake_http_result *r) {
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof *r);
}

const char *fake_http_header(const fake_http_result *r, const char *name, char *out,
                             size_t outlen) {
    size_t n = strlen(name);
    for (const char *line = r->headers; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > n && strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            size_t vl = (size_t)(line + len - v);
            while (vl && isspace((unsigned char)v[vl - 1]))
                vl--;
            snprintf(out, outlen, "%.*s", (int)vl, v);
            return out;
        }
        line = end ? end + 1 : NULL;
    }
    return NULL;
}

void fake_make_tmpdir(char *out, size_t outlen) {
    snprintf(out, outlen, "/tmp/sluice-test-XXXXXX");
    if (!mkdtemp(out)) {
        perror("mkdtemp");
        abort();
    }
}

static int run(const char *cmd) {
    int rc = system(cmd);
    return rc == 0 ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0)
        fprintf(stderr, "cannot remove %s: %s\n", path, strerror(errno));
    return 0; /* remove what can be removed */
}

void fake_rmdir_r(const char *dir) {
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        fprintf(stderr, "cannot walk %s: %s\n", dir, strerror(errno));
}

int fake_make_cert_for(const char *dir, const char *name, const char *host) {
    char *cmd = xasprintf("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                          "-nodes -days 2 -subj /CN=%s "
                          "-addext subjectAltName=IP:127.0.0.1,DNS:%s "
                          "-keyout '%s/%s.key' -out '%s/%s.crt' >/dev/null 2>&1",
                          host, host, dir, name, dir, name);
    int rc = run(cmd);
    free(cmd);
    return rc;
}

int fake_make_cert(const char *dir, const char *name) {
    return fake_make_cert_for(dir, name, "localhost");
}

const char *fake_wire_name(fake_wire_mode mode) {
    switch (mode) {
    case FAKE_WIRE_H1_TLS:
        return "h1tls";
    case FAKE_WIRE_H2_TLS:
        return "h2tls";
    default:
        return "plain";
    }
}

static fake_wire_mode wire_from_env(void) {
    const char *w = getenv("SLUICE_TEST_WIRE");
    if (!w || !*w || strcmp(w, "plain") == 0)
        return FAKE_WIRE_PLAIN;
    if (strcmp(w, "h1tls") == 0)
        return FAKE_WIRE_H1_TLS;
    if (strcmp(w, "h2tls") == 0)
        return FAKE_WIRE_H2_TLS;
    fprintf(stderr, "SLUICE_TEST_WIRE=%s: expected plain, h1tls or h2tls\n", w);
    abort();
}

void fake_setup_init(fake_setup *s, fake_wire_mode mode, const char *dir) {
    memset(s, 0, sizeof *s);
    s->mode = mode == FAKE_WIRE_FROM_ENV ? wire_from_env() : mode;
    s->cfg.quiet = true;
    if (s->mode == FAKE_WIRE_PLAIN)
        return;
    char path[300];
    if (fake_make_cert(dir, "fake") != 0) {
        fprintf(stderr, "fake_setup_init: openssl could not make a certificate in %s\n", dir);
        abort();
    }
    snprintf(path, sizeof path, "%s/fake.key", dir);
    s->key_pem = fake_read_file(path);
    snprintf(s->ca_file, sizeof s->ca_file, "%s/fake.crt", dir);
    s->cert_pem = fake_read_file(s->ca_file);
    if (!s->cert_pem || !s->key_pem)
        abort();
    s->cfg.tls_cert_pem = s->cert_pem;
    s->cfg.tls_key_pem = s->key_pem;
    s->cfg.http2 = s->mode == FAKE_WIRE_H2_TLS;
    s->cfg.gzip = true;
    s->cfg.chunked = true;
}

bool fake_setup_wire_used(const fake_setup *s, fake_provider *fp) {
    fake_counters n;
    fake_provider_counters(fp, &n);
    bool ok = s->mode == FAKE_WIRE_H2_TLS ? n.h2_streams >= n.total : n.h2_streams == 0;
    if (!ok)
        fprintf(stderr, "fake provider on %s: %llu requests, %llu of them on HTTP/2 streams\n",
                fake_wire_name(s->mode), (unsigned long long)n.total,
                (unsigned long long)n.h2_streams);
    return ok;
}

void fake_setup_cleanup(fake_setup *s) {
    free(s->cert_pem);
    free(s->key_pem);
    memset(s, 0, sizeof *s);
}

char *fake_read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    buf b;
    buf_init(&b, 64u << 20);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    return buf_steal(&b, NULL);
}

char *fake_registry_json(const char *base_url, fake_key_limits ka, fake_key_limits kb,
                         fake_key_limits kg, const char *extra_models) {
    return xasprintf(
        "{\"keys\":{"
        "\"ka\":{\"provider\":\"openai\",\"env\":\"SLUICE_TEST_KEY_A\","
        "\"requests_per_minute\":%u,\"tokens_per_minute\":%u,\"max_concurrent\":%u},"
        "\"kb\":{\"provider\":\"anthropic\",\"env\":\"SLUICE_TEST_KEY_B\","
        "\"requests_per_minute\":%u,\"tokens_per_minute\":%u,\"max_concurrent\":%u},"
        "\"kg\":{\"provider\":\"gemini\",\"env\":\"SLUICE_TEST_KEY_G\","
        "\"requests_per_minute\":%u,\"tokens_per_minute\":%u,\"max_concurrent\":%u}},"
        "\"models\":{"
        "\"m-a\":{\"provider\":\"openai\",\"upstream\":\"up-a\",\"base_url\":\"%s/v1\","
        "\"key\":\"ka\",\"input_price\":1,\"output_price\":2,\"context_window\":100000},"
        "\"m-b\":{\"provider\":\"openai\",\"upstream\":\"up-b\",\"base_url\":\"%s/v1\","
        "\"key\":\"ka\",\"input_price\":3,\"output_price\":4,\"context_window\":100000,"
        "\"json_schema\":true},"
        "\"m-c\":{\"provider\":\"anthropic\",\"upstream\":\"up-c\",\"base_url\":\"%s/v1\","
        "\"key\":\"kb\",\"input_price\":1,\"output_price\":5,\"context_window\":100000},"
        "\"m-g\":{\"provider\":\"gemini\",\"upstream\":\"up-g\",\"base_url\":\"%s/v1beta\","
        "\"key\":\"kg\",\"input_price\":2,\"output_price\":6,\"cached_input_price\":0.5,"
        "\"context_window\":100000,\"reasoning\":true,\"json_schema\":true}"
        "%s%s}}",
        ka.rpm, ka.tpm, ka.conc, kb.rpm, kb.tpm, kb.conc, kg.rpm, kg.tpm, kg.conc, base_url,
        base_url, base_url, base_url, extra_models ? "," : "", extra_models ? extra_models : "");
}

char *fake_write_file(const char *dir, const char *name, const char *text) {
    char *path = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        free(path);
        return NULL;
    }
    return path;
}
