"""Instant messaging as users drive it, with real clients, against the server under test.

Every test runs twice: on xedge (the `server` fixture, default config) and on
Prosody 0.12 (the reference: it does all of RFC 6121 and the XEPs below).  A test
passing on Prosody shows the test is right; the same test failing on xedge shows
xedge is wrong.  Cases that need a feature xedge does not have yet are marked
strict xfail for the xedge parameter only (XFAIL below), so the suite stays green
now and turns red the moment the feature lands, until the mark is removed.

Clients: slixmpp (its plugins for XEP-0280, 0191, 0054, 0060/0163, 0049, 0092,
0030, 0199; raw stanzas where the test must see the wire, e.g. MAM paging) and
aioxmpp (python3-aioxmpp) as the second, independent library for the
subscription handshake.  Both run on one asyncio loop, bounded by slixclient.run.

Flows: RFC 6121 roster set/push/remove, subscription handshake, presence,
versioning, a pending request to an offline contact; XEP-0280 carbons (and
<private/>); XEP-0191 blocking; XEP-0054 vcard-temp; XEP-0163 PEP with
publish-options and +notify; XEP-0313 MAM with RSM paging and `with`; XEP-0049
private storage; XEP-0092 version; XEP-0030 disco#info; XEP-0199 ping.
"""
import asyncio
import os
import xml.etree.ElementTree as ET

import pytest

from aioclient import connect, disconnect, make_client, wait_until
from conftest import USERS
from peers import Prosody, _attach
from slixclient import Client, close_all, run

NS_ROSTER = "jabber:iq:roster"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_CLIENT = "jabber:client"
NS_MAM = "urn:xmpp:mam:2"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_FORWARD = "urn:xmpp:forward:0"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_PUBSUB_EVENT = "http://jabber.org/protocol/pubsub#event"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_AVATAR_DATA = "urn:xmpp:avatar:data"
NS_AVATAR_META = "urn:xmpp:avatar:metadata"
NS_OMEMO = "eu.siacs.conversations.axolotl"
OMEMO_DEVICELIST = "eu.siacs.conversations.axolotl.devicelist"

# Modules beyond peers.PROSODY_CFG's defaults (which has roster, disco, version,
# private, vcard_legacy, carbons, blocklist, offline).
PROSODY_MODULES = ("pep", "mam")

# Why each xedge case is expected to fail today.  Remove an entry's uses when the
# feature lands (the strict xfail turns the run red with XPASS until then).
XFAIL = {}      # feature key -> reason, for cases xedge does not pass yet (none today)


def targets(xfail_key=None):
    """The two servers under test; the xedge one strict-xfailed for XFAIL[xfail_key]."""
    marks = [pytest.mark.xfail(strict=True, reason=XFAIL[xfail_key])] if xfail_key else []
    return [pytest.param("xedge", marks=marks, id="xedge"), pytest.param("prosody", id="prosody")]


class Target:
    """What a test needs of the server under test, the same for both."""

    def __init__(self, name, domain, port, roster_add, logs):
        self.name, self.domain, self.port = name, domain, port
        self._roster_add = roster_add
        self.logs = logs

    def jid(self, user):
        return user if "@" in user else f"{user}@{self.domain}"

    @staticmethod
    def password(user):
        return USERS[user.split("@")[0]]

    def roster_add(self, user, contact, sub="both", name=None):
        """Server-side roster item, set before user logs in (xedgectl / Prosody storage)."""
        self._roster_add(user, contact, sub, name)


@pytest.fixture
def target(request, cert, tmp_path):
    if request.param == "xedge":
        srv = request.getfixturevalue("server")
        yield Target("xedge", srv.domain, srv.c2s_port,
                     lambda u, c, s, n: srv.roster_add(u, c, s, n), srv.log_tails)
        return
    # Prosody with the suite's certificate: STARTTLS offered, as xedge requires it.
    p = Prosody(tmp_path / "prosody", tls=cert, modules=PROSODY_MODULES)
    _attach(request, p)
    try:
        p.start()
    except BaseException:
        p.stop()
        raise
    yield Target("prosody", p.domain, p.c2s_port, p.roster_add, p.log_tails)
    problems = p.stop()
    if problems:
        pytest.fail("prosody shutdown:\n  " + "\n  ".join(problems) + "\n" + p.log_tails(),
                    pytrace=False)


# ---- helpers -----------------------------------------------------------------------

def q(ns, tag):
    return f"{{{ns}}}{tag}"


