"""The PubSub service (XEP-0060) on `services.pubsub.domain`: nodes, configuration,
publishing with notifications, items, retract, purge, delete, subscriptions and their
options, affiliations, the access models, persistence across a crash, and the service
serving users of every shard.  Raw XML clients (every error condition and application
condition the XEP names is checked as a client receives it), and slixmpp's xep_0060
plugin for a real client library."""
import asyncio

import pytest

from conftest import USERS
from rawxmpp import NS_CLIENT, Raw, dump, q
from slixclient import Client, run

PS = "pubsub.localhost"
NS_PS = "http://jabber.org/protocol/pubsub"
NS_OWNER = NS_PS + "#owner"
NS_EVENT = NS_PS + "#event"
NS_ERRORS = NS_PS + "#errors"
IQ, MESSAGE = q(NS_CLIENT, "iq"), q(NS_CLIENT, "message")
SERVICES = f"services:\n  pubsub:\n    domain: {PS}\n"
with_ps = pytest.mark.parametrize("server", [{"extra_edge_yaml": SERVICES}], indirect=True)


def login(server, user, resource):
    c = Raw(server.c2s_port)
    c.login(user, USERS[user], resource)
    c.send("<presence/>")
    return c


def iq(c, typ, body, iq_id):
    c.send(f"<iq type='{typ}' to='{PS}' id='{iq_id}'>{body}</iq>")
    return c.wait_for(lambda e: e.tag == IQ and e.get("id") == iq_id, 10.0)


def ps(c, typ, inner, iq_id, owner=False):
    return iq(c, typ, f"<pubsub xmlns='{NS_OWNER if owner else NS_PS}'>{inner}</pubsub>", iq_id)


def cond(r):
    e = r.find(f"{{{NS_CLIENT}}}error")
    assert e is not None, dump(r)
    names = [c.tag.split("}")[1] for c in e]
    app = [c.tag.split("}")[1] for c in e if c.tag.startswith(f"{{{NS_ERRORS}}}")]
    return names[0], (app[0] if app else None)


def ok(r):
    assert r.get("type") == "result", dump(r)
    return r


def event(c, node, timeout=10.0):
    return c.wait_for(lambda e: e.tag == MESSAGE and e.find(f"{{{NS_EVENT}}}event") is not None and
                      any(x.get("node") == node for x in e.find(f"{{{NS_EVENT}}}event")), timeout)


def configure(c, node, fields, iq_id):
    xs = "".join(f"<field var='{k}'><value>{v}</value></field>" for k, v in fields.items())
    return ps(c, "set", f"<configure node='{node}'><x xmlns='jabber:x:data' type='submit'>"
              f"<field var='FORM_TYPE' type='hidden'><value>{NS_PS}#node_config</value></field>"
              f"{xs}</x></configure>", iq_id, owner=True)


