"""SIGTERM drains (issue 12): readiness goes false at once, the listeners close, clients
are sent elsewhere (<see-other-host/> naming drain.redirect; WebSocket clients a <close
see-other-uri/>) or told <system-shutdown/>, never faster than drain.rate a second, and the
process exits once no client is left or when drain.grace is over."""
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import USERS, binary, wait_until
from rawxmpp import NS_CLIENT, STREAM_ERROR, Raw, q, stream_error_condition
from wsclient import WS

NS_STREAMS_ERR = "urn:ietf:params:xml:ns:xmpp-streams"
NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"


def logged_in(server, n, prefix="dr"):
    """n sessions (users prefix0..), logged in over STARTTLS."""
    for i in range(n):
        server.ctl("user", "add", f"{prefix}{i}@localhost", "drain-pw")
    clients = []
    for i in range(n):
        c = Raw(server.c2s_port, timeout=20)
        c.login(f"{prefix}{i}", "drain-pw", "d")
        clients.append(c)
    return clients


def goodbyes(clients, timeout):
    """Read each client to its close in parallel: [(arrival time, stream error element)]."""
    got = [None] * len(clients)

    def read(i, c):
        items = c.read_until_eof(timeout)
        errs = [e for e in items if e.tag == STREAM_ERROR]
        got[i] = (time.monotonic(), errs[0] if errs else None)

    threads = [threading.Thread(target=read, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    return got


@pytest.mark.watchdog(180)
@pytest.mark.parametrize("server", [{"admin": True, "drain": {
    "redirect": "edge2.example.org:5222", "rate": 20, "grace": 60},
    "limits": {"max_connections_per_ip": 1000, "connection_rate_per_ip": 1000}}], indirect=True)
def test_drain_redirects_at_the_configured_rate(server):
    n, rate = 40, 20
    clients = logged_in(server, n)
    try:
        assert server.http("/readyz")[0] == 200
        results = []
        reader = threading.Thread(target=lambda: results.extend(goodbyes(clients, 60)))
        t0 = time.monotonic()
        sigterm(server)
        reader.start()
        # Readiness goes false at once, and the listener stops taking connections.
        wait_until(lambda: server.http("/readyz") == (503, "not ready: draining\n"), timeout=5,
                   what="/readyz 503 draining")
        wait_until(lambda: _refused(server.c2s_port), timeout=5, what="the listener closed")
        reader.join(90)
        assert len(results) == n and all(r and r[1] is not None for r in results), results
        for _, err in results:
            assert stream_error_condition(err) == "see-other-host"
            soh = err.find(q(NS_STREAMS_ERR, "see-other-host"))
            assert soh.text == "edge2.example.org:5222", soh.text
        times = sorted(t for t, _ in results)
        # Never faster than the rate: in any one-second window at most rate plus each
        # worker's burst allowance (a tenth of a second's worth, at least one client).
        burst = server.opts.workers * 2
        for i, t in enumerate(times):
            in_window = sum(1 for u in times[i:] if u - t < 1.0)
            assert in_window <= rate + burst, f"{in_window} clients told within 1 s (rate {rate})"
        assert times[-1] - t0 >= (n - burst) / rate * 0.9, f"all {n} told in {times[-1] - t0:.2f} s"
        server.edge.p.wait(30)
        assert server.edge.p.returncode == 0
        assert "drained: no client left" in server.log()
    finally:
        for c in clients:
            c.close()


def sigterm(server):
    """SIGTERM the edge; the fixture's stop then only waits for it and checks its exit."""
    server.edge.terminated = True
    server.edge.p.send_signal(signal.SIGTERM)


def _refused(port) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except ConnectionRefusedError:
        return True


@pytest.mark.parametrize("server", [{"ws": True, "drain": {
    "redirect_uri": "wss://edge2.example.org/xmpp-websocket", "rate": 1000}}], indirect=True)
def test_drain_without_redirect_and_websocket_uri(server):
    """No drain.redirect: XMPP clients are told system-shutdown; WebSocket clients with
    drain.redirect_uri get RFC 7395's <close see-other-uri/>."""
    tcp = Raw(server.c2s_port)
    tcp.login("alice", USERS["alice"], "t")
    ws = WS(server.ws_port, timeout=20)
    ws.upgrade()
    ws.login("bob", USERS["bob"])
    try:
        sigterm(server)
        assert tcp.expect_stream_error(20) == "system-shutdown"
        el = ws.next_element(20)
        assert el.tag == q(NS_FRAMING, "close"), el
        assert el.get("see-other-uri") == "wss://edge2.example.org/xmpp-websocket"
        server.edge.p.wait(30)
        assert server.edge.p.returncode == 0
    finally:
        tcp.close()
        ws.close()


@pytest.mark.parametrize("server", [{"admin": True, "drain": {
    "redirect": "edge2.example.org", "rate": 2, "grace": 2},
    "limits": {"max_connections_per_ip": 1000, "connection_rate_per_ip": 1000}}], indirect=True)
def test_drain_grace_ends_it(server):
    """At 2 a second with a 2-second grace, 16 clients cannot all be redirected: the rest
    are told system-shutdown when the grace is over, and the process exits."""
    clients = logged_in(server, 16, "gr")
    try:
        t0 = time.monotonic()
        sigterm(server)
        res = goodbyes(clients, 30)
        server.edge.p.wait(30)
        took = time.monotonic() - t0
        conds = [stream_error_condition(e) for _, e in res]
        assert conds.count("see-other-host") >= 2, conds
        assert conds.count("system-shutdown") >= 6, conds
        assert took < 15, f"exited {took:.1f} s after SIGTERM with drain.grace 2"
        assert server.edge.p.returncode == 0
        assert "drain grace period over" in server.log()
    finally:
        for c in clients:
            c.close()


@pytest.mark.parametrize("server", [{"admin": True, "drain": {"rate": 1, "grace": 300},
    "limits": {"max_connections_per_ip": 1000, "connection_rate_per_ip": 1000}}], indirect=True)
def test_second_sigterm_stops_at_once(server):
    """A second SIGTERM while draining stops at once instead of waiting out a long grace."""
    clients = logged_in(server, 10, "st")
    try:
        sigterm(server)
        wait_until(lambda: server.http("/readyz")[0] == 503, timeout=10, what="draining")
        server.edge.p.send_signal(signal.SIGTERM)
        assert server.edge.p.wait(15) == 0
        assert "stopping now (second signal while draining)" in server.log()
    finally:
        for c in clients:
            c.close()


@pytest.mark.parametrize("server", [{"admin": True, "drain": {"rate": 50, "redirect": "edge2.example.org"},
    "limits": {"max_connections_per_ip": 1000, "connection_rate_per_ip": 1000}}], indirect=True)
def test_xedgectl_drain_empties_and_keeps_the_process(server):
    """xedgectl drain (a preStop hook) signals the xedge serving the config (SIGUSR1), which
    drains and stays up, not ready; it returns once no client is left, before the process
    ends (a hook must not outlive its container's main process).  The SIGTERM that follows
    exits at once."""
    clients = logged_in(server, 12, "pd")
    try:
        r = subprocess.run([str(binary("xedgectl")), "-c", str(server.edge_config), "drain"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"pid {server.edge.p.pid} drained after" in r.stdout, r.stdout
        assert server.edge.alive(), "xedgectl drain ended the process"
        res = goodbyes(clients, 20)
        assert all(stream_error_condition(e) == "see-other-host" for _, e in res), res
        assert server.http("/readyz") == (503, "not ready: draining\n")
        assert _refused(server.c2s_port)
        assert server.metric("xedge_draining") == 1
        t0 = time.monotonic()
        sigterm(server)
        assert server.edge.p.wait(15) == 0
        assert time.monotonic() - t0 < 5
    finally:
        for c in clients:
            c.close()


@pytest.mark.parametrize("server", [{"admin": True, "mode": "external"}], indirect=True)
def test_xedgectl_drain_refuses_a_session_server(server):
    """An xedge-sm config has no listeners: drain is refused, and a stray SIGUSR1 does not
    kill xedge-sm either."""
    r = subprocess.run([str(binary("xedgectl")), "-c", str(server.sm_config), "drain"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "drain empties an edge" in r.stderr, r.stderr
    sm = server.proc("xedge-sm")
    sm.p.send_signal(signal.SIGUSR1)
    server.wait_log("SIGUSR1 ignored", which="xedge-sm", timeout=10)
    assert sm.alive()
