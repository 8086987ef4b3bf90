#!/usr/bin/env bash
# Short libFuzzer run over the manager server's request path (decoder and
# dispatcher), seeded with valid requests. FUZZ_SECONDS (default 30) sets
# the length; a crash, sanitizer report or leak fails CI.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-30}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE \
  -std=gnu11 -Iinclude -Isrc src/*/*.c fuzz/fuzz_manager_wire.c \
  $(pkg-config --cflags --libs libsodium) -lpthread -o "$work/fuzz_manager_wire"
mkdir -p "$work/corpus"
# Seeds: one well-formed request per op family (format in docs/manager.md).
python3 - "$work/corpus" <<'PY'
import struct, sys, os
out = sys.argv[1]
def field(t, b): return struct.pack('<BBHI', t, 0, 0, len(b)) + b
def i64(v): return field(2, struct.pack('<q', v))
def f64(v): return field(3, struct.pack('<d', v))
def by(b): return field(1, b)
def nm(b): return field(4, b)
def msg(op, *fs):
    p = b''.join(fs)
    return struct.pack('<BBHIII', 1, 1, op, 7, len(fs), len(p)) + p
h0 = 0  # first object's handle (slot 0, generation 0)
seeds = [msg(0x01), msg(0x02, i64(1), nm(b'd'), i64(0)), msg(0x02, i64(2), nm(b'l'), i64(0)),
         msg(0x02, i64(4), nm(b'q'), i64(2)), msg(0x02, i64(5), nm(b'k'), i64(0)),
         msg(0x02, i64(6), nm(b'e'), i64(0)), msg(0x02, i64(7), nm(b'v'), i64(0)),
         msg(0x20, i64(h0), by(b'key'), by(b'value')), msg(0x21, i64(h0), by(b'key')),
         msg(0x26, i64(h0)), msg(0x31, i64(1), by(b'a'), by(b'b')), msg(0x34, i64(1), i64(-1), i64(0)),
         msg(0x40, i64(2), by(b'job'), f64(0)), msg(0x41, i64(2), f64(0), i64(-1)),
         msg(0x50, i64(3), f64(-1)), msg(0x51, i64(3)), msg(0x63, i64(4), f64(0)),
         msg(0x71, i64(5), by(b'x' * 8)), msg(0x05, nm(b'op'), by(b'')), msg(0x03, nm(b'd'))]
for i, s in enumerate(seeds):
    open(os.path.join(out, 'seed%02d' % i), 'wb').write(s)
PY
"$work/fuzz_manager_wire" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 \
  "$work/corpus" 2>&1 | tail -15
