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
from test_shards import owner

MUC = "conference.localhost"
NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_USER = NS_MUC + "#user"
NS_MUC_OWNER = NS_MUC + "#owner"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_DELAY = "urn:xmpp:delay"
NS_DATA = "jabber:x:data"
NS_REQUEST = NS_MUC + "#request"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
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


def room_list(c, iq_id):
    """The service's disco#items (§6.3): [(jid, name)] in the order given."""
    c.send(f"<iq type='get' id='{iq_id}' to='{MUC}'><query xmlns='{NS_DISCO_ITEMS}'/></iq>")
    r = c.wait_for(lambda e: e.tag == IQ and e.get("id") == iq_id, 10.0)
    assert r.get("type") == "result", dump(r)
    return [(i.get("jid"), i.get("name")) for i in r.iter(f"{{{NS_DISCO_ITEMS}}}item")]


@pytest.mark.parametrize("server", [{"extra_edge_yaml": SERVICES, "shards": 3}], indirect=True)
def test_public_rooms_of_every_shard(server):
    """Three shards, rooms on each: the service's disco#items, asked by a user of any shard,
    lists the public rooms of every shard, sorted, with their names; hidden and locked
    rooms are not listed (§6.3)."""
    names = ["0", "1", "2"]
    rooms = [f"room{k}@{MUC}" for k in range(9)]
    assert {owner(r, names) for r in rooms} == {0, 1, 2}, "the rooms do not cover every shard"
    assert owner("alice@localhost", names) != owner("carol@localhost", names)
    a = login(server, "alice", "a")
    c = login(server, "carol", "c")
    try:
        for k, room in enumerate(rooms):
            join(a, room, "Alice")
            self_presence(a, room)
            if k == 7:
                continue                         # left locked: not listed
            instant(a, room)
        r = configure(a, rooms[3], {"muc#roomconfig_roomname": "The Third &amp; Last"}, "n3")
        assert r.get("type") == "result", dump(r)
        r = configure(a, rooms[5], {"muc#roomconfig_publicroom": "0"}, "h5")
        assert r.get("type") == "result", dump(r)
        want = sorted((r, r.split("@")[0]) for i, r in enumerate(rooms) if i not in (5, 7))
        want = [(j, "The Third & Last" if j == rooms[3] else n) for j, n in want]
        for who in (a, c):
            assert room_list(who, f"l{id(who)}") == want
        # A room another shard owns goes away: the list follows.
        a.send(f"<iq type='set' id='gone' to='{rooms[0]}'><query xmlns='{NS_MUC_OWNER}'>"
               "<destroy/></query></iq>")
        assert a.wait_for(lambda e: e.tag == IQ and e.get("id") == "gone", 10.0).get("type") == "result"
        assert room_list(c, "after") == [w for w in want if w[0] != rooms[0]]
    finally:
        a.close()
        c.close()


def voice_form(fields, ftype="submit"):
    xs = "".join(f"<field var='{k}'><value>{v}</value></field>" for k, v in fields.items())
    return (f"<x xmlns='{NS_DATA}' type='{ftype}'><field var='FORM_TYPE'>"
            f"<value>{NS_REQUEST}</value></field>{xs}</x>")


def form_fields(x):
    return {f.get("var"): f for f in x.findall(f"{{{NS_DATA}}}field")}


