"""xedge federating with real servers — Prosody 0.12 and ejabberd 23.01 — inside a private
network namespace with its own DNS (tests/integration/fedns.py): xedge.example finds
prosody.example and ejabberd.example through SRV records, and they find it the same way.

In both modes of the harness, in both directions, with each server: messages, and a full
cross-server subscription handshake with presence.  "verified": every certificate is
signed by the test CA that every server trusts, so streams are authenticated with SASL
EXTERNAL; "selfsigned": nobody's certificate verifies, so dialback (XEP-0220) carries the
authentication.  Both sides' logs say which method was used.
"""
import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import binary, child_env
from fedns import (fed, fed_module, fed_pki, fedns_module, login,  # noqa: F401
                   subscribe_both_ways)
from slixclient import Client, close_all, run

S2S_TIMEOUT = 60.0
RUN_TIMEOUT = 180.0
XEDGE = "xedge.example"
pytestmark = pytest.mark.watchdog(600)

# The harness's default records give every test domain `_xmpp-server._tcp.D -> D:5269`.
FEDNS_RECORDS = {}


class XedgeInNS:
    """xedge serving xedge.example at its namespace address, c2s 5222 and s2s 5269."""

    def __init__(self, ns, pki, mode, domain=XEDGE, direct_tls_port=None):
        self.ns, self.mode, self.domain = ns, mode, domain
        self.addr = ns.addr(domain)
        self.dir = Path(tempfile.mkdtemp(prefix="xfedx", dir="/tmp"))
        cert = pki.cert(domain, mode)
        self.config = self.dir / "xedge.yaml"
        self.log = self.dir / "xedge.log"
        self.config.write_text(
            "workers: 2\nlog_level: debug\n"
            "listeners:\n"
            f"  - type: c2s\n    address: {self.addr}:5222\n"
            f"  - type: s2s\n    address: {self.addr}:5269\n" +
            (f"  - type: s2s_tls\n    address: {self.addr}:{direct_tls_port}\n"
             if direct_tls_port else "") +
            f"domains:\n  - name: {domain}\n    cert: {cert.crt}\n    key: {cert.key}\n" +
            (f"tls:\n  ca_file: {pki.ca}\n" if mode == "verified" else "") +
            "s2s:\n  connect_timeout: 45\n  dialback_secret: federation-test-secret-xyz\n"
            "session_server:\n"
            f"  database: {self.dir / 'xedge.db'}\n"
            f"  admin_socket: {self.dir / 'admin.sock'}\n")
        self.proc = ns.popen([str(binary("xedge")), "-c", str(self.config)], "xedge",
                             log=self.log, env=child_env(), ok_codes=(0,))
        ns.wait_listening(self.addr, 5269, self.proc, logs=(self.log,))
        ns.wait_listening(self.addr, 5222, self.proc, logs=(self.log,))
        deadline = time.monotonic() + 60
        while not (self.dir / "admin.sock").exists():
            assert time.monotonic() < deadline, "xedge: no admin socket\n" + self.text()
            time.sleep(0.05)

    def text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def new_user(self, prefix="x"):
        user = f"{prefix}{os.urandom(3).hex()}"
        r = subprocess.run([str(binary("xedgectl")), "-c", str(self.config), "user", "add",
                            f"{user}@{self.domain}", "pw-" + user], capture_output=True, text=True,
                           timeout=30, env=child_env())
        assert r.returncode == 0, r.stdout + r.stderr
        return f"{user}@{self.domain}", "pw-" + user

    def wait_log(self, pattern, timeout=S2S_TIMEOUT):
        import re
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            hits = [l for l in self.text().splitlines() if rx.search(l)]
            if hits:
                return hits
            assert time.monotonic() < deadline, f"xedge: no log line {pattern!r}\n" + \
                "\n".join(self.text().splitlines()[-60:])
            time.sleep(0.1)

    def stop(self):
        problems = self.ns.stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)
        return problems


