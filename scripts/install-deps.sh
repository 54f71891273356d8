#!/usr/bin/env bash
# Installs everything sluice needs on Debian 12: the packages in deploy/packages.txt (the one
# list; comments and blank lines ignored) and the Node interop client's npm packages.
# Idempotent. Uses sudo when not root.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

mapfile -t pkgs < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$root/deploy/packages.txt" | grep -v '^$')
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm may come from outside Debian (e.g. a preinstalled Node.js): accept working ones.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do [ "$p" = nodejs ] || [ "$p" = npm ] || filtered+=("$p"); done
  missing=("${filtered[@]}")
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ -f "$root/tests/interop/node/package.json" ] && [ ! -d "$root/tests/interop/node/node_modules" ]; then
  echo "install-deps: npm ci (tests/interop/node)"
  (cd "$root/tests/interop/node" && npm ci --no-audit --no-fund --loglevel=error)
fi
