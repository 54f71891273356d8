/*
 * Fuzz target: the model registry loader (server/providers/registry.c).
 *
 * The input is a registry file. Text that is not JSON goes through registry_load_file
 * from an in-memory file (its error path never opens anything else). JSON goes through
 * registry_from_json, with every keys.*.file value first pointed into a fixture directory
 * made once per process (good, empty, blank, control-character, NUL-holding and oversized
 * secrets, or a missing file), so the fuzzer exercises secret handling without reading
 * the machine's files or blocking on a FIFO; env values may name the fixture variables
 * SLUICE_FUZZ_SECRET_{GOOD,BLANK,CTRL}. A loaded registry is then used: lookups, key
 * status, costs, and one request built per model (its upstream id, base URL and key go
 * into the URL, body and headers).
 */
#include "fuzz.h"

#include "server/providers/provider.h"
#include "server/providers/registry.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[256];
static const char *const fixtures[] = {"good", "empty", "blank", "ctrl", "nul", "big"};

static void write_fixture(const char *name, const char *data, size_t len) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len)
        fuzz_fail("cannot write fixture %s", path);
    close(fd);
}

/* The fixture directory goes when the process exits normally (libFuzzer's end, a replay). */
static void remove_fixtures(void) {
    for (size_t i = 0; i < sizeof fixtures / sizeof *fixtures; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", g_dir, fixtures[i]);
        unlink(path);
    }
    rmdir(g_dir);
}

static void init_once(void) {
    if (g_dir[0])
        return;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/sluice-fuzz-registry-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir))
        fuzz_fail("mkdtemp %s failed", g_dir);
    write_fixture("good", "sk-fuzz-file\n", 13);
    write_fixture("empty", "", 0);
    write_fixture("blank", " \t\r\n", 4);
    write_fixture("ctrl", "sk-\x01-x", 6);
    write_fixture("nul", "sk-\0-x", 6);
    static char big[20000];
    memset(big, 'k', sizeof big);
    write_fixture("big", big, sizeof big);
    setenv("SLUICE_FUZZ_SECRET_GOOD", "sk-fuzz-env", 1);
    setenv("SLUICE_FUZZ_SECRET_BLANK", "  \n", 1);
    setenv("SLUICE_FUZZ_SECRET_CTRL", "sk-\x7f", 1);
    atexit(remove_fixtures);
}

/* Points every keys.*.file at a fixture: one named like the value's last word, else a
 * missing file. */
static void sandbox_files(json_t *root) {
    json_t *keys = json_object_get(root, "keys");
    const char *name;
    json_t *k;
    json_object_foreach(keys, name, k) {
        json_t *file = json_object_get(k, "file");
        if (!json_is_string(file))
            continue;
        const char *v = json_string_value(file);
        const char *base = strrchr(v, '/') ? strrchr(v, '/') + 1 : v;
        const char *pick = "missing";
        for (size_t i = 0; i < sizeof fixtures / sizeof *fixtures; i++)
            if (strcmp(base, fixtures[i]) == 0)
                pick = fixtures[i];
        char path[512];
        snprintf(path, sizeof path, "%s/%s", g_dir, pick);
        json_object_set_new(k, "file", json_string(path));
    }
}

static void use(const registry *r) {
    llm_request *req = llm_request_new();
    llm_request_add_text(req, LLM_ROLE_USER, "hello");
    llm_sampling s;
    llm_sampling_merge(&s, NULL, NULL);
    const llm_usage u = {UINT64_MAX / 2, UINT64_MAX / 2, 1000, UINT64_MAX / 4};
    for (size_t i = 0; i < r->n_models; i++) {
        const model_info *m = &r->models[i];
        if (registry_find(r, m->name) == NULL || m->key_index >= r->n_keys)
            fuzz_fail("model %zu cannot be found again or names no key", i);
        const upstream_key *k = registry_model_key(r, m);
        (void)registry_model_available(r, m);
        (void)registry_cost(m, &u);
        if (i >= 4)
            continue;
        provider_request preq;
        char err[256] = "";
        if (provider_get(m->provider)->build(m, k->secret, req, &s, &preq, err, sizeof err) == 0)
            provider_request_cleanup(&preq);
        else if (!err[0])
            fuzz_fail("build refused without a message");
    }
    llm_sampling_cleanup(&s);
    llm_request_free(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    init_once();
    char err[1024] = "";
    registry *r = NULL;
    json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!root) {
        char path[64];
        int fd = fuzz_memfile(data, size, path, sizeof path);
        if (fd < 0)
            return 0;
        if (registry_load_file(path, &r, err, sizeof err) == 0)
            fuzz_fail("registry_load_file took text json_loadb refused");
        close(fd);
        if (!err[0])
            fuzz_fail("registry file refused without a message");
        return 0;
    }
    sandbox_files(root);
    if (registry_from_json(root, &r, err, sizeof err) == 0) {
        use(r);
        registry_free(r);
    } else if (r || !err[0]) {
        fuzz_fail("registry refused without a message, or left one behind");
    }
    json_decref(root);
    return 0;
}
