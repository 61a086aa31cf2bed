#!/usr/bin/env bash
# Packs posix-aio and installs the tarball into empty projects, offline, the
# way a user would, then uses it from ESM, CommonJS and TypeScript:
#
#   (a) prebuild path: PATH holds only node and npm (no compiler, make or
#       python), so the install must load prebuilds/<platform>-<arch>/, the
#       file tagged with this machine's libc;
#   (b) source path: the same tarball without prebuilds/, normal PATH, so
#       npm compiles the addon with node-gyp at install time.
#
# The build runs in a staging copy of the working tree (its non-ignored
# files), so the checkout's own build/, dist/ and prebuilds/ are not touched.
# Everything lives under one temporary directory, removed on exit (set
# POSIX_AIO_KEEP_TMP=1 to keep it). Exits non-zero on any failure.
#
# POSIX_AIO_PREBUILDS=<dir>: ship that prebuilds/ directory instead of running
# `npm run prebuild` (test/portability/run.sh builds them once for both).
# POSIX_AIO_TARBALL_OUT=<path>: also copy the packed tarball there.
#
#   npm run test:package        (or: bash test/package/consumer.sh)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/posix-aio-consumer.XXXXXX")
cleanup() {
  if [[ "${POSIX_AIO_KEEP_TMP:-}" == 1 ]]; then
    echo "kept $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
mkdir -p "$work/logs"

# Runs a command with its output in a log; shows the log's tail on failure.
step() {
  local name=$1
  shift
  local log="$work/logs/$name.log"
  if "$@" >"$log" 2>&1; then
    echo "  ok  $name"
  else
    local rc=$?
    echo "  FAIL $name (exit $rc): $*"
    tail -n 40 "$log" | sed 's/^/       | /'
    exit 1
  fi
}

fail() {
  echo "  FAIL $*"
  exit 1
}

platform=$(node -p 'process.platform + "-" + process.arch')
echo "== posix-aio consumer test: node $(node --version), npm $(npm --version), $platform"

# --- stage: a copy of the working tree without ignored files ---------------
stage="$work/stage"
mkdir -p "$stage"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (
    cd "$root"
    git ls-files -z --cached --others --exclude-standard |
      while IFS= read -r -d '' f; do if [[ -e "$f" ]]; then printf '%s\0' "$f"; fi; done |
      tar --null -T - -cf - | tar -C "$stage" -xf -
  )
else
  tar -C "$root" --exclude=./node_modules --exclude=./build --exclude=./dist --exclude=./prebuilds \
    --exclude=./docs/api -cf - . | tar -C "$stage" -xf -
fi
ln -s "$root/node_modules" "$stage/node_modules"

echo "== build (staging copy)"
(
  cd "$stage"
  step build-ts npm run build:ts
  if [[ -n "${POSIX_AIO_PREBUILDS:-}" ]]; then
    rm -rf prebuilds
    cp -r "$POSIX_AIO_PREBUILDS" prebuilds
    echo "  ok  prebuilds copied from $POSIX_AIO_PREBUILDS"
  else
    # The checkout's tool cache (Zig and its built runtimes), not the copy's.
    step prebuild env POSIX_AIO_TOOLS="${POSIX_AIO_TOOLS:-$root/.cache/tools}" npm run prebuild
  fi
)
# node-gyp-build's rule: musl on Alpine, glibc elsewhere.
libc=glibc
[[ ! -e /etc/alpine-release ]] || libc=musl
prebuilt="$stage/prebuilds/$platform/posix-aio.$libc.node"
[[ -f "$prebuilt" ]] || fail "no prebuilds/$platform/posix-aio.$libc.node (prebuilds: $(cd "$stage" && find prebuilds -name '*.node' | tr '\n' ' '))"
echo "  ok  prebuilds: $(cd "$stage" && find prebuilds -name '*.node' | sort | tr '\n' ' ')"

echo "== npm pack"
mkdir -p "$work/pack"
(cd "$stage" && step pack npm pack --pack-destination "$work/pack")
tgz=$(find "$work/pack" -name 'posix-aio-*.tgz' -print -quit)
[[ -n "$tgz" ]] || fail "npm pack made no tarball"
tar -tzf "$tgz" | sort >"$work/contents.txt"
echo "  ok  $(basename "$tgz"): $(wc -l <"$work/contents.txt") files, $(du -k "$tgz" | cut -f1) KiB"

# What ships, and what must not.
for f in package/package.json package/README.md package/CHANGELOG.md package/LICENSE package/binding.gyp \
  package/dist/index.js package/dist/index.d.ts package/native/addon.cc \
  $(cd "$stage" && find prebuilds -name '*.node' | sed 's|^|package/|'); do
  grep -qxF "$f" "$work/contents.txt" || fail "tarball lacks $f"
done
if [[ -n "${POSIX_AIO_TARBALL_OUT:-}" ]]; then cp "$tgz" "$POSIX_AIO_TARBALL_OUT"; fi
if grep -E '^package/(src|test|bench|examples|build|node_modules|docs|\.ci)/|\.map$|^package/tsconfig' \
  "$work/contents.txt" >"$work/extra.txt"; then
  fail "tarball ships files it should not: $(head -n 5 "$work/extra.txt" | tr '\n' ' ')"
fi
echo "  ok  contents: dist, native, binding.gyp, prebuilds, README, CHANGELOG, LICENSE; no sources of tests or maps"

# The source-path tarball: the same contents without prebuilds/.
mkdir -p "$work/nopre"
tar -C "$work/nopre" -xzf "$tgz"
rm -rf "$work/nopre/package/prebuilds"
tgz_src="$work/pack/posix-aio-no-prebuilds.tgz"
tar -C "$work/nopre" -czf "$tgz_src" package

# --- consumer scripts -------------------------------------------------------
write_consumer() {
  local dir=$1
  mkdir -p "$dir"
  cat >"$dir/package.json" <<'EOF'
{ "name": "posix-aio-consumer", "version": "1.0.0", "private": true }
EOF
  cat >"$dir/esm.mjs" <<'EOF'
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AioError, open } from 'posix-aio';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posix-aio-esm-'));
try {
  const p = path.join(dir, 'data.bin');
  const data = randomBytes(8192 + 17);
  const file = await open(p, 'w+');
  const { bytesWritten: written } = await file.write(data, 0, data.length, 0);
  const back = Buffer.alloc(data.length);
  const { bytesRead: read } = await file.read(back, 0, back.length, 0);
  await file.close();
  if (written !== data.length || read !== data.length) throw new Error(`wrote ${written}, read ${read}`);
  if (!back.equals(data) || !fs.readFileSync(p).equals(data)) throw new Error('bytes differ');
  const err = await open(path.join(dir, 'missing'), 'r').catch((e) => e);
  if (err?.code !== 'ENOENT') throw new Error(`expected ENOENT, got ${err}`);
  if (!(AioError.prototype instanceof Error)) throw new Error('AioError is not an Error');
  console.log(`esm: wrote and read back ${read} bytes`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
EOF
  cat >"$dir/cjs.cjs" <<'EOF'
const { randomBytes } = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { open } = require('posix-aio');

(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posix-aio-cjs-'));
  try {
    const p = path.join(dir, 'data.bin');
    const data = randomBytes(4096 + 3);
    const file = await open(p, 'w+');
    const { bytesWritten: written } = await file.write(data, { position: 0 });
    const back = Buffer.alloc(data.length);
    const { bytesRead: read } = await file.read(back, { position: 0 });
    await file.close();
    if (written !== data.length || read !== data.length) throw new Error(`wrote ${written}, read ${read}`);
    if (!back.equals(data) || !fs.readFileSync(p).equals(data)) throw new Error('bytes differ');
    console.log(`cjs: wrote and read back ${read} bytes`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
EOF
  cat >"$dir/which.cjs" <<'EOF'
// Prints the addon file node-gyp-build picks for the installed package.
const path = require('node:path');
const { createRequire } = require('node:module');
const pkg = path.dirname(require.resolve('posix-aio/package.json'));
const gypBuild = createRequire(path.join(pkg, 'package.json'))('node-gyp-build');
console.log(path.relative(pkg, gypBuild.resolve(pkg)));
EOF
  cat >"$dir/types.mts" <<'EOF'
import { type AioFile, AioError, open } from 'posix-aio';

const file: AioFile = await open('x', 'r');
const { bytesRead: n } = await file.read(new Uint8Array(1), 0, 1, 0);
const codes: string[] = [new AioError(9, 'aio_read').code];
// @ts-expect-error a number is neither a buffer nor options
await file.read(1);
export { codes, n };
EOF
}

# Installs the tarball offline; when the npm cache lacks a dependency
# (ENOTCACHED), retries with --prefer-offline and says so.
# INSTALL_PATH, when set, is the PATH npm and the install scripts get.
install_tgz() {
  local name=$1 tarball=$2
  if PATH="${INSTALL_PATH:-$PATH}" npm install --offline --no-audit --no-fund --ignore-scripts=false "$tarball" >"$work/logs/$name.log" 2>&1; then
    echo "  ok  $name: npm install --offline"
  elif grep -q ENOTCACHED "$work/logs/$name.log"; then
    echo "  WARN $name: the npm cache lacks a dependency; retrying with --prefer-offline (network allowed)"
    grep ENOTCACHED "$work/logs/$name.log" | head -n 3 | sed 's/^/       | /'
    step "$name-prefer-offline" env PATH="${INSTALL_PATH:-$PATH}" npm install --prefer-offline --no-audit --no-fund --ignore-scripts=false "$tarball"
  else
    echo "  FAIL $name: npm install --offline $tarball"
    tail -n 40 "$work/logs/$name.log" | sed 's/^/       | /'
    exit 1
  fi
}

# Runs the CommonJS consumer; Node before 20.19 needs a flag to require ESM.
run_cjs() {
  local name=$1
  if node cjs.cjs >"$work/logs/$name.log" 2>&1; then
    echo "  ok  $name: $(tail -n 1 "$work/logs/$name.log")"
  elif grep -q ERR_REQUIRE_ESM "$work/logs/$name.log"; then
    echo "  note $name: require(esm) needs --experimental-require-module on node $(node --version)"
    step "$name-flag" node --experimental-require-module cjs.cjs
  else
    step "$name" node cjs.cjs
  fi
}

run_esm() {
  local name=$1
  step "$name" node esm.mjs
  echo "       $(tail -n 1 "$work/logs/$name.log")"
}

check_types() {
  local name=$1
  step "$name" "$root/node_modules/.bin/tsc" --noEmit --strict --skipLibCheck --target es2022 --module nodenext \
    --moduleResolution nodenext --types node --typeRoots "$root/node_modules/@types" types.mts
}

# --- (a) prebuild path: no compiler on PATH ----------------------------------
echo "== (a) prebuild path: install with only node, npm and sh on PATH"
nocc="$work/nocc-bin"
mkdir -p "$nocc"
# npm runs install scripts with `sh -c`.
for tool in node npm sh; do ln -s "$(command -v "$tool")" "$nocc/$tool"; done
for tool in cc c++ gcc g++ clang make python3; do
  if PATH="$nocc" command -v "$tool" >/dev/null 2>&1; then fail "$tool is still on the restricted PATH"; fi
done
write_consumer "$work/a"
(
  cd "$work/a"
  INSTALL_PATH="$nocc" install_tgz install-a "$tgz"
  [[ ! -e node_modules/posix-aio/build ]] || fail "install compiled the addon instead of using the prebuild"
  picked=$(node which.cjs)
  [[ "$picked" == "prebuilds/$platform/posix-aio.$libc.node" ]] || fail "node-gyp-build picked $picked, not the $libc prebuild"
  echo "  ok  addon: $picked"
  run_esm esm-a
  run_cjs cjs-a
)
(cd "$work/a" && check_types types-a)

# --- (b) source path: no prebuilds, compiler on PATH ----------------------------
echo "== (b) source path: install without prebuilds/, compiled by node-gyp"
write_consumer "$work/b"
(
  cd "$work/b"
  install_tgz install-b "$tgz_src"
  [[ ! -e node_modules/posix-aio/prebuilds ]] || fail "the source-path tarball still has prebuilds/"
  picked=$(node which.cjs)
  [[ "$picked" == build/Release/* ]] || fail "node-gyp-build picked $picked, not a fresh build"
  echo "  ok  addon: $picked"
  run_esm esm-b
  run_cjs cjs-b
)

echo "== consumer test passed"
