#!/usr/bin/python3
"""Helpers for bench/compare/run.sh (Debian's python3, standard library only).

  harness.py machine REPO                 machine facts and package versions, as JSON
  harness.py monitor --pids P,.. --bench-pid B --out FILE [--interval 0.5]
                     [--server-cpu N --load-cpu M] [--track T]
        sample CPU use until process B exits: the target's processes (P and their
        descendants), the load generator's (B and descendants), and everything else on the
        machine ("foreign": other people's work disturbing the measurement); writes JSON.
        --track T: also T's own CPU ticks and RSS at every sample ("track": seconds since
        the start, ticks, KiB), to tell one process of a target from the others (Prosody
        behind xedge)
  harness.py line FILE                    one progress line from an xedge-bench JSON file
  harness.py tsungline FILE | probeline FILE   the same for tsung.json and probe.json
  harness.py get FILE KEY [KEY...]        print a value from a results JSON (nested keys,
                                          with the fallbacks of bench_get); empty if absent
  harness.py rate RESULTS FRACTION N TARGET...
        the equal-load chat rate: FRACTION x the smallest closed-loop throughput among the
        targets' chat.json, as messages/s in total and per client (N clients): "TOTAL PER"
  harness.py fastest RESULTS TARGET...    the target with the highest closed-loop throughput
  harness.py steady FILE                  the cross-check's counts and steady-state rates from
                                          an xedge-bench JSON (as summary.py's for tsung)
  harness.py metricsline FILE             the line "metrics vs xedge-bench: logins X = X, ..."
                                          from a NAME.metrics.json (bench/ops/ops.py
                                          metrics-vs-bench: xedge's /metrics deltas)
"""
import json
import os
import platform
import subprocess
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")

# ---- reading xedge-bench JSON, whatever its exact shape ------------------------------------
# The harness was written against the interface in the issue while xedge-bench was being
# written; its JSON (bench/report.c) and the sketch differ in names. Each logical value
# is looked up along several paths; the first present wins.
PATHS = {
    "clients": [("clients",)],
    "logged_in": [("logins", "logged_in"), ("logins", "ok")],
    "failed": [("logins", "failed")],
    "logins_per_s": [("logins", "per_s"), ("logins", "per_sec")],
    "login_span_s": [("logins", "span_s")],
    "login_ms": [("latency_ms", "login"), ("logins", "login_ms")],
    "tls_ms": [("latency_ms", "tls"), ("logins", "handshake_ms")],
    "auth_ms": [("latency_ms", "auth"), ("logins", "auth_ms")],
    "msg_ms": [("latency_ms", "message"), ("chat", "latency_ms")],
    "failures": [("failures",), ("logins", "failed")],
    "sent": [("messages", "sent"), ("chat", "sent")],
    "received": [("messages", "received"), ("chat", "received")],
    "lost": [("messages", "lost"), ("chat", "lost")],
    "duplicated": [("messages", "duplicated"), ("chat", "duplicated")],
    "reordered": [("messages", "reordered"), ("chat", "reordered")],
    "misrouted": [("messages", "misrouted")],
    "sent_per_s": [("messages", "sent_per_s"), ("chat", "sent_per_sec")],
    "recv_per_s": [("messages", "recv_per_s"), ("chat", "per_sec")],
    "measured_s": [("messages", "measured_s")],
    "window_timeouts": [("messages", "window_timeouts")],
    "sessions": [("idle", "sessions")],
    "rss_before_kib": [("idle", "rss_before_kib")],
    "rss_after_kib": [("idle", "rss_after_kib")],
    "kib_per_session": [("idle", "kib_per_session"), ("idle", "per_session_kib")],
    "target_cpu_avg": [("target", "cpu_avg")],
    "target_cpu_max": [("target", "cpu_max")],
    "target_rss_max_kib": [("target", "rss_max_kib")],
    "bench_cpu_avg": [("bench", "cpu_avg")],
    "bench_cpu_max": [("bench", "cpu_max")],
    "series": [("series",)],
    "elapsed_s": [("elapsed_s",)],
}


