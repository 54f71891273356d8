/*
 * health.h - grpc.health.v1.Health (Check and Watch) on top of the transport's own calls.
 *
 * The health service is an ordinary set of transport handlers: the transport registers
 * it like any other service (auth exempt). It knows the names of the registered services
 * plus "" and one serving flag shared by all of them. Check answers the current status,
 * or NOT_FOUND for an unknown name. Watch sends the current status at once (SERVICE_UNKNOWN
 * for an unknown name) and again whenever it changes; at drain every Watch is told
 * NOT_SERVING and then ended with UNAVAILABLE.
 *
 * Thread safety: health_add_service before the transport starts; everything else from
 * any thread (an internal mutex; it is taken before a call's mutex, never after).
 */
#ifndef SLUICE_TRANSPORT_HEALTH_H
#define SLUICE_TRANSPORT_HEALTH_H

#include "server/transport/transport.h"

typedef struct health health;

/* Creates the health service, NOT_SERVING, knowing only "". Free with health_free. */
health *health_new(void);
/* Frees it. Every Watch call must be over (after transport_drain). NULL-safe. */
void health_free(health *h);

/* Makes a service name known (copied). Duplicates are ignored. */
void health_add_service(health *h, const char *name);

/* The handler table to register for grpc.health.v1.Health (ctx = h), and its service. */
const transport_handler *health_handlers(health *h, size_t *n);
const sluice_rpc_service *health_service(void);

/* Sets the serving flag; Watch streams whose status changes are sent the new one. */
void health_set_serving(health *h, bool serving);

/* NOT_SERVING, then every Watch (current and future) ends with UNAVAILABLE. */
void health_drain(health *h);

#endif
