/*
 * fake_h2.c - the fake provider's TLS front (see fake_h2.h).
 *
 * Threads: one accept thread; one thread per connection, which owns the connection's TLS
 * session (blocking OpenSSL on the socket), its nghttp2 session and every stream on it;
 * and one timer thread for delayed answers. A client multiplexes, so the fake serves a
 * handful of connections however many requests are in flight. SIGPIPE is blocked in the
 * connection threads, so a write to a client that went away fails with EPIPE instead of
 * killing the test process.
 *
 * A stream's life (h2s_state): RECEIVING (headers, then body chunks into a bounded buffer)
 * -> decided when the request ends -> ANSWERING at once (response or reset submitted;
 * nghttp2 finishes it and on_stream_close frees it), or TIMED while its answer waits in the
 * timer. The timer thread never touches nghttp2: under the front's mutex it moves a due
 * stream onto its connection's ready list and writes the connection's eventfd; the
 * connection thread then answers it. A TIMED stream that nghttp2 closed meanwhile (the
 * client reset it) is only marked closed and freed when it comes out of the timer; one
 * whose connection ended is orphaned (conn = NULL) and freed by the timer thread.
 *
 * HTTP/2 behaviour the tests program through fake_state: SETTINGS_MAX_CONCURRENT_STREAMS
 * (read when a connection starts), a graceful GOAWAY after N requests on a connection
 * (streams already begun are answered; later ones the client must retry elsewhere), and
 * REFUSED_STREAM for the next N streams, sent when their headers arrive.
 */
#include "tests/fake_provider/fake_h2.h"

#include "server/common/alloc.h"
#include "server/common/buf.h"
#include "server/common/clock.h"
#include "tests/fake_provider/fake_route.h"
#include "tests/fake_provider/fake_timer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define H2_READ_BYTES 16384
#define H2_MAX_HEADER_VALUE 8192u
#define H2_MAX_RESPONSE_HEADERS 64
#define H2_LINGER_MS 2000

typedef struct h2_conn h2_conn;

typedef enum h2s_state {
    H2S_RECEIVING = 0, /* headers and body arriving */
    H2S_TIMED,         /* its answer waits in the timer or on the ready list */
    H2S_ANSWERING,     /* response or reset submitted; nghttp2 closes it */
} h2s_state;

typedef struct h2_stream {
    fake_h2 *front;
    h2_conn *conn; /* NULL when orphaned (under front->mu) */
    int32_t id;
    h2s_state state;
    bool closed;   /* nghttp2 closed it while TIMED */
    bool fired;    /* the timer let it go (under front->mu) */
    bool stopping; /* ... because the timer stopped */
    bool counted;  /* in the fake's in-flight gauge */
    char *method, *path, *query;
    char *authorization, *x_api_key, *x_goog_api_key, *anthropic_version, *accept_encoding;
    buf body;
    bool too_large;
    fake_reply reply;
    size_t sent;                   /* body bytes handed to nghttp2 */
    struct h2_stream *prev, *next; /* the connection's streams */
    struct h2_stream *ready_next;
} h2_stream;

struct h2_conn {
    fake_h2 *front;
    int fd, evfd;
    SSL *ssl;
    struct sockaddr_in peer;
    nghttp2_session *session;
    bool finishing; /* nghttp2 callbacks are ignored while the session is deleted */
    h2_stream *streams;
    h2_stream *ready; /* under front->mu */
    uint32_t requests, goaway_after;
    h2_conn *prev, *next; /* the front's connections (under front->mu) */
};

struct fake_h2 {
    fake_h2_config cfg;
    SSL_CTX *ctx;
    int lfd;
    uint16_t port;
    pthread_t accept_thread;
    bool accepting;
    fake_timer *timer;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    h2_conn *conns;
    size_t n_conns;
    bool stopping;
};

static void note(const fake_h2 *f, const char *what) {
    if (f->cfg.quiet)
        return;
    unsigned long e = ERR_get_error();
    fprintf(stderr, "fake h2: %s%s%s\n", what, e ? ": " : "", e ? ERR_reason_error_string(e) : "");
}

/* ---- streams (connection thread, except stream_free on an orphan) ------------------- */

