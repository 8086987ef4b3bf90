# Python baseline for bench_queue.c: multiprocessing Queue / SimpleQueue
# throughput. Usage: mpqueue.py queue|simple SIZE N PAIRS. Prints msgs/s.
import sys

# Keep bench/py off the import path: multiprocessing must import only the
# standard library's modules, never a sibling script.
del sys.path[0]

import multiprocessing as mp  # noqa: E402
import time  # noqa: E402


def producer(q, n, size):
    m = b"x" * size
    for _ in range(n):
        q.put(m)


def consumer(q, n):
    for _ in range(n):
        q.get()


def main():
    kind, size, n, pairs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    ctx = mp.get_context("fork")
    q = ctx.Queue(1024) if kind == "queue" else ctx.SimpleQueue()
    per = n // pairs
    prods = [ctx.Process(target=producer, args=(q, per, size)) for _ in range(pairs)]
    cons = [ctx.Process(target=consumer, args=(q, per)) for _ in range(pairs - 1)]
    for p in cons:
        p.start()
    t0 = time.perf_counter()
    for p in prods:
        p.start()
    consumer(q, per)
    for p in prods + cons:
        p.join()
    dt = time.perf_counter() - t0
    print(per * pairs / dt)


if __name__ == "__main__":
    main()
