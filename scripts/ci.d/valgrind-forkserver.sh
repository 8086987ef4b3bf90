#!/usr/bin/env bash
# CI step: the forkserver tests under valgrind (memcheck). valgrind does not
# know pidfd_open, so this also runs the whole no-pidfd path for real: any
# invalid access, uninitialised use or definite leak in the requester, the
# server, its spare or a child fails. Each case runs in its own process, as
# under ctest (some cases set fd limits on the server, which interferes
# with the fds valgrind keeps for itself when earlier cases ran first).
set -uo pipefail
cd "$(dirname "$0")/../.."
bin=build/tests/test_process_forkserver
if [ ! -x "$bin" ]; then
  echo "valgrind-forkserver.sh: $bin not built; skipping"
  exit 0
fi
if ! command -v valgrind >/dev/null 2>&1; then
  echo "valgrind-forkserver.sh: valgrind missing (scripts/install-deps.sh installs it)"
  exit 1
fi
fail=0
for t in $(grep -oE 'MPROC_TEST\([a-z_0-9]+\)' tests/test_process_forkserver.c | sed 's/MPROC_TEST(//; s/)//'); do
  log=$(mktemp)
  if timeout -k 10 300 valgrind -q --error-exitcode=99 --leak-check=full \
       --errors-for-leak-kinds=definite --trace-children=yes --child-silent-after-fork=no \
       "$bin" "$t" >"$log" 2>&1; then
    echo "valgrind ok: forkserver $t"
  else
    echo "valgrind FAILED ($?): forkserver $t"
    grep -v -e 'unhandled amd64-linux syscall' -e 'your own handler' -e README_MISSING \
      -e 'consider this a bug' -e 'valgrind.org' "$log" | head -60
    fail=1
  fi
  rm -f "$log"
done
exit $fail
