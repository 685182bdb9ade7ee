"""xedge-bench's scenario steps, every one of them, against xedge and against Prosody.

One scenario (EVERY) holds every step type the executor runs over a TCP stream (the ws
and wss transports are test_bench_ws.py's, the resume step test_bench_resume.py's); it
runs over STARTTLS and over Direct TLS, against xedge (embedded session server, MUC and
PubSub services) and against Prosody 0.12 (mod_muc, mod_pubsub, mod_pep, mod_smacks).
The assertions are the effects a user of the tool reads in the JSON: the transaction of
each step counted for each user that ran it, the messages delivered, no error.
test_every_step_is_covered keeps the list honest: a step added to docs/bench.md's
reference without a run here fails it.
"""
import json
import re
from pathlib import Path

import pytest

from conftest import REPO
from peers import prosody  # noqa: F401
from test_bench_scenario import SERVICES, add_users, run, tx

# 7 users, one burst: weights 2:1:1:1:1:1 give 2 talkers and one of each other session.
# {auth} is the mechanism of the run (Prosody 0.12 has no SCRAM-SHA-256).
EVERY = """\
name: every-step
target: {{domain: localhost}}
users: {{prefix: bst, password: bst-pw, count: 7}}
phases: [{{users: 7}}]
timeout: 10s
sessions:
  - name: talker
    weight: 2
    steps:
      - connect
      - auth: {auth}
      - bind
      - sm: {{resume: false}}
      - presence: {{show: chat, status: "benching", priority: 3}}
      - roster
      - barrier               # the two talkers meet
      - think: 200ms
      - chat: {{to: "session:listener", peers: 1, rate: 20/s, count: 5, body: 32}}
      - chat: {{to: self, count: 3}}
      - chat: {{to: "session:answerer", peers: 1, wait_reply: true, count: 2}}
      - think: {{exp: 20ms}}
      - ping
      - logout
  - name: listener
    weight: 1
    steps:
      - connect
      - auth: plain
      - bind
      - presence
      - roster
      - wait: {{for: message}}
      - idle: 1500ms
      - logout
  - name: answerer
    weight: 1
    steps: [connect, {{auth: {auth}}}, bind, presence, roster, {{reply: {{count: 4}}}}, logout]
  - name: roomie
    weight: 1
    steps:
      - connect
      - auth: {auth}
      - bind
      - presence
      - join: {{room: "bst{{run}}", nick: "{{user}}"}}
      - groupchat: {{count: 3}}
      - leave
      - loop:
          count: 2
          steps: [{{think: {{uniform: [10ms, 30ms]}}}}, ping]
      - logout
  - name: publisher
    weight: 1
    steps:
      - connect
      - auth: {auth}
      - bind
      - publish: {{items: 2}}
      - publish: {{to: service, node: "bst{{run}}-{{user}}"}}
      - idle: 300ms
      - drop
  - name: streams
    weight: 1
    steps: [connect, logout]
"""

# Every step type EVERY runs (the reference's others are tested where named above).
COVERED = {"connect", "auth", "bind", "sm", "presence", "roster", "barrier", "think", "chat",
           "ping", "logout", "wait", "idle", "reply", "join", "groupchat", "leave", "loop",
           "publish", "drop"}
ELSEWHERE = {"resume": "test_bench_resume.py"}


def check_every(res, mech):
    """What a user of the tool reads in the JSON of one EVERY run."""
    sf = res["scenario_file"]
    assert res["errors"]["count"] == 0, res["errors"]
    assert (sf["arrived"], sf["finished"]) == (7, 7), sf
    # connect: all 7; a login is the stream's features for `streams`, the roster or the
    # bind for the others
    assert tx(res, "connect")["count"] == 7 and tx(res, "tls")["count"] == 7
    assert tx(res, "login")["count"] == 7
    assert tx(res, "auth")["count"] == 6 and tx(res, "bind")["count"] == 6
    assert tx(res, "roster")["count"] == 4          # 2 talkers, listener, answerer
    # chat: 2 talkers x (5 to the listener + 3 to themselves) one-way (measured), and
    # 2 x 2 questions, each answered by the answerer's reply step
    chat = sf["chat"]
    assert chat["sent"] == chat["received"] == 2 * (5 + 3) + 2 * 2, json.dumps(chat)
    assert chat["sent_measured"] == chat["received_measured"] == 2 * (5 + 3), json.dumps(chat)
    assert chat["asked"] == chat["answered"] == chat["replies"] == 2 * 2, json.dumps(chat)
    assert chat["window_timeouts"] == 0, json.dumps(chat)
    # ping: 2 talkers once, the roomie twice in its loop
    assert tx(res, "ping")["count"] == 2 + 2
    assert tx(res, "join")["count"] == 1
    assert sf["groupchat"]["sent"] == sf["groupchat"]["delivered"] == 3, sf["groupchat"]
    assert tx(res, "publish")["count"] == 3        # 2 PEP items, 1 to the service
    # message_rtt: 16 one-way at their receivers, 4 round trips, 3 room copies
    assert tx(res, "message_rtt")["count"] == 16 + 4 + 3
    assert tx(res, "message_rtt")["errors"] == 0


