"""XEP-0163 Personal Eventing Protocol (sm/pep.c) with slixmpp's PubSub, PEP,
avatar and entity-capabilities plugins: publish with auto-create and
publish-options, notifications filtered by +notify, access models, items
retrieval, retract, node deletion, last published item at login."""
import asyncio
import xml.etree.ElementTree as ET

import pytest
from slixmpp.exceptions import IqError

from conftest import USERS
from rawxmpp import NS_CLIENT, Raw, dump, q, stanza_error
from slixclient import Client, close_all, run

NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_ERRORS = "http://jabber.org/protocol/pubsub#errors"
NS_AVATAR_META = "urn:xmpp:avatar:metadata"
NODE_DEVICES = "eu.siacs.conversations.axolotl.devicelist"
NS_AXOLOTL = "eu.siacs.conversations.axolotl"
NODE_PRIVATE = "urn:example:private-notes"
IQ = q(NS_CLIENT, "iq")


class PepClient(Client):
    """A client with PubSub/PEP that records every PEP event it receives."""

    def __init__(self, jid, password, interests=()):
        super().__init__(jid, password)
        for p in ("xep_0004", "xep_0060", "xep_0115", "xep_0163", "xep_0084"):
            self.register_plugin(p)
        self.interests = interests
        self.events = []            # (from bare, node, item id, payload element)
        self.event_seen = asyncio.Event()
        self.add_event_handler("pubsub_publish", self._on_publish)

    def _on_publish(self, msg):
        items = msg["pubsub_event"]["items"]
        for it in items["substanzas"]:
            self.events.append((msg["from"].bare, items["node"], it["id"], it["payload"]))
        self.event_seen.set()

    async def start(self, port):
        if self.interests:
            self["xep_0163"].add_interest(list(self.interests))
        return await self.login(port)

    async def wait_event(self, owner, node, pred=lambda p: True, timeout=10.0):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for ev in self.events:
                if ev[0] == owner and ev[1] == node and ev[3] is not None and pred(ev[3]):
                    return ev
            left = deadline - loop.time()
            if left <= 0:
                raise asyncio.TimeoutError(f"{self.boundjid}: no event from {owner} on {node}; "
                                           f"seen: {[(e[0], e[1], e[2]) for e in self.events]}")
            self.event_seen.clear()
            try:
                await asyncio.wait_for(self.event_seen.wait(), left)
            except asyncio.TimeoutError:
                pass

    def options(self, **fields):
        form = self["xep_0004"].make_form(ftype="submit")
        form.add_field(var="FORM_TYPE", ftype="hidden",
                       value="http://jabber.org/protocol/pubsub#publish-options")
        for var, value in fields.items():
            form.add_field(var=f"pubsub#{var}", value=value)
        return form


def device_list(*ids):
    el = ET.Element(f"{{{NS_AXOLOTL}}}list")
    for i in ids:
        ET.SubElement(el, f"{{{NS_AXOLOTL}}}device", id=str(i))
    return el


def device_ids(payload):
    return sorted(int(d.get("id")) for d in payload.findall(f"{{{NS_AXOLOTL}}}device"))


def error_of(exc):
    err = exc.iq["error"]
    app = [c.tag for c in err.xml if c.tag.startswith(f"{{{NS_ERRORS}}}")]
    return err["type"], err["condition"], app


