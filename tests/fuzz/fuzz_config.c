/*
 * Fuzz target: the sluiced configuration loader (server/common/config.c).
 *
 * The input is a configuration file, optionally followed by a NUL byte and one
 * environment override "SLUICE_NAME=value". The file is applied over the defaults with
 * config_load_text and, from an in-memory file (no disk), with config_load_file, as
 * sluiced --config reads it; then the override is set and config_apply_env runs. Each may
 * refuse; none may crash, leak or leave its error message empty.
 */
#include "fuzz.h"

#include "server/common/config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void check(int rc, const char *err) {
    if (rc != 0 && !err[0])
        fuzz_fail("config refused without a message");
}

static void from_text(const char *text) {
    sluiced_config c;
    config_defaults(&c);
    char err[512] = "";
    check(config_load_text(&c, text, err, sizeof err), err);
    config_cleanup(&c);
}

static void from_file(const uint8_t *data, size_t size, const char *env) {
    sluiced_config c;
    config_defaults(&c);
    char path[64], err[512] = "";
    int fd = fuzz_memfile(data, size, path, sizeof path);
    if (fd >= 0) {
        check(config_load_file(&c, path, err, sizeof err), err);
        close(fd);
    }
    const char *eq = env ? strchr(env, '=') : NULL;
    if (eq && strncmp(env, "SLUICE_", 7) == 0) {
        char *name = strndup(env, (size_t)(eq - env));
        if (!name)
            abort();
        setenv(name, eq + 1, 1);
        err[0] = '\0';
        check(config_apply_env(&c, err, sizeof err), err);
        unsetenv(name);
        free(name);
    }
    config_cleanup(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t file_len = nul ? (size_t)(nul - data) : size;
    char *text = fuzz_strndup(data, file_len);
    char *env = nul ? fuzz_strndup(nul + 1, size - file_len - 1) : NULL;
    from_text(text);
    from_file(data, file_len, env);
    free(text);
    free(env);
    return 0;
}
