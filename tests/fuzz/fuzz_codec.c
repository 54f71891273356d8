/*
 * Fuzz target: the store codec's decoders (server/store/codec*.c) on arbitrary bytes.
 *
 * The first byte picks the record: a packed Request (the cache's and task record's
 * prompt), a Response (cache values, task results) or a TaskRecord (the durable task
 * record, whose request goes through codec_request_from_proto as store_tasks.c does).
 * Beyond "never crashes, never reads past len", checks the codec's documented contract:
 * whatever decodes must encode again (the encoder refuses exactly what the decoder refuses),
 * and that encoding must decode and encode to the same bytes (the round trip is exact).
 */
#include "fuzz.h"

#include "server/store/codec.h"

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

static void decode_task_record(const uint8_t *data, size_t size) {
    char err[256];
    ProtobufCMessage *pm = codec_message_unpack(&sluice__store__v1__task_record__descriptor, data,
                                                size, err, sizeof err);
    if (!pm)
        return;
    const Sluice__Store__V1__TaskRecord *m = (const Sluice__Store__V1__TaskRecord *)pm;
    llm_request *r = NULL;
    if (m->request && codec_request_from_proto(m->request, &r, err, sizeof err) == 0) {
        request_round_trip(r);
        llm_request_free(r);
    }
    codec_message_free(pm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    switch (data[0] % 3) {
    case 0:
        decode_request(data + 1, size - 1);
        break;
    case 1:
        decode_response(data + 1, size - 1);
        break;
    default:
        decode_task_record(data + 1, size - 1);
        break;
    }
    return 0;
}
