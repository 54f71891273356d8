/*
 * fake_test_util.h - small helpers shared by the tests that use the fake provider.
 *
 * Synchronous requests with libcurl's easy interface (independent of sluice's http client),
 * temporary directories and self-signed certificates made with the openssl CLI. Test code:
 * failures abort with a message rather than returning errors.
 * Thread safety: fake_http_request may be called from any thread; the rest from one.
 */
#ifndef SLUICE_TESTS_FAKE_TEST_UTIL_H
#define SLUICE_TESTS_FAKE_TEST_UTIL_H

#include "tests/fake_provider/fake_provider.h"

#include <stddef.h>
#include <stdint.h>

typedef struct fake_http_result {
    int curl_code; /* CURLcode; 0 when a response arrived */
    long status;
    char *body; /* NUL-terminated; free with fake_http_result_cleanup */
    size_t body_len;
    char *headers; /* raw header block */
} fake_http_result;

/* Sends method (GET/POST) to url with `headers` ("Name: value", NULL-terminated list, may
 * be NULL) and `body` (NULL = none). timeout_ms 0 = 10 s. */
void fake_http_request(const char *method, const char *url, const char *const *headers,
                       const char *body, long timeout_ms, fake_http_result *out);
void fake_http_result_cleanup(fake_http_result *r);
/* Case-insensitive lookup of a response header; copies the trimmed value into out and
 * returns it, or NULL when absent. */
const char *fake_http_header(const fake_http_result *r, const char *name, char *out, size_t outlen);

/* Creates a fresh temporary directory (caller removes it with fake_rmdir_r). */
void fake_make_tmpdir(char *out, size_t outlen);
void fake_rmdir_r(const char *dir);
/* Writes a self-signed certificate for 127.0.0.1/localhost as dir/name.crt + dir/name.key
 * with the openssl CLI. Returns 0, or -1 when openssl is unavailable. */
int fake_make_cert(const char *dir, const char *name);
/* The same for the DNS name host (and 127.0.0.1), e.g. for a TLS server-name override. */
int fake_make_cert_for(const char *dir, const char *name, const char *host);
/* Reads a whole file (NUL-terminated; free with free()); NULL on failure. */
char *fake_read_file(const char *path);
/* Writes text to dir/name; returns the path (free with free()) or NULL. */
char *fake_write_file(const char *dir, const char *name, const char *text);

/* The wire a test's fake provider serves. FAKE_WIRE_FROM_ENV reads $SLUICE_TEST_WIRE:
 * "plain" (the default), "h1tls" or "h2tls"; ctest runs the network suites once per wire. */
typedef enum fake_wire_mode {
    FAKE_WIRE_FROM_ENV = 0,
    FAKE_WIRE_PLAIN,  /* HTTP/1.1, identity bodies with Content-Length */
    FAKE_WIRE_H1_TLS, /* HTTP/1.1 over TLS, gzip-encoded and chunked answers */
    FAKE_WIRE_H2_TLS, /* HTTP/2 over TLS (ALPN), gzip-encoded answers in small DATA frames */
} fake_wire_mode;

/* A fake provider configuration for one wire, with what a client needs to trust it. */
typedef struct fake_setup {
    fake_wire_mode mode;      /* resolved: never FAKE_WIRE_FROM_ENV */
    fake_provider_config cfg; /* quiet; TLS, http2, gzip and chunked as the wire says */
    char ca_file[300];        /* the certificate a client must trust; "" for plain */
    char *cert_pem, *key_pem; /* owned by the setup */
} fake_setup;

/* Prepares a fake on `mode`, making its certificate (for 127.0.0.1) in dir. Aborts on an
 * unknown $SLUICE_TEST_WIRE or when openssl fails. Release with fake_setup_cleanup (after
 * the fake is freed: cfg points into the setup). */
void fake_setup_init(fake_setup *s, fake_wire_mode mode, const char *dir);
void fake_setup_cleanup(fake_setup *s);
/* True when what the fake counted matches its wire: on h2tls every request came on an HTTP/2
 * stream, on the others none did (a suite that silently fell back to HTTP/1.1 would test
 * the wrong thing). Prints what is wrong. */
bool fake_setup_wire_used(const fake_setup *s, fake_provider *fp);
/* "plain", "h1tls", "h2tls". */
const char *fake_wire_name(fake_wire_mode mode);

/* The limits of one key of fake_registry_json. */
typedef struct fake_key_limits {
    uint32_t rpm;  /* requests_per_minute */
    uint32_t tpm;  /* tokens_per_minute */
    uint32_t conc; /* max_concurrent */
} fake_key_limits;

/* The model registry (JSON text) of the tests that run sluice against a fake provider at
 * base_url: key "ka" (OpenAI, env SLUICE_TEST_KEY_A), key "kb" (Anthropic, env
 * SLUICE_TEST_KEY_B) and key "kg" (Gemini, env SLUICE_TEST_KEY_G) with the limits given;
 * models m-a (upstream up-a) and m-b (up-b, with native structured output) on "ka" and m-c
 * (up-c) on "kb", at base_url/v1,
 * and m-g (up-g, a reasoning model with native structured output) on "kg" at
 * base_url/v1beta; then extra_models, more members of "models" ("\"name\":{...}", may be
 * NULL). Free the result with free(). */
char *fake_registry_json(const char *base_url, fake_key_limits ka, fake_key_limits kb,
                         fake_key_limits kg, const char *extra_models);

#endif