@pytest.mark.parametrize("server", [{"extra_edge_yaml": SERVICES, "shards": 2}], indirect=True)
def test_voice_request_and_approval(server):
    """§7.13 and §8.6 in a moderated room (its occupants on two shards): a visitor asks for
    voice; every moderator session gets the approval form; a denial changes nothing; an
    approval makes the visitor a participant (presence to all), who may then speak.
    Errors: a participant asking (not-allowed), a non-occupant (not-acceptable), a
    non-moderator approving (forbidden), a nickname not in the room (item-not-found), a
    request for another role (bad-request)."""
    room = f"voice@{MUC}"
    a = open_room(server, room)
    a2 = login(server, "alice", "a2")
    b = login(server, "bob", "b")
    c = login(server, "carol", "c")
    try:
        join(a2, room, "Alice")
        self_presence(a2, room)
        r = configure(a, room, {"muc#roomconfig_moderatedroom": "1"})
        assert r.get("type") == "result", dump(r)
        join(b, room, "Bob")
        assert item(self_presence(b, room)).get("role") == "visitor"
        join(c, room, "Carol")
        assert item(self_presence(c, room)).get("role") == "visitor"
        # Not in the room: not-acceptable; another role: bad-request.
        outsider = login(server, "bob", "outside")
        outsider.send(f"<message to='{room}' id='o1'>{voice_form({'muc#role': 'participant'})}</message>")
        err = outsider.wait_for(lambda e: e.tag == MESSAGE and e.get("id") == "o1", 10.0)
        assert error_condition(err) == ("not-acceptable", "modify"), dump(err)
        outsider.close()
        c.send(f"<message to='{room}' id='r0'>{voice_form({'muc#role': 'moderator'})}</message>")
        err = c.wait_for(lambda e: e.tag == MESSAGE and e.get("id") == "r0", 10.0)
        assert error_condition(err) == ("bad-request", "modify"), dump(err)
        # carol (the other shard) asks: both of alice's sessions get the approval form.
        c.send(f"<message to='{room}' id='r1'>{voice_form({'muc#role': 'participant'})}</message>")
        # Asked again at once: not forwarded a second time (one per 30 s).
        c.send(f"<message to='{room}' id='r1b'>{voice_form({'muc#role': 'participant'})}</message>")
        for s in (a, a2):
            m = s.wait_for(lambda e: e.tag == MESSAGE and e.find(f"{{{NS_DATA}}}x") is not None, 10.0)
            assert m.get("from") == room and m.get("to") == s.jid, dump(m)
            x = m.find(f"{{{NS_DATA}}}x")
            assert x.get("type") == "form" and x.findtext(f"{{{NS_DATA}}}title") == "Voice request"
            f = form_fields(x)
            assert [v.text for v in f["FORM_TYPE"]] == [NS_REQUEST] and f["FORM_TYPE"].get("type") == "hidden"
            assert f["muc#role"].findtext(f"{{{NS_DATA}}}value") == "participant"
            assert f["muc#jid"].findtext(f"{{{NS_DATA}}}value") == "carol@localhost/c"
            assert f["muc#roomnick"].findtext(f"{{{NS_DATA}}}value") == "Carol"
            assert f["muc#request_allow"].get("type") == "boolean"
            assert f["muc#request_allow"].findtext(f"{{{NS_DATA}}}value") == "false"
            assert f["muc#request_allow"].get("label") == "Grant voice to this person?"
        approval = {"muc#role": "participant", "muc#jid": "carol@localhost/c",
                    "muc#roomnick": "Carol"}
        # bob is no moderator: forbidden.
        b.send(f"<message to='{room}' id='b1'>"
               f"{voice_form({**approval, 'muc#request_allow': 'true'})}</message>")
        err = b.wait_for(lambda e: e.tag == MESSAGE and e.get("id") == "b1", 10.0)
        assert error_condition(err) == ("forbidden", "auth"), dump(err)
        # Denied, then a nickname not in the room: carol stays a visitor.
        a.send(f"<message to='{room}' id='d1'>"
               f"{voice_form({**approval, 'muc#request_allow': 'false'})}</message>")
        a.send(f"<message to='{room}' id='d2'>"
               f"{voice_form({**approval, 'muc#roomnick': 'Nobody', 'muc#request_allow': '1'})}"
               "</message>")
        err = a.wait_for(lambda e: e.tag == MESSAGE and e.get("id") == "d2", 10.0)
        assert error_condition(err) == ("item-not-found", "cancel"), dump(err)
        groupchat(c, room, "still quiet?", "q1")
        err = c.wait_for(lambda e: e.tag == MESSAGE and e.get("id") == "q1", 10.0)
        assert error_condition(err) == ("forbidden", "auth"), dump(err)
        # Approved: carol is a participant, everyone is told, and she speaks.
        a.send(f"<message to='{room}' id='ok'>"
               f"{voice_form({**approval, 'muc#request_allow': 'true'})}</message>")
        for s in (a, b, c):
            p = s.wait_for(lambda e: e.tag == PRESENCE and e.get("from") == f"{room}/Carol" and
                           item(e) is not None and item(e).get("role") == "participant", 10.0)
            assert p.get("type") is None, dump(p)
        groupchat(c, room, "thank you", "q2")
        got_groupchat(b, room, "Carol", "thank you")
        got_groupchat(a, room, "Carol", "thank you")
        assert a.raw.count(b"<title>Voice request</title>") == 1, a.raw
        # A participant asking again: not-allowed.
        c.send(f"<message to='{room}' id='r2'>{voice_form({'muc#role': 'participant'})}</message>")
        err = c.wait_for(lambda e: e.tag == MESSAGE and e.get("id") == "r2", 10.0)
        assert error_condition(err) == ("not-allowed", "cancel"), dump(err)
    finally:
        for s in (a, a2, b, c):
            s.close()


