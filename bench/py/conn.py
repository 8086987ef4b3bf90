# Python baseline for bench_conn.c: multiprocessing.connection Listener and
# Client over a Unix socket with an authkey. Usage: conn.py handshake|rt
# PATH N. Prints microseconds per handshake (connect + authentication) or
# per 64-byte round trip.
import multiprocessing as mp
import os
import sys
import time
from multiprocessing.connection import Client, Listener

KEY = b"bench authkey"


def serve(path, mode, n, ready):
    with Listener(path, authkey=KEY) as l:
        ready.set()
        if mode == "handshake":
            for _ in range(n):
                l.accept().close()
        else:
            c = l.accept()
            try:
                while True:
                    c.send_bytes(c.recv_bytes())
            except EOFError:
                pass


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
        dt = time.perf_counter() - t0
    else:
        c = Client(path, authkey=KEY)
        m = b"x" * 64
        for _ in range(500):
            c.send_bytes(m)
            c.recv_bytes()
        t0 = time.perf_counter()
        for _ in range(n):
            c.send_bytes(m)
            c.recv_bytes()
        dt = time.perf_counter() - t0
        c.close()
    p.join()
    print(dt / n * 1e6)


if __name__ == "__main__":
    main()
