"""xedge-bench's results pipeline (issue 15): three processes log in disjoint user ranges
(--user-offset), one more logs in all of them; `xedge-bench merge` of the three equals the single
run (login counts exactly, histograms bucket for bucket in total), thresholds pass and fail (exit
status 3), the HTML report is one self-contained document, the CSV has a row per second and
`xedge-bench compare` prints ratios.  The load generator is the release build in build/."""
import concurrent.futures
import csv
import json
import os
import re
import subprocess

from conftest import REPO

BENCH = os.environ.get("XEDGE_BENCH", str(REPO / "build" / "xedge-bench"))   # or a sanitizer build
SLICE, SLICES = 4, 3
N = SLICE * SLICES


def run(*args, timeout=120):
    return subprocess.run([BENCH, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def login_run(server, out, n, offset, *extra):
    return run("--port", server.c2s_port, "--threads", "1", "--user-prefix", "rp", "--password",
               "rp-pw", "--mech", "SCRAM-SHA-1", "-s", "login", "-n", n, "--user-offset", offset,
               "--timeout", "30", "--login-time", "60", "--hold", "1", "--json", out, *extra)


def test_merged_slices_equal_one_run(server, tmp_path):
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda i: server.ctl("user", "add", f"rp{i}@localhost", "rp-pw"), range(N)))
    slices = [tmp_path / f"slice{i}.json" for i in range(SLICES)]
    for i, out in enumerate(slices):
        r = login_run(server, out, SLICE, i * SLICE)
        assert r.returncode == 0, r.stderr[-2000:]
    single = tmp_path / "single.json"
    csv_path, html_path = tmp_path / "single.csv", tmp_path / "single.html"
    r = login_run(server, single, N, 0, "--csv", csv_path, "--html", html_path,
                  "--threshold", "login.count == %d" % N, "--threshold", "errors.rate < 0.1%",
                  "--threshold", "login.p99 < 30s")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "thresholds: all 3 passed" in r.stdout
    # the terminal summary's per-transaction section and the progress line's fields
    assert re.search(r"^\s+login\s+%d\s+0\s" % N, r.stdout, re.M), r.stdout
    assert "users " in r.stderr and "errors 0" in r.stderr, r.stderr[-1000:]

    one = json.loads(single.read_text())
    assert one["version"] == 2 and one["logins"]["logged_in"] == N       # v1 fields kept
    assert one["transactions"]["login"]["count"] == N
    assert sum(p["tx"].get("login", {}).get("count", 0) for p in one["timeline"]) == N

    merged = tmp_path / "merged.json"
    mhtml, mcsv = tmp_path / "merged.html", tmp_path / "merged.csv"
    r = run("merge", "-o", merged, "--html", mhtml, "--csv", mcsv,
            "--threshold", "login.count == %d" % N, *slices)
    assert r.returncode == 0, r.stdout + r.stderr
    m = json.loads(merged.read_text())
    parts = [json.loads(s.read_text()) for s in slices]
    assert m["inputs"] == SLICES
    for name in ("login", "connect", "tls", "auth"):
        got = m["transactions"][name]
        assert got["count"] == one["transactions"][name]["count"] == \
            sum(p["transactions"][name]["count"] for p in parts), name
        # every bucket is the sum of the slices' buckets
        want = {}
        for p in parts:
            for i, n in p["transactions"][name]["hist"]["buckets"]:
                want[i] = want.get(i, 0) + n
        assert dict(map(tuple, got["hist"]["buckets"])) == want, name
        assert got["hist"]["sum_ns"] == sum(p["transactions"][name]["hist"]["sum_ns"] for p in parts)
    assert m["logins"]["logged_in"] == N
    assert sum(p["tx"].get("login", {}).get("count", 0) for p in m["timeline"]) == N

    # thresholds on the merged result: a failing one is exit status 3 and a named line
    r = run("merge", "-o", tmp_path / "m2.json", "--threshold", "login.count >= %d" % (N + 1),
            "--threshold", "errors.count == 0", *slices)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "threshold FAILED: login.count >= %d (actual %d)" % (N + 1, N) in r.stdout
    assert "errors.count" not in r.stdout.split("threshold FAILED")[-1].splitlines()[0]
    r = run("merge", "-o", tmp_path / "m3.json", "--threshold", "login.p99 < 50 parsecs", *slices)
    assert r.returncode == 1 and "bad threshold" in r.stderr

    # a run's own threshold failing: exit status 3
    r = login_run(server, tmp_path / "fail.json", SLICE, 0, "--threshold", "login.p50 < 1us")
    assert r.returncode == 3, r.stdout[-1000:] + r.stderr[-1000:]
    assert "threshold FAILED: login.p50 < 1us" in r.stdout

    for h in (html_path, mhtml):
        doc = h.read_text()
        assert doc.startswith("<!DOCTYPE html>") and doc.rstrip().endswith("</html>")
        assert "<svg" in doc and "http:" not in doc and "https:" not in doc
        assert "<script" not in doc and "src=" not in doc and "<link" not in doc
        assert "login" in doc
    assert "pass" in html_path.read_text()

    rows = list(csv.DictReader(csv_path.open()))
    secs = one["timeline"]
    assert len(rows) == len(secs) >= int(one["elapsed_s"])
    assert [float(r["t"]) for r in rows] == [round(p["t"], 3) for p in secs]
    assert sum(int(r["login_count"]) for r in rows) == N
    assert sum(int(r["login_count"]) for r in csv.DictReader(mcsv.open())) == N

    r = run("compare", single, merged)
    assert r.returncode == 0, r.stderr
    assert re.search(r"B/A\s+1\.00x", r.stdout), r.stdout
    assert "login" in r.stdout and "p99" in r.stdout


