/*
 * Fuzz target: the store codec's decoders (server/store/codec*.c) on arbitrary bytes.
 *
 * The first byte picks what the bytes are: a packed Request or Response (the codec
 * itself), or one of the store's values as read from RocksDB: a task record (<id>'r', a
 * TaskRecord around a Request), a task status (<id>'s', a fixed header and maybe a
 * Response) or a cache value (a fixed header, the answering model, a Response).
 * Beyond "never crashes, never reads past len", checks the codec's documented contract:
 * whatever decodes must encode again (the encoder refuses exactly what the decoder refuses),
 * and that encoding must decode and encode to the same bytes (the round trip is exact).
 */
#include "fuzz.h"

#include "server/store/codec.h"
#include "server/store/store_internal.h"

#include <stdlib.h>
#include <string.h>

static void same_bytes(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                       const char *what) {
    if (alen != blen || (alen && memcmp(a, b, alen) != 0))
        fuzz_fail("%s: re-encoding a decoded value changed it (%zu -> %zu bytes)", what, alen,
                  blen);
}

static void request_round_trip(const llm_request *r) {
    uint8_t *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    char err[256];
    if (codec_request_pack(r, 0, &a, &alen, err, sizeof err) != 0)
        fuzz_fail("a decoded request does not encode: %s", err);
    llm_request *again = NULL;
    if (codec_request_unpack(a, alen, &again, err, sizeof err) != 0)
        fuzz_fail("an encoded request does not decode: %s", err);
    if (codec_request_pack(again, 0, &b, &blen, err, sizeof err) != 0)
        fuzz_fail("a re-decoded request does not encode: %s", err);
    same_bytes(a, alen, b, blen, "request");
    llm_request_free(again);
    free(a);
    free(b);
}

static void response_round_trip(const llm_response *r) {
    uint8_t *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    char err[256];
    if (codec_response_pack(r, 0, &a, &alen, err, sizeof err) != 0)
        fuzz_fail("a decoded response does not encode: %s", err);
    llm_response *again = NULL;
    if (codec_response_unpack(a, alen, &again, err, sizeof err) != 0)
        fuzz_fail("an encoded response does not decode: %s", err);
    if (codec_response_pack(again, 0, &b, &blen, err, sizeof err) != 0)
        fuzz_fail("a re-decoded response does not encode: %s", err);
    same_bytes(a, alen, b, blen, "response");
    llm_response_free(again);
    free(a);
    free(b);
}

static void decode_request(const uint8_t *data, size_t size) {
    llm_request *r = NULL;
    char err[256] = "";
    if (codec_request_unpack(data, size, &r, err, sizeof err) != 0) {
        if (r || !err[0])
            fuzz_fail("a refused request left a value or no message");
        return;
    }
    request_round_trip(r);
    llm_request_free(r);
}

static void decode_response(const uint8_t *data, size_t size) {
    llm_response *r = NULL;
    char err[256] = "";
    if (codec_response_unpack(data, size, &r, err, sizeof err) != 0) {
        if (r || !err[0])
            fuzz_fail("a refused response left a value or no message");
        return;
    }
    response_round_trip(r);
    llm_response_free(r);
}

/* A task's record or status value, decoded into one store_task as store_task_get does. */
static void decode_task_value(const uint8_t *data, size_t size, bool status) {
    store_task *t = calloc(1, sizeof *t);
    char err[256] = "";
    int rc = status ? store_task_status_decode((const char *)data, size, t, err, sizeof err)
                    : store_task_record_decode((const char *)data, size, t, err, sizeof err);
    if (rc != 0 && !err[0])
        fuzz_fail("a refused task value left no message");
    if (rc == 0 && !status && !t->request)
        fuzz_fail("a task record decoded without its request");
    if (rc == 0 && t->request)
        request_round_trip(t->request);
    if (rc == 0 && t->result)
        response_round_trip(t->result);
    store_task_free(t);
}

static void decode_cache_value(const uint8_t *data, size_t size) {
    llm_response *r = NULL;
    char err[256] = "";
    if (store_cache_value_decode((const char *)data, size, &r, err, sizeof err) != 0) {
        if (r || !err[0])
            fuzz_fail("a refused cache value left a value or no message");
        return;
    }
    response_round_trip(r);
    llm_response_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    const uint8_t *rest = data + 1;
    size_t n = size - 1;
    switch (data[0] % 5) {
    case 0:
        decode_request(rest, n);
        break;
    case 1:
        decode_response(rest, n);
        break;
    case 2:
        decode_task_value(rest, n, false);
        break;
    case 3:
        decode_task_value(rest, n, true);
        break;
    default:
        decode_cache_value(rest, n);
        break;
    }
    return 0;
}
