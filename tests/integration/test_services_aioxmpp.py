"""The issue-14 services driven by a second, independent client library: aioxmpp (Debian
python3-aioxmpp 0.13.3), through its own services, asserting on what the library hands the
application (signals, return values, the exceptions it raises), never on log lines.

- aioxmpp.MUCClient (XEP-0045): a room created by joining, then accepted as an instant room
  or configured through the room configuration form; history on join, a nickname conflict,
  private messages through the room (aioxmpp.im.p2p), kick and ban as the occupants see
  them, a persistent room kept across a kill -9 with its configuration and membership, the
  room's archive (XEP-0313: aioxmpp 0.13 has no MAM client, so the query is an IQ with the
  XSOs defined below, and its results are read through aioxmpp's message dispatcher).
- aioxmpp.PubSubClient (XEP-0060) on `services.pubsub.domain`: create, subscribe, publish,
  notifications (on_item_published) to another client, items, retract, the whitelist access
  model refusing a stranger (closed-node), delete.
- aioxmpp.AdHocClient (XEP-0050, XEP-0133): the command list, ping, an administration
  command refused to a non-admin (forbidden) and run by an admin (`admins:`), a two-stage
  one (add-user) after which the new account logs in.

The raw-XML and slixmpp tests of the same services: test_muc.py, test_pubsub_service.py,
test_adhoc.py."""
import asyncio

import aioxmpp
import aioxmpp.adhoc
import aioxmpp.dispatcher
import aioxmpp.errors
import aioxmpp.forms
import aioxmpp.im.p2p
import aioxmpp.misc
import aioxmpp.muc
import aioxmpp.pubsub
import aioxmpp.rsm.xso
import aioxmpp.xso as xso
import pytest

from aioclient import connect, disconnect, make_client, wait_until
from conftest import USERS
from slixclient import run

MUC = "conference.localhost"
PS = "pubsub.localhost"
NS_MAM = "urn:xmpp:mam:2"
NS_TEST = "urn:xedge:test:aioxmpp"
NS_ADMIN = "http://jabber.org/protocol/admin"
ADMIN_NODES = {NS_ADMIN + "#" + n for n in (
    "add-user", "delete-user", "change-user-password", "get-online-users-list",
    "get-online-users-num", "announce")}
SERVICES = (f"services:\n  muc:\n    domain: {MUC}\n    history: 5\n"
            f"  pubsub:\n    domain: {PS}\n")
with_services = pytest.mark.parametrize("server", [{"extra_edge_yaml": SERVICES}], indirect=True)
# One session server owns every account: the online-users commands count them all
# (as test_adhoc.py's ONE_SHARD).
with_admin = pytest.mark.parametrize(
    "server", [{"shards": 1, "extra_edge_yaml": "admins:\n  - alice@localhost\n"}], indirect=True)
# aioxmpp 0.13's own AdHocClient calls its deprecated StanzaStream API: not ours to fix.
pytestmark = [pytest.mark.filterwarnings("ignore:send_iq_and_wait_for_reply is deprecated"),
              pytest.mark.filterwarnings("ignore:send\\(\\) on StanzaStream is deprecated")]

Cancel, Auth = aioxmpp.errors.XMPPCancelError, aioxmpp.errors.XMPPAuthError
Cond = aioxmpp.ErrorCondition
LeaveMode = aioxmpp.muc.LeaveMode
JID = aioxmpp.JID.fromstr


# ---- XSOs aioxmpp 0.13 lacks -----------------------------------------------------------

@aioxmpp.pubsub.xso.as_payload_class
class Entry(xso.XSO):
    """The test's PubSub payload: <entry xmlns='urn:xedge:test:aioxmpp'>text</entry>."""
    TAG = (NS_TEST, "entry")
    text = xso.Text(default="")

    def __init__(self, text=""):
        super().__init__()
        self.text = text


@aioxmpp.IQ.as_payload_class
class MamQuery(xso.XSO):
    """XEP-0313 §4: <query queryid=...> with an optional RSM <set/>."""
    TAG = (NS_MAM, "query")
    queryid = xso.Attr("queryid", default=None)
    form = xso.Child([aioxmpp.forms.Data])
    rsm = xso.Child([aioxmpp.rsm.xso.ResultSetMetadata])


