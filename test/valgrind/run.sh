#!/usr/bin/env bash
# Runs test/valgrind/smoke.mjs (a few thousand operations of each kind
# through dist/) under valgrind's memcheck: any invalid read or write, use of
# uninitialised memory in the addon, or definite leak fails the run.
# node.supp hides V8's own noise (its conservative stack scan).
# --fair-sched=yes: without it valgrind can starve the reaper thread for
# seconds at a time (the aio_suspend section then takes minutes).
# About 75 s on 2 cores (valgrind runs Node 50 times slower or so).
# SMOKE_ONLY=cb,file,... runs some sections only (see smoke.mjs).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v valgrind >/dev/null 2>&1; then
  echo "valgrind is not installed (apt-get install valgrind)" >&2
  exit 1
fi

echo "== building dist/"
npx tsc -p tsconfig.build.json

echo "== smoke test under valgrind"
start=$(date +%s)
valgrind \
  --fair-sched=yes \
  --error-exitcode=1 \
  --leak-check=full \
  --errors-for-leak-kinds=definite \
  --show-leak-kinds=definite \
  --suppressions=test/valgrind/node.supp \
  --num-callers=30 \
  node --expose-gc test/valgrind/smoke.mjs "$@"
echo "== valgrind: clean ($(( $(date +%s) - start ))s)"
