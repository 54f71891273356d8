/*
 * sessrec.h - the session record: a session's config and tracker counters as the JSON text
 * the store keeps (written at open, every persist interval and at shutdown; read back at
 * start-up before unfinished tasks resume).
 *
 * Every jansson result is checked: a string jansson refuses (not UTF-8) makes encoding
 * fail with a message naming the field instead of producing a NULL record, and a record
 * that does not parse or lacks a field makes decoding fail naming what is wrong.
 *
 * Thread safety: pure functions; any thread. Memory from jansson's allocator and alloc.h.
 */
#ifndef SLUICE_SERVICE_SESSREC_H
#define SLUICE_SERVICE_SESSREC_H

#include "server/dispatch/session.h"

#include <stddef.h>

/* The record of cfg (its tenant is not part of it: the store keys records by tenant), st
 * and the wall-clock time (Unix ms) the tracker was opened or last reset, from which its
 * elapsed time goes on after a restart. Returns the text (free with free()), or NULL with a
 * message in err naming the field that could not be encoded ("models[1].name: not valid
 * UTF-8"). */
char *sessrec_encode(const dsession_config *cfg, const dsession_status *st, uint64_t opened_unix_ms,
                     char *err, size_t errlen);

/* Decodes a record of `tenant`: *cfg (release with dsession_config_cleanup), *st (counters
 * only; absent ones are 0) and *opened_unix_ms (0 when absent: a record of an older build).
 * Returns SLUICE_OK, or SLUICE_EPROTO with a message in err (then *cfg needs no cleanup). */
int sessrec_decode(const char *data, size_t len, const char *tenant, dsession_config *cfg,
                   dsession_status *st, uint64_t *opened_unix_ms, char *err, size_t errlen);

#endif