class Slix(Client):
    """slixclient.Client that also records roster pushes, every message (errors and
    MAM results included) and every presence with its show, as raw XML."""

    def __init__(self, jid, password, plugins=()):
        super().__init__(jid, password)
        for p in plugins:
            self.register_plugin(p)
        self.pushes = []            # (jid, subscription, ask, name, groups) per pushed item
        self.push_vers = []         # ver attribute of each push (None when absent)
        self.stanzas = []           # every message/presence received, as ET elements
        # Manual subscription handling: the test is the user who decides.
        self.auto_authorize = None
        self.auto_subscribe = False
        self.add_event_handler("roster_update", self._on_roster_update)
        self.add_filter("in", self._record_in)

    def _record_in(self, stanza):
        xml = getattr(stanza, "xml", None)
        if xml is not None and xml.tag in (q(NS_CLIENT, "message"), q(NS_CLIENT, "presence")):
            self.stanzas.append(ET.fromstring(ET.tostring(xml)))
        return stanza

    def _on_roster_update(self, iq):
        if iq["type"] != "set":
            return
        query = iq.xml.find(q(NS_ROSTER, "query"))
        self.push_vers.append(query.get("ver") if query is not None else None)
        for it in (query.iter(q(NS_ROSTER, "item")) if query is not None else ()):
            self.pushes.append((it.get("jid"), it.get("subscription", "none"), it.get("ask"),
                                it.get("name"),
                                sorted(g.text or "" for g in it.iter(q(NS_ROSTER, "group")))))

    async def wait_push(self, jid, sub, ask=None, since=0, timeout=10.0, **extra):
        """A roster push (after index since) for jid with that subscription and ask."""
        def match():
            for p in self.pushes[since:]:
                if p[0] == jid and p[1] == sub and p[2] == ask and \
                        all(p[{"name": 3, "groups": 4}[k]] == v for k, v in extra.items()):
                    return p
            return None
        try:
            return await wait_until(f"{self.boundjid}: roster push {jid} subscription={sub} "
                                    f"ask={ask} {extra}", match, timeout)
        except AssertionError as e:
            raise AssertionError(f"{e}; pushes seen: {self.pushes}") from None

    def presences_from(self, frm, since=0):
        """(type-or-show) of each presence from frm after index since of self.stanzas."""
        out = []
        for el in self.stanzas[since:]:
            if el.tag == q(NS_CLIENT, "presence") and el.get("from") == frm:
                out.append(el.get("type") or el.findtext(q(NS_CLIENT, "show")) or "available")
        return out

    async def wait_pres(self, frm, kind, since=0, timeout=10.0):
        try:
            await wait_until(f"{self.boundjid}: presence {kind} from {frm}",
                             lambda: kind in self.presences_from(frm, since), timeout)
        except AssertionError as e:
            raise AssertionError(f"{e}; seen: {self.presences_from(frm)}") from None

    async def wait_stanza(self, what, pred, since=0, timeout=10.0):
        def match():        # a list: an ET element without children is false
            return [el for el in self.stanzas[since:] if pred(el)][:1]
        try:
            return (await wait_until(f"{self.boundjid}: {what}", match, timeout))[0]
        except AssertionError as e:
            seen = [ET.tostring(el, encoding="unicode")[:300] for el in self.stanzas[since:]]
            raise AssertionError(f"{e}; received since: {seen}") from None

    async def iq(self, itype, payload_xml, to=None, timeout=10.0):
        """Send an iq get/set with a raw payload; returns the response as ET (raises
        slixmpp.exceptions.IqError on type='error')."""
        iq = self.Iq()
        iq["type"] = itype
        if to:
            iq["to"] = to
        iq.append(ET.fromstring(payload_xml))
        resp = await iq.send(timeout=timeout)
        return resp.xml


async def login(t, user, resource, plugins=(), roster=False):
    c = Slix(f"{t.jid(user)}/{resource}", t.password(user), plugins)
    await c.login(t.port)
    if roster:                  # an "interested resource" (RFC 6121 §2.1.6)
        await c.get_roster(timeout=10)
    return c


def error_of(el):
    """(type, condition, [other children namespaces]) of a stanza's <error/>."""
    err = el.find(q(NS_CLIENT, "error"))
    assert err is not None, f"no <error/> in {ET.tostring(el, encoding='unicode')}"
    conds = [c.tag.split("}")[1] for c in err if c.tag.startswith("{" + NS_STANZAS)
             and c.tag != q(NS_STANZAS, "text")]
    others = [c.tag for c in err if not c.tag.startswith("{" + NS_STANZAS)]
    return err.get("type"), conds[0] if conds else None, others


def iq_error(exc):
    """(type, condition) of a slixmpp IqError."""
    return exc.iq["error"]["type"], exc.iq["error"]["condition"]


# ---- aioxmpp: the second client library ---------------------------------------------

class Aio:
    """An aioxmpp Client (STARTTLS, test certificate not verified) with its roster
    and presence services, recording what its user sees."""

    def __init__(self, t, user, resource):
        import aioxmpp
        self.aioxmpp = aioxmpp
        self.client = make_client(f"{t.jid(user)}/{resource}", t.password(user), t.port)
        self.jid = self.client.local_jid
        self.roster = self.client.summon(aioxmpp.RosterClient)
        self.presence_server = self.client.summon(aioxmpp.PresenceServer)
        self.events = []        # ("subscribe"|"subscribed"|..., bare JID) in order
        self.seen = []          # (full JID, "available"|show|"unavailable")
        self.initial_roster = asyncio.Event()
        for sig in ("subscribe", "subscribed", "unsubscribe", "unsubscribed"):
            getattr(self.roster, "on_" + sig).connect(
                lambda st, sig=sig: self.events.append((sig, str(st.from_.bare()))))
        self.roster.on_initial_roster_received.connect(lambda: self.initial_roster.set())
        self.client.stream.app_inbound_presence_filter.register(self._record, 0)
        self._cm = None

    def _record(self, st):
        a = self.aioxmpp
        if st.type_ == a.PresenceType.AVAILABLE:
            kind = (st.show.value if st.show is not None else None) or "available"
            self.seen.append((str(st.from_), kind))
        elif st.type_ == a.PresenceType.UNAVAILABLE:
            self.seen.append((str(st.from_), "unavailable"))
        return st

    async def start(self, timeout=15.0):
        self._cm = await connect(self.client, timeout)
        await asyncio.wait_for(self.initial_roster.wait(), timeout)
        self.set_show(None)             # initial presence, after the roster (RFC 6121 §2.2)
        return self

    def item(self, bare):
        return self.roster.items.get(self.aioxmpp.JID.fromstr(bare))

    def sub_of(self, bare):
        it = self.item(bare)
        return None if it is None else (it.subscription, it.ask)

    async def wait_sub(self, bare, sub, ask=None, timeout=10.0):
        try:
            await wait_until(f"{self.jid}: roster item {bare} {sub}/{ask}",
                             lambda: self.sub_of(bare) == (sub, ask), timeout)
        except AssertionError as e:
            raise AssertionError(f"{e}; it is {self.sub_of(bare)}") from None

    async def wait_event(self, kind, bare, timeout=10.0):
        try:
            await wait_until(f"{self.jid}: {kind} from {bare}",
                             lambda: (kind, bare) in self.events, timeout)
        except AssertionError as e:
            raise AssertionError(f"{e}; events: {self.events}") from None

    async def wait_seen(self, full, kind, since=0, timeout=10.0):
        try:
            await wait_until(f"{self.jid}: presence {kind} from {full}",
                             lambda: (full, kind) in self.seen[since:], timeout)
        except AssertionError as e:
            raise AssertionError(f"{e}; seen: {self.seen}") from None

    def set_show(self, show):
        a = self.aioxmpp
        self.presence_server.set_presence(a.PresenceState(True, a.PresenceShow(show) if show
                                                          else a.PresenceShow.NONE))

    async def stop(self):
        if self._cm is not None:
            cm, self._cm = self._cm, None
            await disconnect(cm)


