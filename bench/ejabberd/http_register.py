#!/usr/bin/python3
"""Register PREFIX{OFFSET..OFFSET+COUNT-1}@DOMAIN through ejabberd's HTTP admin API
(mod_http_api, POST /api/register), over keep-alive connections on loopback, several at once.

  http_register.py --port HTTP_PORT --domain D --prefix bench --offset 0 --count N --password pw
                   [--concurrency 4]

Prints one JSON line {"registered", "existed", "failed", "failures", "seconds", "per_sec"};
exit 1 when any account could not be created. This is ejabberd's fastest supported bulk path
measured here (bench/compare/README.md: `ejabberdctl register` costs ~1.5 s per account, as it
boots an Erlang VM each time).
"""
import argparse
import http.client
import json
import sys
import threading
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--domain", default="localhost")
    p.add_argument("--prefix", default="bench")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--password", default="pw")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--timeout", type=float, default=30)
    a = p.parse_args()

    lock = threading.Lock()
    names = iter(range(a.offset, a.offset + a.count))
    stats = {"registered": 0, "existed": 0, "failed": 0, "failures": {}}

    def fail(why):
        with lock:
            stats["failed"] += 1
            stats["failures"][why] = stats["failures"].get(why, 0) + 1

    def worker():
        conn = None
        while True:
            with lock:
                i = next(names, None)
            if i is None:
                break
            body = json.dumps({"user": f"{a.prefix}{i}", "host": a.domain, "password": a.password})
            for attempt in range(3):
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=a.timeout)
                    conn.request("POST", "/api/register", body, {"Content-Type": "application/json"})
                    r = conn.getresponse()
                    text = r.read().decode(errors="replace")
                    if r.status == 200:
                        with lock:
                            stats["registered"] += 1
                    elif "already registered" in text or "conflict" in text:
                        with lock:
                            stats["existed"] += 1
                    else:
                        fail(f"HTTP {r.status}: {text[:100]}")
                    break
                except (OSError, http.client.HTTPException) as e:
                    if conn:
                        conn.close()
                    conn = None
                    if attempt == 2:
                        fail(f"{type(e).__name__}: {e}"[:100])
        if conn:
            conn.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(a.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.monotonic() - t0
    stats["seconds"] = round(dt, 2)
    stats["per_sec"] = round((stats["registered"] + stats["existed"]) / dt, 1) if dt > 0 else None
    print(json.dumps(stats))
    sys.exit(1 if stats["failed"] else 0)


if __name__ == "__main__":
    main()
