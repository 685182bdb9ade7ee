"""The federation harness (fedns.py) proven on two real servers: inside the module's
private network namespace, Prosody (prosody.example) and ejabberd (ejabberd.example)
find each other through the namespace's DNS, authenticate each other — with SASL
EXTERNAL on CA-signed certificates in "verified" mode, with dialback on self-signed
ones in "selfsigned" mode — and carry messages and a full subscription handshake
between a slixmpp user on each.  This stays as the baseline that the two real
servers federate in the harness; xedge's s2s tests join the same namespace.
"""
import asyncio
import os
import subprocess
import time

import pytest

from fedns import (DOMAINS, FedNS, fed, fed_module, fed_pki, fedns, fedns_module,  # noqa: F401
                   login, subscribe_both_ways)
from slixclient import Client, close_all, run

S2S_TIMEOUT = 60.0      # first s2s connection: DNS, TCP, TLS, auth — on a loaded machine
RUN_TIMEOUT = 180.0

# A test's time includes the module fixtures it is the first to use (an ejabberd boot
# on a loaded machine): more than conftest's default watchdog.
pytestmark = pytest.mark.watchdog(600)

# Extra records for this module's dnsmasq: each kind a federation test needs.
FEDNS_RECORDS = {
    "_xmpps-server._tcp.xedge.example": ("SRV", "xedge.example", 5270),     # Direct TLS
    "odd.example": ("A", "127.0.0.2"),
    "_xmpp-server._tcp.odd.example": ("SRV", "odd.example", 15269, 10, 1),  # other port
    "nosrv.example": ("A", "127.0.0.5"),                                     # A fallback
    "_xmpp-server._tcp.xedge2.example": None,                               # no SRV
    "_xmpp-server._tcp.dead.example": ("SRV", "."),                         # not offered
}

# How each mode must authenticate, in both directions, on both servers.
METHOD = {"verified": "EXTERNAL", "selfsigned": "dialback"}


# ---- the namespace and its DNS --------------------------------------------------------

def _thread_netns():
    return os.readlink("/proc/thread-self/ns/net")


def test_namespace_is_private(fedns):
    host_ns = _thread_netns()
    host_resolv = open("/etc/resolv.conf").read()
    assert fedns.netns != host_ns
    with fedns.enter():
        assert _thread_netns() == fedns.netns and fedns.inside()
        with fedns.enter():                     # nests
            assert fedns.inside()
        assert fedns.inside()
    assert _thread_netns() == host_ns and not fedns.inside()
    try:
        with fedns.enter():
            raise KeyError("boom")
    except KeyError:
        pass
    assert _thread_netns() == host_ns, "enter() must switch back when the block raises"

    # Only lo, up: nothing inside reaches any other network.
    links = fedns.run(["ip", "-o", "link"]).stdout.splitlines()
    assert len(links) == 1 and ": lo:" in links[0] and "UP" in links[0], links
    inside = fedns.run(["cat", "/etc/resolv.conf"]).stdout
    assert "nameserver 127.0.0.1" in inside.splitlines()
    assert open("/etc/resolv.conf").read() == host_resolv, "the host's resolv.conf changed"
    with open("/proc/self/mountinfo") as f:
        assert "xfedns" not in f.read(), "a mount of the namespace leaked to the host"


