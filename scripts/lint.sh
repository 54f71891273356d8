#!/usr/bin/env bash
# Offline checks of the deployment files and the C style. Run from anywhere:
#   scripts/lint.sh [--no-install] [--no-image] [--sluiced BIN]
#
#   k8s-render     kubectl kustomize deploy/k8s
#   k8s-validate   every rendered object against the Kubernetes schemas (deploy/tools/
#                  validate.js, npm kubernetes-models); kinds it does not know are errors
#   consistency    deploy/sluiced.sample.json and deploy/CONFIG.md list exactly the keys of
#                  server/common/config.c; deploy/k8s agrees with itself (deploy/tools/
#                  consistency.js)
#   yamllint       deploy/ with deploy/.yamllint (warnings fail too)
#   dockerfilelint deploy/Containerfile (any issue fails)
#   clang-format   --dry-run --Werror on every .c/.h under client/ server/ include/ tests/ examples/
#                  (no generated code, no node_modules); lists every offending file
#   check-config   sluiced --check-config on deploy/sluiced.sample.json and
#                  deploy/k8s/sluiced.json, when a built sluiced exists (--sluiced BIN,
#                  $SLUICED, or build/server/sluiced if newer than config.c); else skipped
#   image          buildah bud -f deploy/Containerfile, then sluiced --version and
#                  --check-config inside it; skipped, saying why, when buildah is missing,
#                  cannot run containers here, or cannot get the base images. --no-image or
#                  SLUICE_LINT_IMAGE=0 skip it; SLUICE_LINT_IMAGE_TIMEOUT (s, default 3600)
#
# Tools come from deploy/packages-lint.txt (Debian) and deploy/tools (npm ci); when some
# are missing this runs scripts/install-deps.sh --lint first, unless --no-install.
# Every check runs; exits 1 when any failed.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root" || exit 2

install=1
image="${SLUICE_LINT_IMAGE:-1}"
sluiced="${SLUICED:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --no-install) install=0 ;;
    --no-image) image=0 ;;
    --sluiced) sluiced="${2:?--sluiced needs a path}"; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "lint: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

tools="$root/deploy/tools"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# ---- tools --------------------------------------------------------------------------------
# Packages named in deploy/packages-lint.txt that are missing (kubernetes-client counts as
# present when any kubectl is on PATH), plus the commands from deploy/packages.txt we use.
missing_tools() {
  local p
  # Word splitting is the parsing: comments dropped, blank lines vanish.
  # shellcheck disable=SC2013
  for p in $(sed -e 's/#.*//' deploy/packages-lint.txt); do
    case "$p" in
      kubernetes-client) command -v kubectl >/dev/null || echo "$p" ;;
      *) dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
           echo "$p" ;;
    esac
  done
  for p in clang-format node npm; do command -v "$p" >/dev/null || echo "$p"; done
  if [ ! -f "$tools/node_modules/.package-lock.json" ] ||
     [ "$tools/package-lock.json" -nt "$tools/node_modules/.package-lock.json" ]; then
    echo "deploy/tools/node_modules"
  fi
}
missing="$(missing_tools | tr '\n' ' ')"
if [ -n "$missing" ] && [ "$install" -eq 1 ]; then
  echo "lint: installing ${missing}(scripts/install-deps.sh --lint)"
  "$root/scripts/install-deps.sh" --lint || exit 1
  missing="$(missing_tools | tr '\n' ' ')"
fi
if [ -n "$missing" ]; then
  echo "lint: missing ${missing}- run scripts/install-deps.sh --lint" >&2
  exit 1
fi

# ---- runner -------------------------------------------------------------------------------
failed=()
skipped=()
run() { # run NAME FUNCTION
  echo "=== lint: $1 ==="
  local rc=0
  "$2" || rc=$?
  case "$rc" in
    0) echo "--- $1: ok" ;;
    77) echo "--- $1: SKIPPED"; skipped+=("$1") ;;
    *) echo "--- $1: FAILED" >&2; failed+=("$1") ;;
  esac
}
skip() { echo "lint: $*"; return 77; }

# ---- checks -------------------------------------------------------------------------------
k8s_render() {
  kubectl kustomize deploy/k8s > "$tmp/k8s.yaml" || return 1
  echo "rendered $(grep -c '^kind: ' "$tmp/k8s.yaml") objects"
}

k8s_validate() {
  [ -s "$tmp/k8s.yaml" ] || { echo "nothing rendered"; return 1; }
  node "$tools/validate.js" "$tmp/k8s.yaml"
}

consistency() {
  node "$tools/consistency.js" "$root"
}

yaml_lint() {
  yamllint --strict -c deploy/.yamllint deploy
}

dockerfile_lint() {
  "$tools/node_modules/.bin/dockerfilelint" deploy/Containerfile
}

