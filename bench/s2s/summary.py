#!/usr/bin/python3
"""Results of bench/s2s/run.sh (Debian's python3, standard library only).

  summary.py line FILE LABEL          one progress line from an xedge-bench JSON file (stderr)
  summary.py check-prime FILE         exit 0 when the priming run's messages crossed both ways
                                      and none was lost
  summary.py rate FILE FRACTION       FRACTION x the closed-loop rate of FILE (messages/s, an
                                      integer): the open-loop rate of every pair
  summary.py report RESULTS           the tables, in Markdown, on stdout

RESULTS holds <pair>/<run>.json (xedge-bench --json) and <run>.cpu.json (the servers' CPU
seconds over the run, from /proc), mem/<impl>.json, sizes.txt, rate.txt and run.txt.
"""
import json
import sys
from pathlib import Path

PAIRS = ["prosody-prosody", "xedge-prosody", "xedge-xedge"]
PAIR_NAMES = {"prosody-prosody": "Prosody ↔ Prosody", "xedge-prosody": "xedge ↔ Prosody",
              "xedge-xedge": "xedge ↔ xedge"}
RUNS = [("closed", "closed loop, both directions"),
        ("oneway", "closed loop, one direction (one s2s stream)"),
        ("rate", "open loop at equal offered load, both directions")]


