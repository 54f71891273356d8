/*
 * registry_default.c - the built-in registry: current OpenAI and Anthropic models.
 *
 * Used when the operator gives no registry file. Upstream ids are pinned snapshots so a
 * cached answer always names the model that produced it.
 *
 * Prices (USD per million tokens) are the providers' public list prices (platform.openai.com
 * pricing, docs.anthropic.com pricing, as of 2025-11), cross-checked against lm-deluge's
 * registry (src/lm_deluge/models/openai.py and anthropic.py). Where the two disagree the
 * provider's page wins: claude-haiku-4.5 output is $5 (lm-deluge lists $3). OpenAI charges
 * nothing for writing its prompt cache, hence cache_write_price 0; Anthropic charges 1.25x
 * input for a 5-minute cache write and 0.1x input for a cache read.
 *
 * Context windows and output limits are the documented maxima. gpt-5 family: 400k total
 * (272k input + 128k output). claude-sonnet-4.5 has a 1M-token beta window that needs a
 * beta header; the registry lists the default 200k.
 *
 * json_schema: OpenAI models take response_format json_schema natively; Anthropic models
 * get structured output through a forced tool (anthropic.c), which every listed Claude
 * model supports, so the flag is true for them too.
 *
 * Key limits are deliberately conservative (roughly the providers' first usage tier) so a
 * fresh install cannot trip provider rate limits; operators with higher tiers raise them
 * in their own registry file.
 */
#include "server/providers/registry.h"

