/*
 * http.c - the libcurl multi transfer engine (see http.h for the contract).
 *
 * Owns one CURLM and a pool of http_request records (their body and header storage is
 * reused; the connection cache lives in the multi and stays warm). A record is in exactly
 * one state (http_req_state) and one list: the pool (IDLE), `running` (attached to the multi),
 * `failed` (could not start; its error is delivered by the next poll, so every submit ends
 * in exactly one callback or one cancel) or none while its callback runs (COMPLETING). All
 * of this belongs to the loop thread.
 *
 * Every transfer gets a fresh easy handle (about 2 us), freed when it ends. Easy handles
 * are not reused: in libcurl 7.88 a transfer that ends while its HTTP/2 connection still
 * carries other streams keeps its receive buffer (multi_done returns early), and a
 * curl_easy_reset handle then refuses CURLOPT_BUFFERSIZE with CURLE_BAD_FUNCTION_ARGUMENT
 * (every transfer after the first wave failed that way against HTTP/2 providers) - or,
 * without the option, reads into a buffer smaller than libcurl believes; and a handle that
 * is not reset keeps counting libcurl's internal retries across transfers
 * (state.retrycount), so after five GOAWAYs in its life a transfer fails with "Connection
 * died". A fresh handle has none of that history.
 *
 * No hidden re-sends: when a reused connection dies before any answer, libcurl sends the
 * request again on a fresh connection by itself (Curl_retry_request, up to five times),
 * though the provider may have read and billed the first one. sluice counts every send as an
 * attempt, so the body is handed to libcurl through a read callback, and the rewind that such
 * a re-send needs is refused: the transfer ends with HTTP_ERR_RESET, and the dispatcher
 * decides (a retry is a counted attempt, within max_attempts and the retry budget). That
 * includes HTTP/2 streams a server refused (REFUSED_STREAM, or past a GOAWAY), which it
 * promises it never processed: libcurl does not say why it wants to rewind (it asks once the
 * replacement connection is up, and a dead connection looks the same: an error with no
 * bytes read), so they are counted too - an over-count, never an uncounted request. A
 * request whose body libcurl had not begun to send is re-sent by libcurl without a rewind:
 * the provider cannot have processed a POST without its body.
 *
 * A transfer that cannot be set up (an option or curl_multi_add_handle refused) was never
 * sent: it ends with HTTP_ERR_SETUP, and every such refusal is counted
 * (http_client_setup_failures) and logged with libcurl's reason - it is a bug of ours or
 * an out-of-memory, never a provider's doing.
 *
 * Events come from libcurl's socket interface on our own epoll set (http_events.c, which
 * explains why that and not curl_multi_poll + curl_multi_perform).
 *
 * Bounds: bodies are capped by max_response_bytes (write callback refuses -> TOO_LARGE),
 * headers by HTTP_MAX_HEADERS / HTTP_MAX_HEADER_BYTES, the idle pool by HTTP_POOL_MAX,
 * and a pooled record drops body storage above HTTP_POOL_KEEP_BYTES. libcurl's receive
 * buffer is lowered to HTTP_RECV_BUFFER_BYTES: LLM answers are small and 10,000
 * concurrent transfers each holding the default 16 KiB would dominate memory. The upload
 * buffer, which a body sent through the read callback passes through, is lowered to
 * libcurl's minimum, HTTP_UPLOAD_BUFFER_BYTES (64 KiB by default).
 * Clock: the monotonic clock, for elapsed_ms.
 */
#include "server/http/http.h"

#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "server/common/log.h"
#include "server/http/http_internal.h"
#include "sluice/status.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTP_DEFAULT_MAX_BODY (16u * 1024u * 1024u)
#define HTTP_POOL_MAX 4096u
#define HTTP_POOL_KEEP_BYTES (64u * 1024u)
#define HTTP_RECV_BUFFER_BYTES 8192L
#define HTTP_UPLOAD_BUFFER_BYTES 16384L /* libcurl's minimum */
#define HTTP_SETUP_LOG_EVERY_MS 60000u
/* libcurl's own cap on streams per HTTP/2 connection (default 100) is lifted: the
 * server's SETTINGS_MAX_CONCURRENT_STREAMS decides. */
#define HTTP_MAX_STREAMS_PER_CONNECTION 1000L

