"""The admin HTTP listener (issue 12): /metrics counts what clients did, /healthz, /readyz
follow the session-server link, xedge-sm has its own, and the listener is as hostile-proof
as the XMPP ports (bounded clients, bounded request heads, no effect on XMPP sessions)."""
import socket
import time

import pytest

from conftest import USERS, wait_until
from rawxmpp import NS_CLIENT, Raw, q


def chat(a: Raw, b: Raw, n: int, tag: str):
    for i in range(n):
        body = f"{tag}-{i}"
        a.send(f"<message to='{b.jid}' type='chat'><body>{body}</body></message>")
        b.wait_for(lambda e: e.tag == q(NS_CLIENT, "message") and
                   e.findtext(q(NS_CLIENT, "body")) == body, 10)


@pytest.mark.parametrize("server", [{"admin": True}], indirect=True)
def test_metrics_count_what_clients_did(server):
    """Two logins (PLAIN and SCRAM-SHA-256), 7 messages one way and 5 back, a failed login,
    a stream error: each shows in /metrics with the exact count, and the embedded session
    server's xedge_sm_* agree."""
    base = server.metrics()
    assert base['xedge_connections{listener="c2s",state="session"}'] == 0
    alice, bob = Raw(server.c2s_port), Raw(server.c2s_port)
    try:
        alice.login("alice", USERS["alice"], "m1", mech="PLAIN")
        bob.login("bob", USERS["bob"], "m2", mech="SCRAM-SHA-256")
        chat(alice, bob, 7, "ab")
        chat(bob, alice, 5, "ba")
        m = server.metrics()
        assert m['xedge_logins_total{mechanism="PLAIN"}'] == 1
        assert m['xedge_logins_total{mechanism="SCRAM-SHA-256"}'] == 1
        assert m['xedge_connections{listener="c2s",state="session"}'] == 2
        assert m['xedge_stanzas_total{listener="c2s",direction="in",kind="message"}'] == 12
        assert m['xedge_stanzas_total{listener="c2s",direction="out",kind="message"}'] == 12
        assert m['xedge_stanzas_total{listener="c2s",direction="in",kind="iq"}'] == 2   # binds
        assert m['xedge_tls_handshakes_total{listener="c2s"}'] == 2
        assert m['xedge_sm_binds_total'] == 2
        assert m['xedge_sm_sessions'] == 2
        assert m['xedge_sm_stanzas_routed_total{kind="message"}'] == 12
        assert m['xedge_sm_stanzas_delivered_total{kind="message"}'] == 12
        # one link per worker and shard (shards: one per core by default)
        assert m['xedge_session_server_links{state="up"}'] == server.opts.workers * m['xedge_sm_shards']
        assert m['xedge_login_duration_seconds_count'] == 2
        assert m['xedge_session_server_rtt_seconds_count'] >= 2
        assert m['xedge_network_bytes_total{direction="in"}'] > 0

        with Raw(server.c2s_port) as bad:
            bad.open_stream()
            bad.starttls()
            bad.open_stream()
            el = bad.auth("carol", "wrong password", "PLAIN")
            assert el.tag.endswith("failure")
        wait_until(lambda: server.metric("xedge_sasl_failures_total", mechanism="PLAIN",
                                         cause="not-authorized") == 1, what="a counted SASL failure")
        with Raw(server.c2s_port) as bad:
            bad.open_stream()
            bad.send(b"<a><<<")
            assert bad.expect_stream_error() == "not-well-formed"
        wait_until(lambda: server.metric("xedge_stream_errors_total",
                                         condition="not-well-formed") == 1, what="a counted stream error")
    finally:
        alice.close()
        bob.close()
    wait_until(lambda: server.metric("xedge_connections", listener="c2s") == 0,
               what="the connection gauge back at 0 after every client left")


