"""Shard membership (docs/architecture.md, "Shards": membership): session servers
named by DNS names in backend.shards, and the shard set changing while everything
runs — here by SIGHUP with another backend.shards (the DNS discovery of
backend.discover feeds the same path; its lookups are tested in the network
namespace of test_membership_dns.py).

What a user sees when the set changes: an XEP-0198 session whose owner changed is
bound again on the new owner without a new login (the client notices nothing); any
other session gets the stream error <reset/> and logs in again (on the new owner);
messages sent during the change are delivered, or come back as errors: none is lost
in silence.
"""
import asyncio
import os
import signal
import urllib.request

import pytest

from conftest import Proc, binary, free_port, wait_until
from slixclient import Client, close_all, run
from test_shards import PASSWORD, ctl_socket, edge_metric, owner


def _domain(cert):
    crt, key = cert
    return f"domains:\n  - name: localhost\n    cert: {crt}\n    key: {key}\n"


def _shards_yaml(names):
    return "".join(f"    - \"{n}\"\n" for n in names)


def _write_sm(tmp_path, sockdir, cert, i, listen, me, names):
    cfg = tmp_path / f"sm{i}.yaml"
    cfg.write_text("log_level: debug\n" + _domain(cert) +
                   f"backend:\n  shards:\n{_shards_yaml(names)}"
                   "session_server:\n"
                   f"  database: {tmp_path / 'accounts.db'}\n"
                   f"  admin_socket: {sockdir / f'sm{i}.sock'}\n"
                   f"  listen: \"{listen}\"\n  shard: \"{me}\"\n  secret: \"s3cret\"\n")
    return cfg


def _write_edge(tmp_path, cert, c2s, admin, names):
    cfg = tmp_path / "edge.yaml"
    cfg.write_text("workers: 2\nlog_level: debug\n" + _domain(cert) +
                   f"listeners:\n  - type: c2s\n    address: 127.0.0.1:{c2s}\n"
                   f"admin:\n  address: 127.0.0.1:{admin}\n"
                   "stream_management:\n  enabled: true\n"
                   f"backend:\n  shards:\n{_shards_yaml(names)}  secret: \"s3cret\"\n")
    return cfg


@pytest.fixture
def named(tmp_path, sockdir, cert):
    """Two xedge-sm processes named "localhost:PORT" (a DNS name, looked up by the edge
    before each connect) and one edge with both in backend.shards.  users[k]: two
    accounts owned by shard k."""
    ports = [free_port(), free_port()]
    names = [f"localhost:{p}" for p in ports]
    c2s, admin = free_port(), free_port()
    users = [[f"u{i}" for i in range(2000) if owner(f"u{i}@localhost", names) == k][:2]
             for k in (0, 1)]
    procs = []
    try:
        for i, p in enumerate(ports):
            cfg = _write_sm(tmp_path, sockdir, cert, i, f"127.0.0.1:{p}", names[i], names)
            sm = Proc(f"xedge-sm-{i}", [str(binary("xedge-sm")), "-c", str(cfg)], tmp_path / f"sm{i}.log")
            procs.append(sm)
            wait_until(lambda sm=sm: "xedge-sm started" in sm.text(), what=f"xedge-sm {i} started")
        edge_cfg = _write_edge(tmp_path, cert, c2s, admin, names)
        edge = Proc("xedge", [str(binary("xedge")), "-c", str(edge_cfg)], tmp_path / "edge.log")
        procs.append(edge)
        wait_until(lambda: edge.text().count("session server link up") >= 4,
                   what="4 links up (2 workers x 2 shards, found by name)")
        for k in (0, 1):
            for u in users[k]:
                r = ctl_socket(sockdir / f"sm{k}.sock", "user", "add", f"{u}@localhost", PASSWORD)
                assert r.returncode == 0, r
        yield {"c2s": c2s, "admin": admin, "names": names, "users": users, "procs": procs,
               "tmp": tmp_path, "sockdir": sockdir, "cert": cert, "edge_cfg": edge_cfg}
    finally:
        problems = []
        for p in reversed(procs):
            problems += p.stop()
        if problems:
            pytest.fail("shutdown:\n  " + "\n  ".join(problems), pytrace=False)


def test_names_in_backend_shards(named):
    """backend.shards entries that are DNS names: the edge looks them up (off its
    workers) and links to both; each user's session is on the shard its NAME hashes to
    (the name, not the address it resolves to, is the hash input); chat crosses."""
    (a0, _), (a1, _) = named["users"]
    sm0, sm1, edge = named["procs"]

    async def main():
        c0 = await Client(f"{a0}@localhost", PASSWORD).login(named["c2s"])
        c1 = await Client(f"{a1}@localhost", PASSWORD).login(named["c2s"])
        try:
            c0.send_message(mto=c1.boundjid.full, mbody="hi by name", mtype="chat")
            await c1.next_message(10, body="hi by name")
            c1.send_message(mto=c0.boundjid.full, mbody="back", mtype="chat")
            await c0.next_message(10, body="back")
            return c0.boundjid.full, c1.boundjid.full
        finally:
            await close_all(c0, c1)
    j0, j1 = run(main(), timeout=40)
    assert f'jid="{j0}"' in sm0.text() and f'jid="{j0}"' not in sm1.text()
    assert f'jid="{j1}"' in sm1.text() and f'jid="{j1}"' not in sm0.text()
    assert edge_metric(named["admin"], "xedge_shard_relayed_total") >= 2