def test_pep_publish_notify_retrieve_and_access(buddies):
    server = buddies
    alice_jid, bob_jid, carol_jid = server.jid("alice"), server.jid("bob"), server.jid("carol")

    async def scenario():
        bob = alice = carol = bob2 = None
        try:
            bob = PepClient(f"{bob_jid}/phone", USERS["bob"], interests=[NODE_DEVICES])
            await bob.start(server.c2s_port)
            alice = PepClient(f"{alice_jid}/laptop", USERS["alice"])
            await alice.start(server.c2s_port)
            await bob.wait_presence(f"{alice_jid}/laptop")

            # The account advertises PEP (XEP-0163 §6).
            info = await alice["xep_0030"].get_info(jid=alice_jid, local=False)
            ids = info["disco_info"]["identities"]
            feats = info["disco_info"]["features"]
            assert ("pubsub", "pep", None, None) in ids, ids
            for f in ("publish", "publish-options", "auto-create", "retrieve-items",
                      "access-presence", "access-open"):
                assert f"{NS_PUBSUB}#{f}" in feats, feats

            # Avatar metadata, node auto-created with the default access (presence).
            r = await alice["xep_0084"].publish_avatar_metadata(
                {"id": "a1b2c3", "type": "image/png", "bytes": "1234", "height": "64",
                 "width": "64"})
            assert r["pubsub"]["publish"]["node"] == NS_AVATAR_META
            assert r["pubsub"]["publish"]["item"]["id"] == "a1b2c3"
            # An OMEMO device list, open to anyone, with no item id: the service makes one.
            r = await alice["xep_0060"].publish(alice_jid, NODE_DEVICES,
                                                payload=device_list(11, 22),
                                                options=alice.options(access_model="open"))
            gen_id = r["pubsub"]["publish"]["item"]["id"]
            assert gen_id

            # bob (subscription both, +notify for both nodes in his caps) is notified.
            ev = await bob.wait_event(alice_jid, NS_AVATAR_META)
            assert ev[2] == "a1b2c3"
            assert ev[3].find(f"{{{NS_AVATAR_META}}}info").get("id") == "a1b2c3"
            ev = await bob.wait_event(alice_jid, NODE_DEVICES)
            assert ev[2] == gen_id and device_ids(ev[3]) == [11, 22]

            # bob reads the presence-access node as a contact.
            r = await bob["xep_0060"].get_items(alice_jid, NS_AVATAR_META)
            got = [(i["id"], i["payload"].find(f"{{{NS_AVATAR_META}}}info").get("bytes"))
                   for i in r["pubsub"]["items"]]
            assert got == [("a1b2c3", "1234")]

            # carol, not subscribed: the presence node is closed, the open node is not.
            carol = PepClient(f"{carol_jid}/desk", USERS["carol"])
            await carol.start(server.c2s_port)
            with pytest.raises(IqError) as e:
                await carol["xep_0060"].get_items(alice_jid, NS_AVATAR_META)
            assert error_of(e.value) == ("auth", "not-authorized",
                                         [f"{{{NS_ERRORS}}}presence-subscription-required"])
            r = await carol["xep_0060"].get_items(alice_jid, NODE_DEVICES)
            assert [device_ids(i["payload"]) for i in r["pubsub"]["items"]] == [[11, 22]]
            # ... and carol, not a contact, got no notification.
            assert not [e for e in carol.events if e[0] == alice_jid]
            # Only the owner publishes.
            with pytest.raises(IqError) as e:
                await carol["xep_0060"].publish(alice_jid, NODE_DEVICES, payload=device_list(6))
            assert error_of(e.value)[:2] == ("auth", "forbidden")
            # A node that does not exist.
            with pytest.raises(IqError) as e:
                await bob["xep_0060"].get_items(alice_jid, "urn:example:nothing-here")
            assert error_of(e.value)[:2] == ("cancel", "item-not-found")

            # XEP-0060 §7.1.5: publish-options are preconditions on an existing node.
            with pytest.raises(IqError) as e:
                await alice["xep_0060"].publish(alice_jid, NODE_DEVICES,
                                                payload=device_list(33),
                                                options=alice.options(access_model="presence"))
            assert error_of(e.value) == ("cancel", "conflict",
                                         [f"{{{NS_ERRORS}}}precondition-not-met"])
            r = await carol["xep_0060"].get_items(alice_jid, NODE_DEVICES)
            assert [device_ids(i["payload"]) for i in r["pubsub"]["items"]] == [[11, 22]]

            # A node keeping three items: newest first with max_items, or by id.
            for n in (1, 2, 3, 4):
                await alice["xep_0060"].publish(alice_jid, NODE_PRIVATE, id=f"note{n}",
                                                payload=ET.fromstring(
                                                    f"<note xmlns='urn:example:notes'>{n}</note>"),
                                                options=alice.options(max_items="3",
                                                                      access_model="whitelist"))
            r = await alice["xep_0060"].get_items(alice_jid, NODE_PRIVATE)
            assert sorted(i["id"] for i in r["pubsub"]["items"]) == ["note2", "note3", "note4"]
            r = await alice["xep_0060"].get_items(alice_jid, NODE_PRIVATE, max_items=1)
            assert [i["id"] for i in r["pubsub"]["items"]] == ["note4"]
            r = await alice["xep_0060"].get_items(alice_jid, NODE_PRIVATE, item_ids=["note3"])
            assert [(i["id"], i["payload"].text) for i in r["pubsub"]["items"]] == [("note3", "3")]
            # whitelist (owner only): even a contact is refused.
            with pytest.raises(IqError) as e:
                await bob["xep_0060"].get_items(alice_jid, NODE_PRIVATE)
            assert error_of(e.value) == ("cancel", "not-allowed",
                                         [f"{{{NS_ERRORS}}}closed-node"])
            # Retract, then the item is gone.
            await alice["xep_0060"].retract(alice_jid, NODE_PRIVATE, "note3")
            with pytest.raises(IqError) as e:
                await alice["xep_0060"].get_items(alice_jid, NODE_PRIVATE, item_ids=["note3"])
            assert error_of(e.value)[:2] == ("cancel", "item-not-found")
            # Delete the node (owner namespace), then it does not exist.
            await alice["xep_0060"].delete_node(alice_jid, NODE_PRIVATE)
            with pytest.raises(IqError) as e:
                await alice["xep_0060"].get_items(alice_jid, NODE_PRIVATE)
            assert error_of(e.value)[:2] == ("cancel", "item-not-found")

            # The owner's own resource is notified subject to filtering too (§4.3):
            # alice's caps ask for avatar metadata (xep_0084), not for device lists.
            await alice.wait_event(alice_jid, NS_AVATAR_META)
            assert not [e for e in alice.events if e[1] == NODE_DEVICES]
            # The server learned the clients' capabilities and verified their ver (XEP-0115 §5.4).
            server.wait_log(r'capabilities learned" jid="bob@localhost/phone" verified=yes')
            assert "verified=no" not in server.log()

            # A new resource of bob's gets the last published items at login (§4.3.2).
            bob2 = PepClient(f"{bob_jid}/tablet", USERS["bob"], interests=[NODE_DEVICES])
            await bob2.start(server.c2s_port)
            ev = await bob2.wait_event(alice_jid, NODE_DEVICES)
            assert device_ids(ev[3]) == [11, 22]
            ev = await bob2.wait_event(alice_jid, NS_AVATAR_META)
            assert ev[2] == "a1b2c3"
            # Same software, same ver: the cached, verified answer is used, not asked again.
            assert not server.log().count('learned" jid="bob@localhost/tablet"')
        finally:
            await close_all(bob, alice, carol, bob2)

    run(scenario(), timeout=90)


