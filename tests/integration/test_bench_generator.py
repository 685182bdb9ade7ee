"""xedge-bench reports its own memory per session held (issue 15, "scale of one generator"): the
JSON v2 `generator` object carries the RSS before the first connection and at the end of the
hold, the sessions held, the bytes per session (and jemalloc's heap counters, the release build
links it), for `-s idle` and for a scenario file (bench/scenarios/idle.yaml); the terminal
summary prints them.  200 idle sessions against xedge.  The generator is the release build."""
import concurrent.futures
import json
import re
import subprocess

import pytest

from conftest import REPO

BENCH = str(REPO / "build" / "xedge-bench")
N = 200


def run(*args, timeout=120):
    return subprocess.run([BENCH, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def check_generator(out, stdout):
    g = json.loads(out.read_text())["generator"]
    assert g["sessions_held"] == N, g
    assert g["rss_before_kib"] > 0 and g["rss_held_kib"] > g["rss_before_kib"], g
    assert g["bytes_per_session"] > 0, g
    # bytes_per_session is the RSS growth over the sessions held, as documented
    want = (g["rss_held_kib"] - g["rss_before_kib"]) * 1024 / N
    assert abs(g["bytes_per_session"] - want) < 1, g
    # jemalloc's counters (the release build links it): the heap grew with the sessions
    assert g["heap_allocated_held"] > g["heap_allocated_before"] > 0, g
    assert g["heap_resident_held"] >= g["heap_allocated_held"], g
    assert g["heap_bytes_per_session"] > 0, g
    m = re.search(r"^bench memory +rss [\d.]+ MiB -> [\d.]+ MiB holding (\d+) sessions: (\d+) bytes "
                  r"per session$", stdout, re.M)
    assert m and int(m.group(1)) == N and int(m.group(2)) == round(g["bytes_per_session"]), stdout
    assert "socket memory is not in the process's RSS" in stdout
    return g


# 200 clients from 127.0.0.1 in about a second: past the per-address defaults
LIMITS = {"limits": {"connection_rate_per_ip": 100000, "max_connections_per_ip": 100000},
          "log_level": "info"}


@pytest.mark.parametrize("server", [LIMITS], indirect=True)
def test_generator_memory_per_session(server, tmp_path):
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda i: server.ctl("user", "add", f"bench{i}@localhost", "pw"), range(N)))

    # -s idle: the held sample is the --settle one
    out = tmp_path / "idle.json"
    r = run("--port", server.c2s_port, "--threads", 2, "--password", "pw", "--mech", "SCRAM-SHA-1",
            "-s", "idle", "-n", N, "--settle", 1, "--hold", 0, "--timeout", 30,
            "--login-time", 60, "--json", out)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    check_generator(out, r.stdout)

    # the shipped idle scenario file, at N users: the held sample is the end of its idle step
    f = REPO / "bench" / "scenarios" / "idle.yaml"
    out = tmp_path / "scenario.json"
    r = run("--port", server.c2s_port, "--threads", 2, "-s", f, "--json", out,
            "--var", f"USERS={N}", "--var", "IDLE=3s")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    check_generator(out, r.stdout)

    # merge sums the generator's memory of its inputs (one process per slice)
    merged = tmp_path / "merged.json"
    r = run("merge", "-o", merged, tmp_path / "idle.json", out)
    assert r.returncode == 0, r.stdout + r.stderr
    g = json.loads(merged.read_text())["generator"]
    assert g["sessions_held"] == 2 * N, g
    assert g["bytes_per_session"] > 0, g