static h2_stream *stream_new(h2_conn *c, int32_t id) {
    h2_stream *s = XNEW(h2_stream);
    s->front = c->front;
    s->conn = c;
    s->id = id;
    buf_init(&s->body, FAKE_MAX_BODY);
    fake_reply_init(&s->reply);
    s->next = c->streams;
    if (c->streams)
        c->streams->prev = s;
    c->streams = s;
    return s;
}

static void stream_unlink(h2_conn *c, h2_stream *s) {
    if (s->prev)
        s->prev->next = s->next;
    else
        c->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

static void stream_free(h2_stream *s) {
    if (s->counted)
        fake_state_in_flight(s->front->cfg.st, -1);
    free(s->method);
    free(s->path);
    free(s->query);
    free(s->authorization);
    free(s->x_api_key);
    free(s->x_goog_api_key);
    free(s->anthropic_version);
    free(s->accept_encoding);
    buf_cleanup(&s->body);
    fake_reply_cleanup(&s->reply);
    free(s);
}

static void stream_drop(h2_conn *c, h2_stream *s) {
    stream_unlink(c, s);
    stream_free(s);
}

/* ---- the timer (timer thread, timer lock held) -------------------------------------- */

static void mark_timed(void *item) {
    ((h2_stream *)item)->state = H2S_TIMED;
}

static void fire(void *item, bool stopping) {
    h2_stream *s = item;
    fake_h2 *f = s->front;
    pthread_mutex_lock(&f->mu);
    h2_conn *c = s->conn;
    if (c) {
        s->fired = true;
        s->stopping = stopping;
        s->ready_next = c->ready;
        c->ready = s;
        uint64_t one = 1;
        if (write(c->evfd, &one, sizeof one) < 0) { /* the counter cannot overflow here */
        }
    }
    pthread_mutex_unlock(&f->mu);
    if (!c)
        stream_free(s); /* its connection is gone */
}

/* ---- answering ---------------------------------------------------------------------- */

static void reset_stream(h2_conn *c, h2_stream *s, uint32_t code) {
    s->state = H2S_ANSWERING;
    nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, s->id, code);
    if (code == NGHTTP2_INTERNAL_ERROR)
        fake_state_h2_event(c->front->cfg.st, FAKE_H2_RESET);
}

