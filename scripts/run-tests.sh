#!/usr/bin/env bash
# The README's test command: sets up a fresh Debian 12 machine (packages from
# deploy/packages.txt, npm for the Node interop client), builds the normal and the
# ASan+UBSan configurations, and runs every test (ctest) on both.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0
for kind in normal asan; do
  echo "=== build ($kind) ==="
  "$root/scripts/build.sh" "$kind"
  dir="$root/build"; [ "$kind" = normal ] || dir="$root/build-$kind"
  echo "=== test ($kind) ==="
  (cd "$dir" && ctest --output-on-failure --timeout 900 -j2) || status=1
done
[ "$status" -eq 0 ] && echo "all tests passed (normal and asan)" || echo "some tests FAILED" >&2
exit "$status"