@aioxmpp.IQ.as_payload_class
class MamFin(xso.XSO):
    """XEP-0313 §4.4: the iq result's <fin complete=...> with the RSM <set/>."""
    TAG = (NS_MAM, "fin")
    complete = xso.Attr("complete", type_=xso.Bool(), default=False)
    rsm = xso.Child([aioxmpp.rsm.xso.ResultSetMetadata])


class MamResult(xso.XSO):
    """XEP-0313 §4.2: one archived message, <result id=... queryid=...><forwarded/>."""
    TAG = (NS_MAM, "result")
    queryid = xso.Attr("queryid", default=None)
    id_ = xso.Attr("id")
    forwarded = xso.Child([aioxmpp.misc.Forwarded])


aioxmpp.Message.xep0313_result = xso.Child([MamResult])


# ---- one aioxmpp session ------------------------------------------------------------

class User:
    """An aioxmpp client of one account with the services these tests drive, available
    (initial presence) once started, as a chat client is before it joins rooms."""

    def __init__(self, server, user, resource, password=None):
        self.client = make_client(f"{user}@{server.domain}/{resource}",
                                  password or USERS[user], server.c2s_port)
        self.muc = self.client.summon(aioxmpp.MUCClient)
        self.p2p = self.client.summon(aioxmpp.im.p2p.Service)
        self.pubsub = self.client.summon(aioxmpp.PubSubClient)
        self.adhoc = self.client.summon(aioxmpp.AdHocClient)
        self.messages = self.client.summon(aioxmpp.dispatcher.SimpleMessageDispatcher)
        self.presence = self.client.summon(aioxmpp.PresenceServer)
        self.chats = []         # p2p conversations the library opened for incoming messages
        self.pms = []           # (conversation JID, body) of each incoming one-to-one message
        self.published = []     # (service, node, item id, payload text) per notification
        self.retracted = []     # (service, node, item id)
        self.deleted = []       # (service, node)
        self.p2p.on_spontaneous_conversation.connect(self._on_chat)
        self.pubsub.on_item_published.connect(
            lambda jid, node, item, **kw: self.published.append(
                (str(jid), node, item.id_, getattr(item.registered_payload, "text", None))))
        self.pubsub.on_item_retracted.connect(
            lambda jid, node, id_, **kw: self.retracted.append((str(jid), node, id_)))
        self.pubsub.on_node_deleted.connect(
            lambda jid, node, **kw: self.deleted.append((str(jid), node)))
        self._cm = None

    def chat_with(self, jid):
        """The one-to-one conversation with jid (a room occupant's JID for a private
        message), its incoming messages recorded in self.pms."""
        conv = self.p2p.get_conversation(JID(jid))
        self._on_chat(conv)
        return conv

    def _on_chat(self, conv):
        self.chats.append(conv)
        conv.on_message.connect(
            lambda msg, member, source, **kw: None if member is conv.me else
            self.pms.append((str(conv.jid), msg.body.any())))

    async def start(self):
        self._cm = await connect(self.client)
        self.presence.set_presence(aioxmpp.PresenceState(True))
        return self

    async def stop(self):
        if self._cm is not None:
            cm, self._cm = self._cm, None
            await disconnect(cm)

    async def join(self, room, nick, history=None):
        """Join room (a str) as nick; returns (Room, RoomLog) once the room accepted us.
        The log is attached before the first yield: MUCClient.join emits nothing before,
        so no event is lost."""
        r, fut = self.muc.join(JID(room), nick, history=history, autorejoin=False)
        log = RoomLog(r)
        await asyncio.wait_for(fut, 15)
        return r, log

    async def join_refused(self, room, nick):
        """Join room as nick and return the exception the library raises for the refusal."""
        _, fut = self.muc.join(JID(room), nick, autorejoin=False)
        with pytest.raises(aioxmpp.errors.XMPPError) as ei:
            await asyncio.wait_for(fut, 15)
        return ei.value

    async def room_archive(self, room, max_=None, queryid="q1"):
        """XEP-0313 query to the room's JID: ([(archive id, sender nick, body)], MamFin).
        The results are the messages from the room with our queryid, gathered by aioxmpp's
        message dispatcher while the iq is pending (they come before its result)."""
        got = []

        def on_message(msg):
            r = msg.xep0313_result
            if r is None or r.queryid != queryid:
                return
            fwd = r.forwarded.stanza
            got.append((r.id_, fwd.from_.resource, fwd.body.any() if fwd.body else None))

        q = MamQuery()
        q.queryid = queryid
        if max_ is not None:
            q.rsm = aioxmpp.rsm.xso.ResultSetMetadata()
            q.rsm.max_ = max_
        with self.messages.handler_context(aioxmpp.MessageType.NORMAL, JID(room), on_message):
            fin = await asyncio.wait_for(self.client.send(
                aioxmpp.IQ(type_=aioxmpp.IQType.SET, to=JID(room), payload=q)), 15)
        return got, fin


