#!/usr/bin/python3
"""Send one chat message to a user on each of several remote domains (bench/s2s/run.sh, the
memory run): every domain not yet reached makes the sender's server open one outbound s2s
stream, which then stays idle.

  fanout.py --port P --domain D --user U --password PW --to LOCALPART [--pace S]
            [--warm-bytes N] DOMAIN...

Logs in as U@D (STARTTLS, SCRAM-SHA-1, bind; the helpers of bench/compare/xmpp.py), sends
<message to='LOCALPART@DOMAIN' type='chat'/> to each DOMAIN (all at once, or one every S
seconds with --pace: the sender's server then opens its streams one after another instead of
running every handshake at the same time), then a ping to its own server and waits for the
answer, so that the server has routed every message before the stream closes.

--warm-bytes N: first send N bytes of whitespace between stanzas (RFC 6120 §11.7: ignored,
answered by nothing), 16 KiB at a time: the sender's receive buffers are then all in use once,
so that a later memory sample does not count their first touch (xedge's worker has a fixed
pool of 512 × 16 KiB that becomes resident as traffic flows, whatever the number of streams).
Exit status 0 when the ping was answered; every wait has a deadline.
"""
import argparse
import asyncio
import base64
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "compare"))
from xmpp import Conn, XmppError, mechanisms, scram_sha1_client  # noqa: E402

NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
DOMAIN_RE = re.compile(r"^[a-z0-9.-]{1,253}$")


async def fanout(a):
    c = Conn(a.host, a.port, a.domain, a.timeout)
    try:
        f = await c.starttls()
        if "SCRAM-SHA-1" not in mechanisms(f):
            raise XmppError(f"SCRAM-SHA-1 not offered (offered: {', '.join(mechanisms(f))})")
        g = scram_sha1_client(a.user, a.password)
        c.send(f"<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-1'>"
               f"{base64.b64encode(next(g).encode()).decode()}</auth>")
        m = await c.read_until(rb"<challenge[^>]*>([^<]*)</challenge>", "SCRAM challenge")
        final = g.send(base64.b64decode(m.group(1)).decode())
        c.send(f"<response xmlns='{NS_SASL}'>{base64.b64encode(final.encode()).decode()}</response>")
        m = await c.read_until(rb"<success[^>]*?(/>|>([^<]*)</success>)", f"SASL for {a.user}")
        g.send(base64.b64decode(m.group(2) or b"").decode())
        await c.features("stream features after SASL")
        c.send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
               "<resource>fanout</resource></bind></iq>")
        await c.read_until(rb"<jid>([^<]+)</jid>", "resource binding")
        chunk = b" " * 16384
        for _ in range(a.warm_bytes // len(chunk)):
            c.send(chunk)
            await asyncio.wait_for(c.writer.drain(), a.timeout)
        for i, d in enumerate(a.domains):
            if i and a.pace > 0:
                await c.writer.drain()
                await asyncio.sleep(a.pace)
            c.send(f"<message to='{a.to}@{d}' type='chat' id='fan{i}'><body>idle stream {i}</body></message>")
        c.send(f"<iq type='get' id='done' to='{a.domain}'><ping xmlns='urn:xmpp:ping'/></iq>")
        await c.read_until(rb"<iq[^>]*id=['\"]done['\"]", "the ping after the messages")
    finally:
        await c.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--domain", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--to", required=True, help="the localpart on every remote domain")
    p.add_argument("--pace", type=float, default=0.0, help="seconds between two messages")
    p.add_argument("--warm-bytes", type=int, default=0, help="whitespace to send first")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("domains", nargs="+")
    a = p.parse_args()
    if not 0 <= a.pace <= 10:
        p.error("--pace: 0 to 10 seconds")
    if not 0 <= a.warm_bytes <= 1 << 30:
        p.error("--warm-bytes: 0 to 1 GiB")
    for v in [a.domain, a.to, *a.domains]:
        if not DOMAIN_RE.match(v):
            p.error(f"{v!r}: lowercase letters, digits, dots and hyphens only")
    try:
        asyncio.run(fanout(a))
    except (XmppError, OSError, asyncio.TimeoutError) as e:
        print(f"fanout.py {a.user}@{a.domain}: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"{a.user}@{a.domain}: {len(a.domains)} messages sent and routed")


if __name__ == "__main__":
    main()
