#!/usr/bin/python3
"""roll.py — N XMPP clients that stay logged in and come back when a server tells them to go:
the load of bench/ops/run.sh's rolling restart (Debian's python3 only).

  roll.py --port P --clients N [--host H] [--prefix bench] [--offset K] [--password pw]
          [--connect-rate R] [--status FILE] [--out FILE] [--max-s S]

Each client: TCP to H:P, STARTTLS, SCRAM-SHA-1 (RFC 5802; PBKDF2 once per account and
salt, cached), resource binding (RFC 6120 §7), then it stays connected.  When the stream ends:
  <see-other-host>HOST:PORT</see-other-host>  (RFC 6120 §4.9.3.19) -> reconnect there at once
  <system-shutdown/> or any other stream error, or the connection closing without one
                                           -> counted ("shutdowns", "errors", "drops"), reconnect
                                              after 1 s to H:P
A login that fails is counted under its cause and retried after 1 s.  The first logins are
paced at --connect-rate per second (default 400).  SIGTERM or --max-s: every client closes its
stream and the results go to --out (JSON): logins, logins per second of the run, redirects,
shutdowns, drops, failures by cause, online at the end.  --status FILE is rewritten twice a
second with {"online", "logins", "redirects", "failures", ...} so that a script can wait on it.
"""
import argparse
import asyncio
import base64
import functools
import hashlib
import hmac
import json
import os
import re
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compare"))
import xmpp  # noqa: E402
from xmpp import Conn, XmppError, mechanisms  # noqa: E402

# One TLS context for every connection: xmpp.py makes one per connection, and each loads the
# system's CA store (tens of ms and ~1 MB each): 1,000 clients took a minute and a GiB.
_TLS = xmpp.tls_context()
xmpp.tls_context = lambda: _TLS

NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
STREAM_END = re.compile(rb"<stream:error>(.*?)</stream:error>|</stream:stream>", re.S)
SEE_OTHER = re.compile(rb"<see-other-host[^>]*>([^<]+)</see-other-host>")
CONDITION = re.compile(rb"<([a-z-]+)[^>]*xmlns=['\"]urn:ietf:params:xml:ns:xmpp-streams['\"]")


@functools.lru_cache(maxsize=None)
def salted_password(password, salt, iters):
    return hashlib.pbkdf2_hmac("sha1", password.encode(), salt, iters)


async def scram_sha1(c, user, password):
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n={user},r={nonce}"
    c.send(f"<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-1'>"
           f"{base64.b64encode(('n,,' + first_bare).encode()).decode()}</auth>")
    m = await c.read_until(rb"<challenge[^>]*>([^<]*)</challenge>", "SCRAM challenge")
    server_first = base64.b64decode(m.group(1)).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    if not attrs["r"].startswith(nonce):
        raise XmppError("scram-nonce")
    salted = salted_password(password, base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha1).digest()
    stored = hashlib.sha1(client_key).digest()
    final_wo_proof = f"c=biws,r={attrs['r']}"
    auth_msg = f"{first_bare},{server_first},{final_wo_proof}".encode()
    proof = bytes(a ^ b for a, b in zip(client_key, hmac.new(stored, auth_msg, hashlib.sha1).digest()))
    c.send(f"<response xmlns='{NS_SASL}'>"
           f"{base64.b64encode(f'{final_wo_proof},p={base64.b64encode(proof).decode()}'.encode()).decode()}"
           "</response>")
    m = await c.read_until(rb"<success[^>]*?(/>|>([^<]*)</success>)", "SASL success")
    server_key = hmac.new(salted, b"Server Key", hashlib.sha1).digest()
    expect = base64.b64encode(hmac.new(server_key, auth_msg, hashlib.sha1).digest()).decode()
    if base64.b64decode(m.group(2) or b"").decode() != f"v={expect}":
        raise XmppError("scram-server-signature")


