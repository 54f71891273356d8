/*
 * fake_provider.c - the fake provider's HTTP/1.1 glue on libmicrohttpd (see fake_provider.h).
 *
 * MHD runs an internal pool of epoll worker threads (cfg.threads, default 2). In HTTP/2
 * mode the TLS front (fake_h2.c) owns the listening socket instead and hands MHD the
 * plaintext of connections that negotiate http/1.1 (MHD_add_connection). Each request
 * gets a fake_req whose state machine (fake_req_state) is: RECEIVING (body chunks are
 * appended to a bounded buffer) -> decided; then either answered at once, or WAITING with
 * the connection suspended and a deadline in the timer (fake_timer), which moves it to
 * READY (answer) or CLOSING (close without answer: a hang that expired, or shutdown) and
 * resumes it. A suspended connection costs its MHD memory pool and a small fake_req; no
 * thread waits, so 10,000 requests can be delayed at once.
 *
 * What to answer is decided by fake_route.c, shared with the HTTP/2 front; this file only
 * reads requests and writes replies (chunked ones through a content reader).
 *
 * Shutdown: the HTTP/2 front first (it feeds MHD), then the timer, which resumes every
 * suspended connection as CLOSING and refuses new suspensions; only then is MHD stopped
 * (MHD must not be stopped with suspended connections). Requests that are cut off are
 * never answered.
 */
#include "tests/fake_provider/fake_provider.h"

#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "tests/fake_provider/fake_answer.h"
#include "tests/fake_provider/fake_control.h"
#include "tests/fake_provider/fake_h2.h"
#include "tests/fake_provider/fake_reply.h"
#include "tests/fake_provider/fake_route.h"
#include "tests/fake_provider/fake_state.h"
#include "tests/fake_provider/fake_timer.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define FAKE_CONN_MEMORY (16u * 1024u)

struct fake_provider {
    struct MHD_Daemon *daemon;
    fake_h2 *h2; /* the TLS front in HTTP/2 mode, else NULL */
    fake_state *st;
    fake_timer *timer;
    uint16_t port;
    char base_url[64];
};

typedef enum fake_req_state {
    FREQ_RECEIVING = 0, /* reading the body */
    FREQ_WAITING,       /* suspended until the timer fires */
    FREQ_READY,         /* resumed: send the reply */
    FREQ_CLOSING,       /* resumed: close without a reply */
    FREQ_ANSWERED,      /* the reply is queued */
} fake_req_state;

typedef struct fake_req {
    fake_provider *fp;
    struct MHD_Connection *conn;
    fake_req_state state;
    fake_route route;
    bool counted; /* in the in-flight gauge */
    bool too_large;
    buf body;
    fake_reply reply;
} fake_req;

static void req_set_state(fake_req *r, fake_req_state s) {
    r->state = s;
}

static fake_req *req_new(fake_provider *fp, struct MHD_Connection *conn, const char *method,
                         const char *url) {
    fake_req *r = XNEW(fake_req);
    r->fp = fp;
    r->conn = conn;
    r->route = fake_route_of(method, url);
    buf_init(&r->body, fake_route_max_body(r->route));
    fake_reply_init(&r->reply);
    if (fake_route_is_provider(r->route)) {
        r->counted = true;
        fake_state_in_flight(fp->st, +1);
    }
    return r;
}

/* ---- sending ------------------------------------------------------------------------- */

/* A body served piece by piece: chunked answers, and truncated ones (which fail at the
 * end, so MHD closes the connection short of Content-Length). */
typedef struct body_reader {
    char *data;
    size_t len;
    bool fail_at_end;
} body_reader;

static ssize_t body_read(void *cls, uint64_t pos, char *out, size_t max) {
    body_reader *b = cls;
    if (pos >= b->len)
        return b->fail_at_end ? MHD_CONTENT_READER_END_WITH_ERROR
                              : MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = b->len - (size_t)pos < max ? b->len - (size_t)pos : max;
    memcpy(out, b->data + pos, n);
    return (ssize_t)n;
}

static void body_reader_free(void *cls) {
    body_reader *b = cls;
    free(b->data);
    free(b);
}