def test_dns_records(fedns):
    for d, ip in DOMAINS.items():
        assert fedns.dns_query(d, "A") == ("NOERROR", [ip])
    assert fedns.dns_query("_xmpp-server._tcp.prosody.example", "SRV") == \
        ("NOERROR", [(0, 5, 5269, "prosody.example")])
    # The module's extra records.
    assert fedns.dns_query("_xmpps-server._tcp.xedge.example", "SRV") == \
        ("NOERROR", [(0, 5, 5270, "xedge.example")])
    assert fedns.dns_query("_xmpp-server._tcp.odd.example", "SRV") == \
        ("NOERROR", [(10, 1, 15269, "odd.example")])
    assert fedns.dns_query("odd.example", "A") == ("NOERROR", ["127.0.0.2"])
    assert fedns.dns_query("nosrv.example", "A") == ("NOERROR", ["127.0.0.5"])
    assert fedns.dns_query("_xmpp-server._tcp.nosrv.example", "SRV")[0] == "NXDOMAIN"
    assert fedns.dns_query("_xmpp-server._tcp.xedge2.example", "SRV")[0] == "NXDOMAIN"
    assert fedns.dns_query("xedge2.example", "A") == ("NOERROR", ["127.0.0.5"])
    rcode, ans = fedns.dns_query("_xmpp-server._tcp.dead.example", "SRV")
    assert rcode == "NOERROR" and len(ans) == 1 and ans[0][3] == "", ans    # target "."
    assert fedns.dns_query("gone.example", "A") == ("NXDOMAIN", [])
    assert fedns.dns_query("prosody.example", "AAAA") == ("NOERROR", [])
    # Never forwarded: a name outside the test zone is refused, not looked up.
    assert fedns.dns_query("debian.org", "A")[0] == "REFUSED"

    # Changed at run time, then back.
    before = fedns.dns_records()
    try:
        fedns.dns_records({"late.example": ("A", "127.0.0.7"),
                           "_xmpp-server._tcp.prosody.example": ("SRV", "prosody.example", 5999)})
        assert fedns.dns_query("late.example", "A") == ("NOERROR", ["127.0.0.7"])
        assert fedns.dns_query("_xmpp-server._tcp.prosody.example", "SRV")[1] == \
            [(0, 5, 5999, "prosody.example")]
    finally:
        fedns.dns_records(FEDNS_RECORDS, reset=True)
    assert fedns.dns_records() == before
    assert fedns.dns_query("late.example", "A")[0] == "NXDOMAIN"


def test_teardown_leaves_nothing():
    """A namespace of its own: a process that left its process group (setsid) and
    ignores SIGTERM is still gone after close(), and so is the holder."""
    ns = FedNS()
    try:
        netns = ns.netns
        ns.popen(["sh", "-c", "setsid sh -c 'trap \"\" TERM; sleep 1000; :' & "
                              "exec sleep 1000"], "stray")

        def escaped():          # in the namespace, in no session the harness made
            known = {ns.pid} | {q.pid for q in ns.procs_started}
            return [pid for pid in _members(netns) if _session(pid) not in known]
        deadline = time.monotonic() + 30
        while not escaped() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert escaped(), "the stray process did not start"
    finally:
        problems = ns.close()
    assert problems == [], problems
    assert ns.holder.poll() is not None
    assert _members(netns) == [], "processes left in the namespace"
    assert not ns.dir.exists()


def _session(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[3])   # state ppid pgrp session
    except (OSError, ValueError, IndexError):
        return None


def _members(netns):
    """Pids of the processes in network namespace netns."""
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.readlink(f"/proc/{d}/ns/net") == netns:
                    pids.append(int(d))
            except OSError:
                pass
    return pids


def test_certificates(fed_pki):
    def openssl(*args):
        return subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True,
                              timeout=30)
    for d in DOMAINS:
        good, own = fed_pki.cert(d, "verified"), fed_pki.cert(d, "selfsigned")
        r = openssl("verify", "-CAfile", fed_pki.ca, "-purpose", "sslserver", good.crt)
        assert r.returncode == 0, r.stdout + r.stderr
        r = openssl("verify", "-CAfile", fed_pki.ca, "-purpose", "sslclient", good.crt)
        assert r.returncode == 0, r.stdout + r.stderr
        r = openssl("verify", "-CAfile", fed_pki.ca, own.crt)
        assert r.returncode != 0, "a self-signed leaf must not verify against the test CA"
        for c in (good, own):
            text = openssl("x509", "-in", c.crt, "-noout", "-text").stdout
            assert f"DNS:{d}" in text, text
            # The SRV-ID (RFC 4985 otherName id-on-dnsSRV, RFC 7712) for _xmpp-server.
            assert f"othername: SRVName::_xmpp-server.{d}" in text, text


# ---- two real servers federating -----------------------------------------------------

def _bare(jid):
    return str(jid).split("/")[0]


def _users(fed):
    a_jid, a_pw = fed.prosody.new_user("p")
    b_jid, b_pw = fed.ejabberd.new_user("e")
    return a_jid, a_pw, b_jid, b_pw


def test_messages_both_ways(fed):
    a_jid, a_pw, b_jid, b_pw = _users(fed)
    tag = os.urandom(4).hex()

    async def scenario():
        a, b = Client(a_jid, a_pw), Client(b_jid, b_pw)
        try:
            await login(a, fed.prosody)
            await login(b, fed.ejabberd)
            a.send_message(mto=b_jid, mbody=f"p2e-{tag}", mtype="chat")
            m = await b.next_message(timeout=S2S_TIMEOUT, body=f"p2e-{tag}")
            assert m["from"] == a.boundjid and m["type"] == "chat", m
            b.send_message(mto=a_jid, mbody=f"e2p-{tag}", mtype="chat")
            m = await a.next_message(timeout=S2S_TIMEOUT, body=f"e2p-{tag}")
            assert m["from"] == b.boundjid and m["type"] == "chat", m
        finally:
            await close_all(a, b)
    with fed.ns.enter():
        run(scenario(), timeout=RUN_TIMEOUT)


