/*
 * convert.h - the edge: sluice.v1 protos <-> sluiced's internal structs.
 *
 * Proto structs never travel further than the service layer: requests are converted (and
 * validated, with errors naming the offending field) into llm_request / dsession_config;
 * results and tracker snapshots are converted back into freshly allocated proto trees.
 *
 * Every proto tree returned here is allocated with malloc throughout, so
 * protobuf_c_message_free_unpacked(msg, NULL) frees it entirely.
 * Thread safety: pure functions; any thread.
 */
#ifndef SLUICE_SERVICE_CONVERT_H
#define SLUICE_SERVICE_CONVERT_H

#include "server/common/llm.h"
#include "server/dispatch/session.h"
#include "server/store/store.h"
#include "sluice/v1/sluice.pb-c.h"

#include <stddef.h>

/* Sampling parameters: present wrappers and non-zero values become explicit (set) fields.
 * Returns SLUICE_OK, or SLUICE_EINVAL ("<where>.stop: at most 4 ...") leaving *out empty. */
int convert_sampling(const Sluice__V1__SamplingParams *p, llm_sampling *out, const char *where,
                     char *err, size_t errlen);

/* A session config for `tenant`. *out is owned by the caller (dsession_config_cleanup).
 * Returns SLUICE_OK or SLUICE_EINVAL naming the field ("config.models[0].name: empty"). */
int convert_session_config(const Sluice__V1__SessionConfig *p, const char *tenant,
                           dsession_config *out, char *err, size_t errlen);

/* A prompt, with the batch header's tools/output schema applied when the prompt has none
 * (header may be NULL). Validated with llm_request_validate; error messages name the
 * element ("messages[1].parts[0]: ..."). *out freed with llm_request_free. */
int convert_prompt(const Sluice__V1__Prompt *p, const Sluice__V1__BatchHeader *header,
                   llm_request **out, char *err, size_t errlen);

/* A response as a new proto tree. */
Sluice__V1__Response *convert_response(const llm_response *r);
/* A tracker snapshot as a new proto tree. */
Sluice__V1__TrackerStatus *convert_status(const dsession_status *st, const char *session_id,
                                          const char *name);
/* A task result (state, response when finished) as a new proto tree. */
Sluice__V1__TaskResult *convert_task_result(const char *task_id, store_task_state state,
                                            const llm_response *r, uint64_t index,
                                            const char *custom_id);
/* The Wait entry of an id that names no task the caller can see: state NOT_FOUND and an
 * error response (ERROR_KIND_NOT_FOUND) naming it. */
Sluice__V1__TaskResult *convert_not_found(const char *task_id);
/* Leaves the text parts out of r->content (frees them), keeping the other parts in
 * order: the text stays in r->completion (the requests' omit_text_parts). */
void convert_drop_text_parts(Sluice__V1__Response *r);

/* Task/session ids on the wire: "<node>:t<n>" / "<node>:s<n>". Free with free(). */
char *convert_format_id(const char *node, char kind, uint64_t n);
/* Parses an id of `kind` issued by `node`. Returns 0 with *n, or -1 (malformed, other
 * kind, other node: all simply "not found" to callers). */
int convert_parse_id(const char *node, char kind, const char *id, uint64_t *n);

#endif