# ---- scenario files: the drain, the HTML report's scenario section, merge keeps scenario_file

def add_users(server, prefix, pw, n):
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda i: server.ctl("user", "add", f"{prefix}{i}@localhost", pw), range(n)))


# Senders stopped by the run's duration in the middle of an open loop (2,000 messages/s each,
# more than the server relays here: a queue builds up): the run's drain keeps the receivers
# (idle until the end) connected until every message on its way has arrived, so none is
# lost, and it ends as soon as they have (before its 20 s).
CAPPED = """\
name: capped
description: senders cut by the duration, receivers idle
users: {prefix: brd, password: brd-pw}
phases: [{users: 6}]
duration: 3s
drain: 20s
timeout: 5s
sessions:
  - name: sender
    weight: 1
    steps:
      - connect
      - auth
      - bind
      - presence
      - roster
      - chat: {to: "session:receiver", rate: 2000/s, duration: 1m, peers: 3, body: 256}
  - name: receiver
    weight: 1
    steps: [connect, auth, bind, presence, roster, idle]
thresholds:
  - "message_rtt.errors == 0"
  - "login.count == 6"
"""

# Receivers that never send their initial presence are not available (RFC 6121 §4.2): the
# server keeps the messages to their bare JID, nothing arrives, and the drain waits its whole
# time (1.5 s) before the messages count as lost.
UNAVAILABLE = CAPPED.replace("name: capped", "name: unavailable").replace(
    "drain: 20s", "drain: 1500ms").replace("duration: 3s", "duration: 2s").replace(
    "steps: [connect, auth, bind, presence, roster, idle]", "steps: [connect, auth, bind, idle]")

# Each user writes to itself at 1,000/s and logs out after its last message: the logout waits
# for the messages still due to it (the drain), so none is lost.
SELF = """\
name: self
users: {prefix: brd, password: brd-pw}
phases: [{users: 4}]
drain: 5s
sessions:
  - name: echo
    weight: 3
    steps: [connect, auth, bind, presence, roster, {chat: {to: self, rate: 1000/s, count: 300}}, logout]
thresholds:
  - "message_rtt.count == 1200"
"""


def test_scenario_drain_at_the_end(server, tmp_path):
    add_users(server, "brd", "brd-pw", 6)
    f, out = tmp_path / "capped.yaml", tmp_path / "capped.json"
    f.write_text(CAPPED)
    r = run("--port", server.c2s_port, "-s", f, "--json", out)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads(out.read_text())
    sf = res["scenario_file"]
    chat, drain = sf["chat"], sf["drain"]
    assert chat["sent_measured"] > 1000, chat
    assert chat["received_measured"] == chat["sent_measured"], (chat, drain)
    assert res["errors"]["count"] == 0, res["errors"]
    assert drain["limit_s"] == 20 and drain["due_at_start"] > 0 and drain["due_at_end"] == 0, drain
    assert drain["waited_s"] < 20, drain
    assert 3 <= res["elapsed_s"] < 3 + 20, res["elapsed_s"]
    assert "drain ]" in r.stderr or drain["waited_s"] < 1, r.stderr     # the live line's phase

    f, out = tmp_path / "unavailable.yaml", tmp_path / "unavailable.json"
    f.write_text(UNAVAILABLE)
    r = run("--port", server.c2s_port, "-s", f, "--json", out)
    assert r.returncode == 3, r.stdout[-3000:] + r.stderr[-3000:]     # message_rtt.errors
    res = json.loads(out.read_text())
    sf = res["scenario_file"]
    chat, drain = sf["chat"], sf["drain"]
    assert chat["sent_measured"] > 100 and chat["received_measured"] == 0, chat
    assert drain["due_at_start"] == drain["due_at_end"] == chat["sent"], drain
    assert 1.5 <= drain["waited_s"] < 2.5, drain
    assert res["elapsed_s"] >= 2 + 1.5, res["elapsed_s"]
    assert res["errors"]["by_cause"] == {"message:lost": chat["sent_measured"]}, res["errors"]



def test_scenario_logout_waits_for_messages_due(server, tmp_path):
    add_users(server, "brd", "brd-pw", 4)
    f, out = tmp_path / "self.yaml", tmp_path / "self.json"
    f.write_text(SELF)
    r = run("--port", server.c2s_port, "-s", f, "--json", out)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads(out.read_text())
    sf = res["scenario_file"]
    assert sf["chat"]["sent_measured"] == sf["chat"]["received_measured"] == 1200, sf["chat"]
    assert sf["finished"] == 4 and res["errors"]["count"] == 0, res["errors"]
    assert sf["drain"]["due_at_start"] == 0, sf["drain"]    # every user waited for its own


