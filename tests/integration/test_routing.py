"""Routing as users see it (raw clients): presence rules, priorities, iq between
clients, disconnects, roster pushes, account deletion, limits, timeouts, many clients."""
import os
import socket
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import USERS
from rawxmpp import NS_CLIENT, NS_SASL, Raw, Timeout, dump, q
from rawxmpp import header as rawxmpp_header

MESSAGE, PRESENCE, IQ = q(NS_CLIENT, "message"), q(NS_CLIENT, "presence"), q(NS_CLIENT, "iq")
BODY = q(NS_CLIENT, "body")
NS_ROSTER = "jabber:iq:roster"


def login(server, user, resource, presence=None, direct_tls=False):
    """Log in; presence None: none sent, else a <presence/> with that priority ('' = none)."""
    c = Raw(server.tls_port if direct_tls else server.c2s_port)
    c.login(user, USERS[user], resource)
    if presence is not None:
        prio = f"<priority>{presence}</priority>" if presence != "" else ""
        c.send(f"<presence>{prio}</presence>")
    return c


def sync(c, tag="sync"):
    """A ping round trip: everything the server routed to c before it has arrived."""
    iq_id = f"{tag}-{os.urandom(3).hex()}"
    r = c.ping(iq_id)
    assert r.get("type") == "result", dump(r)


def presence_from(c, jid, ptype=None, timeout=5.0):
    return c.wait_for(lambda e: e.tag == PRESENCE and e.get("from") == jid and
                      e.get("type") == ptype, timeout)


def message_with(c, body, timeout=5.0):
    return c.wait_for(lambda e: e.tag == MESSAGE and e.findtext(BODY) == body, timeout)


def seen_presence(c, jid):
    return [e for e in getattr(c, "seen", []) + list(c.items)
            if e.tag == PRESENCE and e.get("from") == jid]


# ---- presence --------------------------------------------------------------------------

def test_presence_goes_to_subscribers_only(buddies):
    server = buddies
    bob = login(server, "bob", "b", presence="")
    carol = login(server, "carol", "c", presence="")
    alice = login(server, "alice", "a", presence="")
    try:
        p = presence_from(bob, "alice@localhost/a")
        assert p.get("to") in (None, "bob@localhost/b", "bob@localhost"), dump(p)
        sync(carol)
        time.sleep(0.2)
        sync(carol, "sync2")
        assert not seen_presence(carol, "alice@localhost/a"), \
            "carol (not on alice's roster) received alice's presence"
        # alice sees bob (probe answered), not carol.
        presence_from(alice, "bob@localhost/b")
        sync(alice)
        assert not seen_presence(alice, "carol@localhost/c")
    finally:
        for c in (alice, bob, carol):
            c.close()


def test_subscription_to_and_from(server):
    # alice sees bob's presence (to); bob does not see alice's (his row is 'from').
    server.roster_add("alice", "bob", "to")
    server.roster_add("bob", "alice", "from")
    bob = login(server, "bob", "b", presence="")
    sync(bob)
    alice = login(server, "alice", "a", presence="")
    try:
        presence_from(alice, "bob@localhost/b")
        sync(bob)
        time.sleep(0.2)
        sync(bob, "sync2")
        assert not seen_presence(bob, "alice@localhost/a"), \
            "bob got alice's presence though he is not subscribed to her"
    finally:
        alice.close()
        bob.close()


def test_abrupt_disconnect_sends_unavailable(buddies):
    server = buddies
    bob = login(server, "bob", "b", presence="")
    alice = login(server, "alice", "a", presence="")
    try:
        presence_from(bob, "alice@localhost/a")
        alice.sock.close()       # no </stream:stream>, no close_notify
        presence_from(bob, "alice@localhost/a", "unavailable")
        deadline = time.monotonic() + 5
        while any(l.startswith("alice@localhost/") for l in server.sessions()):
            assert time.monotonic() < deadline, server.sessions()
            time.sleep(0.1)
    finally:
        bob.close()


def test_own_resources_see_each_other(server):
    a1 = login(server, "alice", "one", presence="")
    sync(a1)
    a2 = login(server, "alice", "two", presence="")
    try:
        presence_from(a1, "alice@localhost/two")
        presence_from(a2, "alice@localhost/one")
    finally:
        a1.close()
        a2.close()


# ---- messages to a bare JID --------------------------------------------------------------

