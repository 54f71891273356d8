/* fake_raw.c - the request-dropping raw-socket server (see fake_raw.h). */
#include "tests/fake_provider/fake_raw.h"

#include "server/common/alloc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define RAW_MAX_REQUEST (1u << 20)

struct fake_raw {
    fake_raw_config cfg;
    int lfd;
    pthread_t thread;
    atomic_uint_fast64_t requests;
    pthread_mutex_t mu; /* conn: set, shut down and closed under it */
    int conn;           /* the connection being served, -1 when none (stop shuts it down) */
    char url[64];
};

static const char answer_body[] =
    "{\"id\":\"chatcmpl-raw\",\"object\":\"chat.completion\",\"created\":1700000000,"
    "\"model\":\"raw\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
    "\"content\":\"raw answer\"},\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}";

/* Reads one complete request (headers, then Content-Length bytes of body). Returns false
 * when the peer closes or sends more than RAW_MAX_REQUEST. */
static bool read_request(int fd, char *b) {
    size_t len = 0, need = 0;
    for (;;) {
        if (need && len >= need)
            return true;
        ssize_t n = read(fd, b + len, RAW_MAX_REQUEST - 1 - len);
        if (n <= 0)
            return false;
        len += (size_t)n;
        b[len] = '\0';
        char *end = need ? NULL : strstr(b, "\r\n\r\n");
        if (end) {
            const char *cl = strcasestr(b, "\r\ncontent-length:");
            need = (size_t)(end + 4 - b) + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
        }
        if (len >= RAW_MAX_REQUEST - 1)
            return false;
    }
}

static void answer(int fd) {
    char head[160];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     sizeof answer_body - 1);
    if (send(fd, head, (size_t)n, MSG_NOSIGNAL) != n ||
        send(fd, answer_body, sizeof answer_body - 1, MSG_NOSIGNAL) < 0)
        return;
}

static void serve(fake_raw *f, int fd, char *b) {
    for (unsigned i = 0; read_request(fd, b); i++) {
        atomic_fetch_add(&f->requests, 1);
        if (i < f->cfg.answer_per_connection) {
            answer(fd);
            continue;
        }
        if (f->cfg.reset) {
            struct linger l = {1, 0}; /* close() now sends RST */
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        }
        break;
    }
}

static void *accept_main(void *arg) {
    fake_raw *f = arg;
    char *b = xmalloc(RAW_MAX_REQUEST);
    for (;;) {
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            break; /* shut down */
        pthread_mutex_lock(&f->mu);
        f->conn = fd;
        pthread_mutex_unlock(&f->mu);
        serve(f, fd, b);
        pthread_mutex_lock(&f->mu); /* stop never shuts down a number already reused */
        f->conn = -1;
        close(fd);
        pthread_mutex_unlock(&f->mu);
    }
    free(b);
    return NULL;
}

fake_raw *fake_raw_start(const fake_raw_config *cfg) {
    fake_raw *f = XNEW(fake_raw);
    f->cfg = *cfg;
    f->conn = -1;
    pthread_mutex_init(&f->mu, NULL);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t len = sizeof a;
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(f->lfd, 64) != 0 || getsockname(f->lfd, (struct sockaddr *)&a, &len) != 0 ||
        pthread_create(&f->thread, NULL, accept_main, f) != 0) {
        if (f->lfd >= 0)
            close(f->lfd);
        pthread_mutex_destroy(&f->mu);
        free(f);
        return NULL;
    }
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%u", ntohs(a.sin_port));
    return f;
}

const char *fake_raw_url(const fake_raw *f) {
    return f->url;
}

uint64_t fake_raw_requests(fake_raw *f) {
    return atomic_load(&f->requests);
}

void fake_raw_stop(fake_raw *f) {
    if (!f)
        return;
    shutdown(f->lfd, SHUT_RDWR);
    pthread_mutex_lock(&f->mu);
    if (f->conn >= 0)
        shutdown(f->conn, SHUT_RDWR); /* a client's idle keep-alive connection */
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    close(f->lfd);
    pthread_mutex_destroy(&f->mu);
    free(f);
}