def dig(d, path):
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def bench_get(d, name):
    """A logical value from an xedge-bench result (None when absent)."""
    for path in PATHS.get(name, [(name,)]):
        v = dig(d, path)
        if v is not None:
            if name == "failed" and isinstance(v, dict):
                return sum(x for x in v.values() if isinstance(x, (int, float)))
            return v
    return None


def missing_fields(d, names):
    return [n for n in names if bench_get(d, n) is None]


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# ---- machine ------------------------------------------------------------------------------
def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def pkg_version(name):
    return sh("dpkg-query", "-W", "-f=${Version}", name) or None


def machine(repo):
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem_kib = int(line.split()[1])
    with open("/proc/loadavg") as f:
        loadavg = f.read().split()[:3]
    wolfssl = sh("sh", "-c", "dpkg-query -W -f='${Package} ${Version}\\n' 'libwolfssl*' 2>/dev/null | "
                 "grep -v -- -dev | head -1")
    rev = sh("git", "-C", repo, "rev-parse", "--short", "HEAD")
    dirty = bool(sh("git", "-C", repo, "status", "--porcelain", "--untracked-files=no"))
    hyper = sh("sh", "-c", "lscpu | sed -n 's/^Hypervisor vendor: *//p'")
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "hypervisor": hyper or None,
        "kernel": platform.release(),
        "os": sh("sh", "-c", ". /etc/os-release && echo \"$PRETTY_NAME\""),
        "mem_gib": round(mem_kib / 1048576, 1),
        "loadavg_at_start": loadavg,
        "xedge_commit": rev + ("+uncommitted changes" if dirty else ""),
        "packages": {
            "prosody": pkg_version("prosody"),
            "lua5.4": pkg_version("lua5.4"),
            "lua-sec": pkg_version("lua-sec"),
            "ejabberd": pkg_version("ejabberd"),
            "erlang-base": pkg_version("erlang-base"),
            "tsung": pkg_version("tsung"),
            "wolfssl": wolfssl or None,
            "liburing": pkg_version("liburing2"),
            "openssl": pkg_version("openssl"),
            "gnuplot-nox": pkg_version("gnuplot-nox"),
            "python3": pkg_version("python3"),
        },
    }


