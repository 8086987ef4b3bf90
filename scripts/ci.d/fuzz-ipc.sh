#!/usr/bin/env bash
# Short libFuzzer run over the ipc framing and handshake harnesses (~60 s in
# all): builds the library with coverage + ASan/UBSan under clang in
# build-fuzz, seeds a corpus, runs each harness for MPROC_FUZZ_SECONDS
# (default 20). Any crash or sanitizer report fails. Longer runs: set
# MPROC_FUZZ_SECONDS.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${MPROC_FUZZ_SECONDS:-20}
CC=clang cmake -S . -B build-fuzz -DMPROC_BUILD_FUZZ=ON -DMPROC_BUILD_TESTS=OFF \
  -DMPROC_BUILD_EXAMPLES=OFF -DMPROC_BUILD_BENCH=OFF -DMPROC_BUILD_CLI=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target fuzz_frame fuzz_handshake >/dev/null
corpus=build-fuzz/corpus
mkdir -p "$corpus/frame" "$corpus/handshake"
# Seeds: a few well-formed streams and the handshake's messages.
printf '\x00\x00\x00\x00\x05hello\x00\x00\x00\x00' >"$corpus/frame/two"
printf '\x0b\xff\xff\xff\xff\x00\x00\x00\x01\x00\x00\x00\x00' >"$corpus/frame/ext"
printf '\x02\x00\x00\x04\x00abc' >"$corpus/frame/cut"
printf '\x00\x00\x00\x00\x2b#CHALLENGE#0123456789abcdef0123456789abcdef\x00\x00\x00\x09#WELCOME#' \
  >"$corpus/handshake/client"
printf '\x01\x00\x00\x00\x200123456789abcdef0123456789abcdef' >"$corpus/handshake/server"
export ASAN_OPTIONS=detect_leaks=1
for h in frame handshake; do
  echo "fuzz_$h: ${secs}s"
  log=build-fuzz/fuzz_$h.log
  rc=0
  build-fuzz/fuzz/fuzz_$h -max_total_time="$secs" -max_len=4096 -timeout=10 \
    -print_final_stats=1 "$corpus/$h" >"$log" 2>&1 || rc=$?
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY)" "$log" || true
  if [ "$rc" -ne 0 ]; then
    echo "fuzz_$h FAILED (exit $rc); log: $log" >&2
    tail -40 "$log" >&2
    exit 1
  fi
done
