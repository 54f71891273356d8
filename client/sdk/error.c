/*
 * Errors and diagnostics: the last error message per thread, and an optional log
 * callback. The SDK never prints on its own.
 */
#include "sdk_internal.h"

#include <grpc/support/log.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[1024];
static sluice_log_fn log_fn;
static void *log_ud;

const char *sluice_last_error(void) {
    return last_error;
}

void sluice_set_log_callback(sluice_log_fn fn, void *ud) {
    log_fn = fn;
    log_ud = ud;
}

void sdk_clear_error(void) {
    last_error[0] = '\0';
}

int sdk_fail(int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

int sdk_rpc_fail(int rc, const sluice_rpc_status *st, const char *what) {
    if (st && st->details[0])
        return sdk_fail(rc, "%s: %s (%s)", what, st->details, sluice_strerror(rc));
    return sdk_fail(rc, "%s: %s", what, sluice_strerror(rc));
}

void sdk_log(const char *fmt, ...) {
    if (!log_fn)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_fn(log_ud, msg);
}

/* gRPC core logs to stderr by default; the SDK never prints, so its messages go to the
 * log callback (or nowhere). */
static void gpr_to_callback(gpr_log_func_args *args) {
    if (args->severity == GPR_LOG_SEVERITY_ERROR)
        sdk_log("grpc: %s", args->message);
}

static void install_gpr_log(void) {
    gpr_set_log_function(gpr_to_callback);
}

void sdk_route_grpc_logs(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_gpr_log);
}