def configure(c, room, fields, iq_id="cfg"):
    """Submit the room configuration form with fields {var: value}."""
    xs = "".join(f"<field var='{k}'><value>{v}</value></field>" for k, v in fields.items())
    c.send(f"<iq type='set' id='{iq_id}' to='{room}'><query xmlns='{NS_MUC_OWNER}'>"
           f"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
           f"<value>http://jabber.org/protocol/muc#roomconfig</value></field>{xs}</x></query></iq>")
    return c.wait_for(lambda e: e.tag == IQ and e.get("id") == iq_id, 10.0)


def admin(c, room, items, iq_id):
    c.send(f"<iq type='set' id='{iq_id}' to='{room}'><query xmlns='{NS_MUC}#admin'>{items}"
           "</query></iq>")
    return c.wait_for(lambda e: e.tag == IQ and e.get("id") == iq_id, 10.0)


def features(c, room, iq_id):
    c.send(f"<iq type='get' id='{iq_id}' to='{room}'><query "
           "xmlns='http://jabber.org/protocol/disco#info'/></iq>")
    r = c.wait_for(lambda e: e.tag == IQ and e.get("id") == iq_id, 10.0)
    return {f.get("var") for f in r.iter("{http://jabber.org/protocol/disco#info}feature")}


@with_muc
def test_configuration_form_and_its_effects(server):
    """The owner's form (§10.2): members-only rooms refuse others (registration-required),
    password rooms want the password (not-authorized), moderated rooms make newcomers
    visitors (forbidden to speak until given voice), anyone-sees-JIDs rooms say 100 and
    show real JIDs, every change is announced (104, 172), and disco#info follows."""
    room = f"config@{MUC}"
    a = open_room(server, room)
    b = login(server, "bob", "b")
    c = login(server, "carol", "c")
    try:
        a.send(f"<iq type='get' id='f1' to='{room}'><query xmlns='{NS_MUC_OWNER}'/></iq>")
        form = a.wait_for(lambda e: e.tag == IQ and e.get("id") == "f1", 10.0)
        assert form.get("type") == "result", dump(form)
        assert "muc#roomconfig_membersonly" in {f.get("var") for f in form.iter("{jabber:x:data}field")}
        # Non-owners may not (§10.2).
        b.send(f"<iq type='get' id='f2' to='{room}'><query xmlns='{NS_MUC_OWNER}'/></iq>")
        err = b.wait_for(lambda e: e.tag == IQ and e.get("id") == "f2", 10.0)
        assert error_condition(err) == ("forbidden", "auth"), dump(err)
        # Password.
        r = configure(a, room, {"muc#roomconfig_passwordprotectedroom": "1",
                                "muc#roomconfig_roomsecret": "s3same"})
        assert r.get("type") == "result", dump(r)
        n = a.wait_for(lambda e: e.tag == MESSAGE and 104 in codes(e), 10.0)
        assert n.get("from") == room
        assert "muc_passwordprotected" in features(a, room, "d1")
        join(b, room, "Bob")
        err = b.wait_for(lambda e: e.tag == PRESENCE and e.get("type") == "error", 10.0)
        assert error_condition(err) == ("not-authorized", "auth"), dump(err)
        b.send(f"<presence to='{room}/Bob'><x xmlns='{NS_MUC}'><password>s3same</password></x></presence>")
        self_presence(b, room)
        # Moderated: a newcomer without affiliation is a visitor and may not speak.
        configure(a, room, {"muc#roomconfig_passwordprotectedroom": "0",
                            "muc#roomconfig_moderatedroom": "1"}, "cfg2")
        join(c, room, "Carol")
        me = self_presence(c, room)
        assert item(me).get("role") == "visitor", dump(me)
        groupchat(c, room, "may I?", "v1")
        err = c.wait_for(lambda e: e.tag == MESSAGE and e.get("id") == "v1", 10.0)
        assert error_condition(err) == ("forbidden", "auth"), dump(err)
        r = admin(a, room, "<item nick='Carol' role='participant'/>", "voice")
        assert r.get("type") == "result", dump(r)
        p = c.wait_for(lambda e: e.tag == PRESENCE and e.get("from") == f"{room}/Carol", 10.0)
        assert item(p).get("role") == "participant", dump(p)
        groupchat(c, room, "thanks", "v2")
        got_groupchat(a, room, "Carol", "thanks")
        # Everyone sees real JIDs now (172), and a newcomer is told so (100).
        configure(a, room, {"muc#roomconfig_whois": "anyone"}, "cfg3")
        n = c.wait_for(lambda e: e.tag == MESSAGE and 172 in codes(e), 10.0)
        # Members-only: those without affiliation leave (322); others get registration-required.
        configure(a, room, {"muc#roomconfig_membersonly": "1"}, "cfg4")
        out = c.wait_for(lambda e: e.tag == PRESENCE and e.get("type") == "unavailable" and
                         e.get("from") == f"{room}/Carol", 10.0)
        assert 322 in codes(out), dump(out)
        join(c, room, "Carol")
        err = c.wait_for(lambda e: e.tag == PRESENCE and e.get("type") == "error", 10.0)
        assert error_condition(err) == ("registration-required", "auth"), dump(err)
        r = admin(a, room, "<item jid='carol@localhost' affiliation='member'/>", "mem")
        assert r.get("type") == "result", dump(r)
        join(c, room, "Carol")
        me = self_presence(c, room)
        assert 100 in codes(me) and item(me).get("affiliation") == "member", dump(me)
        assert {"muc_membersonly", "muc_moderated", "muc_nonanonymous"} <= features(a, room, "d2")
    finally:
        a.close()
        b.close()
        c.close()