def _check_config(path):
    import subprocess
    from conftest import child_env
    return subprocess.run([str(binary("xedge")), "--check-config", str(path)], capture_output=True,
                          text=True, timeout=30, env=child_env())


def test_bad_backend_addresses_name_their_line(tmp_path, cert):
    """--check-config refuses what is not host:port (a name or a numeric address) or
    unix:/path, and a malformed backend.discover, naming the line."""
    # (the backend section, the text on the line the error must name, what it must say)
    cases = [
        ("backend:\n  shards:\n    - \"sm-0.sm:5270\"\n    - \"sm 1:5270\"\n", "sm 1:5270",
         "backend.shards[]"),
        ("backend:\n  address: \"::1:5270\"\n", "::1:5270", "backend.address"),
        ("backend:\n  address: \"sm:0\"\n", "sm:0", "backend.address"),
        ("backend:\n  discover:\n    srv: \"_sm._tcp.x..y\"\n", "x..y", "backend.discover.srv"),
        ("backend:\n  discover:\n    srv: _sm._tcp.x\n    interval: 0\n", "interval: 0",
         "backend.discover.interval"),
        ("backend:\n  discover:\n    interval: 5\n", "interval: 5", "'srv' is required"),
        ("backend:\n  discover:\n    srv: _sm._tcp.x\n  shards:\n    - \"a:1\"\n", "srv: _sm",
         "excludes"),
    ]
    for body, at, what in cases:
        cfg = tmp_path / "bad.yaml"
        text = _domain(cert) + "listeners:\n  - type: c2s\n    address: 127.0.0.1:5222\n" + body
        cfg.write_text(text)
        line = next(i for i, l in enumerate(text.splitlines(), 1) if at in l)
        r = _check_config(cfg)
        assert r.returncode == 1, (body, r.stdout, r.stderr)
        assert f"bad.yaml:{line}:" in r.stderr and what in r.stderr, (body, line, r.stderr)
    cfg = tmp_path / "good.yaml"
    cfg.write_text(_domain(cert) + "listeners:\n  - type: c2s\n    address: 127.0.0.1:5222\n"
                   "backend:\n  discover:\n    srv: _xmpp-sm._tcp.xedge-sm.default.svc.cluster.local\n"
                   "    interval: 5\n")
    r = _check_config(cfg)
    assert r.returncode == 0, r.stderr


