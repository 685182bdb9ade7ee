#!/usr/bin/python3
"""edgekill.py — XEP-0198 clients chatting through HAProxy in front of two edges; one edge
gets SIGKILL; its clients reconnect through HAProxy, land on the other edge and resume there
(core/adopt.c, sm/adopt.c).  The load of bench/shards/run.sh's "edge" fault run (Debian's
python3 only).

  edgekill.py --port P --clients N --kill-pid PID [--host H] [--domain D] [--prefix bench]
              [--password pw] [--rate R] [--duration S] [--kill-at S] [--drain S]
              [--concurrency C] [--out FILE]

Each client: STARTTLS, SCRAM-SHA-1, bind (resource "r"), <enable resume='true'/>, presence,
then one message every 1/R s to a random other client's full JID, numbered.  It counts what
it receives (its h) and answers <r/>; it asks for acks itself every 8 messages and keeps what
the server has not acknowledged.  --kill-at s after every client is online, PID gets SIGKILL.
A client whose connection ends reconnects through H:P (retrying until HAProxy has left the
dead edge out), authenticates and sends <resume previd h/>: on <resumed h/> it drops what the
server's h covers and sends the rest again; on <failed/> it binds again and sends the rest
again (counted as a new login).  Then --drain s for the messages in flight.

Output (--out, JSON; a summary line on stdout): clients, on the killed edge (the clients whose
stream the kill ended), resumed, failed resumptions (new logins), messages sent (distinct) /
received (distinct), lost (sent, never received), lost after the server acknowledged them
(the figure that must be 0), duplicates, and the time from the kill to each resumption
(median, max).
"""
import argparse
import asyncio
import base64
import json
import os
import random
import signal
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compare"))
import xmpp  # noqa: E402
from xmpp import Conn, XmppError, scram_sha1_client  # noqa: E402

_TLS = xmpp.tls_context()   # one for every connection: each loads the CA store otherwise

NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_SM = "urn:xmpp:sm:3"
NS_C = "jabber:client"
STREAM = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"


class Lost(Exception):
    """The connection ended."""


class Stream:
    """A bound c2s stream: XML elements of depth 1 from an incremental parser."""

    def __init__(self, conn):
        self.c = conn
        self.p = ET.XMLPullParser(events=("start", "end"))
        self.p.feed(STREAM)
        self.depth = 0
        self.items = []
        self.feed(conn.buf)

    def feed(self, data):
        self.p.feed(data)
        for ev, el in self.p.read_events():
            if ev == "start":
                self.depth += 1
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.items.append(el)

    async def next(self, timeout=None):
        while not self.items:
            try:
                data = await asyncio.wait_for(self.c.reader.read(65536), timeout)
            except (ConnectionError, OSError) as e:
                raise Lost(f"{type(e).__name__} {e}")
            if not data:
                raise Lost("eof")
            if b"</stream:stream>" in data:
                data = data.replace(b"</stream:stream>", b"")
            try:
                self.feed(data)
            except ET.ParseError as e:
                raise Lost(f"xml: {e}")
        return self.items.pop(0)

    def send(self, s):
        try:
            self.c.send(s)
        except (ConnectionError, OSError, RuntimeError):
            pass   # the reader sees the end


