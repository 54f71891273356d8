/*
 * service.h - the sluice.v1.Sluice RPC handlers on one dispatcher.
 *
 * Every RPC is translated at the edge (convert.h) into dispatcher tasks and session
 * operations. BatchProcess and Start differ only in the sink they give the dispatcher:
 * a batch streams each result back on its call; Start's tasks are durable (persisted before
 * Start answers, their result persisted when they end) and are read by Wait and AsCompleted.
 * Sessions own a tracker (dispatcher side) and the Start'ed tasks; with auth on, sessions
 * and tasks of one tenant are invisible (NOT_FOUND) to every other tenant.
 *
 * Threads: handlers run on transport worker threads, sinks on the dispatcher thread, store
 * callbacks on the store writer thread and timeouts on the timers thread; the service's
 * tables are guarded by one mutex, never held across I/O or a call into the dispatcher.
 */
#ifndef SLUICE_SERVICE_H
#define SLUICE_SERVICE_H

#include "server/common/timers.h"
#include "server/dispatch/dispatcher.h"
#include "server/store/store.h"
#include "server/transport/transport.h"

#include <stddef.h>
#include <stdint.h>

typedef struct service service;

typedef struct service_config {
    const char *node_id;              /* prefix of every id this node issues; "" = "local" */
    size_t max_batch_in_flight;       /* prompts of one batch inside sluiced at once
                                       * (backpressure window); 0 = 4096 */
    uint64_t max_batch_prompts;       /* prompts in one BatchProcess call; 0 = 10,000,000 */
    size_t max_open_tasks_per_tenant; /* unfinished Start'ed tasks per tenant; 0 = 100,000 */
    size_t max_sessions_per_tenant;   /* open sessions per tenant; 0 = 1,000 */
    uint32_t persist_interval_ms;     /* how often trackers are persisted; 0 = 5000 */
    size_t max_message_bytes;         /* the transport's message limit (Wait answers stay
                                       * within it); 0 = 4 MiB */
    uint32_t heartbeat_interval_ms;   /* a BatchProcess or AsCompleted stream silent this
                                       * long gets a heartbeat; 0 = never */
    uint32_t max_wait_ms;             /* longest one Wait blocks (then it answers with what
                                       * is pending); 0 = no cap */
} service_config;

/* Creates the service. All pointers are borrowed and must outlive it. */
int service_new(const service_config *cfg, dispatcher *d, store *st, const registry *reg,
                timers *tm, service **out, char *err, size_t errlen);
/* Registers the Sluice handlers on a transport (before transport_start). */
int service_register(service *s, transport *t);
/* Restores persisted sessions and resumes unfinished tasks (before serving). Returns
 * SLUICE_OK or SLUICE_EIO with a message. */
int service_restore(service *s, char *err, size_t errlen);
/* Persists trackers and drops in-memory state; call after the transport drained and the
 * dispatcher stopped. Sessions leave the table; one another object still references (a
 * batch, a timer callback) is freed when that reference goes, which must happen before
 * service_free: stop the timers in between. Main thread. */
void service_shutdown(service *s);
/* Frees the service (shutting it down first if needed). NULL-safe. */
void service_free(service *s);

typedef struct service_stats {
    uint64_t open_sessions;
    uint64_t open_tasks; /* Start'ed tasks not finished */
} service_stats;

/* Gauges for metrics. Any thread. */
void service_get_stats(service *s, service_stats *out);

/* The transport's outbound bound must exceed a batch window (results never drop). */
size_t service_outbound_needed(const service_config *cfg);

#endif
