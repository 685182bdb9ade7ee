#!/usr/bin/python3
"""Small XMPP client helpers for the benchmark harness (Debian's python3 only, no slixmpp).

  xmpp.py probe    --port P [--domain D]
      STARTTLS, then print one JSON line: {"starttls": true, "mechanisms": [...],
      "tls_version": "TLSv1.3", "cipher": "...", "ibr": bool}
  xmpp.py login    --port P --user U --password PW [--mech SCRAM-SHA-1|PLAIN]
      STARTTLS + SASL + bind; exit 0 when the session is bound (checks provisioning)
  xmpp.py register --port P --prefix bench --offset K --count N --password PW [--concurrency C]
      XEP-0077 in-band registration of PREFIX{K..K+N-1}, C connections at a time, each
      connection registering accounts one after another; prints one JSON line with the count,
      the failures and the rate.

Every wait has a deadline; errors name the step that failed.
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import ssl
import sys
import time

NS_STREAM = "http://etherx.jabber.org/streams"


class XmppError(Exception):
    pass


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE     # the benchmark's self-signed certificate
    return ctx


class Conn:
    def __init__(self, host, port, domain, timeout=15.0):
        self.host, self.port, self.domain, self.timeout = host, port, domain, timeout
        self.buf = b""
        self.reader = self.writer = None

    async def open(self):
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), self.timeout)

    def send(self, s):
        self.writer.write(s.encode() if isinstance(s, str) else s)

    async def read_until(self, pattern, what):
        rx = re.compile(pattern, re.S)
        deadline = time.monotonic() + self.timeout
        while True:
            m = rx.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            if re.search(rb"<stream:error|<failure|type=['\"]error['\"]", self.buf):
                raise XmppError(f"{what}: server said {self.buf[-300:].decode(errors='replace')}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise XmppError(f"{what}: no answer within {self.timeout:.0f} s "
                                f"(have {self.buf[-200:]!r})")
            data = await asyncio.wait_for(self.reader.read(65536), left)
            if not data:
                raise XmppError(f"{what}: connection closed (have {self.buf[-200:]!r})")
            self.buf += data

    def header(self):
        self.send(f"<?xml version='1.0'?><stream:stream to='{self.domain}' version='1.0' "
                  f"xmlns='jabber:client' xmlns:stream='{NS_STREAM}'>")

    async def features(self, what):
        self.header()
        m = await self.read_until(rb"<stream:features[^>]*?(/>|>(.*?)</stream:features>)", what)
        return m.group(0).decode(errors="replace")

    async def starttls(self):
        await self.open()
        f = await self.features("stream features")
        if "starttls" not in f:
            raise XmppError(f"no STARTTLS offered: {f}")
        self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        await self.read_until(rb"<proceed[^>]*/>", "STARTTLS proceed")
        await asyncio.wait_for(self.writer.start_tls(tls_context(), server_hostname=self.domain),
                               self.timeout)
        self.buf = b""
        return await self.features("stream features after TLS")

    def tls_info(self):
        so = self.writer.get_extra_info("ssl_object")
        return (so.version(), so.cipher()[0]) if so else (None, None)

    async def close(self):
        if self.writer:
            try:
                self.send("</stream:stream>")
                self.writer.close()     # no wait for the server's close: it is not needed
            except Exception:
                pass


def mechanisms(features):
    return re.findall(r"<mechanism>([^<]+)</mechanism>", features)


def scram_sha1_client(user, password):
    """Generator-style SCRAM-SHA-1 (RFC 5802), no channel binding ('n,,')."""
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n={user},r={nonce}"
    server_first = yield "n,," + first_bare
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    if not attrs["r"].startswith(nonce):
        raise XmppError("SCRAM: server nonce does not extend ours")
    salt, iters = base64.b64decode(attrs["s"]), int(attrs["i"])
    salted = hashlib.pbkdf2_hmac("sha1", password.encode(), salt, iters)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha1).digest()
    stored = hashlib.sha1(client_key).digest()
    final_wo_proof = f"c=biws,r={attrs['r']}"
    auth_msg = f"{first_bare},{server_first},{final_wo_proof}".encode()
    sig = hmac.new(stored, auth_msg, hashlib.sha1).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    server_key = hmac.new(salted, b"Server Key", hashlib.sha1).digest()
    expect = base64.b64encode(hmac.new(server_key, auth_msg, hashlib.sha1).digest()).decode()
    server_final = yield f"{final_wo_proof},p={base64.b64encode(proof).decode()}"
    if server_final != f"v={expect}":
        raise XmppError("SCRAM: server signature does not verify")
    yield None


async def login(host, port, domain, user, password, mech, timeout):
    c = Conn(host, port, domain, timeout)
    try:
        f = await c.starttls()
        if mech not in mechanisms(f):
            raise XmppError(f"{mech} not offered (offered: {', '.join(mechanisms(f))})")
        ns = "urn:ietf:params:xml:ns:xmpp-sasl"
        if mech == "PLAIN":
            cred = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
            c.send(f"<auth xmlns='{ns}' mechanism='PLAIN'>{cred}</auth>")
        elif mech == "SCRAM-SHA-1":
            g = scram_sha1_client(user, password)
            first = next(g)
            c.send(f"<auth xmlns='{ns}' mechanism='SCRAM-SHA-1'>"
                   f"{base64.b64encode(first.encode()).decode()}</auth>")
            m = await c.read_until(rb"<challenge[^>]*>([^<]*)</challenge>", "SCRAM challenge")
            final = g.send(base64.b64decode(m.group(1)).decode())
            c.send(f"<response xmlns='{ns}'>{base64.b64encode(final.encode()).decode()}</response>")
        else:
            raise XmppError(f"mechanism {mech} not implemented here")
        m = await c.read_until(rb"<success[^>]*?(/>|>([^<]*)</success>)", f"SASL {mech} for {user}")
        if mech == "SCRAM-SHA-1":
            g.send(base64.b64decode(m.group(2) or b"").decode())
        await c.features("stream features after SASL")
        c.send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
               "<resource>probe</resource></bind></iq>")
        m = await c.read_until(rb"<jid>([^<]+)</jid>", "resource binding")
        return m.group(1).decode()
    finally:
        await c.close()


async def probe(host, port, domain, timeout):
    c = Conn(host, port, domain, timeout)
    try:
        f = await c.starttls()
        ver, cipher = c.tls_info()
        return {"starttls": True, "mechanisms": mechanisms(f), "tls_version": ver,
                "cipher": cipher, "ibr": "jabber.org/features/iq-register" in f}
    finally:
        await c.close()


async def register(args):
    names = [f"{args.prefix}{i}" for i in range(args.offset, args.offset + args.count)]
    queue = asyncio.Queue()
    for n in names:
        queue.put_nowait(n)
    failures = {}
    done = 0

    async def worker():
        nonlocal done
        c = None
        while not queue.empty():
            name = queue.get_nowait()
            for attempt in range(3):
                try:
                    if c is None:
                        c = Conn(args.host, args.port, args.domain, args.timeout)
                        await c.starttls()
                    c.send(f"<iq type='set' id='r-{name}'><query xmlns='jabber:iq:register'>"
                           f"<username>{name}</username><password>{args.password}</password>"
                           "</query></iq>")
                    m = await c.read_until(
                        rf"<iq[^>]*id=['\"]r-{name}['\"][^>]*?(/>|>.*?</iq>)".encode(), "register")
                    if b"type='error'" in m.group(0) or b'type="error"' in m.group(0):
                        why = re.search(rb"<([a-z-]+) xmlns=['\"]urn:ietf:params:xml:ns:xmpp-stanzas",
                                        m.group(0))
                        raise XmppError(why.group(1).decode() if why else "error")
                    done += 1
                    if not args.reuse:
                        await c.close()
                        c = None
                    break
                except (XmppError, OSError, asyncio.TimeoutError) as e:
                    if c:
                        await c.close()
                        c = None
                    if "conflict" in str(e):       # exists already: count as done
                        done += 1
                        break
                    if attempt == 2:
                        k = str(e)[:80]
                        failures[k] = failures.get(k, 0) + 1
        if c:
            await c.close()

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    dt = time.monotonic() - t0
    return {"registered": done, "failed": sum(failures.values()), "failures": failures,
            "seconds": round(dt, 2), "per_sec": round(done / dt, 1) if dt > 0 else None}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("cmd", choices=["probe", "login", "register"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--domain", default="localhost")
    p.add_argument("--user")
    p.add_argument("--password", default="pw")
    p.add_argument("--mech", default="SCRAM-SHA-1")
    p.add_argument("--prefix", default="bench")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--reuse", action="store_true",
                   help="register several accounts per connection (if the server allows it)")
    p.add_argument("--timeout", type=float, default=15.0)
    a = p.parse_args()
    try:
        if a.cmd == "probe":
            print(json.dumps(asyncio.run(probe(a.host, a.port, a.domain, a.timeout))))
        elif a.cmd == "login":
            if not a.user:
                p.error("login needs --user")
            jid = asyncio.run(login(a.host, a.port, a.domain, a.user, a.password, a.mech, a.timeout))
            print(f"bound {jid} ({a.mech})")
        else:
            r = asyncio.run(register(a))
            print(json.dumps(r))
            if r["failed"]:
                sys.exit(1)
    except (XmppError, OSError, asyncio.TimeoutError) as e:
        print(f"xmpp.py {a.cmd} 127.0.0.1:{a.port}: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