static struct MHD_Response *make_response(fake_reply *rep) {
    struct MHD_Response *resp;
    bool truncate = rep->action == FAKE_ACT_TRUNCATE;
    if (truncate || rep->chunked) {
        body_reader *b = XNEW(body_reader);
        b->data = rep->body;
        b->len = rep->body_len;
        b->fail_at_end = truncate;
        /* Unknown size: chunked encoding, one chunk per read of at most FAKE_CHUNK_BYTES. */
        uint64_t size = truncate ? b->len + b->len / 2 + 64 : MHD_SIZE_UNKNOWN;
        resp = MHD_create_response_from_callback(size, truncate ? 4096 : FAKE_CHUNK_BYTES,
                                                 body_read, b, body_reader_free);
    } else {
        resp = MHD_create_response_from_buffer_with_free_callback(rep->body_len, rep->body, free);
    }
    rep->body = NULL;
    if (!resp)
        return NULL;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    size_t pos = 0;
    const char *name, *value;
    while (fake_reply_next_header(rep, &pos, &name, &value))
        MHD_add_response_header(resp, name, value);
    return resp;
}

static enum MHD_Result send_reply(fake_req *r) {
    struct MHD_Response *resp = make_response(&r->reply);
    if (!resp)
        return MHD_NO;
    req_set_state(r, FREQ_ANSWERED);
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->reply.status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- timer hooks (run with the timer lock held) --------------------------------------- */

static void suspend_req(void *item) {
    fake_req *r = item;
    req_set_state(r, FREQ_WAITING);
    MHD_suspend_connection(r->conn);
}

static void fire_req(void *item, bool stopping) {
    fake_req *r = item;
    bool close = stopping || r->reply.action == FAKE_ACT_HANG;
    req_set_state(r, close ? FREQ_CLOSING : FREQ_READY);
    MHD_resume_connection(r->conn);
}

/* ---- deciding ------------------------------------------------------------------------ */

static const char *header(struct MHD_Connection *c, const char *name) {
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static enum MHD_Result decide(fake_provider *fp, fake_req *r, const char *method, const char *url) {
    struct MHD_Connection *c = r->conn;
    fake_request in = {
        .route = r->route,
        .method = method,
        .path = url,
        .authorization = header(c, MHD_HTTP_HEADER_AUTHORIZATION),
        .x_api_key = header(c, "x-api-key"),
        .x_goog_api_key = header(c, "x-goog-api-key"),
        .anthropic_version = header(c, "anthropic-version"),
        .accept_encoding = header(c, MHD_HTTP_HEADER_ACCEPT_ENCODING),
        .arg_all = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "all"),
        .arg_key = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "key"),
        .body = r->body.data ? r->body.data : "",
        .body_len = r->body.len,
        .body_too_large = r->too_large,
    };
    fake_route_decide(fp->st, &in, &r->reply);
    fake_reply *rep = &r->reply;
    if (rep->action == FAKE_ACT_RESET)
        return MHD_NO;
    if (rep->action == FAKE_ACT_HANG || rep->delay_ms > 0) {
        uint64_t wait = rep->action == FAKE_ACT_HANG ? FAKE_HANG_MAX_MS : rep->delay_ms;
        return fake_timer_schedule(fp->timer, clock_now_ms() + wait, r, suspend_req) ? MHD_YES
                                                                                     : MHD_NO;
    }
    return send_reply(r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **ctx) {
    fake_provider *fp = cls;
    fake_req *r = *ctx;
    if (!r) {
        *ctx = req_new(fp, conn, method, url);
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->too_large && buf_append(&r->body, upload_data, *upload_size) != 0)
            r->too_large = true;
        *upload_size = 0;
        return MHD_YES;
    }
    switch (r->state) {
    case FREQ_RECEIVING:
        return decide(fp, r, method, url);
    case FREQ_READY:
        return send_reply(r);
    case FREQ_WAITING:
    case FREQ_ANSWERED:
        return MHD_YES;
    case FREQ_CLOSING:
        break;
    }
    return MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **ctx,
                         enum MHD_RequestTerminationCode toe) {
    fake_provider *fp = cls;
    fake_req *r = *ctx;
    if (!r)
        return;
    if (r->counted)
        fake_state_in_flight(fp->st, -1);
    buf_cleanup(&r->body);
    fake_reply_cleanup(&r->reply);
    free(r);
    *ctx = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode toe) {
    fake_provider *fp = cls;
    fake_state_connection(fp->st, toe == MHD_CONNECTION_NOTIFY_STARTED);
}