@pytest.fixture(scope="module")
def xfed(fed_module, fed_pki):
    """Prosody, ejabberd (the harness, in its mode) and xedge in the same namespace."""
    x = XedgeInNS(fed_module.ns, fed_pki, fed_module.mode)
    yield fed_module, x
    problems = x.stop()
    if problems:
        pytest.fail("xedge teardown:\n  " + "\n  ".join(problems), pytrace=False)


PEERS = ("prosody", "ejabberd")


async def xlogin(client, x):
    client.connect((x.addr, 5222), force_starttls=True)
    await asyncio.wait_for(asyncio.shield(client.ready), 60)
    return client


def peer(f, name):
    return getattr(f, name)


@pytest.mark.parametrize("name", PEERS)
def test_messages_both_ways(xfed, name):
    f, x = xfed
    p = peer(f, name)
    x_jid, x_pw = x.new_user()
    p_jid, p_pw = p.new_user("p")
    tag = os.urandom(4).hex()

    async def scenario():
        a, b = Client(x_jid, x_pw), Client(p_jid, p_pw)
        try:
            await xlogin(a, x)
            await login(b, p)
            a.send_message(mto=p_jid, mbody=f"x2p-{tag}", mtype="chat")
            m = await b.next_message(timeout=S2S_TIMEOUT, body=f"x2p-{tag}")
            assert m["from"] == a.boundjid and m["type"] == "chat", m
            b.send_message(mto=x_jid, mbody=f"p2x-{tag}", mtype="chat")
            m = await a.next_message(timeout=S2S_TIMEOUT, body=f"p2x-{tag}")
            assert m["from"] == b.boundjid and m["type"] == "chat", m
        finally:
            await close_all(a, b)
    with f.ns.enter():
        run(scenario(), timeout=RUN_TIMEOUT)
    # How each side authenticated: the mode decides, and both logs agree.
    want = {"verified": "SASL EXTERNAL", "selfsigned": "dialback"}[f.mode]
    x.wait_log(rf"s2s: outbound stream ready.*remote={p.domain} auth={want}")
    x.wait_log(rf"s2s: inbound stream authenticated.*remote={p.domain} "
               rf"auth={want.replace(' ', '-')}")
    got = p.wait_s2s_auth(XEDGE)
    expect = {"verified": "EXTERNAL", "selfsigned": "dialback"}[f.mode]
    assert got["in"] and set(got["in"]) == {expect}, got
    assert got["out"] and set(got["out"]) == {expect}, got


@pytest.mark.parametrize("name", PEERS)
@pytest.mark.parametrize("first", ["xedge", "peer"])
def test_subscription_handshake(xfed, name, first):
    """The full handshake (RFC 6121 §3), started from either side: subscribe,
    subscribed, and back; both then see each other's presence, both rosters say
    "both", and going offline reaches the other side as unavailable."""
    f, x = xfed
    p = peer(f, name)
    x_jid, x_pw = x.new_user()
    p_jid, p_pw = p.new_user("p")

    async def scenario():
        cx, cp = Client(x_jid, x_pw), Client(p_jid, p_pw)
        for c in (cx, cp):
            c.auto_authorize = None
            c.auto_subscribe = False
        try:
            await xlogin(cx, x)
            await login(cp, p)
            await cx.get_roster(timeout=S2S_TIMEOUT)
            await cp.get_roster(timeout=S2S_TIMEOUT)
            a, a_jid, b, b_jid = (cx, x_jid, cp, p_jid) if first == "xedge" else \
                (cp, p_jid, cx, x_jid)
            await subscribe_both_ways(a, a_jid, b, b_jid, S2S_TIMEOUT)
            gone = str(b.boundjid)
            await b.close()
            await a.wait_presence(gone, "unavailable", S2S_TIMEOUT)
        finally:
            await close_all(cx, cp)
    with f.ns.enter():
        run(scenario(), timeout=RUN_TIMEOUT)


