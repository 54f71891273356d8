/*
 * The UTF-8 walk over a decoded message (see msgcheck.h). It reads fields through their
 * descriptors the way protobuf-c's own free_unpacked does: a repeated field is a count at
 * quantifier_offset and an array at offset; a oneof member is present only when the case
 * at quantifier_offset names it; a string or message pointer may be NULL (absent). The
 * path of the field being looked at is built in a fixed buffer as the walk descends, so a
 * failure names it without allocating.
 */
#include "msgcheck.h"

#include "server/common/utf8.h"
#include "sluice/status.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct walk {
    char path[512];
    size_t len; /* of path (at most sizeof path - 1: a deeper path is cut) */
    char *err;
    size_t errlen;
} walk;

/* Appends text to the path (cut when the path is full). */
static void append(walk *w, const char *text) {
    size_t room = sizeof w->path - 1 - w->len, n = strlen(text);
    if (n > room)
        n = room;
    memcpy(w->path + w->len, text, n);
    w->len += n;
    w->path[w->len] = '\0';
}

/* Appends ".name" (or "name" at the top) and, for a repeated element, "[index]"; returns
 * the length to restore afterwards. */
static size_t push(walk *w, const char *name, bool repeated, size_t index) {
    size_t saved = w->len;
    if (w->len)
        append(w, ".");
    append(w, name);
    if (repeated) {
        char ix[32];
        snprintf(ix, sizeof ix, "[%zu]", index);
        append(w, ix);
    }
    return saved;
}

static void pop(walk *w, size_t saved) {
    w->len = saved;
    w->path[saved] = '\0';
}

static int fail_string(walk *w, const char *s, size_t bad_at) {
    snprintf(w->err, w->errlen, "%s: not valid UTF-8 (byte %zu is 0x%02x)", w->path, bad_at,
             (unsigned)(unsigned char)s[bad_at]);
    return SLUICE_EINVAL;
}

static int check_message(walk *w, const ProtobufCMessage *m, int depth);

/* One value of field f: a string or a message (other types are not looked at). */
static int check_value(walk *w, const ProtobufCFieldDescriptor *f, const void *v, int depth) {
    if (!v)
        return SLUICE_OK;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE)
        return check_message(w, v, depth + 1);
    size_t bad_at;
    const char *s = v;
    return utf8_valid(s, strlen(s), &bad_at) ? SLUICE_OK : fail_string(w, s, bad_at);
}

static int check_field(walk *w, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                       int depth) {
    const char *base = (const char *)m;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t n = *(const size_t *)(base + f->quantifier_offset);
        const void *const *arr = *(const void *const *const *)(base + f->offset);
        for (size_t i = 0; i < n; i++) {
            size_t saved = push(w, f->name, true, i);
            int rc = check_value(w, f, arr[i], depth);
            if (rc)
                return rc;
            pop(w, saved);
        }
        return SLUICE_OK;
    }
    if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
        *(const uint32_t *)(base + f->quantifier_offset) != f->id)
        return SLUICE_OK; /* another member of the oneof is set */
    size_t saved = push(w, f->name, false, 0);
    int rc = check_value(w, f, *(const void *const *)(base + f->offset), depth);
    if (!rc)
        pop(w, saved);
    return rc;
}

static int check_message(walk *w, const ProtobufCMessage *m, int depth) {
    if (depth > MSGCHECK_MAX_DEPTH) {
        snprintf(w->err, w->errlen, "%s: messages nested deeper than %d", w->path,
                 MSGCHECK_MAX_DEPTH);
        return SLUICE_EINVAL;
    }
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        int rc = check_field(w, m, f, depth);
        if (rc)
            return rc;
    }
    return SLUICE_OK;
}

int msgcheck_strings(const ProtobufCMessage *msg, char *err, size_t errlen) {
    walk w;
    w.path[0] = '\0';
    w.len = 0;
    w.err = err;
    w.errlen = errlen;
    return check_message(&w, msg, 1);
}