class RoomLog:
    """What aioxmpp's Room hands its application, in order: ("enter", status codes),
    ("message", sender nick, body, XEP-0203 delay's from or None), ("topic", nick, text),
    ("join", nick), ("leave", nick, LeaveMode, reason), ("exit", LeaveMode, reason, status
    codes)."""

    def __init__(self, room):
        self.room = room
        self.events = []
        self.stanza_ids = {}    # body -> the room's XEP-0359 stanza-id on that message
        ev = self.events.append
        room.on_muc_enter.connect(lambda presence, occupant, muc_status_codes=(), **kw:
                                  ev(("enter", {int(c) for c in muc_status_codes})))
        room.on_message.connect(self._on_message)
        room.on_topic_changed.connect(lambda member, new_topic, muc_nick=None, **kw:
                                      ev(("topic", muc_nick, new_topic.any())))
        room.on_join.connect(lambda member, **kw: ev(("join", member.nick)))
        room.on_leave.connect(lambda member, muc_leave_mode=None, muc_reason=None, **kw:
                              ev(("leave", member.nick, muc_leave_mode, muc_reason)))
        room.on_exit.connect(lambda muc_leave_mode=None, muc_reason=None, muc_status_codes=(),
                             **kw: ev(("exit", muc_leave_mode, muc_reason,
                                       {int(c) for c in muc_status_codes})))

    def _on_message(self, msg, member, source, **kw):
        body = msg.body.any()
        for sid in msg.xep0359_stanza_ids:
            if sid.by == self.room.jid:
                self.stanza_ids[body] = sid.id_
        self.events.append(("message", member.nick if member is not None else None, body,
                            str(msg.xep0203_delay[0].from_) if msg.xep0203_delay else None))

    def of(self, kind):
        return [e[1:] for e in self.events if e[0] == kind]

    async def wait(self, what, pred, timeout=15.0):
        """The first event (the whole tuple, kind first) pred accepts."""
        def match():
            return [e for e in self.events if pred(e)][:1]
        try:
            return (await wait_until(f"{self.room.jid}: {what}", match, timeout))[0]
        except AssertionError as e:
            raise AssertionError(f"{e}; events: {self.events}") from None


def members(room):
    return sorted(m.nick for m in room.members)


async def instant_room(user, room, nick):
    """user creates room by joining it and accepts the instant room (§10.1.2: an empty
    submitted form through MUCClient.set_room_config)."""
    r, log = await user.join(room, nick)
    assert log.of("enter") == [({110, 201},)], log.events    # created (201), self (110)
    assert (r.me.affiliation, r.me.role) == ("owner", "moderator")
    await user.muc.set_room_config(JID(room), instant_form())
    return r, log


async def stop_all(*users):
    for u in users:
        if u is not None:
            await u.stop()


def text(body, type_):
    msg = aioxmpp.Message(type_=type_)
    msg.body[None] = body
    return msg


def groupchat(body):
    return text(body, aioxmpp.MessageType.GROUPCHAT)


def chat(body):
    return text(body, aioxmpp.MessageType.CHAT)


def instant_form():
    """An empty submitted form: the instant room (§10.1.2)."""
    return aioxmpp.forms.Data(aioxmpp.forms.DataType.SUBMIT)


# ---- group chat ---------------------------------------------------------------------

