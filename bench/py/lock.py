"""Python baseline for bench_lock: multiprocessing.Lock and a shared counter.

usage: lock.py uncontended ITER      prints ns per acquire+release
       lock.py contended ITER        prints increments per second, with two
                                     processes each doing ITER locked
                                     `counter.value += 1` on a RawValue
                                     (timed from a common start, as in C)
"""
import sys
import time
from multiprocessing import Barrier, Lock, Process, RawValue


def uncontended(n):
    lock = Lock()
    acq, rel = lock.acquire, lock.release
    t0 = time.perf_counter()
    for _ in range(n):
        acq()
        rel()
    return (time.perf_counter() - t0) / n * 1e9


def worker(lock, counter, n, start):
    start.wait()
    for _ in range(n):
        with lock:
            counter.value += 1


def contended(n):
    lock, counter, start = Lock(), RawValue("q", 0), Barrier(3)
    ps = [Process(target=worker, args=(lock, counter, n, start)) for _ in range(2)]
    for p in ps:
        p.start()
    start.wait()
    t0 = time.perf_counter()
    for p in ps:
        p.join()
    dt = time.perf_counter() - t0
    assert counter.value == 2 * n, counter.value
    return 2 * n / dt


def main():
    kind, n = sys.argv[1], int(sys.argv[2])
    print(uncontended(n) if kind == "uncontended" else contended(n))


if __name__ == "__main__":
    main()
