#!/usr/bin/env bash
# CI step for the mproc command: the man page renders without warnings and
# documents every long option that --help lists.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=build/cli/mproc
if [ ! -x "$bin" ]; then
  echo "cli.sh: $bin not built; skipping"
  exit 0
fi
if command -v groff >/dev/null 2>&1; then
  groff -man -Tutf8 -ww -z docs/mproc.1
fi
missing=0
for opt in $("$bin" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
  pat=${opt//-/\\-}
  if ! grep -qF -- "$pat" docs/mproc.1; then
    echo "docs/mproc.1 does not document $opt"
    missing=1
  fi
done
[ "$missing" = 0 ] && echo "cli.sh: man page covers every option"
exit "$missing"
