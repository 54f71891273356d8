/*
 * names.c - see names.h. Mirrors protoc-c's helpers byte for byte, including the ASCII
 * ctype behaviour (isupper on plain chars, so non-ASCII bytes pass through unchanged).
 */
#include "client/codegen/names.h"

#include "client/codegen/text.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* protoc-c's isupper/tolower act on the C locale; keep that independent of setlocale. */
static bool ascii_upper(char c) {
    return c >= 'A' && c <= 'Z';
}

static char ascii_to_lower(char c) {
    return ascii_upper(c) ? (char)(c - 'A' + 'a') : c;
}

static char ascii_to_upper(char c) {
    return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

/* CamelToLower / CamelToUpper: an underscore goes before an upper-case letter that
 * follows a non-upper-case one, so acronyms stay together ("HTTP2Status" ->
 * "http2_status"). */
static void camel_to(text *out, const char *name, bool upper) {
    bool was_upper = true; /* suppresses a leading '_' */
    for (const char *p = name; *p; p++) {
        bool is_upper = ascii_upper(*p);
        if (is_upper && !was_upper) {
            text_appendc(out, '_');
        }
        text_appendc(out, upper ? ascii_to_upper(*p) : ascii_to_lower(*p));
        was_upper = is_upper;
    }
}

/* ToCamel: drops underscores and capitalises the letter after each. */
static void to_camel(text *out, const char *name) {
    bool next_upper = true;
    for (const char *p = name; *p; p++) {
        if (*p == '_') {
            next_upper = true;
        } else if (next_upper) {
            text_appendc(out, ascii_to_upper(*p));
            next_upper = false;
        } else {
            text_appendc(out, *p);
        }
    }
}

char *names_camel_to_lower(const char *name) {
    text t;
    text_init(&t);
    camel_to(&t, name, false);
    return text_take(&t);
}

char *names_camel_to_upper(const char *name) {
    text t;
    text_init(&t);
    camel_to(&t, name, true);
    return text_take(&t);
}

char *names_to_camel(const char *name) {
    text t;
    text_init(&t);
    to_camel(&t, name);
    return text_take(&t);
}

/* OverrideFullName: with a c_package, the package prefix of the full name is replaced. */
static void override_full_name(text *out, const char *full_name, const char *package,
                               const char *c_package) {
    if (c_package == NULL) {
        text_append(out, full_name);
        return;
    }
    size_t plen = strlen(package);
    text_append(out, c_package);
    if (plen == 0) {
        text_appendc(out, '.');
    }
    text_append(out, strlen(full_name) >= plen ? full_name + plen : "");
}

char *names_full(const char *full_name, const char *package, const char *c_package,
                 names_style style) {
    text name;
    text_init(&name);
    override_full_name(&name, full_name, package, c_package);
    char *dotted = text_take(&name);
    if (dotted == NULL) {
        return NULL;
    }
    text out;
    text_init(&out);
    const char *piece = dotted;
    while (piece != NULL) {
        const char *dot = strchr(piece, '.');
        size_t len = dot != NULL ? (size_t)(dot - piece) : strlen(piece);
        if (len > 0) {
            char *one = strndup(piece, len);
            if (one == NULL) {
                out.failed = true;
                break;
            }
            if (out.len > 0) {
                text_append(&out, "__");
            }
            if (style == NAMES_C) {
                to_camel(&out, one);
            } else {
                camel_to(&out, one, style == NAMES_UPPER);
            }
            free(one);
        }
        piece = dot != NULL ? dot + 1 : NULL;
    }
    free(dotted);
    return text_take(&out);
}

static bool has_suffix(const char *s, size_t len, const char *suffix) {
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

char *names_strip_proto(const char *filename) {
    size_t len = strlen(filename);
    if (has_suffix(filename, len, ".protodevel")) {
        len -= strlen(".protodevel");
    } else if (has_suffix(filename, len, ".proto")) {
        len -= strlen(".proto");
    }
    return strndup(filename, len);
}

char *names_guard(const char *filename) {
    text t;
    text_init(&t);
    text_append(&t, "SLUICE_GEN_");
    for (const unsigned char *p = (const unsigned char *)filename; *p; p++) {
        if (isalnum(*p) && *p < 0x80) {
            text_appendc(&t, (char)*p);
        } else {
            text_printf(&t, "_%x", (unsigned)*p);
        }
    }
    text_append(&t, "__INCLUDED");
    return text_take(&t);
}
