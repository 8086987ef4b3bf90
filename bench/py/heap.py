"""Python baseline for bench_heap: multiprocessing's own shared-memory heap
(multiprocessing.heap.BufferWrapper, the allocator behind RawArray, RawValue,
Array and Value). Same access pattern as the C benchmark: a window of live
blocks, each step frees one and allocates another.

usage: heap.py small|large|huge ITER [NPROC]   prints ns per alloc+free pair
(large: 1 MiB blocks, huge: 64 MiB blocks, every page touched)
(with NPROC processes running at once: wall time / all pairs). After fork
each process has its own multiprocessing heap (it re-initialises on a pid
change), so the 2-process figure has no cross-process contention."""
import os
import sys
import time
from multiprocessing import heap

WINDOW = 1024


def loop(kind, n, seed):
    x = seed
    win = [None] * WINDOW
    for i in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        k = i & (WINDOW - 1)
        win[k] = None  # frees the block (Finalize callback)
        if kind == "small":
            size = 16 + (x >> 33) % 497
            win[k] = heap.BufferWrapper(size)
        else:
            size = (1 << 20) if kind == "large" else (64 << 20)
            b = heap.BufferWrapper(size)
            mv = b.create_memoryview()
            for off in range(0, size, 4096):
                mv[off] = 1
            del mv
            b = None


def main():
    kind, n = sys.argv[1], int(sys.argv[2])
    nproc = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    t0 = time.perf_counter()
    if nproc == 1:
        loop(kind, n, 1)
    else:
        pids = []
        for p in range(nproc):
            pid = os.fork()
            if pid == 0:
                loop(kind, n, p + 1)
                os._exit(0)
            pids.append(pid)
        for pid in pids:
            os.waitpid(pid, 0)
    dt = time.perf_counter() - t0
    print(dt * 1e9 / (n * nproc))


if __name__ == "__main__":
    main()
