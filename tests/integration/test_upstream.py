"""Upstream mode: xedge in front of real XMPP servers (Prosody 0.12 and ejabberd
23.01 from Debian, plaintext on loopback), with real clients through it —
slixmpp and libstrophe over STARTTLS and Direct TLS, xmpp.js over WebSocket —
PROXY headers towards ejabberd, HAProxy in front of xedge, and the two streams'
lifetimes tied."""
import asyncio
import os
import socket
import time

import pytest

from conftest import USERS, _start_server
from peers import ejabberd, ejabberd_module, haproxy, prosody, upstream, xmppjs  # noqa: F401
from rawxmpp import FEATURES, NS_CLIENT, NS_SASL, NS_TLS, Raw, StreamClosed, dump, q
from slixclient import Client, close_all, run
from test_clients import Strophe, strophe_chat  # noqa: F401

MESSAGE, BODY = q(NS_CLIENT, "message"), q(NS_CLIENT, "body")


@pytest.fixture
def edge_for(request, tmp_path, cert):
    """A factory: edge_for(port, **ServerOptions) -> a running xedge in upstream mode
    relaying to 127.0.0.1:port (stopped, and its exit checked, at teardown)."""
    started = []

    def make(port, **opts):
        d = tmp_path / f"edge{len(started)}"
        d.mkdir()
        srv = _start_server(request, d, d, cert, {"mode": "upstream", "upstream": f"127.0.0.1:{port}",
                                                  "ws": True, **opts})
        started.append(srv)
        return srv
    yield make
    problems = []
    for srv in started:
        problems += srv.stop()
    if problems:
        pytest.fail("xedge shutdown:\n  " + "\n  ".join(problems), pytrace=False)


def users_of(up):
    """Two fresh accounts on the upstream (Prosody is fresh per test; ejabberd is shared)."""
    if up.name == "prosody":
        return (up.jid("alice"), USERS["alice"]), (up.jid("bob"), USERS["bob"])
    return up.new_user("a"), up.new_user("b")


async def chat(port, a_cred, b_cred, direct_tls):
    a = Client(a_cred[0] + "/sa", a_cred[1])
    b = Client(b_cred[0] + "/sb", b_cred[1])
    try:
        await a.login(port, direct_tls=direct_tls)
        await b.login(port, direct_tls=direct_tls)
        for c in (a, b):
            assert c.tls_version() is not None, "the client's stream must be encrypted"
            assert not c.mechanism.endswith("-PLUS"), c.mechanism
        hello = f"hello-{os.urandom(4).hex()}"
        a.send_message(mto=b_cred[0] + "/sb", mbody=hello, mtype="chat")
        m = await b.next_message(body=hello, timeout=10)
        assert m["from"] == a_cred[0] + "/sa"
        back = f"back-{os.urandom(4).hex()}"
        b.send_message(mto=m["from"], mbody=back, mtype="chat")
        m = await a.next_message(body=back, timeout=10)
        assert m["from"] == b_cred[0] + "/sb"
    finally:
        await close_all(a, b)


@pytest.mark.parametrize("direct_tls", [False, True], ids=["starttls", "direct-tls"])
def test_slixmpp_chats_through_the_edge(upstream, edge_for, direct_tls):
    edge = edge_for(upstream.c2s_port)
    a, b = users_of(upstream)
    run(chat(edge.tls_port if direct_tls else edge.c2s_port, a, b, direct_tls), 60)
    edge.wait_log("authenticated by the upstream", count=2)


