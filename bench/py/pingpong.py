# Shared by the Python baselines: time 64-byte round trips over a
# multiprocessing Connection whose peer echoes every message back.


def roundtrip_us(conn, n, warmup=500):
    """Microseconds per round trip, after warmup untimed ones."""
    import time

    m = b"x" * 64
    for _ in range(warmup):
        conn.send_bytes(m)
        conn.recv_bytes()
    t0 = time.perf_counter()
    for _ in range(n):
        conn.send_bytes(m)
        conn.recv_bytes()
    return (time.perf_counter() - t0) / n * 1e6


def echo(conn):
    """Echo every message until the peer closes."""
    try:
        while True:
            conn.send_bytes(conn.recv_bytes())
    except EOFError:
        pass