static ssize_t read_body(nghttp2_session *session, int32_t id, uint8_t *out, size_t length,
                         uint32_t *flags, nghttp2_data_source *source, void *ud) {
    (void)session;
    (void)id;
    (void)ud;
    h2_stream *s = source->ptr;
    size_t left = s->reply.body_len - s->sent;
    if (left == 0 && s->reply.action == FAKE_ACT_TRUNCATE)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream mid-body */
    size_t n = left < length ? left : length;
    if (s->reply.chunked && n > FAKE_CHUNK_BYTES)
        n = FAKE_CHUNK_BYTES;
    memcpy(out, s->reply.body + s->sent, n);
    s->sent += n;
    if (s->sent == s->reply.body_len && s->reply.action != FAKE_ACT_TRUNCATE)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static nghttp2_nv make_nv(const char *name, const char *value) {
    nghttp2_nv nv = {(uint8_t *)name, (uint8_t *)value, strlen(name), strlen(value),
                     NGHTTP2_NV_FLAG_NONE};
    return nv;
}

/* Submits status, headers (lowercased, as HTTP/2 requires) and the body. */
static void respond(h2_conn *c, h2_stream *s) {
    fake_reply *rep = &s->reply;
    char status[8], length[24], names[H2_MAX_RESPONSE_HEADERS][64];
    nghttp2_nv nva[H2_MAX_RESPONSE_HEADERS + 3];
    size_t n = 0;
    snprintf(status, sizeof status, "%d", rep->status);
    nva[n++] = make_nv(":status", status);
    nva[n++] = make_nv("content-type", "application/json");
    if (!rep->chunked) {
        size_t announced = rep->body_len;
        if (rep->action == FAKE_ACT_TRUNCATE)
            announced += rep->body_len / 2 + 64;
        snprintf(length, sizeof length, "%zu", announced);
        nva[n++] = make_nv("content-length", length);
    }
    size_t pos = 0, i = 0;
    const char *name, *value;
    while (i < H2_MAX_RESPONSE_HEADERS && fake_reply_next_header(rep, &pos, &name, &value)) {
        size_t k = 0;
        for (; name[k] && k + 1 < sizeof names[i]; k++)
            names[i][k] = (char)(name[k] >= 'A' && name[k] <= 'Z' ? name[k] + 32 : name[k]);
        names[i][k] = '\0';
        nva[n++] = make_nv(names[i++], value);
    }
    nghttp2_data_provider prd = {.source.ptr = s, .read_callback = read_body};
    s->state = H2S_ANSWERING;
    nghttp2_submit_response(c->session, s->id, nva, n, &prd);
}

/* Streams the timer let go: answer them, or drop the ones the client gave up on. */
static void answer_ready(h2_conn *c) {
    uint64_t v;
    if (read(c->evfd, &v, sizeof v) < 0) { /* EAGAIN: nothing new */
    }
    pthread_mutex_lock(&c->front->mu);
    h2_stream *s = c->ready;
    c->ready = NULL;
    pthread_mutex_unlock(&c->front->mu);
    while (s) {
        h2_stream *next = s->ready_next;
        if (s->closed)
            stream_drop(c, s);
        else if (s->stopping || s->reply.action == FAKE_ACT_HANG)
            reset_stream(c, s, NGHTTP2_INTERNAL_ERROR);
        else
            respond(c, s);
        s = next;
    }
}

/* Percent-decodes the value of query argument `name` (a fresh string), or NULL. */
static char *query_arg(const char *query, const char *name) {
    size_t nl = strlen(name);
    for (const char *p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, name, nl) != 0 || p[nl] != '=')
            continue;
        const char *v = p + nl + 1;
        size_t len = strcspn(v, "&");
        char *out = xmalloc(len + 1), *o = out;
        for (size_t i = 0; i < len; i++) {
            unsigned hex;
            if (v[i] == '%' && i + 2 < len && sscanf(v + i + 1, "%2x", &hex) == 1) {
                *o++ = (char)hex;
                i += 2;
            } else {
                *o++ = v[i] == '+' ? ' ' : v[i];
            }
        }
        *o = '\0';
        return out;
    }
    return NULL;
}

/* The request is complete: decide, then answer now, later, or never. */
static void request_done(h2_conn *c, h2_stream *s) {
    fake_h2 *f = c->front;
    fake_request in = {
        .route = fake_route_of(s->method, s->path),
        .method = s->method,
        .path = s->path,
        .authorization = s->authorization,
        .x_api_key = s->x_api_key,
        .x_goog_api_key = s->x_goog_api_key,
        .anthropic_version = s->anthropic_version,
        .accept_encoding = s->accept_encoding,
        .body = s->body.data ? s->body.data : "",
        .body_len = s->body.len,
        .body_too_large = s->too_large,
    };
    char *all = in.route == FAKE_ROUTE_CONTROL ? query_arg(s->query, "all") : NULL;
    char *key = in.route == FAKE_ROUTE_CONTROL ? query_arg(s->query, "key") : NULL;
    in.arg_all = all;
    in.arg_key = key;
    if (fake_route_is_provider(in.route)) {
        s->counted = true;
        fake_state_in_flight(f->cfg.st, +1);
    }
    fake_route_decide(f->cfg.st, &in, &s->reply);
    free(all);
    free(key);
    if (c->goaway_after && ++c->requests == c->goaway_after) {
        nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(c->session), NGHTTP2_NO_ERROR,
                              NULL, 0);
        fake_state_h2_event(f->cfg.st, FAKE_H2_GOAWAY);
    }
    fake_reply *rep = &s->reply;
    if (rep->action == FAKE_ACT_RESET) {
        reset_stream(c, s, NGHTTP2_INTERNAL_ERROR);
    } else if (rep->action == FAKE_ACT_HANG || rep->delay_ms > 0) {
        uint64_t wait = rep->action == FAKE_ACT_HANG ? FAKE_HANG_MAX_MS : rep->delay_ms;
        if (!fake_timer_schedule(f->timer, clock_now_ms() + wait, s, mark_timed))
            reset_stream(c, s, NGHTTP2_INTERNAL_ERROR); /* stopping */
    } else {
        respond(c, s);
    }
}

/* ---- nghttp2 callbacks (connection thread) ------------------------------------------ */

