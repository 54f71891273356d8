#!/usr/bin/env bash
# Builds sluice. Usage: scripts/build.sh [normal|asan|tsan] (default normal).
# Build directories: build/ (normal, RelWithDebInfo), build-asan/, build-tsan/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
kind="${1:-normal}"
case "$kind" in
  normal) dir="$root/build";      opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan)   dir="$root/build-asan"; opts=(-DCMAKE_BUILD_TYPE=Debug -DSLUICE_ASAN=ON) ;;
  tsan)   dir="$root/build-tsan"; opts=(-DCMAKE_BUILD_TYPE=Debug -DSLUICE_TSAN=ON) ;;
  *) echo "usage: $0 [normal|asan|tsan]" >&2; exit 2 ;;
esac
jobs="$(nproc 2>/dev/null || echo 2)"
cmake -S "$root" -B "$dir" "${opts[@]}" >/dev/null
cmake --build "$dir" -j"$jobs"
