#!/usr/bin/env bash
# Run every benchmark: mproc vs raw C vs Python's multiprocessing, each line
# measured in one run. Usage: bench/run.sh [filter-substring]
# Builds in build-bench (Release). Run on a quiet machine: figures are ratios
# measured side by side, but 2-core VMs are noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DMPROC_BUILD_TESTS=OFF >/dev/null
cmake --build build-bench -j "$(nproc)" >/dev/null
filter=${1:-}
for b in build-bench/bench/bench_*; do
  [ -x "$b" ] || continue
  case "$(basename "$b")" in *"$filter"*) ;; *) continue ;; esac
  echo "== $(basename "$b")"
  "$b"
done