# ---- tests that pass on xedge today -------------------------------------------------

@pytest.mark.parametrize("target", targets(), indirect=True)
def test_ping_and_server_identity(target):
    """XEP-0199 ping to the server, XEP-0030 disco#info: an IM server identity."""
    async def main():
        a = None
        try:
            a = await login(target, "alice", "one", plugins=("xep_0199",))
            rtt = await a["xep_0199"].ping(jid=target.domain, timeout=10)
            assert rtt is not None and rtt >= 0
            info = await a["xep_0030"].get_info(jid=target.domain, timeout=10)
            ids = info["disco_info"]["identities"]
            assert any(i[0] == "server" and i[1] == "im" for i in ids), ids
            assert NS_DISCO_INFO in info["disco_info"]["features"]
        finally:
            await close_all(a)
    run(main(), 40)


@pytest.mark.parametrize("target", targets(), indirect=True)
def test_preset_roster_and_presence(target):
    """A roster made by the administrator: roster get shows it, presence flows both ways."""
    t = target
    t.roster_add("alice", "bob", "both", "Bob")
    t.roster_add("bob", "alice", "both", "Alice")

    async def main():
        a = b = None
        try:
            a = await login(t, "alice", "one", roster=True)
            items = {str(j): a.client_roster[j] for j in a.client_roster}
            assert t.jid("bob") in items, items
            assert items[t.jid("bob")]["subscription"] == "both"
            assert items[t.jid("bob")]["name"] == "Bob"
            b = await login(t, "bob", "one", roster=True)
            await a.wait_pres(t.jid("bob") + "/one", "available")
            await b.wait_pres(t.jid("alice") + "/one", "available")
            mark = len(a.stanzas)
            b.send_presence(pshow="away")
            await a.wait_pres(t.jid("bob") + "/one", "away", since=mark)
        finally:
            await close_all(a, b)
    run(main(), 60)


# ---- RFC 6121 ----------------------------------------------------------------------

