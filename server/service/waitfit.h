/*
 * waitfit.h - shaping a Wait answer: what is pending, and what fits.
 *
 * A Wait for many tasks with large results can make an answer larger than the transport
 * may send (or the client may receive), or than the client asked for (max_results).
 * Rather than failing the call and withholding every result, the answer keeps one entry
 * per requested id and the complete results that fit, in request order; the other
 * finished tasks' entries go without their response and their ids are listed in
 * more_task_ids, to be fetched by another Wait. A result too large for any answer is
 * replaced by an error response saying so. Entries of unfinished tasks (no response) are
 * listed in pending_task_ids.
 *
 * Thread safety: pure; any thread. The caller owns resp.
 */
#ifndef SLUICE_SERVICE_WAITFIT_H
#define SLUICE_SERVICE_WAITFIT_H

#include "sluice/v1/sluice.pb-c.h"

#include <stddef.h>

/* Makes resp (its results filled in, more_task_ids and pending_task_ids empty) an answer
 * of at most `limit` bytes carrying at most `max_results` responses (0 = any number):
 * entries without a response are listed in pending_task_ids; the responses it leaves out
 * are freed (their entries keep task id, state, index and custom id) and listed in
 * more_task_ids; all_done is set when neither list has an entry. Both lists point into
 * the entries' task_id strings: free the two arrays alone (waitfit_cleanup) after
 * sending. Returns SLUICE_OK, or SLUICE_ELIMIT with a message in err when even the entries
 * without their results exceed limit (resp is then unchanged). */
int waitfit(Sluice__V1__WaitResponse *resp, size_t limit, size_t max_results, char *err,
            size_t errlen);
/* Frees the two id arrays waitfit set (not the strings) and empties them. */
void waitfit_cleanup(Sluice__V1__WaitResponse *resp);

#endif
