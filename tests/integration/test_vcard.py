"""What an account stores on the server, as users see it: vCard (XEP-0054), private XML
storage (XEP-0049), and the server's software version (XEP-0092).  slixmpp's own plugins
for the normal cases, raw clients for the exact error conditions."""
import os
import platform
import re
from pathlib import Path

import pytest
from slixmpp.exceptions import IqError
from slixmpp.xmlstream import ElementBase

from conftest import USERS
from rawxmpp import NS_CLIENT, Raw, dump, q, stanza_error
from slixclient import Client, close_all, run

IQ = q(NS_CLIENT, "iq")
NS_VCARD = "vcard-temp"
NS_PRIVATE = "jabber:iq:private"
NS_VERSION = "jabber:iq:version"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
ROOT = Path(__file__).resolve().parents[2]
# Stanzas larger than a stored value may be (64 KiB), so that bound is the one hit.
BIG_STANZAS = pytest.mark.parametrize("server", [{"max_stanza_bytes": 256 * 1024}], indirect=True)


def xedge_version():
    text = (ROOT / "core" / "version.h").read_text()
    return re.search(r'#define XEDGE_VERSION "([^"]+)"', text).group(1)


class Prefs(ElementBase):
    """A client's private preferences (the XEP-0049 example's exodus:prefs)."""
    name = "exodus"
    namespace = "exodus:prefs"
    plugin_attrib = "exodus"
    interfaces = {"defaultnick"}
    sub_interfaces = interfaces


class Other(ElementBase):
    name = "other"
    namespace = "other:ns"
    plugin_attrib = "other"
    interfaces = {"value"}
    sub_interfaces = interfaces


class VClient(Client):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        for p in ("xep_0054", "xep_0049", "xep_0092"):
            self.register_plugin(p)
        self["xep_0049"].register(Prefs)
        self["xep_0049"].register(Other)


def error_of(exc):
    return exc.iq["error"]["type"], exc.iq["error"]["condition"]


def raw_login(server, user, resource):
    c = Raw(server.c2s_port)
    c.login(user, USERS[user], resource)
    return c


def raw_iq(c, iq_id, body, to=None, itype="get"):
    to_attr = f" to='{to}'" if to else ""
    c.send(f"<iq type='{itype}' id='{iq_id}'{to_attr}>{body}</iq>")
    return c.wait_for(lambda e: e.tag == IQ and e.get("id") == iq_id)


def assert_error(el, etype, cond):
    assert el.get("type") == "error", dump(el)
    assert stanza_error(el) == (etype, cond), dump(el)


# ---- XEP-0054 ---------------------------------------------------------------------------

@pytest.mark.parametrize("server", ["embedded", "external"], indirect=True)
def test_vcard_publish_get_own_and_others(server):
    async def scenario():
        alice = VClient("alice@localhost/v", USERS["alice"])
        bob = VClient("bob@localhost/v", USERS["bob"])
        try:
            await alice.login(server.c2s_port)
            await bob.login(server.c2s_port)

            # None yet: the own vCard is an empty <vCard/> (XEP-0054 §3.1).
            iq = await alice["xep_0054"].get_vcard(local=False)
            assert iq["type"] == "result"
            assert iq["vcard_temp"]["FN"] == "" and len(iq["vcard_temp"].xml) == 0, iq

            vc = alice["xep_0054"].make_vcard()
            vc["FN"] = "Alice Liddell"
            vc["NICKNAME"] = "alice ünïcode & <co>"
            vc["DESC"] = "down the rabbit hole"
            await alice["xep_0054"].publish_vcard(vc)   # raises IqError on an error

            # Read back, without `to` and at the own bare JID.
            iq = await alice["xep_0054"].get_vcard(local=False)
            assert iq["vcard_temp"]["FN"] == "Alice Liddell"
            assert iq["vcard_temp"]["NICKNAME"] == ["alice ünïcode & <co>"]
            iq = await alice["xep_0054"].get_vcard("alice@localhost")
            assert iq["vcard_temp"]["DESC"] == "down the rabbit hole"

            # Another user reads it; the server answers for alice (from = her bare JID).
            iq = await bob["xep_0054"].get_vcard("alice@localhost")
            assert iq["from"] == "alice@localhost"
            assert iq["vcard_temp"]["FN"] == "Alice Liddell"

            # A full replacement (no partial updates, §3.2).
            vc2 = alice["xep_0054"].make_vcard()
            vc2["FN"] = "Alice L."
            await alice["xep_0054"].publish_vcard(vc2)
            iq = await bob["xep_0054"].get_vcard("alice@localhost")
            assert iq["vcard_temp"]["FN"] == "Alice L." and not iq["vcard_temp"]["DESC"]

            # carol has none, nobody does not exist: the same error (§3.3, RFC 6121 §8.5.1).
            for who in ("carol@localhost", "nobody@localhost"):
                try:
                    await bob["xep_0054"].get_vcard(who)
                    raise AssertionError(f"vCard of {who} returned")
                except IqError as e:
                    assert error_of(e) == ("cancel", "service-unavailable"), e.iq
        finally:
            await close_all(alice, bob)

    run(scenario(), 60)


