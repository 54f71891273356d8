#!/usr/bin/env bash
# Builds sluice. Usage: scripts/build.sh [normal|asan|tsan|fuzz] (default normal).
# Build directories: build/ (normal, RelWithDebInfo), build-asan/, build-tsan/, build-fuzz/
# (clang, only the libFuzzer targets of tests/fuzz/ and what they link).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
kind="${1:-normal}"
case "$kind" in
  normal) dir="$root/build";      opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan)   dir="$root/build-asan"; opts=(-DCMAKE_BUILD_TYPE=Debug -DSLUICE_ASAN=ON) ;;
  tsan)   dir="$root/build-tsan"; opts=(-DCMAKE_BUILD_TYPE=Debug -DSLUICE_TSAN=ON) ;;
  fuzz)   dir="$root/build-fuzz"; opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_FUZZ=ON
                                        -DCMAKE_C_COMPILER=clang) ;;
  *) echo "usage: $0 [normal|asan|tsan|fuzz]" >&2; exit 2 ;;
esac
jobs="$(nproc 2>/dev/null || echo 2)"
cmake -S "$root" -B "$dir" "${opts[@]}" >/dev/null
if [ "$kind" = fuzz ]; then
  cmake --build "$dir" -j"$jobs" --target sluice_fuzzers
else
  cmake --build "$dir" -j"$jobs"
fi