@with_muc
def test_kick_ban_affiliations_and_nick_change(server):
    room = f"rules@{MUC}"
    a = open_room(server, room)
    b = login(server, "bob", "b")
    c = login(server, "carol", "c")
    try:
        for cl, nick in ((b, "Bob"), (c, "Carol")):
            join(cl, room, nick)
            self_presence(cl, room)
        # §7.6: a new nickname: 303 with the new nick, then presence under it.
        c.send(f"<presence to='{room}/Caroline'/>")
        gone = a.wait_for(lambda e: e.tag == PRESENCE and e.get("from") == f"{room}/Carol" and
                          e.get("type") == "unavailable", 10.0)
        assert 303 in codes(gone), dump(gone)
        assert item(gone).get("nick") == "Caroline"
        a.wait_for(lambda e: e.tag == PRESENCE and e.get("from") == f"{room}/Caroline", 10.0)
        c.wait_for(lambda e: e.tag == PRESENCE and e.get("from") == f"{room}/Caroline" and
                   110 in codes(e), 10.0)
        b.send(f"<presence to='{room}/Caroline'/>")      # taken
        err = b.wait_for(lambda e: e.tag == PRESENCE and e.get("type") == "error", 10.0)
        assert error_condition(err) == ("conflict", "cancel"), dump(err)
        # A participant may not kick (§8.2).
        r = admin(b, room, "<item nick='Caroline' role='none'/>", "k0")
        assert error_condition(r) == ("forbidden", "auth"), dump(r)
        # The moderator kicks: 307 to everyone, the kicked one included.
        r = admin(a, room, "<item nick='Caroline' role='none'><reason>out</reason></item>", "k1")
        assert r.get("type") == "result", dump(r)
        k = c.wait_for(lambda e: e.tag == PRESENCE and e.get("type") == "unavailable", 10.0)
        assert {307, 110} <= codes(k), dump(k)
        kicked = k.find(f"{{{NS_MUC}#user}}x/{{{NS_MUC}#user}}item")
        assert kicked.find(f"{{{NS_MUC}#user}}actor").get("nick") == "Alice", dump(k)  # who, why
        assert kicked.find(f"{{{NS_MUC}#user}}reason").text == "out", dump(k)
        k = b.wait_for(lambda e: e.tag == PRESENCE and e.get("from") == f"{room}/Caroline" and
                       e.get("type") == "unavailable", 10.0)
        assert 307 in codes(k)
        assert k.find(f".//{{{NS_MUC}#user}}reason").text == "out", dump(k)
        # Ban (§9.1): 301, and no way back in (forbidden).
        r = admin(a, room, "<item jid='bob@localhost' affiliation='outcast'><reason>spam &amp; more"
                  "</reason></item>", "b1")
        assert r.get("type") == "result", dump(r)
        k = b.wait_for(lambda e: e.tag == PRESENCE and e.get("type") == "unavailable", 10.0)
        assert 301 in codes(k), dump(k)
        assert k.find(f".//{{{NS_MUC}#user}}reason").text == "spam & more", dump(k)
        join(b, room, "Bob")
        err = b.wait_for(lambda e: e.tag == PRESENCE and e.get("type") == "error", 10.0)
        assert error_condition(err) == ("forbidden", "auth"), dump(err)
        a.send(f"<iq type='get' id='l1' to='{room}'><query xmlns='{NS_MUC}#admin'>"
               "<item affiliation='outcast'/></query></iq>")
        lst = a.wait_for(lambda e: e.tag == IQ and e.get("id") == "l1", 10.0)
        assert [i.get("jid") for i in lst.iter(f"{{{NS_MUC}#admin}}item")] == ["bob@localhost"]
        # The last owner stays (§10.5).
        r = admin(a, room, "<item jid='alice@localhost' affiliation='admin'/>", "o1")
        assert error_condition(r) == ("conflict", "cancel"), dump(r)
    finally:
        a.close()
        b.close()
        c.close()