@pytest.mark.parametrize("server", ["external"], indirect=True)
def test_pep_items_persist_across_restart(server):
    alice_jid = server.jid("alice")

    async def publish():
        alice = PepClient(f"{alice_jid}/a", USERS["alice"])
        try:
            await alice.start(server.c2s_port)
            await alice["xep_0060"].publish(alice_jid, NODE_DEVICES, id="current",
                                            payload=device_list(7),
                                            options=alice.options(access_model="open"))
        finally:
            await close_all(alice)

    async def read():
        carol = PepClient(f"{server.jid('carol')}/c", USERS["carol"])
        try:
            await carol.start(server.c2s_port)
            r = await carol["xep_0060"].get_items(alice_jid, NODE_DEVICES)
            return [(i["id"], device_ids(i["payload"])) for i in r["pubsub"]["items"]]
        finally:
            await close_all(carol)

    run(publish())
    ups = len(server.wait_log("session server link up", count=server.opts.workers))
    assert server.restart_sm() == []
    # The edge reconnects its links to the new session server.
    server.wait_log("session server link up", count=ups + server.opts.workers, timeout=15)
    assert run(read()) == [("current", [7])]


# ---- raw XML: error conditions and capabilities that do not verify ----------------

def raw_login(server, user, resource):
    c = Raw(server.c2s_port)
    c.login(user, USERS[user], resource)
    return c


