/*
 * http.h - the libcurl multi client the dispatcher thread drives.
 *
 * One http_client owns one CURLM handle and every easy handle on it. It is used by
 * exactly one thread (the dispatcher's "loop thread"): submit, cancel and poll happen
 * there, and completion callbacks run there, inside http_client_poll. Only
 * http_client_wakeup may be called from other threads (it writes an eventfd).
 *
 * Keep-alive connections are reused, HTTP/2 is negotiated where offered (ALPN) and
 * multiplexed up to the server's stream limit, TLS
 * verification is always on (a CA file can be configured for tests), each transfer has a
 * total timeout, and response bodies are bounded: a body beyond max_response_bytes ends
 * the transfer with HTTP_ERR_TOO_LARGE.
 *
 * max_connections_per_host: when many transfers start at once beyond the streams the open
 * HTTP/2 connections allow, libcurl 7.88 opens a new connection for each of them instead of
 * waiting for one (measured: 1,000 transfers to a server allowing 128 streams made 873
 * connections, about 90 KiB each). A cap makes the rest wait for a stream instead. An
 * HTTP/1.1 server needs one connection per transfer, so the cap also bounds its transfers
 * in flight (the others wait inside libcurl, their timeout running).
 */
#ifndef SLUICE_HTTP_H
#define SLUICE_HTTP_H

#include "server/providers/provider.h"

#include <stddef.h>
#include <stdint.h>

typedef struct http_client http_client;
typedef struct http_request http_request;

typedef struct http_config {
    const char *ca_file;           /* PEM CA bundle; NULL = system default */
    size_t max_response_bytes;     /* 0 = 16 MiB */
    long max_connections_per_host; /* 0 = no cap; see below */
    long max_total_connections;    /* 0 = no cap */
} http_config;

typedef enum http_error {
    HTTP_OK = 0,        /* a complete response arrived (any status) */
    HTTP_ERR_TIMEOUT,   /* the per-transfer timeout passed */
    HTTP_ERR_CONNECT,   /* DNS, connect or TLS handshake failed */
    HTTP_ERR_RESET,     /* the connection broke (reset, closed, send/recv error) */
    HTTP_ERR_TRUNCATED, /* the body ended early (partial response) */
    HTTP_ERR_TOO_LARGE, /* the body exceeded max_response_bytes */
    HTTP_ERR_OTHER,     /* any other libcurl failure */
    HTTP_ERR_SETUP,     /* libcurl refused to set the transfer up: nothing was sent */
} http_error;

typedef struct http_header {
    char *name;  /* lowercased */
    char *value; /* trimmed */
} http_header;

/* What a transfer produced. Owned by the client; valid only during the done callback. */
typedef struct http_response {
    http_error error;
    char error_text[256]; /* libcurl's message when error != HTTP_OK */
    int status;           /* HTTP status, 0 when none arrived */
    const http_header *headers;
    size_t n_headers;
    const char *body; /* NUL-terminated; "" when empty */
    size_t body_len;
    uint32_t elapsed_ms;
} http_response;

/* Called on the loop thread when a transfer ends (never after http_client_cancel). The
 * callback may submit new transfers and cancel other ones; it must not free the client.
 * Response headers are bounded (128 headers, 32 KiB): more ends the transfer with
 * HTTP_ERR_TOO_LARGE. */
typedef void (*http_done_fn)(void *ud, const http_response *resp);

/* Creates a client (curl_global_init must have run in main before any thread).
 * Returns SLUICE_OK or SLUICE_EINVAL/SLUICE_ENOMEM with a message. */
int http_client_new(const http_config *cfg, http_client **out, char *err, size_t errlen);
/* Aborts every transfer (no callbacks) and frees the client. NULL-safe. Loop thread. */
void http_client_free(http_client *c);

/* Starts a transfer of `req` (POST of req->body, or GET when body is NULL). Takes
 * ownership of *req's contents (req is cleaned up). timeout_ms covers connect to last
 * byte (0 = none). Returns a handle valid until the callback runs or http_client_cancel.
 * NULL only for misuse (NULL client, request, url or callback; *req is then untouched); a
 * transfer that cannot start still gets its callback, with HTTP_ERR_SETUP, on the next
 * poll.
 * Adds "Expect:" (no 100-continue round trip) and a JSON Content-Type when the request has
 * a body and none. Loop thread. */
http_request *http_client_submit(http_client *c, provider_request *req, uint32_t timeout_ms,
                                 http_done_fn done, void *ud);
/* Whether r was set up and handed to libcurl (false: it will end with HTTP_ERR_SETUP, having
 * sent nothing). Valid until its callback runs. Loop thread. */
bool http_request_started(const http_request *r);
/* Whether libcurl began to send r's body: until then the provider cannot have processed the
 * request (a transfer waiting for a connection or an HTTP/2 stream has sent nothing). Valid
 * until its callback runs. Loop thread. */
bool http_request_sent(const http_request *r);
/* Aborts a transfer; its callback will not run. A no-op for a transfer whose callback is
 * running. Loop thread. */
void http_client_cancel(http_client *c, http_request *r);
/* Waits up to timeout_ms (0 = don't wait) for network activity or a wakeup, advances
 * transfers and runs the callbacks of finished ones. Returns the number of callbacks
 * run. Loop thread. */
int http_client_poll(http_client *c, int timeout_ms);
/* Interrupts a poll in progress (or makes the next one return at once). Any thread. */
void http_client_wakeup(http_client *c);
/* How many times libcurl refused to set a transfer up (an option or the attach to the
 * multi); each such transfer ends with HTTP_ERR_SETUP. Nonzero means a bug of ours or an
 * out-of-memory: tests assert it stays 0. Any thread. */
uint64_t http_client_setup_failures(const http_client *c);
/* Transfers in progress. Loop thread. */
size_t http_client_in_flight(const http_client *c);

/* Case-insensitive header lookup in a response; NULL when absent. */
const char *http_response_header(const http_response *r, const char *name);

/* Raises this process's RLIMIT_NOFILE soft limit to its hard limit (10,000 concurrent
 * transfers need 10,000+ descriptors). Returns the soft limit now in effect (> 0), or
 * SLUICE_EIO when it cannot be read. Any thread; meant for start-up (main, tests). */
int http_raise_fd_limit(void);
/* Short static name of an http_error ("timeout", "connect", ...). Any thread. */
const char *http_error_name(http_error e);

#endif
