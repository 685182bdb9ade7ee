"""Federation between two xedge instances on 127.0.0.1 (RFC 6120 s2s, XEP-0220 dialback,
XEP-0178 SASL EXTERNAL), found through s2s.routes (no DNS: the DNS paths and the real
Prosody / ejabberd peers are in test_federation.py, in a network namespace).

Two servers, xa.localhost and xb.localhost, each with its own certificate: self-signed
(each must fall back to dialback) or signed by a test CA both trust (SASL EXTERNAL).
Users see what federation gives them: messages both ways, a full cross-server
subscription handshake with presence, errors for unreachable domains; peers that break
the rules get the stream errors RFC 6120 names.
"""
import asyncio
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import USERS, Server, ServerOptions, free_port
from slixclient import Client, close_all, run

A, B = "xa.localhost", "xb.localhost"
SECRET = "federation-test-secret-0123456789"


def openssl(*args):
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def self_signed(d: Path, name: str):
    crt, key = d / f"{name}.crt", d / f"{name}.key"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-days", "2", "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
            "-keyout", str(key), "-out", str(crt))
    return crt, key


def test_ca(d: Path):
    crt, key = d / "ca.crt", d / "ca.key"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-days", "2", "-subj", "/CN=xedge test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", str(key), "-out", str(crt))
    return crt, key


test_ca.__test__ = False     # a helper, not a test


