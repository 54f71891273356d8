/*
 * Logging: formats an event into a stack buffer and emits it with one write(2). The
 * level, format and fd are atomics so reading them on the hot path needs no lock.
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int g_level = LOG_LEVEL_INFO;
static atomic_int g_format = LOG_FORMAT_JSON;
static atomic_int g_fd = STDERR_FILENO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void log_set_level(log_level level) {
    atomic_store(&g_level, (int)level);
}

void log_set_format(log_format format) {
    atomic_store(&g_format, (int)format);
}

void log_set_fd(int fd) {
    atomic_store(&g_fd, fd);
}

int log_level_parse(const char *name, log_level *out) {
    for (int i = 0; i <= LOG_LEVEL_OFF; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (log_level)i;
            return 0;
        }
    }
    if (strcasecmp(name, "warning") == 0) {
        *out = LOG_LEVEL_WARN;
        return 0;
    }
    return -1;
}

bool log_enabled(log_level level) {
    return (int)level >= atomic_load(&g_level) && level < LOG_LEVEL_OFF;
}

/* Appends s to out as JSON string content (no quotes). Returns the new length. */
static size_t json_escape(char *out, size_t len, size_t cap, const char *s) {
    for (; *s && len + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[len++] = '\\';
            out[len++] = (char)c;
        } else if (c == '\n') {
            out[len++] = '\\';
            out[len++] = 'n';
        } else if (c < 0x20) {
            len += (size_t)snprintf(out + len, cap - len, "\\u%04x", c);
        } else {
            out[len++] = (char)c;
        }
    }
    return len;
}

void log_write(log_level level, const char *module, const char *fmt, ...) {
    if (!log_enabled(level))
        return;
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[64];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

    char line[9000];
    size_t len;
    if (atomic_load(&g_format) == LOG_FORMAT_JSON) {
        len = (size_t)snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":\"",
                               when, level_names[level]);
        len = json_escape(line, len, sizeof line, module);
        len += (size_t)snprintf(line + len, sizeof line - len, "\",\"msg\":\"");
        len = json_escape(line, len, sizeof line - 3, msg);
        line[len++] = '"';
        line[len++] = '}';
    } else {
        len = (size_t)snprintf(line, sizeof line, "%s %s %s: %s", when, level_names[level], module,
                               msg);
        if (len > sizeof line - 2)
            len = sizeof line - 2;
    }
    line[len++] = '\n';
    ssize_t w = write(atomic_load(&g_fd), line, len);
    (void)w;
}
