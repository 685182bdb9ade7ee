"""Distributed xedge-bench runs (issue 15): one load cut into slices with --index/--count (or
JOB_COMPLETION_INDEX and XEDGE_BENCH_COUNT, as a Kubernetes Indexed Job sets them), every
slice waiting for a common --start-at, and `xedge-bench merge` of the slices' JSON equal to
the same load from one process: logins, connects, TLS and auth exactly; for chat (peers stay
inside a slice) every message sent is received, and the messages of an open loop (--rate per
client over --duration) match the single run's within the timing of its pacing.  The slices'
first connections are within a second of the start time.

test_job_with_podman plays deploy/k8s/bench-job.yaml with `podman kube play` (see its
docstring).  Like tests/deploy/test_deploy.py it needs root podman and minutes, so it runs
with `make test-deploy` (which `make test` runs when podman works), and is skipped
elsewhere.  The load generator is the release build in build/."""
import concurrent.futures
import copy
import datetime
import importlib.util
import json
import os
import re
import subprocess
import time

import pytest
import yaml

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


# ---- the Job, played by podman ------------------------------------------------------

PODMAN = os.environ.get("XEDGE_TEST_PODMAN") == "1" and subprocess.run(
    ["podman", "info"], capture_output=True, timeout=60).returncode == 0
JOB_IMAGE = "localhost/xedge-bench-test:latest"   # deploy/Dockerfile, not to retag others' xedge:latest
JOB_LEAD = 30.0     # seconds from playing the pods to their --start-at (podman starts them one by one)


