/*
 * canned_sluice.h - an in-process sluice.v1.Sluice server with canned answers, for SDK
 * tests that need a server to answer in a way sluiced never would (extra results, a late
 * answer) or exactly the same way every time (fail-malloc loops).
 *
 * It runs on the server transport (127.0.0.1:0). OpenSession answers session "local:s1";
 * Wait answers the canned WaitResponse (after its delay, from a timer thread: never on a
 * transport worker); AsCompleted streams the canned TaskResults and ends OK. Other methods
 * answer UNIMPLEMENTED, and so does Wait without a canned answer.
 *
 * Ownership: canned messages are borrowed until replaced (set NULL before freeing them).
 * Thread safety: any thread; answers are read under the server's lock, so replacing one
 * orders everything the server did with the old one before the caller's next steps.
 */
#ifndef SLUICE_TESTS_CANNED_SLUICE_H
#define SLUICE_TESTS_CANNED_SLUICE_H

#include "sluice/v1/sluice.pb-c.h"

#include <stddef.h>
#include <stdint.h>

typedef struct canned_sluice canned_sluice;

/* Starts the server; NULL (with a message on stderr) when it cannot. */
canned_sluice *canned_sluice_start(void);
/* Drains, answering nothing more, and frees. NULL-safe. */
void canned_sluice_stop(canned_sluice *c);
/* "127.0.0.1:<port>". */
const char *canned_sluice_target(const canned_sluice *c);
/* The answer to every Wait (NULL: UNIMPLEMENTED), sent delay_ms after the request. */
void canned_sluice_set_wait(canned_sluice *c, const Sluice__V1__WaitResponse *answer,
                            uint32_t delay_ms);
/* What every AsCompleted streams (the array is copied, at most 16 results). */
void canned_sluice_set_stream(canned_sluice *c, Sluice__V1__TaskResult *const *results, size_t n);
/* Wait calls received so far. */
unsigned canned_sluice_waits(canned_sluice *c);

#endif