def test_sighup_removes_a_shard(named):
    """backend.shards loses shard 1 (SIGHUP to the session servers, then to the edge):
    the XEP-0198 session of a shard-1 user is bound again on shard 0 with no new login
    and no stream error; a plain session of another shard-1 user gets <reset/> and logs
    in again, now on shard 0; of the messages sent to the XEP-0198 user during the
    change each is delivered or bounced; then the link to shard 1 closes."""
    (a0, _), (b1, p1) = named["users"]
    sm0, sm1, edge = named["procs"]
    names, tmp, sockdir, cert = named["names"], named["tmp"], named["sockdir"], named["cert"]
    sent, total = [], 40

    async def main():
        loop = asyncio.get_running_loop()
        enabled = loop.create_future()
        starts = []
        smk = Client(f"{b1}@localhost", PASSWORD)
        smk.register_plugin("xep_0198")
        smk.add_event_handler("sm_enabled", lambda e: enabled.done() or enabled.set_result(e))
        smk.add_event_handler("session_start", lambda _: starts.append(1))
        plain = sender = again = None
        try:
            await smk.login(named["c2s"])
            await asyncio.wait_for(enabled, 10)
            plain = await Client(f"{p1}@localhost", PASSWORD).login(named["c2s"])
            sender = Client(f"{a0}@localhost", PASSWORD)
            errors = asyncio.Queue()   # bounces: slixmpp's 'message' event wants a <body/>
            sender.add_event_handler("message_error", errors.put_nowait)
            await sender.login(named["c2s"])
            full = smk.boundjid.full
            assert f'jid="{full}"' in sm1.text()

            async def send_all():
                for i in range(total):
                    mid = f"m{i}"
                    m = sender.make_message(mto=full, mbody=mid, mtype="chat")
                    m["id"] = mid
                    m.send()
                    sent.append(mid)
                    if i == total // 4:
                        # The new list: shard 0 only.  Session servers first (they
                        # relay what they no longer own), then the edge.
                        for k in (0, 1):
                            _write_sm(tmp, sockdir, cert, k, f"127.0.0.1:{names[k].split(':')[1]}",
                                      names[k], names[:1])
                        _write_edge(tmp, cert, named["c2s"], named["admin"], names[:1])
                        for p in (sm0, sm1):
                            os.kill(p.p.pid, signal.SIGHUP)
                        await asyncio.to_thread(wait_until, lambda: all(
                            "shard set applied" in p.text() or "not in the shard set" in p.text()
                            for p in (sm0, sm1)), 10, "both session servers on the new set")
                        os.kill(edge.p.pid, signal.SIGHUP)
                    await asyncio.sleep(0.05)
            await send_all()

            # The plain client: <reset/>, then a new login lands on shard 0.
            await asyncio.wait_for(asyncio.shield(plain.closed), 20)
            assert plain.stream_errors == ["reset"], plain.stream_errors
            again = await Client(f"{p1}@localhost", PASSWORD).login(named["c2s"])
            await asyncio.to_thread(wait_until, lambda: f'jid="{again.boundjid.full}"' in sm0.text(),
                                    10, "the new login on shard 0")

            # Every message sent during the change: delivered, or bounced to the sender.
            got, bounced = set(), set()
            deadline = loop.time() + 30
            while got | bounced != set(sent) and loop.time() < deadline:
                for q, bucket, err in ((smk.messages, got, False), (errors, bounced, True)):
                    try:
                        m = await asyncio.wait_for(q.get(), 0.2)
                    except asyncio.TimeoutError:
                        continue
                    if (m["type"] == "error") == err and m["id"] in sent:
                        bucket.add(m["id"] if err else m["body"])
            assert got | bounced == set(sent), (sorted(set(sent) - got - bounced), sorted(bounced))

            # The XEP-0198 session: the same stream and JID, now bound on shard 0.
            await asyncio.to_thread(wait_until, lambda: "session bound again" in edge.text(), 20,
                                    "the XEP-0198 session bound again")
            assert not smk.closed.done() and smk.stream_errors == [] and len(starts) == 1
            assert smk.boundjid.full == full
            sender.send_message(mto=full, mbody="after the change", mtype="chat")
            await smk.next_message(10, body="after the change")
            smk.send_message(mto=sender.boundjid.full, mbody="and back", mtype="chat")
            await sender.next_message(10, body="and back")
            return full
        finally:
            await close_all(smk, plain, sender, again)
    run(main(), timeout=120)
    assert edge_metric(named["admin"], "xedge_session_rebinds_total") == 1
    body = urllib.request.urlopen(f"http://127.0.0.1:{named['admin']}/metrics", timeout=10).read().decode()
    assert 'xedge_shard_moves_total{result="rebound"} 1' in body, body
    assert 'xedge_shard_moves_total{result="reset"} 1' in body, body
    # Shard 1's links close once no session is left on them.
    wait_until(lambda: edge.text().count("shard removed") >= 2, timeout=20,
               what="both workers closed their link to the removed shard")


def test_dead_shard_removed_its_sessions_rebind_elsewhere(named):
    """A shard dies (kill -9) and is then taken out of backend.shards: the XEP-0198
    session that was waiting for it to return is bound on its new owner instead, with no
    new login, and messages reach it there; the dead shard's link is closed for good."""
    (a0, _), (b1, _) = named["users"]
    sm0, sm1, edge = named["procs"]
    names, tmp, sockdir, cert = named["names"], named["tmp"], named["sockdir"], named["cert"]

    async def main():
        loop = asyncio.get_running_loop()
        enabled = loop.create_future()
        starts = []
        smk = Client(f"{b1}@localhost", PASSWORD)
        smk.register_plugin("xep_0198")
        smk.add_event_handler("sm_enabled", lambda e: enabled.done() or enabled.set_result(e))
        smk.add_event_handler("session_start", lambda _: starts.append(1))
        sender = None
        try:
            await smk.login(named["c2s"])
            await asyncio.wait_for(enabled, 10)
            sender = await Client(f"{a0}@localhost", PASSWORD).login(named["c2s"])
            full = smk.boundjid.full
            sm1.p.kill()
            sm1.p.wait(10)
            sm1.stopped = True
            await asyncio.to_thread(wait_until, lambda: "session waits for its shard to return"
                                    in edge.text(), 10, "the session waiting for its shard")
            _write_sm(tmp, sockdir, cert, 0, f"127.0.0.1:{names[0].split(':')[1]}", names[0], names[:1])
            _write_edge(tmp, cert, named["c2s"], named["admin"], names[:1])
            os.kill(sm0.p.pid, signal.SIGHUP)
            await asyncio.to_thread(wait_until, lambda: "shard set applied" in sm0.text(), 10,
                                    "shard 0 owning everyone")
            os.kill(edge.p.pid, signal.SIGHUP)
            await asyncio.to_thread(wait_until, lambda: "session bound again" in edge.text(), 20,
                                    "the session bound again on shard 0")
            assert f'jid="{full}"' in sm0.text()
            sender.send_message(mto=full, mbody="found you", mtype="chat")
            await smk.next_message(10, body="found you")
            smk.send_message(mto=sender.boundjid.full, mbody="here", mtype="chat")
            await sender.next_message(10, body="here")
            assert not smk.closed.done() and smk.stream_errors == [] and len(starts) == 1
            assert smk.boundjid.full == full
        finally:
            await close_all(smk, sender)
    run(main(), timeout=90)
    wait_until(lambda: edge.text().count("shard removed") >= 2, timeout=20,
               what="both workers freed the dead shard's link")