def deploy_helpers():
    """tests/deploy/test_deploy.py's podman substitutions and plays (podman_pod, Play)."""
    spec = importlib.util.spec_from_file_location("deploy_helpers",
                                                  REPO / "tests" / "deploy" / "test_deploy.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def start_at_substituted(text, start):
    """bench-job.yaml with the start time set by the command at its top (the sed line)."""
    cmd = next(line for line in text.splitlines() if line.startswith("#   sed "))
    pattern, replacement = re.fullmatch(r'#   sed "s\|(.+)\|(.+)\|" deploy/k8s/bench-job.yaml \\',
                                        cmd).groups()
    pattern, replacement = pattern.replace('\\"', '"'), replacement.replace('\\"', '"')
    assert text.count(pattern) == 1
    return text.replace(pattern, replacement.replace("$START", start))


@pytest.mark.skipif(not PODMAN, reason="podman: run by `make test-deploy` (XEDGE_TEST_PODMAN=1 and root podman)")
@pytest.mark.watchdog(1500 + JOB_LEAD + 600)     # the image build's bound, the start, the run
def test_job_with_podman(server, tmp_path):
    """deploy/k8s/bench-job.yaml under `podman kube play`, against the xedge of the `server`
    fixture on the host.  podman 4.3 has no Job controller: `kube play` of a Job says "YAML
    document does not contain any supported kube kind" and plays nothing, so
    the test does its part, with these substitutions only:
    - the Job becomes one Pod per completion index, named xedge-bench-I, with the index
      annotation and JOB_COMPLETION_INDEX=I in the container's environment, as the Job
      controller makes them; they all run at once (parallelism = completions);
    - the pods use the host's network (hostNetwork) and XEDGE_BENCH_TARGET is 127.0.0.1,
      where the fixture's xedge listens, and the load's arguments are a small one for it
      (--port, --domain localhost, its users, login with --hold 1): the wrapper script,
      the environment, the slicing and the collection are the manifest's;
    - the image is deploy/Dockerfile built as xedge-bench-test:latest (not retagging the
      xedge:latest that tests/deploy/ builds), the secretKeyRef gets its value directly
      (podman 4.3's Secrets are broken), and the seccomp profile and probes are handled
      as in tests/deploy/test_deploy.py (podman_pod); each pod's emptyDir gets its own
      name (podman makes an emptyDir a named volume, which pods of one name would share).
    The start time is set with the command at the top of the manifest.  The pods' logs go
    through deploy/k8s/bench-collect.sh to one merged result, equal to the whole load."""
    h = deploy_helpers()
    job_text = (REPO / "deploy" / "k8s" / "bench-job.yaml").read_text()
    t0 = time.monotonic()
    h.podman("build", "-f", REPO / "deploy" / "Dockerfile", "-t", JOB_IMAGE, REPO, timeout=1500)
    print(f"\nimage built in {time.monotonic() - t0:.0f} s")

    job, = [d for d in yaml.safe_load_all(job_text) if d and d["kind"] == "Job"]
    n = job["spec"]["completions"]
    total = 3 * n
    prefix, pw = "dk", "dk-pw-" + os.urandom(4).hex()
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda i: server.ctl("user", "add", f"{prefix}{i}@localhost", pw), range(total)))

    start = int(time.time() + JOB_LEAD)
    job, = [d for d in yaml.safe_load_all(start_at_substituted(job_text, str(start)))
            if d and d["kind"] == "Job"]
    pods = []
    for i in range(n):
        template = copy.deepcopy(job["spec"]["template"])
        spec = template["spec"]
        spec["hostNetwork"] = True
        c, = spec["containers"]
        c["image"] = JOB_IMAGE
        env = {e["name"]: e for e in c["env"]}
        assert env["XEDGE_BENCH_COUNT"]["value"] == str(n)
        assert env["XEDGE_BENCH_START_AT"]["value"] == str(start)
        env["XEDGE_BENCH_TARGET"]["value"] = "127.0.0.1"
        c["env"].append({"name": "JOB_COMPLETION_INDEX", "value": str(i)})
        c["args"] = ["--port", str(server.c2s_port), "--domain", "localhost", "--tls", "starttls",
                     "--mech", "SCRAM-SHA-1", "--user-prefix", prefix, "--scenario", "login",
                     "--clients", str(total), "--hold", "1", "--timeout", "30", "--login-time", "60",
                     "--threads", "1"]
        for v in spec["volumes"]:
            if "emptyDir" in v:
                old = v["name"]
                v["name"] = f"xedge-bench-{old}-{i}"
                for m in c["volumeMounts"]:
                    if m["name"] == old:
                        m["name"] = v["name"]
        h.podman_pod(template, {}, {"XEDGE_BENCH_PASSWORD": pw})
        template["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] = str(i)
        pods.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {**template["metadata"], "name": f"xedge-bench-{i}"}, "spec": spec})

    play = h.Play(tmp_path, "bench-job", pods)
    try:
        t_play = time.time()
        play.up()
        played = time.time()
        print(f"{n} pods played in {played - t_play:.1f} s")
        assert played < start - 5, f"the pods were played {played - start:.0f} s after the start time"
        containers = [f"xedge-bench-{i}-xedge-bench" for i in range(n)]
        codes = [h.podman("wait", name, timeout=JOB_LEAD + 180).stdout.strip() for name in containers]
        logs = [h.podman("logs", name, timeout=60) for name in containers]
        for i, (code, lg) in enumerate(zip(codes, logs)):
            assert code == "0", f"slice {i}: exit {code}\n{lg.stdout[-3000:]}\n{lg.stderr[-3000:]}"
            assert f"slice {i} of {n}: users {prefix}{3 * i}..{prefix}{3 * i + 2} (3 of {total})" \
                in lg.stderr, lg.stderr[-2000:]
            assert f"slice {i} of {n} starts at " in lg.stderr, lg.stderr[-2000:]
        collected = tmp_path / "collected"
        r = subprocess.run(["sh", str(REPO / "deploy" / "k8s" / "bench-collect.sh"), str(collected),
                            "--threshold", f"login.count == {total}"],
                           input="".join(lg.stdout for lg in logs), capture_output=True, text=True,
                           timeout=120, env=dict(child_env(), XEDGE_BENCH=BENCH))
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"{n} slices in {collected}" in r.stdout and "thresholds: all 1 passed" in r.stdout
        assert "warning" not in r.stderr, r.stderr
    finally:
        play.down_pods()
        play.down_volumes()
    parts = [json.loads((collected / f"slice-{i}.json").read_text()) for i in range(n)]
    for i, p in enumerate(parts):
        assert p["slice"] == {"index": i, "count": n}
        assert start * 10**9 <= p["start_unix_ns"] < start * 10**9 + 10**9, p["start_unix_ns"]
        firsts = [q for q in p["timeline"] if q["tx"].get("connect", {}).get("count")]
        assert firsts and firsts[0]["unix_s"] == start + 1, f"slice {i}: first connects late"
    m = json.loads((collected / "merged.json").read_text())
    assert m["inputs"] == n and m["logins"]["logged_in"] == total
    for name in ("connect", "tls", "auth", "login"):
        assert m["transactions"][name]["count"] == total and m["transactions"][name]["errors"] == 0
    assert (collected / "merged.html").read_text().startswith("<!DOCTYPE html>")
    print(f"\n{n} pods: {total} logins merged; slices started at "
          f"{[round(p['start_unix_ns'] / 1e9 - start, 3) for p in parts]} s after --start-at")
