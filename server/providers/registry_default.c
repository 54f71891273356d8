/*
 * registry_default.c - the built-in registry: current OpenAI, Anthropic and Gemini models.
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
 * Gemini (ai.google.dev/gemini-api/docs/pricing and /models, Standard tier, paid, text and
 * image input): gemini-2.5-pro $1.25 in / $10 out / $0.125 cached for prompts up to 200k
 * tokens and $2.50 / $15 / $0.25 above (long_context_threshold and the long_* prices);
 * gemini-2.5-flash $0.30 / $2.50 / $0.03; gemini-2.5-flash-lite $0.10 / $0.40 / $0.01.
 * Output prices include thinking tokens (the adapter counts thoughtsTokenCount as output).
 * Implicit cache hits are billed at the cached price and there is no per-token cache write
 * (explicit caches are billed for storage by the hour, outside any answer), hence
 * cache_write_price 0. The 2.5 model codes are Google's stable names (a stable name does not
 * change under its callers; there are no dated 2.5 snapshots); preview models (Gemini 3)
 * are left to operators' registry files. lm-deluge (src/lm_deluge/models/google.py) lists
 * the same input and output prices and the older 75% cache discount ($0.31, $0.075,
 * $0.025); Google's page wins.
 *
 * Context windows and output limits are the documented maxima (Gemini 2.5: 1,048,576 input
 * tokens, 65,536 output tokens). gpt-5 family: 400k total
 * (272k input + 128k output). claude-sonnet-4.5 has a 1M-token beta window that needs a
 * beta header; the registry lists the default 200k.
 *
 * json_schema: OpenAI models take response_format json_schema natively; Anthropic models
 * get structured output through a forced tool (anthropic.c), which every listed Claude
 * model supports, so the flag is true for them too; Gemini models take responseSchema.
 *
 * Key limits are deliberately conservative (roughly the providers' first usage tier) so a
 * fresh install cannot trip provider rate limits; operators with higher tiers raise them
 * in their own registry file. Gemini limits each model of a project separately; the one
 * "gemini" key carries the smallest Tier 1 limits of its models (2.5 Pro: 150 requests/min;
 * 2.5 Flash: 1M tokens/min).
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
    "                  \"max_concurrent\": 10},\n"
    "    \"gemini\": {\"provider\": \"gemini\", \"env\": \"GEMINI_API_KEY\",\n"
    "               \"requests_per_minute\": 150, \"tokens_per_minute\": 1000000,\n"
    "               \"max_concurrent\": 50}\n"
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
    "      \"reasoning\": false, \"json_schema\": true, \"images\": true},\n"
    "    \"gemini-2.5-pro\": {\"provider\": \"gemini\", \"upstream\": \"gemini-2.5-pro\",\n"
    "      \"key\": \"gemini\", \"input_price\": 1.25, \"cached_input_price\": 0.125,\n"
    "      \"cache_write_price\": 0, \"output_price\": 10.0, \"context_window\": 1048576,\n"
    "      \"max_output_tokens\": 65536, \"reasoning\": true, \"json_schema\": true,\n"
    "      \"images\": true, \"long_context_threshold\": 200000, \"long_input_price\": 2.5,\n"
    "      \"long_output_price\": 15.0, \"long_cached_input_price\": 0.25},\n"
    "    \"gemini-2.5-flash\": {\"provider\": \"gemini\", \"upstream\": \"gemini-2.5-flash\",\n"
    "      \"key\": \"gemini\", \"input_price\": 0.3, \"cached_input_price\": 0.03,\n"
    "      \"cache_write_price\": 0, \"output_price\": 2.5, \"context_window\": 1048576,\n"
    "      \"max_output_tokens\": 65536, \"reasoning\": true, \"json_schema\": true,\n"
    "      \"images\": true},\n"
    "    \"gemini-2.5-flash-lite\": {\"provider\": \"gemini\",\n"
    "      \"upstream\": \"gemini-2.5-flash-lite\", \"key\": \"gemini\", \"input_price\": 0.1,\n"
    "      \"cached_input_price\": 0.01, \"cache_write_price\": 0, \"output_price\": 0.4,\n"
    "      \"context_window\": 1048576, \"max_output_tokens\": 65536, \"reasoning\": true,\n"
    "      \"json_schema\": true, \"images\": true}\n"
    "  }\n"
    "}\n";

const char *registry_default_json(void) {
    return default_registry;
}