@pytest.mark.parametrize("target", targets(), indirect=True)
def test_subscription_handshake(target):
    """alice (slixmpp, two interested resources) adds bob (aioxmpp): roster set,
    subscribe, approve, subscribe back, both; presence both ways; unsubscribe;
    remove.  Every step's roster pushes reach both of alice's resources."""
    t = target
    alice, bob = t.jid("alice"), t.jid("bob")

    async def main():
        a1 = a2 = b = None
        try:
            a1 = await login(t, "alice", "one", roster=True)
            a2 = await login(t, "alice", "two", roster=True)
            b = await Aio(t, "bob", "aio").start()
            bob_full = str(b.jid)

            # 1. Roster set (name + group): a push to both interested resources.
            a1.update_roster(bob, name="Bob", groups=["Friends"])
            for c in (a1, a2):
                await c.wait_push(bob, "none", None, name="Bob", groups=["Friends"])

            # 2. Subscribe: pushed with ask='subscribe'; bob gets the request from the bare JID.
            n1, n2 = len(a1.pushes), len(a2.pushes)
            a1.send_presence_subscription(pto=bob, ptype="subscribe")
            await a1.wait_push(bob, "none", "subscribe", since=n1)
            await a2.wait_push(bob, "none", "subscribe", since=n2)
            await b.wait_event("subscribe", alice)
            assert b.sub_of(alice) is None, "a request alone must not put alice on bob's roster"

            # 3. bob approves: bob's roster has alice 'from'; alice's says 'to', both
            #    resources get the 'subscribed' and bob's current presence.
            n1, n2 = len(a1.pushes), len(a2.pushes)
            b.roster.approve(b.aioxmpp.JID.fromstr(alice))
            await b.wait_sub(alice, "from")
            await a1.wait_push(bob, "to", None, since=n1, name="Bob", groups=["Friends"])
            await a2.wait_push(bob, "to", None, since=n2)
            for c in (a1, a2):
                await c.wait_pres(bob, "subscribed")
                await c.wait_pres(bob_full, "available")

            # 4. bob subscribes back; alice (second resource) approves: 'both' everywhere.
            n1, n2 = len(a1.pushes), len(a2.pushes)
            b.roster.subscribe(b.aioxmpp.JID.fromstr(alice))
            await b.wait_sub(alice, "from", "subscribe")
            for c in (a1, a2):
                await c.wait_pres(bob, "subscribe")
            a2.send_presence_subscription(pto=bob, ptype="subscribed")
            await a1.wait_push(bob, "both", None, since=n1)
            await a2.wait_push(bob, "both", None, since=n2)
            await b.wait_sub(alice, "both")
            await b.wait_event("subscribed", alice)
            await b.wait_seen(f"{alice}/one", "available")
            await b.wait_seen(f"{alice}/two", "available")

            # 5. Presence both ways: bob goes away and comes back; alice goes xa.
            m1, m2 = len(a1.stanzas), len(a2.stanzas)
            b.set_show("away")
            await a1.wait_pres(bob_full, "away", since=m1)
            await a2.wait_pres(bob_full, "away", since=m2)
            m1 = len(a1.stanzas)
            b.set_show(None)
            await a1.wait_pres(bob_full, "available", since=m1)
            s = len(b.seen)
            a1.send_presence(pshow="xa")
            await b.wait_seen(f"{alice}/one", "xa", since=s)

            # 6. alice cancels bob's subscription to her (unsubscribed): alice 'to', bob
            #    'from'; before that, her resources' unavailable reaches him (RFC 6121
            #    §3.2.2: from each resource; Prosody sends one from the bare JID).
            n1, n2, s = len(a1.pushes), len(a2.pushes), len(b.seen)
            a1.send_presence_subscription(pto=bob, ptype="unsubscribed")
            await a1.wait_push(bob, "to", None, since=n1)
            await a2.wait_push(bob, "to", None, since=n2)
            await b.wait_event("unsubscribed", alice)
            await b.wait_sub(alice, "from")
            gone = [(f"{alice}/one", "unavailable"), (f"{alice}/two", "unavailable")]
            await wait_until("bob: alice's resources unavailable",
                             lambda: (alice, "unavailable") in b.seen[s:] or
                             all(g in b.seen[s:] for g in gone))

            # 7. alice removes bob (she still has 'to'): pushed as 'remove' to both
            #    resources, and her subscription to him is ended too (RFC 6121 §2.5.2):
            #    bob gets 'unsubscribe', his roster says 'none', and his presence no
            #    longer reaches her (checked against a message he sends after it).
            n1, n2 = len(a1.pushes), len(a2.pushes)
            await a1.del_roster_item(bob)
            await a1.wait_push(bob, "remove", None, since=n1)
            await a2.wait_push(bob, "remove", None, since=n2)
            await b.wait_event("unsubscribe", alice)
            await b.wait_sub(alice, "none")
            m1 = len(a1.stanzas)
            b.set_show("dnd")
            await b.client.send(b.aioxmpp.Message(
                to=b.aioxmpp.JID.fromstr(f"{alice}/one"), type_=b.aioxmpp.MessageType.CHAT))
            await a1.wait_stanza("bob's marker message", lambda e: e.tag == q(NS_CLIENT, "message")
                                 and e.get("from") == bob_full, since=m1)
            assert "dnd" not in a1.presences_from(bob_full, m1), \
                "bob's presence reached alice after she removed him"
            roster = await a2.iq("get", f"<query xmlns='{NS_ROSTER}'/>")
            assert [i.get("jid") for i in roster.iter(q(NS_ROSTER, "item"))] == []
        finally:
            await close_all(a1, a2)
            if b is not None:
                await b.stop()
    run(main(), 100)


@pytest.mark.parametrize("target", targets(), indirect=True)
def test_subscription_request_to_offline_contact(target):
    """alice asks carol while carol is offline; carol (aioxmpp) gets the request when
    she logs in and approves it; alice's roster says 'to'."""
    t = target
    alice, carol = t.jid("alice"), t.jid("carol")

    async def main():
        a = c = None
        try:
            a = await login(t, "alice", "one", roster=True)
            a.send_presence_subscription(pto=carol, ptype="subscribe")
            await a.wait_push(carol, "none", "subscribe")
            c = Aio(t, "carol", "aio")
            await c.start()
            await c.wait_event("subscribe", alice)
            n = len(a.pushes)
            c.roster.approve(c.aioxmpp.JID.fromstr(alice))
            await a.wait_push(carol, "to", None, since=n)
            await a.wait_pres(carol, "subscribed")
            await a.wait_pres(str(c.jid), "available")
        finally:
            await close_all(a)
            if c is not None:
                await c.stop()
    run(main(), 60)