@with_ps
def test_node_life_publish_subscribe_notify(server):
    a = login(server, "alice", "a")
    b = login(server, "bob", "b")
    c = login(server, "carol", "c")
    try:
        # Discovery (§5.1): the domain lists the service, the service says what it is.
        r = a.send("<iq type='get' id='d0' to='localhost'><query "
                   "xmlns='http://jabber.org/protocol/disco#items'/></iq>")
        r = a.wait_for(lambda e: e.tag == IQ and e.get("id") == "d0", 10.0)
        assert PS in [i.get("jid") for i in r.iter("{http://jabber.org/protocol/disco#items}item")]
        r = ok(iq(a, "get", "<query xmlns='http://jabber.org/protocol/disco#info'/>", "d1"))
        ident = r.find("{http://jabber.org/protocol/disco#info}query/{http://jabber.org/protocol/disco#info}identity")
        assert (ident.get("category"), ident.get("type")) == ("pubsub", "service")
        feats = {f.get("var") for f in r.iter("{http://jabber.org/protocol/disco#info}feature")}
        assert {NS_PS + "#create-nodes", NS_PS + "#subscribe", NS_PS + "#publish"} <= feats
        # Create (§8.1), twice: conflict.
        ok(ps(a, "set", "<create node='news'/>", "c1"))
        assert cond(ps(b, "set", "<create node='news'/>", "c2"))[0] == "conflict"
        # Subscribe (§6.1): bob's bare JID; a JID not his own is refused.
        assert cond(ps(b, "set", "<subscribe node='news' jid='carol@localhost'/>", "s0")) == \
            ("bad-request", "invalid-jid")
        r = ok(ps(b, "set", "<subscribe node='news' jid='bob@localhost'/>", "s1"))
        sub = r.find(f"{{{NS_PS}}}pubsub/{{{NS_PS}}}subscription")
        assert sub.get("subscription") == "subscribed" and sub.get("subid"), dump(r)
        # Publish (§7.1): the publisher gets the item id, the subscriber the event with
        # the payload; someone without affiliation may not publish (§7.1.3.1).
        r = ok(ps(a, "set", "<publish node='news'><item id='i1'><entry xmlns='urn:x:test'>"
                  "hello</entry></item></publish>", "p1"))
        assert r.find(f"{{{NS_PS}}}pubsub/{{{NS_PS}}}publish/{{{NS_PS}}}item").get("id") == "i1"
        ev = event(b, "news")
        it = ev.find(f"{{{NS_EVENT}}}event/{{{NS_EVENT}}}items/{{{NS_EVENT}}}item")
        assert it.get("id") == "i1" and it.find("{urn:x:test}entry").text == "hello", dump(ev)
        assert ev.get("from") == PS
        assert cond(ps(c, "set", "<publish node='news'><item><x xmlns='urn:x:t'/></item></publish>",
                       "p2"))[0] == "forbidden"
        for i in range(2, 5):
            ok(ps(a, "set", f"<publish node='news'><item id='i{i}'><n xmlns='urn:x:t'>{i}</n></item>"
                  "</publish>", f"p{i + 10}"))
        # Items (§6.5): all (newest first), max_items, by id; unknown id: item-not-found.
        r = ok(ps(c, "get", "<items node='news'/>", "g1"))
        assert [i.get("id") for i in r.iter(f"{{{NS_PS}}}item")] == ["i4", "i3", "i2", "i1"]
        r = ok(ps(c, "get", "<items node='news' max_items='2'/>", "g2"))
        assert [i.get("id") for i in r.iter(f"{{{NS_PS}}}item")] == ["i4", "i3"]
        r = ok(ps(c, "get", "<items node='news'><item id='i2'/></items>", "g3"))
        assert [i.get("id") for i in r.iter(f"{{{NS_PS}}}item")] == ["i2"]
        assert cond(ps(c, "get", "<items node='news'><item id='nope'/></items>", "g4"))[0] == "item-not-found"
        # Retract (§7.2) with notification; subscription options (§6.3): no delivery.
        ok(ps(a, "set", "<retract node='news' notify='true'><item id='i1'/></retract>", "r1"))
        ev = b.wait_for(lambda e: e.tag == MESSAGE and
                        e.find(f"{{{NS_EVENT}}}event/{{{NS_EVENT}}}items/{{{NS_EVENT}}}retract") is not None, 10.0)
        assert ev.find(f"{{{NS_EVENT}}}event/{{{NS_EVENT}}}items/{{{NS_EVENT}}}retract").get("id") == "i1"
        r = ok(ps(b, "get", "<options node='news' jid='bob@localhost'/>", "o1"))
        assert "pubsub#deliver" in {f.get("var") for f in r.iter("{jabber:x:data}field")}
        ok(ps(b, "set", "<options node='news' jid='bob@localhost'><x xmlns='jabber:x:data' type='submit'>"
              "<field var='pubsub#deliver'><value>0</value></field></x></options>", "o2"))
        ok(ps(a, "set", "<publish node='news'><item id='quiet'><n xmlns='urn:x:t'/></item></publish>", "p20"))
        ok(ps(b, "set", "<options node='news' jid='bob@localhost'><x xmlns='jabber:x:data' type='submit'>"
              "<field var='pubsub#deliver'><value>1</value></field></x></options>", "o3"))
        ok(ps(a, "set", "<publish node='news'><item id='loud'><n xmlns='urn:x:t'/></item></publish>", "p21"))
        ev = event(b, "news")
        assert ev.find(f"{{{NS_EVENT}}}event/{{{NS_EVENT}}}items/{{{NS_EVENT}}}item").get("id") == "loud", \
            "an event arrived while delivery was off"
        # Own subscriptions and affiliations (§5.6, §5.7).
        r = ok(ps(b, "get", "<subscriptions/>", "l1"))
        assert [(s.get("node"), s.get("subscription")) for s in r.iter(f"{{{NS_PS}}}subscription")] == \
            [("news", "subscribed")]
        r = ok(ps(a, "get", "<affiliations/>", "l2"))
        assert [(x.get("node"), x.get("affiliation")) for x in r.iter(f"{{{NS_PS}}}affiliation")] == \
            [("news", "owner")]
        # Purge (§8.5) and delete (§8.4): owner only; subscribers told.
        assert cond(ps(b, "set", "<purge node='news'/>", "x0", owner=True))[0] == "forbidden"
        ok(ps(a, "set", "<purge node='news'/>", "x1", owner=True))
        b.wait_for(lambda e: e.tag == MESSAGE and e.find(f"{{{NS_EVENT}}}event/{{{NS_EVENT}}}purge") is not None, 10.0)
        r = ok(ps(c, "get", "<items node='news'/>", "g5"))
        assert not list(r.iter(f"{{{NS_PS}}}item"))
        ok(ps(a, "set", "<delete node='news'/>", "x2", owner=True))
        b.wait_for(lambda e: e.tag == MESSAGE and e.find(f"{{{NS_EVENT}}}event/{{{NS_EVENT}}}delete") is not None, 10.0)
        assert cond(ps(c, "get", "<items node='news'/>", "g6"))[0] == "item-not-found"
        # Unsubscribe from a node one is not subscribed to (§6.2.3.2).
        ok(ps(a, "set", "<create node='n2'/>", "c3"))
        assert cond(ps(b, "set", "<unsubscribe node='n2' jid='bob@localhost'/>", "u1")) == \
            ("unexpected-request", "not-subscribed")
    finally:
        for cl in (a, b, c):
            cl.close()


