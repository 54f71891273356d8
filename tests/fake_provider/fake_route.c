/* fake_route.c - one request's answer, for every HTTP engine of the fake (see fake_route.h). */
#include "tests/fake_provider/fake_route.h"

#include "server/common/alloc.h"
#include "server/common/clock.h"
#include "tests/fake_provider/fake_control.h"
#include "tests/fake_provider/fake_decide.h"

#include <string.h>
#include <strings.h>
#include <time.h>

/* The model of a Gemini path "/v1beta/models/<model>:generateContent" into out (at most
 * FAKE_MAX_MODEL_NAME bytes); false when path is not one. */
static bool gemini_model(const char *path, char *out, size_t n) {
    static const char prefix[] = "/v1beta/models/", suffix[] = ":generateContent";
    size_t len = strlen(path), pre = sizeof prefix - 1, suf = sizeof suffix - 1;
    if (len <= pre + suf || strncmp(path, prefix, pre) != 0 ||
        strcmp(path + len - suf, suffix) != 0)
        return false;
    size_t m = len - pre - suf;
    if (m > FAKE_MAX_MODEL_NAME || m + 1 > n || memchr(path + pre, '/', m))
        return false;
    memcpy(out, path + pre, m);
    out[m] = '\0';
    return true;
}

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
    char model[FAKE_MAX_MODEL_NAME + 1];
    if (gemini_model(path, model, sizeof model))
        return FAKE_ROUTE_GEMINI;
    return FAKE_ROUTE_NOT_FOUND;
}

bool fake_route_is_provider(fake_route r) {
    return r == FAKE_ROUTE_OPENAI || r == FAKE_ROUTE_ANTHROPIC || r == FAKE_ROUTE_GEMINI;
}

static fake_api api_of(fake_route r) {
    switch (r) {
    case FAKE_ROUTE_ANTHROPIC:
        return FAKE_API_ANTHROPIC;
    case FAKE_ROUTE_GEMINI:
        return FAKE_API_GEMINI;
    default:
        return FAKE_API_OPENAI;
    }
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
    char model[FAKE_MAX_MODEL_NAME + 1];
    bool gemini = in->route == FAKE_ROUTE_GEMINI && gemini_model(in->path, model, sizeof model);
    fake_http_in p = {
        .api = api_of(in->route),
        .model = gemini ? model : NULL,
        .authorization = in->authorization,
        .x_api_key = in->x_api_key,
        .x_goog_api_key = in->x_goog_api_key,
        .anthropic_version = in->anthropic_version,
        .body = in->body ? in->body : "",
        .body_len = in->body_len,
        .body_too_large = in->body_too_large,
    };
    fake_decide(st, &p, clock_now_ms(), (int64_t)time(NULL), out);
    shape_answer(st, in, out);
}
