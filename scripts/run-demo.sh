#!/usr/bin/env bash
# The README's main job: sets up a fresh Debian 12 machine (deploy/packages.txt), builds
# sluice, starts sluiced on its embedded RocksDB store (./sluice-data), and runs
# examples/prompts.jsonl through `sluice run` with a progress bar, writing
# demo-results.jsonl. It uses the real provider when OPENAI_API_KEY, ANTHROPIC_API_KEY or
# GEMINI_API_KEY is set (the first of them), and the bundled fake provider otherwise - and
# says which. sluiced is stopped (drained)
# at the end.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" normal >/dev/null
B="$root/build"
work="$(mktemp -d /tmp/sluice-demo-XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

registry_args=()
run_args=()
if [ -n "${OPENAI_API_KEY:-}" ]; then
  model="${SLUICE_MODEL:-gpt-4.1-mini}"
  echo "demo: OPENAI_API_KEY is set: using the real OpenAI API with $model"
elif [ -n "${ANTHROPIC_API_KEY:-}" ]; then
  model="${SLUICE_MODEL:-claude-haiku-4.5}"
  echo "demo: ANTHROPIC_API_KEY is set: using the real Anthropic API with $model"
elif [ -n "${GEMINI_API_KEY:-}" ]; then
  model="${SLUICE_MODEL:-gemini-2.5-flash}"
  echo "demo: GEMINI_API_KEY is set: using the real Gemini API with $model"
else
  model="gpt-4.1-mini"
  "$B/tests/sluice-fake-provider" --quiet --latency-ms 400 --jitter-ms 800 >"$work/fake.out" &
  pids+=($!)
  until grep -q '^port=' "$work/fake.out" 2>/dev/null; do
    kill -0 "${pids[-1]}" 2>/dev/null || { echo "demo: the fake provider did not start" >&2; exit 1; }
    sleep 0.05
  done
  fake_port="$(sed -n 's/^port=//p' "$work/fake.out")"
  echo "demo: no provider key set: using the bundled fake provider (127.0.0.1:$fake_port)"
  echo "      (set OPENAI_API_KEY, ANTHROPIC_API_KEY or GEMINI_API_KEY to use a real one)"
  cat >"$work/registry.json" <<JSON
{"keys": {"fake": {"provider": "openai", "env": "SLUICE_DEMO_KEY",
                   "requests_per_minute": 600, "tokens_per_minute": 1000000,
                   "max_concurrent": 8}},
 "models": {"$model": {"provider": "openai", "upstream": "gpt-4.1-mini-2025-04-14",
                       "base_url": "http://127.0.0.1:$fake_port/v1", "key": "fake",
                       "input_price": 0.4, "output_price": 1.6, "cached_input_price": 0.1,
                       "context_window": 1047576}}}
JSON
  export SLUICE_DEMO_KEY=demo
  registry_args=(--registry "$work/registry.json")
  run_args=(--rpm 120)   # pace visibly: 2 requests/s
fi

"$B/server/sluiced" --listen 127.0.0.1:0 --data-dir "$root/sluice-data" \
  --port-file "$work/port" "${registry_args[@]}" 2>"$work/sluiced.log" &
pids+=($!)
until [ -s "$work/port" ]; do
  kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/sluiced.log" >&2; exit 1; }
  sleep 0.05
done
port="$(head -1 "$work/port")"
echo "demo: sluiced is serving on 127.0.0.1:$port with its store in ./sluice-data"
"$B/client/cli/sluice" models -s "127.0.0.1:$port" | head -5

echo "demo: sluice run examples/prompts.jsonl (results in demo-results.jsonl)"
status=0
"$B/client/cli/sluice" run -s "127.0.0.1:$port" -m "$model" "${run_args[@]}" \
  -o "$root/demo-results.jsonl" "$root/examples/prompts.jsonl" || status=$?
echo "demo: first results:"
head -3 "$root/demo-results.jsonl"
echo "demo: running the same input again finishes from the cache:"
"$B/client/cli/sluice" run -s "127.0.0.1:$port" -m "$model" -q \
  -o "$root/demo-results.jsonl" "$root/examples/prompts.jsonl" || status=$?
echo "demo: $(grep -c '"cached":true' "$root/demo-results.jsonl") of $(wc -l <"$root/demo-results.jsonl") answers came from the cache"
exit "$status"
