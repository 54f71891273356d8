/*
 * fake_provider.h - an in-process fake LLM provider (OpenAI, Anthropic and Gemini).
 *
 * A real HTTP(S) server for tests and benchmarks, on the wires real providers use: plain
 * HTTP/1.1, HTTP/1.1 over TLS (libmicrohttpd), or HTTP/2 over TLS with ALPN offering "h2"
 * and "http/1.1" (the nghttp2 front in fake_h2.c; a client that picks http/1.1 is served by
 * the same MHD daemon). Answers can be gzip-encoded (when the client accepts it) and
 * chunked (HTTP/1.1 chunks, several HTTP/2 DATA frames), as real providers send them. It
 * answers
 *   POST /v1/chat/completions  (OpenAI; auth "Authorization: Bearer <key>")
 *   POST /v1/messages          (Anthropic; auth "x-api-key: <key>", needs anthropic-version)
 *   POST /v1beta/models/{model}:generateContent  (Gemini; auth "x-goog-api-key: <key>")
 * with deterministic answers derived from the request: the completion text is
 *   echo[<model>]: <first 40 code points of the last user text>#<8 hex of sha256(messages)>
 * (for Anthropic, messages plus system; for Gemini, contents plus systemInstruction). Tool
 * definitions plus a last user message whose text contains "[[tool]]", or a forced tool
 * choice, give a tool call; an OpenAI json_schema / json_object response_format, an
 * Anthropic output_config json_schema or a Gemini responseSchema / JSON responseMimeType
 * gives a JSON object. Usage: input tokens ~ characters/4, output tokens = words of the
 * answer; a Gemini request with a thinking budget also gets a thought summary (when it asks
 * with includeThoughts), a thought signature and 8 thoughtsTokenCount.
 *
 * Faults are injected per request by markers in any message text:
 *   [[status:503]]  [[status:429,retry-after:2]]  [[status:429,retry-after-ms:1500]]
 *   [[status:429,retry-after-date]] (HTTP date 2-3 s ahead)  [[status:529]] (overloaded)
 *   [[reset]] (close without answer)  [[hang]] (no answer until FAKE_HANG_MAX_MS, then close)
 *   [[truncate]] (Content-Length larger than the body, then close)  [[malformed]] (200, bad
 *   JSON)  [[context]] (400 context-length error in the provider's words)
 * Gemini's errors are its own shape ({"error":{code,message,status,details}}): a retry-after
 * or retry-after-ms marker becomes a google.rpc.RetryInfo retryDelay in the body instead of a
 * header, as Gemini sends it (retry-after-date stays a header).
 *   [[fail-first:N]] (500 for the first N arrivals of this exact body, then normal)
 *   [[pad:N]] (the answer text grows by N bytes: large results on demand)
 * On HTTP/2 "close without answer" ([[reset]], an expired [[hang]]) resets that request's
 * stream with INTERNAL_ERROR, and [[truncate]] resets it after part of the body; the
 * connection and its other streams go on, as with a real h2 server. HTTP/2 behaviour is
 * programmable too: SETTINGS_MAX_CONCURRENT_STREAMS, a GOAWAY after N requests on a
 * connection, and REFUSED_STREAM for the next N streams (refused before they are read, so
 * not counted as requests).
 * and programmatically: per-model scripted responses, per-model forced status, unknown models
 * (404 model_not_found), latency + jitter, per-key rate limits (token buckets for requests
 * and tokens per minute, starting full, refilling continuously; 429 with retry-after and
 * provider-style x-ratelimit-* / anthropic-ratelimit-* headers; for Gemini no headers and
 * a 429 RESOURCE_EXHAUSTED whose RetryInfo names the wait).
 *
 * Delayed answers suspend the connection (MHD suspend/resume, one timer thread), so thousands
 * of requests can wait without holding server threads. Control endpoints for other processes:
 *   GET  /_fake/health    -> {"ok":true}
 *   GET  /_fake/counters  -> fake_provider_counters_json() (?all=1 lists every request hash)
 *   GET  /_fake/config    -> the current settings
 *   POST /_fake/config    -> fake_provider_configure() with the body
 *   POST /_fake/reset     -> fake_provider_reset()
 *   GET  /_fake/log?key=K -> the request log of key K
 *
 * Thread safety: every function may be called from any thread while the server runs, except
 * fake_provider_free (one thread, once).
 */