typedef enum http_req_state {
    HTTP_REQ_IDLE = 0,   /* in the pool */
    HTTP_REQ_RUNNING,    /* attached to the multi, on `running` */
    HTTP_REQ_FAILED,     /* never started, on `failed`; completes on the next poll */
    HTTP_REQ_COMPLETING, /* its callback is running */
} http_req_state;

struct http_request {
    CURL *easy;
    http_req_state state;
    http_request *prev, *next;
    provider_request req; /* owned; url and body must outlive the transfer */
    struct curl_slist *slist;
    http_done_fn done;
    void *ud;
    uint64_t start_ms;
    CURLcode fail_code;
    buf body;
    http_headers headers;
    bool capped;     /* our body or header bound stopped the transfer */
    bool no_resend;  /* libcurl wanted to send the request again; refused */
    size_t body_off; /* bytes of req.body handed to libcurl */
    char errbuf[CURL_ERROR_SIZE];
};

struct http_client {
    CURLM *multi;
    CURLSH *share;  /* TLS sessions, resumed across transfers (each has a fresh handle) */
    http_events ev; /* epoll set, libcurl's timer, the wakeup eventfd */
    char *ca_file;
    size_t max_body;
    http_request *running;
    http_request *failed;
    http_request *pool;
    size_t n_pool;
    size_t in_flight;
    atomic_uint_fast64_t setup_failures; /* read by any thread */
    uint64_t setup_logged_ms;            /* when the last refusal was logged */
    uint64_t setup_unlogged;             /* refusals since then */
};

static void req_set_state(http_request *r, http_req_state s) {
    r->state = s;
}

static void list_push(http_request **head, http_request *r) {
    r->prev = NULL;
    r->next = *head;
    if (*head)
        (*head)->prev = r;
    *head = r;
}

static void list_unlink(http_request **head, http_request *r) {
    if (r->prev)
        r->prev->next = r->next;
    else
        *head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
    http_request *r = ud;
    if (buf_append(&r->body, p, size * n) != 0) {
        r->capped = true;
        return 0;
    }
    return size * n;
}

/* The request body, for libcurl to send (CURLOPT_READFUNCTION). */
static size_t on_read(char *out, size_t size, size_t n, void *ud) {
    http_request *r = ud;
    size_t left = r->req.body_len - r->body_off, want = size * n;
    size_t k = left < want ? left : want;
    memcpy(out, r->req.body + r->body_off, k);
    r->body_off += k;
    return k;
}

/* libcurl asks to rewind the body only to send the request again by itself: refused (see
 * the top of this file). */
static int on_seek(void *ud, curl_off_t offset, int origin) {
    (void)offset;
    (void)origin;
    ((http_request *)ud)->no_resend = true;
    return CURL_SEEKFUNC_FAIL;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
    http_request *r = ud;
    if (!http_headers_feed(&r->headers, p, size * n)) {
        r->capped = true;
        return 0;
    }
    return size * n;
}

static void record_free(http_request *r) {
    curl_easy_cleanup(r->easy);
    buf_cleanup(&r->body);
    http_headers_cleanup(&r->headers);
    free(r);
}

/* Frees the request and its header list, wiping the lines that carry the API key. */
static void release_request(http_request *r) {
    provider_request_cleanup(&r->req);
    for (struct curl_slist *h = r->slist; h; h = h->next)
        explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(r->slist);
    r->slist = NULL;
}

/* Returns a record to the pool with everything the transfer held released. */
static void record_recycle(http_client *c, http_request *r) {
    release_request(r);
    curl_easy_cleanup(r->easy);
    r->easy = NULL;
    r->done = NULL;
    r->ud = NULL;
    if (c->n_pool >= HTTP_POOL_MAX) {
        record_free(r);
        return;
    }
    if (r->body.cap > HTTP_POOL_KEEP_BYTES)
        buf_cleanup(&r->body);
    buf_reset(&r->body);
    http_headers_reset(&r->headers);
    req_set_state(r, HTTP_REQ_IDLE);
    r->prev = NULL;
    r->next = c->pool;
    c->pool = r;
    c->n_pool++;
}

#define SETOPT(r, opt, val) setopt_ok((r), #opt, curl_easy_setopt((r)->easy, (opt), (val)))

/* Records a refused option in r (code and "CURLOPT_X: reason"); true when it was taken. */
static bool setopt_ok(http_request *r, const char *name, CURLcode rc) {
    if (rc == CURLE_OK)
        return true;
    r->fail_code = rc;
    snprintf(r->errbuf, sizeof r->errbuf, "%s: %s", name, curl_easy_strerror(rc));
    return false;
}