@pytest.mark.parametrize("target", targets(), indirect=True)
def test_roster_versioning(target):
    """RFC 6121 §2.6: the server advertises rosterver, results and pushes carry ver,
    and a client that asks with the current ver gets no items it already has."""
    t = target
    t.roster_add("alice", "carol", "both", "Carol")
    # Both sides agree: carol's server (another shard, on xedge) answers alice's probe
    # from carol's roster (RFC 6121 §4.3.2), which must not take the subscription back.
    t.roster_add("carol", "alice", "both", "Alice")

    async def main():
        a = a2 = None
        try:
            a = await login(t, "alice", "one")
            assert "rosterver" in a.features, f"stream features: {a.features}"
            r = await a.iq("get", f"<query xmlns='{NS_ROSTER}' ver=''/>")
            query = r.find(q(NS_ROSTER, "query"))
            assert query is not None and query.get("ver"), ET.tostring(r, encoding="unicode")
            assert [i.get("jid") for i in query.iter(q(NS_ROSTER, "item"))] == [t.jid("carol")]
            v1 = query.get("ver")
            await a.iq("set", f"<query xmlns='{NS_ROSTER}'><item jid='{t.jid('bob')}' "
                              "name='Bob'/></query>")
            await a.wait_push(t.jid("bob"), "none")
            v2 = a.push_vers[-1]
            assert v2 and v2 != v1, f"push ver {v2!r} after result ver {v1!r}"
            # A second resource with the current version: nothing to send again.
            a2 = await login(t, "alice", "two")
            r = await a2.iq("get", f"<query xmlns='{NS_ROSTER}' ver='{v2}'/>")
            query = r.find(q(NS_ROSTER, "query"))
            assert query is None or (query.get("ver") == v2 and
                                     not list(query.iter(q(NS_ROSTER, "item")))), \
                ET.tostring(r, encoding="unicode")
            # With the older version: the change since (pushes) or the whole roster.
            mark = len(a2.pushes)
            r = await a2.iq("get", f"<query xmlns='{NS_ROSTER}' ver='{v1}'/>")
            query = r.find(q(NS_ROSTER, "query"))
            if query is None:
                await a2.wait_push(t.jid("bob"), "none", since=mark)
            else:
                assert t.jid("bob") in [i.get("jid") for i in query.iter(q(NS_ROSTER, "item"))]
        finally:
            await close_all(a, a2)
    run(main(), 60)


# ---- XEP-0280 carbons ---------------------------------------------------------------

@pytest.mark.parametrize("target", targets(), indirect=True)
def test_carbons(target):
    """alice/one chats with bob; alice/two (carbons on) sees both directions as
    carbons; messages marked <private/> are not copied."""
    t = target
    alice, bob = t.jid("alice"), t.jid("bob")

    async def main():
        a1 = a2 = b = None
        try:
            a1 = await login(t, "alice", "one", plugins=("xep_0280",))
            a2 = await login(t, "alice", "two", plugins=("xep_0280",))
            b = await login(t, "bob", "one")
            info = await a1["xep_0030"].get_info(jid=t.domain, timeout=10)
            assert "urn:xmpp:carbons:2" in info["disco_info"]["features"]
            await a1["xep_0280"].enable(timeout=10)
            await a2["xep_0280"].enable(timeout=10)
            carbons = asyncio.Queue()
            a2.add_event_handler("carbon_sent", lambda m: carbons.put_nowait(("sent", m)))
            a2.add_event_handler("carbon_received",
                                 lambda m: carbons.put_nowait(("received", m)))

            async def next_carbon():
                kind, m = await asyncio.wait_for(carbons.get(), 10)
                assert m["from"] == alice, f"carbon from {m['from']}, not the bare JID"
                fwd = m["carbon_sent" if kind == "sent" else "carbon_received"]
                return kind, fwd

            tag = os.urandom(3).hex()
            a1.send_message(mto=bob, mbody=f"out-{tag}", mtype="chat")
            await b.next_message(body=f"out-{tag}", timeout=10)
            kind, fwd = await next_carbon()
            assert (kind, fwd["body"], fwd["to"].bare, str(fwd["from"])) == \
                ("sent", f"out-{tag}", bob, f"{alice}/one")

            b.send_message(mto=f"{alice}/one", mbody=f"in-{tag}", mtype="chat")
            await a1.next_message(body=f"in-{tag}", timeout=10)
            kind, fwd = await next_carbon()
            assert (kind, fwd["body"], str(fwd["to"]), str(fwd["from"])) == \
                ("received", f"in-{tag}", f"{alice}/one", f"{bob}/one")

            # Private, both ways, each followed by a normal one: the next carbon must be
            # the normal one.
            for sender, to, reader, kind_want in ((a1, bob, b, "sent"),
                                                  (b, f"{alice}/one", a1, "received")):
                pm = sender.make_message(mto=to, mbody=f"private-{kind_want}-{tag}", mtype="chat")
                pm.enable("carbon_private")
                pm.send()
                await reader.next_message(body=f"private-{kind_want}-{tag}", timeout=10)
                sender.send_message(mto=to, mbody=f"after-{kind_want}-{tag}", mtype="chat")
                await reader.next_message(body=f"after-{kind_want}-{tag}", timeout=10)
                kind, fwd = await next_carbon()
                assert (kind, fwd["body"]) == (kind_want, f"after-{kind_want}-{tag}"), \
                    f"a <private/> message was carbon-copied: {kind} {fwd['body']}"
            assert not [m for m in a2.stanzas if "private-" in ET.tostring(m, encoding="unicode")]
        finally:
            await close_all(a1, a2, b)
    run(main(), 60)


# ---- XEP-0191 blocking --------------------------------------------------------------

