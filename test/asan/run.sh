#!/usr/bin/env bash
# Runs the whole vitest suite against an AddressSanitizer + UBSan build of the
# addon, then restores the normal build. Node itself is not instrumented, so
# the sanitizer runtimes are preloaded; leak detection is off because Node
# does not free everything at exit (leaks are checked by test:valgrind).
set -euo pipefail
cd "$(dirname "$0")/../.."

restore() {
  echo "== restoring the normal build"
  npx node-gyp rebuild >/dev/null 2>&1
}
trap restore EXIT

echo "== building the addon with -fsanitize=address,undefined"
npx node-gyp rebuild --aio_sanitize=true >/dev/null 2>&1

asan=$(g++ -print-file-name=libasan.so)
ubsan=$(g++ -print-file-name=libubsan.so)
export LD_PRELOAD="$asan:$ubsan"
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:verify_asan_link_order=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

echo "== vitest under the sanitizers"
npx vitest run "$@"