@with_muc
def test_persistent_room_survives_a_restart(server):
    """A persistent room stays when empty and comes back after a crash of the process
    (kill -9): its configuration, affiliations and subject were stored (§10.1.3)."""
    room = f"keep@{MUC}"
    a = open_room(server, room)
    try:
        r = configure(a, room, {"muc#roomconfig_persistentroom": "1",
                                "muc#roomconfig_roomname": "Kept",
                                "muc#roomconfig_membersonly": "1"})
        assert r.get("type") == "result", dump(r)
        admin(a, room, "<item jid='bob@localhost' affiliation='member'/>", "m1")
        a.send(f"<message to='{room}' type='groupchat'><subject>still here</subject></message>")
        a.wait_for(lambda e: e.tag == MESSAGE and e.findtext(SUBJECT) == "still here", 10.0)
        a.send(f"<presence to='{room}/Alice' type='unavailable'/>")
        a.wait_for(lambda e: e.tag == PRESENCE and e.get("type") == "unavailable", 10.0)
        # Empty but persistent: still listed.
        a.send(f"<iq type='get' id='ri' to='{MUC}'><query "
               "xmlns='http://jabber.org/protocol/disco#items'/></iq>")
        lst = a.wait_for(lambda e: e.tag == IQ and e.get("id") == "ri", 10.0)
        assert room in [i.get("jid") for i in lst.iter("{http://jabber.org/protocol/disco#items}item")]
    finally:
        a.close()
    server.crash_and_restart()
    b = login(server, "bob", "b")
    c = login(server, "carol", "c")
    try:
        join(c, room, "Carol")      # members-only survived
        err = c.wait_for(lambda e: e.tag == PRESENCE and e.get("type") == "error", 10.0)
        assert error_condition(err) == ("registration-required", "auth"), dump(err)
        join(b, room, "Bob")        # so did bob's membership
        me = self_presence(b, room)
        assert codes(me) == {110} and item(me).get("affiliation") == "member", dump(me)
        s = b.wait_for(lambda e: e.tag == MESSAGE and e.find(SUBJECT) is not None, 10.0)
        assert s.findtext(SUBJECT) == "still here"
        assert "muc_persistent" in features(b, room, "d1")
    finally:
        b.close()
        c.close()


