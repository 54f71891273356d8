#!/usr/bin/env bash
# The README's test command: sets up a fresh Debian 12 machine (packages from
# deploy/packages.txt and deploy/packages-lint.txt, npm for the Node interop client and
# deploy/tools), runs scripts/lint.sh (deployment files, clang-format, image build when
# buildah can), builds the normal, ASan+UBSan and TSan configurations, and runs every test
# (ctest) on each. A lint failure fails the run but the builds and tests still run. (TSan's
# options and suppressions for the uninstrumented gRPC/RocksDB are set per test by
# tests/CMakeLists.txt.)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh" --lint
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0
echo "=== lint ==="
"$root/scripts/lint.sh" --no-install || status=1
for kind in normal asan tsan; do
  echo "=== build ($kind) ==="
  "$root/scripts/build.sh" "$kind"
  dir="$root/build"; [ "$kind" = normal ] || dir="$root/build-$kind"
  if [ "$kind" = normal ]; then
    echo "=== check-config (deploy samples) ==="
    for cfg in "$root/deploy/sluiced.sample.json" "$root/deploy/k8s/sluiced.json"; do
      env -i PATH="$PATH" "$dir/server/sluiced" --config "$cfg" --check-config || status=1
    done
  fi
  echo "=== test ($kind) ==="
  (cd "$dir" && ctest --output-on-failure --timeout 900 -j2) || status=1
done
[ "$status" -eq 0 ] && echo "all tests passed (normal, asan and tsan)" || echo "some tests FAILED" >&2
exit "$status"