@with_services
def test_muc_create_history_conflict_private_messages(server):
    """alice creates a room by joining it (201, owner, moderator); it stays locked (bob's
    join fails with item-not-found) until she accepts the instant room.  After three
    messages bob joins asking for two of history: his library hands him the last two, from
    Alice, delayed by the room, then the subject.  carol asking for Bob's nickname gets
    the library's conflict error.  Private messages go both ways through the room, each
    side's library opening a one-to-one conversation with the other's occupant JID."""
    room = f"aio-talk@{MUC}"

    async def main():
        a = b = c = None
        try:
            a = await User(server, "alice", "aio").start()
            b = await User(server, "bob", "aio").start()
            c = await User(server, "carol", "aio").start()
            ra, la = await a.join(room, "Alice")
            assert la.of("enter") == [({110, 201},)], la.events
            assert (ra.me.affiliation, ra.me.role) == ("owner", "moderator")
            err = await b.join_refused(room, "Bob")
            assert isinstance(err, Cancel) and err.condition == Cond.ITEM_NOT_FOUND, repr(err)
            await a.muc.set_room_config(JID(room), instant_form())

            for i in range(3):
                ra.send_message(groupchat(f"hello {i}"))
            # The room reflects each message to its sender: the library hands them back
            # as alice's own (she sent them untracked).
            await la.wait("alice's third message reflected",
                          lambda e: e[:3] == ("message", "Alice", "hello 2"))
            assert la.of("message") == [("Alice", f"hello {i}", None) for i in range(3)]

            rb, lb = await b.join(room, "Bob", history=aioxmpp.muc.xso.History(maxstanzas=2))
            assert lb.of("enter") == [({110},)], lb.events
            assert (rb.me.affiliation, rb.me.role) == ("none", "participant")
            await lb.wait("the subject after the history", lambda e: e[0] == "topic")
            assert lb.of("message") == [("Alice", "hello 1", room), ("Alice", "hello 2", room)]
            kinds = [e[0] for e in lb.events]
            assert kinds.index("topic") > kinds.index("message") + 1, lb.events   # §7.2.15
            await la.wait("bob's arrival", lambda e: e == ("join", "Bob"))
            assert members(ra) == members(rb) == ["Alice", "Bob"]

            err = await c.join_refused(room, "Bob")
            assert isinstance(err, Cancel) and err.condition == Cond.CONFLICT, repr(err)
            assert members(ra) == ["Alice", "Bob"]

            rb.send_message(groupchat("hi all"))
            await la.wait("bob's message", lambda e: e == ("message", "Bob", "hi all", None))

            a.chat_with(f"{room}/Bob").send_message(chat("psst"))
            await wait_until("bob: alice's private message", lambda: b.pms)
            assert b.pms == [(f"{room}/Alice", "psst")]
            assert [str(conv.jid) for conv in b.chats] == [f"{room}/Alice"]
            b.chats[0].send_message(chat("what?"))
            await wait_until("alice: bob's private answer", lambda: a.pms)
            assert a.pms == [(f"{room}/Bob", "what?")]
            # Private, not groupchat: neither room saw them.
            assert all(e[2] not in ("psst", "what?") for e in la.of("message") + lb.of("message"))
        finally:
            await stop_all(a, b, c)
    run(main(), 120)


