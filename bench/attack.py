#!/usr/bin/python3
"""Robustness figures for docs/robustness.md: xedge under attack, on loopback only.

  bench/attack.py --port 5222 --pid PID slowloris --conns 10000
  bench/attack.py --port 5222 --pid PID chat-under-attack --conns 5000 --messages 20000

slowloris: open --conns connections spread over source addresses 127.0.1.1.. (so the
  per-IP caps are not what stops them), each sending one byte of a stream header per
  --interval seconds; report the server's RSS before, at its peak, and after the server
  has closed them (at its handshake timeout), and how many were closed by the server.
chat-under-attack: bench0 sends --messages to bench1 (as bench/first_numbers.py does) once
  without attack and once while --conns hostile connections run: a mix of slowloris, garbage
  TLS ClientHellos, not-well-formed XML, oversized stanzas and connect/close churn. Reports
  both delivery rates and their ratio. With --cpu C both this client and the attacker run on
  CPU C (pin the server to the other CPU), the attacker at nice 19: it gets only what the
  client leaves, so the ratio measures the server, not the two competing for a CPU. Add
  --perf-seconds N to record the server's profile (perf) for N seconds during the attack.

Every loop is bounded in count and time; traffic goes to 127.0.0.0/8 only.
"""
import argparse
import asyncio
import os
import random
import resource
import sys
import time

import first_numbers as fn

HEADER = (b"<?xml version='1.0'?><stream:stream to='localhost' version='1.0' "
          b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


SOURCES = 100


def source(i):
    """Source address for attacker connection i, round robin over SOURCES addresses
    127.0.1.1 .. so that no one address exceeds the per-IP caps (what is measured is
    the cost of many hostile connections, not the per-IP defence)."""
    n = i % SOURCES
    return f"127.0.{1 + n // 250}.{1 + n % 250}"


async def open_from(host, port, src):
    return await asyncio.open_connection(host, port, local_addr=(src, 0))


async def slow_conn(args, i, stats, stop):
    try:
        r, w = await asyncio.wait_for(open_from(args.host, args.port, source(i)), 10)
    except Exception:
        stats["refused"] += 1
        return
    stats["open"] += 1
    try:
        pos = 0
        while not stop.is_set():
            w.write(HEADER[pos:pos + 1])
            pos = (pos + 1) % len(HEADER)
            await w.drain()
            try:
                data = await asyncio.wait_for(r.read(4096), args.interval)
                if not data:
                    stats["closed_by_server"] += 1
                    return
            except asyncio.TimeoutError:
                pass
    except (ConnectionError, OSError):
        stats["closed_by_server"] += 1
    finally:
        stats["open"] -= 1
        w.close()


async def ramp(n, rate, make):
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(make(i)))
        if rate and i % rate == rate - 1:
            await asyncio.sleep(1)
    return tasks


async def slowloris(args):
    stats = {"open": 0, "refused": 0, "closed_by_server": 0}
    stop = asyncio.Event()
    before = fn.rss_kib(args.pid)
    peak = before
    t0 = time.monotonic()
    tasks = await ramp(args.conns, args.ramp, lambda i: slow_conn(args, i, stats, stop))
    deadline = t0 + args.duration
    while time.monotonic() < deadline:
        await asyncio.sleep(1)
        peak = max(peak, fn.rss_kib(args.pid))
        if all(t.done() for t in tasks):
            break
    held_peak = peak
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(2)
    after = fn.rss_kib(args.pid)
    print(f"slowloris: {args.conns} connections from {SOURCES} addresses, 1 byte per "
          f"{args.interval:g} s")
    print(f"  server RSS before {before} KiB, peak {held_peak} KiB "
          f"(+{(held_peak - before) / 1024:.1f} MiB, {(held_peak - before) * 1024 / max(args.conns, 1):.0f} "
          f"bytes per connection), after {after} KiB")
    print(f"  closed by the server: {stats['closed_by_server']}, refused at connect: {stats['refused']}, "
          f"elapsed {time.monotonic() - t0:.0f} s")