class Run:
    def __init__(self, a):
        self.a = a
        self.sent = {}         # (sender, seq) -> acknowledged by the server
        self.recv = {}         # (sender, seq) -> times received
        self.sent_info = {}    # (sender, seq) -> (recipient, seconds after the kill)
        self.online = 0
        self.killed_at = None
        self.hit = set()       # clients whose stream the kill ended
        self.resumed = []      # seconds from the kill
        self.stages = []       # (kill -> seen lost, lost -> authenticated again, -> resumed, attempts)
        self.failed = 0
        self.errors = {}
        self.stop = False
        self.settled = 0       # clients logged in or given up
        self.logins = asyncio.Semaphore(a.concurrency)

    async def login(self, i):
        a = self.a
        c = Conn(a.host, a.port, a.domain, timeout=15.0)
        await c.open()
        await c.features("stream features")
        c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        await c.read_until(rb"<proceed[^>]*/>", "STARTTLS proceed")
        await asyncio.wait_for(c.writer.start_tls(_TLS, server_hostname=a.domain), 15)
        c.buf = b""
        await c.features("stream features after TLS")
        g = scram_sha1_client(f"{a.prefix}{i}", a.password)
        c.send(f"<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-1'>"
               f"{base64.b64encode(next(g).encode()).decode()}</auth>")
        m = await c.read_until(rb"<challenge[^>]*>([^<]*)</challenge>", "SCRAM challenge")
        final = g.send(base64.b64decode(m.group(1)).decode())
        c.send(f"<response xmlns='{NS_SASL}'>{base64.b64encode(final.encode()).decode()}</response>")
        m = await c.read_until(rb"<success[^>]*?(/>|>([^<]*)</success>)", "SASL success")
        g.send(base64.b64decode(m.group(2) or b"").decode())
        c.header()
        await c.read_until(rb"<stream:features[^>]*?(/>|>(.*?)</stream:features>)", "features")
        return Stream(c)

    async def expect(self, s, pred, what):
        deadline = time.monotonic() + 15
        while True:
            el = await s.next(max(0.1, deadline - time.monotonic()))
            if pred(el):
                return el
            if time.monotonic() > deadline:
                raise XmppError(f"no {what}")

    async def bind(self, s, st):
        s.send(f"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
               f"<resource>r</resource></bind></iq><enable xmlns='{NS_SM}' resume='true'/>")
        await self.expect(s, lambda e: e.get("id") == "b", "bind result")
        en = await self.expect(s, lambda e: e.tag in (f"{{{NS_SM}}}enabled", f"{{{NS_SM}}}failed"), "enabled")
        st["previd"] = en.get("id")
        st["h"] = 0
        st["out"] = 0

    def out(self, s, st, raw):
        st["out"] += 1
        st["unacked"].append((st["out"], raw))
        s.send(raw)

    def acked(self, st, h):
        while st["unacked"] and ((h - st["unacked"][0][0]) & 0xffffffff) < 0x80000000:
            _, raw = st["unacked"].pop(0)
            k = st["keys"].pop(raw, None)
            if k:
                self.sent[k] = True

    async def reader(self, i, s, st):
        while True:
            el = await s.next()
            tag = el.tag
            if tag == f"{{{NS_SM}}}r":
                s.send(f"<a xmlns='{NS_SM}' h='{st['h']}'/>")
            elif tag == f"{{{NS_SM}}}a":
                self.acked(st, int(el.get("h")))
            elif tag in (f"{{{NS_C}}}message", f"{{{NS_C}}}presence", f"{{{NS_C}}}iq"):
                st["h"] += 1
                if tag.endswith("message"):
                    b = el.findtext(f"{{{NS_C}}}body") or ""
                    if b.startswith("ek:"):
                        _, snd, seq = b.split(":")
                        k = (int(snd), int(seq))
                        self.recv[k] = self.recv.get(k, 0) + 1
                elif tag.endswith("iq") and el.get("type") in ("get", "set"):
                    self.out(s, st, f"<iq type='error' id='{el.get('id')}' to='{el.get('from')}'>"
                                    "<error type='cancel'><service-unavailable "
                                    "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")

    async def resume(self, i, st):
        """Reconnect through HAProxy and resume (or log in again); returns the new stream."""
        a = self.a
        t_lost = time.monotonic()
        tries = 0
        for _ in range(200):
            try:
                tries += 1
                s = await self.login(i)
                break
            except (XmppError, OSError, asyncio.TimeoutError, Lost, ET.ParseError):
                await asyncio.sleep(0.1)
        else:
            raise XmppError("no reconnection")
        t_authed = time.monotonic()
        s.send(f"<resume xmlns='{NS_SM}' previd='{st['previd']}' h='{st['h']}'/>")
        r = await self.expect(s, lambda e: e.tag in (f"{{{NS_SM}}}resumed", f"{{{NS_SM}}}failed"), "resumed")
        pending = st["unacked"]
        if r.tag == f"{{{NS_SM}}}resumed":
            self.acked(st, int(r.get("h")))
            st["out"] = int(r.get("h"))
            pending = st["unacked"]
            if self.killed_at:
                now = time.monotonic()
                self.resumed.append(now - self.killed_at)
                self.stages.append((t_lost - self.killed_at, t_authed - t_lost, now - t_authed, tries))
        else:
            self.failed += 1
            await self.bind(s, st)
            s.send("<presence/>")
            st["out"] += 1
        st["unacked"] = []
        for _, raw in pending:        # again, in order: numbered anew
            self.out(s, st, raw)
        s.send(f"<r xmlns='{NS_SM}'/>")
        return s

    async def client(self, i, gate, started):
        a = self.a
        st = {"unacked": [], "keys": {}, "seq": 0}
        await gate
        s = None
        for attempt in range(3):
            try:
                async with self.logins:
                    s = await self.login(i)
                    await self.bind(s, st)
                self.out(s, st, "<presence/>")
                break
            except (XmppError, OSError, asyncio.TimeoutError, Lost) as e:
                why = f"login: {type(e).__name__} {e}"[:60]
                self.errors[why] = self.errors.get(why, 0) + 1
                s = None
        self.settled += 1
        if s:
            self.online += 1
        if self.settled == a.clients and not started.done():
            started.set_result(None)
        if not s:
            return
        while True:
            rd = asyncio.ensure_future(self.reader(i, s, st))
            try:
                while not rd.done():
                    if self.stop:
                        # The last acks, and what is still in flight, until the drain ends.
                        s.send(f"<r xmlns='{NS_SM}'/>")
                        await rd
                    await asyncio.wait({rd}, timeout=random.expovariate(a.rate))
                    if rd.done() or self.stop:
                        continue
                    j = random.randrange(a.clients - 1)
                    j += j >= i
                    st["seq"] += 1
                    k = (i, st["seq"])
                    raw = (f"<message to='{a.prefix}{j}@{a.domain}/r' type='chat' id='m{st['seq']}'>"
                           f"<body>ek:{i}:{st['seq']}</body></message>")
                    self.sent[k] = False
                    self.sent_info[k] = (j, round(time.monotonic() - (self.killed_at or time.monotonic()), 3))
                    st["keys"][raw] = k
                    self.out(s, st, raw)
                    if st["seq"] % 8 == 0:
                        s.send(f"<r xmlns='{NS_SM}'/>")
                rd.result()
            except Lost:
                if self.stop:
                    return
                self.hit.add(i)
                try:
                    s = await self.resume(i, st)
                except Exception as e:      # counted, whatever it is: the report must show it
                    why = f"resume: {type(e).__name__} {e}"[:60]
                    self.errors[why] = self.errors.get(why, 0) + 1
                    return
            except asyncio.CancelledError:
                rd.cancel()
                return

    async def main(self):
        a = self.a
        loop = asyncio.get_running_loop()
        gate = loop.create_future()
        started = loop.create_future()
        tasks = [asyncio.ensure_future(self.client(i, gate, started)) for i in range(a.clients)]
        gate.set_result(None)
        await asyncio.wait_for(started, 300)
        if self.online < a.clients:
            print(f"edgekill: only {self.online} of {a.clients} clients online", file=sys.stderr)
        await asyncio.sleep(a.kill_at)
        os.kill(a.kill_pid, signal.SIGKILL)
        self.killed_at = time.monotonic()
        await asyncio.sleep(max(0.0, a.duration - a.kill_at))
        self.stop = True
        await asyncio.sleep(a.drain)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def report(self):
        sent = len(self.sent)
        got = sum(1 for k in self.sent if k in self.recv)
        lost = [k for k in self.sent if k not in self.recv]
        lost_acked = [k for k in lost if self.sent[k]]
        dup = sum(n - 1 for n in self.recv.values() if n > 1)
        r = sorted(self.resumed)
        return {"clients": self.a.clients, "online": self.online, "killed_edge_clients": len(self.hit),
                "resumed": len(r), "failed_resumptions": self.failed, "sent": sent, "received": got,
                "lost": len(lost), "lost_acknowledged": len(lost_acked), "duplicates": dup,
                "resume_s_median": round(statistics.median(r), 3) if r else None,
                "resume_s_max": round(r[-1], 3) if r else None, "errors": self.errors,
                "stages_median": [round(statistics.median(x), 3) for x in zip(*self.stages)] if self.stages else None,
                "lost_sample": [[k[0], k[1], *self.sent_info.get(k, ()), k[0] in self.hit,
                                 self.sent_info.get(k, (None,))[0] in self.hit] for k in lost[:20]]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--domain", default="localhost")
    ap.add_argument("--prefix", default="bench")
    ap.add_argument("--password", default="pw")
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--rate", type=float, default=2.0)
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--kill-at", type=float, default=5.0)
    ap.add_argument("--kill-pid", type=int, required=True)
    ap.add_argument("--drain", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, default=20, help="logins in progress at most")
    ap.add_argument("--out")
    a = ap.parse_args()
    run = Run(a)
    asyncio.run(run.main())
    rep = run.report()
    if a.out:
        json.dump(rep, open(a.out, "w"), indent=1)
    print(json.dumps(rep))
    return 0 if rep["lost_acknowledged"] == 0 and rep["lost"] == 0 and rep["online"] == a.clients else 1


if __name__ == "__main__":
    sys.exit(main())
