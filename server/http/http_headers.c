/*
 * http_headers.c - response header collection and libcurl result classification.
 *
 * libcurl hands header lines to a callback one at a time, including the status line of
 * every response on the connection (interim 1xx, then the final one). We keep only the
 * final set, with lowercased names and trimmed values, in one bounded byte buffer, so a
 * hostile server cannot make a transfer hold more than HTTP_MAX_HEADER_BYTES of headers
 * or more than HTTP_MAX_HEADERS entries. Everything here is pure data handling.
 */
#include "server/http/http_internal.h"

#include "server/common/alloc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void http_headers_init(http_headers *h) {
    memset(h, 0, sizeof *h);
    buf_init(&h->bytes, HTTP_MAX_HEADER_BYTES);
}

void http_headers_cleanup(http_headers *h) {
    buf_cleanup(&h->bytes);
    free(h->offsets);
    free(h->out);
    http_headers_init(h);
}

void http_headers_reset(http_headers *h) {
    buf_reset(&h->bytes);
    h->n = 0;
}

static bool is_space(char ch) {
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static bool grow(http_headers *h) {
    if (h->n < h->cap)
        return true;
    if (h->cap >= HTTP_MAX_HEADERS)
        return false;
    size_t cap = h->cap ? h->cap * 2 : 16;
    if (cap > HTTP_MAX_HEADERS)
        cap = HTTP_MAX_HEADERS;
    h->offsets = xrealloc(h->offsets, cap * 2 * sizeof *h->offsets);
    h->out = xrealloc(h->out, cap * sizeof *h->out);
    h->cap = cap;
    return true;
}

/* Appends s[0..n) plus a NUL; stores the start offset in *off. */
static bool append_field(http_headers *h, const char *s, size_t n, uint32_t *off) {
    *off = (uint32_t)h->bytes.len;
    return buf_append(&h->bytes, s, n) == 0 && buf_append(&h->bytes, "", 1) == 0;
}

bool http_headers_feed(http_headers *h, const char *line, size_t len) {
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        http_headers_reset(h);
        return true;
    }
    while (len > 0 && is_space(line[len - 1]))
        len--;
    const char *colon = len ? memchr(line, ':', len) : NULL;
    if (!colon || colon == line || is_space(line[0]))
        return true; /* blank end line, folded continuation or junk: ignored */
    size_t name_len = (size_t)(colon - line);
    const char *value = colon + 1;
    size_t value_len = len - name_len - 1;
    while (value_len > 0 && is_space(*value)) {
        value++;
        value_len--;
    }
    uint32_t name_off, value_off;
    if (!grow(h) || !append_field(h, line, name_len, &name_off) ||
        !append_field(h, value, value_len, &value_off)) {
        return false;
    }
    for (char *p = h->bytes.data + name_off; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    h->offsets[2 * h->n] = name_off;
    h->offsets[2 * h->n + 1] = value_off;
    h->n++;
    return true;
}

const http_header *http_headers_view(http_headers *h, size_t *n) {
    for (size_t i = 0; i < h->n; i++) {
        h->out[i].name = h->bytes.data + h->offsets[2 * i];
        h->out[i].value = h->bytes.data + h->offsets[2 * i + 1];
    }
    *n = h->n;
    return h->n ? h->out : NULL;
}

http_error http_error_from_curl(CURLcode code, bool capped) {
    switch (code) {
    case CURLE_OK:
        return HTTP_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return HTTP_ERR_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        return HTTP_ERR_CONNECT;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SEND_FAIL_REWIND: /* the connection died and we refused a hidden re-send */
        return HTTP_ERR_RESET;
    case CURLE_PARTIAL_FILE:
        return HTTP_ERR_TRUNCATED;
    case CURLE_FILESIZE_EXCEEDED:
        return HTTP_ERR_TOO_LARGE;
    case CURLE_WRITE_ERROR:
        return capped ? HTTP_ERR_TOO_LARGE : HTTP_ERR_OTHER;
    default:
        return HTTP_ERR_OTHER;
    }
}

const char *http_error_name(http_error e) {
    switch (e) {
    case HTTP_OK:
        return "ok";
    case HTTP_ERR_TIMEOUT:
        return "timeout";
    case HTTP_ERR_CONNECT:
        return "connect";
    case HTTP_ERR_RESET:
        return "reset";
    case HTTP_ERR_TRUNCATED:
        return "truncated";
    case HTTP_ERR_TOO_LARGE:
        return "too large";
    case HTTP_ERR_SETUP:
        return "setup";
    case HTTP_ERR_OTHER:
        break;
    }
    return "other";
}

const char *http_response_header(const http_response *r, const char *name) {
    for (size_t i = 0; r && i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}