@pytest.mark.parametrize("server", [{"admin": True}], indirect=True)
def test_tls_failures_by_cause(server):
    """A ClientHello of garbage is a 'protocol' failure; a client that closes in the middle
    of its handshake, 'closed'."""
    with socket.create_connection(("127.0.0.1", server.tls_port), timeout=5) as s:
        s.sendall(b"\x16\x03\x01\x00\x05hello")
        s.settimeout(5)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
    wait_until(lambda: server.metric("xedge_tls_handshake_failures_total", cause="protocol") >= 1,
               what="a protocol failure counted")
    from rawxmpp import client_hello
    with socket.create_connection(("127.0.0.1", server.tls_port), timeout=5) as s:
        s.sendall(client_hello())
        s.recv(100)   # the ServerHello has started: the handshake is in progress
    wait_until(lambda: server.metric("xedge_tls_handshake_failures_total", cause="closed") >= 1,
               what="an abandoned handshake counted as closed")


@pytest.mark.parametrize("server", [{"admin": True, "mode": "external"}], indirect=True)
def test_readyz_follows_the_session_server(server):
    """/readyz is 200 while every worker is linked, 503 naming why while xedge-sm is down,
    and 200 again once it is back; /healthz stays 200 throughout.  xedge-sm's own admin
    listener counts its sessions."""
    assert server.http("/readyz") == (200, "ready\n")
    assert server.http("/healthz") == (200, "ok\n")
    with Raw(server.c2s_port) as alice:
        alice.login("alice", USERS["alice"], "r1")
        wait_until(lambda: server.metric("xedge_sm_sessions", which="xedge-sm") == 1,
                   what="xedge-sm counting the session")
        assert server.http("/readyz", which="xedge-sm") == (200, "ready\n")
    problems = server.proc("xedge-sm").stop()
    assert not problems, problems
    wait_until(lambda: server.http("/readyz") == (503, "not ready: no session server linked\n"),
               what="/readyz 503 while xedge-sm is down")
    assert server.http("/healthz")[0] == 200
    assert server.metric("xedge_session_server_links", state="down") >= 1
    server.start_sm()
    wait_until(lambda: server.http("/readyz")[0] == 200, what="/readyz 200 once xedge-sm is back")
    assert server.metric("xedge_session_server_link_losses_total") >= server.opts.workers


@pytest.mark.parametrize("server", [{"admin": True, "mode": "external"}], indirect=True)
def test_sighup_to_xedge_sm_reloads_not_kills(server):
    """SIGHUP used to kill xedge-sm (exit 129): now it logs the reload and keeps serving."""
    import signal
    sm = server.proc("xedge-sm")
    sm.p.send_signal(signal.SIGHUP)
    server.wait_log("configuration reloaded", which="xedge-sm", timeout=10)
    assert sm.alive()
    with Raw(server.c2s_port) as alice:
        alice.login("alice", USERS["alice"], "after-hup")


@pytest.mark.parametrize("server", [{"admin": True}], indirect=True)
def test_admin_listener_is_bounded(server, legit):
    """Bad requests get their status (400, 404, 405, 431) and a close; a swarm of silent
    connections beyond the listener's bound is refused without stalling the probes for
    long (each silent one times out) and without touching XMPP sessions."""
    def raw(req: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", server.admin_port), timeout=15) as s:
            s.sendall(req)
            out = b""
            while True:
                d = s.recv(65536)
                if not d:
                    return out
                out += d

    assert raw(b"garbage\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(b"GET /nope HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404 ")
    assert raw(b"POST /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 405 ")
    assert raw(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n").startswith(b"HTTP/1.1 431 ")
    head = raw(b"HEAD /healthz HTTP/1.1\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n"), head
    silent = []
    try:
        for _ in range(40):
            silent.append(socket.create_connection(("127.0.0.1", server.admin_port), timeout=5))
        server.wait_log("admin HTTP: too many clients at once", timeout=10)
        legit.check(tag="during-admin-swarm")
    finally:
        for s in silent:
            s.close()
    wait_until(lambda: server.http("/healthz")[0] == 200, what="/healthz after the swarm left")