def raw_iq(c, iq_id, body, to=None, iq_type="set"):
    to_attr = f" to='{to}'" if to else ""
    c.send(f"<iq type='{iq_type}' id='{iq_id}'{to_attr}>{body}</iq>")
    return c.wait_for(lambda e: e.tag == IQ and e.get("id") == iq_id)


def app_error(el):
    err = el.find(q(NS_CLIENT, "error"))
    return [c.tag for c in err if c.tag.startswith(f"{{{NS_ERRORS}}}")] if err is not None else []


def test_pep_publish_errors(server):
    alice = raw_login(server, "alice", "raw")
    try:
        cases = [
            # (publish body, expected (type, condition), expected pubsub#errors condition)
            (f"<pubsub xmlns='{NS_PUBSUB}'><publish><item><x xmlns='urn:x'/></item></publish>"
             "</pubsub>", ("modify", "bad-request"), "nodeid-required"),
            (f"<pubsub xmlns='{NS_PUBSUB}'><publish node='urn:x'><item id='1'/></publish>"
             "</pubsub>", ("modify", "bad-request"), "payload-required"),
            (f"<pubsub xmlns='{NS_PUBSUB}'><publish node='urn:x'><item><x xmlns='urn:x'/>"
             "<y xmlns='urn:x'/></item></publish></pubsub>", ("modify", "bad-request"),
             "invalid-payload"),
            (f"<pubsub xmlns='{NS_PUBSUB}'><publish node='urn:x'><item><x xmlns='urn:x'/></item>"
             "</publish><publish-options><x xmlns='jabber:x:data' type='submit'>"
             "<field var='FORM_TYPE' type='hidden'>"
             "<value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
             "<field var='pubsub#access_model'><value>authorize</value></field></x>"
             "</publish-options></pubsub>", ("cancel", "conflict"), "precondition-not-met"),
            (f"<pubsub xmlns='{NS_PUBSUB}'><publish node='{'n' * 300}'><item><x xmlns='urn:x'/>"
             "</item></publish></pubsub>", ("modify", "not-acceptable"), None),
            (f"<pubsub xmlns='{NS_PUBSUB}'><subscribe node='urn:x' jid='{server.jid('alice')}'/>"
             "</pubsub>", ("cancel", "feature-not-implemented"), None),
        ]
        for i, (body, cond, app) in enumerate(cases):
            r = raw_iq(alice, f"e{i}", body)
            assert r.get("type") == "error", dump(r)
            assert stanza_error(r) == cond, dump(r)
            assert app_error(r) == ([f"{{{NS_ERRORS}}}{app}"] if app else []), dump(r)
        # None of them created a node.
        r = raw_iq(alice, "get", f"<pubsub xmlns='{NS_PUBSUB}'><items node='urn:x'/></pubsub>")
        assert r.get("type") == "error", dump(r)
    finally:
        alice.close()


