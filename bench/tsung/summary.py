#!/usr/bin/python3
"""Summarise a tsung run of bench/tsung/chat.xml.in from its tsung.log, as one JSON object.

  summary.py --log DIR/tsung.log [--users N --rate R --duration S --size B]

tsung.log holds a block every dumpstats interval ("# stats: dump at UNIX_TIME"), with lines
  stats: NAME n_interval mean stddev max min mean_before n_before     (samples, ms)
  stats: NAME n_interval total                                         (counters)
Here: tr_msg (one sample per chat message sent), xmpp_msg_latency (one per stamped message
received: the delivered count and the end-to-end latency), tr_login, connected, error_*.

The delivered rate is measured over the steady state: the intervals in which the send count
is at least 90% of the busiest interval's (the ramp-up and ramp-down intervals are left out),
i.e. delivered messages in those intervals divided by their length. The whole-run totals are
reported too.
"""
import argparse
import json
import sys


def parse(path):
    blocks = []            # [(time, {name: fields})]
    with open(path, errors="replace") as f:
        for line in f:
            line = line.strip()
            if line.startswith("# stats: dump at"):
                blocks.append([int(line.split()[-1]), {}])
            elif line.startswith("stats:") and blocks:
                parts = line.split()
                if len(parts) >= 3:
                    blocks[-1][1][parts[1]] = parts[2:]
    return blocks


def n_interval(fields):
    try:
        return int(float(fields[0]))
    except (IndexError, ValueError):
        return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--log", required=True)
    p.add_argument("--users", type=int)
    p.add_argument("--rate", type=float)
    p.add_argument("--duration", type=float)
    p.add_argument("--size", type=int)
    a = p.parse_args()
    blocks = parse(a.log)
    if len(blocks) < 2:
        print(f"summary.py: {a.log}: fewer than two stats blocks", file=sys.stderr)
        sys.exit(1)
    rows = []
    for k, (t, stats) in enumerate(blocks):
        dt = t - blocks[k - 1][0] if k else None
        rows.append({"t": t, "dt": dt,
                     "sent": n_interval(stats.get("tr_msg", [])),
                     "delivered": n_interval(stats.get("xmpp_msg_latency", [])),
                     "lat": stats.get("xmpp_msg_latency")})
    peak = max(r["sent"] for r in rows)
    steady = [r for r in rows if r["dt"] and peak and r["sent"] >= 0.9 * peak]
    st_secs = sum(r["dt"] for r in steady)
    sent = sum(r["sent"] for r in rows)
    delivered = sum(r["delivered"] for r in rows)
    # Latency: the last block's mean_before/n_before plus its own interval give the run's mean.
    lat_mean = lat_max = None
    total_n = 0
    weighted = 0.0
    for r in rows:
        f = r["lat"]
        if f and len(f) >= 5 and n_interval(f) > 0:
            weighted += float(f[1]) * n_interval(f)
            total_n += n_interval(f)
            lat_max = max(lat_max or 0.0, float(f[3]))
    if total_n:
        lat_mean = weighted / total_n
    last = blocks[-1][1]

    def counter(name):
        f = last.get(name)
        return int(float(f[1])) if f and len(f) >= 2 else 0

    errors = {k: counter(k) for k in last if k.startswith("error")}
    logins = 0
    for _, stats in blocks:
        logins += n_interval(stats.get("tr_login", []))
    out = {
        "tool": "tsung",
        "users": a.users, "rate_per_user": a.rate, "duration_s": a.duration, "body_bytes": a.size,
        "logins": logins,
        "sent": sent, "delivered": delivered,
        "steady_intervals": len(steady), "steady_seconds": st_secs,
        "sent_per_sec": round(sum(r["sent"] for r in steady) / st_secs, 1) if st_secs else None,
        "delivered_per_sec": round(sum(r["delivered"] for r in steady) / st_secs, 1) if st_secs else None,
        "latency_ms": {"mean": round(lat_mean, 2) if lat_mean is not None else None,
                       "max": lat_max},
        "errors": errors,
        "series": [{"t": r["t"] - rows[0]["t"], "sent": r["sent"], "delivered": r["delivered"],
                    "dt": r["dt"]} for r in rows],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