NS_OID = "urn:xmpp:occupant-id:0"


@with_muc
def test_invitations_and_occupant_ids(server):
    """§7.8.2: an invitation through the room reaches the invitee from the room, naming
    the inviter; a decline goes back to the inviter.  XEP-0421: every presence and message
    from an occupant carries the room's occupant id for the user (the same for every
    session and message, different per user), and one a client put there is replaced."""
    room = f"invites@{MUC}"
    a = open_room(server, room)
    b = login(server, "bob", "b")
    c = login(server, "carol", "c")
    try:
        a.send(f"<message to='{room}'><x xmlns='{NS_MUC_USER}'><invite to='carol@localhost'>"
               "<reason>join us</reason></invite></x></message>")
        inv = c.wait_for(lambda e: e.tag == MESSAGE and e.find(f"{{{NS_MUC_USER}}}x") is not None, 10.0)
        i = inv.find(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}invite")
        assert inv.get("from") == room and i.get("from") == "alice@localhost/a", dump(inv)
        assert i.findtext(f"{{{NS_MUC_USER}}}reason") == "join us"
        c.send(f"<message to='{room}'><x xmlns='{NS_MUC_USER}'><decline to='alice@localhost/a'>"
               "<reason>busy</reason></decline></x></message>")
        d = a.wait_for(lambda e: e.tag == MESSAGE and e.find(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}decline")
                       is not None, 10.0)
        assert d.find(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}decline").get("from") == "carol@localhost"
        # Occupant ids.
        join(b, room, "Bob")
        bp = a.wait_for(lambda e: e.tag == PRESENCE and e.get("from") == f"{room}/Bob", 10.0)
        bid = bp.find(f"{{{NS_OID}}}occupant-id").get("id")
        b.send(f"<message to='{room}' type='groupchat'><body>mine</body>"
               f"<occupant-id xmlns='{NS_OID}' id='forged'/></message>")
        m = got_groupchat(a, room, "Bob", "mine")
        ids = [e.get("id") for e in m.iter(f"{{{NS_OID}}}occupant-id")]
        assert ids == [bid] and bid != "forged", dump(m)
        groupchat(a, room, "and mine", "am")
        m = got_groupchat(b, room, "Alice", "and mine")
        assert m.find(f"{{{NS_OID}}}occupant-id").get("id") not in (None, bid), dump(m)
        assert NS_OID in features(a, room, "f1")
    finally:
        a.close()
        b.close()
        c.close()


NS_MAM = "urn:xmpp:mam:2"


