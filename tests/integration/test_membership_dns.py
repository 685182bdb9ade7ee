"""Shard discovery by DNS (backend.discover, core/discover.h) in the private network
namespace of fedns.py, whose dnsmasq plays the cluster DNS of a Kubernetes headless
Service: `_xmpp-sm._tcp.sm.example` has one SRV record per session server, targets
sm0.example and sm1.example (their A records: addresses inside the namespace).

Both session servers run from the start; only sm0 is in DNS, so sm1 owns no account.
Then sm1's record is added: the session servers take the new set at their next
lookup, the edge one lookup later (it waits for the same answer twice); the users sm1
now owns move — an XEP-0198 session is bound again on sm1 with no new login — and
every chat message sent across the change is delivered or bounced.

Then a shard named by DNS in backend.shards comes back on another address: the edge
looks its name up again at the reconnect and binds the waiting session there.
"""
import asyncio

import pytest

from conftest import binary, child_env, free_port, wait_until
from fedns import fedns, fedns_module  # noqa: F401
from slixclient import Client, close_all, run
from test_shards import PASSWORD, ctl_socket, owner

SRV = "_xmpp-sm._tcp.sm.example"
SM = {"sm0.example": "127.0.0.6", "sm1.example": "127.0.0.7"}
PORT = 5280
FEDNS_RECORDS = {**{name: ("A", ip) for name, ip in SM.items()},
                 SRV: [("SRV", "sm0.example", PORT)]}
NAMES = [f"{n}:{PORT}" for n in SM]


def _domain(cert):
    crt, key = cert
    return f"domains:\n  - name: localhost\n    cert: {crt}\n    key: {key}\n"


def _discover(interval=1):
    return f"backend:\n  discover:\n    srv: {SRV}\n    interval: {interval}\n  secret: \"s3cret\"\n"


def test_discovery_adds_a_shard(fedns, tmp_path, sockdir, cert):
    names = NAMES
    # stay: owned by sm0 in both sets; move: by sm1 once it is in the set.
    stay = next(f"u{i}" for i in range(2000) if owner(f"u{i}@localhost", names) == 0)
    move = next(f"u{i}" for i in range(2000) if owner(f"u{i}@localhost", names) == 1)
    procs = []

    def start(argv, name):
        p = fedns.popen(argv, name, log=tmp_path / f"{name}.log", env=child_env(), ok_codes=(0,))
        procs.append(p)
        return p

    def text(p):
        return p.log.read_text(errors="replace")

    sms = []
    for i, (host, ip) in enumerate(SM.items()):
        cfg = tmp_path / f"sm{i}.yaml"
        cfg.write_text("log_level: debug\n" + _domain(cert) + _discover() +
                       "session_server:\n"
                       f"  database: {tmp_path / 'accounts.db'}\n"
                       f"  admin_socket: {sockdir / f'sm{i}.sock'}\n"
                       f"  listen: \"{ip}:{PORT}\"\n  shard: \"{host}:{PORT}\"\n  secret: \"s3cret\"\n")
        sms.append(start([str(binary("xedge-sm")), "-c", str(cfg)], f"sm{i}"))
        fedns.wait_listening(ip, PORT, sms[-1])
    c2s = free_port()
    edge_cfg = tmp_path / "edge.yaml"
    edge_cfg.write_text("workers: 2\nlog_level: debug\n" + _domain(cert) +
                        f"listeners:\n  - type: c2s\n    address: 127.0.0.1:{c2s}\n"
                        "stream_management:\n  enabled: true\n" + _discover())
    edge = start([str(binary("xedge")), "-c", str(edge_cfg)], "edge")
    try:
        wait_until(lambda: text(edge).count("session server link up") >= 2,
                   what="both workers linked to sm0, found by SRV")
        assert "not in the shard set" in text(sms[1])
        for u in (stay, move):
            r = ctl_socket(sockdir / "sm0.sock", "user", "add", f"{u}@localhost", PASSWORD)
            assert r.returncode == 0, r
        sent, total = [], 60

        async def main():
            loop = asyncio.get_running_loop()
            enabled = loop.create_future()
            starts = []
            m = Client(f"{move}@localhost", PASSWORD)
            m.register_plugin("xep_0198")
            m.add_event_handler("sm_enabled", lambda e: enabled.done() or enabled.set_result(e))
            m.add_event_handler("session_start", lambda _: starts.append(1))
            s = None
            try:
                await m.login(c2s)
                await asyncio.wait_for(enabled, 10)
                s = Client(f"{stay}@localhost", PASSWORD)
                errors = asyncio.Queue()   # bounces: slixmpp's 'message' event wants a <body/>
                s.add_event_handler("message_error", errors.put_nowait)
                await s.login(c2s)
                full = m.boundjid.full
                assert f'jid="{full}"' in text(sms[0])
                for i in range(total):
                    mid = f"d{i}"
                    msg = s.make_message(mto=full, mbody=mid, mtype="chat")
                    msg["id"] = mid
                    msg.send()
                    sent.append(mid)
                    if i == 5:
                        await asyncio.to_thread(fedns.dns_records, {SRV: [("SRV", "sm0.example", PORT),
                                                                          ("SRV", "sm1.example", PORT)]})
                    await asyncio.sleep(0.1)
                await asyncio.to_thread(wait_until, lambda: f'jid="{full}"' in text(sms[1]), 30,
                                        "the XEP-0198 session bound again on sm1")
                got, bounced = set(), set()
                deadline = loop.time() + 30
                while got | bounced != set(sent) and loop.time() < deadline:
                    for q, bucket, err in ((m.messages, got, False), (errors, bounced, True)):
                        try:
                            x = await asyncio.wait_for(q.get(), 0.2)
                        except asyncio.TimeoutError:
                            continue
                        if (x["type"] == "error") == err and x["id"] in sent:
                            bucket.add(x["id"] if err else x["body"])
                assert got | bounced == set(sent), (sorted(set(sent) - got - bounced), sorted(bounced))
                assert not m.closed.done() and m.stream_errors == [] and len(starts) == 1
                s.send_message(mto=full, mbody="across the change", mtype="chat")
                await m.next_message(10, body="across the change")
                m.send_message(mto=s.boundjid.full, mbody="from sm1", mtype="chat")
                await s.next_message(10, body="from sm1")
            finally:
                await close_all(m, s)
        with fedns.enter():
            run(main(), timeout=150)
        assert "shard set changed" in text(edge) and "shard added" in text(edge)
    finally:
        problems = []
        for p in reversed(procs):
            problems += fedns.stop(p)
        if problems:
            pytest.fail("shutdown:\n  " + "\n  ".join(problems), pytrace=False)


