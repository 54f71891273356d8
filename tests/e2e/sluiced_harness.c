/* Runs sluiced as a child process against an in-process fake provider (see the header). */
#include "e2e/sluiced_harness.h"
#include "tests/fake_provider/fake_test_util.h"

#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

const char *sluiced_binary(void) {
    static char path[512];
    const char *bin = getenv("SLUICE_BINARY_DIR");
    snprintf(path, sizeof path, "%s/server/sluiced", bin ? bin : ".");
    return path;
}

static int write_file(const char *dir, const char *name, const char *text, char *path, size_t len) {
    snprintf(path, len, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = fputs(text, f) >= 0;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static int write_registry(sluiced_proc *p, uint32_t rpm, char *path, size_t len) {
    fake_key_limits ka = {.rpm = rpm ? rpm : 6000000, .tpm = 1000000000, .conc = 10000};
    fake_key_limits kb = {.rpm = 6000000, .tpm = 1000000000, .conc = 10000};
    char *text = fake_registry_json(fake_provider_base_url(p->fake), ka, kb, kb, NULL);
    int rc = write_file(p->dir, "registry.json", text, path, len);
    free(text);
    return rc;
}

/* The gRPC port (line 1; 0 until the file exists) and the metrics port (line 2). */
static int read_ports(const char *path, int *metrics_port) {
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int port = 0;
    if (fscanf(f, "%d %d", &port, metrics_port) != 2)
        port = 0;
    fclose(f);
    return port;
}

/* argv for sluiced, optionally prefixed by a tool (valgrind ...). */
static void build_argv(char **argv, size_t max, char *prefix, const char *const *args) {
    size_t n = 0;
    if (prefix) {
        char *save = NULL;
        for (char *tok = strtok_r(prefix, " ", &save); tok && n < max - 16;
             tok = strtok_r(NULL, " ", &save))
            argv[n++] = tok;
    }
    for (size_t i = 0; args[i] && n < max - 1; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
}

extern char **environ;

/* The child's environment: ours plus the test keys (built before fork: the parent has
 * threads, so the child may only exec). */
static char **child_env(const sluiced_proc *p, const char *tokens, char *store, size_t len,
                        char *ca, size_t ca_len) {
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 9, sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "SLUICE_", 7) != 0)
            env[k++] = environ[i];
    env[k++] = "SLUICE_TEST_KEY_A=sk-test-a";
    env[k++] = "SLUICE_TEST_KEY_B=sk-test-b";
    env[k++] = "SLUICE_TEST_KEY_G=sk-test-g";
    env[k++] = "SLUICE_LOG_LEVEL=warn";
    env[k++] = "SLUICE_METRICS_LISTEN=127.0.0.1:0";
    if (p->wire.ca_file[0]) {
        snprintf(ca, ca_len, "SLUICE_CA_FILE=%s", p->wire.ca_file);
        env[k++] = ca;
    }
    if (tokens) {
        snprintf(store, len, "SLUICE_TOKENS_FILE=%s", tokens);
        env[k++] = store;
    }
    env[k] = NULL;
    return env;
}

static pid_t spawn(const sluiced_proc *p, const sluiced_opts *o, const char *registry,
                   const char *tokens, const char *config, const char *port_file) {
    char data[256];
    snprintf(data, sizeof data, "%s/data", p->dir);
    const char *args[16] = {sluiced_binary(), "--listen", "127.0.0.1:0", "--data-dir", data,
                            "--registry",     registry,   "--port-file", port_file};
    size_t n = 9;
    if (config) {
        args[n++] = "--config";
        args[n++] = config;
    }
    args[n] = NULL;
    char tok_env[300], ca_env[340];
    char **env = child_env(p, tokens, tok_env, sizeof tok_env, ca_env, sizeof ca_env);
    char *prefix = o->env_prefix ? strdup(o->env_prefix) : NULL;
    char *argv[64];
    build_argv(argv, 64, prefix, args);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test, even on a crash */
        execvpe(argv[0], argv, env);
        _exit(127);
    }
    free(prefix);
    free(env);
    return pid;
}

