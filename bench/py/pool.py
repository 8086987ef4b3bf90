"""Python baselines for bench_pool.c: prints one number (the last line).

usage: pool.py MODE [N] [CHUNKSIZE]
  map       Pool(2).map(square, range(N), chunksize)          -> tasks/s
  cfmap     ProcessPoolExecutor(2).map(square, range(N), chunksize) -> tasks/s
  apply     Pool(2).apply(ident, (1,)) round trip, N times      -> microseconds
  heavy     Pool(2).map(heavy_c_like, range(80)) vs serial      -> speed-up
  bigmap    Pool(2).map(len, 64 chunks of 4 MiB)                -> bytes/s
  create M  Pool(2) with start method M (fork, forkserver, spawn) until
            the first apply returned, median of 3            -> seconds
Chunksize 0 means Python's default.
"""
import os
import sys

# Keep bench/py off the import path so multiprocessing imports only the
# standard library's modules, never a sibling script.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import time  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
from multiprocessing import Pool  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402


def square(x):
    return x * x


def ident(x):
    return x


def heavy(n):
    # the same arithmetic as bench_pool.c's heavy(): pow over an n x n grid
    s = 0.0
    for x in range(1, n):
        for y in range(1, n):
            s += math.pow(x * 1e-3, y * 1e-3)
    return s


def main():
    mode = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else 0
    cs = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    if mode == "map":
        with Pool(2) as p:
            p.map(square, range(100))  # warm the workers
            t = time.perf_counter()
            r = p.map(square, range(n), chunksize=cs or None)
            dt = time.perf_counter() - t
        assert r[-1] == (n - 1) ** 2
        print(n / dt)
    elif mode == "cfmap":
        with ProcessPoolExecutor(2) as ex:
            list(ex.map(square, range(100)))
            t = time.perf_counter()
            r = list(ex.map(square, range(n), chunksize=cs or 1))
            dt = time.perf_counter() - t
        assert r[-1] == (n - 1) ** 2
        print(n / dt)
    elif mode == "apply":
        with Pool(2) as p:
            for _ in range(100):
                p.apply(ident, (1,))
            runs = []
            for _ in range(5):
                t = time.perf_counter()
                for _ in range(n):
                    p.apply(ident, (1,))
                runs.append((time.perf_counter() - t) / n * 1e6)
        print(sorted(runs)[2])
    elif mode == "bigmap":
        chunks = [bytes(4 << 20) for _ in range(64)]
        with Pool(2) as p:
            p.map(len, chunks[:2])
            t = time.perf_counter()
            r = p.map(len, chunks, chunksize=1)
            dt = time.perf_counter() - t
        assert sum(r) == 64 * (4 << 20)
        print(sum(r) / dt)
    elif mode == "create":
        ctx = multiprocessing.get_context(sys.argv[2])
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            with ctx.Pool(2) as p:
                p.apply(ident, (1,))
                runs.append(time.perf_counter() - t)
        print(sorted(runs)[1])
    else:
        raise SystemExit("unknown mode")


if __name__ == "__main__":
    main()
