"""Times mediated requests: SAMPLES small GETs (p50/p99 in ms), one
BIG-byte download (MiB/s) and, in the guest, SAMPLES refused calls (the
channel without any request). In the guest through mvm.web_fetch; with
--direct on the host, the same requests over one kept-alive HTTPS
connection (http.client, the bench's CA). Prints one JSON line."""

import json
import sys
import time


def stats(ms):
    ms = sorted(ms)
    return {"p50_ms": ms[len(ms) // 2], "p99_ms": ms[min(len(ms) - 1, int(len(ms) * 0.99))]}


def guest(base, samples, big):
    sys.path.insert(0, "/usr/lib/mvm/python")
    import mvm

    def get(path):
        r = mvm.web_fetch(base + path, timeout=120)
        assert r.status == 200, r.status
        return r.body

    out = run(get, samples, big)
    # The channel alone: a call the host refuses at once (not granted),
    # still parsed, checked, logged and audited.
    ms = []
    for _ in range(samples):
        t = time.perf_counter()
        try:
            mvm.web_fetch("https://not-granted.test/", timeout=120)
        except mvm.EgressDenied:
            pass
        ms.append((time.perf_counter() - t) * 1000)
    out["refused"] = stats(ms)
    return out


def direct(host, port, ca, samples, big):
    import http.client
    import ssl

    ctx = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPSConnection(host, port, context=ctx)

    def get(path):
        conn.request("GET", path, headers={"Host": "bench.test:%d" % port})
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200, r.status
        return body

    return run(get, samples, big)


def run(get, samples, big):
    get("/echo")  # warm: connection, TLS session
    ms = []
    for _ in range(samples):
        t = time.perf_counter()
        get("/echo")
        ms.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    body = get("/big?bytes=%d" % big)
    secs = time.perf_counter() - t
    assert len(body) == big, len(body)
    out = stats(ms)
    out["big_mib_s"] = big / secs / (1 << 20)
    return out


if __name__ == "__main__":
    if sys.argv[1] == "--direct":
        _, _, host, port, ca, samples, big = sys.argv
        print(json.dumps(direct(host, int(port), ca, int(samples), int(big))))
    else:
        _, base, samples, big = sys.argv
        print(json.dumps(guest(base, int(samples), int(big))))