def test_bare_message_skips_negative_priority(server):
    neg = login(server, "bob", "neg", presence="-1")
    pos = login(server, "bob", "pos", presence="0")
    alice = login(server, "alice", "a", presence="")
    try:
        sync(neg)
        sync(pos)
        b1 = "to-bare-" + os.urandom(3).hex()
        alice.send(f"<message to='bob@localhost' type='chat'><body>{b1}</body></message>")
        m = message_with(pos, b1)
        assert m.get("from") == "alice@localhost/a"
        # Then one to neg's full JID, which must arrive, with b1 never before it.
        b2 = "to-neg-" + os.urandom(3).hex()
        alice.send(f"<message to='bob@localhost/neg' type='chat'><body>{b2}</body></message>")
        message_with(neg, b2)
        assert b1.encode() not in neg.raw, "a negative-priority resource got a bare-JID message"
    finally:
        for c in (alice, neg, pos):
            c.close()


def test_bare_message_goes_to_highest_priority(server):
    low = login(server, "bob", "low", presence="1")
    high = login(server, "bob", "high", presence="5")
    alice = login(server, "alice", "a", presence="")
    try:
        sync(low)
        sync(high)
        b = "prio-" + os.urandom(3).hex()
        alice.send(f"<message to='bob@localhost' type='chat'><body>{b}</body></message>")
        m = message_with(high, b)
        assert m.get("from") == "alice@localhost/a"
    finally:
        for c in (alice, low, high):
            c.close()


# ---- iq between clients -----------------------------------------------------------------

def test_iq_between_clients_and_to_absent_resource(server):
    bob = login(server, "bob", "b", presence="")
    alice = login(server, "alice", "a", presence="")
    try:
        alice.send("<iq type='get' id='q1' to='bob@localhost/b'><query xmlns='jabber:iq:version'/></iq>")
        req = bob.wait_for(lambda e: e.tag == IQ and e.get("id") == "q1")
        assert req.get("from") == "alice@localhost/a" and req.get("type") == "get", dump(req)
        bob.send("<iq type='result' id='q1' to='alice@localhost/a'><query xmlns='jabber:iq:version'>"
                 "<name>raw</name></query></iq>")
        res = alice.wait_for(lambda e: e.tag == IQ and e.get("id") == "q1")
        assert res.get("type") == "result" and res.get("from") == "bob@localhost/b", dump(res)
        assert res.find("{jabber:iq:version}query/{jabber:iq:version}name").text == "raw"

        # No such resource: the server answers for it.
        alice.send("<iq type='get' id='q2' to='bob@localhost/nobody'>"
                   "<query xmlns='jabber:iq:version'/></iq>")
        err = alice.wait_for(lambda e: e.tag == IQ and e.get("id") == "q2")
        assert err.get("type") == "error", dump(err)
        assert err.find(f"{q(NS_CLIENT, 'error')}/{{urn:ietf:params:xml:ns:xmpp-stanzas}}"
                        "service-unavailable") is not None, dump(err)
    finally:
        alice.close()
        bob.close()


def test_malformed_to_is_a_stanza_error(server):
    with login(server, "alice", "a") as alice:
        alice.send("<message to='a@b@c' id='m1' type='chat'><body>x</body></message>")
        err = alice.wait_for(lambda e: e.get("id") == "m1")
        assert err.get("type") == "error", dump(err)
        assert err.find(f"{q(NS_CLIENT, 'error')}/{{urn:ietf:params:xml:ns:xmpp-stanzas}}"
                        "jid-malformed") is not None, dump(err)
        sync(alice)


# ---- roster and accounts through xedgectl ---------------------------------------------------

def test_roster_push_when_admin_adds_contact(server):
    with login(server, "alice", "a", presence="") as alice:
        alice.send(f"<iq type='get' id='r1'><query xmlns='{NS_ROSTER}'/></iq>")
        r = alice.wait_for(lambda e: e.get("id") == "r1")
        assert r.get("type") == "result" and len(r.find(q(NS_ROSTER, "query"))) == 0, dump(r)
        server.roster_add("alice", "carol", "both", "Carol")
        push = alice.wait_for(lambda e: e.tag == IQ and e.get("type") == "set")
        item = push.find(f"{q(NS_ROSTER, 'query')}/{q(NS_ROSTER, 'item')}")
        assert item is not None and item.get("jid") == "carol@localhost", dump(push)
        assert item.get("subscription") == "both" and item.get("name") == "Carol", dump(push)
        assert push.get("from") in (None, "alice@localhost"), dump(push)
        alice.send(f"<iq type='result' id='{push.get('id')}'/>")
        sync(alice)


