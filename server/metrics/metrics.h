/*
 * metrics.h - Prometheus metrics over HTTP (libmicrohttpd), on a port of its own.
 *
 * GET /metrics renders a snapshot of the dispatcher (upstream requests by provider, model
 * and outcome; attempts, retries, 429s and cooldowns; queue depth, in-flight and pacing
 * per upstream key; cache hits, misses and shared calls; tokens and cost; task latency and
 * gateway-overhead histograms), the store (cache size, evictions, write queue) and the
 * service (open sessions and tasks). Rendering only reads atomics and snapshots, so a
 * scrape never slows the dispatcher.
 *
 * Thread safety: the server runs its own thread; start/stop from main.
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include "server/dispatch/dispatcher.h"
#include "server/service/service.h"
#include "server/store/store.h"

typedef struct metrics_server metrics_server;

/* What the metrics are read from (borrowed; any may be NULL). */
typedef struct metrics_sources {
    dispatcher *d;
    store *st;
    service *svc;
} metrics_sources;

/* The exposition text (Prometheus text format 0.0.4). Free with free(). */
char *metrics_render(const metrics_sources *src);

/* Serves /metrics on `listen` ("host:port"; port 0 picks one). Returns SLUICE_OK or an
 * error with a message. */
int metrics_server_start(const char *listen, const metrics_sources *src, metrics_server **out,
                         char *err, size_t errlen);
/* The bound port. */
int metrics_server_port(const metrics_server *m);
/* Stops and frees. NULL-safe. */
void metrics_server_stop(metrics_server *m);

#endif