@pytest.mark.parametrize("target", targets(), indirect=True)
def test_blocking(target):
    """bob blocks alice: her message bounces with service-unavailable (XEP-0191 §3.5),
    his to her is refused with not-acceptable + <blocked/> (§3.6); the blocklist
    shows her; after unblock messages flow again."""
    t = target
    alice, bob = t.jid("alice"), t.jid("bob")

    async def main():
        a = b = None
        try:
            a = await login(t, "alice", "one")
            b = await login(t, "bob", "one", plugins=("xep_0191",))
            blocked = await b["xep_0191"].get_blocked(timeout=10)
            assert set(blocked["blocklist"]["items"]) == set()
            await b["xep_0191"].block([alice], timeout=10)
            blocked = await b["xep_0191"].get_blocked(timeout=10)
            assert {str(j) for j in blocked["blocklist"]["items"]} == {alice}

            mark = len(a.stanzas)
            m = a.make_message(mto=bob, mbody="are you there?", mtype="chat")
            m["id"] = "blocked-1"
            m.send()
            err = await a.wait_stanza(
                "error for message blocked-1",
                lambda e: e.tag == q(NS_CLIENT, "message") and e.get("id") == "blocked-1",
                since=mark)
            assert err.get("type") == "error" and err.get("from") == bob, \
                ET.tostring(err, encoding="unicode")
            etype, cond, _ = error_of(err)
            assert (etype, cond) == ("cancel", "service-unavailable")

            mark = len(b.stanzas)
            m = b.make_message(mto=alice, mbody="hello?", mtype="chat")
            m["id"] = "blocked-2"
            m.send()
            err = await b.wait_stanza(
                "error for message blocked-2",
                lambda e: e.tag == q(NS_CLIENT, "message") and e.get("id") == "blocked-2",
                since=mark)
            etype, cond, others = error_of(err)
            assert (etype, cond) == ("cancel", "not-acceptable")
            assert q("urn:xmpp:blocking:errors", "blocked") in others
            assert not [e for e in b.stanzas if e.findtext(q(NS_CLIENT, "body")) == "are you there?"]

            await b["xep_0191"].unblock([alice], timeout=10)
            blocked = await b["xep_0191"].get_blocked(timeout=10)
            assert set(blocked["blocklist"]["items"]) == set()
            a.send_message(mto=bob, mbody="now?", mtype="chat")
            await b.next_message(body="now?", timeout=10)
        finally:
            await close_all(a, b)
    run(main(), 60)


# ---- XEP-0054 vcard-temp ------------------------------------------------------------

@pytest.mark.parametrize("target", targets(), indirect=True)
def test_vcard(target):
    """alice sets her vCard, reads it back, bob reads it."""
    t = target
    alice = t.jid("alice")
    vcard = ("<vCard xmlns='vcard-temp'><FN>Alice Liddell</FN><NICKNAME>ali</NICKNAME>"
             "<URL>https://example.org/alice</URL></vCard>")

    async def main():
        a = b = None
        try:
            a = await login(t, "alice", "one")
            b = await login(t, "bob", "one")
            await a.iq("set", vcard)

            def fields(r):
                v = r.find(q("vcard-temp", "vCard"))
                assert v is not None, ET.tostring(r, encoding="unicode")
                return v.findtext(q("vcard-temp", "FN")), v.findtext(q("vcard-temp", "NICKNAME"))
            own = await a.iq("get", "<vCard xmlns='vcard-temp'/>")
            assert fields(own) == ("Alice Liddell", "ali")
            other = await b.iq("get", "<vCard xmlns='vcard-temp'/>", to=alice)
            assert other.get("from") == alice
            assert fields(other) == ("Alice Liddell", "ali")
        finally:
            await close_all(a, b)
    run(main(), 40)


# ---- XEP-0163 PEP -------------------------------------------------------------------

def publish_options_form(access_model):
    return ("<publish-options><x xmlns='jabber:x:data' type='submit'>"
            "<field var='FORM_TYPE' type='hidden'>"
            f"<value>{NS_PUBSUB}#publish-options</value></field>"
            f"<field var='pubsub#access_model'><value>{access_model}</value></field>"
            "</x></publish-options>")


def pep_publish(node, item_id, payload, access_model=None):
    opts = publish_options_form(access_model) if access_model else ""
    return (f"<pubsub xmlns='{NS_PUBSUB}'><publish node='{node}'>"
            f"<item id='{item_id}'>{payload}</item></publish>{opts}</pubsub>")


def devicelist(*ids):
    return f"<list xmlns='{NS_OMEMO}'>" + "".join(f"<device id='{i}'/>" for i in ids) + "</list>"


