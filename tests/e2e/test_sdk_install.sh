#!/usr/bin/env bash
# The README's SDK example, built the way a user builds it: `cmake --install` into a fresh
# prefix, then `cc examples/sdk_example.c $(pkg-config --cflags --libs sluice)`, then run
# against sluiced (SLUICE_TARGET, set by tests/interop/run_with_sluiced.py).
set -euo pipefail
build="$1"
src="$2"
extra_cflags="${3:-}"   # e.g. -fsanitize=address,undefined when the SDK was built with them
prefix="$(mktemp -d /tmp/sluice-prefix-XXXXXX)"
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig"
flags="$(pkg-config --cflags --libs sluice)"
cc -std=c11 -Wall -Wextra -Werror $extra_cflags "$src/examples/sdk_example.c" $flags -o "$prefix/sdk_example"
libdir="$(pkg-config --variable=libdir sluice)"
out="$(LD_LIBRARY_PATH="$libdir" "$prefix/sdk_example" "$SLUICE_TARGET" m-a)"
echo "$out"
grep -q "What is 2 + 2? -> echo\[up-a\]" <<<"$out"
grep -q "local:t.* -> echo\[up-a\]" <<<"$out"
grep -q "4 prompts, 4 succeeded" <<<"$out"
echo "sdk install example: ok"