#ifndef SLUICE_TESTS_FAKE_PROVIDER_H
#define SLUICE_TESTS_FAKE_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fake_provider fake_provider;

/* How long a [[hang]] request is held before its connection is closed. */
#define FAKE_HANG_MAX_MS (10u * 60u * 1000u)
/* SETTINGS_MAX_CONCURRENT_STREAMS when none is configured (nginx's default). */
#define FAKE_H2_DEFAULT_MAX_STREAMS 128u

typedef struct fake_provider_config {
    const char *bind_addr;    /* IPv4 literal; NULL = "127.0.0.1" */
    uint16_t port;            /* 0 = an ephemeral port (read it with fake_provider_port) */
    const char *tls_cert_pem; /* PEM text (not a path); NULL with tls_key_pem = plain HTTP */
    const char *tls_key_pem;
    unsigned threads;                   /* MHD worker threads (epoll); 0 = 2 */
    uint32_t latency_ms;                /* fixed delay before each model answer */
    uint32_t jitter_ms;                 /* plus uniform random [0, jitter_ms] */
    uint32_t rpm;                       /* default per-key requests/min; 0 = unlimited */
    uint32_t tpm;                       /* default per-key tokens/min; 0 = unlimited */
    uint32_t window_ms;                 /* bucket capacity = limit * window_ms / 60000; 0 = 60000 */
    bool request_log;                   /* keep a per-key ring of arrivals */
    size_t request_log_capacity;        /* entries per key; 0 = 65536 */
    uint64_t seed;                      /* jitter RNG seed; 0 = fixed default */
    bool quiet;                         /* no MHD error messages on stderr */
    size_t connection_memory;           /* MHD memory pool per connection (request headers and read
                                           buffer); 0 = 16 KiB. Bodies stream through it in chunks. */
    bool http2;                         /* with TLS: the HTTP/2 front (ALPN h2, http/1.1) */
    bool gzip;                          /* gzip answers for requests that accept it */
    bool chunked;                       /* answers without Content-Length, in small pieces */
    uint32_t h2_max_concurrent_streams; /* 0 = FAKE_H2_DEFAULT_MAX_STREAMS */
    uint32_t h2_goaway_after;           /* GOAWAY after N requests per h2 connection; 0 = never */
} fake_provider_config;

/* Starts a server (raising RLIMIT_NOFILE to its hard limit). Returns 0, or -1 with a message
 * in err (also for http2 without TLS). Free with fake_provider_free. */
int fake_provider_new(const fake_provider_config *cfg, fake_provider **out, char *err,
                      size_t errlen);
/* Stops the server (pending and hung requests are closed without an answer) and frees it.
 * NULL-safe. */
void fake_provider_free(fake_provider *fp);

uint16_t fake_provider_port(const fake_provider *fp);
/* "http://127.0.0.1:PORT" or "https://..." (no trailing slash); owned by fp. */
const char *fake_provider_base_url(const fake_provider *fp);

/* ---- settings (take effect for requests arriving afterwards) ------------------------ */

void fake_provider_set_latency(fake_provider *fp, uint32_t latency_ms, uint32_t jitter_ms);
/* Limits for `key`, or the default for every key without its own when key is NULL. 0 means
 * unlimited; window_ms 0 = 60000. Buckets affected start full again. */
void fake_provider_set_limits(fake_provider *fp, const char *key, uint32_t rpm, uint32_t tpm,
                              uint32_t window_ms);
/* Requests for `model` answer 404 model_not_found from now on (copied). */
void fake_provider_add_unknown_model(fake_provider *fp, const char *model);
/* Every request for `model` answers `status` with the provider's error body; 0 clears. */
void fake_provider_force_status(fake_provider *fp, const char *model, int status);
/* The next `count` requests for `model` answer `status` with `headers` ("Name: value"
 * lines, may be NULL) and `body` (NULL = the provider's error body for the status, or a
 * normal answer for 2xx). Scripts for one model are used in the order added. All copied. */
void fake_provider_script(fake_provider *fp, const char *model, unsigned count, int status,
                          const char *const *headers, size_t n_headers, const char *body);
/* The next n HTTP/2 streams are refused with RST_STREAM(REFUSED_STREAM) before they are
 * read (not counted as requests; counted in refused_streams). 0 cancels. */