static h2_stream *stream_of(h2_conn *c, int32_t id) {
    return c->finishing ? NULL : nghttp2_session_get_stream_user_data(c->session, id);
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *ud) {
    h2_conn *c = ud;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    h2_stream *s = stream_new(c, frame->hd.stream_id);
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, s);
    fake_state_h2_event(c->front->cfg.st, FAKE_H2_STREAM);
    return 0;
}

static void keep(char **slot, const uint8_t *value, size_t len) {
    free(*slot);
    *slot = xstrndup((const char *)value, len < H2_MAX_HEADER_VALUE ? len : H2_MAX_HEADER_VALUE);
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *ud) {
    (void)session;
    (void)flags;
    h2_stream *s = stream_of(ud, frame->hd.stream_id);
    if (!s || s->state != H2S_RECEIVING)
        return 0;
#define IS(n) (namelen == sizeof(n) - 1 && memcmp(name, n, namelen) == 0)
    if (IS(":method")) {
        keep(&s->method, value, valuelen);
    } else if (IS(":path")) {
        const uint8_t *q = memchr(value, '?', valuelen);
        keep(&s->path, value, q ? (size_t)(q - value) : valuelen);
        if (q)
            keep(&s->query, q + 1, valuelen - (size_t)(q - value) - 1);
    } else if (IS("authorization")) {
        keep(&s->authorization, value, valuelen);
    } else if (IS("x-api-key")) {
        keep(&s->x_api_key, value, valuelen);
    } else if (IS("x-goog-api-key")) {
        keep(&s->x_goog_api_key, value, valuelen);
    } else if (IS("anthropic-version")) {
        keep(&s->anthropic_version, value, valuelen);
    } else if (IS("accept-encoding")) {
        keep(&s->accept_encoding, value, valuelen);
    }
#undef IS
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud) {
    (void)session;
    (void)flags;
    h2_stream *s = stream_of(ud, id);
    if (s && s->state == H2S_RECEIVING && !s->too_large &&
        buf_append(&s->body, (const char *)data, len) != 0)
        s->too_large = true;
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud) {
    (void)session;
    h2_conn *c = ud;
    if (frame->hd.type == NGHTTP2_RST_STREAM)
        fake_state_h2_event(c->front->cfg.st, FAKE_H2_CLIENT_RESET);
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    h2_stream *s = stream_of(c, frame->hd.stream_id);
    if (!s || s->state != H2S_RECEIVING)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && fake_state_take_refusal(c->front->cfg.st)) {
        reset_stream(c, s, NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        s->body.max = fake_route_max_body(fake_route_of(s->method, s->path));
        if (s->body.len > s->body.max)
            s->too_large = true;
        request_done(c, s);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t id, uint32_t code, void *ud) {
    (void)session;
    (void)code;
    h2_conn *c = ud;
    h2_stream *s = stream_of(c, id);
    if (!s)
        return 0;
    if (s->state == H2S_TIMED)
        s->closed = true; /* freed when it comes out of the timer */
    else
        stream_drop(c, s);
    return 0;
}

/* ---- connections -------------------------------------------------------------------- */

static int ssl_write_all(h2_conn *c, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        int n = SSL_write(c->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int flush(h2_conn *c) {
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->session, &data);
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        if (ssl_write_all(c, data, (size_t)n) != 0)
            return -1;
    }
}

/* Waits for the socket or the eventfd (TLS bytes already buffered count as readable).
 * Returns 1 when the socket is readable, 0 when not, -1 on a poll failure. */
static int wait_readable(h2_conn *c, bool *woken) {
    struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN}, {.fd = c->evfd, .events = POLLIN}};
    bool buffered = SSL_pending(c->ssl) > 0;
    if (poll(p, 2, buffered ? 0 : -1) < 0)
        return errno == EINTR ? 0 : -1;
    *woken = p[1].revents != 0;
    return buffered || p[0].revents != 0;
}

