"""RFC 6121 rosters and subscriptions with real slixmpp clients: roster set and
remove, the subscription handshake both ways, presence after approval, a
request to an offline contact delivered at its login, stream features."""
import asyncio

from conftest import USERS
from slixclient import Client, close_all, run

ALICE = "alice@localhost/phone"
BOB = "bob@localhost/laptop"


async def login(server, jid):
    c = Client(jid, USERS[jid.split("@")[0]])
    # Answer requests by hand: the test is the user.
    c.roster.auto_authorize = None
    c.roster.auto_subscribe = False
    await c.login(server.c2s_port)
    await c.get_roster()
    return c


async def until(cond, what, timeout=5.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.02)


def sub_of(c, contact):
    r = c.client_roster
    return r[contact]["subscription"] if r.has_jid(contact) else None


def test_add_approve_both_ways_and_remove(server):
    async def scenario():
        alice = bob = None
        try:
            alice = await login(server, ALICE)
            bob = await login(server, BOB)
            # §2.6.1, §3.4: the edge advertises versioning and pre-approval.
            assert "rosterver" in alice.features
            assert "preapproval" in alice.features

            # Alice adds bob (roster set), then asks to see him.
            await alice.update_roster("bob@localhost", name="Bob", groups=["Friends"])
            await until(lambda: alice.client_roster.has_jid("bob@localhost"),
                        "alice's roster push for bob")
            assert alice.client_roster["bob@localhost"]["name"] == "Bob"
            assert alice.client_roster["bob@localhost"]["groups"] == ["Friends"]
            alice.send_presence(pto="bob@localhost", ptype="subscribe")
            await bob.wait_presence("alice@localhost", "subscribe")
            await until(lambda: alice.client_roster["bob@localhost"]["pending_out"],
                        "alice's item shows ask='subscribe'")
            # No roster item for alice at bob's before he approves (§3.1.3).
            assert "alice" not in server.ctl("roster", "list", "bob@localhost").stdout

            # Bob approves and asks back; alice approves.
            bob.send_presence(pto="alice@localhost", ptype="subscribed")
            bob.send_presence(pto="alice@localhost", ptype="subscribe")
            await alice.wait_presence("bob@localhost", "subscribed")
            await alice.wait_presence("bob@localhost", "subscribe")
            # §3.1.5: bob's presence follows his approval.
            await alice.wait_presence(BOB, "available")
            alice.send_presence(pto="bob@localhost", ptype="subscribed")
            await bob.wait_presence(ALICE, "available")
            await until(lambda: sub_of(alice, "bob@localhost") == "both", "alice sees both")
            await until(lambda: sub_of(bob, "alice@localhost") == "both", "bob sees both")
            assert "bob@localhost both" in server.ctl("roster", "list", "alice@localhost").stdout

            # Presence flows both ways.
            alice.send_presence(pshow="away")
            await until(lambda: bob.client_roster["alice@localhost"].resources.get("phone", {})
                        .get("show") == "away", "bob sees alice away")
            bob.send_presence(pshow="dnd")
            await until(lambda: alice.client_roster["bob@localhost"].resources.get("laptop", {})
                        .get("show") == "dnd", "alice sees bob dnd")

            # §2.5: alice removes bob: gone from her roster, bob is told and
            # sees her go; his item stays, with no subscription left.
            await alice.del_roster_item("bob@localhost")
            await until(lambda: not alice.client_roster.has_jid("bob@localhost")
                        or alice.client_roster["bob@localhost"]["subscription"] == "remove",
                        "bob removed from alice's roster")
            await bob.wait_presence(ALICE, "unavailable")
            await bob.wait_presence("alice@localhost", "unsubscribe")
            await bob.wait_presence("alice@localhost", "unsubscribed")
            await until(lambda: sub_of(bob, "alice@localhost") == "none", "bob's item at none")
            listing = server.ctl("roster", "list", "alice@localhost").stdout
            assert "bob@localhost" not in listing, listing
        finally:
            await close_all(alice, bob)

    run(scenario())


def test_request_to_offline_contact_at_login(server):
    async def scenario():
        alice = bob = None
        try:
            alice = await login(server, ALICE)
            alice.send_presence(pto="bob@localhost", ptype="subscribe")
            await until(lambda: sub_of(alice, "bob@localhost") == "none"
                        and alice.client_roster["bob@localhost"]["pending_out"],
                        "alice's item shows ask='subscribe'")
            # Bob logs in later: the request arrives with his initial presence.
            bob = await login(server, BOB)
            await bob.wait_presence("alice@localhost", "subscribe")
            assert "alice" not in server.ctl("roster", "list", "bob@localhost").stdout
            bob.send_presence(pto="alice@localhost", ptype="subscribed")
            await alice.wait_presence("bob@localhost", "subscribed")
            await alice.wait_presence(BOB, "available")
            await until(lambda: sub_of(alice, "bob@localhost") == "to", "alice sees to")
            await until(lambda: sub_of(bob, "alice@localhost") == "from", "bob sees from")
        finally:
            await close_all(alice, bob)

    run(scenario())