static const char default_registry[] =
    "{\n"
    "  \"keys\": {\n"
    "    \"openai\": {\"provider\": \"openai\", \"env\": \"OPENAI_API_KEY\",\n"
    "               \"requests_per_minute\": 500, \"tokens_per_minute\": 30000,\n"
    "               \"max_concurrent\": 50},\n"
    "    \"anthropic\": {\"provider\": \"anthropic\", \"env\": \"ANTHROPIC_API_KEY\",\n"
    "                  \"requests_per_minute\": 50, \"tokens_per_minute\": 30000,\n"
    "                  \"max_concurrent\": 10}\n"
    "  },\n"
    "  \"models\": {\n"
    "    \"gpt-4.1\": {\"provider\": \"openai\", \"upstream\": \"gpt-4.1-2025-04-14\",\n"
    "      \"key\": \"openai\", \"input_price\": 2.0, \"cached_input_price\": 0.5,\n"
    "      \"cache_write_price\": 0, \"output_price\": 8.0, \"context_window\": 1047576,\n"
    "      \"max_output_tokens\": 32768, \"reasoning\": false, \"json_schema\": true,\n"
    "      \"images\": true},\n"
    "    \"gpt-4.1-mini\": {\"provider\": \"openai\", \"upstream\": \"gpt-4.1-mini-2025-04-14\",\n"
    "      \"key\": \"openai\", \"input_price\": 0.4, \"cached_input_price\": 0.1,\n"
    "      \"cache_write_price\": 0, \"output_price\": 1.6, \"context_window\": 1047576,\n"
    "      \"max_output_tokens\": 32768, \"reasoning\": false, \"json_schema\": true,\n"
    "      \"images\": true},\n"
    "    \"gpt-4.1-nano\": {\"provider\": \"openai\", \"upstream\": \"gpt-4.1-nano-2025-04-14\",\n"
    "      \"key\": \"openai\", \"input_price\": 0.1, \"cached_input_price\": 0.025,\n"
    "      \"cache_write_price\": 0, \"output_price\": 0.4, \"context_window\": 1047576,\n"
    "      \"max_output_tokens\": 32768, \"reasoning\": false, \"json_schema\": true,\n"
    "      \"images\": true},\n"
    "    \"gpt-4o\": {\"provider\": \"openai\", \"upstream\": \"gpt-4o-2024-08-06\",\n"
    "      \"key\": \"openai\", \"input_price\": 2.5, \"cached_input_price\": 1.25,\n"
    "      \"cache_write_price\": 0, \"output_price\": 10.0, \"context_window\": 128000,\n"
    "      \"max_output_tokens\": 16384, \"reasoning\": false, \"json_schema\": true,\n"
    "      \"images\": true},\n"
    "    \"gpt-4o-mini\": {\"provider\": \"openai\", \"upstream\": \"gpt-4o-mini-2024-07-18\",\n"
    "      \"key\": \"openai\", \"input_price\": 0.15, \"cached_input_price\": 0.075,\n"
    "      \"cache_write_price\": 0, \"output_price\": 0.6, \"context_window\": 128000,\n"
    "      \"max_output_tokens\": 16384, \"reasoning\": false, \"json_schema\": true,\n"
    "      \"images\": true},\n"
    "    \"o3\": {\"provider\": \"openai\", \"upstream\": \"o3-2025-04-16\",\n"
    "      \"key\": \"openai\", \"input_price\": 2.0, \"cached_input_price\": 0.5,\n"
    "      \"cache_write_price\": 0, \"output_price\": 8.0, \"context_window\": 200000,\n"
    "      \"max_output_tokens\": 100000, \"reasoning\": true, \"json_schema\": true,\n"
    "      \"images\": true},\n"
    "    \"o4-mini\": {\"provider\": \"openai\", \"upstream\": \"o4-mini-2025-04-16\",\n"
    "      \"key\": \"openai\", \"input_price\": 1.1, \"cached_input_price\": 0.275,\n"
    "      \"cache_write_price\": 0, \"output_price\": 4.4, \"context_window\": 200000,\n"
    "      \"max_output_tokens\": 100000, \"reasoning\": true, \"json_schema\": true,\n"
    "      \"images\": true},\n"
    "    \"gpt-5\": {\"provider\": \"openai\", \"upstream\": \"gpt-5-2025-08-07\",\n"
    "      \"key\": \"openai\", \"input_price\": 1.25, \"cached_input_price\": 0.125,\n"
    "      \"cache_write_price\": 0, \"output_price\": 10.0, \"context_window\": 400000,\n"
    "      \"max_output_tokens\": 128000, \"reasoning\": true, \"json_schema\": true,\n"
    "      \"images\": true},\n"
    "    \"gpt-5-mini\": {\"provider\": \"openai\", \"upstream\": \"gpt-5-mini-2025-08-07\",\n"
    "      \"key\": \"openai\", \"input_price\": 0.25, \"cached_input_price\": 0.025,\n"
    "      \"cache_write_price\": 0, \"output_price\": 2.0, \"context_window\": 400000,\n"
    "      \"max_output_tokens\": 128000, \"reasoning\": true, \"json_schema\": true,\n"
    "      \"images\": true},\n"
    "    \"gpt-5-nano\": {\"provider\": \"openai\", \"upstream\": \"gpt-5-nano-2025-08-07\",\n"
    "      \"key\": \"openai\", \"input_price\": 0.05, \"cached_input_price\": 0.005,\n"
    "      \"cache_write_price\": 0, \"output_price\": 0.4, \"context_window\": 400000,\n"
    "      \"max_output_tokens\": 128000, \"reasoning\": true, \"json_schema\": true,\n"
    "      \"images\": true},\n"
    "    \"claude-opus-4.1\": {\"provider\": \"anthropic\",\n"
    "      \"upstream\": \"claude-opus-4-1-20250805\", \"key\": \"anthropic\",\n"
    "      \"input_price\": 15.0, \"cached_input_price\": 1.5, \"cache_write_price\": 18.75,\n"
    "      \"output_price\": 75.0, \"context_window\": 200000, \"max_output_tokens\": 32000,\n"
    "      \"reasoning\": true, \"json_schema\": true, \"images\": true},\n"
    "    \"claude-sonnet-4.5\": {\"provider\": \"anthropic\",\n"
    "      \"upstream\": \"claude-sonnet-4-5-20250929\", \"key\": \"anthropic\",\n"
    "      \"input_price\": 3.0, \"cached_input_price\": 0.3, \"cache_write_price\": 3.75,\n"
    "      \"output_price\": 15.0, \"context_window\": 200000, \"max_output_tokens\": 64000,\n"
    "      \"reasoning\": true, \"json_schema\": true, \"images\": true},\n"
    "    \"claude-haiku-4.5\": {\"provider\": \"anthropic\",\n"
    "      \"upstream\": \"claude-haiku-4-5-20251001\", \"key\": \"anthropic\",\n"
    "      \"input_price\": 1.0, \"cached_input_price\": 0.1, \"cache_write_price\": 1.25,\n"
    "      \"output_price\": 5.0, \"context_window\": 200000, \"max_output_tokens\": 64000,\n"
    "      \"reasoning\": true, \"json_schema\": true, \"images\": true},\n"
    "    \"claude-3.5-haiku\": {\"provider\": \"anthropic\",\n"
    "      \"upstream\": \"claude-3-5-haiku-20241022\", \"key\": \"anthropic\",\n"
    "      \"input_price\": 0.8, \"cached_input_price\": 0.08, \"cache_write_price\": 1.0,\n"
    "      \"output_price\": 4.0, \"context_window\": 200000, \"max_output_tokens\": 8192,\n"
    "      \"reasoning\": false, \"json_schema\": true, \"images\": true}\n"
    "  }\n"
    "}\n";

const char *registry_default_json(void) {
    return default_registry;
}