@with_ps
def test_configuration_access_models_and_preconditions(server):
    a = login(server, "alice", "a")
    b = login(server, "bob", "b")
    c = login(server, "carol", "c")
    try:
        ok(ps(a, "set", "<create node='cfg'/>", "c1"))
        r = ok(ps(a, "get", "<configure node='cfg'/>", "f1", owner=True))
        assert "pubsub#access_model" in {f.get("var") for f in r.iter("{jabber:x:data}field")}
        # Whitelist (§4.5): closed to those without affiliation, open to a member.
        ok(configure(a, "cfg", {"pubsub#access_model": "whitelist"}, "f2"))
        assert cond(ps(b, "set", "<subscribe node='cfg' jid='bob@localhost'/>", "s1")) == \
            ("not-allowed", "closed-node")
        ok(ps(a, "set", "<affiliations node='cfg'><affiliation jid='bob@localhost' "
              "affiliation='member'/></affiliations>", "a1", owner=True))
        ok(ps(b, "set", "<subscribe node='cfg' jid='bob@localhost'/>", "s2"))
        # Authorize (§6.1.4, §8.6): pending until an owner approves (§8.8.2).
        ok(configure(a, "cfg", {"pubsub#access_model": "authorize"}, "f3"))
        r = ok(ps(c, "set", "<subscribe node='cfg' jid='carol@localhost'/>", "s3"))
        assert r.find(f"{{{NS_PS}}}pubsub/{{{NS_PS}}}subscription").get("subscription") == "pending"
        ok(ps(a, "set", "<publish node='cfg'><item id='x'><n xmlns='urn:x:t'/></item></publish>", "p1"))
        event(b, "cfg")
        r = ok(ps(a, "get", "<subscriptions node='cfg'/>", "m1", owner=True))
        assert ("carol@localhost", "pending") in [(s.get("jid"), s.get("subscription"))
                                                 for s in r.iter(f"{{{NS_OWNER}}}subscription")]
        ok(ps(a, "set", "<subscriptions node='cfg'><subscription jid='carol@localhost' "
              "subscription='subscribed'/></subscriptions>", "m2", owner=True))
        ok(ps(a, "set", "<publish node='cfg'><item id='y'><n xmlns='urn:x:t'/></item></publish>", "p2"))
        ev = event(c, "cfg")
        assert ev.find(f"{{{NS_EVENT}}}event/{{{NS_EVENT}}}items/{{{NS_EVENT}}}item").get("id") == "y", dump(ev)
        # Presence (§4.5): the owner's roster decides.
        ok(ps(a, "set", "<create node='pres'/>", "c2"))
        ok(configure(a, "pres", {"pubsub#access_model": "presence"}, "f4"))
        assert cond(ps(c, "set", "<subscribe node='pres' jid='carol@localhost'/>", "s4")) == \
            ("not-authorized", "presence-subscription-required")
        server.roster_add("alice", "carol", "from", "Carol")
        ok(ps(c, "set", "<subscribe node='pres' jid='carol@localhost'/>", "s5"))
        # publish-options are preconditions on an existing node (§7.1.5).
        r = ps(a, "set", "<publish node='pres'><item><n xmlns='urn:x:t'/></item></publish>"
               "<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' "
               f"type='hidden'><value>{NS_PS}#publish-options</value></field><field "
               "var='pubsub#access_model'><value>open</value></field></x></publish-options>", "p3")
        assert cond(r) == ("conflict", "precondition-not-met")
        # Auto-create (§7.1.4): the publisher owns the new node.
        ok(ps(b, "set", "<publish node='auto'><item id='1'><n xmlns='urn:x:t'/></item></publish>", "p4"))
        r = ok(ps(b, "get", "<affiliations/>", "l1"))
        assert ("auto", "owner") in [(x.get("node"), x.get("affiliation")) for x in r.iter(f"{{{NS_PS}}}affiliation")]
        # The last owner stays.
        r = ps(a, "set", "<affiliations node='cfg'><affiliation jid='alice@localhost' "
               "affiliation='none'/></affiliations>", "a2", owner=True)
        assert cond(r)[0] == "not-acceptable"
    finally:
        for cl in (a, b, c):
            cl.close()