@BIG_STANZAS
def test_vcard_errors(server):
    bob = raw_login(server, "bob", "r")
    alice = raw_login(server, "alice", "r")
    try:
        r = raw_iq(alice, "a1", f"<vCard xmlns='{NS_VCARD}'><FN>Alice</FN></vCard>", itype="set")
        assert r.get("type") == "result", dump(r)

        # Setting another user's vCard: forbidden (§3.2), and hers is untouched.
        r = raw_iq(bob, "b1", f"<vCard xmlns='{NS_VCARD}'><FN>Mallory</FN></vCard>",
                   to="alice@localhost", itype="set")
        assert_error(r, "auth", "forbidden")
        r = raw_iq(bob, "b2", f"<vCard xmlns='{NS_VCARD}'/>", to="alice@localhost")
        assert r.get("type") == "result", dump(r)
        assert r.findtext(f"{q(NS_VCARD, 'vCard')}/{q(NS_VCARD, 'FN')}") == "Alice", dump(r)

        # Over the stored size bound (64 KiB), under the stanza limit: refused, not stored.
        big = "x" * (70 * 1024)
        r = raw_iq(alice, "a2", f"<vCard xmlns='{NS_VCARD}'><DESC>{big}</DESC></vCard>",
                   itype="set")
        assert_error(r, "modify", "policy-violation")
        r = raw_iq(alice, "a3", f"<vCard xmlns='{NS_VCARD}'/>")
        assert r.findtext(f"{q(NS_VCARD, 'vCard')}/{q(NS_VCARD, 'FN')}") == "Alice", dump(r)

        # The server's own domain has no vCard here.
        r = raw_iq(alice, "a4", f"<vCard xmlns='{NS_VCARD}'/>", to="localhost")
        assert_error(r, "cancel", "service-unavailable")
    finally:
        alice.close()
        bob.close()


# ---- XEP-0049 ---------------------------------------------------------------------------

def test_private_store_and_retrieve(server):
    async def scenario():
        alice = VClient("alice@localhost/p", USERS["alice"])
        try:
            await alice.login(server.c2s_port)
            prefs = Prefs()
            prefs["defaultnick"] = "Hamlet"
            iq = await alice["xep_0049"].store(prefs)
            assert iq["type"] == "result"

            iq = await alice["xep_0049"].retrieve("exodus")
            assert iq["private"]["exodus"]["defaultnick"] == "Hamlet"

            # Replaced by the next set; another namespace is kept apart.
            prefs["defaultnick"] = "Ophelia"
            other = Other()
            other["value"] = "42"
            await alice["xep_0049"].store([prefs, other])
            iq = await alice["xep_0049"].retrieve("exodus")
            assert iq["private"]["exodus"]["defaultnick"] == "Ophelia"
            iq = await alice["xep_0049"].retrieve("other")
            assert iq["private"]["other"]["value"] == "42"
        finally:
            await close_all(alice)

        # Stored on the server: a new session sees it.
        alice2 = VClient("alice@localhost/p2", USERS["alice"])
        try:
            await alice2.login(server.c2s_port)
            iq = await alice2["xep_0049"].retrieve("exodus")
            assert iq["private"]["exodus"]["defaultnick"] == "Ophelia"
        finally:
            await close_all(alice2)

    run(scenario(), 60)