@pytest.mark.parametrize("target", targets(), indirect=True)
def test_pep_avatar_and_omemo_devicelist(target):
    """alice publishes an avatar (XEP-0084) and an OMEMO device list with
    publish-options access_model=open; bob (a contact, +notify in his caps) gets
    the events; carol (no subscription) may read the open node only."""
    import base64
    import hashlib
    t = target
    alice = t.jid("alice")
    t.roster_add("alice", "bob", "both", "Bob")
    t.roster_add("bob", "alice", "both", "Alice")
    png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
                           "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
    sha1 = hashlib.sha1(png).hexdigest()

    def events_of(c, node):
        """Item ids and payloads of every PEP event from alice for node."""
        out = []
        for el in c.stanzas:
            ev = el.find(q(NS_PUBSUB_EVENT, "event"))
            if el.tag != q(NS_CLIENT, "message") or ev is None or el.get("from") != alice:
                continue
            for items in ev.iter(q(NS_PUBSUB_EVENT, "items")):
                if items.get("node") == node:
                    out += [(i.get("id"), list(i)) for i in items.iter(q(NS_PUBSUB_EVENT, "item"))]
        return out

    async def main():
        a = b = c = None
        try:
            a = await login(t, "alice", "one")
            info = await a["xep_0030"].get_info(jid=alice, timeout=10)
            assert ("pubsub", "pep") in [(i[0], i[1]) for i in info["disco_info"]["identities"]]
            await a.iq("set", pep_publish(NS_AVATAR_DATA, sha1,
                                          f"<data xmlns='{NS_AVATAR_DATA}'>"
                                          f"{base64.b64encode(png).decode()}</data>"))
            await a.iq("set", pep_publish(
                NS_AVATAR_META, sha1, f"<metadata xmlns='{NS_AVATAR_META}'><info bytes='{len(png)}'"
                f" id='{sha1}' height='1' width='1' type='image/png'/></metadata>"))
            await a.iq("set", pep_publish(OMEMO_DEVICELIST, "current", devicelist(1001), "open"))

            # bob logs in and announces +notify for both in his caps (XEP-0115).
            b = await login(t, "bob", "one", plugins=("xep_0115", "xep_0163"))
            for ns in (NS_AVATAR_META, OMEMO_DEVICELIST):
                b["xep_0030"].add_feature(ns + "+notify")
            await b["xep_0115"].update_caps(broadcast=True)
            await wait_until(f"bob: avatar metadata event from {alice}",
                             lambda: [e for e in events_of(b, NS_AVATAR_META) if e[0] == sha1],
                             15)
            await wait_until(f"bob: device list event from {alice}",
                             lambda: events_of(b, OMEMO_DEVICELIST), 15)
            item = events_of(b, OMEMO_DEVICELIST)[-1][1]
            assert [d.get("id") for d in item[0].iter(q(NS_OMEMO, "device"))] == ["1001"]

            # A new device: a live notification.
            await a.iq("set", pep_publish(OMEMO_DEVICELIST, "current", devicelist(1001, 2002),
                                          "open"))
            await wait_until("bob: device list event with 2002",
                             lambda: any(d.get("id") == "2002" for _, p in
                                         events_of(b, OMEMO_DEVICELIST) for el in p
                                         for d in el.iter(q(NS_OMEMO, "device"))), 15)

            # carol: the open node is readable, the avatar (default access: presence) is not.
            c = await login(t, "carol", "one")
            r = await c.iq("get", f"<pubsub xmlns='{NS_PUBSUB}'><items node='{OMEMO_DEVICELIST}'/>"
                                  "</pubsub>", to=alice)
            ids = [d.get("id") for d in r.iter(q(NS_OMEMO, "device"))]
            assert ids == ["1001", "2002"], ET.tostring(r, encoding="unicode")
            from slixmpp.exceptions import IqError
            with pytest.raises(IqError) as ei:
                await c.iq("get", f"<pubsub xmlns='{NS_PUBSUB}'><items node='{NS_AVATAR_META}'/>"
                                  "</pubsub>", to=alice)
            assert ei.value.iq["error"]["condition"] in ("forbidden", "not-authorized",
                                                         "item-not-found")
        finally:
            await close_all(a, b, c)
    run(main(), 80)


# ---- XEP-0313 MAM ------------------------------------------------------------------

class Mam:
    """Raw MAM queries on a Slix client: results are the <message><result/></message>
    stanzas with the query's queryid, then the iq result's <fin/>."""

    def __init__(self, client):
        self.c = client
        self.n = 0

    async def query(self, max_=None, after=None, with_jid=None):
        self.n += 1
        qid = f"q{self.n}-{os.urandom(2).hex()}"
        form = ""
        if with_jid:
            form = ("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"
                    f"<value>{NS_MAM}</value></field><field var='with'><value>{with_jid}</value>"
                    "</field></x>")
        rsm = ""
        if max_ is not None or after is not None:
            rsm = (f"<set xmlns='{NS_RSM}'>" + (f"<max>{max_}</max>" if max_ is not None else "") +
                   (f"<after>{after}</after>" if after is not None else "") + "</set>")
        mark = len(self.c.stanzas)
        resp = await self.c.iq("set", f"<query xmlns='{NS_MAM}' queryid='{qid}'>{form}{rsm}</query>",
                               timeout=15)
        fin = resp.find(q(NS_MAM, "fin"))
        assert fin is not None, ET.tostring(resp, encoding="unicode")
        results = []
        for el in self.c.stanzas[mark:]:
            r = el.find(q(NS_MAM, "result"))
            if el.tag != q(NS_CLIENT, "message") or r is None or r.get("queryid") != qid:
                continue
            assert el.get("from") in (None, self.c.boundjid.bare), \
                f"MAM result from {el.get('from')}: a forgery?"
            m = r.find(f"{q(NS_FORWARD, 'forwarded')}/{q(NS_CLIENT, 'message')}")
            assert m is not None, ET.tostring(el, encoding="unicode")
            results.append((r.get("id"), m.get("from"), m.get("to"), m.findtext(q(NS_CLIENT, "body"))))
        return results, fin


