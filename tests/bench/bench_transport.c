/*
 * bench_transport - throughput of the server transport with the test service in-process.
 *
 *   bench_transport [--seconds S] [--workers N] [--in-flight M] [--stream-count K]
 *
 * Starts the real transport on 127.0.0.1:0 serving sluice.test.v1.TestService, then
 *  - unary: Echo through sluice_rpc_async with M calls (default 64) kept in flight for S
 *    seconds (default 3);
 *  - server streaming: Count streams of K messages (default 200000) read to the end,
 *    repeated until S seconds have passed.
 * Prints exactly one figure per line:
 *   unary_calls_per_s=N target>=25000
 *   stream_msgs_per_s=N target>=100000
 * Client and server share the machine, so the figures are for the whole loopback stack.
 * Not a test: it is never registered with ctest.
 */
#include "tests/integration/testsvc.h"

#include "client/rpc/rpc.h"
#include "server/common/clock.h"
#include "server/common/log.h"
#include "sluice/status.h"
#include "sluice_test.pb-c.h"
#include "sluice_test.sluice.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SVC(x) sluice__test__v1__test_service__##x

typedef struct bench_opts {
    double seconds;
    int workers;
    int in_flight;
    uint32_t stream_count;
} bench_opts;

static int parse_args(int argc, char **argv, bench_opts *o) {
    for (int i = 1; i + 1 < argc; i += 2) {
        char *end = NULL;
        double v = strtod(argv[i + 1], &end);
        if (!end || *end || v <= 0)
            return -1;
        if (strcmp(argv[i], "--seconds") == 0)
            o->seconds = v;
        else if (strcmp(argv[i], "--workers") == 0)
            o->workers = (int)v;
        else if (strcmp(argv[i], "--in-flight") == 0)
            o->in_flight = (int)v;
        else if (strcmp(argv[i], "--stream-count") == 0)
            o->stream_count = (uint32_t)v;
        else
            return -1;
    }
    return argc % 2 == 1 ? 0 : -1;
}

static int start_echo(sluice_rpc_async *a, sluice_rpc_channel *ch, int64_t n) {
    Sluice__Test__V1__EchoRequest req = SLUICE__TEST__V1__ECHO_REQUEST__INIT;
    req.text = "bench";
    req.number = n;
    return SVC(echo__async)(a, ch, &req, NULL, (void *)(intptr_t)(n + 1));
}

/* Unary calls completed per second with `in_flight` outstanding; < 0 on error. */
static double bench_unary(sluice_rpc_channel *ch, const bench_opts *o) {
    sluice_rpc_async *a = NULL;
    if (sluice_rpc_async_new(&a) != SLUICE_OK)
        return -1;
    int64_t started = 0, done = 0, failed = 0;
    for (; started < o->in_flight; started++)
        start_echo(a, ch, started);
    uint64_t t0 = clock_now_us();
    uint64_t until = t0 + (uint64_t)(o->seconds * 1e6);
    bool stopping = false;
    while (sluice_rpc_async_in_flight(a) > 0) {
        void *tag;
        ProtobufCMessage *m = NULL;
        sluice_rpc_status st;
        if (sluice_rpc_async_next(a, 10000, &tag, &m, &st) != SLUICE_OK)
            break;
        if (m)
            protobuf_c_message_free_unpacked(m, NULL);
        if (st.code == 0)
            done++;
        else
            failed++;
        if (!stopping && (done & 255) == 0 && clock_now_us() >= until)
            stopping = true;
        if (!stopping)
            start_echo(a, ch, started++);
    }
    double secs = (double)(clock_now_us() - t0) / 1e6;
    sluice_rpc_async_free(a);
    if (failed)
        fprintf(stderr, "bench: %lld unary calls failed\n", (long long)failed);
    return failed ? -1 : (double)done / secs;
}

/* Stream messages received per second; < 0 on error. */
static double bench_stream(sluice_rpc_channel *ch, const bench_opts *o) {
    uint64_t t0 = clock_now_us();
    uint64_t until = t0 + (uint64_t)(o->seconds * 1e6);
    uint64_t msgs = 0;
    do {
        Sluice__Test__V1__EchoRequest req = SLUICE__TEST__V1__ECHO_REQUEST__INIT;
        req.text = "bench";
        req.count = o->stream_count;
        sluice_rpc_call *call = NULL;
        if (SVC(count__start)(ch, &req, NULL, &call) != SLUICE_OK)
            return -1;
        Sluice__Test__V1__EchoResponse *m = NULL;
        while (SVC(count__read)(call, &m) == SLUICE_OK) {
            msgs++;
            sluice__test__v1__echo_response__free_unpacked(m, NULL);
        }
        sluice_rpc_status st;
        int rc = sluice_rpc_call_finish(call, NULL, &st);
        sluice_rpc_call_free(call);
        if (rc != SLUICE_OK) {
            fprintf(stderr, "bench: stream ended with %d %s\n", st.code, st.details);
            return -1;
        }
    } while (clock_now_us() < until);
    return (double)msgs / ((double)(clock_now_us() - t0) / 1e6);
}

int main(int argc, char **argv) {
    bench_opts o = {.seconds = 3, .workers = 0, .in_flight = 64, .stream_count = 200000};
    if (parse_args(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: bench_transport [--seconds S] [--workers N] [--in-flight M] "
                        "[--stream-count K]\n");
        return 2;
    }
    log_set_level(LOG_LEVEL_WARN);
    testsvc_server srv;
    char err[256];
    transport_config cfg = {.n_workers = o.workers};
    if (testsvc_server_start(&cfg, &srv, err, sizeof err) != SLUICE_OK) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
    sluice_rpc_channel *ch = NULL;
    if (sluice_rpc_channel_new(srv.target, NULL, &ch) != SLUICE_OK) {
        fprintf(stderr, "bench: cannot create channel\n");
        return 1;
    }
    bench_opts warm = o;
    warm.seconds = 0.3;
    warm.stream_count = 1000;
    bench_unary(ch, &warm); /* connect and warm up */
    bench_stream(ch, &warm);

    double unary = bench_unary(ch, &o);
    double stream = bench_stream(ch, &o);
    printf("unary_calls_per_s=%.0f target>=25000\n", unary);
    printf("stream_msgs_per_s=%.0f target>=100000\n", stream);
    fflush(stdout);

    sluice_rpc_channel_free(ch);
    testsvc_server_stop(&srv, 1000);
    return unary < 0 || stream < 0 ? 1 : 0;
}
