/* The --wrap'ed allocators (see failmalloc.h). */
#include "e2e/failmalloc.h"

#include <stddef.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t count, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);

static _Thread_local long countdown, counted;
static _Thread_local bool fired;

void failmalloc_arm(long n) {
    countdown = n;
    counted = 0;
    fired = false;
}

long failmalloc_disarm(void) {
    countdown = 0;
    return counted;
}

bool failmalloc_failed(void) {
    return fired;
}

/* Counts one allocation; true when it is the one to fail. */
static bool fail_now(void) {
    if (countdown <= 0)
        return false;
    counted++;
    if (--countdown > 0)
        return false;
    fired = true;
    return true;
}

void *__wrap_malloc(size_t n) {
    return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t count, size_t size) {
    return fail_now() ? NULL : __real_calloc(count, size);
}

void *__wrap_realloc(void *p, size_t n) {
    return fail_now() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s) {
    return fail_now() ? NULL : __real_strdup(s);
}