/* Gives r a fresh easy handle carrying the options every transfer shares. Returns false,
 * with the reason in r->errbuf, when libcurl refuses one (http_client_new tries once, so a
 * libcurl that lacks a feature fails at start-up, not at the first prompt). */
static bool handle_open(http_client *c, http_request *r) {
    r->easy = curl_easy_init();
    bool ok =
        r->easy && SETOPT(r, CURLOPT_PRIVATE, (void *)r) && SETOPT(r, CURLOPT_NOSIGNAL, 1L) &&
        SETOPT(r, CURLOPT_SHARE, c->share) &&
        SETOPT(r, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS) &&
        SETOPT(r, CURLOPT_ACCEPT_ENCODING, "") &&
        SETOPT(r, CURLOPT_BUFFERSIZE, HTTP_RECV_BUFFER_BYTES) &&
        SETOPT(r, CURLOPT_UPLOAD_BUFFERSIZE, HTTP_UPLOAD_BUFFER_BYTES) &&
        SETOPT(r, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_body) &&
        SETOPT(r, CURLOPT_WRITEFUNCTION, on_body) && SETOPT(r, CURLOPT_WRITEDATA, (void *)r) &&
        SETOPT(r, CURLOPT_HEADERFUNCTION, on_header) && SETOPT(r, CURLOPT_HEADERDATA, (void *)r) &&
        SETOPT(r, CURLOPT_READFUNCTION, on_read) && SETOPT(r, CURLOPT_READDATA, (void *)r) &&
        SETOPT(r, CURLOPT_SEEKFUNCTION, on_seek) && SETOPT(r, CURLOPT_SEEKDATA, (void *)r) &&
        SETOPT(r, CURLOPT_ERRORBUFFER, r->errbuf) && SETOPT(r, CURLOPT_TCP_KEEPALIVE, 1L) &&
        (!c->ca_file || SETOPT(r, CURLOPT_CAINFO, c->ca_file));
    if (!r->easy)
        snprintf(r->errbuf, sizeof r->errbuf, "curl_easy_init: out of memory");
    return ok;
}

/* handle_open for a transfer: a refusal now (after the start-up probe) is out of memory,
 * and the server's allocation policy is to abort. */
static void handle_new(http_client *c, http_request *r) {
    if (!handle_open(c, r)) {
        LOG_ERROR("http", "cannot make an easy handle: %s", r->errbuf);
        abort();
    }
}

static http_request *record_take(http_client *c) {
    http_request *r = c->pool;
    if (r) {
        c->pool = r->next;
        c->n_pool--;
        r->next = NULL;
        r->body.max = c->max_body;
    } else {
        r = XNEW(http_request);
        buf_init(&r->body, c->max_body);
        http_headers_init(&r->headers);
    }
    handle_new(c, r);
    return r;
}

/* Builds the header list: the provider's lines, no "Expect: 100-continue" round trip,
 * and a JSON content type when a body has none. */
static struct curl_slist *build_headers(const provider_request *p) {
    struct curl_slist *l = NULL;
    bool has_type = false;
    for (size_t i = 0; i < p->n_headers; i++) {
        if (strncasecmp(p->headers[i], "content-type:", 13) == 0)
            has_type = true;
        struct curl_slist *n = curl_slist_append(l, p->headers[i]);
        if (!n)
            goto oom;
        l = n;
    }
    struct curl_slist *n = curl_slist_append(l, "Expect:");
    if (!n)
        goto oom;
    l = n;
    if (p->body && !has_type) {
        n = curl_slist_append(l, "Content-Type: application/json");
        if (!n)
            goto oom;
        l = n;
    }
    return l;
oom:
    for (struct curl_slist *h = l; h; h = h->next) /* lines with the key */
        explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(l);
    return NULL;
}

/* Sets what belongs to this transfer alone and attaches it to the multi. Returns false,
 * with the reason in r->errbuf, when libcurl refuses an option or the attach. */
