"""Distributed xedge-bench runs (issue 15): one load cut into slices with --index/--count (or
JOB_COMPLETION_INDEX and XEDGE_BENCH_COUNT, as a Kubernetes Indexed Job sets them), every
slice waiting for a common --start-at, and `xedge-bench merge` of the slices' JSON equal to
the same load from one process: logins, connects, TLS and auth exactly; for chat (peers stay
inside a slice) every message sent is received, and the messages of an open loop (--rate per
client over --duration) match the single run's within the timing of its pacing.  The slices'
first connections are within a second of the start time.

test_job_with_podman plays deploy/k8s/bench-job.yaml with `podman kube play` (see its
docstring); it needs root podman and is skipped without it, as tests/deploy/ is by
`make test`.  The load generator is the release build in build/."""
import concurrent.futures
import datetime
import json
import os
import subprocess
import time

import pytest

from conftest import REPO, child_env

BENCH = str(REPO / "build" / "xedge-bench")
SLICES, PER = 3, 4
N = SLICES * PER
LEAD = 6.0          # seconds between launching the slices and their --start-at


def add_users(server, prefix):
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda i: server.ctl("user", "add", f"{prefix}{i}@localhost", f"{prefix}-pw"),
                    range(N)))


def bench_args(server, prefix, scenario, out):
    args = ["--port", server.c2s_port, "--threads", "1", "--user-prefix", prefix,
            "--password", f"{prefix}-pw", "--mech", "SCRAM-SHA-1", "-s", scenario, "-n", N,
            "--timeout", "30", "--login-time", "60", "--json", out]
    if scenario == "chat":
        args += ["--rate", "5", "--peers", "3", "--warmup", "1", "--duration", "4", "--drain", "10"]
    else:
        args += ["--hold", "1"]
    return [BENCH, *map(str, args)]


def run_slices(server, prefix, scenario, tmp_path):
    """The three slices of an N-user load, started together at a common time: slice 0
    by options with an RFC 3339 time, slice 1 from the Job's environment variables,
    slice 2 by options with unix seconds.  (outputs, start time, results)"""
    start = int(time.time() + LEAD)
    rfc3339 = datetime.datetime.fromtimestamp(start, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    outs = [tmp_path / f"{scenario}-slice{i}.json" for i in range(SLICES)]
    procs = []
    for i, out in enumerate(outs):
        cmd, env = bench_args(server, prefix, scenario, out), child_env()
        if i == 1:
            env.update(JOB_COMPLETION_INDEX="1", XEDGE_BENCH_COUNT=str(SLICES))
            cmd += ["--start-at", str(start)]
        else:
            cmd += ["--index", str(i), "--count", str(SLICES),
                    "--start-at", rfc3339 if i == 0 else str(start)]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=env))
    results = [p.communicate(timeout=180) for p in procs]
    for i, (p, (out, err)) in enumerate(zip(procs, results)):
        assert p.returncode == 0, f"slice {i}: exit {p.returncode}\n{out[-2000:]}\n{err[-2000:]}"
        # what a user sees: which users this slice has, and the wait on the progress line
        first = i * PER
        assert f"slice {i} of {SLICES}: users {prefix}{first}..{prefix}{first + PER - 1} " \
               f"({PER} of {N})" in err, err[-2000:]
        assert f"wait  ] slice {i} of {SLICES} starts at {rfc3339} in " in err, err[-2000:]
    return outs, start, results


def check_slices(outs, start):
    """Each slice's JSON names its slice, started at the start time and connected all its
    users in the first second after it."""
    for i, out in enumerate(outs):
        r = json.loads(out.read_text())
        assert r["slice"] == {"index": i, "count": SLICES}
        assert start * 10**9 <= r["start_unix_ns"] < start * 10**9 + 10**9, \
            (i, r["start_unix_ns"] / 1e9 - start)
        firsts = [p for p in r["timeline"] if p["tx"].get("connect", {}).get("count")]
        assert firsts and firsts[0]["unix_s"] == start + 1, \
            f"slice {i}: first connects in second {firsts[0]['unix_s'] - start if firsts else None}"
        assert r["transactions"]["connect"]["count"] == PER


