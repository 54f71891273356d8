#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz/ for a bounded time each; fails on any finding
# (a crash, a leak, a timeout, an out-of-memory, a UBSan report).
#
# Usage: scripts/fuzz.sh [-t SECONDS] [--no-build] [TARGET...] [-- LIBFUZZER_ARGS...]
#   -t SECONDS   time per target (default 60); TARGET defaults to every target.
#   e.g. scripts/fuzz.sh -t 3600 openai -- -jobs=2 -workers=2
#
# Builds build-fuzz/ first (scripts/build.sh fuzz). Each target starts from its committed
# corpus tests/fuzz/corpus/<target>/ (only read) plus build-fuzz/fuzz-corpus/<target>/
# (what earlier local runs added; libFuzzer writes new inputs there), with the dictionary
# tests/fuzz/dict/<target>.dict when there is one. A finding is written under
# build-fuzz/fuzz-artifacts/<target>/; replay it with build/tests/fuzz_<target> FILE (any
# non-fuzz build), fix it, and commit it to the corpus named after what broke.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
secs=60
build=1
targets=()
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    -t) secs="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --) shift; extra=("$@"); break ;;
    -*) echo "usage: $0 [-t SECONDS] [--no-build] [TARGET...] [-- LIBFUZZER_ARGS...]" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if [ "${#targets[@]}" -eq 0 ]; then
  for d in "$root"/tests/fuzz/corpus/*/; do targets+=("$(basename "$d")"); done
fi
[ "$build" -eq 0 ] || "$root/scripts/build.sh" fuzz
dir="$root/build-fuzz"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
# Symbolized reports (Debian's llvm-14 has no unversioned llvm-symbolizer on PATH).
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && [ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0
summary=()
for t in "${targets[@]}"; do
  bin="$dir/tests/fuzz_$t"
  [ -x "$bin" ] || { echo "fuzz: no target $t ($bin)" >&2; status=1; continue; }
  work="$dir/fuzz-corpus/$t"
  art="$dir/fuzz-artifacts/$t"
  mkdir -p "$work" "$art"
  args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$art/")
  dict="$root/tests/fuzz/dict/$t.dict"
  [ ! -f "$dict" ] || args+=(-dict="$dict")
  echo "=== fuzz $t (${secs}s) ==="
  log="$dir/fuzz-$t.log"
  if "$bin" "${args[@]}" "${extra[@]}" "$work" "$root/tests/fuzz/corpus/$t" >"$log" 2>&1; then
    done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)"
    summary+=("$t: ok, ${done_line:-(no final line)}")
  else
    status=1
    tail -n 60 "$log" >&2
    summary+=("$t: FAILED (log $log, artifacts $art/)")
  fi
done
printf '%s\n' "${summary[@]}"
[ "$status" -eq 0 ] && echo "fuzz: no findings" || echo "fuzz: FINDINGS (see above)" >&2
exit "$status"