static bool transfer_start(http_client *c, http_request *r, uint32_t timeout_ms) {
    r->errbuf[0] = '\0';
    if (!(r->slist = build_headers(&r->req))) {
        r->fail_code = CURLE_OUT_OF_MEMORY;
        snprintf(r->errbuf, sizeof r->errbuf, "header list: out of memory");
        return false;
    }
    /* On TLS, wait for a connection being set up to learn whether it multiplexes (h2)
     * instead of opening one connection per concurrent transfer. */
    long pipewait = strncasecmp(r->req.url, "https:", 6) == 0;
    bool ok = SETOPT(r, CURLOPT_URL, r->req.url) &&
              SETOPT(r, CURLOPT_TIMEOUT_MS, (long)timeout_ms) &&
              SETOPT(r, CURLOPT_HTTPHEADER, r->slist) && SETOPT(r, CURLOPT_PIPEWAIT, pipewait);
    if (ok && r->req.body)
        ok = SETOPT(r, CURLOPT_POST, 1L) &&
             SETOPT(r, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->req.body_len);
    if (!ok)
        return false;
    CURLMcode mc = curl_multi_add_handle(c->multi, r->easy);
    if (mc == CURLM_OK)
        return true;
    r->fail_code = CURLE_FAILED_INIT;
    snprintf(r->errbuf, sizeof r->errbuf, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
    return false;
}

/* Counts and logs a refused setup (the first one, then at most one line a minute). */
static void note_setup_failure(http_client *c, const http_request *r) {
    atomic_fetch_add_explicit(&c->setup_failures, 1, memory_order_relaxed);
    uint64_t now = clock_now_ms();
    if (c->setup_logged_ms && now - c->setup_logged_ms < HTTP_SETUP_LOG_EVERY_MS) {
        c->setup_unlogged++;
        return;
    }
    LOG_ERROR("http", "libcurl refused to set up a transfer (nothing was sent; it fails): %s%s",
              r->errbuf, c->setup_unlogged ? " (and others since the last report)" : "");
    c->setup_logged_ms = now;
    c->setup_unlogged = 0;
}

static int setup_multi(http_client *c, const http_config *cfg) {
    CURLM *m = c->multi;
    CURLMcode rc = curl_multi_setopt(m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    if (rc == CURLM_OK)
        rc = curl_multi_setopt(m, CURLMOPT_MAX_CONCURRENT_STREAMS, HTTP_MAX_STREAMS_PER_CONNECTION);
    if (rc == CURLM_OK && cfg->max_connections_per_host > 0)
        rc = curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, cfg->max_connections_per_host);
    if (rc == CURLM_OK && cfg->max_total_connections > 0)
        rc = curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, cfg->max_total_connections);
    return rc == CURLM_OK ? 0 : -1;
}

int http_client_new(const http_config *cfg, http_client **out, char *err, size_t errlen) {
    static const http_config defaults = {0};
    if (!out) {
        snprintf(err, errlen, "http_client_new: out is NULL");
        return SLUICE_EINVAL;
    }
    *out = NULL;
    if (!cfg)
        cfg = &defaults;
    if (cfg->max_connections_per_host < 0 || cfg->max_total_connections < 0) {
        snprintf(err, errlen, "http: connection limits must be >= 0");
        return SLUICE_EINVAL;
    }
    http_client *c = XNEW(http_client);
    c->ev.epfd = c->ev.wakefd = -1;
    c->multi = curl_multi_init();
    if (!c->multi || setup_multi(c, cfg) != 0 || http_events_init(&c->ev, c->multi) != 0) {
        snprintf(err, errlen, "http: cannot set up the multi handle: %s", strerror(errno));
        http_client_free(c);
        return SLUICE_ENOMEM;
    }
    c->ca_file = xstrdup(cfg->ca_file);
    c->max_body = cfg->max_response_bytes ? cfg->max_response_bytes : HTTP_DEFAULT_MAX_BODY;
    /* One thread uses the share, so it needs no lock callbacks. */
    c->share = curl_share_init();
    if (!c->share ||
        curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
        snprintf(err, errlen, "http: cannot set up the TLS session cache");
        http_client_free(c);
        return SLUICE_ENOMEM;
    }
    http_request probe;
    memset(&probe, 0, sizeof probe);
    bool ok = handle_open(c, &probe);
    curl_easy_cleanup(probe.easy);
    if (!ok) {
        snprintf(err, errlen, "http: libcurl refuses an option sluice needs: %s", probe.errbuf);
        http_client_free(c);
        return SLUICE_EINVAL;
    }
    *out = c;
    return SLUICE_OK;
}

static void drop_list(http_client *c, http_request **head, bool attached) {
    while (*head) {
        http_request *r = *head;
        list_unlink(head, r);
        if (attached)
            curl_multi_remove_handle(c->multi, r->easy);
        release_request(r);
        record_free(r);
    }
}

