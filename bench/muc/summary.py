#!/usr/bin/python3
"""bench/muc helpers (the runs' JSON is xedge-bench -s muc's --json).

  summary.py line RUN.json                    one line about a run, for the progress log
  summary.py report RES "TARGETS" "SHAPES"    the markdown table of the runs in RES/<target>/<shape>.json
"""
import json
import sys

NAMES = {"xedge": "xedge", "prosody": "Prosody 0.12", "ejabberd": "ejabberd 23.01"}


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def window(j):
    """Deliveries received per second and the server's CPU-seconds per 1,000 of them, over the
    measured seconds of the per-second series (the --duration seconds after the warm-up, by
    the time a copy arrived, whenever it was sent): what a saturated server achieves, and what
    its CPU did in those seconds. (None, None) when the series does not have them."""
    series = j.get("series", [])
    first = next((i for i, p in enumerate(series) if p.get("sent_s", 0) > 0), None)
    if first is None:
        return None, None
    w0 = first + int(round(j["messages"]["warmup_s"]))
    pts = series[w0 + 1:w0 + 1 + int(round(j["messages"]["measured_s"]))]
    if not pts:
        return None, None
    recv = sum(p["recv_s"] for p in pts)
    cpu = sum(p["target_cpu"] for p in pts) / 100.0 if all(p["target_cpu"] >= 0 for p in pts) else None
    return recv / len(pts), (cpu / recv * 1000 if cpu is not None and recv else None)


def figures(j):
    """The figures of a run, None where not measured."""
    m = j["muc"]
    rate_w, cpu_w = window(j)
    kib = m["kib_per_occupant"]
    kib_s = m.get("kib_per_occupant_with_session")
    return {
        "delivered_s": rate_w if rate_w is not None else m["delivered_per_s"],
        "cpu_k": cpu_w,
        "p99_last": m["latency_ms"]["last"]["p99"] if m["latency_ms"]["last"]["count"] else None,
        "p99_delivery": m["latency_ms"]["delivery"]["p99"],
        "kib": kib,
        "kib_s": kib_s,
        "lost": m["lost"],
        "joined": m["joined"],
        "expected_occupants": m["rooms"] * m["room_size"],
        "complete": m["complete"],
        "sent": m["sent"],
        "rate": m["rate_per_occupant"],
        "cpu_pct": 100 * m["cpu_s"] / m["cpu_wall_s"] if m["cpu_wall_s"] else None,
    }


def line(path):
    j = load(path)
    if not j:
        print("no result")
        return
    f = figures(j)
    print(f"{f['joined']}/{f['expected_occupants']} joined, {f['delivered_s']:,.0f} deliveries/s, "
          f"cpu {fmt(f['cpu_k'], '.3f')} s per 1,000, p99 last copy {fmt(f['p99_last'], '.1f')} ms, "
          f"{fmt(f['kib'], '.2f')} KiB per occupant ({fmt(f['kib_s'], '.2f')} with its session), "
          f"lost {f['lost']}")


def fmt(v, spec):
    return "–" if v is None else format(v, spec)


def ratio(a, b, higher_better):
    """How many times better xedge (a) is than the peer (b)."""
    if a is None or b is None or a <= 0 or b <= 0:
        return "–"
    return f"{(a / b if higher_better else b / a):.1f}×"


def report(res, targets, shapes):
    targets, shapes = targets.split(), shapes.split()
    params = load(f"{res}/params.json") or {}
    print(f"Command: `{params.get('command', 'make bench-muc')}` — {params.get('date', '?')}, commit "
          f"{params.get('commit', '?')}, {params.get('cpus', '?')} CPUs, load average before "
          f"{params.get('loadavg_before', '?')}; servers pinned to CPU {params.get('server_cpu', '?')}, "
          f"xedge-bench to CPU {params.get('load_cpu', '?')}; offered "
          f"{params.get('deliveries_per_s', '?'):,} deliveries/s in every run, measured "
          f"{params.get('measured_s', '?')} s after {params.get('warmup_s', '?')} s warm-up.\n")
    print("| shape | server | occupants joined | messages/s per occupant | deliveries/s | server CPU-s per "
          "1,000 deliveries | p99 send → last occupant (ms) | p99 delivery (ms) | server KiB per occupant "
          "(RSS over the joins) | server KiB per occupant with its session | lost |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    got = {}
    for s in shapes:
        for t in targets:
            j = load(f"{res}/{t}/{s}.json")
            if not j or "muc" not in j:
                print(f"| {s} | {NAMES.get(t, t)} | run failed (see {t}/{s}.log) | | | | | | | | |")
                continue
            f = figures(j)
            got[(s, t)] = f
            lost = f["lost"]
            print(f"| {s} | {NAMES.get(t, t)} | {f['joined']:,} / {f['expected_occupants']:,} | {f['rate']:g} | "
                  f"{f['delivered_s']:,.0f} | {fmt(f['cpu_k'], '.3f')} | {fmt(f['p99_last'], '.1f')} | "
                  f"{fmt(f['p99_delivery'], '.1f')} | {fmt(f['kib'], '.2f')} | {fmt(f['kib_s'], '.2f')} | "
                  f"{lost:,}{' LOST' if lost else ''} |")
    peers = [t for t in targets if t != "xedge"]
    if "xedge" in targets and peers:
        print("\nxedge against each peer (× better: deliveries/s higher; CPU, p99 and memory lower):\n")
        print("| shape | against | deliveries/s | CPU per delivery | p99 send → last occupant | "
              "memory per occupant with its session |")
        print("|---|---|---|---|---|---|")
        for s in shapes:
            x = got.get((s, "xedge"))
            for t in peers:
                p = got.get((s, t))
                if not x or not p:
                    print(f"| {s} | {NAMES.get(t, t)} | – | – | – | – |")
                    continue
                print(f"| {s} | {NAMES.get(t, t)} | {ratio(x['delivered_s'], p['delivered_s'], True)} | "
                      f"{ratio(x['cpu_k'], p['cpu_k'], False)} | {ratio(x['p99_last'], p['p99_last'], False)} | "
                      f"{ratio(x['kib_s'], p['kib_s'], False)} |")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "line":
        line(sys.argv[2])
    elif len(sys.argv) == 5 and sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
