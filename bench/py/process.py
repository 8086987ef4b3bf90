"""Python baselines for bench_process.c. Prints one number.

  process.py start <fork|forkserver|spawn> <count>  -> microseconds per Process start+join
  process.py heavy <n> <tasks>                      -> speed-up of 2 processes over serial
"""
import multiprocessing as mp
import sys
import time


def noop():
    pass


def heavy(n):
    for x in range(1, n):
        for y in range(1, n):
            x ** y


def heavy_many(n, count):
    for _ in range(count):
        heavy(n)


def main():
    what = sys.argv[1]
    if what == "start":
        ctx = mp.get_context(sys.argv[2])
        count = int(sys.argv[3])
        p = ctx.Process(target=noop)  # warm-up (starts the forkserver)
        p.start()
        p.join()
        t0 = time.perf_counter()
        for _ in range(count):
            p = ctx.Process(target=noop)
            p.start()
            p.join()
        print((time.perf_counter() - t0) / count * 1e6)
    elif what == "heavy":
        n, tasks = int(sys.argv[2]), int(sys.argv[3])
        t0 = time.perf_counter()
        heavy_many(n, tasks)
        serial = time.perf_counter() - t0
        ctx = mp.get_context("fork")
        t0 = time.perf_counter()
        ps = [ctx.Process(target=heavy_many, args=(n, tasks // 2)) for _ in range(2)]
        for p in ps:
            p.start()
        for p in ps:
            p.join()
        print(serial / (time.perf_counter() - t0))


if __name__ == "__main__":
    main()
