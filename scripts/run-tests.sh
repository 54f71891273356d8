#!/usr/bin/env bash
# The README's test command: sets up a fresh Debian 12 machine (packages from
# deploy/packages.txt and deploy/packages-lint.txt, npm for the Node interop client and
# deploy/tools), builds the normal, ASan+UBSan and TSan configurations, runs scripts/lint.sh
# after the normal build (deployment files, clang-format, the deploy samples through that
# sluiced's --check-config, image build when buildah can), and runs every test (ctest) on
# each. A lint failure fails the run but the builds and tests still run. (TSan's
# options and suppressions for the uninstrumented gRPC/RocksDB are set per test by
# tests/CMakeLists.txt.)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh" --lint
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0
for kind in normal asan tsan; do
  echo "=== build ($kind) ==="
  "$root/scripts/build.sh" "$kind"
  dir="$root/build"; [ "$kind" = normal ] || dir="$root/build-$kind"
  if [ "$kind" = normal ]; then
    # After the first build, so lint's check-config runs the sluiced just built.
    echo "=== lint ==="
    "$root/scripts/lint.sh" --no-install --sluiced "$dir/server/sluiced" || status=1
  fi
  echo "=== test ($kind) ==="
  (cd "$dir" && ctest --output-on-failure --timeout 900 -j2) || status=1
done
[ "$status" -eq 0 ] && echo "all tests passed (normal, asan and tsan)" || echo "some tests FAILED" >&2
exit "$status"