def test_user_del_ends_sessions_and_login(server):
    alice = login(server, "alice", "a", presence="")
    with alice:
        r = server.ctl("user", "del", "alice@localhost")
        assert "sessions closed: 1" in r.stdout, r.stdout
        cond = alice.expect_stream_error()
        assert cond is not None, alice.raw
    with Raw(server.c2s_port) as c:
        c.open_stream()
        c.starttls()
        c.open_stream()
        el = c.auth_plain("alice", USERS["alice"])
        assert el.tag == q(NS_SASL, "failure"), dump(el)
    r = server.ctl("user", "add", "bob@localhost", "x", check=False)
    assert r.returncode == 1 and "exists" in r.stderr, (r.returncode, r.stderr)


# ---- limits and timeouts -----------------------------------------------------------------

def test_large_stanza_delivered_and_oversized_refused(server):
    bob = login(server, "bob", "b", presence="")
    alice = login(server, "alice", "a", presence="")
    try:
        big = os.urandom(24000).hex()          # 48000 bytes, under 64 KiB
        alice.send(f"<message to='bob@localhost/b' type='chat'><body>{big}</body></message>")
        m = message_with(bob, big, timeout=10)
        assert m.get("from") == "alice@localhost/a"
        huge = "x" * 70000                      # over max_stanza_bytes (65536)
        alice.send(f"<message to='bob@localhost/b' type='chat'><body>{huge}</body></message>")
        assert alice.expect_stream_error() == "policy-violation", alice.raw[-500:]
        sync(bob)
        assert huge[:1000].encode() not in bob.raw
    finally:
        alice.close()
        bob.close()


@pytest.mark.parametrize("server", [{"auth_timeout": 2, "handshake_timeout": 2}], indirect=True)
def test_unauthenticated_connections_time_out(server):
    t0 = time.monotonic()
    slow = Raw(server.c2s_port, timeout=8)
    silent = socket.create_connection(("127.0.0.1", server.tls_port), timeout=8)
    try:
        slow.open_stream()
        assert slow.expect_stream_error(timeout=8) == "connection-timeout", slow.raw
        assert time.monotonic() - t0 < 6
        # Direct TLS port, not even a ClientHello: closed after the handshake timeout.
        silent.settimeout(8)
        got = b""
        while True:
            chunk = silent.recv(4096)
            if not chunk:
                break
            got += chunk
        assert got == b"", f"the Direct TLS port wrote plaintext before any TLS handshake: {got!r}"
        assert time.monotonic() - t0 < 7
    finally:
        slow.close()
        silent.close()
    # A client that logs in in time is not affected.
    with login(server, "alice", "ok") as alice:
        time.sleep(2.5)
        sync(alice)


def test_many_clients_concurrently(server):
    """20 pairs on two workers: every message arrives once, stamped with its sender."""
    n = 20
    for i in range(2 * n):
        server.add_user(f"u{i}", f"pw{i}")
    clients = [None] * (2 * n)
    errors = []

    def connect(i):
        c = Raw(server.c2s_port, timeout=15)
        c.login(f"u{i}", f"pw{i}", "r")
        clients[i] = c

    with ThreadPoolExecutor(16) as ex:
        for f in [ex.submit(connect, i) for i in range(2 * n)]:
            f.result(timeout=60)
    try:
        for i in range(n):
            clients[i].send(f"<message to='u{i + n}@localhost/r' type='chat'>"
                            f"<body>m{i}</body></message>")
        for i in range(n):
            m = message_with(clients[i + n], f"m{i}", timeout=10)
            if m.get("from") != f"u{i}@localhost/r":
                errors.append(dump(m))
        assert not errors, errors
        lines = server.sessions()
        assert len([l for l in lines if l.strip()]) == 2 * n, lines
    finally:
        for c in clients:
            if c:
                c.close()


# ---- what one client's stream context must not do to another's ------------------------------

