"""The -s scenarios as the shipped files (issue 15: make bench-compare runs them): the files of
bench/scenarios/ given their sizes with --var measure what the -s modes measure.  chat.yaml in a
closed loop and in an open loop: the message window is the chat step's last SEND - warmup
seconds (messages.measured_s, rates over it), every message sent is received; idle.yaml with
--settle and --pid: the target's memory per session with every user online; tsung-chat.yaml:
exactly USERS x MSGS messages, all delivered; login.yaml: USERS logins.  The errors of --var
(a variable not given, one the file does not name, --var without a file).  The load generator
is the release build in build/, as in test_bench_scenario.py (XEDGE_BENCH: another build)."""
import concurrent.futures
import json
import os
import subprocess

from conftest import REPO

BENCH = os.environ.get("XEDGE_BENCH", str(REPO / "build" / "xedge-bench"))
SCEN = REPO / "bench" / "scenarios"


def run(*args, timeout=120):
    return subprocess.run([BENCH, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def add_users(server, n):
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda i: server.ctl("user", "add", f"bench{i}@localhost", "pw"), range(n)))


def common(server, out):
    return ("--port", server.c2s_port, "--threads", 1, "--json", out,
            "--pid", server.proc().p.pid)


def test_shipped_files_with_variables(server, tmp_path):
    add_users(server, 40)
    out = tmp_path / "r.json"

    # -s chat --window 2 --warmup 1 --duration 2 --drain 1, as chat.yaml
    r = run("-s", SCEN / "chat.yaml", "--var", "USERS=10", "--var", "MECH=scram-sha-1",
            "--var", "PACE=window: 2", "--var", "SEND=3s", "--var", "DRAIN=1s", "--warmup", 1,
            *common(server, out))
    assert r.returncode in (0, 3), r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads(out.read_text())
    m = res["messages"]
    assert res["scenario"] == "chat" and res["logins"]["logged_in"] == 10, res["logins"]
    # the window: from 1 s after the chat step starts to its end, 3 s later
    assert 1.9 <= m["measured_s"] <= 2.5, m
    assert m["sent"] > 0 and m["received"] == m["sent"] and m["lost"] == 0, m
    assert abs(m["recv_per_s"] - m["received"] / m["measured_s"]) < 1, m
    assert res["latency_ms"]["message"]["count"] == m["received"], res["latency_ms"]
    # messages of the warm-up are sent but not measured
    chat = res["scenario_file"]["chat"]
    assert chat["sent"] > chat["sent_measured"] == m["sent"], chat
    assert "idle" not in res                   # no --settle: no memory sample

    # the open loop: 10 users x 20 msg/s over the 2 measured seconds
    r = run("-s", SCEN / "chat.yaml", "--var", "USERS=10", "--var", "PACE=rate: 20/s",
            "--var", "SEND=3s", "--var", "DRAIN=1s", "--warmup", 1, "--user-offset", 10,
            *common(server, out))
    assert r.returncode in (0, 3), r.stdout[-3000:] + r.stderr[-3000:]
    m = json.loads(out.read_text())["messages"]
    assert 380 <= m["sent"] <= 420 and m["received"] == m["sent"], m
    assert 180 <= m["sent_per_s"] <= 210, m

    # -s idle --settle 1, as idle.yaml: the sample while all 20 are online
    r = run("-s", SCEN / "idle.yaml", "--var", "USERS=20", "--var", "IDLE=3s", "--settle", 1,
            "--user-offset", 20, *common(server, out))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["idle"]["sessions"] == 20, res.get("idle")
    assert res["idle"]["rss_after_kib"] > 0 and res["idle"]["rss_before_kib"] > 0, res["idle"]
    assert "idle memory" in r.stdout

    # the tsung cross-check's file: 8 users x 10 messages, every one delivered
    r = run("-s", SCEN / "tsung-chat.yaml", "--var", "USERS=8", "--var", "MSGS=10",
            "--var", "THINK=50ms", "--var", "ARRIVAL_S=2s", *common(server, out))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    chat = json.loads(out.read_text())["scenario_file"]["chat"]
    assert chat["sent"] == chat["received"] == 80, chat

    r = run("-s", SCEN / "login.yaml", "--var", "USERS=30", *common(server, out))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert json.loads(out.read_text())["logins"]["logged_in"] == 30


def test_variable_errors(tmp_path):
    f = tmp_path / "v.yaml"
    f.write_text("phases:\n  - users: ${N:-2}\nsessions:\n  - name: a\n"
                 "    steps: [connect, {auth: ${MECH}}, bind]\n")
    r = run("--check-scenario", f)
    assert r.returncode == 2
    assert f"{f}:5: ${{MECH}} is not set" in r.stderr, r.stderr
    r = run("--var", "MECH=plain", "--check-scenario", f)
    assert r.returncode == 0, r.stderr
    assert "burst of 2 users" in r.stdout and "auth plain" in r.stdout, r.stdout
    r = run("--check-scenario", f, "--var", "MECH=plain", "--var", "N=7", "--var", "NN=1")
    assert r.returncode == 2 and f"{f}: --var NN: the file has no ${{NN}}" in r.stderr, r.stderr
    r = run("--var", "MECH=scram", "--check-scenario", f)
    assert r.returncode == 2 and f"{f}:5:" in r.stderr, r.stderr
    r = run("--var", "1X=2", "--check-scenario", f)
    assert r.returncode == 1 and "--var 1X=2" in r.stderr, r.stderr
    r = run("-s", "login", "--var", "N=1")
    assert r.returncode == 1 and "--var" in r.stderr, r.stderr