@pytest.mark.parametrize("mode", ["starttls", "directtls"])
def test_libstrophe_chats_through_the_edge(upstream, edge_for, strophe_chat, tmp_path, mode):
    edge = edge_for(upstream.c2s_port)
    (ja, pa), (jb, pb) = users_of(upstream)
    port = edge.c2s_port if mode == "starttls" else edge.tls_port
    a = Strophe(strophe_chat, ja + "/strophe-a", pa, port, mode, tmp_path / "a.err")
    b = Strophe(strophe_chat, jb + "/strophe-b", pb, port, mode, tmp_path / "b.err")
    try:
        fa, sa = a.ready()
        fb, sb = b.ready()
        assert sa == sb == "secured=1"
        body = f"via strophe {os.urandom(3).hex()} <&>"
        a.send(fb, body)
        frm, _ = b.recv(body)
        assert frm == fa
        assert a.quit() == 0, a.stderr()
        assert b.quit() == 0, b.stderr()
    finally:
        a.kill()
        b.kill()


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_xmppjs_over_websocket_through_the_edge(upstream, edge_for, xmppjs, cert, scheme):
    """xmpp.js over ws/wss to the edge; the upstream is plain c2s; a slixmpp user on
    the edge's STARTTLS port answers."""
    edge = edge_for(upstream.c2s_port)
    (ja, pa), (jb, pb) = users_of(upstream)
    url = (f"ws://127.0.0.1:{edge.ws_port}/xmpp-websocket" if scheme == "ws"
           else f"wss://localhost:{edge.wss_port}/xmpp-websocket")
    body = f"from-xmppjs-{os.urandom(4).hex()}"

    async def partner():
        b = Client(jb + "/slix", pb)
        try:
            await b.login(edge.c2s_port)
            js = xmppjs.start(url, ja.split("@")[0], pa, ca_file=cert[0], resource="js",
                              to=jb + "/slix", body=body, expect_body="pong " + body)
            m = await b.next_message(body=body, timeout=20)
            assert str(m["from"]) == ja + "/js"
            b.send_message(mto=m["from"], mbody="pong " + body, mtype="chat")
            return await asyncio.get_running_loop().run_in_executor(None, js.result)
        finally:
            await close_all(b)
    r = run(partner(), 60)
    assert r["ok"], r
    assert r["received"]["body"] == "pong " + body


@pytest.mark.parametrize("server", [{"ws": True}], indirect=True)
@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_xmppjs_over_websocket_native(server, xmppjs, cert, scheme):
    """xmpp.js against the native backend (embedded session server), answered by a raw
    TCP client."""
    url = (f"ws://127.0.0.1:{server.ws_port}/xmpp-websocket" if scheme == "ws"
           else f"wss://localhost:{server.wss_port}/xmpp-websocket")
    body = f"native-{os.urandom(4).hex()}"
    with Raw(server.c2s_port) as b:
        b.login("bob", USERS["bob"], "raw")
        js = xmppjs.start(url, "alice", USERS["alice"], ca_file=cert[0], resource="js",
                          to="bob@localhost/raw", body=body, expect_body="pong")
        m = b.wait_for(lambda e: e.tag == MESSAGE and e.findtext(BODY) == body, timeout=20)
        assert m.get("from") == "alice@localhost/js"
        b.send("<message to='alice@localhost/js' type='chat'><body>pong</body></message>")
        r = js.result()
    assert r["ok"], r


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_ejabberd_records_the_client_address(ejabberd, edge_for, version):
    """backend.proxy_protocol: ejabberd's use_proxy_protocol listener records the
    address of the client, not the edge's."""
    edge = edge_for(ejabberd.proxy_port, upstream_proxy=version)
    jid, pw = ejabberd.new_user("p")
    with Raw(edge.c2s_port, source="127.0.0.77") as c:
        bound = c.login(jid.split("@")[0], pw, "px")
        assert ejabberd.session_ip(bound) == "127.0.0.77"


def test_haproxy_in_front_of_edge_in_front_of_ejabberd(ejabberd, edge_for, haproxy):
    """client (127.0.0.66) -> HAProxy send-proxy-v2 -> xedge (proxy_protocol listener,
    upstream PROXY v2) -> ejabberd: ejabberd still sees 127.0.0.66."""
    edge = edge_for(ejabberd.proxy_port, upstream_proxy="v2", proxy_protocol=True)
    h = haproxy(edge.c2s_port, proxy="v2")
    jid, pw = ejabberd.new_user("h")
    with Raw(h.port, source="127.0.0.66") as c:
        bound = c.login(jid.split("@")[0], pw, "ha")
        assert ejabberd.session_ip(bound) == "127.0.0.66"
    edge.wait_log(r"PROXY header.*client=127\.0\.0\.66")


