"""SIGHUP reloads xedge's configuration without dropping a session (issue 12): new TLS
handshakes get the new certificate while established sessions keep theirs and go on
chatting; new limits apply; a reload that fails keeps everything as it was and says why."""
import concurrent.futures
import hashlib
import json
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, USERS, binary, make_cert, wait_until
from rawxmpp import NS_CLIENT, Raw, q


def served_fingerprint(port: int) -> str:
    """SHA-256 of the certificate a new Direct TLS connection gets."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            return hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest()


def file_fingerprint(crt: Path) -> str:
    der = ssl.PEM_cert_to_DER_cert(crt.read_text())
    return hashlib.sha256(der).hexdigest()


@pytest.fixture
def cert(tmp_path):
    """A certificate of this test's own (the session's is shared): the tests replace
    its files."""
    d = tmp_path / "certs"
    d.mkdir()
    return make_cert(d, "live")


ADMIN = pytest.mark.parametrize("server", [{"admin": True}], indirect=True)


def hup(server, result: str, count: int):
    server.edge.p.send_signal(signal.SIGHUP)
    wait_until(lambda: server.metric("xedge_config_reloads_total", result=result) == count,
               what=f"xedge_config_reloads_total{{result={result!r}}} == {count}")


def chat_once(a: Raw, b: Raw, tag: str):
    a.send(f"<message to='{b.jid}' type='chat'><body>{tag}</body></message>")
    m = b.wait_for(lambda e: e.tag == q(NS_CLIENT, "message") and
                   e.findtext(q(NS_CLIENT, "body")) == tag, 10)
    assert m.get("from") == a.jid


@ADMIN
def test_certificate_swap_keeps_sessions(server, tmp_path):
    srv = server
    crt, key = srv.cert, srv.key
    old_fp = file_fingerprint(crt)
    assert served_fingerprint(srv.tls_port) == old_fp
    alice, bob = Raw(srv.c2s_port), Raw(srv.tls_port, direct_tls=True)
    try:
        alice.login("alice", USERS["alice"], "before")
        bob.login("bob", USERS["bob"], "before")
        # The renewal: new files over the old paths, as certbot or cert-manager do.
        new_crt, new_key = make_cert(tmp_path, "renewed")
        key.write_bytes(new_key.read_bytes())
        crt.write_bytes(new_crt.read_bytes())
        hup(srv, "ok", 1)
        srv.wait_log("configuration reloaded")
        assert served_fingerprint(srv.tls_port) == file_fingerprint(new_crt) != old_fp
        # Established sessions keep their TLS state and chat on, both ways.
        chat_once(alice, bob, "after-reload-1")
        chat_once(bob, alice, "after-reload-2")
        with Raw(srv.c2s_port) as carol:   # and a STARTTLS login gets the new one too
            carol.login("carol", USERS["carol"], "new")
            fp = hashlib.sha256(carol.sock.getpeercert(binary_form=True)).hexdigest()
            assert fp == file_fingerprint(new_crt)
        wait_until(lambda: srv.metric("xedge_connections", listener="c2s", state="session") == 1,
                   what="alice alone in session on c2s once carol left")
        assert srv.metric("xedge_connections", listener="c2s_tls", state="session") == 1
    finally:
        alice.close()
        bob.close()


@ADMIN
def test_failed_reloads_change_nothing(server, tmp_path):
    """A broken file, a key that needs a restart, and a key that does not match its
    certificate: each reload fails with its reason in the log, and the running
    configuration (certificate included) stays."""
    srv = server
    cfg = srv.edge_config
    good = cfg.read_text()
    fp = served_fingerprint(srv.tls_port)
    with Raw(srv.c2s_port) as alice:
        alice.login("alice", USERS["alice"], "stays")

        cfg.write_text(good + "limits: [\n")
        hup(srv, "failed", 1)
        srv.wait_log(r"reload failed: the running configuration stays.*xedge.yaml:\d+")

        cfg.write_text(good.replace(f"127.0.0.1:{srv.c2s_port}", "127.0.0.1:1"))
        hup(srv, "failed", 2)
        srv.wait_log(r"reload failed: a key that needs a restart changed.*key=listeners")

        other_crt, other_key = make_cert(tmp_path, "other")
        cfg.write_text(good.replace(str(srv.key), str(other_key)))
        hup(srv, "failed", 3)
        srv.wait_log(r"reload failed: the certificates or keys do not load")
        srv.wait_log(r"private key does not belong to the certificate")

        cfg.write_text(good)
        assert served_fingerprint(srv.tls_port) == fp
        assert srv.metric("xedge_config_reloads_total", result="ok") == 0
        alice.ping("still-here", timeout=10)
        with Raw(srv.c2s_port) as bob:
            bob.login("bob", USERS["bob"], "after-failures")


@ADMIN
def test_reload_applies_limits_and_log_level(server):
    """A lower max_stanza_bytes applies to an established session at once (RFC 6120
    §4.9.3.14 policy-violation for a stanza over it), and log_level debug starts debug lines."""
    srv = server
    cfg = srv.edge_config
    text = cfg.read_text()
    assert "max_stanza_bytes: 65536" in text and "log_level: debug" in text
    with Raw(srv.c2s_port) as alice, Raw(srv.c2s_port) as bob:
        alice.login("alice", USERS["alice"], "lim")
        bob.login("bob", USERS["bob"], "lim")
        big = "x" * 20000
        alice.send(f"<message to='{bob.jid}'><body>{big}</body></message>")
        bob.wait_for(lambda e: e.tag == q(NS_CLIENT, "message"), 10)
        cfg.write_text(text.replace("max_stanza_bytes: 65536", "max_stanza_bytes: 8192")
                       .replace("log_level: debug", "log_level: info"))
        hup(srv, "ok", 1)
        before = srv.log().count("level=debug")
        alice.send(f"<message to='{bob.jid}'><body>{big}</body></message>")
        assert alice.expect_stream_error() == "policy-violation"
        assert srv.log().count("level=debug") == before, "debug lines after log_level: info"
        chat_once(bob, bob, "bob-to-self")   # bob's session is untouched


@ADMIN
def test_xedgectl_reload_and_stats(server):
    srv = server
    ctl = [str(binary("xedgectl")), "-c", str(srv.edge_config)]
    r = subprocess.run(ctl + ["reload"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and f"pid {srv.edge.p.pid} reloaded" in r.stdout, r.stdout + r.stderr
    srv.edge_config.write_text(srv.edge_config.read_text() + "workers: 7\n")
    r = subprocess.run(ctl + ["reload"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "refused the new configuration" in r.stderr, r.stdout + r.stderr
    with Raw(srv.c2s_port) as alice:
        alice.login("alice", USERS["alice"], "stats")
        r = subprocess.run(ctl + ["stats"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    import re
    assert r.stdout.splitlines()[0].endswith("ready"), r.stdout
    for what, n in (("logins", 1), ("reloads ok", 1), ("reloads failed", 1), ("sessions bound", 1),
                    ("of them in session", 1)):
        assert re.search(rf"^\s+{what}\s+{n}$", r.stdout, re.M), f"{what} != {n}:\n{r.stdout}"



@pytest.mark.watchdog(400)
@pytest.mark.parametrize("server", [{"admin": True, "log_level": "info", "limits": {
    "max_connections_per_ip": 1000, "connection_rate_per_ip": 1000}}], indirect=True)
def test_sighup_under_load_drops_no_session(server, tmp_path):
    """200 sessions chatting through three reloads (one with a new certificate file set in
    the config, one with new limits): xedge-bench sees no session dropped, no failure, no
    message lost.  (bench/ops does the same with 1,000 sessions.)"""
    n = 200
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda i: server.ctl("user", "add", f"hup{i}@localhost", "hup-pw"), range(n)))
    crt2, key2 = make_cert(tmp_path, "second")
    out = tmp_path / "hup.json"
    bench = subprocess.Popen(
        [str(REPO / "build" / "xedge-bench"), "--port", str(server.c2s_port), "--threads", "1",
         "--sources", "127.0.0.31,127.0.0.32", "--user-prefix", "hup", "--password", "hup-pw",
         "--scram-cache", str(tmp_path / "scram.cache"), "--mech", "SCRAM-SHA-1",
         "--scenario", "chat", "--clients", str(n), "--rate", "2", "--warmup", "1",
         "--duration", "8", "--drain", "30", "--timeout", "30", "--login-time", "120",
         "--json", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: server.metric("xedge_sm_sessions") >= n, timeout=150,
                   what=f"{n} sessions logged in")
        text = server.edge_config.read_text()
        hup(server, "ok", 1)
        server.edge_config.write_text(text.replace(str(server.cert), str(crt2))
                                      .replace(str(server.key), str(key2)))
        hup(server, "ok", 2)
        server.edge_config.write_text(server.edge_config.read_text()
                                      .replace("max_auth_failures: 3", "max_auth_failures: 5"))
        hup(server, "ok", 3)
        assert served_fingerprint(server.tls_port) == file_fingerprint(crt2)
        stdout, stderr = bench.communicate(timeout=240)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
    assert bench.returncode == 0, stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["logins"]["logged_in"] == n, res["logins"]
    assert res["logins"]["dropped"] == 0, f"sessions dropped by a reload: {res['logins']}\n{stdout[-1500:]}"
    assert res["failures"] == {}, res["failures"]
    m = res["messages"]
    assert m["sent_total"] > 0 and m["lost"] == 0 and m["received_total"] == m["sent_total"], m
    server.edge_config.write_text(text)
