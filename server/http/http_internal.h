/*
 * http_internal.h - pieces of the http module shared between its .c files.
 *
 * Not a public header: only the .c files of server/http include it. The response-header collector
 * and the CURLcode classifier are separated from the transfer engine (http.c) so each
 * stays small and can be reasoned about alone.
 * Thread safety: same as http.h (the loop thread), except where noted.
 */
#ifndef SLUICE_HTTP_INTERNAL_H
#define SLUICE_HTTP_INTERNAL_H

#include "server/common/buf.h"
#include "server/http/http.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds on the response headers of one transfer; exceeding either ends the transfer
 * with HTTP_ERR_TOO_LARGE. */
#define HTTP_MAX_HEADERS 128
#define HTTP_MAX_HEADER_BYTES (32u * 1024u)

/* Response headers of one transfer, collected from libcurl's header callback. Names are
 * lowercased and values trimmed as they arrive; the strings live in `bytes` as
 * "name\0value\0" pairs, addressed by offsets because `bytes` may move while growing.
 * Caller-embedded: http_headers_init / http_headers_cleanup. */
typedef struct http_headers {
    buf bytes;
    uint32_t *offsets; /* 2 per header: name, value */
    http_header *out;  /* pointer view built by http_headers_view */
    size_t n;
    size_t cap;
} http_headers;

void http_headers_init(http_headers *h);
void http_headers_cleanup(http_headers *h);
/* Forgets collected headers, keeping storage (a new status line, or reuse). */
void http_headers_reset(http_headers *h);
/* Feeds one raw header line as libcurl delivers it ("Name: value\r\n", a status line or
 * the blank end line). A status line ("HTTP/...") starts a new header set, so interim
 * 1xx responses do not leak into the final one. Returns false when a bound is hit. */
bool http_headers_feed(http_headers *h, const char *line, size_t len);
/* Returns an array of n pointers into h (valid until the next feed/reset/cleanup). */
const http_header *http_headers_view(http_headers *h, size_t *n);

/* The event engine under one multi handle: libcurl's socket/timer callbacks feed an epoll
 * set, and an eventfd in the same set is the cross-thread wakeup. Caller-embedded; must not
 * move after http_events_init (libcurl keeps its address). */
typedef struct http_events {
    CURLM *multi;
    int epfd;              /* sockets libcurl asked us to watch, plus wakefd */
    int wakefd;            /* eventfd written by http_events_wakeup */
    uint64_t timer_due_ms; /* libcurl's timeout as a deadline; UINT64_MAX = none */
} http_events;

/* Creates the epoll set and eventfd and installs the callbacks on multi. Returns 0, or -1
 * with errno set. http_events_cleanup is safe after a failure (fds start at -1). */
int http_events_init(http_events *ev, CURLM *multi);
/* Closes the descriptors; call after curl_multi_cleanup (which may still report sockets). */
void http_events_cleanup(http_events *ev);
/* Waits up to timeout_ms (0 = not at all; shortened to libcurl's next timeout) for socket
 * activity or a wakeup, then lets libcurl act on ready sockets and expired timers.
 * Finished transfers are left for curl_multi_info_read. Loop thread. */
void http_events_run(http_events *ev, int timeout_ms);
/* Makes the current or next http_events_run return at once. Any thread. */
void http_events_wakeup(http_events *ev);

/* Classifies a libcurl result; `capped` is true when our own body or header bound made
 * the transfer fail. Pure; any thread. */
http_error http_error_from_curl(CURLcode code, bool capped);

#endif
