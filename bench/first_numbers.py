#!/usr/bin/python3
"""First figures for docs/benchmarks.md, until xedge-bench (issue 3) exists.

  bench/first_numbers.py --port 5222 --pid PID [--idle 1000] [--messages 20000]

1. Memory per idle TLS session: RSS of the server process (from /proc/PID/status) before
   and after logging in --idle clients over STARTTLS (PLAIN, bind, initial presence).
2. Messages per second between two clients: alice sends --messages chat messages to bob
   with a window of --window messages in flight; bob counts them; the rate is messages
   received divided by the time from the first send to the last receipt.

Users bench0..benchN@DOMAIN with password 'pw' must exist (create them with xedgectl).
The client side is Python: the message rate it measures is bounded by this client, so it
is a floor for the server, not its ceiling.
"""
import argparse
import asyncio
import base64
import re
import ssl
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Client:
    def __init__(self, host, port, domain, user, password):
        self.host, self.port, self.domain = host, port, domain
        self.user, self.password = user, password
        self.buf = b""

    async def read_until(self, pattern, timeout=10):
        rx = re.compile(pattern, re.S)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.user}: waiting for {pattern!r}, have {self.buf[-200:]!r}")
            data = await asyncio.wait_for(self.reader.read(65536), left)
            if not data:
                raise ConnectionError(f"{self.user}: closed while waiting for {pattern!r}")
            self.buf += data

    def send(self, s):
        self.writer.write(s.encode() if isinstance(s, str) else s)

    def header(self):
        self.send(f"<?xml version='1.0'?><stream:stream to='{self.domain}' version='1.0' "
                  "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")

    async def login(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.header()
        await self.read_until(rb"</stream:features>")
        self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        await self.read_until(rb"<proceed[^>]*/>")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        await self.writer.start_tls(ctx, server_hostname=self.domain)
        self.buf = b""
        self.header()
        await self.read_until(rb"</stream:features>")
        cred = base64.b64encode(f"\0{self.user}\0{self.password}".encode()).decode()
        self.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{cred}</auth>")
        await self.read_until(rb"<success[^>]*(/>|</success>)")
        self.header()
        await self.read_until(rb"</stream:features>")
        self.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
        m = await self.read_until(rb"<jid>([^<]+)</jid>")
        self.jid = m.group(1).decode()
        self.send("<presence/>")
        await self.writer.drain()
        return self


async def idle(args):
    before = rss_kib(args.pid)
    clients = []
    for i in range(0, args.idle, 50):
        batch = [Client(args.host, args.port, args.domain, f"bench{j}", "pw").login()
                 for j in range(i, min(i + 50, args.idle))]
        clients += await asyncio.gather(*batch)
    await asyncio.sleep(2)
    after = rss_kib(args.pid)
    per = (after - before) * 1024 / len(clients)
    print(f"idle: {len(clients)} TLS sessions, server RSS {before} KiB -> {after} KiB, "
          f"{per / 1024:.1f} KiB per session")
    for c in clients:
        c.writer.close()
    return per


async def chat(args):
    a = await Client(args.host, args.port, args.domain, "bench0", "pw").login()
    b = await Client(args.host, args.port, args.domain, "bench1", "pw").login()
    await asyncio.sleep(0.5)
    got = 0
    done = asyncio.Event()

    async def receiver():
        nonlocal got
        while got < args.messages:
            data = await b.reader.read(262144)
            if not data:
                break
            got += data.count(b"<body>")
            acked.set()
        done.set()

    acked = asyncio.Event()
    rtask = asyncio.create_task(receiver())
    t0 = time.monotonic()
    sent = 0
    while sent < args.messages:
        while sent - got >= args.window:
            acked.clear()
            await asyncio.wait_for(acked.wait(), 10)
        n = min(args.window - (sent - got), args.messages - sent, 100)
        a.send("".join(f"<message to='{b.jid}' type='chat'><body>m{sent + k}</body></message>"
                       for k in range(n)))
        sent += n
        await a.writer.drain()
    await asyncio.wait_for(done.wait(), 60)
    dt = time.monotonic() - t0
    rtask.cancel()
    print(f"chat: {got} messages alice -> bob in {dt:.2f} s: {got / dt:.0f} msg/s "
          f"(window {args.window})")
    return got / dt


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5222)
    p.add_argument("--domain", default="localhost")
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--idle", type=int, default=1000)
    p.add_argument("--messages", type=int, default=20000)
    p.add_argument("--window", type=int, default=200)
    args = p.parse_args()
    asyncio.run(chat(args))
    asyncio.run(idle(args))


if __name__ == "__main__":
    main()
