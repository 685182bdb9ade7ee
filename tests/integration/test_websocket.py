"""XMPP over WebSocket (RFC 7395) on ws and wss listeners, native backend, with
a raw WebSocket client: the upgrade and its refusals, <open/>/<close/> framing,
chat with a TCP client, fragmentation, pings, and every protocol violation
answered with the close code RFC 6455 names."""
import struct

import pytest

from conftest import USERS
from rawxmpp import NS_CLIENT, NS_SASL, Raw, StreamClosed, q, stream_error_condition
from wsclient import NS_FRAMING, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, WS

WS_SERVER = [{"ws": True}]
MESSAGE, BODY = q(NS_CLIENT, "message"), q(NS_CLIENT, "body")
STREAM_ERROR = "{http://etherx.jabber.org/streams}error"


def ws_login(server, user, tls=False, resource="ws"):
    c = WS(server.wss_port if tls else server.ws_port, tls=tls).upgrade()
    c.login(user, USERS[user], resource)
    return c


@pytest.mark.parametrize("server", WS_SERVER, indirect=True)
@pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
def test_chat_between_websocket_and_tcp(server, tls):
    """A WebSocket user and a TCP user chat both ways; what the TCP user sends
    arrives as a self-contained message (xmlns='jabber:client')."""
    with ws_login(server, "alice", tls) as a, Raw(server.c2s_port) as b:
        assert a.jid == "alice@localhost/ws"
        b.login("bob", USERS["bob"], "tcp")
        a.send("<message xmlns='jabber:client' to='bob@localhost/tcp' type='chat'>"
               "<body>over websocket</body></message>")
        m = b.wait_for(lambda e: e.tag == MESSAGE)
        assert m.findtext(BODY) == "over websocket" and m.get("from") == "alice@localhost/ws"
        b.send("<message to='alice@localhost/ws' type='chat'><body>over tcp</body></message>")
        m = a.expect(MESSAGE)
        assert m.findtext(BODY) == "over tcp" and m.get("from") == "bob@localhost/tcp"


@pytest.mark.parametrize("server", WS_SERVER, indirect=True)
def test_open_features_and_close(server):
    """<open/> is answered with <open/> (id, from, version) and features that
    declare their stream prefix; <close/> with <close/> and a close frame 1000."""
    with WS(server.ws_port).upgrade() as c:
        opened, features = c.open()
        assert opened.get("from") == "localhost" and opened.get("version") == "1.0" and opened.get("id")
        mechs = [m.text for m in features.iter(q(NS_SASL, "mechanism"))]
        assert "PLAIN" in mechs and "SCRAM-SHA-256" in mechs      # ws counts as secured by the ingress
        assert features.find("{urn:ietf:params:xml:ns:xmpp-tls}starttls") is None
        c.send(f"<close xmlns='{NS_FRAMING}'/>")
        c.expect(q(NS_FRAMING, "close"))
        assert c.close_code() == 1000
        c.read_until_eof()


@pytest.mark.parametrize("server", WS_SERVER, indirect=True)
def test_stream_errors_still_apply(server):
    """A stanza before authentication gets the stream error RFC 6120 names,
    as a message of its own, then <close/>."""
    with WS(server.ws_port).upgrade() as c:
        c.open()
        c.send("<message xmlns='jabber:client' to='bob@localhost'><body>x</body></message>")
        err = c.expect(STREAM_ERROR)
        assert stream_error_condition(err) == "not-authorized"
        c.expect(q(NS_FRAMING, "close"))


@pytest.mark.parametrize("server", WS_SERVER, indirect=True)
def test_fragmented_message_and_ping(server):
    """A stanza split over three frames with a ping in between is assembled;
    the ping is answered with a pong carrying its payload."""
    with ws_login(server, "alice") as a, Raw(server.c2s_port) as b:
        b.login("bob", USERS["bob"], "tcp")
        parts = ["<message xmlns='jabber:client' to='bob@localhost/tcp'>", "<body>in three",
                 " pieces</body></message>"]
        a.frame(OP_TEXT, parts[0], fin=False)
        a.frame(OP_PING, b"are you there")
        assert a.next_frame() == (OP_PONG, b"are you there")
        a.frame(OP_CONT, parts[1], fin=False)
        a.frame(OP_CONT, parts[2], fin=True)
        m = b.wait_for(lambda e: e.tag == MESSAGE)
        assert m.findtext(BODY) == "in three pieces"