def test_scenario_report_and_merge(server, tmp_path):
    """The HTML report of a scenario run has the scenario (file, phases, sessions with their
    weights and steps as --check-scenario prints them, the file's thresholds with pass/fail);
    merge keeps scenario_file when the slices ran the same file (counts summed) and says so
    when they did not."""
    add_users(server, "brd", "brd-pw", 6)
    f = tmp_path / "self.yaml"
    f.write_text(SELF.replace("phases: [{users: 4}]", "phases: [{arrival: 20/s, duration: 300ms}]")
                 .replace("rate: 1000/s, count: 300", "rate: 200/s, count: 50")
                 .replace("message_rtt.count == 1200", "message_rtt.count == 300")
                 + "  - \"login.p99 < 1us\"\n")
    check = run("--check-scenario", f).stdout
    html, out = tmp_path / "run.html", tmp_path / "run.json"
    r = run("--port", server.c2s_port, "-s", f, "--json", out, "--html", html)
    assert r.returncode == 3, r.stdout[-3000:] + r.stderr[-3000:]     # login.p99 < 1us
    doc = html.read_text()
    assert "<h2>Scenario self</h2>" in doc and str(f) in doc
    steps = [ln.strip() for ln in check.splitlines() if re.match(r"^ {5,}\d+  \w", ln)]
    assert len(steps) == 7 and "chat to self" in steps[5], check
    for s in steps:
        assert s.replace("'", "&#39;") in doc, s
    assert "<td>echo</td><td>3</td><td>100.0 %</td><td>6</td><td>6</td><td>6</td>" in doc
    assert "20/s for 300ms: 6 users" in doc
    # the file's thresholds with their line and verdict
    assert re.search(r"<td>message_rtt.count == 300</td><td>\d+</td><td>[^<]*</td>"
                     r"<td class=\"pass\">pass</td>", doc), doc
    assert re.search(r"<td>login.p99 &lt; 1us</td><td>\d+</td><td>[^<]*</td>"
                     r"<td class=\"fail\">FAIL</td>", doc)
    assert "drain: up to 5 s" in doc

    # two slices of the same file: scenario_file kept, its counts summed
    outs = []
    for i in range(2):
        o = tmp_path / f"s{i}.json"
        r = run("--port", server.c2s_port, "-s", f, "--index", i, "--count", 2, "--json", o)
        assert r.returncode == 3, r.stdout[-2000:] + r.stderr[-2000:]
        outs.append(o)
    parts = [json.loads(o.read_text()) for o in outs]
    merged, mhtml = tmp_path / "merged.json", tmp_path / "merged.html"
    r = run("merge", "-o", merged, "--html", mhtml, *outs)
    # the file's thresholds are the merge's too: login.p99 < 1us fails
    assert r.returncode == 3, r.stdout + r.stderr
    assert "threshold FAILED: login.p99 < 1us" in r.stdout
    assert "scenario file's object kept" in r.stdout and "differs" not in r.stderr, r.stderr
    m = json.loads(merged.read_text())
    sf, p0, p1 = m["scenario_file"], parts[0]["scenario_file"], parts[1]["scenario_file"]
    assert sf["planned"] == sf["arrived"] == sf["finished"] == 6, sf
    assert sf["chat"]["sent"] == p0["chat"]["sent"] + p1["chat"]["sent"] == 300
    assert sf["phases"][0]["line"] == p0["phases"][0]["line"]
    assert sf["phases"][0]["arrived"] == 6 and sf["sessions"][0]["weight"] == 3
    assert sf["sessions"][0]["steps"] == p0["sessions"][0]["steps"]
    assert "slice" not in sf and m["slice"]["count"] == 2
    # the keys the merged result does not model: summed or kept when equal
    assert m["clients"] == parts[0]["clients"] + parts[1]["clients"]
    assert m["tls"] == parts[0]["tls"] and m["domain"] == "localhost"
    assert m["interrupted"] is False
    assert "<h2>Scenario self</h2>" in mhtml.read_text()
    assert "<td>echo</td><td>3</td><td>100.0 %</td><td>6</td><td>6</td><td>6</td>" in mhtml.read_text()

    # a result of another file: scenario_file differs, named, and left out
    r = run("merge", "-o", merged, "--html", mhtml, out, outs[0])
    assert r.returncode == 3
    other = json.loads(out.read_text())
    other["scenario_file"]["sessions"][0]["name"] = "other"
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps(other))
    r = run("merge", "-o", merged, "--html", mhtml, outs[0], odd)
    assert re.search(r'"scenario_file" differs between \S+s0.json and \S+odd.json at '
                     r'sessions\[0\]\.name', r.stderr), r.stderr
    m = json.loads(merged.read_text())
    assert "scenario_file" not in m and "Scenario" not in mhtml.read_text()
