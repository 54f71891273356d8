/*
 * status.c - sluice_strerror: the name of every sluice_status value.
 */
#include "sluice/status.h"

#include <stddef.h>

/* Indexed by -status; append with the enum (values are append-only). */
static const char *const names[] = {
    "ok",                    /* SLUICE_OK */
    "invalid argument",      /* SLUICE_EINVAL */
    "out of memory",         /* SLUICE_ENOMEM */
    "not found",             /* SLUICE_ENOTFOUND */
    "limit reached",         /* SLUICE_ELIMIT */
    "I/O error",             /* SLUICE_EIO */
    "timed out",             /* SLUICE_ETIMEDOUT */
    "cancelled",             /* SLUICE_ECANCELLED */
    "unavailable",           /* SLUICE_EUNAVAILABLE */
    "authentication failed", /* SLUICE_EAUTH */
    "protocol error",        /* SLUICE_EPROTO */
    "internal error",        /* SLUICE_EINTERNAL */
    "unimplemented",         /* SLUICE_EUNIMPLEMENTED */
    "closed",                /* SLUICE_ECLOSED */
    "end of stream",         /* SLUICE_EEOF */
    "busy",                  /* SLUICE_EBUSY */
};

_Static_assert(sizeof(names) / sizeof(names[0]) == (size_t)-SLUICE_EBUSY + 1,
               "one name per sluice_status value");

SLUICE_API const char *sluice_strerror(int status) {
    if (status > 0 || (size_t) - (long)status >= sizeof(names) / sizeof(names[0])) {
        return "unknown error";
    }
    return names[-status];
}
