/*
 * sluice/status.h - the one error enum of sluice.
 *
 * Every fallible sluice function (SDK and server modules alike) returns SLUICE_OK (0) or
 * one of these negative values. Values are append-only: never renumber. Human detail
 * travels separately (a bounded message buffer or sluice_last_error()).
 */
#ifndef SLUICE_STATUS_H
#define SLUICE_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SLUICE_BUILDING_LIBRARY)
#define SLUICE_API __attribute__((visibility("default")))
#else
#define SLUICE_API
#endif

typedef enum sluice_status {
    SLUICE_OK = 0,
    /* A bad argument from the caller (local misuse or INVALID_ARGUMENT from the server). */
    SLUICE_EINVAL = -1,
    /* Out of memory. */
    SLUICE_ENOMEM = -2,
    /* An unknown id (NOT_FOUND). */
    SLUICE_ENOTFOUND = -3,
    /* A configured limit was hit (RESOURCE_EXHAUSTED). */
    SLUICE_ELIMIT = -4,
    /* I/O or storage failure. */
    SLUICE_EIO = -5,
    /* A deadline or timeout passed (DEADLINE_EXCEEDED). */
    SLUICE_ETIMEDOUT = -6,
    /* The operation was cancelled (CANCELLED). */
    SLUICE_ECANCELLED = -7,
    /* The server could not be reached or is shutting down (UNAVAILABLE). */
    SLUICE_EUNAVAILABLE = -8,
    /* Missing or invalid credentials (UNAUTHENTICATED). */
    SLUICE_EAUTH = -9,
    /* A malformed message on the wire or an unexpected protocol state. */
    SLUICE_EPROTO = -10,
    /* Any other failure (INTERNAL, UNKNOWN, ...). */
    SLUICE_EINTERNAL = -11,
    /* The server does not implement the call (UNIMPLEMENTED). */
    SLUICE_EUNIMPLEMENTED = -12,
    /* The object is closed or not open. */
    SLUICE_ECLOSED = -13,
    /* A stream has no more messages. */
    SLUICE_EEOF = -14,
    /* The resource already exists / the operation is already in progress. */
    SLUICE_EBUSY = -15,
} sluice_status;

/* Returns a static, human-readable name for a status ("invalid argument", ...).
 * Thread safety: any thread. Never returns NULL. */
SLUICE_API const char *sluice_strerror(int status);

#ifdef __cplusplus
}
#endif
#endif