/* ---- lifecycle ------------------------------------------------------------------------ */

static unsigned raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur > 1000000 ? 1000000u : (unsigned)rl.rlim_cur;
}

/* In HTTP/2 mode MHD has no listener: the TLS front owns the port, and MHD does TLS-less
 * HTTP/1.1 for the connections the front hands over. */
static struct MHD_Daemon *start_daemon(fake_provider *fp, const fake_provider_config *cfg,
                                       const struct sockaddr_in *sa) {
    unsigned fds = raise_fd_limit();
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO;
    if (!cfg->quiet)
        flags |= MHD_USE_ERROR_LOG;
    bool tls = cfg->tls_cert_pem && cfg->tls_key_pem && !cfg->http2;
    if (tls)
        flags |= MHD_USE_TLS;
    if (cfg->http2)
        flags |= MHD_USE_NO_LISTEN_SOCKET;
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_SOCK_ADDR, 0, (void *)sa},
        {MHD_OPTION_THREAD_POOL_SIZE, cfg->threads ? cfg->threads : 2, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, fds > 128 ? fds - 64 : 64, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, 900, NULL},
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT,
         (intptr_t)(cfg->connection_memory ? cfg->connection_memory : FAKE_CONN_MEMORY), NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, fp},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, fp},
        {tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, (void *)cfg->tls_key_pem},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cfg->tls_cert_pem},
        {MHD_OPTION_END, 0, NULL},
    };
    return MHD_start_daemon(flags, cfg->port, NULL, NULL, on_request, fp, MHD_OPTION_ARRAY, opts,
                            MHD_OPTION_END);
}

static int adopt_h1(void *ctx, int fd, const struct sockaddr *peer, socklen_t len) {
    fake_provider *fp = ctx;
    return MHD_add_connection(fp->daemon, fd, peer, len) == MHD_YES ? 0 : -1;
}

static int start_h2(fake_provider *fp, const fake_provider_config *cfg,
                    const struct sockaddr_in *sa, char *err, size_t errlen) {
    fake_h2_config hc = {
        .addr = *sa,
        .cert_pem = cfg->tls_cert_pem,
        .key_pem = cfg->tls_key_pem,
        .st = fp->st,
        .adopt = adopt_h1,
        .adopt_ctx = fp,
        .quiet = cfg->quiet,
    };
    fp->h2 = fake_h2_start(&hc, err, errlen);
    if (!fp->h2)
        return -1;
    fp->port = fake_h2_port(fp->h2);
    return 0;
}

int fake_provider_new(const fake_provider_config *cfg, fake_provider **out, char *err,
                      size_t errlen) {
    static const fake_provider_config defaults = {0};
    cfg = cfg ? cfg : &defaults;
    *out = NULL;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(cfg->port)};
    if (inet_pton(AF_INET, cfg->bind_addr ? cfg->bind_addr : "127.0.0.1", &sa.sin_addr) != 1) {
        snprintf(err, errlen, "fake_provider: bad bind address");
        return -1;
    }
    if ((cfg->tls_cert_pem != NULL) != (cfg->tls_key_pem != NULL)) {
        snprintf(err, errlen, "fake_provider: TLS needs both a certificate and a key");
        return -1;
    }
    if (cfg->http2 && !cfg->tls_cert_pem) {
        snprintf(err, errlen, "fake_provider: HTTP/2 is served over TLS only (ALPN h2)");
        return -1;
    }
    fake_provider *fp = XNEW(fake_provider);
    fp->st = fake_state_new(cfg);
    fp->timer = fake_timer_new(fire_req);
    fp->daemon = fp->timer ? start_daemon(fp, cfg, &sa) : NULL;
    if (!fp->daemon) {
        snprintf(err, errlen, "fake_provider: cannot start the server on %s:%u",
                 cfg->bind_addr ? cfg->bind_addr : "127.0.0.1", cfg->port);
        fake_provider_free(fp);
        return -1;
    }
    if (cfg->http2) {
        if (start_h2(fp, cfg, &sa, err, errlen) != 0) {
            fake_provider_free(fp);
            return -1;
        }
    } else {
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(fp->daemon, MHD_DAEMON_INFO_BIND_PORT);
        fp->port = info ? info->port : cfg->port;
    }
    snprintf(fp->base_url, sizeof fp->base_url, "%s://%s:%u", cfg->tls_cert_pem ? "https" : "http",
             cfg->bind_addr ? cfg->bind_addr : "127.0.0.1", fp->port);
    *out = fp;
    return 0;
}

