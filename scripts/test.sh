#!/usr/bin/env bash
# Build mproc with warnings as errors and run the whole test suite.
# Usage: scripts/test.sh [build-dir] [extra cmake args...]
#   MPROC_TEST_LABEL_EXCLUDE=slow to skip the slow chaos tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build=${1:-build}
shift || true
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPROC_WERROR=ON "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
args=(--output-on-failure -j "$(nproc)")
[ -n "${MPROC_TEST_LABEL_EXCLUDE:-}" ] && args+=(-LE "$MPROC_TEST_LABEL_EXCLUDE")
cd "$build" && ctest "${args[@]}"
