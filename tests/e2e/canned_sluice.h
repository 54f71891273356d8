/*
 * canned_sluice.h - an in-process sluice.v1.Sluice server with canned answers, for SDK
 * tests that need a server to answer in a way sluiced never would (extra results, a late
 * answer) or exactly the same way every time (fail-malloc loops).
 *
 * It runs on the server transport (127.0.0.1:0). OpenSession answers session "local:s1";
 * Wait answers the canned WaitResponse (after wait_delay_ms, from a timer thread: never
 * on a transport worker); AsCompleted streams the canned TaskResults and ends OK. Other
 * methods answer UNIMPLEMENTED. Set the answers before the calls that need them; the
 * canned messages stay the test's (borrowed; the server packs them at each answer).
 *
 * Thread safety: the answers are read on transport threads: set them while no call runs.
 */
#ifndef SLUICE_TESTS_CANNED_SLUICE_H
#define SLUICE_TESTS_CANNED_SLUICE_H

#include "sluice/v1/sluice.pb-c.h"

#include <stddef.h>
#include <stdint.h>

typedef struct canned_sluice {
    /* answers (borrowed) */
    const Sluice__V1__WaitResponse *wait;
    uint32_t wait_delay_ms;
    Sluice__V1__TaskResult *const *stream;
    size_t n_stream;
    /* filled by canned_sluice_start */
    char target[64];
    struct canned_impl *impl;
} canned_sluice;

/* Starts the server. Returns 0, or -1 with a message on stderr. */
int canned_sluice_start(canned_sluice *c);
/* Drains (answering nothing more) and frees. */
void canned_sluice_stop(canned_sluice *c);
/* Wait calls received so far. */
unsigned canned_sluice_waits(const canned_sluice *c);

#endif