@pytest.mark.parametrize("proxy", ["v2", "v1"])
def test_haproxy_in_front_of_native_edge(request, tmp_path, sockdir, cert, haproxy, proxy):
    """HAProxy send-proxy(-v2) -> xedge (native): the session server records the
    client's address."""
    srv = _start_server(request, tmp_path, sockdir, cert, {"proxy_protocol": True})
    try:
        srv.add_user("alice")
        h = haproxy(srv.c2s_port, proxy=proxy)
        with Raw(h.port, source="127.0.0.65") as c:
            c.login("alice", USERS["alice"], "hp")
            line = [l for l in srv.sessions() if l.startswith("alice@localhost/hp ")]
            assert line and line[0].split()[1] == "127.0.0.65", srv.sessions()
    finally:
        problems = srv.stop()
    assert not problems, problems


def test_upstream_going_away_ends_the_client_stream(prosody, edge_for):
    """The upstream stops: the client is told (its stream error or
    internal-server-error) and its connection closes."""
    edge = edge_for(prosody.c2s_port)
    with Raw(edge.c2s_port) as c:
        c.login("alice", USERS["alice"], "gone")
        prosody.stop()
        el = c.wait_for(lambda e: e.tag == "{http://etherx.jabber.org/streams}error", timeout=20)
        c.read_until_eof(timeout=10)
    assert el is not None


def test_client_leaving_ends_the_upstream_session(ejabberd, edge_for):
    edge = edge_for(ejabberd.c2s_port)
    jid, pw = ejabberd.new_user("l")
    with Raw(edge.c2s_port) as c:
        bound = c.login(jid.split("@")[0], pw, "leave")
        assert ejabberd.session_ip(bound) == "127.0.0.1"
    deadline = time.monotonic() + 30       # generous: CI machines are loaded
    while any(bound in str(x) for x in ejabberd.sessions()):
        assert time.monotonic() < deadline, f"{bound} still has a session on ejabberd: {ejabberd.sessions()}"
        time.sleep(0.05)


def test_limits_are_enforced_at_the_edge(prosody, edge_for):
    """A stanza over max_stanza_bytes never reaches the upstream: the edge answers
    with policy-violation itself."""
    edge = edge_for(prosody.c2s_port, max_stanza_bytes=16384)
    with Raw(edge.c2s_port) as c:
        c.login("alice", USERS["alice"], "big")
        c.send("<message to='bob@localhost'><body>" + "x" * 20000 + "</body></message>")
        err = c.expect_stream_error()
        assert err == "policy-violation", err
    edge.wait_log("stream error.*policy-violation")


def test_unreachable_upstream(edge_for):
    """Nothing listens upstream: the secured client gets internal-server-error, not a hang."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    edge = edge_for(port)
    with Raw(edge.tls_port, direct_tls=True) as c:
        c.send(f"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
               f"xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>")
        assert c.expect_stream_error(timeout=10) == "internal-server-error"
    edge.wait_log("upstream server unreachable")


def test_starttls_required_and_plus_mechanisms_filtered(prosody, edge_for):
    """Before TLS the edge alone answers (STARTTLS required, nothing relayed); after
    it the upstream's features arrive without <starttls/> or any -PLUS mechanism."""
    edge = edge_for(prosody.c2s_port)
    with Raw(edge.c2s_port) as c:
        feats = c.open_stream()
        assert feats.find(q(NS_TLS, "starttls")) is not None, dump(feats)
        assert feats.find(q(NS_SASL, "mechanisms")) is None, dump(feats)
        c.starttls()
        feats = c.open_stream()
        assert feats.find(q(NS_TLS, "starttls")) is None, dump(feats)
        mechs = [m.text for m in feats.iter(q(NS_SASL, "mechanism"))]
        assert mechs and not [m for m in mechs if m.endswith("-PLUS")], mechs
