/*
 * Fuzz target: the CLI's JSONL line parser (client/cli/input.c, cli_parse_line), which
 * turns one input line of `sluice run` / `sluice start` into an SDK prompt. Returns a
 * prompt, or NULL with a message; never both, never neither. The message becomes the
 * "error" of the line's result object, so it must be UTF-8 whatever the line holds (else
 * jansson refuses it and the line's result goes missing from the output).
 */
#include "fuzz.h"

#include "cli.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    sluice_prompt *p = cli_parse_line((const char *)data, size, err, sizeof err);
    if (!p && !err[0])
        fuzz_fail("a line was refused without a message");
    if (!p && !fuzz_utf8_valid((const uint8_t *)err, strlen(err)))
        fuzz_fail("the message for a refused line is not UTF-8: \"%s\"", err);
    sluice_prompt_free(p);
    return 0;
}