@with_services
def test_muc_kick_and_ban(server):
    """A participant may not kick (forbidden).  The moderator kicks carol: carol's library
    ends her room (on_exit, LeaveMode.KICKED, 307 and 110) and bob's sees her leave kicked;
    she may come back.  Then alice bans bob (Room.ban: the moderator knows his real JID):
    his room exits BANNED (301), alice sees him leave banned, the outcast list holds him,
    and his next join fails with forbidden."""
    room = f"aio-rules@{MUC}"

    async def main():
        a = b = c = None
        try:
            a = await User(server, "alice", "aio").start()
            b = await User(server, "bob", "aio").start()
            c = await User(server, "carol", "aio").start()
            ra, la = await instant_room(a, room, "Alice")
            rb, lb = await b.join(room, "Bob")
            rc, lc = await c.join(room, "Carol")
            await wait_until("alice sees bob and carol",
                             lambda: members(ra) == ["Alice", "Bob", "Carol"])

            alice_for_bob = next(m for m in rb.members if m.nick == "Alice")
            with pytest.raises(Auth) as ei:
                await rb.kick(alice_for_bob, "mutiny")
            assert ei.value.condition == Cond.FORBIDDEN

            carol = next(m for m in ra.members if m.nick == "Carol")
            await ra.kick(carol, "spam")
            _, mode, reason, codes = await lc.wait("carol: kicked", lambda e: e[0] == "exit")
            assert mode == LeaveMode.KICKED and {110, 307} <= codes, lc.events
            assert reason == "spam", lc.events                   # §8.2: the reason given
            assert not rc.muc_joined
            await lb.wait("bob: carol kicked",
                          lambda e: e[:3] == ("leave", "Carol", LeaveMode.KICKED))
            await la.wait("alice: carol kicked",
                          lambda e: e[:3] == ("leave", "Carol", LeaveMode.KICKED))

            bob = next(m for m in ra.members if m.nick == "Bob")
            assert bob.direct_jid.bare() == JID(f"bob@{server.domain}")
            await ra.ban(bob, "enough")
            _, mode, reason, codes = await lb.wait("bob: banned", lambda e: e[0] == "exit")
            assert mode == LeaveMode.BANNED and {110, 301} <= codes, lb.events
            assert reason == "enough", lb.events
            await la.wait("alice: bob banned",
                          lambda e: e[:3] == ("leave", "Bob", LeaveMode.BANNED))
            assert members(ra) == ["Alice"]
            assert await a.muc.get_affiliated(JID(room), "outcast") == [JID(f"bob@{server.domain}")]
            err = await b.join_refused(room, "Bob")
            assert isinstance(err, Auth) and err.condition == Cond.FORBIDDEN, repr(err)
            # The kicked one may come back.
            rc, lc = await c.join(room, "Carol")
            assert lc.of("enter") == [({110},)]
        finally:
            await stop_all(a, b, c)
    run(main(), 120)


@with_services
def test_muc_configured_room_survives_a_crash_with_its_archive(server):
    """alice configures her new room through the library's configuration form (persistent,
    named, members-only) and makes bob a member; three messages are archived (the room's
    XEP-0313 archive, queried at its JID, lists them with the stanza-ids the room stamped).
    After a kill -9 the room is back with its configuration (the form reads the same),
    carol is refused (registration-required), bob comes in as a member, and the archive
    pages (RSM) through the same messages; carol may not read it."""
    room = f"aio-keep@{MUC}"
    before = {}

    async def configure_and_talk():
        a = None
        try:
            a = await User(server, "alice", "aio").start()
            ra, la = await a.join(room, "Alice")
            assert la.of("enter") == [({110, 201},)], la.events
            form = aioxmpp.muc.ConfigurationForm.from_xso(await a.muc.get_room_config(JID(room)))
            form.persistentroom.value = True
            form.membersonly.value = True
            form.roomname.value = "Kept by aioxmpp"
            await a.muc.set_room_config(JID(room), form.render_reply())
            await a.muc.set_affiliation(JID(room), JID(f"bob@{server.domain}"), "member")
            for i in range(3):
                ra.send_message(groupchat(f"kept {i}"))
            await la.wait("the third message reflected",
                          lambda e: e[:3] == ("message", "Alice", "kept 2"))
            got, fin = await a.room_archive(room)
            assert [(nick, body) for _, nick, body in got] == \
                [("Alice", f"kept {i}") for i in range(3)]
            assert [i for i, _, _ in got] == [la.stanza_ids[f"kept {i}"] for i in range(3)]
            assert fin.complete is True
            before["ids"] = [i for i, _, _ in got]
            await ra.leave()
            assert (await la.wait("alice out", lambda e: e[0] == "exit"))[1] == LeaveMode.NORMAL
        finally:
            await stop_all(a)
    run(configure_and_talk(), 90)

    server.crash_and_restart()

    async def after_the_crash():
        a = b = c = None
        try:
            a = await User(server, "alice", "aio").start()
            b = await User(server, "bob", "aio").start()
            c = await User(server, "carol", "aio").start()
            form = aioxmpp.muc.ConfigurationForm.from_xso(await a.muc.get_room_config(JID(room)))
            assert (form.persistentroom.value, form.membersonly.value, form.roomname.value) == \
                (True, True, "Kept by aioxmpp")
            assert await a.muc.get_affiliated(JID(room), "member") == [JID(f"bob@{server.domain}")]
            err = await c.join_refused(room, "Carol")
            assert isinstance(err, Auth) and err.condition == Cond.REGISTRATION_REQUIRED, repr(err)
            rb, lb = await b.join(room, "Bob")
            assert lb.of("enter") == [({110},)], lb.events
            assert rb.me.affiliation == "member"
            got, fin = await b.room_archive(room, max_=2)
            assert [(nick, body) for _, nick, body in got] == \
                [("Alice", "kept 0"), ("Alice", "kept 1")]
            assert [i for i, _, _ in got] == before["ids"][:2]
            assert fin.complete is False and fin.rsm.count == 3
            assert fin.rsm.last.value == before["ids"][1]
            with pytest.raises(Auth) as ei:
                await c.room_archive(room)
            assert ei.value.condition == Cond.FORBIDDEN
        finally:
            await stop_all(a, b, c)
    run(after_the_crash(), 90)


