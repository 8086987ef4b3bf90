#!/usr/bin/env bash
# Build mproc and run the demo: heavy(500) x 80, serially, in 80 processes
# and with a pool, printing the wall times and speed-ups.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target heavy
./build/examples/heavy
