/* Fuzz target: OpenAI chat-completions response bodies (server/providers/openai.c). The
 * body is what comes back from the provider, or from anything that answers on its URL. */
#include "fuzz.h"
#include "fuzz_response.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_provider_response(&provider_openai, data, size);
    return 0;
}