def load(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def fmt(v, nd=None):
    """Thousands separators; nd digits after the point (default: 0 from 100 up, else 3 significant)."""
    if v is None:
        return "—"
    if v == 0:
        return "0"
    if nd is None:
        nd = 0 if abs(v) >= 100 else 1 if abs(v) >= 10 else 2
    return f"{v:,.{nd}f}"


def ratio(a, b):
    if a is None or b is None or not b:
        return "—"
    r = a / b
    if r < 0.01:
        return f"{r:.2g}×"
    return f"{r:.2f}×" if r < 10 else f"{r:.1f}×"


def directions(j):
    return (j.get("remote") or {}).get("directions") or [{}, {}]


def line(path, label):
    j = load(path)
    if not j:
        print(f"[s2s] {label}: no results in {path}", file=sys.stderr)
        return 1
    m, lat = j["messages"], j["latency_ms"]["message"]
    d = directions(j)
    print(f"[s2s] {label}: {j['logins']['logged_in']}/{j['clients']} logged in, "
          f"{fmt(m['recv_per_s'])} msg/s delivered ({fmt(d[0].get('recv_per_s'))} A→B, "
          f"{fmt(d[1].get('recv_per_s'))} B→A), p50 {fmt(lat['p50'])} ms, p99 {fmt(lat['p99'])} ms, "
          f"lost {m['lost']}, failures {sum(j['failures'].values())}", file=sys.stderr)
    return 0


def check_prime(path):
    j = load(path)
    if not j:
        return 1
    d = directions(j)
    ok = (j["logins"]["logged_in"] == j["clients"] and j["messages"]["lost"] == 0
          and all(x.get("received", 0) >= 1 for x in d))
    if not ok:
        print(f"[s2s] priming run: logged in {j['logins']['logged_in']}/{j['clients']}, "
              f"received A→B {d[0].get('received')}, B→A {d[1].get('received')}, "
              f"lost {j['messages']['lost']}, failures {j['failures']}", file=sys.stderr)
    return 0 if ok else 1


def rate(path, fraction):
    j = load(path)
    r = j["messages"]["recv_per_s"] * float(fraction) if j else 0
    if r < 1:
        return 1
    print(int(r))
    return 0


def cpu(res, pair, run, j):
    """(A %, B %, bench %, A + B CPU seconds per 1,000 messages, window?): over the measured
    window when xedge-bench saw it (remote.measured_cpu), else over the whole run (/proc
    before and after, logins included)."""
    mc = (j.get("remote") or {}).get("measured_cpu") if j else None
    rps = j["messages"]["recv_per_s"] if j else 0
    if mc and len(mc["pids"]) == 2 and min(mc["pids"]) >= 0:
        a, b = mc["pids"]
        return a, b, mc["bench"], ((a + b) / 100 / rps * 1000 if rps else None), True
    c = load(res / pair / f"{run}.cpu.json")
    if not c or not j:
        return None, None, None, None, False
    wall = c["wall_s"] or 1
    total = j["messages"]["received_total"]
    per_k = (c["a_cpu_s"] + c["b_cpu_s"]) / total * 1000 if total else None
    return (c["a_cpu_s"] * 100 / wall, c["b_cpu_s"] * 100 / wall, j["bench"]["cpu_avg"], per_k,
            False)


def report(res):
    res = Path(res)
    out = []
    w = out.append
    info = (res / "run.txt").read_text().strip().splitlines() if (res / "run.txt").exists() else []
    for l in info:
        w(f"- {l}")
    rt = (res / "rate.txt").read_text().split(maxsplit=1) if (res / "rate.txt").exists() else []
    if rt:
        w(f"- open-loop rate: {rt[0]} messages/s in total ({rt[1].strip() if len(rt) > 1 else ''})")
    w("")
    got = {}
    for pair in PAIRS:
        for run, _ in RUNS:
            j = load(res / pair / f"{run}.json")
            if j:
                got[(pair, run)] = j
    pairs = [p for p in PAIRS if any((p, r) in got for r, _ in RUNS)]
    for run, title in RUNS:
        rows = [p for p in pairs if (p, run) in got]
        if not rows:
            continue
        j0 = got[(rows[0], run)]
        m0 = j0["messages"]
        how = (f"window {m0['window']} per client" if m0["mode"] == "closed"
               else f"{fmt(m0['rate'] * j0['clients'])} msg/s offered in total")
        w(f"### {title}: {j0['clients']} clients, {how}, {fmt(m0['measured_s'], 0)} s measured")
        w("")
        w("| | " + " | ".join(PAIR_NAMES[p] for p in rows) + " |")
        w("|---|" + "---:|" * len(rows))

        def row(name, f):
            w(f"| {name} | " + " | ".join(f(p, got[(p, run)]) for p in rows) + " |")
        row("**messages delivered per second**", lambda p, j: f"**{fmt(j['messages']['recv_per_s'])}**")
        row("… A → B (first server's clients to the second's)",
            lambda p, j: fmt(directions(j)[0].get("recv_per_s")))
        row("… B → A", lambda p, j: fmt(directions(j)[1].get("recv_per_s")))
        row("latency p50 (ms)", lambda p, j: fmt(j["latency_ms"]["message"]["p50"]))
        row("latency p90 (ms)", lambda p, j: fmt(j["latency_ms"]["message"]["p90"]))
        row("**latency p99 (ms)**", lambda p, j: f"**{fmt(j['latency_ms']['message']['p99'])}**")
        row("latency max (ms)", lambda p, j: fmt(j["latency_ms"]["message"]["max"]))
        row("lost / duplicated / reordered", lambda p, j: "{lost} / {duplicated} / {reordered}".format(**j["messages"]))
        row("login failures", lambda p, j: str(sum(j["failures"].values())))
        win = all(cpu(res, p, run, got[(p, run)])[4] for p in rows)
        span = "measured window" if win else "whole run"
        row(f"server A CPU, % of a core ({span})", lambda p, j: fmt(cpu(res, p, run, j)[0], 0))
        row(f"server B CPU, % of a core ({span})", lambda p, j: fmt(cpu(res, p, run, j)[1], 0))
        row(f"xedge-bench CPU, % of a core ({span})", lambda p, j: fmt(cpu(res, p, run, j)[2], 0))
        row("A + B CPU seconds per 1,000 messages", lambda p, j: fmt(cpu(res, p, run, j)[3], 3))
        w("")
    # Ratios against the baseline.
    base = "prosody-prosody"
    if base in pairs and len(pairs) > 1:
        w("### Ratios against Prosody ↔ Prosody")
        w("")
        others = [p for p in pairs if p != base]
        w("| | " + " | ".join(f"{PAIR_NAMES[p]} / Prosody ↔ Prosody" for p in others) + " |")
        w("|---|" + "---:|" * len(others))
        for run, label, key in [("closed", "messages/s, closed loop, both directions", "rps"),
                                ("oneway", "messages/s over one s2s stream (closed loop, one direction)", "rps"),
                                ("rate", "p99 latency at equal offered load", "p99"),
                                ("closed", "CPU seconds per 1,000 messages (A + B, closed loop)", "cpu")]:
            def val(p):
                j = got.get((p, run))
                if not j:
                    return None
                if key == "rps":
                    return j["messages"]["recv_per_s"]
                if key == "p99":
                    return j["latency_ms"]["message"]["p99"]
                return cpu(res, p, run, j)[3]
            w(f"| {label} | " + " | ".join(ratio(val(p), val(base)) for p in others) + " |")
        w("")
        w("Above 1 is better for rates, below 1 for latency and CPU.")
        w("")
    # How the servers authenticated each other.
    for p in pairs:
        a = res / p / "auth.txt"
        if a.exists() and a.read_text().strip():
            w(f"<details><summary>{PAIR_NAMES[p]}: authentication seen in the servers' logs</summary>")
            w("")
            w("```")
            w(a.read_text().rstrip())
            w("```")
            w("</details>")
            w("")
    # Memory.
    mems = [load(f) for f in sorted((res / "mem").glob("*.json"))] if (res / "mem").exists() else []
    mems = [m for m in mems if m]
    if mems:
        w("### Memory per idle outbound s2s stream")
        w("")
        w("| sender (A) | streams opened | measured | established to B at the end | opened in (s) | "
          "A's RSS before (KiB) | after (KiB) | **KiB per stream** |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|")
        per = {}
        for m in sorted(mems, key=lambda m: (m["impl"] != "xedge", m["mode"] != "paced")):
            k = (int(m["rss1_kib"]) - int(m["rss0_kib"])) / m["measured_streams"]
            per[(m["impl"], m["mode"])] = k
            how = (f"one after another ({m['pace_s']} s apart)" if m["mode"] == "paced"
                   else "all at once")
            w(f"| {m['impl']}, {how} | {m['streams']} | {m['measured_streams']} | {m['established']} | "
              f"{m['open_s']} | {fmt(int(m['rss0_kib']))} | {fmt(int(m['rss1_kib']))} | **{fmt(k, 1)}** |")
        for mode in ("paced", "burst"):
            if ("xedge", mode) in per and ("prosody", mode) in per:
                w(f"| xedge / Prosody, {'one after another' if mode == 'paced' else 'all at once'} | | | | | | | "
                  f"{ratio(per[('xedge', mode)], per[('prosody', mode)])} |")
        for m in mems:
            if m.get("lua_kib_before"):
                w("")
                b, a = float(m["lua_kib_before"]), float(m["lua_kib_after"])
                w(f"Prosody ({m['mode']}): its Lua heap after a full collection {fmt(b)} KiB → {fmt(a)} KiB, "
                  f"{fmt((a - b) / m['measured_streams'], 1)} KiB per stream.")
        w("")
    sizes = res / "sizes.txt"
    if sizes.exists() and sizes.read_text().strip():
        w("xedge's per-stream structures (sizeof, from the release build's debug information):")
        w("")
        w("```")
        w(sizes.read_text().rstrip())
        w("```")
    print("\n".join(out))
    return 0


def main():
    a = sys.argv[1:]
    if len(a) == 3 and a[0] == "line":
        return line(a[1], a[2])
    if len(a) == 2 and a[0] == "check-prime":
        return check_prime(a[1])
    if len(a) == 3 and a[0] == "rate":
        return rate(a[1], a[2])
    if len(a) == 2 and a[0] == "report":
        return report(a[1])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
