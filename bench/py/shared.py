"""Python baseline for bench_shared: Manager().dict() / Manager().list()
from 2 processes. Usage: shared.py dict|list N  -> prints total ops/s
(one op = a set plus a get for dict, one append for list)."""
import sys, time
from multiprocessing import Manager, Process, Event


def dict_worker(d, wid, n, go):
    go.wait()
    for i in range(n):
        k = "k%d-%d" % (wid, i)
        d[k] = "value-%d" % i
        d[k]


def list_worker(l, wid, n, go):
    go.wait()
    for i in range(n):
        l.append("item-%d-%d" % (wid, i))


if __name__ == "__main__":
    kind, n = sys.argv[1], int(sys.argv[2])
    with Manager() as m:
        obj = m.dict() if kind == "dict" else m.list()
        go = Event()
        target = dict_worker if kind == "dict" else list_worker
        ps = [Process(target=target, args=(obj, w, n, go)) for w in range(2)]
        for p in ps:
            p.start()
        time.sleep(0.3)  # let both connect before timing
        t0 = time.perf_counter()
        go.set()
        for p in ps:
            p.join()
        dt = time.perf_counter() - t0
    print(2 * n / dt)
