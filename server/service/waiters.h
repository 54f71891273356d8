/*
 * waiters.h - parked Wait calls and AsCompleted streams (see waiters.c).
 * Functions ending in _locked must be called with service.mu held; the others take it.
 */
#ifndef SLUICE_SERVICE_WAITERS_H
#define SLUICE_SERVICE_WAITERS_H

#include "svc_internal.h"

/* A waiter for n slots on call (referenced by the call until waiter_on_call_done). The
 * caller fills id_strs[i] (owned by the waiter). */
waiter *waiter_new(service *s, tcall *call, size_t n, bool stream);
/* Registers slot on unfinished task t (adds to remaining). */
void waiter_register_locked(waiter *w, size_t slot, svc_task *t);
/* Puts a finished result into a slot (takes ownership of r). */
void waiter_fill_locked(waiter *w, size_t slot, Sluice__V1__TaskResult *r);
/* Task t just finished: fills every registered slot and returns the waiters to flush
 * (*n_ready of them, each with an extra reference: flush, then waiter_release; free the
 * array). NULL when none. */
waiter **waiter_task_done_locked(svc_task *t, size_t *n_ready);
/* Ends set-up (drops the set-up hold) and flushes. */
void waiter_setup_done(service *s, waiter *w);
/* Replies / sends whatever is ready. */
void waiter_flush(service *s, waiter *w);
/* Starts the Wait timeout. */
void waiter_arm_timeout_locked(service *s, waiter *w, uint32_t timeout_ms);
/* The call ended: stop everything and drop the call's reference. */
void waiter_on_call_done(service *s, waiter *w);
void waiter_unref_locked(waiter *w);
void waiter_release(service *s, waiter *w);

#endif