@pytest.mark.parametrize("target", targets(), indirect=True)
def test_mam_paging_and_with(target):
    """After 25 messages with bob, alice pages her archive ten at a time to the end
    (<fin complete='true'/> on the last page only); a `with` query returns only the
    conversation with carol."""
    t = target
    alice, bob, carol = t.jid("alice"), t.jid("bob"), t.jid("carol")
    # Contacts of alice's: archived by default on both servers.
    for u, v in (("alice", "bob"), ("bob", "alice"), ("alice", "carol"), ("carol", "alice")):
        t.roster_add(u, v)

    async def main():
        a = b = c = None
        try:
            a = await login(t, "alice", "one")
            b = await login(t, "bob", "one")
            info = await a["xep_0030"].get_info(jid=alice, timeout=10)
            assert NS_MAM in info["disco_info"]["features"]
            sent = []
            for i in range(25):
                src, dst, to = (a, b, bob) if i % 2 == 0 else (b, a, alice)
                body = f"mam-{i:02d}"
                src.send_message(mto=to, mbody=body, mtype="chat")
                await dst.next_message(body=body, timeout=10)
                sent.append(body)

            mam = Mam(a)
            pages, after = [], None
            while len(pages) < 5:
                results, fin = await mam.query(max_=10, after=after)
                pages.append((results, fin))
                rset = fin.find(q(NS_RSM, "set"))
                assert rset is not None, ET.tostring(fin, encoding="unicode")
                if results:
                    assert rset.findtext(q(NS_RSM, "first")) == results[0][0]
                    assert rset.findtext(q(NS_RSM, "last")) == results[-1][0]
                count = rset.findtext(q(NS_RSM, "count"))
                assert count is None or int(count) == 25
                if fin.get("complete") in ("true", "1"):
                    break
                after = rset.findtext(q(NS_RSM, "last"))
            sizes = [len(r) for r, _ in pages]
            assert sizes == [10, 10, 5], f"page sizes {sizes}"
            assert [f.get("complete") in ("true", "1") for _, f in pages] == [False, False, True]
            got = [r[3] for rs, _ in pages for r in rs]
            assert got == sent, f"archive order {got}"
            pairs = [(frm.split("/")[0], to.split("/")[0]) for rs, _ in pages for _, frm, to, _ in rs]
            assert pairs == [(alice, bob) if i % 2 == 0 else (bob, alice) for i in range(25)]

            c = await login(t, "carol", "one")
            for i in range(3):
                c.send_message(mto=alice, mbody=f"carol-{i}", mtype="chat")
                await a.next_message(body=f"carol-{i}", timeout=10)
            results, fin = await mam.query(with_jid=carol)
            assert [r[3] for r in results] == ["carol-0", "carol-1", "carol-2"]
            assert all(r[1].split("/")[0] == carol for r in results)
            assert fin.get("complete") in ("true", "1")
            results, fin = await mam.query(with_jid=bob, max_=30)
            assert [r[3] for r in results] == sent
        finally:
            await close_all(a, b, c)
    run(main(), 90)


# ---- XEP-0049, XEP-0092, XEP-0030 ---------------------------------------------------

@pytest.mark.parametrize("target", targets(), indirect=True)
def test_private_storage(target):
    """alice stores private XML; her next session reads it back; bob cannot."""
    t = target
    payload = "<prefs xmlns='urn:example:xedge-tests'><colour>teal</colour></prefs>"

    async def main():
        a = a2 = b = None
        try:
            a = await login(t, "alice", "one")
            await a.iq("set", f"<query xmlns='jabber:iq:private'>{payload}</query>")
            await a.close()
            a2 = await login(t, "alice", "two")
            r = await a2.iq("get", "<query xmlns='jabber:iq:private'><prefs "
                                   "xmlns='urn:example:xedge-tests'/></query>")
            assert r.findtext(".//{urn:example:xedge-tests}colour") == "teal", \
                ET.tostring(r, encoding="unicode")
            b = await login(t, "bob", "one")
            from slixmpp.exceptions import IqError
            with pytest.raises(IqError) as ei:
                await b.iq("get", "<query xmlns='jabber:iq:private'><prefs "
                                  "xmlns='urn:example:xedge-tests'/></query>", to=t.jid("alice"))
            # XEP-0049 §2.3: "Forbidden" or "Service Unavailable" (in common use).
            # XEP-0049's example types forbidden 'cancel', RFC 6120 §8.3.3.3 'auth'.
            assert iq_error(ei.value) in (("cancel", "forbidden"), ("auth", "forbidden"),
                                          ("cancel", "service-unavailable"))
        finally:
            await close_all(a, a2, b)
    run(main(), 40)


@pytest.mark.parametrize("target", targets(), indirect=True)
def test_software_version(target):
    t = target

    async def main():
        a = None
        try:
            a = await login(t, "alice", "one", plugins=("xep_0092",))
            r = await a["xep_0092"].get_version(t.domain, timeout=10)
            v = r["software_version"]
            assert v["name"] and v["version"], str(r)
        finally:
            await close_all(a)
    run(main(), 40)


@pytest.mark.parametrize("target", targets(), indirect=True)
def test_disco_features(target):
    """disco#info on the server and on the account lists what the server does."""
    t = target

    async def main():
        a = None
        try:
            a = await login(t, "alice", "one")
            info = await a["xep_0030"].get_info(jid=t.domain, timeout=10)
            feats = set(info["disco_info"]["features"])
            want = {NS_DISCO_INFO, "urn:xmpp:ping", "urn:xmpp:carbons:2", "urn:xmpp:blocking",
                    "vcard-temp", "jabber:iq:version", "jabber:iq:private"}
            assert want <= feats, f"missing: {sorted(want - feats)}"
            info = await a["xep_0030"].get_info(jid=t.jid("alice"), timeout=10)
            ids = {(i[0], i[1]) for i in info["disco_info"]["identities"]}
            assert {("account", "registered"), ("pubsub", "pep")} <= ids, ids
            feats = set(info["disco_info"]["features"])
            assert NS_MAM in feats, sorted(feats)
        finally:
            await close_all(a)
    run(main(), 40)
