/*
 * test_transport_util.c - the testsvc_server fixture and small helpers for the transport
 * tests (declared in testsvc.h): start/stop a transport serving the test service, poll
 * the service's counters with a liveness bound, temporary files.
 */
#include "tests/integration/testsvc.h"

#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "sluice/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int testsvc_server_start(const transport_config *cfg, testsvc_server *out, char *err,
                         size_t errlen) {
    transport_config c = {0};
    if (cfg)
        c = *cfg;
    if (!c.listen_addr)
        c.listen_addr = "127.0.0.1:0";
    memset(out, 0, sizeof *out);
    int rc = transport_new(&c, &out->t, err, errlen);
    if (rc != SLUICE_OK)
        return rc;
    out->svc = testsvc_new();
    rc = testsvc_register(out->svc, out->t);
    if (rc == SLUICE_OK)
        rc = transport_start(out->t, err, errlen);
    if (rc != SLUICE_OK) {
        transport_free(out->t);
        testsvc_free(out->svc);
        memset(out, 0, sizeof *out);
        return rc;
    }
    out->port = transport_port(out->t);
    snprintf(out->target, sizeof out->target, "127.0.0.1:%d", out->port);
    return SLUICE_OK;
}

void testsvc_server_stop(testsvc_server *s, uint32_t grace_ms) {
    if (!s->t)
        return;
    transport_drain(s->t, grace_ms);
    testsvc_stop(s->svc);
    transport_free(s->t);
    testsvc_free(s->svc);
    memset(s, 0, sizeof *s);
}

/* ---- helpers for the tests ------------------------------------------------------------- */

static void sleep_ms(unsigned ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

bool testsvc_wait_done(testsvc *s, uint64_t done_min, uint64_t cancelled_min, uint32_t timeout_ms) {
    uint64_t until = clock_now_ms() + timeout_ms;
    for (;;) {
        testsvc_stats st;
        testsvc_get_stats(s, &st);
        if (st.done >= done_min && st.done_cancelled >= cancelled_min)
            return true;
        if (clock_now_ms() >= until)
            return false;
        sleep_ms(5);
    }
}

bool testsvc_wait_blocked(testsvc *s, uint64_t elimit_min, uint64_t pending_min,
                          uint32_t timeout_ms, testsvc_stats *snap) {
    uint64_t until = clock_now_ms() + timeout_ms;
    for (;;) {
        testsvc_get_stats(s, snap);
        if (snap->elimit_hits >= elimit_min && snap->blocked_now > 0 &&
            snap->pending_at_limit >= pending_min)
            return true;
        if (clock_now_ms() >= until)
            return false;
        sleep_ms(1);
    }
}
