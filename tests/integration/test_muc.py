"""Group chat (XEP-0045) on `services.muc.domain`: rooms created on first join, locked until
the owner accepts the instant room, joins with the occupants' presence, history and subject,
groupchat fan-out, private messages, nickname conflicts, leaving (by presence and by the
session ending), the subject, destroy, disco; and rooms across shards (a room lives on the
shard its JID hashes to; its occupants may be on any shard).  Raw XML clients, so every
status code and error the XEP names is checked as a client receives it; one slixmpp test
(its xep_0045 plugin) checks that a real client library gets on with the service."""
import asyncio

import pytest

from conftest import USERS
from rawxmpp import NS_CLIENT, Raw, dump, q
from slixclient import Client, run

MUC = "conference.localhost"
NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_USER = NS_MUC + "#user"
NS_MUC_OWNER = NS_MUC + "#owner"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_DELAY = "urn:xmpp:delay"
PRESENCE, MESSAGE, IQ = q(NS_CLIENT, "presence"), q(NS_CLIENT, "message"), q(NS_CLIENT, "iq")
BODY, SUBJECT = q(NS_CLIENT, "body"), q(NS_CLIENT, "subject")
SERVICES = f"services:\n  muc:\n    domain: {MUC}\n    history: 5\n"

with_muc = pytest.mark.parametrize("server", [{"extra_edge_yaml": SERVICES}], indirect=True)


def login(server, user, resource):
    """A client that is available (initial presence), as clients are before joining rooms:
    the server then tells the rooms it joined when its session ends (RFC 6121 §4.6.3)."""
    c = Raw(server.c2s_port)
    c.login(user, USERS[user], resource)
    c.send("<presence/>")
    return c


def codes(el):
    return {int(s.get("code")) for s in el.iter(f"{{{NS_MUC_USER}}}status")}


def item(el):
    return el.find(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}item")


def error_condition(el):
    e = el.find(f"{{{NS_CLIENT}}}error")
    assert e is not None, dump(el)
    return next(iter(e)).tag.split("}")[1], e.get("type")


def self_presence(c, room):
    return c.wait_for(lambda e: e.tag == PRESENCE and e.get("from", "").startswith(room + "/") and
                      110 in codes(e), 10.0)


def join(c, room, nick, history=None):
    h = f"<history {history}/>" if history else ""
    c.send(f"<presence to='{room}/{nick}'><x xmlns='{NS_MUC}'>{h}</x></presence>")


def instant(c, room):
    c.send(f"<iq type='set' id='inst' to='{room}'><query xmlns='{NS_MUC_OWNER}'>"
           f"<x xmlns='jabber:x:data' type='submit'/></query></iq>")
    r = c.wait_for(lambda e: e.tag == IQ and e.get("id") == "inst", 10.0)
    assert r.get("type") == "result", dump(r)


def groupchat(c, room, body, mid):
    c.send(f"<message to='{room}' type='groupchat' id='{mid}'><body>{body}</body></message>")


def got_groupchat(c, room, nick, body):
    m = c.wait_for(lambda e: e.tag == MESSAGE and e.findtext(BODY) == body, 10.0)
    assert m.get("type") == "groupchat" and m.get("from") == f"{room}/{nick}", dump(m)
    return m


def open_room(server, room):
    """alice creates room and accepts the instant room; returns her client."""
    a = login(server, "alice", "a")
    join(a, room, "Alice")
    me = self_presence(a, room)
    assert {110, 201} <= codes(me), dump(me)
    instant(a, room)
    return a


@with_muc
def test_create_locked_until_instant_then_join(server):
    room = f"lobby@{MUC}"
    a = login(server, "alice", "a")
    b = login(server, "bob", "b")
    try:
        join(a, room, "Alice")
        me = self_presence(a, room)
        assert {110, 201} <= codes(me), dump(me)
        assert item(me).get("affiliation") == "owner" and item(me).get("role") == "moderator"
        subj = a.wait_for(lambda e: e.tag == MESSAGE and e.find(SUBJECT) is not None, 10.0)
        assert subj.get("from") == room and subj.get("type") == "groupchat"   # §7.2.15: always
        # Locked: nobody else gets in until the owner accepts a configuration (§10.1.1).
        join(b, room, "Bob")
        err = b.wait_for(lambda e: e.tag == PRESENCE and e.get("type") == "error", 10.0)
        assert err.get("from") == f"{room}/Bob"
        assert error_condition(err) == ("item-not-found", "cancel"), dump(err)
        instant(a, room)
        join(b, room, "Bob")
        # The newcomer: the occupants first (no real JID: semi-anonymous, Bob is no
        # moderator), then itself with 110 and without 201.
        other = b.wait_for(lambda e: e.tag == PRESENCE and e.get("from") == f"{room}/Alice", 10.0)
        assert item(other).get("jid") is None and item(other).get("affiliation") == "owner"
        me = self_presence(b, room)
        assert codes(me) == {110} and item(me).get("role") == "participant", dump(me)
        # The moderator sees the newcomer's real JID.
        seen = a.wait_for(lambda e: e.tag == PRESENCE and e.get("from") == f"{room}/Bob", 10.0)
        assert item(seen).get("jid") == "bob@localhost/b", dump(seen)
    finally:
        a.close()
        b.close()


