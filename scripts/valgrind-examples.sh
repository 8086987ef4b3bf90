#!/usr/bin/env bash
# Run every built example under valgrind (memcheck): any invalid access,
# uninitialised use or definite leak in the parent or a forked child fails.
# Usage: scripts/valgrind-examples.sh [build-dir]
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
fail=0
for src in examples/*.c; do
  name=$(basename "$src" .c)
  bin="$build/examples/$name"
  [ -x "$bin" ] || continue
  log=$(mktemp)
  # MPROC_EXAMPLE_QUICK and MPROC_HEAVY_* ask examples with long CPU work to
  # scale it down (valgrind runs code ~50x slower); their logic is unchanged.
  if (cd "$(mktemp -d)" && MPROC_EXAMPLE_QUICK=1 MPROC_HEAVY_N=60 MPROC_HEAVY_TASKS=4 \
        timeout -k 10 600 valgrind -q \
        --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
        --trace-children=yes --child-silent-after-fork=no \
        "$OLDPWD/$bin" >/dev/null 2>"$log"); then
    echo "valgrind ok: $name"
  else
    rc=$?
    echo "valgrind FAILED ($rc): $name"
    head -50 "$log"
    fail=1
  fi
  rm -f "$log"
done
exit $fail