@BIG_STANZAS
def test_private_errors(server):
    alice = raw_login(server, "alice", "r")
    bob = raw_login(server, "bob", "r")
    P = f"<query xmlns='{NS_PRIVATE}'>"
    try:
        r = raw_iq(alice, "s1", P + "<exodus xmlns='exodus:prefs'><n>1</n></exodus>"
                   "<exodus xmlns='exodus:prefs'><n>2</n></exodus></query>", itype="set")
        assert r.get("type") == "result", dump(r)
        # Both same-named elements come back; one never stored comes back as asked.
        r = raw_iq(alice, "g1", P + "<exodus xmlns='exodus:prefs'/></query>")
        got = r.findall(f"{q(NS_PRIVATE, 'query')}/{q('exodus:prefs', 'exodus')}")
        assert [e.findtext(q("exodus:prefs", "n")) for e in got] == ["1", "2"], dump(r)
        r = raw_iq(alice, "g2", P + "<never xmlns='never:stored'/></query>")
        assert r.get("type") == "result", dump(r)
        got = r.find(f"{q(NS_PRIVATE, 'query')}/{q('never:stored', 'never')}")
        assert got is not None and len(got) == 0, dump(r)

        # Another user's data: forbidden, for get and set (§2.3).
        r = raw_iq(bob, "b1", P + "<exodus xmlns='exodus:prefs'/></query>", to="alice@localhost")
        assert_error(r, "auth", "forbidden")
        r = raw_iq(bob, "b2", P + "<exodus xmlns='exodus:prefs'><n>x</n></exodus></query>",
                   to="alice@localhost", itype="set")
        assert_error(r, "auth", "forbidden")

        # No child: a get is Bad Format (bad-request), a set Not Acceptable.
        assert_error(raw_iq(alice, "e1", P + "</query>"), "modify", "bad-request")
        assert_error(raw_iq(alice, "e2", P + "</query>", itype="set"), "modify", "not-acceptable")
        # Reserved namespaces and none at all: Not Acceptable.
        for i, el in enumerate(("<x xmlns='jabber:iq:roster'/>", "<x xmlns='http://jabber.org/x'/>",
                                "<vCard xmlns='vcard-temp'/>", "<x xmlns=''/>", "<x/>")):
            for itype in ("get", "set"):
                assert_error(raw_iq(alice, f"r{i}{itype}", P + el + "</query>", itype=itype),
                             "modify", "not-acceptable")
        # A get asks for one namespace.
        assert_error(raw_iq(alice, "e3", P + "<a xmlns='a:a'/><b xmlns='b:b'/></query>"),
                     "modify", "bad-request")
        # Too large a value.
        big = "y" * (70 * 1024)
        assert_error(raw_iq(alice, "e4", P + f"<big xmlns='big:ns'>{big}</big></query>",
                            itype="set"), "modify", "policy-violation")
        # Too many names in one request.
        many = "".join(f"<k{i} xmlns='many:ns'/>" for i in range(17))
        assert_error(raw_iq(alice, "e5", P + many + "</query>", itype="set"),
                     "modify", "policy-violation")

        # The per-account quota (256 keys; one, exodus:prefs, is stored already).
        n = 1
        for batch in range(16):
            kids = "".join(f"<k{i} xmlns='q:{batch}'/>" for i in range(16) if n + i < 256)
            if not kids:
                break
            r = raw_iq(alice, f"q{batch}", P + kids + "</query>", itype="set")
            assert r.get("type") == "result", dump(r)
            n += kids.count("<k")
        assert n == 256
        assert_error(raw_iq(alice, "q-over", P + "<one xmlns='one:more'/></query>", itype="set"),
                     "wait", "resource-constraint")
        # Replacing a stored key is still allowed at the quota.
        r = raw_iq(alice, "q-re", P + "<exodus xmlns='exodus:prefs'><n>3</n></exodus></query>",
                   itype="set")
        assert r.get("type") == "result", dump(r)
    finally:
        alice.close()
        bob.close()


# ---- XEP-0092 and discovery -------------------------------------------------------------

def test_server_version_and_features(server):
    async def scenario():
        alice = VClient("alice@localhost/s", USERS["alice"])
        try:
            await alice.login(server.c2s_port)
            iq = await alice["xep_0092"].get_version("localhost")
            sv = iq["software_version"]
            assert (sv["name"], sv["version"], sv["os"]) == ("xedge", xedge_version(),
                                                            platform.system()), iq
            info = await alice["xep_0030"].get_info(jid="localhost")
            feats = info["disco_info"]["features"]
            assert NS_VERSION in feats and NS_VCARD in feats, feats
            info = await alice["xep_0030"].get_info(jid="alice@localhost")
            feats = info["disco_info"]["features"]
            assert NS_PRIVATE in feats and NS_VCARD in feats, feats
        finally:
            await close_all(alice)

    run(scenario(), 60)

    with raw_login(server, "alice", "r") as alice:
        # Only get is defined.
        assert_error(raw_iq(alice, "v1", f"<query xmlns='{NS_VERSION}'/>", to="localhost",
                            itype="set"), "modify", "bad-request")
        # An account's bare JID does not answer for its resources.
        assert_error(raw_iq(alice, "v2", f"<query xmlns='{NS_VERSION}'/>", to="bob@localhost"),
                     "cancel", "service-unavailable")


@pytest.mark.parametrize("server", [{"extra_edge_yaml": "session_server:\n  version_os: false\n"}],
                         indirect=True)
def test_server_version_without_os(server):
    """XEP-0092 §5: the administrator can keep the operating system undisclosed."""
    with raw_login(server, "alice", "r") as alice:
        r = raw_iq(alice, "v1", f"<query xmlns='{NS_VERSION}'/>", to="localhost")
        assert r.get("type") == "result", dump(r)
        query = r.find(q(NS_VERSION, "query"))
        assert query.findtext(q(NS_VERSION, "name")) == "xedge", dump(r)
        assert query.findtext(q(NS_VERSION, "version")) == xedge_version(), dump(r)
        assert query.find(q(NS_VERSION, "os")) is None, dump(r)