@with_muc
def test_groupchat_history_private_and_errors(server):
    room = f"talk@{MUC}"
    a = open_room(server, room)
    b = login(server, "bob", "b")
    c = login(server, "carol", "c")
    try:
        join(b, room, "Bob")
        self_presence(b, room)
        for i in range(7):
            groupchat(a, room, f"hello {i}", f"m{i}")
        for i in range(7):
            got_groupchat(b, room, "Alice", f"hello {i}")
            got_groupchat(a, room, "Alice", f"hello {i}")    # the sender's own copy
        # Not an occupant: not-acceptable (§7.4).
        groupchat(c, room, "let me in", "x1")
        err = c.wait_for(lambda e: e.tag == MESSAGE and e.get("id") == "x1", 10.0)
        assert error_condition(err) == ("not-acceptable", "modify"), dump(err)
        # A nickname another user holds (§7.2.9).
        join(c, room, "Alice")
        err = c.wait_for(lambda e: e.tag == PRESENCE and e.get("type") == "error", 10.0)
        assert error_condition(err) == ("conflict", "cancel"), dump(err)
        # History (§7.2.14): 5 kept, 2 asked for, oldest first, with delays.
        join(c, room, "Carol", history="maxstanzas='2'")
        self_presence(c, room)
        h1 = c.wait_for(lambda e: e.tag == MESSAGE and e.findtext(BODY), 10.0)
        h2 = c.wait_for(lambda e: e.tag == MESSAGE and e.findtext(BODY), 10.0)
        assert [h1.findtext(BODY), h2.findtext(BODY)] == ["hello 5", "hello 6"]
        for h in (h1, h2):
            d = h.find(f"{{{NS_DELAY}}}delay")
            assert d is not None and d.get("from") == room and d.get("stamp"), dump(h)
        c.wait_for(lambda e: e.tag == MESSAGE and e.find(SUBJECT) is not None, 10.0)
        # A private message goes to the nickname's session, from the sender's nickname.
        a.send(f"<message to='{room}/Carol' type='chat' id='pm1'><body>psst</body></message>")
        pm = c.wait_for(lambda e: e.tag == MESSAGE and e.findtext(BODY) == "psst", 10.0)
        assert pm.get("from") == f"{room}/Alice" and pm.get("type") == "chat", dump(pm)
        assert pm.find(f"{{{NS_MUC_USER}}}x") is not None
        a.send(f"<message to='{room}/Nobody' type='chat' id='pm2'><body>?</body></message>")
        err = a.wait_for(lambda e: e.tag == MESSAGE and e.get("id") == "pm2", 10.0)
        assert error_condition(err) == ("item-not-found", "cancel"), dump(err)
        # The subject: a participant may not (default), the moderator may (§8.1).
        b.send(f"<message to='{room}' type='groupchat' id='s1'><subject>mine</subject></message>")
        err = b.wait_for(lambda e: e.tag == MESSAGE and e.get("id") == "s1", 10.0)
        assert error_condition(err) == ("forbidden", "auth"), dump(err)
        a.send(f"<message to='{room}' type='groupchat'><subject>Today: tests</subject></message>")
        s = c.wait_for(lambda e: e.tag == MESSAGE and e.findtext(SUBJECT) == "Today: tests", 10.0)
        assert s.get("from") == f"{room}/Alice"
    finally:
        a.close()
        b.close()
        c.close()


@with_muc
def test_leaving_by_presence_and_by_disconnect(server):
    room = f"exits@{MUC}"
    a = open_room(server, room)
    b = login(server, "bob", "b")
    c = login(server, "carol", "c")
    try:
        join(b, room, "Bob")
        self_presence(b, room)
        join(c, room, "Carol")
        self_presence(c, room)
        b.send(f"<presence to='{room}/Bob' type='unavailable'/>")
        gone = b.wait_for(lambda e: e.tag == PRESENCE and e.get("type") == "unavailable", 10.0)
        assert 110 in codes(gone) and item(gone).get("role") == "none", dump(gone)
        left = a.wait_for(lambda e: e.tag == PRESENCE and e.get("from") == f"{room}/Bob" and
                          e.get("type") == "unavailable", 10.0)
        assert item(left).get("role") == "none"
        # The session ends: the server's unavailable presence to the room takes Carol out.
        c.close()
        a.wait_for(lambda e: e.tag == PRESENCE and e.get("from") == f"{room}/Carol" and
                   e.get("type") == "unavailable", 10.0)
        groupchat(a, room, "alone", "al")
        got_groupchat(a, room, "Alice", "alone")
    finally:
        a.close()
        b.close()