static void serve_h2(h2_conn *c) {
    fake_state *st = c->front->cfg.st;
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    int rc = nghttp2_session_server_new(&c->session, cb, c);
    nghttp2_session_callbacks_del(cb);
    if (rc != 0)
        return;
    fake_wire w;
    fake_state_wire(st, &w);
    c->goaway_after = w.h2_goaway_after;
    nghttp2_settings_entry iv = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, w.h2_max_streams};
    nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, &iv, 1);
    fake_state_h2_event(st, FAKE_H2_CONNECTION);
    fake_state_connection(st, true); /* relayed HTTP/1.1 ones are counted by MHD */
    uint8_t in[H2_READ_BYTES];
    while (flush(c) == 0 &&
           (nghttp2_session_want_read(c->session) || nghttp2_session_want_write(c->session))) {
        bool woken = false;
        int readable = wait_readable(c, &woken);
        if (readable < 0)
            break;
        if (woken)
            answer_ready(c);
        if (!readable)
            continue;
        int n = SSL_read(c->ssl, in, sizeof in);
        if (n <= 0 || nghttp2_session_mem_recv(c->session, in, (size_t)n) < 0)
            break;
    }
    fake_state_connection(st, false);
}

/* HTTP/1.1 after TLS: the plaintext goes to the HTTP/1.1 engine over a socketpair. */
static void relay_h1(h2_conn *c) {
    fake_h2 *f = c->front;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return;
    if (f->cfg.adopt(f->cfg.adopt_ctx, sv[1], (const struct sockaddr *)&c->peer, sizeof c->peer) !=
        0) {
        close(sv[0]);
        return;
    }
    char b[H2_READ_BYTES];
    for (;;) {
        struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN}, {.fd = sv[0], .events = POLLIN}};
        bool buffered = SSL_pending(c->ssl) > 0;
        if (poll(p, 2, buffered ? 0 : -1) < 0 && errno != EINTR)
            break;
        if (buffered || p[0].revents) {
            int n = SSL_read(c->ssl, b, sizeof b);
            if (n <= 0 || send(sv[0], b, (size_t)n, MSG_NOSIGNAL) != n)
                break;
        }
        if (p[1].revents) {
            ssize_t n = read(sv[0], b, sizeof b);
            if (n <= 0 || ssl_write_all(c, b, (size_t)n) != 0)
                break;
        }
    }
    close(sv[0]);
}

/* Ends the TLS session and the connection as a real server does (nginx's lingering close):
 * close_notify, our half of TCP shut, then the client's late bytes read and dropped until
 * it closes too (or H2_LINGER_MS pass). Closing with unread bytes would make the kernel
 * send RST, and the client would lose answers it had not read yet. */
static void linger_close(h2_conn *c) {
    if (c->ssl)
        SSL_shutdown(c->ssl);
    shutdown(c->fd, SHUT_WR);
    uint64_t end = clock_now_ms() + H2_LINGER_MS;
    char b[4096];
    for (uint64_t now = clock_now_ms(); now < end; now = clock_now_ms()) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, (int)(end - now)) <= 0 || read(c->fd, b, sizeof b) <= 0)
            break;
    }
    close(c->fd);
}

/* Tears a connection down: streams in the timer are orphaned, the rest freed. */
static void conn_finish(h2_conn *c) {
    fake_h2 *f = c->front;
    c->finishing = true;
    nghttp2_session_del(c->session);
    pthread_mutex_lock(&f->mu);
    while (c->streams) {
        h2_stream *s = c->streams;
        stream_unlink(c, s);
        if (s->state == H2S_TIMED && !s->fired)
            s->conn = NULL; /* the timer frees it */
        else
            stream_free(s);
    }
    c->ready = NULL; /* fired streams were on c->streams too */
    if (c->prev)
        c->prev->next = c->next;
    else
        f->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&f->mu);
    linger_close(c);
    SSL_free(c->ssl);
    close(c->evfd);
    free(c);
    pthread_mutex_lock(&f->mu);
    f->n_conns--;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static void *conn_main(void *arg) {
    h2_conn *c = arg;
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);
    c->ssl = SSL_new(c->front->ctx);
    if (c->ssl && SSL_set_fd(c->ssl, c->fd) == 1 && SSL_accept(c->ssl) == 1) {
        const unsigned char *alpn = NULL;
        unsigned alpn_len = 0;
        SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
        if (alpn_len == 2 && memcmp(alpn, "h2", 2) == 0)
            serve_h2(c);
        else
            relay_h1(c);
    } else {
        note(c->front, "TLS handshake failed");
    }
    conn_finish(c);
    return NULL;
}

