/*
 * fake_h2.h - the fake provider's TLS front: HTTP/2 (nghttp2) and HTTP/1.1 by ALPN.
 *
 * Real provider APIs are served over TLS and negotiate HTTP/2, so the fake can too. The
 * front owns the listening socket and terminates TLS with OpenSSL, offering "h2" and
 * "http/1.1". A connection that negotiates h2 is served here by an nghttp2 server session;
 * any other is handed, as plaintext over a socketpair, to the fake's HTTP/1.1 engine
 * (libmicrohttpd) through the adopt callback. Requests on h2 streams are decided by the
 * same code as HTTP/1.1 ones (fake_route.c), and delayed answers wait in a timer thread.
 *
 * Thread safety: fake_h2_start and fake_h2_stop from one thread; fake_h2_port from any.
 */
#ifndef SLUICE_TESTS_FAKE_H2_H
#define SLUICE_TESTS_FAKE_H2_H

#include "tests/fake_provider/fake_state.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct fake_h2 fake_h2;

/* Takes ownership of fd (a plaintext HTTP/1.1 byte stream; peer is the TLS client's
 * address). Returns 0, or -1 when the connection cannot be taken (fd is then closed). */
typedef int (*fake_h2_adopt_fn)(void *ctx, int fd, const struct sockaddr *peer, socklen_t len);

typedef struct fake_h2_config {
    struct sockaddr_in addr; /* where to listen (port 0 = ephemeral) */
    const char *cert_pem;    /* PEM text of the certificate and key */
    const char *key_pem;
    fake_state *st;         /* borrowed; outlives the front */
    fake_h2_adopt_fn adopt; /* the HTTP/1.1 engine for clients that do not pick h2 */
    void *adopt_ctx;
    bool quiet; /* no TLS or protocol errors on stderr */
} fake_h2_config;

/* Listens and starts the accept thread. Returns NULL with a message in err. */
fake_h2 *fake_h2_start(const fake_h2_config *cfg, char *err, size_t errlen);
/* The port it listens on. */
uint16_t fake_h2_port(const fake_h2 *f);
/* Stops accepting, answers nothing more (delayed answers are dropped: their streams are
 * reset), closes every connection, joins every thread and frees. NULL-safe. */
void fake_h2_stop(fake_h2 *f);

#endif