void fake_provider_free(fake_provider *fp) {
    if (!fp)
        return;
    fake_h2_stop(fp->h2);
    if (fp->timer)
        fake_timer_stop(fp->timer);
    if (fp->daemon)
        MHD_stop_daemon(fp->daemon);
    fake_timer_free(fp->timer);
    fake_state_free(fp->st);
    free(fp);
}

uint16_t fake_provider_port(const fake_provider *fp) {
    return fp->port;
}

const char *fake_provider_base_url(const fake_provider *fp) {
    return fp->base_url;
}

/* ---- public settings and counters (thin wrappers over fake_state) --------------------- */

void fake_provider_set_latency(fake_provider *fp, uint32_t latency_ms, uint32_t jitter_ms) {
    fake_state_set_latency(fp->st, latency_ms, jitter_ms);
}

void fake_provider_set_limits(fake_provider *fp, const char *key, uint32_t rpm, uint32_t tpm,
                              uint32_t window_ms) {
    fake_state_set_limits(fp->st, key, rpm, tpm, window_ms);
}

void fake_provider_add_unknown_model(fake_provider *fp, const char *model) {
    fake_state_add_unknown(fp->st, model);
}

void fake_provider_force_status(fake_provider *fp, const char *model, int status) {
    fake_state_force_status(fp->st, model, status);
}

void fake_provider_script(fake_provider *fp, const char *model, unsigned count, int status,
                          const char *const *headers, size_t n_headers, const char *body) {
    fake_state_script(fp->st, model, count, status, headers, n_headers, body);
}

void fake_provider_refuse_streams(fake_provider *fp, uint32_t n) {
    fake_state_refuse_streams(fp->st, n);
}

void fake_provider_reset_next(fake_provider *fp, uint32_t n) {
    fake_state_reset_next(fp->st, n);
}

void fake_provider_set_request_log(fake_provider *fp, bool on, size_t capacity) {
    fake_state_set_log(fp->st, on, capacity);
}

int fake_provider_configure(fake_provider *fp, const char *json, char *err, size_t errlen) {
    return fake_control_configure(fp->st, json, strlen(json), err, errlen);
}

void fake_provider_reset(fake_provider *fp) {
    fake_state_reset(fp->st);
}

void fake_provider_counters(fake_provider *fp, fake_counters *out) {
    fake_state_counters(fp->st, out);
}

void fake_provider_model_counters(fake_provider *fp, const char *model, fake_model_counters *out) {
    fake_state_model_counters(fp->st, model, out);
}

void fake_provider_request_hash(const char *body, size_t len, char out[17]) {
    fake_sha256_hex(body, len, out, 16);
}

void fake_provider_hash_counts(fake_provider *fp, const char *hash_hex, uint64_t *arrivals,
                               uint64_t *ok) {
    char *end;
    uint64_t key = strtoull(hash_hex, &end, 16);
    fake_state_hash_counts(fp->st, key ? key : 1, arrivals, ok);
}

char *fake_provider_counters_json(fake_provider *fp, bool all_hashes) {
    json_t *j = fake_state_counters_json(fp->st, all_hashes);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

size_t fake_provider_request_log(fake_provider *fp, const char *key, fake_log_entry *out,
                                 size_t max) {
    return fake_state_log(fp->st, key, out, max);
}
