#!/usr/bin/env bash
# Run one example and check its output with tests/examples/<name>.check,
# a script that reads the example's stdout on stdin (and gets the exit code
# as $1) and exits non-zero with a message when the output is wrong.
set -uo pipefail
name=$1 bin=$2
check="$(dirname "$0")/examples/$name.check"
if [ ! -x "$check" ]; then
  echo "no output check for example $name ($check)" >&2
  exit 1
fi
# Each example runs in its own scratch directory (some write files there),
# removed afterwards.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
out=$(cd "$scratch" && timeout 100 "$bin" 2>&1)
rc=$?
printf '%s\n' "$out" | "$check" "$rc"
