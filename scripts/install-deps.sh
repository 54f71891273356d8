#!/usr/bin/env bash
# Installs everything sluice needs on Debian 12: the packages in deploy/packages.txt (the one
# list; comments and blank lines ignored) and the Node interop client's npm packages.
# With --lint, also what scripts/lint.sh needs: deploy/packages-lint.txt (kubectl with
# kustomize, yamllint) and the npm tools in deploy/tools (npm ci, from the lockfile).
# Idempotent. Uses sudo when not root.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
lint=0
case "${1:-}" in
  "") ;;
  --lint) lint=1 ;;
  *) echo "usage: $0 [--lint]" >&2; exit 2 ;;
esac
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

lists=("$root/deploy/packages.txt")
[ "$lint" -eq 0 ] || lists+=("$root/deploy/packages-lint.txt")
mapfile -t pkgs < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "${lists[@]}" | grep -v '^$')
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
# Likewise any working kubectl (kubectl kustomize) stands in for Debian's kubernetes-client.
if command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1; then
  filtered=()
  for p in "${missing[@]}"; do [ "$p" = kubernetes-client ] || filtered+=("$p"); done
  missing=("${filtered[@]}")
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm ci in dir when its node_modules is missing or older than its package-lock.json.
npm_ci() {
  local dir="$1"
  [ -f "$dir/package-lock.json" ] || return 0
  if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
     [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "install-deps: npm ci (${dir#"$root"/})"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
npm_ci "$root/tests/interop/node"
# deploy/tools: kubernetes-models, dockerfilelint, yaml - pinned by package-lock.json.
[ "$lint" -eq 0 ] || npm_ci "$root/deploy/tools"