void http_client_free(http_client *c) {
    if (!c)
        return;
    drop_list(c, &c->running, true);
    drop_list(c, &c->failed, false);
    drop_list(c, &c->pool, false);
    if (c->multi)
        curl_multi_cleanup(c->multi);
    if (c->share)
        curl_share_cleanup(c->share); /* after every handle that used it */
    http_events_cleanup(&c->ev);
    free(c->ca_file);
    free(c);
}

http_request *http_client_submit(http_client *c, provider_request *req, uint32_t timeout_ms,
                                 http_done_fn done, void *ud) {
    if (!c || !req || !req->url || !done)
        return NULL;
    http_request *r = record_take(c);
    r->req = *req;
    memset(req, 0, sizeof *req);
    r->done = done;
    r->ud = ud;
    r->start_ms = clock_now_ms();
    r->capped = false;
    r->no_resend = false;
    r->body_off = 0;
    bool started = transfer_start(c, r, timeout_ms);
    if (!started)
        note_setup_failure(c, r);
    if (started) {
        req_set_state(r, HTTP_REQ_RUNNING);
        list_push(&c->running, r);
    } else {
        req_set_state(r, HTTP_REQ_FAILED);
        list_push(&c->failed, r);
    }
    c->in_flight++;
    return r;
}

void http_client_cancel(http_client *c, http_request *r) {
    if (!c || !r)
        return;
    if (r->state == HTTP_REQ_RUNNING) {
        curl_multi_remove_handle(c->multi, r->easy);
        list_unlink(&c->running, r);
    } else if (r->state == HTTP_REQ_FAILED) {
        list_unlink(&c->failed, r);
    } else {
        return; /* completing (its own callback) or already idle: nothing to abort */
    }
    c->in_flight--;
    record_recycle(c, r);
}

/* Runs the callback of a finished record, then recycles it. */
static void complete(http_client *c, http_request *r, CURLcode code, bool attached) {
    http_response resp;
    memset(&resp, 0, sizeof resp);
    resp.error = attached ? http_error_from_curl(code, r->capped) : HTTP_ERR_SETUP;
    if (code == CURLE_SEND_FAIL_REWIND && r->no_resend)
        snprintf(resp.error_text, sizeof resp.error_text,
                 "the connection was lost before any answer (request not sent again)");
    else if (resp.error != HTTP_OK)
        snprintf(resp.error_text, sizeof resp.error_text, "%s",
                 r->errbuf[0] ? r->errbuf : curl_easy_strerror(code));
    if (attached) {
        long status = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        resp.status = (int)status;
    }
    resp.headers = http_headers_view(&r->headers, &resp.n_headers);
    resp.body = r->body.data ? r->body.data : "";
    resp.body_len = r->body.len;
    resp.elapsed_ms = (uint32_t)(clock_now_ms() - r->start_ms);
    req_set_state(r, HTTP_REQ_COMPLETING);
    c->in_flight--;
    r->done(r->ud, &resp);
    record_recycle(c, r);
}

static int drain_done(http_client *c) {
    int ran = 0;
    int left;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode code = msg->data.result;
        http_request *r = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
        curl_multi_remove_handle(c->multi, easy);
        list_unlink(&c->running, r);
        complete(c, r, code, true);
        ran++;
    }
    return ran;
}

static int drain_failed(http_client *c) {
    int ran = 0;
    while (c->failed) {
        http_request *r = c->failed;
        list_unlink(&c->failed, r);
        complete(c, r, r->fail_code, false);
        ran++;
    }
    return ran;
}

int http_client_poll(http_client *c, int timeout_ms) {
    http_events_run(&c->ev, c->failed ? 0 : timeout_ms);
    int ran = drain_done(c);
    return ran + drain_failed(c);
}

void http_client_wakeup(http_client *c) {
    if (c)
        http_events_wakeup(&c->ev);
}

size_t http_client_in_flight(const http_client *c) {
    return c ? c->in_flight : 0;
}

uint64_t http_client_setup_failures(const http_client *c) {
    return c ? atomic_load_explicit(&c->setup_failures, memory_order_relaxed) : 0;
}

bool http_request_started(const http_request *r) {
    return r && r->state != HTTP_REQ_FAILED;
}

bool http_request_sent(const http_request *r) {
    return r && r->state == HTTP_REQ_RUNNING && (r->body_off > 0 || !r->req.body);
}
