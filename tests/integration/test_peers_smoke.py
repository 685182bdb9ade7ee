"""The real-peer fixtures of peers.py, each on its own (no xedge involved): Prosody and
ejabberd as plaintext upstreams with slixmpp clients, ejabberd's PROXY protocol
listener, HAProxy's send-proxy / send-proxy-v2, and xmpp.js over TCP and WebSocket."""
import os
import socket
import time

import pytest

from conftest import USERS
from peers import (ProxyCapture, ejabberd, ejabberd_module, haproxy, plain_login,  # noqa: F401
                   prosody, proxy_v1_header, proxy_v2_header, slix_login_plain,
                   slix_plain_client, upstream, xmppjs)
from rawxmpp import NS_CLIENT, Raw, q
from rawxmpp import header as rawxmpp_header
from slixclient import close_all, run


def body(tag):
    return f"{tag}-{os.urandom(4).hex()}"


async def slix_chat(port, a_jid, a_pw, b_jid, b_pw):
    """alice and bob log in over plaintext (PLAIN, no TLS); bob -> alice -> bob."""
    a = slix_plain_client(a_jid, a_pw, mech="PLAIN")
    b = slix_plain_client(b_jid, b_pw, mech="PLAIN")
    try:
        await slix_login_plain(a, port)
        await slix_login_plain(b, port)
        for c in (a, b):
            assert c.tls_version() is None, "expected a plaintext stream"
            assert c.sent_mechanisms == ["PLAIN"], c.sent_mechanisms
        hello, answer = body("hello"), body("answer")
        b.send_message(mto=a.boundjid.bare, mbody=hello, mtype="chat")
        m = await a.next_message(body=hello)
        assert m["from"].bare == b.boundjid.bare
        a.send_message(mto=m["from"], mbody=answer, mtype="chat")
        m = await b.next_message(body=answer)
        assert m["from"].bare == a.boundjid.bare
    finally:
        await close_all(a, b)


# ---- Prosody ------------------------------------------------------------------------

def test_prosody_slixmpp_plaintext_chat(prosody):
    run(slix_chat(prosody.c2s_port, prosody.jid("alice"), USERS["alice"],
                  prosody.jid("bob"), USERS["bob"]))


# ---- ejabberd -----------------------------------------------------------------------

def test_ejabberd_slixmpp_plaintext_chat(ejabberd):
    (a, a_pw), (b, b_pw) = ejabberd.new_user("a"), ejabberd.new_user("b")
    run(slix_chat(ejabberd.c2s_port, a, a_pw, b, b_pw))


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_ejabberd_records_proxy_protocol_address(ejabberd, version):
    """A PROXY header with a fake source before a plaintext login: ejabberd reports
    that source (and port) for the session, not the socket's 127.0.0.1."""
    fake, fake_port = ("127.0.0.55", 41234) if version == "v2" else ("127.0.0.56", 41235)
    mk = proxy_v2_header if version == "v2" else proxy_v1_header
    hdr = mk(fake, "127.0.0.1", fake_port, ejabberd.proxy_port)
    direct = plain_login(ejabberd.c2s_port, "alice", USERS["alice"], resource=f"direct-{version}")
    proxied = plain_login(ejabberd.proxy_port, "bob", USERS["bob"], resource=f"proxied-{version}",
                          proxy_header=hdr)
    try:
        assert ejabberd.session_ip(proxied.jid) == fake
        s = [s for s in ejabberd.sessions() if s["jid"] == proxied.jid][0]
        assert int(s["port"]) == fake_port
        assert ejabberd.session_ip(direct.jid) == "127.0.0.1"
    finally:
        proxied.close()
        direct.close()


def test_ejabberd_proxy_listener_refuses_a_stream_without_header(ejabberd):
    mark = ejabberd.log_mark()
    r = Raw(ejabberd.proxy_port)
    try:
        r.send(rawxmpp_header())
        assert r.read_until_eof(5) == [] and r.raw == b""
    finally:
        r.close()
    ejabberd.wait_log(r"\[error\].*Proxy protocol parsing failed", since=mark)


def test_ejabberd_behind_haproxy_sees_client_address(ejabberd, haproxy):
    """client (from 127.0.0.77) -> haproxy send-proxy-v2 -> ejabberd's PROXY listener."""
    h = haproxy(ejabberd.proxy_port, "v2")
    jid, pw = ejabberd.new_user("hap")
    r = plain_login(h.port, jid.split("@")[0], pw, resource="via-haproxy", source="127.0.0.77")
    try:
        assert ejabberd.session_ip(r.jid) == "127.0.0.77"
    finally:
        r.close()


def test_upstream_plaintext_login(upstream):
    """The `upstream` fixture: the same test on Prosody and on ejabberd."""
    jid, pw = upstream.new_user("up")
    r = plain_login(upstream.c2s_port, jid.split("@")[0], pw, domain=upstream.domain)
    try:
        assert b"urn:ietf:params:xml:ns:xmpp-tls" not in r.raw, "STARTTLS offered"
        assert r.jid.startswith(jid + "/")
        assert r.ping("p1").get("type") == "result"
    finally:
        r.close()