def test_subscription_handshake(fed):
    a_jid, a_pw, b_jid, b_pw = _users(fed)

    async def scenario():
        a, b = Client(a_jid, a_pw), Client(b_jid, b_pw)
        for c in (a, b):                # every step of the handshake is the test's own
            c.auto_authorize = None
            c.auto_subscribe = False
        try:
            await login(a, fed.prosody)
            await login(b, fed.ejabberd)
            # Interested resources (RFC 6121 2.1.6): an approval and roster pushes are
            # delivered only to resources that requested the roster.
            await a.get_roster(timeout=S2S_TIMEOUT)
            await b.get_roster(timeout=S2S_TIMEOUT)
            # Approved both ways: each now sees the other online (RFC 6121 3.1.5),
            # and both rosters say "both".
            await subscribe_both_ways(a, a_jid, b, b_jid, S2S_TIMEOUT)
            # And a presence change crosses over.
            b.send_presence(pstatus="away-now", pshow="away")
            await _wait_presence_show(a, b.boundjid, "away")
        finally:
            await close_all(a, b)
    with fed.ns.enter():
        run(scenario(), timeout=RUN_TIMEOUT)


async def _wait_presence_show(client, full_jid, show, timeout=S2S_TIMEOUT):
    got = []

    def handler(p):
        if p["from"] == full_jid and p["show"] == show:
            got.append(p)
    client.add_event_handler("presence", handler)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not got:
            if loop.time() > deadline:
                raise AssertionError(f"{client.boundjid}: no presence show={show} from "
                                     f"{full_jid} within {timeout} s")
            await asyncio.sleep(0.05)
    finally:
        client.del_event_handler("presence", handler)


def test_s2s_authentication_method(fed):
    """Read from both servers' logs how each s2s stream was authenticated: in each
    direction, only the mode's method."""
    a_jid, a_pw, b_jid, b_pw = _users(fed)

    async def scenario():            # traffic both ways: both s2s streams exist
        a, b = Client(a_jid, a_pw), Client(b_jid, b_pw)
        try:
            await login(a, fed.prosody)
            await login(b, fed.ejabberd)
            a.send_message(mto=b_jid, mbody="ping-e", mtype="chat")
            await b.next_message(timeout=S2S_TIMEOUT, body="ping-e")
            b.send_message(mto=a_jid, mbody="ping-p", mtype="chat")
            await a.next_message(timeout=S2S_TIMEOUT, body="ping-p")
        finally:
            await close_all(a, b)
    with fed.ns.enter():
        run(scenario(), timeout=RUN_TIMEOUT)

    want = METHOD[fed.mode]
    p = fed.prosody.wait_s2s_auth("ejabberd.example")
    e = fed.ejabberd.wait_s2s_auth("prosody.example")
    for who, got in (("prosody", p), ("ejabberd", e)):
        for direction in ("in", "out"):
            assert got[direction] and set(got[direction]) == {want}, \
                f"{fed.mode}: {who} {direction}bound s2s authenticated by {got[direction]}, " \
                f"expected only {want}"
    if fed.mode == "verified":
        # No dialback anywhere: Prosody has no mod_dialback, ejabberd no mod_s2s_dialback.
        assert not fed.prosody.log_lines(r"(?i)dialback"), fed.prosody.log_lines("(?i)dialback")
        assert not fed.ejabberd.log_lines(r"(?i)dialback")
        assert not fed.ejabberd.log_lines(r"Failed (inbound|outbound) s2s")
    else:
        # Each first tried SASL EXTERNAL, was refused (self-signed), fell back.
        assert fed.prosody.log_lines(r"SASL EXTERNAL with ejabberd\.example failed")
        assert fed.prosody.log_lines(r"SASL EXTERNAL failed, falling back to dialback")
        assert fed.ejabberd.log_lines(
            r"Failed inbound s2s EXTERNAL authentication prosody\.example -> "
            r"ejabberd\.example .*self signed certificate")
        assert fed.ejabberd.log_lines(r"Retrying with s2s dialback authentication: "
                                      r"ejabberd\.example -> prosody\.example")
