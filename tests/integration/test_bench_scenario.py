"""xedge-bench runs scenario files (issue 15, the executor): users arrive by the file's phases
(a ramp, then a constant rate), each runs its session's steps, and the report counts what they
did.  A mixed scenario against xedge (askers whose questions the answerers' `reply` step
answers, idlers that drop their connection, MUC talkers, pingers, PEP and PubSub publishers):
the arrivals of each phase, every step's transaction counts (logins == arrivals, every question
answered, every ping answered, every item published, every talker's own messages back), the
file's thresholds passing; a failing threshold is exit status 3; a bad file is exit status 2
naming FILE:LINE.  The same kind of scenario against Prosody (peers.py).  The load generator is
the release build in build/, as in test_bench_report.py (XEDGE_BENCH: another build)."""
import concurrent.futures
import json
import os
import re
import subprocess

import pytest

from conftest import REPO
from peers import prosody  # noqa: F401

BENCH = os.environ.get("XEDGE_BENCH", str(REPO / "build" / "xedge-bench"))   # or a sanitizer build
SERVICES = ("services:\n  muc:\n    domain: conference.localhost\n"
            "  pubsub:\n    domain: pubsub.localhost\n")

# 24 users: a ramp 4/s -> 12/s over 2 s starts 16, then 8/s for 1 s starts 8.  Weights
# 2:2:1:1:1:1 give exactly 6 askers, 6 answerers and 3 of each other session.
MIXED = """\
name: mixed-test
target: {domain: localhost, tls: starttls}
users: {prefix: bsc, password: bsc-pw, count: 24}
phases:
  - ramp: [4/s, 12/s]
    duration: 2s
  - arrival: 8/s
    duration: 1s
concurrency: 50
timeout: 5s
sessions:
  - name: asker
    weight: 2
    steps:
      - connect
      - auth: scram-sha-1
      - bind
      - presence
      - roster
      - think: 200ms
      - loop:
          count: 3
          steps:
            - chat: {to: "session:answerer", wait_reply: true, body: 100}
            - think: {uniform: [50ms, 100ms]}
      - logout
  - name: answerer
    weight: 2
    steps: [connect, {auth: plain}, bind, presence, roster, {reply: 6s}, logout]
  - name: idler
    weight: 1
    steps:
      - connect
      - auth
      - bind
      - presence: {show: away, status: "in a meeting"}
      - roster
      - idle: 1s
      - drop
  - name: talker
    weight: 1
    steps:
      - connect
      - auth
      - bind
      - presence
      - join: {room: "t{run}r{n}", nick: "n{i}"}
      - groupchat: {rate: 10/s, count: 4}
      - leave
      - logout
  - name: pinger
    weight: 1
    steps:
      - connect
      - auth
      - bind
      - loop: {count: 3, steps: [ping, {think: 50ms}]}
      - logout
  - name: publisher
    weight: 1
    steps:
      - connect
      - auth
      - bind
      - publish: {items: 2}
      - publish: {to: service, node: "b{run}-{user}"}
      - logout
thresholds:
  - "login.count == 24"
  - "ping.count == 9"
  - "errors.count == 0"
  - "message_rtt.p99 < 5s"
"""


def run(*args, timeout=90):
    return subprocess.run([BENCH, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def add_users(server, prefix, pw, n):
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda i: server.ctl("user", "add", f"{prefix}{i}@localhost", pw), range(n)))


def tx(res, name):
    return res["transactions"][name]


