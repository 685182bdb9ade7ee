"""XEP-0191 Blocking Command, with slixmpp's xep_0191 plugin against the session server.

What a user sees: the blocklist it retrieves, pushes to its other resources, stanzas from a
blocked contact bouncing with service-unavailable (the user looks offline), its own stanzas
to a blocked contact refused with not-acceptable + <blocked/>, unavailable presence sent to
the contact on block, delivery again after unblocking, the list surviving a restart.
"""
import asyncio
import xml.etree.ElementTree as ET

import pytest
from slixmpp.exceptions import IqError

from conftest import USERS
from slixclient import Client, close_all, run

NS_BLOCKING = "urn:xmpp:blocking"
NS_ERRORS = "urn:xmpp:blocking:errors"


async def login(server, jid, plugins=("xep_0191",)):
    c = Client(jid, USERS[jid.split("@")[0]])
    c.errors = asyncio.Queue()      # slixmpp reports type='error' messages apart
    c.add_event_handler("message_error", c.errors.put_nowait)
    for p in plugins:
        c.register_plugin(p)
    await c.login(server.c2s_port)
    return c


async def error_for(c, msg_id, timeout=5.0):
    """The error message answering the message with this id."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen = []
    while loop.time() < deadline:
        try:
            m = await asyncio.wait_for(c.errors.get(), deadline - loop.time())
        except asyncio.TimeoutError:
            break
        if m["id"] == msg_id:
            return m
        seen.append(str(m))
    raise AssertionError(f"{c.boundjid}: no error for message {msg_id} within {timeout} s; "
                         f"seen: {seen}")


def blocklist_jids(iq):
    return sorted(str(j) for j in iq["blocklist"]["items"])


def test_block_refuses_both_ways_and_unblock_restores(buddies):
    server = buddies

    async def go():
        alice = bob = None
        try:
            alice = await login(server, "alice@localhost/a")
            bob = await login(server, "bob@localhost/b", plugins=())
            await bob.wait_presence("alice@localhost/a")
            res = await alice["xep_0191"].get_blocked(timeout=5)
            assert blocklist_jids(res) == []

            await alice["xep_0191"].block("bob@localhost", timeout=5)
            # §3.3: the contact gets unavailable presence from the user's resources.
            await bob.wait_presence("alice@localhost/a", "unavailable")
            res = await alice["xep_0191"].get_blocked(timeout=5)
            assert blocklist_jids(res) == ["bob@localhost"]

            # From the blocked contact: service-unavailable, nothing delivered.
            bob.send_message(mto="alice@localhost/a", mbody="let me in", mtype="chat")
            m = bob.Message()
            m["to"], m["type"], m["body"], m["id"] = "alice@localhost", "chat", "bare", "in1"
            m.send()
            err = await error_for(bob, "in1")
            assert err["error"]["condition"] == "service-unavailable"
            assert str(err["from"]) == "alice@localhost"

            # From the user to the blocked contact: not-acceptable + <blocked/>.
            m = alice.Message()
            m["to"], m["type"], m["body"], m["id"] = "bob@localhost/b", "chat", "hi", "out1"
            m.send()
            err = await error_for(alice, "out1")
            assert err["error"]["condition"] == "not-acceptable"
            assert err["error"]["type"] == "cancel"
            assert err["error"].xml.find(f"{{{NS_ERRORS}}}blocked") is not None

            # An iq get from the blocked contact: service-unavailable too.
            try:
                await bob.iq_get("alice@localhost/a", "<ping xmlns='urn:xmpp:ping'/>")
                raise AssertionError("blocked iq answered with a result")
            except IqError as e:
                assert e.iq["error"]["condition"] == "service-unavailable"

            bob.presences.clear()
            await alice["xep_0191"].unblock("bob@localhost", timeout=5)
            # §3.4: the contact gets the user's current presence again.
            await bob.wait_presence("alice@localhost/a", "available")
            bob.send_message(mto="alice@localhost/a", mbody="after unblock", mtype="chat")
            got = await alice.next_message(body="after unblock")
            assert got["from"] == "bob@localhost/b"
            # the message sent while blocked was never delivered
            assert all(s["body"] != "let me in" for s in getattr(alice, "skipped", []))
            alice.send_message(mto="bob@localhost/b", mbody="hello again", mtype="chat")
            await bob.next_message(body="hello again")
        finally:
            await close_all(alice, bob)

    run(go())


@pytest.mark.parametrize("server", ["external"], indirect=True)
def test_pushes_unblock_all_errors_and_persistence(server):
    async def go():
        a1 = a2 = a3 = None
        try:
            a1 = await login(server, "alice@localhost/one")
            a2 = await login(server, "alice@localhost/two")
            a3 = await login(server, "alice@localhost/three")
            pushes = asyncio.Queue()
            a2.add_event_handler("blocked", lambda iq: pushes.put_nowait(("block", iq)))
            a2.add_event_handler("unblocked", lambda iq: pushes.put_nowait(("unblock", iq)))
            a3_pushes = []
            a3.add_event_handler("blocked", lambda iq: a3_pushes.append(iq))
            await a2["xep_0191"].get_blocked(timeout=5)   # a2 asks; a3 never does

            await a1["xep_0191"].block(["carol@localhost", "evil.example",
                                        "bob@localhost/mobile"], timeout=5)
            kind, iq = await asyncio.wait_for(pushes.get(), 5)
            assert kind == "block"
            assert sorted(str(j) for j in iq["block"]["items"]) == \
                ["bob@localhost/mobile", "carol@localhost", "evil.example"]

            # §3.3: a <block/> without items is a bad request.
            iq = a1.make_iq_set()
            iq.append(ET.fromstring(f"<block xmlns='{NS_BLOCKING}'/>"))
            try:
                await iq.send(timeout=5)
                raise AssertionError("empty <block/> accepted")
            except IqError as e:
                assert e.iq["error"]["condition"] == "bad-request"
            iq = a1.make_iq_set()
            iq.append(ET.fromstring(f"<block xmlns='{NS_BLOCKING}'><item jid='a@b@c'/></block>"))
            try:
                await iq.send(timeout=5)
                raise AssertionError("malformed JID accepted")
            except IqError as e:
                assert e.iq["error"]["condition"] == "jid-malformed"

            # The list survives the session server's restart (written behind).
            await close_all(a1, a2, a3)
            a1 = a2 = a3 = None
            assert server.restart_sm() == []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 15     # the edge reconnects to the new xedge-sm
            while True:
                try:
                    a1 = await login(server, "alice@localhost/one")
                    break
                except AssertionError as e:
                    if loop.time() > deadline:
                        raise AssertionError(f"no login 15 s after the restart: {e}") from None
                    await asyncio.sleep(0.5)
            res = await a1["xep_0191"].get_blocked(timeout=5)
            assert blocklist_jids(res) == ["bob@localhost/mobile", "carol@localhost",
                                           "evil.example"]

            # §3.5: an empty <unblock/> unblocks everything, and is pushed as such.
            a2 = await login(server, "alice@localhost/two")
            pushes = asyncio.Queue()
            a2.add_event_handler("unblocked", lambda iq: pushes.put_nowait(iq))
            await a2["xep_0191"].get_blocked(timeout=5)
            iq = a1.make_iq_set()
            iq.append(ET.fromstring(f"<unblock xmlns='{NS_BLOCKING}'/>"))
            await iq.send(timeout=5)
            push = await asyncio.wait_for(pushes.get(), 5)
            assert len(push["unblock"]["items"]) == 0
            res = await a1["xep_0191"].get_blocked(timeout=5)
            assert blocklist_jids(res) == []
            assert a3_pushes == []
        finally:
            await close_all(a1, a2, a3)

    run(go(), timeout=60)


def test_domain_and_full_jid_matching(server):
    async def go():
        alice = bob_m = bob_d = None
        try:
            alice = await login(server, "alice@localhost/a")
            bob_m = await login(server, "bob@localhost/mobile", plugins=())
            bob_d = await login(server, "bob@localhost/desk", plugins=())
            await alice["xep_0191"].block("bob@localhost/mobile", timeout=5)
            # Only that resource is blocked ...
            m = bob_m.Message()
            m["to"], m["type"], m["body"], m["id"] = "alice@localhost/a", "chat", "m", "fm"
            m.send()
            assert (await error_for(bob_m, "fm"))["error"]["condition"] == "service-unavailable"
            bob_d.send_message(mto="alice@localhost/a", mbody="from desk", mtype="chat")
            await alice.next_message(body="from desk")
            # ... and a domain item blocks every JID at it.
            await alice["xep_0191"].block("localhost", timeout=5)
            m = bob_d.Message()
            m["to"], m["type"], m["body"], m["id"] = "alice@localhost/a", "chat", "d", "fd"
            m.send()
            assert (await error_for(bob_d, "fd"))["error"]["condition"] == "service-unavailable"
        finally:
            await close_all(alice, bob_m, bob_d)

    run(go())


def test_feature_advertised(server):
    async def go():
        alice = None
        try:
            alice = await login(server, "alice@localhost/a")
            info = await alice["xep_0030"].get_info(jid="localhost", timeout=5)
            assert NS_BLOCKING in info["disco_info"]["features"]
        finally:
            await close_all(alice)

    run(go())


def policy_violation(e):
    # slixmpp 1.8 knows RFC 3920's conditions only: look for the element itself.
    return e.iq.xml.find("{jabber:client}error/"
                         "{urn:ietf:params:xml:ns:xmpp-stanzas}policy-violation") is not None


def test_blocklist_is_bounded(server):
    """SM_MAX_BLOCKLIST (1024) items per account: one more is refused, in one command or
    across several, and what was refused is not half-applied."""
    def block_iq(c, jids):
        iq = c.make_iq_set()
        iq.append(ET.fromstring(f"<block xmlns='{NS_BLOCKING}'>" +
                                "".join(f"<item jid='{j}'/>" for j in jids) + "</block>"))
        return iq.send(timeout=10)

    async def go():
        alice = None
        try:
            alice = await login(server, "alice@localhost/a")
            try:
                await block_iq(alice, [f"u{i}@x.example" for i in range(1025)])
                raise AssertionError("1025 items accepted")
            except IqError as e:
                assert policy_violation(e)
            assert blocklist_jids(await alice["xep_0191"].get_blocked(timeout=5)) == []
            await block_iq(alice, [f"u{i}@x.example" for i in range(1000)])
            try:
                await block_iq(alice, [f"v{i}@x.example" for i in range(25)])
                raise AssertionError("the 1025th item accepted")
            except IqError as e:
                assert policy_violation(e)
            # already blocked items do not count twice
            await block_iq(alice, [f"u{i}@x.example" for i in range(24)] + ["w@x.example"])
            res = await alice["xep_0191"].get_blocked(timeout=5)
            assert len(res["blocklist"]["items"]) == 1001
        finally:
            await close_all(alice)

    run(go(), timeout=60)


def test_offline_blocker_answers_nothing_on_its_behalf(server):
    """XEP-0191 §3.3 while the blocker is offline: the server, answering for bob's bare
    JID, gives alice service-unavailable for iq requests (his vCard), not his data; once
    bob unblocks her, she gets it."""
    vcard_get = "<vCard xmlns='vcard-temp'/>"

    async def go():
        alice = bob = None
        try:
            bob = await login(server, "bob@localhost/b", plugins=("xep_0191", "xep_0054"))
            vc = bob["xep_0054"].make_vcard()
            vc["FN"] = "Bob Blocker"
            await bob["xep_0054"].publish_vcard(vc)
            await bob["xep_0191"].block(["alice@localhost"], timeout=10)
            await bob.close()
            bob = None
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20     # his record leaves memory with his session
            while any(l.startswith("bob@") for l in await asyncio.to_thread(server.sessions)):
                assert loop.time() < deadline, "bob's session did not end"
                await asyncio.sleep(0.1)
            alice = await login(server, "alice@localhost/a", plugins=())
            with pytest.raises(IqError) as ei:
                await alice.iq_get("bob@localhost", vcard_get)
            assert (ei.value.etype, ei.value.condition) == ("cancel", "service-unavailable")
            bob = await login(server, "bob@localhost/b", plugins=("xep_0191",))
            await bob["xep_0191"].unblock(["alice@localhost"], timeout=10)
            r = await alice.iq_get("bob@localhost", vcard_get)
            assert "Bob Blocker" in str(r)
        finally:
            await close_all(alice, bob)

    run(go(), 60)
