"""Real slixmpp clients against a real xedge: login, presence, chat, iq, sessions."""
import asyncio
import os
import re

import pytest
from slixmpp.exceptions import IqError

from conftest import USERS
from slixclient import Client, close_all, run

ALICE = "alice@localhost/phone"
BOB = "bob@localhost/laptop"
BOTH_MODES = pytest.mark.parametrize("server", ["embedded", "external"], indirect=True)

# (sasl mechanism, direct TLS?)
LOGINS = [
    pytest.param("SCRAM-SHA-256", False, id="starttls-scram-sha-256"),
    pytest.param("SCRAM-SHA-1", False, id="starttls-scram-sha-1"),
    pytest.param("PLAIN", False, id="starttls-plain"),
    pytest.param("SCRAM-SHA-256", True, id="direct-tls-scram-sha-256"),
]


def pw(jid):
    return USERS[jid.split("@")[0]]


async def login(server, jid, mech=None, direct_tls=False):
    c = Client(jid, pw(jid), mech)
    await c.login(server.tls_port if direct_tls else server.c2s_port, direct_tls=direct_tls)
    return c


def check_login(c, mech, direct_tls):
    """What the user's client negotiated is what the test asked for."""
    assert c.boundjid.full == c.wanted_jid, "server bound another resource than requested"
    assert c.sent_mechanisms == [mech], \
        f"{c.wanted_jid}: SASL <auth/> elements sent: {c.sent_mechanisms}, wanted [{mech}]"
    assert c.mechanism == mech
    assert c.tls_version() in ("TLSv1.2", "TLSv1.3"), f"not encrypted: {c.tls_version()}"
    if direct_tls:
        assert "starttls" not in c.features, "Direct TLS connection negotiated STARTTLS too"
    else:
        assert "starttls" in c.features, "STARTTLS connection was never upgraded via STARTTLS"


def body_text(tag):
    # XML specials, non-ASCII, astral plane, and a unique tag.
    return f"hello <b>&amp; 'quotes' \"dq\" ünïcødé 🚀 {tag} {os.urandom(4).hex()}"


@BOTH_MODES
@pytest.mark.parametrize("mech,direct_tls", LOGINS)
def test_login_presence_and_chat(buddies, mech, direct_tls):
    server = buddies

    async def scenario():
        alice = bob = None
        try:
            alice, bob = await asyncio.gather(login(server, ALICE, mech, direct_tls),
                                              login(server, BOB, mech, direct_tls))
            for c in (alice, bob):
                check_login(c, mech, direct_tls)

            # Each sees the other come online (roster rows: both).
            await alice.wait_presence(BOB, "available")
            await bob.wait_presence(ALICE, "available")

            # alice -> bob's bare JID
            b1 = body_text("a2b")
            alice.send_message(mto="bob@localhost", mbody=b1, mtype="chat")
            m = await bob.next_message(body=b1)
            assert m["body"] == b1
            assert m.xml.get("from") == ALICE, f"from on the wire: {m.xml.get('from')!r}"
            assert str(m["from"]) == ALICE
            assert m["type"] == "chat"

            # bob -> alice's full JID
            b2 = body_text("b2a")
            bob.send_message(mto=ALICE, mbody=b2, mtype="chat")
            m = await alice.next_message(body=b2)
            assert m["body"] == b2
            assert m.xml.get("from") == BOB, f"from on the wire: {m.xml.get('from')!r}"
            assert m.xml.get("to") == ALICE

            # Neither got anything else that looks like a chat message.
            assert not getattr(alice, "skipped", []), [str(x) for x in alice.skipped]
            assert not getattr(bob, "skipped", []), [str(x) for x in bob.skipped]
            assert alice.stream_errors == [] and bob.stream_errors == []
        finally:
            await close_all(alice, bob)

    run(scenario(), 40)
    log = server.log("xedge")
    for jid in (ALICE, BOB):
        assert re.search(r'msg="session bound".*jid="?' + re.escape(jid), log), \
            f"no 'session bound' log line for {jid}"