def merge(outs, tmp_path, name):
    merged = tmp_path / f"{name}-merged.json"
    r = subprocess.run([BENCH, "merge", "-o", str(merged), *map(str, outs)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning" not in r.stderr, r.stderr
    return json.loads(merged.read_text())


def single(server, prefix, scenario, tmp_path):
    out = tmp_path / f"{scenario}-single.json"
    r = subprocess.run(bench_args(server, prefix, scenario, out), capture_output=True, text=True,
                       timeout=180, env=child_env())
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "slice" not in r.stderr, r.stderr[-2000:]
    one = json.loads(out.read_text())
    assert one["slice"] == {"index": 0, "count": 1}
    return one


def test_login_slices_merge_to_one_run(server, tmp_path):
    add_users(server, "dl")
    outs, start, _ = run_slices(server, "dl", "login", tmp_path)
    check_slices(outs, start)
    m = merge(outs, tmp_path, "login")
    one = single(server, "dl", "login", tmp_path)
    assert m["inputs"] == SLICES
    for name in ("connect", "tls", "auth", "login"):
        assert m["transactions"][name]["count"] == one["transactions"][name]["count"] == N, name
        assert m["transactions"][name]["errors"] == one["transactions"][name]["errors"] == 0, name
        assert sum(n for _, n in m["transactions"][name]["hist"]["buckets"]) == N, name
    assert m["logins"]["logged_in"] == one["logins"]["logged_in"] == N
    assert m["errors"]["count"] == 0 and not m["failures"], m["failures"]

    # the same slice twice would count its users twice: refused, naming both files
    r = subprocess.run([BENCH, "merge", "-o", str(tmp_path / "twice.json"), str(outs[0]),
                        str(outs[1]), str(outs[0])], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and f"slice 0 of 3 is in both {outs[0]} and {outs[0]}" in r.stderr, \
        r.stderr
    # a missing one is named
    r = subprocess.run([BENCH, "merge", "-o", str(tmp_path / "two.json"), str(outs[0]),
                        str(outs[2])], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "warning: slice 1 of 3 is missing" in r.stderr, r.stderr


def test_chat_slices_merge_to_one_run(server, tmp_path):
    add_users(server, "dc")
    outs, start, _ = run_slices(server, "dc", "chat", tmp_path)
    check_slices(outs, start)
    parts = [json.loads(o.read_text()) for o in outs]
    m = merge(outs, tmp_path, "chat")
    one = single(server, "dc", "chat", tmp_path)
    assert m["transactions"]["login"]["count"] == one["transactions"]["login"]["count"] == N
    # every measured message sent in a slice was received in that slice: peers stay inside it
    sent = sum(p["messages"]["sent"] for p in parts)
    received = sum(p["messages"]["received"] for p in parts)
    assert sent == received > 0 and all(p["messages"]["lost"] == 0 for p in parts), \
        [p["messages"] for p in parts]
    assert m["transactions"]["message_rtt"]["count"] == received
    assert m["transactions"]["message_rtt"]["errors"] == 0
    assert one["messages"]["sent"] == one["messages"]["received"] > 0, one["messages"]
    # 5 messages/s per client, 12 clients, 4 measured seconds in either form: about 240
    want = 5 * N * 4
    for got in (sent, one["messages"]["sent"]):
        assert abs(got - want) <= want * 0.1, (got, want)
    assert abs(sent - one["messages"]["sent"]) <= want * 0.1, (sent, one["messages"]["sent"])


def test_start_at_in_the_past_is_refused(server, tmp_path):
    r = subprocess.run([BENCH, "--port", str(server.c2s_port), "-n", "3", "--index", "0",
                        "--count", "3", "--start-at", str(int(time.time()) - 60)],
                       capture_output=True, text=True, timeout=60, env=child_env())
    assert r.returncode == 2, r.stderr
    assert "--start-at is 6" in r.stderr and "s in the past" in r.stderr, r.stderr
    # nothing was attempted: no summary
    assert "sessions" not in r.stdout