@with_ps
def test_nodes_survive_a_crash(server):
    a = login(server, "alice", "a")
    try:
        ok(ps(a, "set", "<create node='kept'/>", "c1"))
        ok(configure(a, "kept", {"pubsub#title": "Kept", "pubsub#max_items": "5"}, "f1"))
        ok(ps(a, "set", "<subscribe node='kept' jid='alice@localhost'/>", "s1"))
        ok(ps(a, "set", "<publish node='kept'><item id='k1'><n xmlns='urn:x:t'>1</n></item></publish>", "p1"))
        event(a, "kept")
    finally:
        a.close()
    server.crash_and_restart()
    b = login(server, "bob", "b")
    a = login(server, "alice", "a")
    try:
        r = ok(ps(b, "get", "<items node='kept'/>", "g1"))
        assert [i.get("id") for i in r.iter(f"{{{NS_PS}}}item")] == ["k1"]
        r = ok(ps(a, "get", "<subscriptions/>", "l1"))
        assert [s.get("node") for s in r.iter(f"{{{NS_PS}}}subscription")] == ["kept"]
        r = ok(ps(a, "get", "<configure node='kept'/>", "f2", owner=True))
        vals = {f.get("var"): f.findtext("{jabber:x:data}value") for f in r.iter("{jabber:x:data}field")}
        assert vals["pubsub#title"] == "Kept" and vals["pubsub#max_items"] == "5"
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("server", [{"extra_edge_yaml": SERVICES, "shards": 2}], indirect=True)
def test_service_across_shards(server):
    """Two shards: the service lives on one; users of both create, subscribe and get events."""
    a = login(server, "alice", "a")
    c = login(server, "carol", "c")
    try:
        ok(ps(c, "set", "<create node='x'/>", "c1"))
        ok(ps(a, "set", "<subscribe node='x' jid='alice@localhost'/>", "s1"))
        ok(ps(c, "set", "<subscribe node='x' jid='carol@localhost'/>", "s2"))
        ok(ps(c, "set", "<publish node='x'><item id='1'><n xmlns='urn:x:t'/></item></publish>", "p1"))
        event(a, "x")
        event(c, "x")
    finally:
        a.close()
        c.close()


@with_ps
def test_slixmpp_pubsub(server):
    """slixmpp's xep_0060 plugin: create, subscribe, publish, get the event and the items."""
    async def scenario():
        cl = Client("bob@localhost/slix", USERS["bob"])
        cl.register_plugin("xep_0060")
        got = asyncio.get_event_loop().create_future()
        cl.add_event_handler("pubsub_publish", lambda m: got.done() or got.set_result(m))
        cl.connect(("127.0.0.1", server.c2s_port))
        await asyncio.wait_for(cl.ready, 15)
        p = cl.plugin["xep_0060"]
        await p.create_node(PS, "slix", timeout=10)
        await p.subscribe(PS, "slix", timeout=10)
        from slixmpp.xmlstream import ET
        await p.publish(PS, "slix", id="one", payload=ET.fromstring("<n xmlns='urn:x:t'>v</n>"), timeout=10)
        ev = await asyncio.wait_for(got, 15)
        items = await p.get_items(PS, "slix", timeout=10)
        cl.disconnect()
        return ev["pubsub_event"]["items"]["item"]["id"], [i["id"] for i in items["pubsub"]["items"]]

    ev_id, ids = run(scenario(), timeout=60)
    assert ev_id == "one" and ids == ["one"]