@pytest.mark.parametrize("decl,payload", [
    pytest.param("xmlns:foo='urn:example:foo'", "<foo:x/>", id="prefix-from-header"),
    pytest.param("xmlns:foo='urn:example:foo'", "<x foo:attr='1' xmlns='urn:example:bar'/>",
                 id="prefixed-attr-from-header"),
])
def test_stanza_using_sender_header_prefix_reaches_peer_well_formed(server, decl, payload):
    """alice declares a prefix in her stream header and uses it in a stanza.  That is
    legal XML for her stream; bob's stream never declared it, so the stanza as bob gets
    it must still be namespace-well-formed (or alice gets an error) — bob's stream must
    not break."""
    bob = login(server, "bob", "b", presence="")
    alice = None
    try:
        alice = _login_with_header_decl(server, decl)
        body = "prefixed-" + os.urandom(3).hex()
        alice.send(f"<message to='bob@localhost/b' type='chat'>{payload}<body>{body}</body>"
                   "</message>")
        try:
            try:
                m = message_with(bob, body)
                assert m.get("from") == "alice@localhost/a"
            except Timeout:
                pass        # not delivered (alice got an error): acceptable
            sync(bob, "bob-still-parses")
        except ET.ParseError as e:
            raise AssertionError(
                f"bob's stream is no longer well-formed XML ({e}): the edge forwarded alice's "
                f"stanza, which uses a prefix declared only in alice's stream header, as is; "
                f"bob received: {bob.raw[-400:]!r}") from None
    finally:
        if alice:
            alice.close()
        bob.close()


def _login_with_header_decl(server, decl):
    """alice over STARTTLS, with `decl` (e.g. xmlns:foo='...') on both stream headers
    after STARTTLS, bound as alice@localhost/a."""
    alice = Raw(server.c2s_port)
    try:
        alice.open_stream()
        alice.starttls()
        alice.reset()
        alice.send(rawxmpp_header(extra=" " + decl))
        alice.expect(q("http://etherx.jabber.org/streams", "features"))
        assert alice.auth_plain("alice", USERS["alice"]).tag == q(NS_SASL, "success")
        alice.reset()
        alice.send(rawxmpp_header(extra=" " + decl))
        alice.expect(q("http://etherx.jabber.org/streams", "features"))
        alice.bind("a")
    except BaseException:
        alice.close()
        raise
    return alice


@pytest.mark.parametrize("decl,payload", [
    pytest.param("xmlns:foo='urn:example:foo'", "<foo:x/>", id="prefix-from-header"),
    pytest.param("xmlns:foo='urn:example:foo'", "<x foo:attr='1' xmlns='urn:example:bar'/>",
                 id="prefixed-attr-from-header"),
])
def test_stanza_relying_on_header_prefix_is_bad_namespace_prefix(server, decl, payload):
    """A prefix alice bound on her own stream header makes her stanza namespace-well-formed
    in her stream, so it is not <not-well-formed/> (RFC 6120 §4.9.3.13); but xedge forwards
    stanza bytes as they came into streams that declare only the c2s defaults, so it does
    not support such a prefix: RFC 6120 §4.9.3.2 <bad-namespace-prefix/> ("a namespace
    prefix that is unsupported").  Nothing of it reaches bob.  (A prefix bound nowhere is
    <not-well-formed/>: test_hostile.py::test_unbound_prefix_not_well_formed.)"""
    bob = login(server, "bob", "b", presence="")
    alice = None
    try:
        alice = _login_with_header_decl(server, decl)
        body = "prefixed-" + os.urandom(3).hex()
        alice.send(f"<message to='bob@localhost/b' type='chat'>{payload}<body>{body}</body>"
                   "</message>")
        cond = alice.expect_stream_error_closed(timeout=10)
        assert cond == "bad-namespace-prefix", alice.raw[-600:]
        sync(bob, "bob-after-prefix")
        assert body.encode() not in bob.raw, bob.raw[-400:]
    finally:
        if alice:
            alice.close()
        bob.close()


# ---- the edge and an external session server -----------------------------------------------

@pytest.mark.parametrize("server", ["external"], indirect=True)
def test_edge_recovers_after_session_server_restart(server):
    """xedge-sm restarts (deploy, crash + systemd): its clients are told, and once it is
    back, users can log in through the same edge again without restarting the edge."""
    alice = login(server, "alice", "a", presence="")
    try:
        problems = server.restart_sm()
        assert problems == [], problems
        cond = alice.expect_stream_error(timeout=10)
        assert cond in ("system-shutdown", "internal-server-error", "reset"), alice.raw
    finally:
        alice.close()
    deadline = time.monotonic() + 15
    while True:
        try:
            with login(server, "bob", "after-restart") as bob:
                sync(bob)
            break
        except (AssertionError, OSError) as e:
            if time.monotonic() > deadline:
                raise AssertionError(f"no login 15 s after xedge-sm came back: {e}\n"
                                     f"{server.log_tails(20)}") from None
            time.sleep(0.5)