# ---- monitor ------------------------------------------------------------------------------
def children(pid):
    out = []
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{t}/children") as f:
                    out += [int(x) for x in f.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return out


def tree(pids):
    seen, todo = set(), list(pids)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo += children(p)
    return seen


def proc_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
        fields = s[s.rindex(")") + 2:].split()
        return int(fields[11]) + int(fields[12])          # utime + stime
    except (OSError, ValueError, IndexError):
        return None


def run_delays(pids):
    """{(pid, tid): run delay in ns} for every thread of pids."""
    out = {}
    for p in pids:
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/schedstat") as f:
                    out[(p, t)] = int(f.read().split()[1])
            except (OSError, ValueError, IndexError):
                pass
    return out


def run_delay_ns(pids):
    """Sum over every thread of pids of the time spent runnable but waiting for a CPU
    (/proc/PID/task/TID/schedstat, second field, ns)."""
    total = 0
    for p in pids:
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/schedstat") as f:
                    total += int(f.read().split()[1])
            except (OSError, ValueError, IndexError):
                pass
    return total


def cpu_ticks():
    """{cpu: (busy, total)} from /proc/stat, 'all' included."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if not line.startswith("cpu"):
                break
            p = line.split()
            v = [int(x) for x in p[1:]]
            idle = v[3] + (v[4] if len(v) > 4 else 0)
            total = sum(v[:8])
            out["all" if p[0] == "cpu" else p[0][3:]] = (total - idle, total)
    return out


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def monitor(pids, bench_pid, out, interval, server_cpu=None, load_cpu=None, track=None):
    me = os.getpid()
    tracked = []       # [seconds, ticks, rss KiB] of the tracked process at every sample
    last = {}          # pid -> ticks at the previous sample
    acc = {"target": 0, "bench": 0, "self": 0}
    start_cpu = cpu_ticks()
    t0 = time.monotonic()
    peak_foreign = 0.0
    prev_cpu, prev_t, prev_acc_total = start_cpu, t0, 0

    def sample():
        nonlocal peak_foreign, prev_cpu, prev_t, prev_acc_total
        if track:
            tracked.append([round(time.monotonic() - t0, 3), proc_ticks(track), rss_kib(track)])
        groups = {"target": tree(pids), "bench": tree([bench_pid]), "self": {me}}
        for g, members in groups.items():
            for p in members:
                t = proc_ticks(p)
                if t is None:
                    continue
                # A process first seen now was born inside the window: all its ticks count.
                acc[g] += t - last.get(p, 0)
                last[p] = t
        now_cpu, now_t = cpu_ticks(), time.monotonic()
        busy = now_cpu["all"][0] - prev_cpu["all"][0]
        ours = sum(acc.values()) - prev_acc_total
        dt = now_t - prev_t
        if dt > 0:
            peak_foreign = max(peak_foreign, 100.0 * max(0, busy - ours) / HZ / dt)
        prev_cpu, prev_t, prev_acc_total = now_cpu, now_t, sum(acc.values())

    # The server's wait for a CPU, summed over all its threads (the working threads are not
    # the main thread in beam.smp or xedge): time runnable but not running.
    delay0 = run_delay_ns(tree(pids))
    per_thread0 = run_delays(tree(pids))
    bdelay = {}          # the load generator's threads: tid -> run delay seen last
    def bench_delay():
        for p in tree([bench_pid]):
            try:
                for t in os.listdir(f"/proc/{p}/task"):
                    with open(f"/proc/{p}/task/{t}/schedstat") as f:
                        v = int(f.read().split()[1])
                    bdelay.setdefault((p, t, "first"), v)
                    bdelay[(p, t)] = v
            except (OSError, ValueError, IndexError):
                pass
    # First pass only records the starting tick counts.
    for p in tree(pids) | tree([bench_pid]) | {me}:
        t = proc_ticks(p)
        if t is not None:
            last[p] = t
    bench_delay()
    if track:
        tracked.append([0.0, proc_ticks(track), rss_kib(track)])
    while os.path.exists(f"/proc/{bench_pid}"):
        time.sleep(interval)
        sample()
        bench_delay()
    end_cpu = cpu_ticks()
    dt = time.monotonic() - t0
    waited = (run_delay_ns(tree(pids)) - delay0) / 1e9
    per_thread1 = run_delays(tree(pids))
    max_thread = max([v - per_thread0.get(k, 0) for k, v in per_thread1.items()] + [0]) / 1e9
    # A thread first seen after the start counts from its first sample (its earlier wait is
    # small: it was just born).
    bwaited = sum(v - bdelay[(k[0], k[1], "first")] for k, v in bdelay.items() if len(k) == 2) / 1e9
    busy = end_cpu["all"][0] - start_cpu["all"][0]
    per_cpu = {}
    for c in end_cpu:
        if c != "all" and c in start_cpu:
            b = end_cpu[c][0] - start_cpu[c][0]
            tot = end_cpu[c][1] - start_cpu[c][1]
            per_cpu[c] = round(100.0 * b / tot, 1) if tot else None
    pct = {g: round(100.0 * v / HZ / dt, 1) if dt > 0 else None for g, v in acc.items()}
    foreign = 100.0 * max(0, busy - sum(acc.values())) / HZ / dt if dt > 0 else None
    res = {"seconds": round(dt, 1), "target_cpu": pct["target"], "bench_cpu": pct["bench"],
           "monitor_cpu": pct["self"], "foreign_cpu": round(foreign, 1) if foreign is not None else None,
           "foreign_cpu_peak": round(peak_foreign, 1), "cpu_busy_pct": per_cpu,
           "server_waiting_pct": round(100.0 * waited / dt, 1) if waited is not None and dt > 0 else None,
           "bench_waiting_pct": round(100.0 * bwaited / dt, 1) if dt > 0 else None,
           "server_waiting_max_thread_pct": round(100.0 * max_thread / dt, 1) if dt > 0 else None}
    # Other processes' share of each pinned CPU: that CPU's busy time minus ours on it (the
    # server runs only on server_cpu; the load generator and this monitor only on load_cpu).
    if server_cpu is not None and per_cpu.get(server_cpu) is not None and pct["target"] is not None:
        res["foreign_on_server_cpu"] = round(max(0.0, per_cpu[server_cpu] - pct["target"]), 1)
    if load_cpu is not None and per_cpu.get(load_cpu) is not None and pct["bench"] is not None:
        res["foreign_on_load_cpu"] = round(max(0.0, per_cpu[load_cpu] - pct["bench"] - pct["self"]), 1)
    if track:
        res["track"] = {"pid": track, "hz": HZ, "series": tracked}
    with open(out, "w") as f:
        json.dump(res, f)


# ---- progress line ----------------------------------------------------------------------
def fmt(v, nd=1):
    if v is None:
        return "?"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    return f"{v:,}"


def line(path):
    d = load(path)
    if d is None:
        return f"no result ({path} missing or not JSON)"
    sc = d.get("scenario", "?")
    parts = [f"{fmt(bench_get(d, 'logged_in'))}/{fmt(bench_get(d, 'clients'))} logged in"]
    f = bench_get(d, "failed")
    if f:
        parts.append(f"{fmt(f)} failed")
    if sc == "login":
        parts.append(f"{fmt(bench_get(d, 'logins_per_s'))} logins/s")
        lm = bench_get(d, "login_ms") or {}
        parts.append(f"login p99 {fmt(lm.get('p99'))} ms")
    elif sc == "idle":
        parts.append(f"{fmt(bench_get(d, 'kib_per_session'))} KiB/session")
    elif sc in ("chat", "tsung-chat"):
        parts.append(f"{fmt(bench_get(d, 'sent_per_s'), 0)} sent/s, {fmt(bench_get(d, 'recv_per_s'), 0)} received/s")
        mm = bench_get(d, "msg_ms") or {}
        parts.append(f"p99 {fmt(mm.get('p99'), 2)} ms")
        lost = bench_get(d, "lost")
        if lost:
            parts.append(f"{fmt(lost)} lost")
    parts.append(f"target CPU {fmt(bench_get(d, 'target_cpu_avg'))}%")
    parts.append(f"bench CPU {fmt(bench_get(d, 'bench_cpu_avg'))}%")
    miss = missing_fields(d, {"login": ["logins_per_s", "login_ms"], "idle": ["kib_per_session"],
                              "chat": ["recv_per_s", "msg_ms"]}.get(sc, []))
    if sc == "tsung-chat":
        st = steady(d)
        parts.insert(-2, f"steady state {fmt(st.get('delivered_per_sec'))} delivered/s over "
                     f"{fmt(st.get('steady_seconds'), 0)} s, {fmt(st.get('delivered'), 0)} delivered in all")
    if miss:
        parts.append("missing fields: " + ", ".join(miss))
    return ", ".join(parts)


TSUNG_INTERVAL = 5   # s: tsung's statistics interval (bench/tsung/run.sh: dumpstats_interval 5000)


def steady(d):
    """The cross-check's counts from an xedge-bench JSON, measured as bench/tsung/summary.py
    measures tsung's: every message of the run (sent, delivered), and the delivered rate over
    the steady state.  The same rule on both tools' series, at the same interval length: the
    whole seconds of xedge-bench's series are summed in consecutive intervals of
    TSUNG_INTERVAL seconds (tsung's), and the steady state is the intervals in which the
    messages sent are at least 90 % of the busiest interval's (the arrivals, the barrier and
    the last messages are left out).  On 1-s points the rule is biased: a second the
    controller sampled a little short falls under 90 % and is left out while the long one
    beside it stays in, which put the rate about 1.5 % high."""
    sf = (d.get("scenario_file") or {}).get("chat") or {}
    msgs = d.get("messages") or {}
    rows = [p for p in (d.get("series") or []) if isinstance(p.get("t"), (int, float))]
    # the last point is the shorter second after the last whole one
    whole = [p for p, q in zip(rows, rows[1:]) if q["t"] - p["t"] > 0.999]
    ivs = [whole[i:i + TSUNG_INTERVAL] for i in range(0, len(whole), TSUNG_INTERVAL)]
    ivs = [(sum(p.get("sent_s") or 0 for p in g), sum(p.get("recv_s") or 0 for p in g))
           for g in ivs if len(g) == TSUNG_INTERVAL]
    peak = max([s for s, _ in ivs] + [0])
    st = [iv for iv in ivs if peak and iv[0] >= 0.9 * peak]
    secs = len(st) * TSUNG_INTERVAL
    return {"sent": sf.get("sent", msgs.get("sent_total")),
            "delivered": sf.get("received", msgs.get("received_total")),
            "steady_seconds": secs,
            "sent_per_sec": round(sum(s for s, _ in st) / secs, 1) if secs else None,
            "delivered_per_sec": round(sum(r for _, r in st) / secs, 1) if secs else None}


def metrics_line(d):
    """xedge's /metrics deltas over a run beside xedge-bench's counts (= when equal)."""
    def pair(a, b):
        return f"{d.get(a)} {'=' if d.get(a) == d.get(b) else '!='} {d.get(b)}"
    return (f"metrics vs xedge-bench: logins {pair('logins_metrics', 'logins_bench')}, "
            f"messages in {pair('msg_in_metrics', 'msg_sent_bench')}, "
            f"out {pair('msg_out_metrics', 'msg_received_bench')}")


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    cmd = sys.argv[1]
    if cmd == "machine":
        print(json.dumps(machine(sys.argv[2]), indent=1))
    elif cmd == "monitor":
        import argparse
        p = argparse.ArgumentParser()
        p.add_argument("--pids", required=True)
        p.add_argument("--bench-pid", type=int, required=True)
        p.add_argument("--out", required=True)
        p.add_argument("--interval", type=float, default=0.5)
        p.add_argument("--server-cpu")
        p.add_argument("--load-cpu")
        p.add_argument("--track", type=int)
        a = p.parse_args(sys.argv[2:])
        monitor([int(x) for x in a.pids.split(",") if x], a.bench_pid, a.out, a.interval,
                a.server_cpu, a.load_cpu, a.track)
    elif cmd == "line":
        print(line(sys.argv[2]))
    elif cmd == "steady":
        print(json.dumps(steady(load(sys.argv[2]) or {})))
    elif cmd == "metricsline":
        print(metrics_line(load(sys.argv[2]) or {}))
    elif cmd == "tsungline":
        d = load(sys.argv[2]) or {}
        print(f"{d.get('logins')} logins, {d.get('sent_per_sec')} sent/s, "
              f"{d.get('delivered_per_sec')} delivered/s (steady state), "
              f"latency mean {(d.get('latency_ms') or {}).get('mean')} ms")
    elif cmd == "probeline":
        d = load(sys.argv[2]) or {}
        print(f"{', '.join(d.get('mechanisms') or [])} over {d.get('tls_version')} {d.get('cipher')}")
    elif cmd == "get":
        d = load(sys.argv[2])
        if d is None:
            return
        v = bench_get(d, sys.argv[3]) if len(sys.argv) == 4 else dig(d, sys.argv[3:])
        if v is not None:
            print(v)
    elif cmd == "rate":
        res, frac, n, targets = sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
        rates = []
        for t in targets:
            d = load(os.path.join(res, t, "chat.json"))
            r = bench_get(d, "recv_per_s") if d else None
            if r:
                rates.append(float(r))
        if not rates:
            sys.exit(1)
        total = frac * min(rates)
        print(f"{total:.0f} {total / n:.4f}")
    elif cmd == "fastest":
        res, targets = sys.argv[2], sys.argv[3:]
        best, best_r = None, -1.0
        for t in targets:
            d = load(os.path.join(res, t, "chat.json"))
            r = bench_get(d, "recv_per_s") if d else None
            if r is not None and float(r) > best_r:
                best, best_r = t, float(r)
        if best is None:
            sys.exit(1)
        print(f"{best} {best_r:.0f}")
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