@pytest.mark.parametrize("server", [{"extra_edge_yaml": SERVICES}], indirect=True)
def test_mixed_scenario_against_xedge(server, tmp_path):
    add_users(server, "bsc", "bsc-pw", 24)
    f = tmp_path / "mixed.yaml"
    f.write_text(MIXED)
    out = tmp_path / "mixed.json"
    r = run("--port", server.c2s_port, "-s", f, "--json", out, "--csv", tmp_path / "m.csv",
            "--html", tmp_path / "m.html")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "thresholds: all 4 passed" in r.stdout, r.stdout
    # the live line of a scenario run: users alive and arrivals per second
    assert re.search(r"users \d+ +online \d+ +arrivals/s \d+", r.stderr), r.stderr[-1000:]
    res = json.loads(out.read_text())
    sf = res["scenario_file"]
    assert res["scenario"] == "mixed-test"
    assert [p["planned"] for p in sf["phases"]] == [16, 8]
    assert [p["arrived"] for p in sf["phases"]] == [16, 8], sf
    assert (sf["arrived"], sf["rejected"], sf["finished"]) == (24, 0, 24), sf
    ses = {s["name"]: s for s in sf["sessions"]}
    want = {"asker": 6, "answerer": 6, "idler": 3, "talker": 3, "pinger": 3, "publisher": 3}
    for name, n in want.items():
        assert ses[name]["planned"] == ses[name]["started"] == ses[name]["finished"] == n, ses
    # every step's transaction
    assert res["errors"]["count"] == 0, res["errors"]
    assert tx(res, "connect")["count"] == tx(res, "login")["count"] == 24
    assert tx(res, "auth")["count"] == tx(res, "bind")["count"] == 24
    assert tx(res, "roster")["count"] == 6 + 6 + 3
    assert tx(res, "ping")["count"] == 9 and sf["pings"] == 9
    assert tx(res, "publish")["count"] == 3 * 3 and sf["published"] == 9
    assert tx(res, "join")["count"] == 3 and sf["groupchat"]["join_failed"] == 0
    chat = sf["chat"]
    assert chat["asked"] == chat["sent"] == 6 * 3
    assert chat["answered"] == chat["replies"] == chat["received"] == chat["asked"], chat
    gc = sf["groupchat"]
    assert gc["sent"] == 3 * 4
    # every talker gets its own 4 copies back, and those of the others in the room with it
    assert gc["sent"] <= gc["delivered"] <= 3 * gc["sent"], gc
    # message_rtt: the round trips of the questions, and every group-chat delivery
    assert tx(res, "message_rtt")["count"] == chat["answered"] + gc["delivered"]
    # room_fanout: the messages every talker then in the room received (a talker that left
    # before another's message reached it leaves that one incomplete)
    assert 1 <= tx(res, "room_fanout")["count"] <= gc["sent"], tx(res, "room_fanout")
    assert res["logins"]["logged_in"] == 24 and res["logins"]["failed"] == 0
    assert "scenario mixed-test" in r.stdout and "asker" in r.stdout
    assert (tmp_path / "m.html").read_text().count("<svg") >= 1

    # a failing threshold (the file's and the command line's together): exit status 3
    small = tmp_path / "small.yaml"
    small.write_text("name: small\nusers: {prefix: bsc, password: bsc-pw}\n"
                     "phases: [{users: 3}]\n"
                     "sessions:\n  - name: p\n    steps: [connect, auth, bind, ping, logout]\n"
                     "thresholds:\n  - \"ping.count == 3\"\n  - \"ping.p99 < 1us\"\n")
    r = run("--port", server.c2s_port, "-s", small, "--threshold", "login.count == 3")
    assert r.returncode == 3, r.stdout[-2000:] + r.stderr[-2000:]
    assert "threshold FAILED: ping.p99 < 1us" in r.stdout, r.stdout
    assert "ping.count == 3" not in r.stdout.split("threshold FAILED")[-1]

    # max_users: a burst of 6 while 2 may be alive: 4 arrivals are refused, by cause
    cap = tmp_path / "cap.yaml"
    cap.write_text("name: cap\nusers: {prefix: bsc, password: bsc-pw}\nphases: [{users: 6}]\n"
                   "max_users: 2\nsessions:\n  - name: i\n"
                   "    steps: [connect, auth, bind, {idle: 1s}, logout]\n")
    out = tmp_path / "cap.json"
    r = run("--port", server.c2s_port, "-s", cap, "--json", out)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads(out.read_text())
    sf = res["scenario_file"]
    assert (sf["arrived"], sf["rejected"], sf["finished"]) == (6, 4, 2), sf
    assert res["errors"]["by_cause"] == {"arrival:max-users": 4}, res["errors"]
    assert tx(res, "login")["count"] == 2 and tx(res, "login")["errors"] == 0

    # concurrency: 6 users due at once, one login in progress per thread: 4 of them wait
    conc = tmp_path / "conc.yaml"
    conc.write_text("name: conc\nusers: {prefix: bsc, password: bsc-pw}\nphases: [{users: 6}]\n"
                    "concurrency: 2\nsessions:\n  - name: l\n"
                    "    steps: [connect, auth, bind, roster, logout]\n")
    r = run("--port", server.c2s_port, "--threads", 2, "-s", conc, "--json", out)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads(out.read_text())
    sf = res["scenario_file"]
    assert (sf["arrived"], sf["waited"], sf["finished"]) == (6, 4, 6), sf
    assert tx(res, "login")["count"] == 6