@pytest.mark.parametrize("server", WS_SERVER, indirect=True)
@pytest.mark.parametrize("req, status, header", [
    ({"path": "/other"}, 404, None),
    ({"protocol": None}, 400, None),
    ({"protocol": "mqtt"}, 400, None),
    ({"version": "8"}, 426, ("sec-websocket-version", "13")),
    ({"method": "POST"}, 405, ("allow", "GET")),
], ids=["path", "no-protocol", "other-protocol", "version", "method"])
def test_upgrade_refused(server, req, status, header):
    """A bad upgrade gets the HTTP status that says why, then the connection closes."""
    with WS(server.ws_port) as c:
        st, h = c.request(**req)
        assert st == status, (st, h)
        if header:
            assert h.get(header[0]) == header[1], h
        assert h.get("connection", "").lower() == "close"
        c.read_until_eof()
    server.wait_log("WebSocket upgrade refused")


@pytest.mark.parametrize("server", WS_SERVER, indirect=True)
@pytest.mark.parametrize("send, code", [
    (lambda c: c.frame(OP_TEXT, "<presence/>", masked=False), 1002),
    (lambda c: c.frame(OP_TEXT, "<presence/>", rsv=4), 1002),
    (lambda c: c.frame(OP_BINARY, b"<presence/>"), 1003),
    (lambda c: c.frame(OP_TEXT, b"<message>\xc3\x28</message>"), 1007),
    (lambda c: c.frame(OP_CONT, "<presence/>"), 1002),
    (lambda c: c.frame(OP_CLOSE, b"\x03"), 1002),
    (lambda c: c.frame(OP_PING, b"x" * 126), 1002),
    (lambda c: c.frame(OP_TEXT, "<message>" + "x" * 80000 + "</message>"), 1009),
], ids=["unmasked", "rsv", "binary", "utf8", "cont-first", "close-1-byte", "long-ping", "too-big"])
def test_protocol_violation_gets_its_close_code(server, send, code):
    """RFC 6455 §7.1.7: fail the connection with the code the violation names;
    another user is unaffected."""
    with WS(server.ws_port).upgrade() as c, ws_login(server, "bob") as other:
        c.open()
        send(c)
        assert c.close_code() == code
        c.read_until_eof()
        other.send("<iq xmlns='jabber:client' type='get' id='p1' to='localhost'>"
                   "<ping xmlns='urn:xmpp:ping'/></iq>")
        assert other.expect(q(NS_CLIENT, "iq")).get("type") == "result"


@pytest.mark.parametrize("server", WS_SERVER, indirect=True)
def test_client_close_frame_is_answered(server):
    """A close frame from the client is echoed and the session ends (the other
    user sees it go unavailable)."""
    server.roster_add("alice", "bob")
    server.roster_add("bob", "alice")
    with ws_login(server, "alice") as a, Raw(server.c2s_port) as b:
        b.login("bob", USERS["bob"], "tcp", presence=True)
        a.send("<presence xmlns='jabber:client'/>")
        b.wait_for(lambda e: e.tag == q(NS_CLIENT, "presence") and e.get("from") == "alice@localhost/ws")
        a.frame(OP_CLOSE, struct.pack("!H", 1000) + b"bye")
        assert a.close_code() == 1000
        a.read_until_eof()
        b.wait_for(lambda e: e.tag == q(NS_CLIENT, "presence") and e.get("type") == "unavailable")


@pytest.mark.parametrize("server", WS_SERVER, indirect=True)
def test_garbage_instead_of_http(server):
    """TLS or binary on the ws port: refused with 400 at once."""
    with WS(server.ws_port) as c:
        c.sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        st, _ = c.read_response()
        assert st == 400
        c.read_until_eof()