async def hostile(args, i, stop):
    kind = i % 5
    src = source(i)
    while not stop.is_set():
        try:
            r, w = await asyncio.wait_for(open_from(args.host, args.port, src), 5)
        except Exception:
            await asyncio.sleep(0.5)
            continue
        try:
            if kind == 0:      # slowloris
                for b in HEADER:
                    if stop.is_set():
                        break
                    w.write(bytes([b]))
                    await w.drain()
                    await asyncio.sleep(1)
            elif kind == 1:    # garbage where a ClientHello or header should be
                w.write(os.urandom(512))
                await w.drain()
                await asyncio.wait_for(r.read(4096), 5)
            elif kind == 2:    # not-well-formed XML after a good header
                w.write(HEADER + b"<message><body>x</msg></body>")
                await w.drain()
                await asyncio.wait_for(r.read(65536), 5)
            elif kind == 3:    # an oversized stanza, streamed
                w.write(HEADER + b"<message><body>")
                for _ in range(64):
                    w.write(b"A" * 8192)
                    await w.drain()
                await asyncio.wait_for(r.read(65536), 5)
            else:              # connect/close churn
                pass
        except Exception:
            pass
        finally:
            w.close()
        await asyncio.sleep(random.uniform(0.5, 1.5))


async def attack_only(args):
    """The hostile mix alone, for --duration seconds (run as its own process)."""
    stop = asyncio.Event()
    tasks = await ramp(args.conns, args.ramp, lambda i: hostile(args, i, stop))
    await asyncio.sleep(args.duration)
    stop.set()
    await asyncio.wait(tasks, timeout=15)


async def chat_under_attack(args):
    """The attackers run in a process of their own: sharing this process's event loop
    with the chat client would measure Python, not the server."""
    base = await fn.chat(args)
    cmd = [sys.executable, os.path.abspath(__file__), "--host", args.host, "--port",
           str(args.port), "--pid", str(args.pid), "--ramp", str(args.ramp), "attack",
           "--conns", str(args.conns), "--duration", str(args.settle + 120)]

    def isolate():
        if args.cpu is not None:
            os.sched_setaffinity(0, {args.cpu})
            os.nice(19)
    proc = await asyncio.create_subprocess_exec(*cmd, preexec_fn=isolate)
    perf = None
    try:
        await asyncio.sleep(args.settle)
        rss = fn.rss_kib(args.pid)
        if args.perf_seconds:
            pin = ["taskset", "-c", str(args.cpu)] if args.cpu is not None else []
            perf = await asyncio.create_subprocess_exec(
                *pin, "perf", "record", "-g", "-o", args.perf_out, "-p", str(args.pid), "--",
                "sleep", str(args.perf_seconds), stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL)
        attacked = await fn.chat(args)
        if perf:
            await perf.wait()
    finally:
        proc.terminate()
        await proc.wait()
    print(f"chat under attack: {args.conns} hostile connections (slowloris, garbage, bad XML, "
          f"oversized stanzas, churn) from another process; server RSS during attack {rss} KiB")
    print(f"  delivered rate without attack {base:.0f} msg/s, with attack {attacked:.0f} msg/s: "
          f"ratio {attacked / base:.2f}")
    if perf:
        print(f"  server profile during the attack: perf report -i {args.perf_out}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5222)
    p.add_argument("--domain", default="localhost")
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--ramp", type=int, default=2000, help="new attacker connections per second")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("slowloris")
    s.add_argument("--conns", type=int, default=10000)
    s.add_argument("--interval", type=float, default=1.0)
    s.add_argument("--duration", type=float, default=60)
    c = sub.add_parser("chat-under-attack")
    c.add_argument("--conns", type=int, default=5000)
    c.add_argument("--messages", type=int, default=20000)
    c.add_argument("--window", type=int, default=200)
    c.add_argument("--settle", type=float, default=5)
    c.add_argument("--cpu", type=int, help="run this client and the (nice 19) attacker on this CPU")
    c.add_argument("--perf-seconds", type=float, default=0)
    c.add_argument("--perf-out", default="/tmp/xedge-attack.perf")
    a = sub.add_parser("attack")
    a.add_argument("--conns", type=int, default=5000)
    a.add_argument("--duration", type=float, default=60)
    args = p.parse_args()
    raise_nofile()
    if getattr(args, "cpu", None) is not None:
        os.sched_setaffinity(0, {args.cpu})
    run = {"slowloris": slowloris, "chat-under-attack": chat_under_attack, "attack": attack_only}
    asyncio.run(run[args.cmd](args))


if __name__ == "__main__":
    main()
