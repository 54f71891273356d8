/* fake_route.c - one request's answer, for every HTTP engine of the fake (see fake_route.h). */
#include "tests/fake_provider/fake_route.h"

#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "tests/fake_provider/fake_control.h"
#include "tests/fake_provider/fake_decide.h"

#include <string.h>
#include <strings.h>
#include <time.h>

fake_route fake_route_of(const char *method, const char *path) {
    if (!method || !path)
        return FAKE_ROUTE_NOT_FOUND;
    if (strncmp(path, "/_fake/", 7) == 0)
        return FAKE_ROUTE_CONTROL;
    if (strcmp(method, "POST") != 0)
        return FAKE_ROUTE_NOT_FOUND;
    if (strcmp(path, "/v1/chat/completions") == 0)
        return FAKE_ROUTE_OPENAI;
    if (strcmp(path, "/v1/messages") == 0)
        return FAKE_ROUTE_ANTHROPIC;
    return FAKE_ROUTE_NOT_FOUND;
}

bool fake_route_is_provider(fake_route r) {
    return r == FAKE_ROUTE_OPENAI || r == FAKE_ROUTE_ANTHROPIC;
}

size_t fake_route_max_body(fake_route r) {
    return r == FAKE_ROUTE_CONTROL ? FAKE_MAX_CONTROL_BODY : FAKE_MAX_BODY;
}

/* True when an Accept-Encoding value lists gzip without q=0. */
static bool accepts_gzip(const char *ae) {
    for (const char *p = ae; p && (p = strcasestr(p, "gzip")) != NULL; p += 4) {
        const char *end = p + 4;
        while (*end == ' ')
            end++;
        if (strncmp(end, ";q=0", 4) == 0 && (end[4] == '\0' || end[4] == ',' || end[4] == ' '))
            continue;
        return true;
    }
    return false;
}

/* How a provider answer travels, as configured: chunked, gzip-encoded. */
static void shape_answer(fake_state *st, const fake_request *in, fake_reply *out) {
    fake_wire w;
    fake_state_wire(st, &w);
    out->chunked = w.chunked;
    if (w.gzip && out->action == FAKE_ACT_RESPOND && accepts_gzip(in->accept_encoding))
        fake_reply_gzip(out);
}

void fake_route_decide(fake_state *st, const fake_request *in, fake_reply *out) {
    if (in->route == FAKE_ROUTE_CONTROL) {
        fake_control_in c = {
            .method = in->method,
            .path = in->path,
            .arg_all = in->arg_all,
            .arg_key = in->arg_key,
            .body = in->body ? in->body : "",
            .body_len = in->body_len,
            .body_too_large = in->body_too_large,
        };
        fake_control_handle(st, &c, out);
        return;
    }
    if (in->route == FAKE_ROUTE_NOT_FOUND) {
        fake_reply_set(out, 404, xstrdup("{\"error\":{\"message\":\"not found\"}}"));
        return;
    }
    fake_http_in p = {
        .api = in->route == FAKE_ROUTE_OPENAI ? FAKE_API_OPENAI : FAKE_API_ANTHROPIC,
        .authorization = in->authorization,
        .x_api_key = in->x_api_key,
        .anthropic_version = in->anthropic_version,
        .body = in->body ? in->body : "",
        .body_len = in->body_len,
        .body_too_large = in->body_too_large,
    };
    fake_decide(st, &p, clock_now_ms(), (int64_t)time(NULL), out);
    shape_answer(st, in, out);
}