static void conn_start(fake_h2 *f, int fd, const struct sockaddr_in *peer) {
    h2_conn *c = XNEW(h2_conn);
    c->front = f;
    c->fd = fd;
    c->peer = *peer;
    c->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_lock(&f->mu);
    bool refuse = f->stopping || c->evfd < 0;
    if (!refuse) {
        c->next = f->conns;
        if (f->conns)
            f->conns->prev = c;
        f->conns = c;
        f->n_conns++;
    }
    pthread_mutex_unlock(&f->mu);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (!refuse && pthread_create(&t, &attr, conn_main, c) != 0) {
        c->ssl = NULL;
        conn_finish(c);
    } else if (refuse) {
        close(fd);
        if (c->evfd >= 0)
            close(c->evfd);
        free(c);
    }
    pthread_attr_destroy(&attr);
}

static void *accept_main(void *arg) {
    fake_h2 *f = arg;
    for (;;) {
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        int fd = accept4(f->lfd, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
        if (fd < 0 && (errno == EINTR || errno == ECONNABORTED || errno == EMFILE))
            continue;
        if (fd < 0)
            break; /* shut down */
        conn_start(f, fd, &peer);
    }
    return NULL;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg) {
    (void)ssl;
    (void)arg;
    static const unsigned char ours[] = "\x02h2\x08http/1.1";
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, ours, sizeof ours - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* no overlap: HTTP/1.1 */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *make_ctx(const fake_h2_config *cfg) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    BIO *cb = BIO_new_mem_buf(cfg->cert_pem, -1), *kb = BIO_new_mem_buf(cfg->key_pem, -1);
    X509 *cert = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
    EVP_PKEY *key = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
    bool ok = ctx && cert && key && SSL_CTX_use_certificate(ctx, cert) == 1 &&
              SSL_CTX_use_PrivateKey(ctx, key) == 1 &&
              SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1;
    X509_free(cert);
    EVP_PKEY_free(key);
    BIO_free(cb);
    BIO_free(kb);
    if (!ok) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
    return ctx;
}

static int listen_on(fake_h2 *f) {
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a = f->cfg.addr;
    socklen_t len = sizeof a;
    if (f->lfd < 0 || setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(f->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(f->lfd, 4096) != 0 ||
        getsockname(f->lfd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    f->port = ntohs(a.sin_port);
    return 0;
}

fake_h2 *fake_h2_start(const fake_h2_config *cfg, char *err, size_t errlen) {
    fake_h2 *f = XNEW(fake_h2);
    f->cfg = *cfg;
    f->lfd = -1;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    const char *what = NULL;
    if (!(f->ctx = make_ctx(cfg)))
        what = "cannot load the TLS certificate and key";
    else if (listen_on(f) != 0)
        what = "cannot listen";
    else if (!(f->timer = fake_timer_new(fire)))
        what = "cannot start the timer";
    else if (pthread_create(&f->accept_thread, NULL, accept_main, f) != 0)
        what = "cannot start the accept thread";
    if (what) {
        snprintf(err, errlen, "fake h2: %s (%s)", what, strerror(errno));
        fake_h2_stop(f);
        return NULL;
    }
    f->accepting = true;
    return f;
}

uint16_t fake_h2_port(const fake_h2 *f) {
    return f->port;
}

void fake_h2_stop(fake_h2 *f) {
    if (!f)
        return;
    if (f->lfd >= 0)
        shutdown(f->lfd, SHUT_RDWR);
    if (f->accepting)
        pthread_join(f->accept_thread, NULL);
    if (f->timer)
        fake_timer_stop(f->timer); /* every delayed stream fires (reset) or is freed */
    pthread_mutex_lock(&f->mu);
    f->stopping = true;
    for (h2_conn *c = f->conns; c; c = c->next)
        shutdown(c->fd, SHUT_RDWR);
    while (f->n_conns > 0)
        pthread_cond_wait(&f->cv, &f->mu);
    pthread_mutex_unlock(&f->mu);
    fake_timer_free(f->timer);
    SSL_CTX_free(f->ctx);
    if (f->lfd >= 0)
        close(f->lfd);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    free(f);
}