clang_format() {
  local f bad=() n=0
  while IFS= read -r -d '' f; do
    n=$((n + 1))
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
  done < <(find client server include tests examples \
             \( -name node_modules -o -name 'build*' -o -name generated \) -prune -o \
             -type f \( -name '*.c' -o -name '*.h' \) ! -name '*.pb-c.[ch]' -print0 | sort -z)
  if [ "${#bad[@]}" -gt 0 ]; then
    echo "clang-format: ${#bad[@]} of $n files are not formatted (clang-format -i FILE):"
    printf '  %s\n' "${bad[@]}"
    return 1
  fi
  echo "clang-format: $n files formatted"
}

check_config() {
  local bin="$sluiced"
  [ -n "$bin" ] || bin="$root/build/server/sluiced"
  [ -x "$bin" ] || skip "no sluiced binary yet ($bin): build first, or pass --sluiced BIN" ||
    return 77
  # A binary older than the key table may reject or miss keys: not this check's business.
  [ -n "$sluiced" ] || [ "$bin" -nt server/common/config.c ] ||
    skip "$bin is older than server/common/config.c (rebuild, or pass --sluiced BIN)" || return 77
  local cfg rc=0
  for cfg in deploy/sluiced.sample.json deploy/k8s/sluiced.json; do
    # A clean environment: SLUICE_* overrides must not mask errors in the files.
    env -i PATH="$PATH" "$bin" --config "$cfg" --check-config || rc=1
  done
  return "$rc"
}

# Base images named by deploy/Containerfile's FROM lines (stage references excluded).
base_images() {
  awk 'toupper($1) == "FROM" { img = $2; if (img ~ /^--/) img = $3; print img }' \
    deploy/Containerfile | while read -r img; do
      grep -qiE "^FROM .* AS ${img}\$" deploy/Containerfile || echo "$img"
    done | sort -u
}

image_build() {
  [ "$image" != 0 ] || skip "image build disabled (--no-image / SLUICE_LINT_IMAGE=0)" || return 77
  command -v buildah >/dev/null || skip "buildah is not installed: image not built" || return 77
  local out ctr img
  out="$(timeout 60 buildah info 2>&1)" ||
    skip "buildah cannot run here: $(tail -n 1 <<<"$out")" || return 77
  # Fetch (or find) the base images first: no registry access is an environment limit,
  # not a defect of the Containerfile.
  for img in $(base_images); do
    [[ "$img" == */* ]] || img="docker.io/library/$img"
    buildah inspect --type image "$img" >/dev/null 2>&1 && continue
    out="$(timeout 300 buildah pull -q "$img" 2>&1)" ||
      skip "base image $img is not available here: $(tail -n 1 <<<"$out")" || return 77
  done
  # Can this sandbox run a container at all? Try the OCI runtime, then chroot isolation
  # (no cgroups or namespaces of its own: works where crun cannot, e.g. hybrid cgroups).
  img="$(base_images | tail -n 1)"
  [[ "$img" == */* ]] || img="docker.io/library/$img"
  ctr="$(timeout 60 buildah from --pull=false "$img" 2>"$tmp/from.err")" ||
    skip "buildah cannot create containers here: $(tail -n 1 "$tmp/from.err")" || return 77
  local iso isolation=""
  for iso in ${BUILDAH_ISOLATION:-oci chroot}; do
    if out="$(BUILDAH_ISOLATION="$iso" timeout 60 buildah run "$ctr" -- true 2>&1)"; then
      isolation="$iso"
      break
    fi
    echo "buildah run with isolation $iso fails here: $(tail -n 1 <<<"$out")"
  done
  buildah rm "$ctr" >/dev/null 2>&1
  [ -n "$isolation" ] || skip "buildah cannot run containers here" || return 77
  export BUILDAH_ISOLATION="$isolation"

  echo "buildah bud -f deploy/Containerfile -t sluice:ci . (isolation $isolation; takes a while)"
  timeout "${SLUICE_LINT_IMAGE_TIMEOUT:-3600}" \
    buildah bud --layers -f deploy/Containerfile -t sluice:ci . > "$tmp/bud.log" 2>&1 || {
      tail -n 40 "$tmp/bud.log"
      echo "image build failed (full log above, last 40 lines)"
      return 1
    }
  tail -n 3 "$tmp/bud.log"
  ctr="$(buildah from sluice:ci)" || return 1
  local rc=0
  buildah run "$ctr" -- /usr/local/bin/sluiced --version || rc=1
  buildah run "$ctr" -- /usr/local/bin/sluiced --config /etc/sluice/sluiced.json \
    --check-config || rc=1
  out="$(buildah run "$ctr" -- id -u)" || rc=1
  [ "$out" = 10001 ] || { echo "image runs as uid '$out', want 10001"; rc=1; }
  buildah rm "$ctr" >/dev/null
  return "$rc"
}

run k8s-render k8s_render
run k8s-validate k8s_validate
run consistency consistency
run yamllint yaml_lint
run dockerfilelint dockerfile_lint
run clang-format clang_format
run check-config check_config
run image image_build

echo "=== lint: summary ==="
[ "${#skipped[@]}" -eq 0 ] || echo "skipped: ${skipped[*]}"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "lint FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "lint passed"
