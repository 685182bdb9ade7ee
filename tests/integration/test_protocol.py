"""Exact wire behaviour of the edge, with a raw client (rawxmpp.Raw)."""
import base64
import os
import time

import pytest

import rawxmpp
from conftest import USERS
from rawxmpp import (FEATURES, NS_BIND, NS_CLIENT, NS_SASL, NS_STREAM, NS_STREAM_ERR, NS_TLS,
                     Raw, dump, header, q, sasl_condition)

MECHS_AFTER_TLS = {"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}


def mechanisms(feats):
    m = feats.find(q(NS_SASL, "mechanisms"))
    return [] if m is None else [x.text for x in m.findall(q(NS_SASL, "mechanism"))]


def child_tags(el):
    return [c.tag for c in el]


def login(server, user, resource, mech="PLAIN", direct_tls=False, presence=True):
    c = Raw(server.tls_port if direct_tls else server.c2s_port, direct_tls=direct_tls)
    c.login(user, USERS[user], resource, mech=mech, presence=presence)
    return c


# ---- features ----------------------------------------------------------------------

def test_only_starttls_offered_before_tls(server):
    with Raw(server.c2s_port) as c:
        feats = c.open_stream()
        assert child_tags(feats) == [q(NS_TLS, "starttls")], dump(feats)
        assert child_tags(feats[0]) == [q(NS_TLS, "required")], dump(feats)
        assert b"PLAIN" not in c.raw and b"mechanism" not in c.raw, c.raw
        # The server's stream header answers ours.
        h = c.stream_header
        assert h.get("from") == "localhost" and h.get("version") == "1.0" and h.get("id"), h.attrib


@pytest.mark.parametrize("direct_tls", [False, True], ids=["starttls", "direct-tls"])
def test_mechanisms_after_tls(server, direct_tls):
    with Raw(server.tls_port if direct_tls else server.c2s_port, direct_tls=direct_tls) as c:
        if not direct_tls:
            c.open_stream()
            c.starttls()
        feats = c.open_stream()
        assert set(mechanisms(feats)) == MECHS_AFTER_TLS, dump(feats)
        assert len(mechanisms(feats)) == 3, dump(feats)
        assert feats.find(q(NS_TLS, "starttls")) is None, "STARTTLS offered again over TLS"
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3")


def test_direct_tls_without_sni(server):
    """Some clients send no SNI: the stream header's 'to' picks the domain."""
    c = Raw(server.tls_port, direct_tls=True, sni=None)
    with c:
        assert c.login("alice", USERS["alice"], "nosni") == "alice@localhost/nosni"
        r = c.ping("nosni")
        assert r.get("type") == "result"


@pytest.mark.parametrize("server", [{"tls_require": False}], indirect=True)
def test_plaintext_allowed_offers_scram_but_never_plain(server):
    with Raw(server.c2s_port) as c:
        feats = c.open_stream()
        assert set(mechanisms(feats)) == {"SCRAM-SHA-256", "SCRAM-SHA-1"}, dump(feats)
        assert feats.find(q(NS_TLS, "starttls")) is not None
        # PLAIN asked for anyway: refused without looking at the password.
        el = c.auth_plain("alice", USERS["alice"])
        assert el.tag == q(NS_SASL, "failure") and sasl_condition(el) == "encryption-required", \
            dump(el)
        # SCRAM works in the clear when the operator allows it.
        el = c.auth_scram("alice", USERS["alice"], "sha256")
        assert el.tag == q(NS_SASL, "success"), dump(el)
        feats = c.open_stream()
        assert feats.find(q(NS_BIND, "bind")) is not None
        assert c.bind("plain") == "alice@localhost/plain"


# ---- SASL ---------------------------------------------------------------------------

@pytest.mark.parametrize("mech", ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"])
@pytest.mark.parametrize("who", ["wrong-password", "unknown-user"])
def test_bad_credentials_not_authorized(server, mech, who):
    user, password = ("alice", "wrong") if who == "wrong-password" else ("mallory", "whatever")
    with Raw(server.c2s_port) as c:
        c.open_stream()
        c.starttls()
        c.open_stream()
        el = c.auth(user, password, mech)
        assert el.tag == q(NS_SASL, "failure"), dump(el)
        assert sasl_condition(el) == "not-authorized", dump(el)
        # The stream survives one failure: the right password still works.
        el = c.auth("alice", USERS["alice"], mech)
        assert el.tag == q(NS_SASL, "success"), dump(el)
    server.wait_log(r'msg="authentication failed".*user=' + user)


def test_scram_unknown_user_looks_like_known_user(server):
    """An unknown user gets a SCRAM challenge like a known one (no account probing)."""
    with Raw(server.c2s_port) as c:
        c.open_stream()
        c.starttls()
        c.open_stream()
        c.send(f"<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-256'>"
               f"{base64.b64encode(b'n,,n=mallory,r=abcdefghijklmnop').decode()}</auth>")
        el = c.next_item()
        assert el.tag == q(NS_SASL, "challenge"), \
            f"unknown user answered differently from a known one: {dump(el)}"


def test_too_many_auth_failures_close_the_stream(server):
    with Raw(server.c2s_port) as c:
        c.open_stream()
        c.starttls()
        c.open_stream()
        for i in range(2):
            el = c.auth_plain("alice", f"wrong{i}")
            assert sasl_condition(el) == "not-authorized", dump(el)
        el = c.auth_plain("alice", "wrong-again")
        assert sasl_condition(el) == "not-authorized", dump(el)
        c.read_until_eof()
        assert c.stream_ended, f"no </stream:stream>: {c.raw!r}"
        assert c.clean_close, "TLS closed without close_notify"


def test_plain_with_foreign_authzid_refused(server):
    with Raw(server.c2s_port) as c:
        c.open_stream()
        c.starttls()
        c.open_stream()
        el = c.auth_plain("alice", USERS["alice"], authzid="bob@localhost")
        assert el.tag == q(NS_SASL, "failure"), \
            f"alice authenticated as bob via the PLAIN authzid: {dump(el)}"


# ---- stream header ----------------------------------------------------------------

@pytest.mark.parametrize("to", ["example.org", "localhost.evil", ""])
def test_unknown_domain_host_unknown(server, to):
    with Raw(server.c2s_port) as c:
        if to:
            c.send(header(to))
        else:   # no 'to' at all
            c.send(f"<?xml version='1.0'?><stream:stream xmlns='{NS_CLIENT}' "
                   f"xmlns:stream='{NS_STREAM}' version='1.0'>")
        cond = c.expect_stream_error()
        assert cond == "host-unknown", c.raw
        assert c.stream_header is not None, "stream error without a stream header first"
        assert b"<stream:features" not in c.raw


def test_bad_namespace(server):
    with Raw(server.c2s_port) as c:
        c.send(f"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
               f"xmlns:stream='{NS_STREAM}' to='localhost' version='1.0'>")
        assert c.expect_stream_error() == "invalid-namespace", c.raw


# ---- stanza rules ------------------------------------------------------------------

@pytest.mark.parametrize("spoof", ["eve@localhost/x", "alice@localhost/other", "bob@localhost",
                                   "localhost", "alice@example.org/spoofed"])
def test_spoofed_from_is_a_stream_error_and_never_delivered(server, spoof):
    bob = login(server, "bob", "raw-bob")
    alice = login(server, "alice", "raw-alice")
    try:
        spoof_body = "SPOOFED-" + os.urandom(4).hex()
        alice.send(f"<message from='{spoof}' to='bob@localhost/raw-bob' type='chat'>"
                   f"<body>{spoof_body}</body></message>")
        assert alice.expect_stream_error() == "invalid-from", alice.raw
        assert alice.clean_close, "TLS closed without close_notify"

        # Positive control: a legitimate message on a new connection arrives, and
        # the spoofed one never did (nothing arrives out of order on one stream).
        alice2 = login(server, "alice", "raw-alice2")
        ok_body = "LEGIT-" + os.urandom(4).hex()
        alice2.send(f"<message to='bob@localhost/raw-bob' type='chat'><body>{ok_body}</body>"
                    "</message>")
        m = bob.wait_for(lambda e: e.tag == q(NS_CLIENT, "message") and
                         e.findtext(q(NS_CLIENT, "body")) == ok_body)
        assert m.get("from") == "alice@localhost/raw-alice2"
        assert spoof_body.encode() not in bob.raw, "bob received the spoofed message"
        alice2.close()
    finally:
        alice.close()
        bob.close()
    server.wait_log(r'msg="stream error".*cond=invalid-from')


@pytest.mark.parametrize("own", ["full", "bare"])
def test_own_from_is_accepted_and_stamped(server, own):
    bob = login(server, "bob", "raw-bob")
    alice = login(server, "alice", "raw-alice")
    try:
        frm = "alice@localhost/raw-alice" if own == "full" else "Alice@LOCALHOST"
        body = "own-from-" + os.urandom(4).hex()
        alice.send(f"<message from='{frm}' to='bob@localhost/raw-bob' type='chat'>"
                   f"<body>{body}</body></message>")
        m = bob.wait_for(lambda e: e.findtext(q(NS_CLIENT, "body")) == body)
        assert m.get("from") == "alice@localhost/raw-alice", dump(m)
        # Only one from attribute went out (no duplicate attribute).
        assert bob.raw.count(b"from=") >= 1
        # alice's stream is still fine.
        r = alice.ping("after-own-from")
        assert r.get("type") == "result", dump(r)
    finally:
        alice.close()
        bob.close()


def test_bytes_pipelined_after_starttls_are_discarded(server):
    with Raw(server.c2s_port) as c:
        c.open_stream()
        injected = (f"<iq type='get' id='injected1'><ping xmlns='urn:xmpp:ping'/></iq>"
                    f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>AGFsaWNlAHdyb25n</auth>").encode()
        c.starttls(extra=injected)       # one sendall: <starttls/> + injected bytes
        # The TLS handshake succeeded (the plaintext tail was not fed to TLS), and
        # the new stream starts clean: features, SASL, bind, ping.
        feats = c.open_stream()
        assert set(mechanisms(feats)) == MECHS_AFTER_TLS, dump(feats)
        el = c.auth_plain("alice", USERS["alice"])
        assert el.tag == q(NS_SASL, "success"), dump(el)
        c.open_stream()
        c.bind("pipelined")
        r = c.ping("after-tls")
        assert r.get("type") == "result", dump(r)
        assert b"injected1" not in c.raw, c.raw
        assert not [e for e in getattr(c, "seen", []) if e.tag == q(NS_SASL, "failure")]


def test_client_pipelining_is_buffered_not_dropped(server):
    """Bytes that arrive before the server is ready are processed in order."""
    with Raw(server.c2s_port) as c:
        c.open_stream()
        c.starttls()
        plain = base64.b64encode(f"\0alice\0{USERS['alice']}".encode()).decode()
        # header + auth in one write; then header + bind + ping + message in another.
        c.reset()
        c.send(header() + f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{plain}</auth>")
        c.expect(FEATURES)
        el = c.next_item()
        assert el.tag == q(NS_SASL, "success"), dump(el)
        c.reset()
        c.send(header() + f"<iq type='set' id='b1'><bind xmlns='{NS_BIND}'>"
               "<resource>pipe</resource></bind></iq>"
               "<presence/><iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
        c.expect(FEATURES)
        b = c.wait_for(lambda e: e.get("id") == "b1")
        assert b.get("type") == "result", dump(b)
        p = c.wait_for(lambda e: e.get("id") == "p1")
        assert p.get("type") == "result", dump(p)


@pytest.mark.parametrize("where", ["before-tls", "in-session"])
@pytest.mark.parametrize("xml", [
    pytest.param("<!-- x -->", id="comment"),
    pytest.param("<?foo bar?>", id="processing-instruction"),
    pytest.param("<message to='bob@localhost'><!-- c --><body>x</body></message>",
                 id="comment-inside-stanza"),
])
def test_restricted_xml(server, where, xml):
    if where == "before-tls":
        c = Raw(server.c2s_port)
        c.open_stream()
    else:
        c = login(server, "alice", "restricted")
    with c:
        c.send(xml)
        assert c.expect_stream_error() == "restricted-xml", c.raw


@pytest.mark.parametrize("where", ["before-tls", "after-tls"])
def test_stanza_before_auth_not_authorized(server, where):
    with Raw(server.c2s_port) as c:
        c.open_stream()
        if where == "after-tls":
            c.starttls()
            c.open_stream()
        c.send("<message to='bob@localhost' type='chat'><body>early</body></message>")
        assert c.expect_stream_error() == "not-authorized", c.raw


def test_stanza_before_bind_not_authorized(server):
    with Raw(server.c2s_port) as c:
        c.open_stream()
        c.starttls()
        c.open_stream()
        assert c.auth_plain("alice", USERS["alice"]).tag == q(NS_SASL, "success")
        c.open_stream()
        c.send("<message to='bob@localhost' type='chat'><body>unbound</body></message>")
        assert c.expect_stream_error() == "not-authorized", c.raw


def test_whitespace_keepalive(server):
    with login(server, "alice", "ws") as c:
        for ws in (b" ", b"\n", b"\r\n\t ", b" " * 100):
            c.send(ws)
            time.sleep(0.05)
        r = c.ping("after-ws")
        assert r.get("type") == "result", dump(r)
        # Whitespace between stanzas in one packet is fine too.
        c.send("  <iq type='get' id='ws2'><ping xmlns='urn:xmpp:ping'/></iq>\n\n"
               "<iq type='get' id='ws3'><ping xmlns='urn:xmpp:ping'/></iq> ")
        assert c.wait_for(lambda e: e.get("id") == "ws2").get("type") == "result"
        assert c.wait_for(lambda e: e.get("id") == "ws3").get("type") == "result"
        assert not c.eof


# ---- closing -------------------------------------------------------------------------

def test_close_before_tls(server):
    with Raw(server.c2s_port) as c:
        c.open_stream()
        c.end_stream()
        items = c.read_until_eof()
        assert items == [], [dump(e) for e in items]
        assert c.stream_ended, f"no </stream:stream> back: {c.raw!r}"


@pytest.mark.parametrize("direct_tls", [False, True], ids=["starttls", "direct-tls"])
def test_close_in_session_sends_close_notify(server, direct_tls):
    c = login(server, "alice", "closer", direct_tls=direct_tls)
    with c:
        c.end_stream()
        c.read_until_eof()
        assert c.stream_ended, f"no </stream:stream> back: {c.raw!r}"
        assert c.clean_close is True, "TCP closed without a TLS close_notify"
    # The session is gone from the server.
    deadline = time.monotonic() + 5
    while any(l.startswith("alice@localhost/closer") for l in server.sessions()):
        assert time.monotonic() < deadline, server.sessions()
        time.sleep(0.1)


def test_shutdown_tells_clients(server):
    """SIGTERM: connected clients get <system-shutdown/> and a clean close."""
    c = login(server, "alice", "shutdown")
    with c:
        server.edge.terminate()
        cond = c.expect_stream_error(timeout=10)
        assert cond == "system-shutdown", c.raw
        assert c.clean_close is True, "TCP closed without a TLS close_notify"
    problems = server.edge.stop()
    assert problems == [], problems


# ---- odd but legal input --------------------------------------------------------------

def test_stanza_split_across_many_writes(server):
    bob = login(server, "bob", "split-bob")
    alice = login(server, "alice", "split-alice")
    try:
        body = "split-é-🚀-" + os.urandom(3).hex()
        data = (f"<message to='bob@localhost/split-bob' type='chat'><body>{body}</body>"
                "</message>").encode()
        for i in range(len(data)):     # one byte per TLS record (UTF-8 split mid-char)
            alice.send(data[i:i + 1])
        m = bob.wait_for(lambda e: e.findtext(q(NS_CLIENT, "body")) == body)
        assert m.get("from") == "alice@localhost/split-alice"
    finally:
        alice.close()
        bob.close()


def test_iq_without_id_is_bad_request(server):
    with login(server, "alice", "noid") as c:
        c.send("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        el = c.wait_for(lambda e: e.tag == q(NS_CLIENT, "iq"))
        assert el.tag == q(NS_CLIENT, "iq") and el.get("type") == "error", dump(el)
        assert el.find(f"{q(NS_CLIENT, 'error')}/{{urn:ietf:params:xml:ns:xmpp-stanzas}}"
                       "bad-request") is not None, dump(el)
        r = c.ping("still-alive")
        assert r.get("type") == "result"


def test_not_well_formed(server):
    with login(server, "alice", "nwf") as c:
        c.send("<message to='bob@localhost'><body>x</bodi></message>")
        assert c.expect_stream_error() == "not-well-formed", c.raw


def test_unknown_top_level_element(server):
    with login(server, "alice", "unk") as c:
        c.send("<foo xmlns='urn:example:foo'/>")
        assert c.expect_stream_error() == "unsupported-stanza-type", c.raw


# ---- SASL and negotiation edge cases --------------------------------------------------------

def tls_stream(server):
    c = Raw(server.c2s_port)
    c.open_stream()
    c.starttls()
    c.open_stream()
    return c


@pytest.mark.parametrize("auth,cond", [
    (f"<auth xmlns='{NS_SASL}' mechanism='DIGEST-MD5'/>", "invalid-mechanism"),
    (f"<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-256-PLUS'>biwsbj1hbGljZSxyPXh5eg==</auth>",
     "invalid-mechanism"),
    (f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>!!!not base64!!!</auth>", "incorrect-encoding"),
    (f"<auth xmlns='{NS_SASL}'>AGFsaWNlAHg=</auth>", "invalid-mechanism"),
])
def test_sasl_bad_auth_elements(server, auth, cond):
    with tls_stream(server) as c:
        c.send(auth)
        el = c.next_item()
        assert el.tag == q(NS_SASL, "failure") and sasl_condition(el) == cond, dump(el)


def test_sasl_abort(server):
    with tls_stream(server) as c:
        gs2 = base64.b64encode(b"n,,n=alice,r=0123456789abcdef").decode()
        c.send(f"<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-1'>{gs2}</auth>")
        assert c.next_item().tag == q(NS_SASL, "challenge")
        c.send(f"<abort xmlns='{NS_SASL}'/>")
        el = c.next_item()
        assert el.tag == q(NS_SASL, "failure") and sasl_condition(el) == "aborted", dump(el)
        el = c.auth("alice", USERS["alice"], "SCRAM-SHA-1")
        assert el.tag == q(NS_SASL, "success"), dump(el)


@pytest.mark.parametrize("gs2", ["p=tls-unique,,", "y,,"])
def test_scram_channel_binding_flags(server, gs2):
    """'p=' asks for binding the server did not offer (must fail); 'y' says the client
    could bind but thinks the server cannot (acceptable: the server offered no -PLUS)."""
    with tls_stream(server) as c:
        first = base64.b64encode(f"{gs2}n=alice,r=0123456789abcdef".encode()).decode()
        c.send(f"<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-256'>{first}</auth>")
        el = c.next_item()
        if gs2.startswith("p="):
            assert el.tag == q(NS_SASL, "failure"), \
                f"channel binding requested on a non-PLUS mechanism was accepted: {dump(el)}"
        else:
            assert el.tag == q(NS_SASL, "challenge"), dump(el)


def test_scram_wrong_nonce_in_final_message(server):
    with tls_stream(server) as c:
        first_bare = "n=alice,r=clientnonce123456"
        c.send(f"<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-256'>"
               f"{base64.b64encode(('n,,' + first_bare).encode()).decode()}</auth>")
        ch = c.next_item()
        assert ch.tag == q(NS_SASL, "challenge"), dump(ch)
        final = "c=biws,r=somebodyelsesnonce,p=" + base64.b64encode(b"x" * 32).decode()
        c.send(f"<response xmlns='{NS_SASL}'>{base64.b64encode(final.encode()).decode()}</response>")
        el = c.next_item()
        assert el.tag == q(NS_SASL, "failure"), dump(el)


def test_starttls_twice_fails_and_closes(server):
    with tls_stream(server) as c:
        c.send(f"<starttls xmlns='{NS_TLS}'/>")
        items = c.read_until_eof()
        assert any(e.tag == q(NS_TLS, "failure") or e.tag == q(NS_STREAM, "error")
                   for e in items), c.raw
        assert b"<proceed" not in c.raw


def test_bind_twice_and_long_resource(server):
    with tls_stream(server) as c:
        assert c.auth_plain("alice", USERS["alice"]).tag == q(NS_SASL, "success")
        c.open_stream()
        # Too long (RFC 7622: 1023 bytes at most): bad-request, the stream survives.
        c.send(f"<iq type='set' id='long'><bind xmlns='{NS_BIND}'><resource>{'r' * 1100}"
               "</resource></bind></iq>")
        el = c.wait_for(lambda e: e.get("id") == "long")
        assert el.get("type") == "error", dump(el)
        assert c.bind("first") == "alice@localhost/first"
        c.send(f"<iq type='set' id='again'><bind xmlns='{NS_BIND}'><resource>second"
               "</resource></bind></iq>")
        el = c.wait_for(lambda e: e.get("id") == "again")
        assert el.get("type") == "error", dump(el)
        r = c.ping("still-bound")
        assert r.get("type") == "result"
        assert r.get("to") in (None, "alice@localhost/first"), dump(r)


def test_doctype_before_stream_header(server):
    with Raw(server.c2s_port) as c:
        c.send("<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY x 'y'>]>" + header()[21:])
        items = c.read_until_eof()
        assert b"<stream:features" not in c.raw, c.raw
        errs = [e for e in items if e.tag == q(NS_STREAM, "error")]
        assert errs and rawxmpp.stream_error_condition(errs[0]) in (
            "restricted-xml", "not-well-formed"), c.raw


def test_invalid_utf8_is_not_well_formed_and_not_delivered(server):
    bob = login(server, "bob", "u8-bob")
    alice = login(server, "alice", "u8-alice")
    try:
        alice.send(b"<message to='bob@localhost/u8-bob' type='chat'><body>bad \xff\xfe "
                   b"UTF8MARK</body></message>")
        assert alice.expect_stream_error() == "not-well-formed", alice.raw
        r = bob.ping("after-bad-utf8")
        assert r.get("type") == "result"
        assert b"UTF8MARK" not in bob.raw
    finally:
        alice.close()
        bob.close()


def test_prefixed_stream_element(server):
    """Any prefix may name the stream namespace (XML namespaces); closing uses it too."""
    with Raw(server.c2s_port) as c:
        c.send(f"<?xml version='1.0'?><x:stream xmlns='{NS_CLIENT}' xmlns:x='{NS_STREAM}' "
               "to='localhost' version='1.0'>")
        feats = c.expect(FEATURES)
        assert feats.find(q(NS_TLS, "starttls")) is not None
        c.send("</x:stream>")
        items = c.read_until_eof()
        assert c.stream_ended, c.raw
        assert not any(e.tag == q(NS_STREAM, "error") for e in items), c.raw


def test_client_stream_error_ends_the_stream_quietly(server):
    """RFC 6120 §4.9: a client may end its stream with a stream error (slixmpp does on a
    parse error).  The server closes; it does not answer with a stream error of its own."""
    with login(server, "alice", "se") as c:
        c.send(f"<stream:error><undefined-condition xmlns='{NS_STREAM_ERR}'/></stream:error>"
               "</stream:stream>")
        items = c.read_until_eof()
        assert c.stream_ended, c.raw
        assert not [e for e in items if e.tag == q(NS_STREAM, "error")], \
            f"server answered the client's stream error with one of its own: {c.raw[-300:]!r}"
