/*
 * fake_raw.h - a raw-socket HTTP/1.1 server that drops requests on purpose, and counts them.
 *
 * For the tests of what reaches a provider when a keep-alive connection dies: it answers the
 * first `answer_per_connection` requests of each connection with a canned OpenAI chat
 * completion (keep-alive), then reads each later request in full (headers and
 * Content-Length body: a complete request the provider could bill), counts it, and closes
 * the connection without answering - with a FIN, or with a TCP reset (SO_LINGER 0). Every
 * complete request is counted, answered or not, so a test can compare what reached the
 * provider with the attempts the client recorded.
 *
 * One accept thread serves one connection at a time (requests are sequential per
 * connection, which is all these tests need). Thread safety: fake_raw_requests from any
 * thread; start and stop from one.
 */
#ifndef SLUICE_TESTS_FAKE_RAW_H
#define SLUICE_TESTS_FAKE_RAW_H

#include <stdbool.h>
#include <stdint.h>

typedef struct fake_raw fake_raw;

typedef struct fake_raw_config {
    unsigned answer_per_connection; /* requests answered before the drops begin */
    bool reset;                     /* drop with a TCP reset instead of a FIN */
} fake_raw_config;

/* Listens on 127.0.0.1:0. Returns NULL when it cannot. */
fake_raw *fake_raw_start(const fake_raw_config *cfg);
/* "http://127.0.0.1:PORT". Owned by f. */
const char *fake_raw_url(const fake_raw *f);
/* Complete requests received so far (answered or dropped). */
uint64_t fake_raw_requests(fake_raw *f);
/* Stops and frees. NULL-safe. */
void fake_raw_stop(fake_raw *f);

#endif