# ---- PubSub -------------------------------------------------------------------------

@with_services
def test_pubsub_publish_notify_retract_and_whitelist(server):
    """alice creates a node on the service and publishes; bob, subscribed, gets the item
    with its payload through on_item_published, then its retraction; carol reads the items
    but may not publish (forbidden).  A whitelist node refuses carol's subscription with
    not-allowed and the closed-node condition until alice makes her a member; then she gets
    its notifications.  Deleting a node tells its subscriber (on_node_deleted)."""
    ps = JID(PS)

    async def main():
        a = b = c = None
        try:
            a = await User(server, "alice", "aio").start()
            b = await User(server, "bob", "aio").start()
            c = await User(server, "carol", "aio").start()
            feats = await a.pubsub.get_features(ps)
            F = aioxmpp.pubsub.xso.Feature
            assert {F.CREATE_NODES, F.PUBLISH, F.SUBSCRIBE, F.RETRACT_ITEMS} <= feats, feats
            assert await a.pubsub.create(ps, "aio-news") == "aio-news"
            with pytest.raises(Cancel) as ei:
                await b.pubsub.create(ps, "aio-news")
            assert ei.value.condition == Cond.CONFLICT

            r = await b.pubsub.subscribe(ps, "aio-news")
            assert r.payload.subscription == "subscribed" and r.payload.node == "aio-news"
            assert await a.pubsub.publish(ps, "aio-news", Entry("hello"), id_="e1") == "e1"
            await wait_until("bob: the item", lambda: b.published)
            assert b.published == [(PS, "aio-news", "e1", "hello")]
            assert a.published == c.published == []      # not subscribed
            r = await c.pubsub.get_items(ps, "aio-news")
            assert [(i.id_, i.registered_payload.text) for i in r.payload.items] == \
                [("e1", "hello")]
            with pytest.raises(Auth) as ei:
                await c.pubsub.publish(ps, "aio-news", Entry("mine"))
            assert ei.value.condition == Cond.FORBIDDEN

            await a.pubsub.retract(ps, "aio-news", "e1", notify=True)
            await wait_until("bob: the retraction", lambda: b.retracted)
            assert b.retracted == [(PS, "aio-news", "e1")]
            r = await c.pubsub.get_items(ps, "aio-news")
            assert list(r.payload.items) == []

            # Whitelist (§4.5).
            await a.pubsub.create(ps, "aio-closed")
            form = aioxmpp.pubsub.NodeConfigForm.from_xso(
                await a.pubsub.get_node_config(ps, "aio-closed"))
            form.access_model.value = "whitelist"
            await a.pubsub.set_node_config(ps, form.render_reply(), "aio-closed")
            form = aioxmpp.pubsub.NodeConfigForm.from_xso(
                await a.pubsub.get_node_config(ps, "aio-closed"))
            assert form.access_model.value == "whitelist"
            with pytest.raises(Cancel) as ei:
                await c.pubsub.subscribe(ps, "aio-closed")
            assert ei.value.condition == Cond.NOT_ALLOWED
            assert isinstance(ei.value.application_defined_condition,
                              aioxmpp.pubsub.xso.ClosedNode), ei.value
            await a.pubsub.change_node_affiliations(ps, "aio-closed",
                                                    [(JID(f"carol@{server.domain}"), "member")])
            r = await c.pubsub.subscribe(ps, "aio-closed")
            assert r.payload.subscription == "subscribed"
            await a.pubsub.publish(ps, "aio-closed", Entry("members only"), id_="m1")
            await wait_until("carol: the whitelisted item", lambda: c.published)
            assert c.published == [(PS, "aio-closed", "m1", "members only")]

            await a.pubsub.delete(ps, "aio-news")
            await wait_until("bob: the node deleted", lambda: b.deleted)
            assert b.deleted == [(PS, "aio-news")]
            assert b.published == [(PS, "aio-news", "e1", "hello")]   # nothing of aio-closed
        finally:
            await stop_all(a, b, c)
    run(main(), 120)