@with_muc
def test_room_archive(server):
    """XEP-0313 on a room: its messages carry the room's stanza-id (XEP-0359), and a query to
    the room's JID pages through them (RSM), each result the message as the room sent it."""
    room = f"archive@{MUC}"
    a = open_room(server, room)
    c = login(server, "carol", "c")
    try:
        ids = []
        for i in range(5):
            groupchat(a, room, f"kept {i}", f"k{i}")
            m = got_groupchat(a, room, "Alice", f"kept {i}")
            sid = m.find("{urn:xmpp:sid:0}stanza-id")
            assert sid is not None and sid.get("by") == room, dump(m)
            ids.append(sid.get("id"))
        # Carol was never in the room: a public open room lets her read it.
        c.send(f"<iq type='set' id='q1' to='{room}'><query xmlns='{NS_MAM}' queryid='x'>"
               "<set xmlns='http://jabber.org/protocol/rsm'><max>3</max></set></query></iq>")
        res = []
        while True:
            e = c.wait_for(lambda e: (e.tag == MESSAGE and e.find(f"{{{NS_MAM}}}result") is not None) or
                           (e.tag == IQ and e.get("id") == "q1"), 15.0)
            if e.tag == IQ:
                fin = e
                break
            res.append(e)
        assert fin.get("type") == "result", dump(fin)
        assert [r.find(f"{{{NS_MAM}}}result").get("id") for r in res] == ids[:3]
        fwd = res[0].find(f"{{{NS_MAM}}}result/{{urn:xmpp:forward:0}}forwarded/{{{NS_CLIENT}}}message")
        assert fwd.get("from") == f"{room}/Alice" and fwd.findtext(BODY) == "kept 0", dump(res[0])
        assert res[0].get("from") == room
        f = fin.find(f"{{{NS_MAM}}}fin")
        assert f.get("complete") == "false" and f.findtext("{http://jabber.org/protocol/rsm}set/"
                                                           "{http://jabber.org/protocol/rsm}count") == "5"
        # Members-only: an outsider may not read it.
        configure(a, room, {"muc#roomconfig_membersonly": "1"})
        c.send(f"<iq type='set' id='q2' to='{room}'><query xmlns='{NS_MAM}'/></iq>")
        err = c.wait_for(lambda e: e.tag == IQ and e.get("id") == "q2", 10.0)
        assert error_condition(err) == ("forbidden", "auth"), dump(err)
    finally:
        a.close()
        c.close()


NS_BLOCKING = "urn:xmpp:blocking"


def blocking(c, verb, jid, iid):
    """XEP-0191 §3.3 / §3.4: block or unblock jid; waits for the result."""
    c.send(f"<iq type='set' id='{iid}'><{verb} xmlns='{NS_BLOCKING}'><item jid='{jid}'/></{verb}></iq>")
    r = c.wait_for(lambda e: e.tag == IQ and e.get("id") == iid, 10.0)
    assert r.get("type") == "result", dump(r)


def none_from_room(c, bodies, marker):
    """None of `bodies` reached c before `marker` (a chat message alice sent after the
    groupchat messages: the same session, so the room's copies went first)."""
    c.wait_for(lambda e: e.tag == MESSAGE and e.findtext(BODY) == marker, 10.0)
    got = [e for e in c.seen if e.tag == MESSAGE and e.findtext(BODY) in bodies]
    assert not got, dump(got[0])


@with_muc
def test_blocked_room_or_occupant_sends_nothing(server):
    """XEP-0191 §3.3: a user who blocked a room gets none of its groupchat messages, one who
    blocked an occupant's room JID none of that occupant's, while the other occupants get
    them.  The blocked copies are dropped without an error (a room takes an error from an
    occupant as its leaving, status 333): the blockers stay in the room, and once unblocked
    they get its messages again without joining anew."""
    room = f"blocks@{MUC}"
    a = open_room(server, room)
    b = login(server, "bob", "b")
    c = login(server, "carol", "c")
    d = login(server, "alice", "w")     # a watcher nobody blocked
    try:
        for cl, nick in ((b, "Bob"), (c, "Carol"), (d, "Watcher")):
            join(cl, room, nick)
            self_presence(cl, room)
        blocking(b, "block", room, "bb")
        blocking(c, "block", f"{room}/Alice", "cb")
        for i in range(3):
            groupchat(a, room, f"while blocked {i}", f"w{i}")
            got_groupchat(a, room, "Alice", f"while blocked {i}")   # the fan-out took place
            got_groupchat(d, room, "Alice", f"while blocked {i}")
        a.send("<message to='bob@localhost/b' type='chat'><body>mark b</body></message>")
        a.send("<message to='carol@localhost/c' type='chat'><body>mark c</body></message>")
        sent = [f"while blocked {i}" for i in range(3)]
        none_from_room(b, sent, "mark b")
        none_from_room(c, sent, "mark c")
        blocking(b, "unblock", room, "bu")
        blocking(c, "unblock", f"{room}/Alice", "cu")
        groupchat(a, room, "after unblock", "w9")
        got_groupchat(b, room, "Alice", "after unblock")
        got_groupchat(c, room, "Alice", "after unblock")
        got_groupchat(d, room, "Alice", "after unblock")
    finally:
        for cl in (a, b, c, d):
            cl.close()
