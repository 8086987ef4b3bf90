# Python baseline for bench_pipe.c: multiprocessing Pipe round trip of 64
# bytes (send_bytes/recv_bytes, child echoes). Usage: pipe.py N.
# Prints microseconds per round trip.
import multiprocessing as mp
import sys
import time


def echo(conn, other):
    other.close()  # else the parent's close never reaches us as EOF
    try:
        while True:
            conn.send_bytes(conn.recv_bytes())
    except EOFError:
        pass


def main():
    n = int(sys.argv[1])
    ctx = mp.get_context("fork")
    a, b = ctx.Pipe()
    p = ctx.Process(target=echo, args=(b, a))
    p.start()
    b.close()
    m = b"x" * 64
    for _ in range(500):
        a.send_bytes(m)
        a.recv_bytes()
    t0 = time.perf_counter()
    for _ in range(n):
        a.send_bytes(m)
        a.recv_bytes()
    dt = time.perf_counter() - t0
    a.close()
    p.join()
    print(dt / n * 1e6)


if __name__ == "__main__":
    main()
