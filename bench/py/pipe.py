# Python baseline for bench_pipe.c: multiprocessing Pipe round trip of 64
# bytes (send_bytes/recv_bytes, child echoes). Usage: pipe.py N.
# Prints microseconds per round trip.
import multiprocessing as mp
import sys

from pingpong import echo, roundtrip_us


def child(conn, other):
    other.close()  # else the parent's close never reaches us as EOF
    echo(conn)


def main():
    n = int(sys.argv[1])
    ctx = mp.get_context("fork")
    a, b = ctx.Pipe()
    p = ctx.Process(target=child, args=(b, a))
    p.start()
    b.close()
    us = roundtrip_us(a, n)
    a.close()
    p.join()
    print(us)


if __name__ == "__main__":
    main()