void fake_provider_refuse_streams(fake_provider *fp, uint32_t n);
/* The next n provider requests are read and counted, then get no answer: the connection is
 * closed (HTTP/1.1) or the stream reset with INTERNAL_ERROR (HTTP/2). 0 cancels. */
void fake_provider_reset_next(fake_provider *fp, uint32_t n);
/* Turns the per-key arrival log on or off (capacity 0 = 65536 entries per key). */
void fake_provider_set_request_log(fake_provider *fp, bool on, size_t capacity);
/* Applies a JSON settings document (the POST /_fake/config body):
 *   {"latency_ms":N, "jitter_ms":N, "rpm":N, "tpm":N, "window_ms":N,
 *    "keys":{"<key>":{"rpm":N,"tpm":N,"window_ms":N}}, "unknown_models":["m",...],
 *    "force_status":{"<model>":S}, "request_log":bool, "request_log_capacity":N,
 *    "script":[{"model":"m","count":N,"status":S,"headers":{"h":"v"},"body":"..."}],
 *    "gzip":bool, "chunked":bool, "h2_max_concurrent_streams":N, "h2_goaway_after":N,
 *    "h2_refuse_streams":N, "reset_next":N}
 * Every field is optional; unknown fields are errors. Returns 0, or -1 with a message. */
int fake_provider_configure(fake_provider *fp, const char *json, char *err, size_t errlen);
/* Clears counters, request hashes, logs, scripts and forced statuses, and refills every
 * bucket. Latency, limits, unknown models and the log setting are kept. */
void fake_provider_reset(fake_provider *fp);

/* ---- counters ------------------------------------------------------------------------ */

typedef struct fake_model_counters {
    uint64_t requests; /* parsed provider requests naming this model */
    uint64_t s2xx;
    uint64_t s429;
    uint64_t s5xx;
    uint64_t other; /* other statuses, resets, hangs */
} fake_model_counters;

typedef struct fake_counters {
    uint64_t total;         /* provider requests (control endpoints excluded) */
    uint64_t rate_limited;  /* 429s from the fake's own limiter */
    uint64_t in_flight;     /* provider requests not yet finished */
    uint64_t max_in_flight; /* the most ever in flight at once */
    uint64_t connections;   /* TCP connections accepted */
    uint64_t connections_open;
    uint64_t distinct_requests; /* distinct request bodies seen */
    uint64_t repeated_requests; /* arrivals of a body already seen */
    uint64_t h2_connections;    /* connections that negotiated HTTP/2 */
    uint64_t h2_streams;        /* request streams opened on them */
    uint64_t refused_streams;   /* streams refused with REFUSED_STREAM */
    uint64_t reset_streams;     /* streams the fake reset with INTERNAL_ERROR */
    uint64_t goaways;           /* GOAWAY frames sent by the fake's programs */
    uint64_t client_resets;     /* RST_STREAM frames received from clients */
} fake_counters;

void fake_provider_counters(fake_provider *fp, fake_counters *out);
/* Per-model counters; all zero for a model never seen. */
void fake_provider_model_counters(fake_provider *fp, const char *model, fake_model_counters *out);
/* The identity of a request body as the counters see it: 16 hex of sha256 of the raw bytes
 * (the "exact same request body content"). Pure. */
void fake_provider_request_hash(const char *body, size_t len, char out[17]);
/* How many times that body arrived, and how many of those were answered 2xx. */
void fake_provider_hash_counts(fake_provider *fp, const char *hash_hex, uint64_t *arrivals,
                               uint64_t *ok);
/* All counters as JSON (the GET /_fake/counters body). `all_hashes` lists every request
 * hash, otherwise only those that arrived more than once. Free with free(). */
char *fake_provider_counters_json(fake_provider *fp, bool all_hashes);

typedef struct fake_log_entry {
    uint64_t t_ms;   /* arrival, ms since the fake started (monotonic) */
    uint32_t tokens; /* the request's estimated token cost */
    bool admitted;   /* false when the limiter answered 429 */
} fake_log_entry;

/* Copies up to max entries of key's log, oldest first; returns how many were copied. */
size_t fake_provider_request_log(fake_provider *fp, const char *key, fake_log_entry *out,
                                 size_t max);

#endif