def ca_signed(d: Path, ca, name: str):
    crt, key, csr, ext = (d / f"{name}.crt", d / f"{name}.key", d / f"{name}.csr",
                          d / f"{name}.ext")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(csr))
    ext.write_text(f"subjectAltName=DNS:{name},otherName:1.3.6.1.5.5.7.8.7;IA5STRING:_xmpp-server.{name}\n"
                   "extendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
            "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(crt))
    return crt, key


class Pair:
    """xa.localhost and xb.localhost, federating through s2s.routes."""

    def __init__(self, tmp: Path, verified: bool, s2s_extra: str = "", routes_extra=None,
                 direct_tls: bool = False, mode: str = "embedded"):
        self.tmp = tmp
        certs = tmp / "certs"
        certs.mkdir()
        self.certs = {}
        if verified:
            ca = test_ca(certs)
            cert_a, cert_b = ca_signed(certs, ca, A), ca_signed(certs, ca, B)
            ca_file = str(ca[0])
            self.ca = ca
        else:
            cert_a, cert_b = self_signed(certs, A), self_signed(certs, B)
            ca_file = ""
        self.certs = {A: cert_a, B: cert_b}
        self.s2s_port = {A: free_port(), B: free_port()}
        self.tls_port = {A: free_port(), B: free_port()}
        self.servers = {}
        self.socks = []
        for dom, cert in ((A, cert_a), (B, cert_b)):
            other = B if dom == A else A
            routes = {other: (f"tls://127.0.0.1:{self.tls_port[other]}" if direct_tls
                              else f"127.0.0.1:{self.s2s_port[other]}"), **(routes_extra or {})}
            yaml = ("s2s:\n"
                    f"  dialback_secret: {SECRET}-{dom}\n"
                    "  connect_timeout: 10\n" + s2s_extra +
                    "  routes:\n" + "".join(f"    {k}: {v}\n" for k, v in routes.items()))
            opts = ServerOptions(mode=mode, domain=dom, ca_file=ca_file,
                                 extra_listeners=[("s2s", self.s2s_port[dom]),
                                                  ("s2s_tls", self.tls_port[dom])],
                                 extra_edge_yaml=yaml)
            wd = tmp / dom
            wd.mkdir()
            sock = Path(tempfile.mkdtemp(prefix="xs", dir="/tmp"))
            self.socks.append(sock)
            self.servers[dom] = Server(opts, wd, sock, cert)

    def start(self):
        for s in self.servers.values():
            s.start()
            for u in USERS:
                s.add_user(u)
        return self

    def stop(self):
        problems = []
        for s in self.servers.values():
            problems += s.stop()
        for d in self.socks:
            shutil.rmtree(d, ignore_errors=True)
        return problems

    def __getitem__(self, dom):
        return self.servers[dom]


@pytest.fixture
def pair_factory(tmp_path):
    made = []

    def make(verified=False, **kw):
        d = tmp_path / f"pair{len(made)}"
        d.mkdir()
        p = Pair(d, verified, **kw)
        made.append(p)
        return p.start()
    yield make
    problems = []
    for p in made:
        problems += p.stop()
    if problems:
        pytest.fail("server shutdown:\n  " + "\n  ".join(problems), pytrace=False)


async def login(srv, user):
    c = Client(f"{user}@{srv.domain}", USERS[user])
    return await c.login(srv.c2s_port)


async def chat_both_ways(pair):
    alice = await login(pair[A], "alice")
    bob = await login(pair[B], "bob")
    try:
        alice.send_message(mto=f"bob@{B}", mbody="hello from A", mtype="chat")
        m = await bob.next_message(timeout=20, body="hello from A")
        assert str(m["from"]).startswith(f"alice@{A}/")
        bob.send_message(mto=str(m["from"]), mbody="hello from B", mtype="chat")
        m = await alice.next_message(timeout=20, body="hello from B")
        assert str(m["from"]).startswith(f"bob@{B}/")
    finally:
        await close_all(alice, bob)


@pytest.mark.parametrize("mode", ["embedded", "external"])
def test_dialback_messages_both_ways(pair_factory, mode):
    """external: the session servers are xedge-sm processes, the edges reach them over TCP."""
    pair = pair_factory(verified=False, mode=mode)
    run(chat_both_ways(pair), timeout=60)
    # Self-signed on both sides: each authenticated the other with dialback.
    pair[A].wait_log(r"s2s: outbound stream ready.*remote=xb.localhost auth=dialback")
    pair[B].wait_log(r"s2s: outbound stream ready.*remote=xa.localhost auth=dialback")
    pair[B].wait_log(r"inbound stream authenticated.*remote=xa.localhost auth=dialback")
    # The receiving side asked the authoritative one (a verification stream).
    pair[A].wait_log(r"dialback key checked for a receiving server.*receiving=xb.localhost valid=1")


def test_sasl_external_with_verified_certificates(pair_factory):
    pair = pair_factory(verified=True)
    run(chat_both_ways(pair), timeout=60)
    pair[A].wait_log(r"s2s: outbound stream ready.*remote=xb.localhost auth=SASL EXTERNAL")
    pair[B].wait_log(r"inbound stream authenticated.*remote=xa.localhost auth=SASL-EXTERNAL")


def test_subscription_handshake_across_servers(pair_factory):
    pair = pair_factory(verified=False)

    async def go():
        alice = await login(pair[A], "alice")
        bob = await login(pair[B], "bob")
        for c in (alice, bob):      # the users decide, not slixmpp's defaults
            c.roster.auto_authorize = None   # None: ask the user (False would refuse)
            c.roster.auto_subscribe = False
        try:
            bob_sub = asyncio.get_running_loop().create_future()
            bob.add_event_handler("presence_subscribe",
                                  lambda p: bob_sub.done() or bob_sub.set_result(p))
            alice.send_presence(pto=f"bob@{B}", ptype="subscribe")
            req = await asyncio.wait_for(bob_sub, 20)
            assert str(req["from"]) == f"alice@{A}"
            bob.send_presence(pto=f"alice@{A}", ptype="subscribed")
            # Approved: alice's server probes bob's, and alice sees bob online.
            await alice.wait_presence(str(bob.boundjid), "available", timeout=20)
            # Alice's roster says to, bob's says from.
            roster = await alice.get_roster(timeout=10)
            items = roster["roster"]["items"]
            assert items[f"bob@{B}"]["subscription"] == "to"
            roster = await bob.get_roster(timeout=10)
            assert roster["roster"]["items"][f"alice@{A}"]["subscription"] == "from"
            # And back: bob subscribes to alice; both are then "both".
            alice_sub = asyncio.get_running_loop().create_future()
            alice.add_event_handler("presence_subscribe",
                                    lambda p: alice_sub.done() or alice_sub.set_result(p))
            bob.send_presence(pto=f"alice@{A}", ptype="subscribe")
            await asyncio.wait_for(alice_sub, 20)
            alice.send_presence(pto=f"bob@{B}", ptype="subscribed")
            await bob.wait_presence(str(alice.boundjid), "available", timeout=20)
            # Alice going offline reaches bob as unavailable presence.
            full = str(alice.boundjid)
            await alice.close()
            await bob.wait_presence(full, "unavailable", timeout=20)
        finally:
            await close_all(alice, bob)
    run(go(), timeout=120)


def test_unreachable_domain_bounces_to_sender(pair_factory):
    dead = free_port()     # nothing listens there
    pair = pair_factory(verified=False, routes_extra={"gone.localhost": f"127.0.0.1:{dead}"})

    async def go():
        alice = await login(pair[A], "alice")
        errors = asyncio.Queue()
        alice.add_event_handler("message_error", errors.put_nowait)
        try:
            alice.send_message(mto="nobody@gone.localhost", mbody="are you there", mtype="chat")
            m = await asyncio.wait_for(errors.get(), 20)
            assert m["type"] == "error"
            assert m["error"]["condition"] == "remote-server-not-found"
            assert str(m["from"]) == "nobody@gone.localhost"
        finally:
            await close_all(alice)
    run(go(), timeout=60)
    pair[A].wait_log(r"s2s: remote server unreachable.*remote=gone.localhost")


def test_idle_stream_closes_and_reopens(pair_factory):
    pair = pair_factory(verified=False, s2s_extra="  idle_timeout: 2\n")

    async def go():
        await chat_both_ways(pair)
    run(go(), timeout=60)
    pair[A].wait_log(r"idle stream closed.*role=s2s-out", timeout=20)
    run(go(), timeout=60)
    pair[A].wait_log(r"s2s: outbound stream ready.*remote=xb.localhost", count=2, timeout=20)


# ---- hostile peers (raw sockets) ---------------------------------------------------

def s2s_raw(port, to, frm="evil.localhost"):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall((f"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
               f"xmlns:stream='http://etherx.jabber.org/streams' "
               f"xmlns:db='jabber:server:dialback' from='{frm}' to='{to}' version='1.0'>").encode())
    return s


def read_until(s, needle, timeout=10.0):
    data = b""
    deadline = time.monotonic() + timeout
    while needle.encode() not in data and time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")


def test_unknown_host_gets_host_unknown(pair_factory):
    pair = pair_factory(verified=False)
    s = s2s_raw(pair.s2s_port[A], "nope.localhost")
    out = read_until(s, "</stream:stream>")
    s.close()
    assert "<host-unknown" in out, out


def test_stanza_before_tls_and_auth_is_refused(pair_factory):
    pair = pair_factory(verified=False)
    s = s2s_raw(pair.s2s_port[A], A)
    out = read_until(s, "</stream:features>")
    assert "<starttls" in out and "<required/>" in out, out
    s.sendall(f"<message from='x@evil.localhost' to='alice@{A}'><body>spoof</body></message>".encode())
    out = read_until(s, "</stream:stream>")
    s.close()
    assert "<policy-violation" in out, out


def test_spoofed_dialback_key_is_invalid(pair_factory):
    """A peer claiming to be xb.localhost with a made-up key: A asks xb's authoritative
    server (the real B), which says invalid; A answers type='invalid' and the stanza that
    follows is refused."""
    pair = pair_factory(verified=False)
    raw = socket.create_connection(("127.0.0.1", pair.s2s_port[A]), timeout=10)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    hdr = (f"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
           f"xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' "
           f"from='{B}' to='{A}' version='1.0'>").encode()
    raw.sendall(hdr)
    out = read_until(raw, "</stream:features>")
    assert "<starttls" in out, out
    raw.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    assert "<proceed" in read_until(raw, "<proceed")
    s = ctx.wrap_socket(raw, server_hostname=A)
    s.sendall(hdr)
    out = read_until(s, "</stream:features>")
    assert "urn:xmpp:features:dialback" in out, out
    s.sendall(f"<db:result from='{B}' to='{A}'>{'0' * 64}</db:result>".encode())
    out = read_until(s, "type='invalid'", timeout=20)
    assert f"<db:result from='{A}' to='{B}' type='invalid'/>" in out, out
    s.sendall(f"<message from='bob@{B}' to='alice@{A}'><body>spoof</body></message>".encode())
    out = read_until(s, "</stream:stream>")
    s.close()
    assert "<not-authorized" in out, out


def test_direct_tls_s2s(pair_factory):
    """XEP-0368: the route says tls://, so the outbound stream starts with TLS (ALPN
    xmpp-server) on the peer's s2s_tls listener."""
    pair = pair_factory(verified=True, direct_tls=True)
    run(chat_both_ways(pair), timeout=60)
    pair[A].wait_log(r"s2s: connecting.*remote=xb.localhost.*direct_tls=1")
    pair[A].wait_log(r"s2s: outbound stream ready.*remote=xb.localhost auth=SASL EXTERNAL")


def test_require_valid_certs_refuses_self_signed(pair_factory):
    pair = pair_factory(verified=False, s2s_extra="  require_valid_certs: true\n")

    async def go():
        alice = await login(pair[A], "alice")
        errors = asyncio.Queue()
        alice.add_event_handler("message_error", errors.put_nowait)
        try:
            alice.send_message(mto=f"bob@{B}", mbody="only with a valid certificate", mtype="chat")
            m = await asyncio.wait_for(errors.get(), 30)
            assert m["error"]["condition"] in ("remote-server-not-found", "remote-server-timeout")
        finally:
            await close_all(alice)
    run(go(), timeout=60)
    pair[A].wait_log(r"remote certificate does not verify.*why=\"self-signed")


def external_peer(pair, dom_claimed: str):
    """A raw s2s client presenting xb.localhost's CA-signed certificate to A, after
    STARTTLS and SASL EXTERNAL: the stream is authenticated for xb.localhost."""
    raw = socket.create_connection(("127.0.0.1", pair.s2s_port[A]), timeout=10)
    hdr = (f"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
           f"xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' "
           f"from='{dom_claimed}' to='{A}' version='1.0'>").encode()
    raw.sendall(hdr)
    assert "<starttls" in read_until(raw, "</stream:features>")
    raw.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    assert "<proceed" in read_until(raw, "<proceed")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(str(pair.certs[B][0]), str(pair.certs[B][1]))
    s = ctx.wrap_socket(raw, server_hostname=A)
    s.sendall(hdr)
    return s


def test_sasl_external_then_spoofed_from_is_invalid_from(pair_factory):
    pair = pair_factory(verified=True)
    s = external_peer(pair, B)
    feats = read_until(s, "</stream:features>")
    assert "<mechanism>EXTERNAL</mechanism>" in feats, feats
    s.sendall(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>")
    assert "<success" in read_until(s, "<success")
    s.sendall((f"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
               f"xmlns:stream='http://etherx.jabber.org/streams' from='{B}' to='{A}' "
               f"version='1.0'>").encode())
    read_until(s, "</stream:features>")
    s.sendall(f"<message from='mallory@evil.localhost' to='alice@{A}'><body>x</body></message>".encode())
    out = read_until(s, "</stream:stream>")
    s.close()
    assert "<invalid-from" in out, out


def test_sasl_external_for_another_domain_is_refused(pair_factory):
    """The certificate names xb.localhost; claiming xc.localhost gets no EXTERNAL offer,
    and asking for it anyway fails."""
    pair = pair_factory(verified=True)
    s = external_peer(pair, "xc.localhost")
    feats = read_until(s, "</stream:features>")
    assert "EXTERNAL" not in feats, feats
    s.sendall(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>")
    out = read_until(s, "</failure>")
    s.close()
    assert "<not-authorized/>" in out, out


def test_stanza_for_a_domain_not_ours_is_host_unknown(pair_factory):
    pair = pair_factory(verified=True)
    s = external_peer(pair, B)
    read_until(s, "</stream:features>")
    s.sendall(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>")
    read_until(s, "<success")
    s.sendall((f"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
               f"xmlns:stream='http://etherx.jabber.org/streams' from='{B}' to='{A}' "
               f"version='1.0'>").encode())
    read_until(s, "</stream:features>")
    s.sendall(f"<message from='bob@{B}' to='someone@elsewhere.localhost'><body>x</body></message>".encode())
    out = read_until(s, "</stream:stream>")
    s.close()
    assert "<host-unknown" in out, out


def test_inbound_rate_limit_pauses_without_loss(pair_factory):
    """s2s.rate_stanzas bounds what a peer's stream may push; beyond it reads pause
    (backpressure on the peer), nothing is dropped."""
    pair = pair_factory(verified=False, s2s_extra="  rate_stanzas: 20\n")
    n = 60

    async def go():
        alice = await login(pair[A], "alice")
        bob = await login(pair[B], "bob")
        try:
            for i in range(n):
                alice.send_message(mto=f"bob@{B}", mbody=f"burst {i}", mtype="chat")
            got = [(await bob.next_message(timeout=30))["body"] for _ in range(n)]
            assert got == [f"burst {i}" for i in range(n)], got
        finally:
            await close_all(alice, bob)
    run(go(), timeout=90)
    pair[B].wait_log(r"rate limit: pausing reads")
