#!/usr/bin/python3
"""bench/shards helpers.

  summary.py scrape URL            print the stanzas that crossed shards, from an edge's /metrics
  summary.py report RES CONFIG...  the summary table (markdown) of the runs in RES
  summary.py kills RES RUN...      the tables of the fault runs (a shard, or an edge, killed under load)
"""
import json
import sys
import urllib.request


def scrape(url):
    body = urllib.request.urlopen(url, timeout=10).read().decode()
    total = 0.0
    # Threads of one process send straight to each other (the session servers count it);
    # between processes the edge passes them on (it counts them).
    for line in body.splitlines():
        if line.startswith("xedge_shard_relayed_total") or \
           line.startswith('xedge_sm_shard_stanzas_total{dir="out"}'):
            total += float(line.rsplit(" ", 1)[1])
    print(int(total))


def steady(series):
    """The seconds with messages and no login, the first and last dropped (ramps)."""
    s = [p for p in series if p.get("logins_s", 0) == 0 and p.get("recv_s", 0) > 0 and
         p.get("target_cpu", -1) >= 0]
    return s[1:-1] if len(s) > 3 else s


def report(res, configs):
    names = {"1": "1 shard (thread)", "2": "2 shards (threads)", "4": "4 shards (threads)",
             "8": "8 shards (threads)", "procs2": "2 xedge-sm processes"}
    rows = []
    base = None
    for c in configs:
        try:
            j = json.load(open(f"{res}/{c}.json"))
            x = json.load(open(f"{res}/{c}.cross.json"))
        except (OSError, ValueError) as e:
            rows.append(f"| {names.get(c, c)} | run failed: {e} | | | | |")
            continue
        m = j["messages"]
        st = steady(j.get("series", []))
        recv = sum(p["recv_s"] for p in st)
        cpu_s = sum(p["target_cpu"] for p in st) / 100.0
        per_k = cpu_s / recv * 1000 if recv else float("nan")
        if base is None:
            base = per_k
        cross = (x["cross_after"] - x["cross_before"]) / m["received_total"] if m["received_total"] else 0
        lost = m["lost"]
        rows.append(f"| {names.get(c, c)} | {m['recv_per_s']:,.0f} | {per_k:.3f} | {per_k / base:.2f} | "
                    f"{100 * cross:.0f} % | {lost}{' LOST' if lost else ''} |")
    print("| configuration | messages/s received | server CPU-s per 1,000 messages | vs 1 shard | "
          "crossed shards | lost |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


def kills(res, runs):
    """The fault runs: a shard SIGKILLed under chat load, with and without XEP-0198."""
    runs = [k for k in runs if k != "edge"]
    if not runs:
        return
    print()
    print("| clients | sessions dropped | messages sent / received | not delivered | of which bounced "
          "to the sender by the edge | duplicated | bound again without login | seconds under 90 % "
          "of the rate |")
    print("|---|---|---|---|---|---|---|---|")
    for k in runs:
        try:
            j = json.load(open(f"{res}/kill-{k}.json"))
            e = json.load(open(f"{res}/kill-{k}.edge.json"))
        except (OSError, ValueError) as err:
            print(f"| {k} | run failed: {err} | | | | | | |")
            continue
        m, lg = j["messages"], j["logins"]
        # Open loop: the offered rate is constant, so the seconds of the measured window
        # whose received rate is under 90 % of the level before the kill are what the kill
        # cost (sessions that were dropped and not back count against it).
        series = j.get("series", [])
        first = next((i for i, p in enumerate(series) if p.get("logins_s", 0) == 0 and
                      p["sent_s"] > 0), len(series))
        full = series[first + 1:first + int(m.get("measured_s", 0))]
        base = sorted(p["recv_s"] for p in full[:5])[len(full[:5]) // 2] if full else 0
        dip = sum(1 for p in full if p["recv_s"] < 0.9 * base)
        name = "XEP-0198 (--sm)" if k == "sm" else "without XEP-0198"
        print(f"| {name} | {lg['dropped']} | {m['sent_total']:,} / {m['received_total']:,} | "
              f"{m['lost']} | {e.get('bounced', '?')} | {m['duplicated']} | {e['rebinds']} | {dip} of {len(full)} |")


def edge(res):
    """The edge fault run: an edge SIGKILLed, its XEP-0198 clients resumed on the other one."""
    print()
    print("| edge killed | clients (on the killed edge) | resumed without login | new logins | "
          "messages sent / received | lost | lost after the server acknowledged them | duplicated | "
          "kill to resumption, median / max | of which: stream seen lost, reconnect and log in, resume |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    try:
        j = json.load(open(f"{res}/kill-edge.json"))
    except (OSError, ValueError) as err:
        print(f"| edge | run failed: {err} | | | | | | | | |")
        return
    flag = " LOST" if j["lost"] or j["lost_acknowledged"] else ""
    print(f"| 1 of 2 behind HAProxy | {j['clients']} ({j['killed_edge_clients']}) | {j['resumed']} | "
          f"{j['failed_resumptions']} | {j['sent']:,} / {j['received']:,} | {j['lost']}{flag} | "
          f"{j['lost_acknowledged']} | {j['duplicates']} | {j['resume_s_median']} s / {j['resume_s_max']} s | "
          + (" / ".join(f"{x} s" for x in j["stages_median"][:3]) if j.get("stages_median") else "") + " |")


if __name__ == "__main__":
    if sys.argv[1] == "scrape":
        scrape(sys.argv[2])
    elif sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3:])
    elif sys.argv[1] == "kills":
        kills(sys.argv[2], sys.argv[3:])
        if "edge" in sys.argv[3:]:
            edge(sys.argv[2])
    else:
        sys.exit(__doc__)
