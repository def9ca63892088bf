"""Measures connection set-up, a bulk download and 50 concurrent
connections against the bench server; prints one JSON object.
Run in the guest (through the egress gate) and on the host (direct)."""

import json
import socket
import sys
import threading
import time

host, port, samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def ask(word: bytes) -> socket.socket:
    s = socket.create_connection((host, port), timeout=60)
    s.sendall(word)
    return s


def setup_ms() -> float:
    t = time.perf_counter()
    s = ask(b"PING")
    s.recv(1)
    s.close()
    return (time.perf_counter() - t) * 1000


lat = sorted(setup_ms() for _ in range(samples))

t = time.perf_counter()
s = ask(b"BULK")
total = 0
while True:
    b = s.recv(1 << 20)
    if not b:
        break
    total += len(b)
bulk_s = time.perf_counter() - t
s.close()

ok = []


def hold() -> None:
    try:
        s = ask(b"HOLD")
        ok.append(s.recv(1) == b"x")
        s.close()
    except OSError:
        ok.append(False)


t = time.perf_counter()
threads = [threading.Thread(target=hold) for _ in range(50)]
for th in threads:
    th.start()
for th in threads:
    th.join()
concurrent_s = time.perf_counter() - t

print(json.dumps({
    "p50_ms": lat[len(lat) // 2],
    "p99_ms": lat[min(len(lat) - 1, (len(lat) * 99) // 100)],
    "bulk_bytes": total,
    "bulk_mib_s": total / bulk_s / (1 << 20),
    "concurrent_ok": sum(ok),
    "concurrent_s": concurrent_s,
}))