def test_ping_roster_and_disco(server):
    server.roster_add("alice", "bob", "both", "Bob")
    server.roster_add("alice", "carol", "to", "Carol")
    server.roster_add("carol", "alice", "from")   # both sides agree (carol may be on another shard)
    listed = server.ctl("roster", "list", "alice@localhost").stdout.splitlines()
    assert sorted(listed) == ["bob@localhost both Bob", "carol@localhost to Carol"], listed

    async def scenario():
        alice = None
        try:
            alice = await login(server, ALICE, "SCRAM-SHA-256")

            # XEP-0199 ping to the server
            r = await alice.iq_get("localhost", "<ping xmlns='urn:xmpp:ping'/>")
            assert r["type"] == "result"
            assert r["from"].full in ("localhost", ""), r
            # ... and with no 'to' (handled by the server for the account)
            r = await alice.iq_get(None, "<ping xmlns='urn:xmpp:ping'/>")
            assert r["type"] == "result"

            # roster get
            r = await alice.get_roster()
            items = r["roster"]["items"]
            got = {str(j): (v["subscription"], v["name"]) for j, v in items.items()}
            assert got == {"bob@localhost": ("both", "Bob"),
                           "carol@localhost": ("to", "Carol")}, got

            # disco#info on the server
            r = await alice["xep_0030"].get_info(jid="localhost", timeout=5)
            info = r["disco_info"]
            idents = {(i[0], i[1]) for i in info["identities"]}
            assert ("server", "im") in idents, idents
            feats = set(info["features"])
            assert {"http://jabber.org/protocol/disco#info", "urn:xmpp:ping"} <= feats, feats

            # An iq the server does not implement gets an error, not silence.
            with pytest.raises(IqError) as ei:
                await alice.iq_get("localhost", "<query xmlns='jabber:iq:nonexistent-test'/>")
            assert ei.value.iq["error"]["condition"] == "service-unavailable", ei.value.iq
        finally:
            await close_all(alice)

    run(scenario(), 30)


@BOTH_MODES
def test_sessions_lists_logged_in_users(buddies):
    server = buddies

    async def scenario():
        alice = bob = None
        try:
            alice, bob = await asyncio.gather(login(server, ALICE), login(server, BOB))
            await alice.wait_presence(BOB)
            await bob.wait_presence(ALICE)
            lines = await asyncio.to_thread(server.sessions)
            by_jid = {l.split()[0]: l for l in lines if l.strip()}
            assert set(by_jid) == {ALICE, BOB}, lines
            for jid in (ALICE, BOB):
                assert by_jid[jid].split()[-1] == "available", by_jid[jid]
                # the client's address, learned at accept, travels in SESSION_OPEN
                assert by_jid[jid].split()[1] == "127.0.0.1", by_jid[jid]

            # bob leaves: alice sees him go, and the session list forgets him.
            await bob.close()
            await alice.wait_presence(BOB, "unavailable")
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while True:
                lines = await asyncio.to_thread(server.sessions)
                jids = {l.split()[0] for l in lines if l.strip()}
                if jids == {ALICE}:
                    break
                assert loop.time() < deadline, f"sessions after bob left: {lines}"
                await asyncio.sleep(0.1)
        finally:
            await close_all(alice, bob)

    run(scenario(), 40)


@BOTH_MODES
def test_same_resource_replaces_old_session(buddies):
    server = buddies

    async def scenario():
        old = new = bob = None
        try:
            old = await login(server, ALICE)
            bob = await login(server, BOB)
            await bob.wait_presence(ALICE)
            new = await login(server, ALICE)
            assert new.boundjid.full == ALICE

            reason = await asyncio.wait_for(asyncio.shield(old.closed), 5)
            assert old.stream_errors == ["conflict"], \
                f"old session's stream errors: {old.stream_errors} (closed: {reason!r})"
            assert new.stream_errors == []

            # Messages to the full JID now reach the new session.
            b = body_text("to-new")
            bob.send_message(mto=ALICE, mbody=b, mtype="chat")
            m = await new.next_message(body=b)
            assert m.xml.get("from") == BOB

            lines = await asyncio.to_thread(server.sessions)
            alices = [l for l in lines if l.split()[0] == ALICE]
            assert len(alices) == 1, lines
        finally:
            await close_all(old, new, bob)

    run(scenario(), 40)
    server.wait_log(r'msg="stream error".*cond=conflict')


def test_offline_message_delivered_at_login(buddies):
    server = buddies

    async def scenario():
        alice = bob = None
        try:
            bob = await login(server, BOB)
            b = body_text("offline")
            bob.send_message(mto="alice@localhost", mbody=b, mtype="chat")
            # Make sure the server has routed it before alice appears.
            r = await bob.iq_get("localhost", "<ping xmlns='urn:xmpp:ping'/>")
            assert r["type"] == "result"
            alice = await login(server, ALICE)
            m = await alice.next_message(body=b, timeout=5)
            assert m.xml.get("from") == BOB
        finally:
            await close_all(alice, bob)

    run(scenario(), 30)


def test_wrong_password_is_refused(server):
    async def scenario():
        c = Client(ALICE, "not-the-password", "SCRAM-SHA-256")
        try:
            with pytest.raises(AssertionError, match="SASL failed"):
                await c.login(server.c2s_port)
            assert c.auth_failures, "no SASL failure seen"
            assert c.auth_failures[0]["condition"] == "not-authorized"
        finally:
            await close_all(c)

    run(scenario(), 30)