def test_pep_unverified_caps_not_shared(buddies):
    server = buddies
    fake = "bm90IGEgcmVhbCBoYXNoIQ=="
    caps = (f"<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' "
            f"node='urn:example:client' ver='{fake}'/></presence>")
    disco_answer = ("<iq type='result' id='{id}' to='localhost'><query "
                    "xmlns='http://jabber.org/protocol/disco#info' node='urn:example:client#"
                    f"{fake}'><identity category='client' type='pc'/>"
                    f"<feature var='{NODE_DEVICES}+notify'/></query></iq>")

    def disco_query(c):
        return c.wait_for(lambda e: e.tag == IQ and e.get("type") == "get" and
                          e.find("{http://jabber.org/protocol/disco#info}query") is not None)

    bob1 = raw_login(server, "bob", "one")
    bob2 = alice = None
    try:
        bob1.send(caps)
        iq = disco_query(bob1)
        assert iq.get("from") == "localhost"
        assert iq.find("{http://jabber.org/protocol/disco#info}query").get("node") == \
            f"urn:example:client#{fake}"
        bob1.send(disco_answer.format(id=iq.get("id")))
        server.wait_log(r'capabilities learned" jid="bob@localhost/one" verified=no')
        # The same unverifiable ver from another resource is asked again, not trusted.
        bob2 = raw_login(server, "bob", "two")
        bob2.send(caps)
        iq2 = disco_query(bob2)
        assert iq2.get("id") != iq.get("id")
        # bob1's own answer still applies to bob1: it wants device lists.
        alice = raw_login(server, "alice", "pub")
        r = raw_iq(alice, "pub", f"<pubsub xmlns='{NS_PUBSUB}'><publish node='{NODE_DEVICES}'>"
                   f"<item id='current'><list xmlns='{NS_AXOLOTL}'><device id='5'/></list>"
                   "</item></publish></pubsub>")
        assert r.get("type") == "result", dump(r)
        ev = bob1.wait_for(lambda e: e.tag == q(NS_CLIENT, "message"))
        assert ev.get("type") == "headline" and ev.get("from") == server.jid("alice")
        item = ev.find("{http://jabber.org/protocol/pubsub#event}event/"
                       "{http://jabber.org/protocol/pubsub#event}items/"
                       "{http://jabber.org/protocol/pubsub#event}item")
        assert item is not None and item.get("id") == "current", dump(ev)
        assert item.find(f"{{{NS_AXOLOTL}}}list/{{{NS_AXOLOTL}}}device").get("id") == "5"
    finally:
        for c in (bob1, bob2, alice):
            if c is not None:
                c.close()


# One shard: the one-sided roster this test builds lasts only while carol's probe of
# alice is answered from the sessions at hand; across shards alice's server answers it
# with 'unsubscribed' (RFC 6121 §4.3.2) and carol's row is corrected to none at once.
@pytest.mark.parametrize("server", [{"shards": 1}], indirect=True)
def test_pep_last_items_follow_owner_roster(server):
    """carol lists alice with subscription 'to', but alice's roster does not have
    carol: at login carol gets the last item of alice's open node only."""
    server.roster_add("carol", "alice", "to")
    fake = "Y2Fyb2wncyB1bnZlcmlmaWVkIHZlcg=="
    alice = raw_login(server, "alice", "pub")
    carol = None
    try:
        for node, payload in ((NS_AVATAR_META, f"<metadata xmlns='{NS_AVATAR_META}'/>"),
                              (NODE_DEVICES, f"<list xmlns='{NS_AXOLOTL}'/>")):
            opts = ("<publish-options><x xmlns='jabber:x:data' type='submit'>"
                    "<field var='FORM_TYPE' type='hidden'>"
                    "<value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
                    "<field var='pubsub#access_model'><value>open</value></field></x>"
                    "</publish-options>") if node == NODE_DEVICES else ""
            r = raw_iq(alice, node, f"<pubsub xmlns='{NS_PUBSUB}'><publish node='{node}'>"
                       f"<item id='last'>{payload}</item></publish>{opts}</pubsub>")
            assert r.get("type") == "result", dump(r)
        carol = raw_login(server, "carol", "c")
        carol.send("<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' "
                   f"node='urn:example:client' ver='{fake}'/></presence>")
        iq = carol.wait_for(lambda e: e.tag == IQ and e.get("type") == "get")
        carol.send(f"<iq type='result' id='{iq.get('id')}' to='localhost'><query "
                   f"xmlns='http://jabber.org/protocol/disco#info'>"
                   f"<feature var='{NODE_DEVICES}+notify'/>"
                   f"<feature var='{NS_AVATAR_META}+notify'/></query></iq>")
        EV = "{http://jabber.org/protocol/pubsub#event}"
        ev = carol.wait_for(lambda e: e.tag == q(NS_CLIENT, "message"))
        assert ev.find(f"{EV}event/{EV}items").get("node") == NODE_DEVICES, dump(ev)
        # Everything the server sent carol before a ping answer has arrived by then.
        carol.seen = []
        r = carol.ping("sync")
        assert r.get("type") == "result", dump(r)
        assert not [e for e in carol.seen if e.tag == q(NS_CLIENT, "message")], \
            [dump(e) for e in carol.seen]
    finally:
        for c in (alice, carol):
            if c is not None:
                c.close()