# ---- ad-hoc commands ----------------------------------------------------------------

def field_values(form):
    return {f.var: list(f.values) for f in form.fields}


@with_admin
def test_adhoc_commands_for_a_user_and_an_admin(server):
    """AdHocClient on the server's domain: bob (no admin) lists only ping, runs it (Pong),
    and is refused the XEP-0133 commands with forbidden; alice (in `admins:`) lists them,
    counts the online users, and adds an account through the two-stage add-user form,
    with which a new aioxmpp client then logs in."""
    dom = JID(server.domain)
    AH = aioxmpp.adhoc.xso

    async def main():
        a = b = d = None
        try:
            a = await User(server, "alice", "aio").start()
            b = await User(server, "bob", "aio").start()
            assert await b.adhoc.supports_commands(dom)
            assert [i.node for i in await b.adhoc.get_commands(dom)] == ["ping"]
            assert {i.node for i in await a.adhoc.get_commands(dom)} == {"ping", *ADMIN_NODES}

            s = await b.adhoc.execute(dom, "ping")
            assert s.status == AH.CommandStatus.COMPLETED
            assert [(n.type_, n.body) for n in s.response.notes] == [(AH.NoteType.INFO, "Pong")]
            await s.close()

            for node in ("get-online-users-num", "add-user"):
                with pytest.raises(Cancel) as ei:
                    await b.adhoc.execute(dom, f"{NS_ADMIN}#{node}")
                assert ei.value.condition == Cond.FORBIDDEN, node

            async def online():
                s = await a.adhoc.execute(dom, NS_ADMIN + "#get-online-users-num")
                assert s.status == AH.CommandStatus.COMPLETED
                return field_values(s.first_payload)["onlineusersnum"]
            assert await online() == ["2"]

            s = await a.adhoc.execute(dom, NS_ADMIN + "#add-user")
            assert s.status == AH.CommandStatus.EXECUTING
            assert AH.ActionType.COMPLETE in s.allowed_actions
            form = s.first_payload
            assert form.type_ == aioxmpp.forms.DataType.FORM
            assert {"accountjid", "password"} <= set(field_values(form)), field_values(form)
            fill = {"accountjid": f"dave@{server.domain}", "password": "dave-Pw-1",
                    "password-verify": "dave-Pw-1"}
            form.type_ = aioxmpp.forms.DataType.SUBMIT
            for f in form.fields:
                if f.var in fill:
                    f.values[:] = [fill[f.var]]
            await s.proceed(action=AH.ActionType.COMPLETE, payload=form)
            assert s.status == AH.CommandStatus.COMPLETED
            assert [n.type_ for n in s.response.notes] == [AH.NoteType.INFO]

            d = await User(server, "dave", "aio", password="dave-Pw-1").start()
            deadline = asyncio.get_running_loop().time() + 15
            while (n := await online()) != ["3"]:       # his session reaches the count
                assert asyncio.get_running_loop().time() < deadline, f"online users: {n}"
                await asyncio.sleep(0.1)
        finally:
            await stop_all(a, b, d)
    run(main(), 120)
