"""XEP-0280 Message Carbons, with slixmpp's xep_0280 plugin against the session server.

alice is online twice with carbons enabled (and once without); she chats with bob.  What
her clients see: the other resource's copy of each message received (<received/>) and sent
(<sent/>), from her bare JID, wrapping the original (XEP-0297); nothing for a <private/>
message or a resource that did not enable carbons, nothing after disabling.
"""
import asyncio
import xml.etree.ElementTree as ET

from conftest import USERS
from slixclient import Client, close_all, run

NS_CARBONS = "urn:xmpp:carbons:2"


async def login(server, jid, carbons):
    c = Client(jid, USERS[jid.split("@")[0]])
    c.register_plugin("xep_0280")
    c.carbons = asyncio.Queue()     # (kind, inner message)
    c.add_event_handler("carbon_received",
                        lambda m: c.carbons.put_nowait(("received", m)))
    c.add_event_handler("carbon_sent", lambda m: c.carbons.put_nowait(("sent", m)))
    await c.login(server.c2s_port)
    if carbons:
        await c["xep_0280"].enable(timeout=5)
    return c


async def next_carbon(c, timeout=5.0):
    kind, m = await asyncio.wait_for(c.carbons.get(), timeout)
    inner = m[f"carbon_{kind}"]
    return kind, m, inner


def test_received_and_sent_copies_private_suppressed(server):
    async def go():
        one = two = three = bob = None
        try:
            one = await login(server, "alice@localhost/one", True)
            two = await login(server, "alice@localhost/two", True)
            three = await login(server, "alice@localhost/three", False)
            bob = Client("bob@localhost/b", USERS["bob"])
            await bob.login(server.c2s_port)

            # Received: bob -> alice/one; alice/two gets the copy.
            bob.send_message(mto="alice@localhost/one", mbody="hello one", mtype="chat")
            got = await one.next_message(body="hello one")
            assert str(got["from"]) == "bob@localhost/b"
            kind, wrap, inner = await next_carbon(two)
            assert kind == "received"
            assert str(wrap["from"]) == "alice@localhost"
            assert str(wrap["to"]) == "alice@localhost/two"
            assert wrap["type"] == "chat"
            assert inner["body"] == "hello one"
            assert str(inner["from"]) == "bob@localhost/b"
            assert str(inner["to"]) == "alice@localhost/one"

            # Sent: alice/one -> bob; alice/two gets the copy.
            one.send_message(mto="bob@localhost/b", mbody="hi bob", mtype="chat")
            await bob.next_message(body="hi bob")
            kind, wrap, inner = await next_carbon(two)
            assert kind == "sent"
            assert inner["body"] == "hi bob"
            assert str(inner["from"]) == "alice@localhost/one"
            assert str(inner["to"]) == "bob@localhost/b"

            # Private: delivered, not copied.  The next ordinary message's copy
            # comes right after: no copy of the private one can be pending.
            m = one.make_message(mto="bob@localhost/b", mbody="secret", mtype="chat")
            m.append(ET.fromstring(f"<private xmlns='{NS_CARBONS}'/>"))
            m.send()
            await bob.next_message(body="secret")
            one.send_message(mto="bob@localhost/b", mbody="public", mtype="chat")
            await bob.next_message(body="public")
            kind, wrap, inner = await next_carbon(two)
            assert (kind, inner["body"]) == ("sent", "public")

            # Private, received side: not copied, and delivered without <private/>
            # (§9), everything else intact.
            m = bob.make_message(mto="alice@localhost/one", mbody="private in", mtype="chat")
            m["thread"] = "t-42"
            m.append(ET.fromstring(f"<private xmlns='{NS_CARBONS}'/>"))
            m.send()
            got = await one.next_message(body="private in")
            assert got.xml.find(f"{{{NS_CARBONS}}}private") is None, str(got)
            assert got["thread"] == "t-42" and got["type"] == "chat"
            assert str(got["from"]) == "bob@localhost/b"
            bob.send_message(mto="alice@localhost/one", mbody="public in", mtype="chat")
            await one.next_message(body="public in")
            kind, wrap, inner = await next_carbon(two)
            assert (kind, inner["body"]) == ("received", "public in")

            # Headline messages are not eligible.
            bob.send_message(mto="alice@localhost/one", mbody="news", mtype="headline")
            await one.next_message(body="news")

            # To the bare JID: whichever resource gets it, the other enabled one
            # gets a copy (§7).
            bob.send_message(mto="alice@localhost", mbody="to bare", mtype="chat")
            done, pending = await asyncio.wait(
                [asyncio.ensure_future(one.next_message(body="to bare", timeout=5)),
                 asyncio.ensure_future(two.next_message(body="to bare", timeout=5)),
                 asyncio.ensure_future(three.next_message(body="to bare", timeout=5))],
                timeout=5, return_when=asyncio.FIRST_COMPLETED)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            assert done, "the bare-JID message reached no resource"
            winner = str(done.pop().result()["to"])
            if winner != "alice@localhost/one":
                kind, wrap, inner = await next_carbon(one)
                assert (kind, inner["body"]) == ("received", "to bare")
            if winner != "alice@localhost/two":
                kind, wrap, inner = await next_carbon(two)
                assert (kind, inner["body"]) == ("received", "to bare")

            # After disable, alice/two gets no more copies; alice/three never had any.
            await two["xep_0280"].disable(timeout=5)
            bob.send_message(mto="alice@localhost/one", mbody="after disable", mtype="chat")
            await one.next_message(body="after disable")
            # A copy to two would precede this marker copy to one; none may come.
            bob.send_message(mto="alice@localhost/two", mbody="marker", mtype="chat")
            await two.next_message(body="marker")
            kind, wrap, inner = await next_carbon(one)
            assert (kind, inner["body"]) == ("received", "marker")
            assert two.carbons.empty(), "a disabled resource got a carbon"
            assert three.carbons.empty(), "a resource that never enabled carbons got one"
        finally:
            await close_all(one, two, three, bob)

    run(go(), timeout=60)


def test_feature_advertised(server):
    async def go():
        alice = None
        try:
            alice = await login(server, "alice@localhost/a", False)
            info = await alice["xep_0030"].get_info(jid="localhost", timeout=5)
            assert NS_CARBONS in info["disco_info"]["features"]
        finally:
            await close_all(alice)

    run(go())
