"""xedge-bench's muc scenario (issue 14) against xedge's group-chat service: every occupant joins
(the rooms' first clients create them and accept the instant room), every groupchat message
reaches every occupant of its room, the sender included, and the report says so — the
measurement `make bench-muc` builds on.  The load generator is the release build in build/,
as in test_reload.py."""
import concurrent.futures
import json
import subprocess

import pytest

from conftest import REPO

MUC = "conference.localhost"
ROOMS, SIZE = 3, 4


@pytest.mark.parametrize("server", [{"extra_edge_yaml": f"services:\n  muc:\n    domain: {MUC}\n"}],
                         indirect=True)
def test_every_groupchat_message_reaches_every_occupant(server, tmp_path):
    n = ROOMS * SIZE
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda i: server.ctl("user", "add", f"mb{i}@localhost", "mb-pw"), range(n)))
    out = tmp_path / "muc.json"
    r = subprocess.run(
        [str(REPO / "build" / "xedge-bench"), "--port", str(server.c2s_port), "--threads", "2",
         "--user-prefix", "mb", "--password", "mb-pw", "--mech", "SCRAM-SHA-1",
         "--scenario", "muc", "--rooms", str(ROOMS), "--room-size", str(SIZE), "--rate", "4",
         "--join-rate", "50", "--settle", "0", "--warmup", "1", "--duration", "3", "--drain", "10",
         "--timeout", "30", "--login-time", "60", "--json", str(out)],
        capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["logins"]["logged_in"] == n and res["logins"]["failed"] == 0, res["logins"]
    m = res["muc"]
    assert (m["rooms"], m["room_size"], m["domain"]) == (ROOMS, SIZE, MUC)
    assert m["joined"] == n and m["join_failed"] == 0, res["failures"]
    # About 4 messages/s from each of the 12 occupants over the 3 measured seconds, each
    # expected by the 4 occupants of its room and delivered to every one of them.
    assert m["sent"] >= n * 4 * 3 // 2, m
    assert m["expected"] == m["sent"] * SIZE, m
    assert m["delivered"] == m["expected"] and m["lost"] == 0, m
    assert m["complete"] == m["sent"] and m["misrouted"] == 0, m
    assert m["latency_ms"]["last"]["count"] >= m["sent"]
    assert m["latency_ms"]["last"]["p99"] >= m["latency_ms"]["delivery"]["p50"] > 0
    assert "delivered" in r.stdout and "0 failed to join" in r.stdout
