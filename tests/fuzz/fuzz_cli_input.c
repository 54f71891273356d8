/*
 * Fuzz target: the CLI's JSONL line parser (client/cli/input.c, cli_parse_line), which
 * turns one input line of `sluice run` / `sluice start` into an SDK prompt. Returns a
 * prompt, or NULL with a message; never both, never neither.
 */
#include "fuzz.h"

#include "cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    sluice_prompt *p = cli_parse_line((const char *)data, size, err, sizeof err);
    if (!p && !err[0])
        fuzz_fail("a line was refused without a message");
    sluice_prompt_free(p);
    return 0;
}
