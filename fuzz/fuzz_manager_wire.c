/*
 * fuzz_manager_wire.c - libFuzzer harness for the manager server's request
 * path: wire decoding (src/manager/wire.c) and dispatch of every op against
 * a live object table (src/manager/server.c), without sockets.
 *
 * Build and run (scripts/ci.d/fuzz-manager.sh does this):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *     -Iinclude -Isrc <every src/LAYER/FILE.c> fuzz/fuzz_manager_wire.c \
 *     -lsodium -lpthread
 *   ./a.out -max_total_time=30 corpus/
 * Any crash, sanitizer report, leak, or a reply that does not decode, is a
 * finding.
 */
#include <stddef.h>
#include <stdint.h>

int mproc__mgr_fuzz_one(const void *buf, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mproc__mgr_fuzz_one(data, size);
  return 0;
}