def test_restarted_shard_found_at_its_new_address(fedns, tmp_path, sockdir, cert):
    """backend.shards names a shard by DNS name: when its process comes back on another
    address (a pod restarted elsewhere) and DNS says so, the edge looks the name up again
    at its next reconnect and links to the new address; the XEP-0198 session that waited
    is bound there again, and the shard keeps its users (its name, not its address, is
    the hash input)."""
    fedns.dns_records({"sm0.example": ("A", "127.0.0.6"), "sm1.example": ("A", "127.0.0.7")})
    names = NAMES
    move = next(f"u{i}" for i in range(2000) if owner(f"u{i}@localhost", names) == 1)
    stay = next(f"u{i}" for i in range(2000) if owner(f"u{i}@localhost", names) == 0)
    shards = "".join(f"    - \"{n}\"\n" for n in names)
    procs = []

    def start(argv, name):
        p = fedns.popen(argv, name, log=tmp_path / f"{name}.log", env=child_env(), ok_codes=(0,))
        procs.append(p)
        return p

    def text(p):
        return p.log.read_text(errors="replace")

    def sm_cfg(i, ip):
        cfg = tmp_path / f"sm{i}-{ip}.yaml"
        cfg.write_text("log_level: debug\n" + _domain(cert) + f"backend:\n  shards:\n{shards}" +
                       "session_server:\n"
                       f"  database: {tmp_path / 'accounts.db'}\n"
                       f"  admin_socket: {sockdir / f'sm{i}.sock'}\n"
                       f"  listen: \"{ip}:{PORT}\"\n  shard: \"{names[i]}\"\n  secret: \"s3cret\"\n")
        return cfg

    sms = []
    for i, ip in enumerate(("127.0.0.6", "127.0.0.7")):
        sms.append(start([str(binary("xedge-sm")), "-c", str(sm_cfg(i, ip))], f"sm{i}"))
        fedns.wait_listening(ip, PORT, sms[-1])
    c2s = free_port()
    edge_cfg = tmp_path / "edge.yaml"
    edge_cfg.write_text("workers: 1\nlog_level: debug\n" + _domain(cert) +
                        f"listeners:\n  - type: c2s\n    address: 127.0.0.1:{c2s}\n"
                        "stream_management:\n  enabled: true\n"
                        f"backend:\n  shards:\n{shards}  secret: \"s3cret\"\n")
    edge = start([str(binary("xedge")), "-c", str(edge_cfg)], "edge")
    try:
        wait_until(lambda: text(edge).count("session server link up") >= 2, what="both shards linked by name")
        for k, u in ((0, stay), (1, move)):
            r = ctl_socket(sockdir / f"sm{k}.sock", "user", "add", f"{u}@localhost", PASSWORD)
            assert r.returncode == 0, r

        async def main():
            loop = asyncio.get_running_loop()
            enabled = loop.create_future()
            starts = []
            m = Client(f"{move}@localhost", PASSWORD)
            m.register_plugin("xep_0198")
            m.add_event_handler("sm_enabled", lambda e: enabled.done() or enabled.set_result(e))
            m.add_event_handler("session_start", lambda _: starts.append(1))
            s = None
            try:
                await m.login(c2s)
                await asyncio.wait_for(enabled, 10)
                s = await Client(f"{stay}@localhost", PASSWORD).login(c2s)
                full = m.boundjid.full
                # sm1 goes away and comes back on another address, which DNS now gives.
                problems = await asyncio.to_thread(fedns.stop, sms[1])
                assert problems == [], problems
                await asyncio.to_thread(wait_until, lambda: "session waits for its shard to return"
                                        in text(edge), 10, "the session waiting for sm1")
                await asyncio.to_thread(fedns.dns_records, {"sm1.example": ("A", "127.0.0.8")})
                again = start([str(binary("xedge-sm")), "-c", str(sm_cfg(1, "127.0.0.8"))], "sm1b")
                await asyncio.to_thread(fedns.wait_listening, "127.0.0.8", PORT, again)
                await asyncio.to_thread(wait_until, lambda: f'jid="{full}"' in text(again), 40,
                                        "the session bound again on sm1 at its new address")
                s.send_message(mto=full, mbody="new address", mtype="chat")
                await m.next_message(10, body="new address")
                m.send_message(mto=s.boundjid.full, mbody="same name", mtype="chat")
                await s.next_message(10, body="same name")
                assert not m.closed.done() and m.stream_errors == [] and len(starts) == 1
            finally:
                await close_all(m, s)
        with fedns.enter():
            run(main(), timeout=120)
    finally:
        problems = []
        for p in reversed(procs):
            if p is not sms[1]:
                problems += fedns.stop(p)
        if problems:
            pytest.fail("shutdown:\n  " + "\n  ".join(problems), pytrace=False)
