"""XEP-0352 Client State Indication at the edge (issue 13): advertised after
authentication; while a client is inactive, presence and chat-state-only messages to it
are held, only the latest per sender kept, and they go out in order before the next
stanza that is not held, or on <active/>."""
import pytest

from conftest import USERS
from rawxmpp import NS_BIND, NS_CLIENT, NS_TLS, Raw, q

NS_CSI = "urn:xmpp:csi:0"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
PRESENCE, MESSAGE = q(NS_CLIENT, "presence"), q(NS_CLIENT, "message")


def login_seeing_features(user, port):
    c = Raw(port)
    feats = c.open_stream()
    assert feats.find(q(NS_TLS, "starttls")) is not None
    c.starttls()
    c.open_stream()
    el = c.auth(user, USERS[user], "PLAIN")
    assert el.tag.endswith("success")
    feats = c.open_stream()
    c.bind("csi")
    return c, feats


def body(el):
    return el.findtext(q(NS_CLIENT, "body"))


def status(el):
    return el.findtext(q(NS_CLIENT, "status"))


def chat_state(el):
    return next((child.tag.split("}")[1] for child in el if child.tag.startswith("{" + NS_CHATSTATES)), None)


def test_csi_holds_and_coalesces(buddies):
    server = buddies
    bob, feats = login_seeing_features("bob", server.c2s_port)
    alice = Raw(server.c2s_port)
    try:
        assert feats.find(q(NS_CSI, "csi")) is not None, "no <csi/> stream feature after authentication"
        assert feats.find(q(NS_BIND, "bind")) is not None
        bob.send("<presence/>")
        alice.login("alice", USERS["alice"], "csi", presence=True)
        bob.wait_for(lambda e: e.tag == PRESENCE and e.get("from") == alice.jid, 10)
        alice.wait_for(lambda e: e.tag == PRESENCE and e.get("from") == bob.jid, 10)

        bob.send(f"<inactive xmlns='{NS_CSI}'/>")
        # Ordering through bob's stream: a ping answered after the nonza was handled.
        assert bob.ping("after-inactive", timeout=10).get("type") == "result"
        for s in ("away-1", "away-2", "away-3"):
            alice.send(f"<presence><show>away</show><status>{s}</status></presence>")
        for cs in ("composing", "paused"):
            alice.send(f"<message to='{bob.jid}' type='chat'><{cs} xmlns='{NS_CHATSTATES}'/></message>")
        alice.send(f"<message to='{bob.jid}' type='chat'><body>real</body></message>")

        got = []
        while True:
            el = bob.next_item(10)
            got.append(el)
            if el.tag == MESSAGE and body(el) == "real":
                break
        from_alice = [e for e in got if e.get("from") == alice.jid]
        presences = [status(e) for e in from_alice if e.tag == PRESENCE]
        states = [chat_state(e) for e in from_alice if e.tag == MESSAGE and body(e) is None]
        assert presences == ["away-3"], f"held presence not coalesced to the latest: {presences}"
        assert states == ["paused"], f"held chat states not coalesced to the latest: {states}"
        assert from_alice[-1].tag == MESSAGE and body(from_alice[-1]) == "real", \
            "the real message came before what was held"

        # Still inactive: a new presence is held until <active/>.
        alice.send("<presence><status>back</status></presence>")
        assert alice.ping("sent", timeout=10).get("type") == "result"
        bob.send(f"<active xmlns='{NS_CSI}'/>")
        el = bob.wait_for(lambda e: e.tag == PRESENCE and e.get("from") == alice.jid, 10)
        assert status(el) == "back"
        # Active again: presence flows at once (no <active/> or message needed).
        alice.send("<presence><status>live</status></presence>")
        el = bob.wait_for(lambda e: e.tag == PRESENCE and e.get("from") == alice.jid, 10)
        assert status(el) == "live"
    finally:
        alice.close()
        bob.close()


def test_csi_unknown_element_is_a_stream_error(server):
    with Raw(server.c2s_port) as c:
        c.login("alice", USERS["alice"], "bad")
        c.send(f"<sleepy xmlns='{NS_CSI}'/>")
        assert c.expect_stream_error() == "unsupported-stanza-type"


def test_csi_before_authentication_is_refused(server):
    with Raw(server.c2s_port) as c:
        c.open_stream()
        c.starttls()
        c.open_stream()
        c.send(f"<inactive xmlns='{NS_CSI}'/>")
        assert c.expect_stream_error() in ("unsupported-stanza-type", "not-authorized")
