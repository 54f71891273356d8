/* The dispatcher test harness (see dispatch_harness.h). */
#include "integration/dispatch_harness.h"
#include "tests/fake_provider/fake_test_util.h"

#include "server/common/alloc.h"
#include "server/common/clock.h"

#include <CUnit/Basic.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void on_done(void *ctx, uint64_t id, void *task_ctx, dtask_state final, llm_response *resp) {
    harness *h = ctx;
    pthread_mutex_lock(&h->mu);
    harness_result *r = &h->results[id % HARNESS_MAX_TASKS];
    r->times++;
    if (r->done) {
        llm_response_free(resp); /* counted in `times`; the test asserts times == 1 */
    } else {
        r->done = true;
        r->final = final;
        r->resp = resp;
        r->task_ctx = task_ctx;
        r->order = ++h->completed;
    }
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

static void on_state(void *ctx, uint64_t id, void *task_ctx, dtask_state state) {
    harness *h = ctx;
    pthread_mutex_lock(&h->mu);
    h->state_events++;
    if (state == DTASK_IN_FLIGHT && h->n_launches < HARNESS_MAX_TASKS)
        h->launch_ms[h->n_launches++] = clock_now_ms();
    pthread_mutex_unlock(&h->mu);
}

static char *registry_json(const harness *h, const harness_opts *o) {
    fake_key_limits ka = {.rpm = o->key_rpm ? o->key_rpm : 6000000,
                          .tpm = o->key_tpm ? o->key_tpm : 1000000000,
                          .conc = o->key_conc ? o->key_conc : 20000};
    fake_key_limits kb = {.rpm = 6000000, .tpm = 1000000000, .conc = 20000};
    return fake_registry_json(fake_provider_base_url(h->fake), ka, kb, kb, o->extra_models_json);
}

static int make_registry(harness *h, const harness_opts *o) {
    setenv("SLUICE_TEST_KEY_A", "sk-test-a", 1);
    setenv("SLUICE_TEST_KEY_B", "sk-test-b", 1);
    setenv("SLUICE_TEST_KEY_G", "sk-test-g", 1);
    char *text = registry_json(h, o);
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    free(text);
    if (!j)
        return -1;
    char err[512];
    int rc = registry_from_json(j, &h->reg, err, sizeof err);
    json_decref(j);
    if (rc)
        fprintf(stderr, "registry: %s\n", err);
    return rc;
}

static int make_store(harness *h) {
    snprintf(h->store_dir, sizeof h->store_dir, "/tmp/sluice-dtest-XXXXXX");
    if (!mkdtemp(h->store_dir))
        return -1;
    store_config sc;
    memset(&sc, 0, sizeof sc);
    sc.dir = h->store_dir;
    char err[512];
    int rc = store_open(&sc, &h->st, err, sizeof err);
    if (rc)
        fprintf(stderr, "store: %s\n", err);
    return rc;
}

harness *harness_new(const harness_opts *o) {
    harness *h = XNEW(harness);
    pthread_mutex_init(&h->mu, NULL);
    clock_cond_init(&h->cv);
    h->next_id = 1;
    h->setup_failures = o->setup_failures;
    fake_make_tmpdir(h->wire_dir, sizeof h->wire_dir);
    fake_setup_init(&h->wire, o->wire, h->wire_dir);
    h->wire.cfg.request_log = true;
    h->wire.cfg.h2_max_concurrent_streams = o->h2_max_streams;
    char err[512];
    if (fake_provider_new(&h->wire.cfg, &h->fake, err, sizeof err) != 0 ||
        make_registry(h, o) != 0 || (o->with_store && make_store(h) != 0)) {
        CU_FAIL("harness setup");
        harness_free(h);
        return NULL;
    }
    dispatcher_config dc = o->dcfg;
    dc.reg = h->reg;
    dc.store = h->st;
    if (h->wire.ca_file[0])
        dc.http.ca_file = h->wire.ca_file;
    h->sink.on_done = on_done;
    h->sink.on_state = on_state;
    h->sink.ctx = h;
    if (dispatcher_new(&dc, &h->d, err, sizeof err) != 0 || dispatcher_start(h->d) != 0) {
        fprintf(stderr, "dispatcher: %s\n", err);
        CU_FAIL("dispatcher setup");
        harness_free(h);
        return NULL;
    }
    return h;
}

