/*
 * fake_control.h - the fake provider's control API (/_fake/...) and JSON settings.
 *
 * Lets another process (the lead's crash tests, the README demo) read counters and change
 * settings over HTTP; the in-process API (fake_provider.h) uses the same functions.
 * Thread safety: any thread.
 */
#ifndef SLUICE_TESTS_FAKE_CONTROL_H
#define SLUICE_TESTS_FAKE_CONTROL_H

#include "tests/fake_provider/fake_reply.h"
#include "tests/fake_provider/fake_state.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct fake_control_in {
    const char *method;  /* "GET" / "POST" */
    const char *path;    /* "/_fake/counters" ... */
    const char *arg_all; /* ?all= value or NULL */
    const char *arg_key; /* ?key= value or NULL */
    const char *body;
    size_t body_len;
    bool body_too_large;
} fake_control_in;

/* Answers a control request (always immediately; JSON bodies). */
void fake_control_handle(fake_state *st, const fake_control_in *in, fake_reply *out);
/* Validates a settings document completely, then applies it (all or nothing). Returns 0,
 * or -1 with a message naming the offending field. */
int fake_control_configure(fake_state *st, const char *json, size_t len, char *err, size_t errlen);

#endif
