/*
 * Fuzz target: the sluiced configuration loader (server/common/config.c).
 *
 * The input is a configuration file: applied over the defaults with config_load_text (the
 * text up to its first NUL) and with config_load_file from an in-memory file (every byte,
 * as sluiced --config reads it; no disk). Either may refuse it; neither may crash, leak or
 * leave an error message empty.
 */
#include "fuzz.h"

#include "server/common/config.h"

#include <stdlib.h>
#include <unistd.h>

static void load(const uint8_t *data, size_t size, int from_file) {
    sluiced_config c;
    config_defaults(&c);
    char err[512] = "";
    int rc = -1;
    if (from_file) {
        char path[64];
        int fd = fuzz_memfile(data, size, path, sizeof path);
        if (fd < 0) {
            config_cleanup(&c);
            return;
        }
        rc = config_load_file(&c, path, err, sizeof err);
        close(fd);
    } else {
        char *text = fuzz_strndup(data, size);
        rc = config_load_text(&c, text, err, sizeof err);
        free(text);
    }
    if (rc != 0 && !err[0])
        fuzz_fail("config refused without a message");
    config_cleanup(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    load(data, size, 0);
    load(data, size, 1);
    return 0;
}