@with_muc
def test_destroy_and_disco(server):
    room = f"doomed@{MUC}"
    a = open_room(server, room)
    b = login(server, "bob", "b")
    try:
        a.send("<iq type='get' id='di' to='localhost'><query "
               "xmlns='http://jabber.org/protocol/disco#items'/></iq>")
        r = a.wait_for(lambda e: e.tag == IQ and e.get("id") == "di", 10.0)
        assert MUC in [i.get("jid") for i in r.iter("{http://jabber.org/protocol/disco#items}item")]
        a.send(f"<iq type='get' id='si' to='{MUC}'><query "
               "xmlns='http://jabber.org/protocol/disco#info'/></iq>")
        r = a.wait_for(lambda e: e.tag == IQ and e.get("id") == "si", 10.0)
        ident = r.find("{http://jabber.org/protocol/disco#info}query/"
                       "{http://jabber.org/protocol/disco#info}identity")
        assert ident.get("category") == "conference" and ident.get("type") == "text", dump(r)
        a.send(f"<iq type='get' id='ri' to='{MUC}'><query "
               "xmlns='http://jabber.org/protocol/disco#items'/></iq>")
        r = a.wait_for(lambda e: e.tag == IQ and e.get("id") == "ri", 10.0)
        assert room in [i.get("jid") for i in r.iter("{http://jabber.org/protocol/disco#items}item")]
        join(b, room, "Bob")
        self_presence(b, room)
        # Only the owner destroys (§10.9).
        b.send(f"<iq type='set' id='d0' to='{room}'><query xmlns='{NS_MUC_OWNER}'><destroy/></query></iq>")
        err = b.wait_for(lambda e: e.tag == IQ and e.get("id") == "d0", 10.0)
        assert error_condition(err) == ("forbidden", "auth"), dump(err)
        a.send(f"<iq type='set' id='d1' to='{room}'><query xmlns='{NS_MUC_OWNER}'>"
               f"<destroy jid='elsewhere@{MUC}'><reason>moving</reason></destroy></query></iq>")
        r = a.wait_for(lambda e: e.tag == IQ and e.get("id") == "d1", 10.0)
        assert r.get("type") == "result", dump(r)
        out = b.wait_for(lambda e: e.tag == PRESENCE and e.get("type") == "unavailable", 10.0)
        d = out.find(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}destroy")
        assert d is not None and d.get("jid") == f"elsewhere@{MUC}", dump(out)
        assert d.findtext(f"{{{NS_MUC_USER}}}reason") == "moving"
        # Gone: a message to it is item-not-found.
        groupchat(b, room, "anyone?", "g1")
        err = b.wait_for(lambda e: e.tag == MESSAGE and e.get("id") == "g1", 10.0)
        assert error_condition(err) == ("item-not-found", "cancel"), dump(err)
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("server", [{"extra_edge_yaml": SERVICES, "shards": 2}], indirect=True)
def test_rooms_across_shards(server):
    """Two shards: rooms hash to either, occupants are on either (alice and bob on one
    shard, carol on the other: tests/integration/test_shards.py); every room works."""
    a = login(server, "alice", "a")
    c = login(server, "carol", "c")
    try:
        for k in range(4):       # four rooms: with two shards, both own some (1/16 not)
            room = f"r{k}@{MUC}"
            join(a, room, "Alice")
            self_presence(a, room)
            instant(a, room)
            join(c, room, "Carol")
            self_presence(c, room)
            groupchat(c, room, f"from carol {k}", f"c{k}")
            got_groupchat(a, room, "Carol", f"from carol {k}")
            got_groupchat(c, room, "Carol", f"from carol {k}")
            c.send(f"<message to='{room}/Alice' type='chat'><body>pm {k}</body></message>")
            pm = a.wait_for(lambda e: e.tag == MESSAGE and e.findtext(BODY) == f"pm {k}", 10.0)
            assert pm.get("from") == f"{room}/Carol"
    finally:
        a.close()
        c.close()


@with_muc
def test_slixmpp_joins_and_talks(server):
    """A real client library: slixmpp's xep_0045 plugin joins, reads the room's messages
    and its own, and sees the other occupant."""
    room = f"slix@{MUC}"
    a = open_room(server, room)

    async def scenario():
        b = Client("bob@localhost/slix", USERS["bob"])
        b.register_plugin("xep_0045")
        b.connect(("127.0.0.1", server.c2s_port))
        await asyncio.wait_for(b.ready, 15)
        got = asyncio.get_event_loop().create_future()
        b.add_event_handler("groupchat_message",
                            lambda m: got.done() or m["body"] != "welcome" or got.set_result(m))
        await b.plugin["xep_0045"].join_muc_wait(room, "Bob", maxstanzas=0, timeout=15)
        roster = b.plugin["xep_0045"].get_roster(room)
        a.wait_for(lambda e: e.tag == PRESENCE and e.get("from") == f"{room}/Bob", 10.0)
        groupchat(a, room, "welcome", "w1")
        m = await asyncio.wait_for(got, 15)
        b.disconnect()
        return sorted(roster), str(m["from"])

    try:
        roster, sender = run(scenario(), timeout=60)
        assert roster == ["Alice", "Bob"], roster
        assert sender == f"{room}/Alice"
    finally:
        a.close()