def run_every(tmp_path, name, mech, tls, port, *extra):
    f = tmp_path / f"{name}.yaml"
    f.write_text(EVERY.format(auth=mech))
    out = tmp_path / f"{name}-{tls}.json"
    r = run("--tls", tls, "--port", port, "-s", f, "--json", out, *extra)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("server", [{"extra_edge_yaml": SERVICES}], indirect=True)
def test_every_step_against_xedge(server, tmp_path):
    add_users(server, "bst", "bst-pw", 7)
    for tls, port in (("starttls", server.c2s_port), ("direct", server.tls_port)):
        res = run_every(tmp_path, "xedge", "scram-sha-256", tls, port)
        check_every(res, "scram-sha-256")


# Prosody's mod_pubsub lets only admins create nodes, and a publish to a new node creates it
PROSODY_SERVICES = ("admins = { " + ", ".join(f'"bst{i}@localhost"' for i in range(7)) + " }\n"
                    'Component "conference.localhost" "muc"\n'
                    'Component "pubsub.localhost" "pubsub"\n'
                    "    autocreate_on_publish = true\n")


@pytest.mark.parametrize("prosody", [{"tls": True, "direct_tls": True, "modules": ("pep", "smacks"),
                                      "extra_config": PROSODY_SERVICES}], indirect=True)
def test_every_step_against_prosody(prosody, tmp_path):
    for i in range(7):
        prosody.register(f"bst{i}", "bst-pw")
    for tls, port in (("starttls", prosody.c2s_port), ("direct", prosody.tls_port)):
        res = run_every(tmp_path, "prosody", "scram-sha-1", tls, port)
        check_every(res, "scram-sha-1")
    # Prosody 0.12 offers no SCRAM-SHA-256: the generator says so for every user and
    # exits 0 (no threshold set), counting the logins failed by cause.
    f = tmp_path / "sha256.yaml"
    f.write_text("name: sha256\nusers: {prefix: bst, password: bst-pw, count: 2}\n"
                 "phases: [{users: 2}]\ntimeout: 5s\n"
                 "sessions:\n  - name: s\n    steps: [connect, {auth: scram-sha-256}, bind, logout]\n")
    out = tmp_path / "sha256.json"
    r = run("--tls", "starttls", "--port", prosody.c2s_port, "-s", f, "--json", out,
            "--threshold", "errors.count == 0")
    assert r.returncode == 3, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["errors"]["count"] == 2, res["errors"]
    causes = res["errors"]["by_cause"]
    assert any("mechanism" in k or "auth" in k for k in causes), causes


def test_every_step_is_covered():
    """Every step in docs/bench.md's step reference runs in EVERY or in a named suite."""
    doc = (REPO / "docs" / "bench.md").read_text()
    ref = doc.split("### Steps", 1)[1].split("### Static checks", 1)[0]
    steps = set(re.findall(r"^\| `([a-z_]+)` \|", ref, re.M))
    assert len(steps) >= 20, steps
    missing = steps - COVERED - set(ELSEWHERE)
    assert not missing, f"steps with no integration run: {sorted(missing)}"
    assert COVERED <= steps, f"COVERED names steps the reference lacks: {COVERED - steps}"
    for step in COVERED:
        assert re.search(rf"(^|[\s\[{{,]){step}\b", EVERY, re.M), f"EVERY does not run {step}"
    for step, suite in ELSEWHERE.items():
        text = (Path(__file__).parent / suite).read_text()
        assert re.search(rf"^\s*- {step}\b", text, re.M), f"{suite} runs no {step} step"
