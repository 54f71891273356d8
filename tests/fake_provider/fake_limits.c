/*
 * fake_limits.c - token buckets for the fake provider (see fake_limits.h). Pure: the
 * caller passes now_ms and holds the lock. Doubles keep fractional refill exact enough for
 * tests that check "no window ever saw more than the limit".
 */
#include "tests/fake_provider/fake_limits.h"

#include <math.h>
#include <string.h>

void fake_bucket_init(fake_bucket *b, uint32_t limit, uint32_t window_ms, uint64_t now_ms) {
    memset(b, 0, sizeof *b);
    b->limit = limit;
    b->last_ms = now_ms;
    if (!limit)
        return;
    if (!window_ms)
        window_ms = 60000;
    b->capacity = (double)limit * (double)window_ms / 60000.0;
    if (b->capacity < 1.0)
        b->capacity = 1.0;
    b->level = b->capacity;
    b->rate_per_ms = (double)limit / 60000.0;
}

void fake_bucket_refill(fake_bucket *b, uint64_t now_ms) {
    if (b->limit && now_ms > b->last_ms) {
        b->level += (double)(now_ms - b->last_ms) * b->rate_per_ms;
        if (b->level > b->capacity)
            b->level = b->capacity;
    }
    if (now_ms > b->last_ms)
        b->last_ms = now_ms;
}

uint64_t fake_bucket_wait_ms(const fake_bucket *b, double cost) {
    if (!b->limit || b->level >= cost)
        return 0;
    if (cost > b->capacity)
        return UINT64_MAX;
    return (uint64_t)ceil((cost - b->level) / b->rate_per_ms);
}

uint64_t fake_bucket_full_ms(const fake_bucket *b) {
    if (!b->limit || b->level >= b->capacity)
        return 0;
    return (uint64_t)ceil((b->capacity - b->level) / b->rate_per_ms);
}

static uint64_t remaining(const fake_bucket *b) {
    return b->level > 0 ? (uint64_t)floor(b->level) : 0;
}

void fake_limits_admit(fake_bucket *req, fake_bucket *tok, uint64_t tokens, uint64_t now_ms,
                       fake_verdict *v) {
    memset(v, 0, sizeof *v);
    fake_bucket_refill(req, now_ms);
    fake_bucket_refill(tok, now_ms);
    uint64_t wr = fake_bucket_wait_ms(req, 1.0);
    uint64_t wt = fake_bucket_wait_ms(tok, (double)tokens);
    v->wait_ms = wr > wt ? wr : wt;
    v->limited = v->wait_ms > 0;
    v->never_fits = v->wait_ms == UINT64_MAX;
    v->by_tokens = wt > wr;
    if (!v->limited) {
        if (req->limit)
            req->level -= 1.0;
        if (tok->limit)
            tok->level -= (double)tokens;
    }
    v->has_requests = req->limit != 0;
    v->has_tokens = tok->limit != 0;
    v->req_limit = req->limit;
    v->tok_limit = tok->limit;
    v->req_remaining = remaining(req);
    v->tok_remaining = remaining(tok);
    v->req_reset_ms = fake_bucket_full_ms(req);
    v->tok_reset_ms = fake_bucket_full_ms(tok);
}
