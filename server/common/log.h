/*
 * log.h - one line per event on stderr.
 *
 * Two formats: "json" (one JSON object per line: ts, level, module, msg; the default for
 * sluiced) and "text" ("2026-11-26T13:29:02.123Z info transport: msg"). Each event is
 * written with a single write(2), so lines from different threads never interleave.
 * Secrets (API keys, bearer tokens) must never be passed to these functions.
 * Thread safety: every function may be called from any thread; log_set_* are meant for
 * start-up, before other threads log.
 */
#ifndef SLUICE_COMMON_LOG_H
#define SLUICE_COMMON_LOG_H

#include <stdbool.h>

typedef enum log_level {
    LOG_LEVEL_DEBUG = 0,
    LOG_LEVEL_INFO = 1,
    LOG_LEVEL_WARN = 2,
    LOG_LEVEL_ERROR = 3,
    LOG_LEVEL_OFF = 4,
} log_level;

typedef enum log_format {
    LOG_FORMAT_JSON = 0,
    LOG_FORMAT_TEXT = 1,
} log_format;

/* Sets the minimum level written. Default LOG_LEVEL_INFO. */
void log_set_level(log_level level);
/* Sets the output format. Default LOG_FORMAT_JSON. */
void log_set_format(log_format format);
/* Redirects output to fd (default 2). For tests. */
void log_set_fd(int fd);
/* Parses "debug", "info", "warn", "error", "off". Returns 0 or -1 for an unknown name. */
int log_level_parse(const char *name, log_level *out);
/* True when events of `level` would be written. */
bool log_enabled(log_level level);

/* Writes one event. `module` is a short static name ("transport", "dispatch", ...).
 * Messages longer than 4 KiB are truncated. */
void log_write(log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG_DEBUG(mod, ...)                                                                        \
    do {                                                                                           \
        if (log_enabled(LOG_LEVEL_DEBUG))                                                          \
            log_write(LOG_LEVEL_DEBUG, mod, __VA_ARGS__);                                          \
    } while (0)
#define LOG_INFO(mod, ...) log_write(LOG_LEVEL_INFO, mod, __VA_ARGS__)
#define LOG_WARN(mod, ...) log_write(LOG_LEVEL_WARN, mod, __VA_ARGS__)
#define LOG_ERROR(mod, ...) log_write(LOG_LEVEL_ERROR, mod, __VA_ARGS__)

#endif
