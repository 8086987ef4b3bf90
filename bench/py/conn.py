# Python baseline for bench_conn.c: multiprocessing.connection Listener and
# Client over a Unix socket with an authkey. Usage: conn.py handshake|rt
# PATH N. Prints microseconds per handshake (connect + authentication) or
# per 64-byte round trip.
import multiprocessing as mp
import os
import sys
import time
from multiprocessing.connection import Client, Listener

from pingpong import echo, roundtrip_us

KEY = b"bench authkey"


def serve(path, mode, n, ready):
    with Listener(path, authkey=KEY) as l:
        ready.set()
        if mode == "handshake":
            for _ in range(n):
                l.accept().close()
        else:
            echo(l.accept())


def main():
    mode, path, n = sys.argv[1], sys.argv[2] + ".py", int(sys.argv[3])
    if os.path.exists(path):
        os.unlink(path)
    ctx = mp.get_context("fork")
    ready = ctx.Event()
    p = ctx.Process(target=serve, args=(path, mode, n, ready))
    p.start()
    ready.wait()
    if mode == "handshake":
        t0 = time.perf_counter()
        for _ in range(n):
            Client(path, authkey=KEY).close()
        us = (time.perf_counter() - t0) / n * 1e6
    else:
        c = Client(path, authkey=KEY)
        us = roundtrip_us(c, n)
        c.close()
    p.join()
    print(us)


if __name__ == "__main__":
    main()