class Run:
    def __init__(self, a):
        self.a = a
        self.t0 = time.time()
        self.stop = asyncio.Event()
        self.online = 0
        self.logins = 0
        self.per_s = {}                  # second of the run -> logins
        self.redirects = 0
        self.shutdowns = 0
        self.errors = {}
        self.drops = 0
        self.failures = {}
        self.peak_online = 0

    def fail(self, why):
        why = re.sub(r"\s+", " ", why)[:80]
        self.failures[why] = self.failures.get(why, 0) + 1

    def status(self):
        return {"t": round(time.time() - self.t0, 1), "clients": self.a.clients, "online": self.online,
                "peak_online": self.peak_online, "logins": self.logins, "redirects": self.redirects,
                "shutdowns": self.shutdowns, "stream_errors": self.errors, "drops": self.drops,
                "failed": sum(self.failures.values()), "failures": self.failures}

    async def session(self, c):
        """Wait for the end of a bound stream; returns ("redirect", host, port), ("shutdown",),
        ("error", cond), ("drop",) or ("stop",)."""
        buf = b""
        stop = asyncio.ensure_future(self.stop.wait())
        try:
            while True:
                rd = asyncio.ensure_future(c.reader.read(65536))
                done, _ = await asyncio.wait({rd, stop}, return_when=asyncio.FIRST_COMPLETED)
                if rd not in done:
                    rd.cancel()
                    return ("stop",)
                data = rd.result()
                if not data:
                    return ("drop",)
                buf = (buf + data)[-8192:]
                m = STREAM_END.search(buf)
                if not m:
                    continue
                err = m.group(1) or b""
                so = SEE_OTHER.search(err)
                if so:
                    host, _, port = so.group(1).decode().strip().rpartition(":")
                    return ("redirect", host.strip("[]"), int(port))
                cond = CONDITION.search(err)
                if cond and cond.group(1) == b"system-shutdown":
                    return ("shutdown",)
                return ("error", cond.group(1).decode() if cond else "stream-end")
        finally:
            stop.cancel()

    async def client(self, i, gate):
        a = self.a
        host, port = a.host, a.port
        user = f"{a.prefix}{a.offset + i}"
        await gate
        while not self.stop.is_set():
            c = Conn(host, port, a.domain, a.timeout)
            bound = False
            try:
                f = await c.starttls()
                if "SCRAM-SHA-1" not in mechanisms(f):
                    raise XmppError("no-scram-sha-1")
                await scram_sha1(c, user, a.password)
                await c.features("features after SASL")
                c.send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                       "<resource>roll</resource></bind></iq>")
                await c.read_until(rb"<jid>([^<]+)</jid>", "resource binding")
                bound = True
                self.logins += 1
                sec = int(time.time() - self.t0)
                self.per_s[sec] = self.per_s.get(sec, 0) + 1
                self.online += 1
                self.peak_online = max(self.peak_online, self.online)
                end = await self.session(c)
            except (XmppError, OSError, asyncio.TimeoutError, ValueError, KeyError) as e:
                self.fail(f"{type(e).__name__}: {e}" if bound is False else f"bound, then {e}")
                end = ("retry",)
            finally:
                if bound:
                    self.online -= 1
                await c.close()
            if end[0] == "stop":
                break
            if end[0] == "redirect":
                self.redirects += 1
                host, port = end[1], end[2]
                continue
            if end[0] == "shutdown":
                self.shutdowns += 1
            elif end[0] == "error":
                self.errors[end[1]] = self.errors.get(end[1], 0) + 1
            elif end[0] == "drop":
                self.drops += 1
            host, port = a.host, a.port
            try:
                await asyncio.wait_for(self.stop.wait(), 1.0)
            except asyncio.TimeoutError:
                pass

    async def pace(self, gates):
        for k, g in enumerate(gates):
            if self.stop.is_set():
                break
            g.set_result(None)
            if (k + 1) % 20 == 0:
                await asyncio.sleep(20 / self.a.connect_rate)
        for g in gates:
            if not g.done():
                g.cancel()

    async def write_status(self):
        while not self.stop.is_set():
            if self.a.status:
                tmp = self.a.status + ".tmp"
                with open(tmp, "w") as f:
                    json.dump(self.status(), f)
                os.replace(tmp, self.a.status)
            try:
                await asyncio.wait_for(self.stop.wait(), 0.5)
            except asyncio.TimeoutError:
                pass

    async def main(self):
        loop = asyncio.get_running_loop()
        for s in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(s, self.stop.set)
        loop.call_later(self.a.max_s, self.stop.set)
        gates = [loop.create_future() for _ in range(self.a.clients)]
        tasks = [asyncio.ensure_future(self.client(i, g)) for i, g in enumerate(gates)]
        aux = [asyncio.ensure_future(self.pace(gates)), asyncio.ensure_future(self.write_status())]
        await self.stop.wait()
        await asyncio.wait(tasks, timeout=20)
        for t in tasks + aux:
            t.cancel()
        r = self.status()
        r["per_second"] = [[s, self.per_s[s]] for s in sorted(self.per_s)]
        r["seconds"] = round(time.time() - self.t0, 1)
        return r


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--domain", default="localhost")
    p.add_argument("--clients", type=int, required=True)
    p.add_argument("--prefix", default="bench")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--password", default="pw")
    p.add_argument("--connect-rate", type=float, default=400)
    p.add_argument("--timeout", type=float, default=20)
    p.add_argument("--status")
    p.add_argument("--out")
    p.add_argument("--max-s", type=float, default=300)
    a = p.parse_args()
    r = asyncio.run(Run(a).main())
    text = json.dumps(r)
    if a.out:
        Path(a.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