def test_pep_node_configuration(server):
    """XEP-0060 §8.2: the way out of precondition-not-met (what OMEMO clients do)."""
    NS_OWNER = "http://jabber.org/protocol/pubsub#owner"
    XD = "{jabber:x:data}"

    def config_form(**fields):
        f = "".join(f"<field var='pubsub#{k}'><value>{v}</value></field>"
                    for k, v in fields.items())
        return (f"<pubsub xmlns='{NS_OWNER}'><configure node='{NODE_DEVICES}'>"
                "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"
                f"<value>http://jabber.org/protocol/pubsub#node_config</value></field>{f}</x>"
                "</configure></pubsub>")

    def publish_open(iq_id):
        return raw_iq(alice, iq_id, f"<pubsub xmlns='{NS_PUBSUB}'><publish node='{NODE_DEVICES}'>"
                      f"<item id='current'><list xmlns='{NS_AXOLOTL}'/></item></publish>"
                      "<publish-options><x xmlns='jabber:x:data' type='submit'>"
                      "<field var='FORM_TYPE' type='hidden'>"
                      "<value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
                      "<field var='pubsub#access_model'><value>open</value></field></x>"
                      "</publish-options></pubsub>")

    alice = raw_login(server, "alice", "cfg")
    try:
        r = raw_iq(alice, "c0", f"<pubsub xmlns='{NS_OWNER}'><configure node='{NODE_DEVICES}'/>"
                   "</pubsub>", iq_type="get")
        assert stanza_error(r) == ("cancel", "item-not-found"), dump(r)
        # Auto-created with the default access model, presence.
        r = raw_iq(alice, "p0", f"<pubsub xmlns='{NS_PUBSUB}'><publish node='{NODE_DEVICES}'>"
                   f"<item id='current'><list xmlns='{NS_AXOLOTL}'/></item></publish></pubsub>")
        assert r.get("type") == "result", dump(r)
        assert stanza_error(publish_open("p1")) == ("cancel", "conflict")
        r = raw_iq(alice, "c1", f"<pubsub xmlns='{NS_OWNER}'><configure node='{NODE_DEVICES}'/>"
                   "</pubsub>", iq_type="get")
        assert r.get("type") == "result", dump(r)
        fields = {f.get("var"): f.find(f"{XD}value").text
                  for f in r.iter(f"{XD}field")}
        assert fields == {"FORM_TYPE": "http://jabber.org/protocol/pubsub#node_config",
                          "pubsub#access_model": "presence", "pubsub#max_items": "1"}, fields
        # Unsupported values are refused and change nothing.
        r = raw_iq(alice, "c2", config_form(access_model="authorize"))
        assert stanza_error(r) == ("modify", "not-acceptable"), dump(r)
        r = raw_iq(alice, "c3", config_form(deliver_payloads="0"))
        assert stanza_error(r) == ("modify", "not-acceptable"), dump(r)
        r = raw_iq(alice, "c4", config_form(access_model="open"))
        assert r.get("type") == "result", dump(r)
        r = publish_open("p2")
        assert r.get("type") == "result", dump(r)
        # Another account cannot configure alice's node.
        bob = raw_login(server, "bob", "cfg")
        try:
            r = raw_iq(bob, "c5", config_form(access_model="presence"),
                       to=server.jid("alice"))
            assert stanza_error(r) == ("auth", "forbidden"), dump(r)
        finally:
            bob.close()
    finally:
        alice.close()