void harness_free(harness *h) {
    if (!h)
        return;
    if (h->d) {
        dispatcher_stats st;
        memset(&st, 0, sizeof st);
        dispatcher_get_stats(h->d, &st);
        CU_ASSERT_EQUAL(st.http_setup_failures, h->setup_failures); /* a refusal is a bug */
        CU_ASSERT(fake_setup_wire_used(&h->wire, h->fake));         /* ... on the wire asked for */
        dispatcher_stats_cleanup(&st);
    }
    dispatcher_free(h->d);
    for (size_t i = 0; i < HARNESS_MAX_TASKS; i++) {
        CU_ASSERT(h->results[i].times <= 1); /* every test: no task ends twice */
        llm_response_free(h->results[i].resp);
    }
    store_close(h->st);
    if (h->store_dir[0])
        fake_rmdir_r(h->store_dir);
    registry_free(h->reg);
    fake_provider_free(h->fake);
    fake_setup_cleanup(&h->wire);
    if (h->wire_dir[0])
        fake_rmdir_r(h->wire_dir);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}

dsession *harness_session(harness *h, const char *models, uint32_t rpm, uint32_t tpm, uint32_t conc,
                          uint32_t max_attempts, cache_mode mode) {
    dsession_config c;
    memset(&c, 0, sizeof c);
    c.tenant = "";
    c.max_requests_per_minute = rpm;
    c.max_tokens_per_minute = tpm;
    c.max_concurrent = conc;
    c.max_attempts = max_attempts;
    c.cache_mode = mode;
    c.request_timeout_ms = 5000;
    dsession_model ms[8];
    memset(ms, 0, sizeof ms);
    char *list = xstrdup(models), *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok && c.n_models < 8;
         tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':');
        ms[c.n_models].weight = colon ? strtod(colon + 1, NULL) : 1.0;
        if (colon)
            *colon = '\0';
        ms[c.n_models].name = tok;
        c.n_models++;
    }
    c.models = ms;
    dsession *s = NULL;
    char err[512];
    if (dsession_new(h->reg, &c, clock_now_ms(), &s, err, sizeof err) != 0) {
        fprintf(stderr, "session: %s\n", err);
        s = NULL;
    }
    free(list);
    return s;
}

uint64_t harness_submit_request(harness *h, dsession *s, llm_request *req) {
    pthread_mutex_lock(&h->mu);
    uint64_t id = h->next_id++;
    pthread_mutex_unlock(&h->mu);
    dispatcher_task_spec spec = {.id = id, .request = req};
    int rc = dispatcher_submit(h->d, s, &spec, 1, &h->sink);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc)
        llm_request_free(req);
    return id;
}

llm_request *harness_text_request(const char *text) {
    llm_request *r = llm_request_new();
    llm_request_add_text(r, LLM_ROLE_USER, text);
    return r;
}

uint64_t harness_submit_texts(harness *h, dsession *s, const char *const *texts, size_t n_texts,
                              size_t n) {
    dispatcher_task_spec *specs = XNEWV(dispatcher_task_spec, n);
    pthread_mutex_lock(&h->mu);
    uint64_t first = h->next_id;
    h->next_id += n;
    pthread_mutex_unlock(&h->mu);
    for (size_t i = 0; i < n; i++) {
        specs[i].id = first + i;
        specs[i].request = harness_text_request(texts[i % n_texts]);
        specs[i].task_ctx = (void *)(uintptr_t)i;
    }
    int rc = dispatcher_submit(h->d, s, specs, n, &h->sink);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc)
        for (size_t i = 0; i < n; i++)
            llm_request_free(specs[i].request);
    free(specs);
    return first;
}

uint64_t harness_wait(harness *h, uint64_t count, uint32_t timeout_ms) {
    uint64_t deadline = clock_now_ms() + timeout_ms;
    pthread_mutex_lock(&h->mu);
    while (h->completed < count && clock_now_ms() < deadline) {
        clock_cond_wait_ms(&h->cv, &h->mu, 20);
    }
    uint64_t done = h->completed;
    pthread_mutex_unlock(&h->mu);
    return done;
}
