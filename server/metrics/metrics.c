/*
 * The metrics HTTP server: libmicrohttpd with its own polling thread, one route
 * (GET /metrics); anything else is 404. Each scrape renders a fresh snapshot.
 */
#include "metrics.h"

#include "server/common/alloc.h"
#include "sluice/status.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct metrics_server {
    struct MHD_Daemon *mhd;
    metrics_sources src;
    int port;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, char *body, bool owned,
                             const char *type) {
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(body), body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state) {
    metrics_server *m = cls;
    if (strcmp(method, "GET") != 0)
        return reply(c, 405, "method not allowed\n", false, "text/plain");
    if (strcmp(url, "/metrics") != 0)
        return reply(c, 404, "not found: try /metrics\n", false, "text/plain");
    return reply(c, 200, metrics_render(&m->src), true, "text/plain; version=0.0.4");
}

/* "host:port" -> sockaddr (IPv4 literal or "0.0.0.0"; "localhost" allowed). */
static int parse_listen(const char *listen, struct sockaddr_in *sa) {
    const char *colon = strrchr(listen, ':');
    if (!colon)
        return -1;
    char host[64];
    size_t hl = (size_t)(colon - listen);
    if (hl >= sizeof host)
        return -1;
    memcpy(host, listen, hl);
    host[hl] = '\0';
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end || port > 65535)
        return -1;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    return inet_pton(AF_INET, host[0] ? host : "0.0.0.0", &sa->sin_addr) == 1 ? 0 : -1;
}

int metrics_server_start(const char *listen, const metrics_sources *src, metrics_server **out,
                         char *err, size_t errlen) {
    struct sockaddr_in sa;
    if (parse_listen(listen, &sa) != 0) {
        snprintf(err, errlen, "metrics.listen: '%s' is not HOST:PORT (IPv4)", listen);
        return SLUICE_EINVAL;
    }
    metrics_server *m = XNEW(metrics_server);
    m->src = *src;
    m->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL,
                              handle, m, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10, MHD_OPTION_END);
    if (!m->mhd) {
        snprintf(err, errlen, "metrics.listen: cannot listen on %s (in use?)", listen);
        free(m);
        return SLUICE_EIO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_BIND_PORT);
    m->port = info ? info->port : ntohs(sa.sin_port);
    *out = m;
    return 0;
}

int metrics_server_port(const metrics_server *m) {
    return m->port;
}

void metrics_server_stop(metrics_server *m) {
    if (!m)
        return;
    MHD_stop_daemon(m->mhd);
    free(m);
}
