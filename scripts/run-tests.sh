#!/usr/bin/env bash
# The README's test command: sets up a fresh Debian 12 machine (packages from
# deploy/packages.txt and deploy/packages-lint.txt, npm for the Node interop client and
# deploy/tools), builds the normal, ASan+UBSan and TSan configurations, runs scripts/lint.sh
# after the normal build (deployment files, clang-format, the deploy samples through that
# sluiced's --check-config, image build when buildah can), and runs every test (ctest) on
# each (the fuzz corpora replay there too, label fuzz). Then it builds the libFuzzer
# configuration (build-fuzz/, clang) and runs every fuzz target for SLUICE_FUZZ_SECONDS
# (default 60) each through scripts/fuzz.sh: any finding fails the run. A lint failure
# fails the run but the builds and tests still run. (TSan's options and suppressions for
# the uninstrumented gRPC/RocksDB are set per test by tests/CMakeLists.txt.)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh" --lint
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0
for kind in normal asan tsan; do
  echo "=== build ($kind) ==="
  built=1
  "$root/scripts/build.sh" "$kind" || { built=0; status=1; }
  dir="$root/build"; [ "$kind" = normal ] || dir="$root/build-$kind"
  if [ "$kind" = normal ]; then
    # After the first build, so lint's check-config runs the sluiced just built (lint runs,
    # and says check-config was skipped, when that build failed).
    echo "=== lint ==="
    lint_args=(--no-install)
    [ "$built" -eq 0 ] || lint_args+=(--sluiced "$dir/server/sluiced")
    "$root/scripts/lint.sh" "${lint_args[@]}" || status=1
  fi
  [ "$built" -eq 1 ] || { echo "build ($kind) FAILED: its tests are skipped" >&2; continue; }
  echo "=== test ($kind) ==="
  (cd "$dir" && ctest --output-on-failure --timeout 900 -j2) || status=1
done
echo "=== fuzz (${SLUICE_FUZZ_SECONDS:-60}s per target) ==="
"$root/scripts/fuzz.sh" -t "${SLUICE_FUZZ_SECONDS:-60}" || status=1
[ "$status" -eq 0 ] && echo "all tests passed (normal, asan, tsan and fuzz)" || echo "some tests FAILED" >&2
exit "$status"
