#!/usr/bin/env bash
# Usage: deploy/runtime-deps.sh ROOT
# Prints, one per line and sorted, the Debian packages that own the shared libraries the
# ELF files under ROOT link (as ldd resolves them), leaving out libraries that are under
# ROOT itself. deploy/Containerfile runs it on the installed tree in the build stage so the
# runtime stage installs exactly what sluiced, sluice and libsluice link: the package list
# stays deploy/packages.txt, with no second hand-kept runtime list. Fails, naming them,
# when a library is not found or belongs to no package.
set -euo pipefail
root="$(cd "${1:?usage: $0 ROOT}" && pwd)"

is_elf() { [ "$(head -c 4 "$1" | od -An -c | tr -d ' ')" = '177ELF' ]; }

# Libraries installed under ROOT (libsluice) resolve from there, not from the system.
libpath="$(find "$root" -type f -name '*.so*' -printf '%h\n' | sort -u | paste -sd:)"

# "pkg" for a library path. Debian 12 is /usr-merged but dpkg records files under either
# /lib or /usr/lib, so try the path, its target, and the other spelling of each.
owner() {
  local p real c out
  p="$1"
  real="$(readlink -f "$p")"
  for c in "$p" "$real" "/usr${p#/usr}" "${p#/usr}" "/usr${real#/usr}" "${real#/usr}"; do
    out="$(dpkg -S "$c" 2>/dev/null | grep -v '^diversion ' | head -n 1)" || true
    if [ -n "$out" ]; then
      # "libfoo1:amd64: /usr/lib/..." or "pkg-a:amd64, pkg-b:amd64: /path"
      printf '%s\n' "${out%%: /*}" | tr ',' '\n' | sed -e 's/^ *//' -e 's/:.*//'
      return 0
    fi
  done
  echo "runtime-deps: no Debian package owns $p" >&2
  return 1
}

libs="$(mktemp)"
trap 'rm -f "$libs"' EXIT
while IFS= read -r -d '' f; do
  is_elf "$f" || continue
  out="$(LD_LIBRARY_PATH="$libpath" ldd "$f" 2>&1)" || continue # static or not loadable
  if grep -q 'not found' <<<"$out"; then
    echo "runtime-deps: $f: $(grep 'not found' <<<"$out" | tr -s ' \t\n' ' ')" >&2
    exit 1
  fi
  # "libx.so.1 => /lib/.../libx.so.1 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
  awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$out" >>"$libs"
done < <(find "$root" -type f \( -perm -u+x -o -name '*.so*' \) -print0)

sort -u "$libs" | while IFS= read -r lib; do
  case "$lib" in "$root"/*) continue ;; esac
  owner "$lib"
done | sort -u