# 4 users, every kind of one-to-one chat: to the pair's other user (open loop, a rate), to
# themselves, to random online users (a closed loop of 2 in flight); barriers keep everyone
# online until every message is out, so each one must arrive.
PAIRS = """\
name: pairs
users: {prefix: bsc, password: bsc-pw}
phases: [{users: 4}]
sessions:
  - name: pair
    steps:
      - connect
      - auth
      - bind
      - presence
      - wait: {for: presence}       # our own initial presence, broadcast back (RFC 6121 4.2.2)
      - roster
      - sm
      - barrier
      - chat: {to: peer, rate: 20/s, count: 5}
      - chat: {to: self, count: 3, body: 10}
      - chat: {to: random, window: 2, count: 10, peers: 3}
      - think: 300ms
      - barrier
      - logout
"""


@pytest.mark.parametrize("server", [{"extra_edge_yaml": SERVICES}], indirect=True)
def test_chat_kinds_over_direct_tls(server, tmp_path):
    add_users(server, "bsc", "bsc-pw", 4)
    f = tmp_path / "pairs.yaml"
    f.write_text(PAIRS)
    out = tmp_path / "pairs.json"
    # the command line overrides the file's target: Direct TLS on the fixture's port
    r = run("--tls", "direct", "--port", server.tls_port, "-s", f, "--json", out,
            "--threshold", "message_rtt.count == 72")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "direct TLS" in r.stderr
    res = json.loads(out.read_text())
    chat = res["scenario_file"]["chat"]
    assert res["errors"]["count"] == 0, res["errors"]
    assert chat["sent"] == chat["received"] == 4 * (5 + 3 + 10), chat
    assert chat["sent_measured"] == chat["received_measured"] == chat["sent"], chat
    # no closed-loop window waited for its timeout (a receipt of the step before must not
    # stand for one of this step's messages)
    assert chat["window_timeouts"] == 0, chat
    assert tx(res, "tls")["count"] == tx(res, "login")["count"] == 4
    assert res["scenario_file"]["finished"] == 4

    # streams only (as -s connect): the login is the stream's features; the goodbye before
    # authentication is a clean </stream:stream>
    streams = tmp_path / "streams.yaml"
    streams.write_text("name: streams\nphases: [{users: 3}]\n"
                       "sessions:\n  - name: s\n    steps: [connect, logout]\n")
    r = run("--tls", "direct", "--port", server.tls_port, "-s", streams, "--json", out)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert tx(res, "login")["count"] == 3 and res["errors"]["count"] == 0, res["errors"]

    # slots are reused: max_users 2 on one thread is a pool of 6 slots, and 10 short-lived
    # users pass through it (a loaded machine may keep one alive long enough to refuse one)
    reuse = tmp_path / "reuse.yaml"
    reuse.write_text("name: reuse\nusers: {prefix: bsc, password: bsc-pw, count: 4}\n"
                     "phases: [{arrival: 4/s, duration: 2500ms}]\nmax_users: 2\n"
                     "sessions:\n  - name: s\n    steps: [connect, auth, bind, logout]\n")
    r = run("--tls", "direct", "--port", server.tls_port, "--threads", 1, "-s", reuse,
            "--json", out)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    sf = json.loads(out.read_text())["scenario_file"]
    assert sf["arrived"] == 10 and sf["finished"] + sf["rejected"] == 10, sf
    assert sf["finished"] >= 7, sf


SLICED = """\
name: sliced
users: {prefix: bsc, password: bsc-pw, count: 4}
phases: [{arrival: 20/s, duration: 1s}]
sessions:
  - {name: pinger, steps: [connect, auth, bind, ping, logout]}
  - {name: quiet, steps: [connect, auth, bind, logout]}
"""


