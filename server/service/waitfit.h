/*
 * waitfit.h - fitting a Wait answer into the message limit.
 *
 * A Wait for many tasks with large results can make an answer larger than the transport
 * may send (or the client may receive). Rather than failing the call and withholding every
 * result, the answer keeps one entry per requested id and the complete results that fit,
 * in request order; the other finished tasks' entries go without their response and their
 * ids are listed in more_task_ids, to be fetched by another Wait. A result too large for
 * any answer is replaced by an error response saying so.
 *
 * Thread safety: pure; any thread. The caller owns resp.
 */
#ifndef SLUICE_SERVICE_WAITFIT_H
#define SLUICE_SERVICE_WAITFIT_H

#include "sluice/v1/sluice.pb-c.h"

#include <stddef.h>

/* Makes resp (its results and all_done filled in, more_task_ids empty) pack into at most
 * `limit` bytes. The responses it leaves out are freed (their entries keep task id, state,
 * index and custom id) and all_done is cleared; resp->more_task_ids then points into those
 * entries' task_id strings (free the array alone, with free(), after sending). Returns
 * SLUICE_OK, or SLUICE_ELIMIT with a message in err when even the entries without their
 * results exceed limit (resp is then unchanged). */
int waitfit(Sluice__V1__WaitResponse *resp, size_t limit, char *err, size_t errlen);

#endif
