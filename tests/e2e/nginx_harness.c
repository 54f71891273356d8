/* nginx as a gRPC proxy for tests (see the header). */
#include "e2e/nginx_harness.h"
#include "tests/fake_provider/fake_test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A port nothing listens on now (the kernel's pick for 127.0.0.1:0). nginx binds it a
 * moment later; another process taking it in between makes nginx fail, and the start is
 * retried on another port. */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static bool accepts(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static int write_conf(const nginx_proc *n, int port, const char *upstream, const nginx_opts *o) {
    unsigned t = o && o->read_timeout_s ? o->read_timeout_s : 5;
    const char *body = o && o->client_max_body ? o->client_max_body : "1m";
    char path[256];
    snprintf(path, sizeof path, "%s/nginx.conf", n->dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    const char *d = n->dir;
    fprintf(f,
            "daemon off;\nmaster_process off;\nworker_processes 1;\n"
            "pid %s/nginx.pid;\nerror_log %s/error.log info;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            "  access_log %s/access.log;\n"
            "  client_body_temp_path %s/client_body;\n  proxy_temp_path %s/proxy;\n"
            "  fastcgi_temp_path %s/fastcgi;\n  uwsgi_temp_path %s/uwsgi;\n"
            "  scgi_temp_path %s/scgi;\n"
            "  server {\n"
            "    listen 127.0.0.1:%d ssl http2;\n"
            "    ssl_certificate %s/nginx.crt;\n    ssl_certificate_key %s/nginx.key;\n"
            "    client_max_body_size %s;\n"
            "    location / {\n"
            "      grpc_pass grpc://%s;\n"
            "      grpc_read_timeout %us;\n      grpc_send_timeout %us;\n"
            "    }\n"
            "  }\n"
            "}\n",
            d, d, d, d, d, d, d, d, port, d, d, body, upstream, t, t);
    return fclose(f) == 0 ? 0 : -1;
}

static pid_t spawn(const nginx_proc *n) {
    char conf[256], log[256];
    snprintf(conf, sizeof conf, "%s/nginx.conf", n->dir);
    snprintf(log, sizeof log, "%s/error.log", n->dir);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
        execlp("nginx", "nginx", "-p", n->dir, "-c", conf, "-e", log, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void print_log(const nginx_proc *n) {
    char path[256];
    snprintf(path, sizeof path, "%s/error.log", n->dir);
    char *text = fake_read_file(path);
    fprintf(stderr, "nginx error log:\n%s\n", text ? text : "(none)");
    free(text);
}

/* Waits until nginx accepts on port; false when it exited (bind failure, bad config). */
static bool wait_ready(nginx_proc *n, int port) {
    for (int i = 0; i < 1000; i++) {
        if (accepts(port))
            return true;
        if (waitpid(n->pid, NULL, WNOHANG) == n->pid) {
            n->pid = 0;
            return false;
        }
        sleep_ms(10);
    }
    return false;
}

int nginx_start(nginx_proc *n, const char *upstream, const nginx_opts *opts) {
    memset(n, 0, sizeof *n);
    snprintf(n->dir, sizeof n->dir, "/tmp/sluice-nginx-XXXXXX");
    if (!mkdtemp(n->dir) || fake_make_cert_for(n->dir, "nginx", "localhost") != 0)
        return -1;
    snprintf(n->ca_file, sizeof n->ca_file, "%s/nginx.crt", n->dir);
    n->ca_pem = fake_read_file(n->ca_file);
    for (int attempt = 0; n->ca_pem && attempt < 5; attempt++) {
        int port = free_port();
        if (!port || write_conf(n, port, upstream, opts) != 0)
            break;
        if ((n->pid = spawn(n)) < 0)
            break;
        if (wait_ready(n, port)) {
            snprintf(n->target, sizeof n->target, "127.0.0.1:%d", port);
            return 0;
        }
        if (n->pid > 0) {
            kill(n->pid, SIGKILL);
            waitpid(n->pid, NULL, 0);
            n->pid = 0;
        }
    }
    print_log(n);
    return -1;
}

void nginx_stop(nginx_proc *n) {
    if (n->pid > 0) {
        kill(n->pid, SIGTERM);
        bool reaped = false;
        for (int i = 0; i < 500 && !reaped; i++) {
            reaped = waitpid(n->pid, NULL, WNOHANG) == n->pid;
            if (!reaped)
                sleep_ms(10);
        }
        if (!reaped) {
            kill(n->pid, SIGKILL);
            waitpid(n->pid, NULL, 0);
        }
        n->pid = 0;
    }
    free(n->ca_pem);
    n->ca_pem = NULL;
    if (n->dir[0]) {
        fake_rmdir_r(n->dir);
        n->dir[0] = '\0';
    }
}

int nginx_log_count(const nginx_proc *n, const char *log, const char *needle) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s.log", n->dir, log);
    char *text = fake_read_file(path);
    int count = 0;
    for (const char *p = text; p && (p = strstr(p, needle)) != NULL; p += strlen(needle))
        count++;
    free(text);
    return count;
}