@pytest.mark.parametrize("server", [{"extra_edge_yaml": SERVICES}], indirect=True)
def test_scenario_slices_merge_to_the_whole(server, tmp_path):
    """A scenario file run as 3 slices (--index/--count): every 3rd user of the one schedule
    each; merged, the counts of the whole load (20 users, the 10 pingers' pings)."""
    add_users(server, "bsc", "bsc-pw", 4)
    f = tmp_path / "sliced.yaml"
    f.write_text(SLICED)
    outs = []
    for i in range(3):
        out = tmp_path / f"s{i}.json"
        r = run("--port", server.c2s_port, "-s", f, "--index", i, "--count", 3, "--json", out)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        assert f"slice {i} of 3: every 3-th user of 20 from user {i}" in r.stderr, r.stderr
        sf = json.loads(out.read_text())["scenario_file"]
        assert sf["slice"] == {"index": i, "count": 3}
        assert sf["planned"] == sf["arrived"] == sf["finished"] == (7, 7, 6)[i], sf
        outs.append(out)
    merged = tmp_path / "merged.json"
    r = run("merge", "-o", merged, *outs)
    assert r.returncode == 0, r.stdout + r.stderr
    m = json.loads(merged.read_text())
    assert m["inputs"] == 3
    assert tx(m, "login")["count"] == 20 and tx(m, "ping")["count"] == 10
    assert m["errors"]["count"] == 0


def test_bad_scenario_files_exit_2_naming_the_line(tmp_path):
    cases = {
        # an unknown step, line 4
        "unknown.yaml": ("phases: [{users: 1}]\nsessions:\n  - name: a\n    steps: [connect, fly]\n",
                         r"unknown\.yaml:4: "),
        # a threshold that does not parse: its own line
        "thr.yaml": ("phases: [{users: 1}]\nsessions:\n  - name: a\n    steps: [connect]\n"
                     "thresholds:\n  - \"login.p99 < 10 parsecs\"\n", r"thr\.yaml:6: "),
    }
    for name, (text, want) in cases.items():
        p = tmp_path / name
        p.write_text(text)
        r = run("-s", p, "--port", "1")
        assert r.returncode == 2, (name, r.returncode, r.stderr)
        assert re.search(want, r.stderr), (name, r.stderr)
    r = run("-s", tmp_path / "missing.yaml")
    assert r.returncode == 2 and "missing.yaml" in r.stderr, r.stderr


PROSODY_MIXED = """\
name: prosody-test
target: {domain: localhost, tls: plain}
users: {prefix: psc, password: psc-pw, count: 8}
phases:
  - ramp: [4/s, 4/s]
    duration: 2s
timeout: 5s
sessions:
  - name: asker
    weight: 2
    steps:
      - connect
      - auth: scram-sha-1
      - bind
      - presence
      - roster
      - think: 300ms
      - loop:
          count: 3
          steps:
            - chat: {to: "session:answerer", wait_reply: true}
      - logout
  - name: answerer
    weight: 2
    steps: [connect, {auth: plain}, bind, presence, roster, {reply: 4s}, logout]
  - name: pinger
    weight: 1
    steps: [connect, {auth: scram-sha-1}, bind, ping, ping, logout]
  - name: publisher
    weight: 1
    steps: [connect, {auth: scram-sha-1}, bind, presence, {publish: {items: 2}}, logout]
  - name: talker
    weight: 1
    steps:
      - connect
      - auth: scram-sha-1
      - bind
      - presence
      - join: {room: "p{run}", nick: "{user}"}
      - groupchat: {count: 3}
      - leave
      - logout
  - name: idler
    weight: 1
    steps: [connect, {auth: scram-sha-1}, bind, presence, {idle: 500ms}, drop]
"""


@pytest.mark.parametrize("prosody", [{"modules": ("pep",),
                                      "extra_config": 'Component "conference.localhost" "muc"\n'}],
                         indirect=True)
def test_mixed_scenario_against_prosody(prosody, tmp_path):
    for i in range(8):
        prosody.register(f"psc{i}", "psc-pw")
    f = tmp_path / "prosody.yaml"
    f.write_text(PROSODY_MIXED)
    out = tmp_path / "p.json"
    r = run("--port", prosody.c2s_port, "-s", f, "--json", out)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads(out.read_text())
    sf = res["scenario_file"]
    # 8 users: 2 askers, 2 answerers, one of each other session
    assert (sf["arrived"], sf["finished"]) == (8, 8), sf
    assert res["errors"]["count"] == 0, res["errors"]
    assert tx(res, "login")["count"] == 8 and tx(res, "bind")["count"] == 8
    assert sf["chat"]["asked"] == sf["chat"]["answered"] == 2 * 3, sf["chat"]
    assert tx(res, "ping")["count"] == 2
    assert tx(res, "publish")["count"] == 2
    assert tx(res, "join")["count"] == 1
    assert sf["groupchat"]["sent"] == sf["groupchat"]["delivered"] == 3, sf["groupchat"]
    assert tx(res, "room_fanout")["count"] == 3     # one occupant of ours: its own copies