def bounce_of(f, x, to):
    """What a user of xedge gets back for a message to `to`: the error stanza."""
    x_jid, x_pw = x.new_user()
    got = []

    async def scenario():
        c = Client(x_jid, x_pw)
        errors = asyncio.Queue()
        c.add_event_handler("message_error", errors.put_nowait)
        try:
            await xlogin(c, x)
            c.send_message(mto=to, mbody="hello?", mtype="chat")
            got.append(await asyncio.wait_for(errors.get(), S2S_TIMEOUT))
        finally:
            await close_all(c)
    with f.ns.enter():
        run(scenario(), timeout=RUN_TIMEOUT)
    return got[0]


def test_unknown_domain_bounces(xfed):
    """gone.example does not exist in the namespace's DNS: NXDOMAIN, so the sender gets
    remote-server-not-found."""
    f, x = xfed
    m = bounce_of(f, x, "nobody@gone.example")
    assert m["error"]["condition"] == "remote-server-not-found", m
    assert str(m["from"]) == "nobody@gone.example"
    x.wait_log(r"s2s: remote server unreachable.*remote=gone.example")


# DNS shapes for xedge2.example (a second xedge, 127.0.0.5), and what xedge must do.
DNS_CASES = {
    # XEP-0368: the Direct TLS record has the better priority: TLS at once on 5270.
    "srv-direct-tls": ({"_xmpps-server._tcp.xedge2.example": ("SRV", "xedge2.example", 5270, 0, 5),
                        "_xmpp-server._tcp.xedge2.example": ("SRV", "xedge2.example", 5269, 10, 5)},
                       r"target=xedge2.example:5270 direct_tls=1"),
    # No SRV record at all: the domain's A record, port 5269 (RFC 6120 §3.2.2).
    "a-fallback": ({"_xmpp-server._tcp.xedge2.example": None},
                   r"target=xedge2.example:5269 direct_tls=0"),
}


@pytest.mark.parametrize("case", DNS_CASES)
def test_dns_shapes_between_two_xedges(xfed, fed_pki, case):
    f, x = xfed
    records, expect = DNS_CASES[case]
    f.ns.dns_records(records)
    x2 = XedgeInNS(f.ns, fed_pki, f.mode, domain="xedge2.example", direct_tls_port=5270)
    try:
        a_jid, a_pw = x.new_user()
        b_jid, b_pw = x2.new_user()
        tag = os.urandom(4).hex()

        async def scenario():
            a, b = Client(a_jid, a_pw), Client(b_jid, b_pw)
            try:
                await xlogin(a, x)
                await xlogin(b, x2)
                a.send_message(mto=b_jid, mbody=f"dns-{tag}", mtype="chat")
                m = await b.next_message(timeout=S2S_TIMEOUT, body=f"dns-{tag}")
                assert m["from"] == a.boundjid
                b.send_message(mto=a_jid, mbody=f"back-{tag}", mtype="chat")
                await a.next_message(timeout=S2S_TIMEOUT, body=f"back-{tag}")
            finally:
                await close_all(a, b)
        with f.ns.enter():
            run(scenario(), timeout=RUN_TIMEOUT)
        x.wait_log(r"s2s: connecting.*remote=xedge2.example " + expect)
    finally:
        problems = x2.stop()
        f.ns.dns_records(FEDNS_RECORDS, reset=True)
    assert not problems, problems


def test_service_not_offered_bounces(xfed):
    """A single SRV record with target "." says the domain offers no XMPP service
    (RFC 2782): no fallback to its A record, the sender gets remote-server-not-found."""
    f, x = xfed
    f.ns.dns_records({"_xmpp-server._tcp.xedge2.example": ("SRV", ".")})
    try:
        m = bounce_of(f, x, "someone@xedge2.example")
        assert m["error"]["condition"] == "remote-server-not-found", m
        x.wait_log(r"s2s: remote server unreachable.*remote=xedge2.example.*no XMPP service")
    finally:
        f.ns.dns_records(FEDNS_RECORDS, reset=True)