# ---- HAProxy ------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["v2", "v1"])
def test_haproxy_sends_proxy_header(haproxy, version):
    with ProxyCapture() as cap:
        h = haproxy(cap.port, version)
        with socket.create_connection(("127.0.0.1", h.port), timeout=5) as s:
            sport = s.getsockname()[1]
            s.sendall(b"ping")
            got = b""
            while len(got) < 4:
                chunk = s.recv(64)
                assert chunk, f"closed; capture errors: {cap.errors}"
                got += chunk
            assert got == b"ping"
        hdr = cap.wait_header()
        assert hdr["version"] == int(version[1])
        assert hdr["command"] == "PROXY" and hdr["family"] == "TCP4"
        assert (hdr["src"], hdr["sport"]) == ("127.0.0.1", sport)
        assert (hdr["dst"], hdr["dport"]) == ("127.0.0.1", h.port)
        assert cap.errors == []


@pytest.mark.parametrize("src,dst", [("127.0.0.9", "127.0.0.1"), ("2001:db8::5", "::1")])
def test_proxy_capture_collects_without_echo(src, dst):
    with ProxyCapture(echo=False) as cap:
        with socket.create_connection(("127.0.0.1", cap.port), timeout=5) as s:
            s.sendall(proxy_v2_header(src, dst, 1234, 5222) + b"<stream")
            hdr = cap.wait_header()
            assert (hdr["src"], hdr["dst"], hdr["sport"], hdr["dport"]) == (src, dst, 1234, 5222)
            s.sendall(b":stream>")
            deadline = time.monotonic() + 5
            with cap.cond:
                while bytes(hdr["data"]) != b"<stream:stream>" and time.monotonic() < deadline:
                    cap.cond.wait(0.1)
            assert bytes(hdr["data"]) == b"<stream:stream>"


# ---- xmpp.js ------------------------------------------------------------------------

def xmppjs_to_raw_peer(xmppjs, service, port, mech=None, ca_file=None):
    """xmpp.js (bob) sends to a raw client (alice, plaintext on the server's c2s port),
    who answers; xmpp.js waits for the answer."""
    alice = plain_login(port, "alice", USERS["alice"], resource="peer")
    try:
        hello = body("js-hello")
        bob = xmppjs.start(service, "bob", USERS["bob"], ca_file, mech=mech, to=alice.jid, body=hello,
                           expect_body="re: " + hello, timeout=15)
        m = alice.wait_for(lambda e: e.tag == q(NS_CLIENT, "message") and
                           e.findtext(q(NS_CLIENT, "body")) == hello, timeout=15)
        alice.send(f"<message to='{m.get('from')}' type='chat'><body>re: {hello}</body></message>")
        r = bob.result()
        assert r["ok"], f"xmpp.js failed: {r['error']}\n{r['output']}"
        assert r["received"]["body"] == "re: " + hello
        assert r["received"]["from"].startswith("alice@localhost/")
        return r
    finally:
        alice.close()


@pytest.mark.parametrize("mech", ["SCRAM-SHA-1", "PLAIN"])
def test_xmppjs_prosody_plain_tcp(prosody, xmppjs, mech):
    r = xmppjs_to_raw_peer(xmppjs, f"xmpp://127.0.0.1:{prosody.c2s_port}", prosody.c2s_port, mech)
    assert r["secure"] is False and r["mechanism"] == mech


@pytest.mark.parametrize("prosody", [{"websocket": True}], indirect=True)
def test_xmppjs_prosody_websocket_echo(prosody, xmppjs):
    """xmpp.js over ws:// answers the first message (--echo); a raw client sends it."""
    echo = xmppjs.start(prosody.ws_url, "bob", USERS["bob"], resource="echo", echo=True)
    bob_jid = echo.wait_ready()
    assert bob_jid == "bob@localhost/echo"
    alice = plain_login(prosody.c2s_port, "alice", USERS["alice"], resource="sender")
    try:
        hello = body("ws-hello")
        alice.send(f"<message to='{bob_jid}' type='chat'><body>{hello}</body></message>")
        m = alice.wait_for(lambda e: e.tag == q(NS_CLIENT, "message") and
                           e.findtext(q(NS_CLIENT, "body")) == "echo: " + hello, timeout=15)
        assert m.get("from") == bob_jid
    finally:
        alice.close()
    r = echo.result()
    assert r["ok"], f"xmpp.js failed: {r['error']}\n{r['output']}"
    assert r["received"] == {"from": "alice@localhost/sender", "body": hello}
    assert r["secure"] is True and r["mechanism"] == "SCRAM-SHA-1"   # consider_websocket_secure


@pytest.mark.parametrize("prosody", [{"websocket": True, "tls": True}], indirect=True)
def test_xmppjs_prosody_tls_with_test_ca(prosody, xmppjs, cert):
    """STARTTLS and wss:// with the suite's self-signed certificate, trusted through
    NODE_EXTRA_CA_CERTS; without it, node refuses the certificate."""
    for service in (f"xmpp://localhost:{prosody.c2s_port}", prosody.wss_url):
        r = xmppjs_to_raw_peer(xmppjs, service, prosody.c2s_port, ca_file=cert[0])
        assert r["secure"] is True, service
    r = xmppjs.run(prosody.wss_url, "bob", USERS["bob"], timeout=10)
    assert not r["ok"] and "certificate" in r["error"], r


def test_xmppjs_ejabberd_plain_tcp(ejabberd, xmppjs):
    r = xmppjs_to_raw_peer(xmppjs, f"xmpp://127.0.0.1:{ejabberd.c2s_port}", ejabberd.c2s_port)
    assert r["secure"] is False and r["mechanism"] == "SCRAM-SHA-1"
    assert "SCRAM-SHA-1" in r["offered"] and "PLAIN" in r["offered"]
