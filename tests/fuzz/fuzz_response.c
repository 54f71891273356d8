/*
 * The provider response targets' shared body (fuzz_response.h).
 *
 * A 2xx body goes through parse_success; on success the answer is costed (registry_cost),
 * its completion rebuilt from its parts, and it goes through the store codec as the cache
 * would keep it (a refusal is allowed: the answer is then simply not cached; a value
 * packed must unpack). On failure the adapter must have left `out` empty and said why.
 * The same bytes go through parse_error as a 429 and a 500 body: the message must be one
 * NUL-terminated line, also into a tiny buffer.
 */
#include "fuzz_response.h"

#include "fuzz.h"

#include "server/store/codec.h"

#include <stdlib.h>
#include <string.h>

static const model_info model = {
    .name = "fuzz-model",
    .upstream_model = "fuzz-upstream",
    .base_url = "http://127.0.0.1:1/v1",
    .input_price = 1.25,
    .output_price = 10,
    .cached_input_price = 0.125,
    .cache_write_price = 1.5,
    .context_window = 200000,
    .reasoning = true,
    .json_schema = true,
    .images = true,
};

static void store_round_trip(const llm_response *r) {
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[256];
    if (codec_response_pack(r, 11, &buf, &len, err, sizeof err) != 0)
        return;
    llm_response *back = NULL;
    if (codec_response_unpack(buf + 11, len - 11, &back, err, sizeof err) != 0)
        fuzz_fail("a parsed answer packs but does not unpack: %s", err);
    llm_response_free(back);
    free(buf);
}

/* An error text becomes Response.error_message, a proto string: from a well-formed body
 * it must be well-formed UTF-8 (a cut sequence makes strict clients refuse the whole
 * message), and a parse_error message is also one line. */
static void check_text(const char *what, const char *msg, size_t cap, bool one_line,
                       bool body_utf8) {
    size_t n = strnlen(msg, cap);
    if (n == cap)
        fuzz_fail("%s: message not NUL-terminated", what);
    for (size_t i = 0; one_line && i < n; i++)
        if ((unsigned char)msg[i] < 0x20)
            fuzz_fail("%s: message holds control byte 0x%02x", what, (unsigned char)msg[i]);
    if (body_utf8 && !fuzz_utf8_valid((const uint8_t *)msg, n))
        fuzz_fail("%s: message is not UTF-8 though the body is: \"%s\"", what, msg);
}

void fuzz_provider_response(const provider_ops *ops, const uint8_t *data, size_t size) {
    bool body_utf8 = fuzz_utf8_valid(data, size) && !memchr(data, 0, size);
    llm_response *r = llm_response_new();
    char err[512] = "";
    model_info m = model;
    m.provider = ops->kind;
    if (ops->parse_success(&m, (const char *)data, size, r, err, sizeof err) == 0) {
        (void)registry_cost(&m, &r->usage);
        store_round_trip(r);
    } else if (!err[0] || r->n_content || r->content || r->completion || r->finish_reason ||
               r->thinking) {
        fuzz_fail("%s parse_success failed without a message or left parts behind", ops->name);
    } else {
        check_text("parse_success", err, sizeof err, false, body_utf8);
    }
    llm_response_free(r);

    static const int statuses[] = {429, 500};
    for (size_t i = 0; i < 2; i++) {
        char msg[600];
        memset(msg, 'x', sizeof msg);
        ops->parse_error(statuses[i], (const char *)data, size, msg, sizeof msg);
        check_text("parse_error", msg, sizeof msg, true, body_utf8);
    }
    char tiny[2];
    ops->parse_error(400, (const char *)data, size, tiny, sizeof tiny);
    check_text("parse_error", tiny, sizeof tiny, true, body_utf8);
}