int sluiced_start(sluiced_proc *p, const sluiced_opts *opts) {
    sluiced_opts none;
    memset(&none, 0, sizeof none);
    const sluiced_opts *o = opts ? opts : &none;
    if (!o->keep_dir) {
        memset(p, 0, sizeof *p);
        snprintf(p->dir, sizeof p->dir, "/tmp/sluice-e2e-XXXXXX");
        if (!mkdtemp(p->dir))
            return -1;
        fake_setup_init(&p->wire, FAKE_WIRE_FROM_ENV, p->dir);
        char err[256];
        if (fake_provider_new(&p->wire.cfg, &p->fake, err, sizeof err) != 0) {
            fprintf(stderr, "fake provider: %s\n", err);
            return -1;
        }
    }
    char registry[256], tokens[256], config[256], port_file[256];
    if (write_registry(p, o->key_rpm, registry, sizeof registry) != 0 ||
        (o->tokens && write_file(p->dir, "tokens", o->tokens, tokens, sizeof tokens) != 0) ||
        (o->config_json &&
         write_file(p->dir, "config.json", o->config_json, config, sizeof config) != 0))
        return -1;
    snprintf(port_file, sizeof port_file, "%s/port", p->dir);
    unlink(port_file);
    p->pid =
        spawn(p, o, registry, o->tokens ? tokens : NULL, o->config_json ? config : NULL, port_file);
    if (p->pid < 0)
        return -1;
    for (int i = 0; i < 6000; i++) { /* up to 60 s (valgrind is slow) */
        int port = read_ports(port_file, &p->metrics_port);
        if (port > 0) {
            snprintf(p->target, sizeof p->target, "127.0.0.1:%d", port);
            return 0;
        }
        int status;
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            fprintf(stderr, "sluiced exited during start-up (status %d)\n", status);
            p->pid = 0;
            return -1;
        }
        sleep_ms(10);
    }
    return -1;
}

double sluiced_metric(const sluiced_proc *p, const char *series) {
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", p->metrics_port);
    fake_http_result r;
    fake_http_request("GET", url, NULL, NULL, 0, &r);
    double v = -1;
    size_t n = strlen(series);
    for (const char *line = r.status == 200 ? r.body : NULL; line && *line;) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ') {
            v = strtod(line + n + 1, NULL);
            break;
        }
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    fake_http_result_cleanup(&r);
    return v;
}

static int reap(sluiced_proc *p, unsigned timeout_ms) {
    for (unsigned waited = 0; waited < timeout_ms; waited += 10) {
        int status;
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid) {
            p->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
            p->pid = 0;
            return p->exit_status;
        }
        sleep_ms(10);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
    p->exit_status = -SIGKILL;
    return -1;
}

/* 0 when sluiced's metrics say libcurl never refused to set a transfer up. */
static int check_metrics(const sluiced_proc *p) {
    double refused = sluiced_metric(p, "sluice_http_setup_failures_total");
    if (refused == 0)
        return 0;
    fprintf(stderr, "sluiced metrics: sluice_http_setup_failures_total is %g\n", refused);
    return -1;
}

int sluiced_stop(sluiced_proc *p) {
    if (p->pid <= 0)
        return -1;
    int metrics = check_metrics(p) || !fake_setup_wire_used(&p->wire, p->fake) ? -1 : 0;
    kill(p->pid, SIGTERM);
    int rc = reap(p, 60000);
    return metrics ? -1 : rc;
}

void sluiced_kill(sluiced_proc *p) {
    if (p->pid <= 0)
        return;
    kill(p->pid, SIGKILL);
    reap(p, 10000);
}

void sluiced_cleanup(sluiced_proc *p) {
    if (p->pid > 0)
        sluiced_kill(p);
    fake_provider_free(p->fake);
    p->fake = NULL;
    fake_setup_cleanup(&p->wire);
    if (p->dir[0]) {
        fake_rmdir_r(p->dir);
        p->dir[0] = '\0';
    }
}
