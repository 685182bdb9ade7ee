#!/usr/bin/python3
"""ops.py — the metrics side of bench/ops/run.sh (Debian's python3 only).

  ops.py get URL
      print the body of URL; exit status 1 unless it answers 200 (readiness, HAProxy's stats).
  ops.py scrape URL OUT.json
      GET URL (an xedge /metrics), parse the Prometheus text, write {series: value} as JSON
      (a series is its name with its labels as written, e.g. xedge_logins_total{mechanism="PLAIN"}).
  ops.py sum FILE.json NAME [LABEL=VALUE ...]
      print the sum of every series NAME whose labels include all LABEL=VALUE (a value may
      be a|b|c: any of them).
  ops.py watch OUT.json NAME=URL ... [--interval S] [--max-s S]
      scrape each URL every S seconds (default 1) until SIGTERM or --max-s: one JSON line per
      sample and URL (t, name, logins, sessions, draining, up) appended to OUT.json.
  ops.py rates WATCH.json NAME T0 T1
      the per-second login rate of NAME between T0 and T1 (unix seconds), one JSON line:
      {"series": [[t, rate], ...], "max": R, "total": N}
  ops.py metrics-vs-bench BEFORE.json AFTER.json BENCH.json [--listeners c2s,c2s_tls]
      compare the deltas of xedge_logins_total and of xedge_stanzas_total{kind="message"}
      (in and out, over the listeners) with xedge-bench's logged_in, sent_total and
      received_total; one JSON line with both sides and "agree".

  ops.py quantiles BEFORE.json AFTER.json NAME
      p50 and p99 (seconds, linear within a bucket like PromQL's histogram_quantile) of the
      histogram NAME between two scrapes, and the count: one JSON line.
  ops.py roll-merge OUT.json IN.json ...
      add up the results (or the --status files) of several roll.py processes.
  ops.py element-error PORT BYTES
      a new STARTTLS stream on 127.0.0.1:PORT sends one <message/> of BYTES bytes before
      authenticating; prints the stream error condition the server answers with
      (policy-violation when BYTES is over limits.max_stanza_bytes, not-authorized below it).
  ops.py summary RESULTS_DIR
      the Markdown summary of a run (the *-facts.json and checks.jsonl run.sh wrote).

Every wait has a deadline; no retry hides a failure (a scrape that fails is an error).
"""
import json
import re
import signal
import sys
import time
import urllib.request

SERIES = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SERIES.match(line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def fetch(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def scrape(url):
    return parse(fetch(url))


def labels_of(series):
    i = series.find("{")
    return (series, {}) if i < 0 else (series[:i], dict(LABEL.findall(series[i:])))


def total(metrics, name, want=None):
    s = 0.0
    for k, v in metrics.items():
        n, labels = labels_of(k)
        if n != name:
            continue
        if want and any(labels.get(lk) not in lv.split("|") for lk, lv in want.items()):
            continue
        s += v
    return s


def cmd_watch(out, targets, interval, max_s):
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    t_end = time.time() + max_s
    with open(out, "a") as f:
        while not stop and time.time() < t_end:
            t0 = time.time()
            for name, url in targets:
                row = {"name": name}
                try:
                    # t: the middle of this request (the server counts while it answers)
                    ta = time.time()
                    m = scrape(url)
                    row["t"] = round((ta + time.time()) / 2, 3)
                    row.update(up=1, logins=total(m, "xedge_logins_total"),
                               sessions=total(m, "xedge_connections", {"state": "session"}),
                               draining=total(m, "xedge_draining"))
                except OSError:
                    row.update(t=round(time.time(), 3), up=0)   # stopped or restarting: a gap
                f.write(json.dumps(row) + "\n")
            f.flush()
            time.sleep(max(0.0, interval - (time.time() - t0)))


def cmd_rates(path, name, t0, t1):
    rows = [json.loads(l) for l in open(path)]
    rows = [r for r in rows if r["name"] == name and r.get("up") and t0 <= r["t"] <= t1]
    series = []
    for a, b in zip(rows, rows[1:]):
        dt = b["t"] - a["t"]
        if dt > 0:
            series.append([round(b["t"] - t0, 1), round((b["logins"] - a["logins"]) / dt, 1)])
    tot = rows[-1]["logins"] - rows[0]["logins"] if len(rows) > 1 else 0
    return {"series": series, "max": max((r for _, r in series), default=0), "total": tot}


def cmd_mvb(before, after, bench, listeners):
    a, b = json.load(open(before)), json.load(open(after))
    j = json.load(open(bench))
    lis = {"listener": "|".join(listeners)}
    d = lambda name, want=None: int(round(total(b, name, want) - total(a, name, want)))
    r = {
        "logins_metrics": d("xedge_logins_total"),
        "logins_bench": j["logins"]["logged_in"],
        "sasl_failures_metrics": d("xedge_sasl_failures_total"),
        "msg_in_metrics": d("xedge_stanzas_total", {**lis, "direction": "in", "kind": "message"}),
        "msg_out_metrics": d("xedge_stanzas_total", {**lis, "direction": "out", "kind": "message"}),
        "binds_sm": d("xedge_sm_binds_total"),
        "offline_stored_sm": d("xedge_sm_offline_stored_total"),
        "stanza_errors_sm": d("xedge_sm_stanza_errors_total"),
    }
    msgs = j.get("messages") or {}
    r["msg_sent_bench"] = msgs.get("sent_total", 0)
    r["msg_received_bench"] = msgs.get("received_total", 0)
    r["msg_lost_bench"] = msgs.get("lost", 0)
    r["agree"] = (r["logins_metrics"] == r["logins_bench"] and r["msg_in_metrics"] == r["msg_sent_bench"]
                  and r["msg_out_metrics"] == r["msg_received_bench"])
    return r


def buckets(metrics, name):
    out = []
    for k, v in metrics.items():
        n, labels = labels_of(k)
        if n == name + "_bucket":
            le = labels["le"]
            out.append((float("inf") if le == "+Inf" else float(le), v))
    return sorted(out)


def quantile(q, bs):
    """PromQL histogram_quantile over cumulative (le, count) pairs."""
    if not bs or bs[-1][1] <= 0:
        return None
    rank, prev_le, prev_c = q * bs[-1][1], 0.0, 0.0
    for le, c in bs:
        if c >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_c) / (c - prev_c) if c > prev_c else 0)
        prev_le, prev_c = le, c
    return prev_le


def cmd_quantiles(before, after, name):
    a, b = buckets(json.load(open(before)), name), buckets(json.load(open(after)), name)
    d = [(le, cb - dict(a).get(le, 0)) for le, cb in b]
    r = {"count": int(d[-1][1]) if d else 0}
    for q in (0.5, 0.99):
        v = quantile(q, d)
        r[f"p{int(q * 100)}"] = None if v is None else round(v, 6)
    return r


def cmd_roll_merge(out, paths):
    m = {}
    for p in paths:
        r = load(p)
        if r is None:
            raise SystemExit(f"ops.py roll-merge: {p} is missing")
        for k, v in r.items():
            if isinstance(v, dict):
                d = m.setdefault(k, {})
                for kk, vv in v.items():
                    d[kk] = d.get(kk, 0) + vv
            elif k == "per_second":
                d = m.setdefault("_per_second", {})
                for sec, n in v:
                    d[sec] = d.get(sec, 0) + n
            elif k in ("t", "seconds"):
                m[k] = max(m.get(k, 0), v)
            else:
                m[k] = m.get(k, 0) + v
    if "_per_second" in m:
        m["per_second"] = [[sec, n] for sec, n in sorted(m.pop("_per_second").items())]
    with open(out, "w") as f:
        json.dump(m, f)


def cmd_element_error(port, size):
    import asyncio
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compare"))
    from xmpp import Conn

    async def go():
        c = Conn("127.0.0.1", port, "localhost", 15)
        try:
            await c.starttls()
            head = "<message to='nobody@localhost'><body>"
            tail = "</body></message>"
            c.send(head + "x" * max(0, size - len(head) - len(tail)) + tail)
            buf, deadline = b"", time.monotonic() + 15
            while b"</stream:error>" not in buf and time.monotonic() < deadline:
                try:
                    data = await asyncio.wait_for(c.reader.read(65536), deadline - time.monotonic())
                except (ConnectionError, asyncio.TimeoutError):
                    break
                if not data:
                    break
                buf += data
            m = re.search(rb"<stream:error>\s*<([a-z-]+)", buf)
            return m.group(1).decode() if m else "none"
        finally:
            await c.close()
    return asyncio.run(go())


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def cmd_summary(res):
    out = []
    w = out.append
    r = load(f"{res}/reload-facts.json")
    if r:
        w("### SIGHUP under load: %d sessions, 3 reloads\n" % r["clients"])
        w("| measure | value |")
        w("|---|---|")
        w(f"| sessions logged in / dropped / failed | {r['logged_in']} / {r['dropped']} / {r['failed']} |")
        w(f"| messages sent / received / lost | {r['sent']} / {r['received']} / {r['lost']} |")
        w(f"| `xedge_config_reloads_total` ok / failed | {r['reloads_ok']} / {r['reloads_failed']} |")
        w("| `xedge_sm_sessions` after reload 1 (limit), 2 (certificate), 3 (same file) | "
          + " / ".join(str(x) for x in r["sessions_after_each_reload"]) + " |")
        w(f"| 3 reloads done within | {r['seconds_for_3_reloads']} s of the last login |")
        if r.get("element_200000_after"):
            w(f"| a new stream's 200,000-byte element, max_stanza_bytes 262144 -> 131072 by reload 1 | "
              f"`{r['element_200000_before']}` before, `{r['element_200000_after']}` after |")
        new_ok = r["fingerprint_after"] == r["fingerprint_new_file"] != r["fingerprint_before"]
        w(f"| certificate of a new STARTTLS handshake | {'the new one' if new_ok else 'NOT the new one'} "
          f"(before `{r['fingerprint_before'][:23]}`, after `{r['fingerprint_after'][:23]}`) |")
        w("")
    r = load(f"{res}/roll-facts.json")
    if r:
        w("### Rolling restart behind HAProxy: %d clients, drain.rate %d/s\n" % (r["clients"], r["drain_rate"]))
        w("| measure | value |")
        w("|---|---|")
        w(f"| sessions before the drain on A / B | {r['on_a_before']} / {r['on_b_before']} |")
        w(f"| A: SIGTERM to exit (status {r['a_exit_status']}) | {r['drain_seconds']} s "
          f"({r['on_a_before'] / max(r['drain_rate'], 1):.1f} s expected at drain.rate) |")
        w(f"| every client on B after | {r['all_on_b_seconds']} s ({r['on_b_after']} sessions on B) |")
        w(f"| clients redirected (see-other-host) / told system-shutdown / dropped | "
          f"{r['redirects']} / {r['shutdowns']} / {r['drops']} |")
        w(f"| login failures seen by the clients | {sum(r['client_failures'].values())} |")
        w(f"| B's highest login rate (per second, from its /metrics) | {r['b_login_rate_max']}/s "
          f"(bound {r['b_login_rate_bound']}/s; ratio to drain.rate {r['b_login_rate_max'] / r['drain_rate']:.2f}) |")
        lat = r.get("latency_during_drain") or {}
        for key, what in (("b_login_duration", "B: `xedge_login_duration_seconds` (first SASL message to bound)"),
                          ("b_sm_rtt", "B: `xedge_session_server_rtt_seconds` (credentials, bind)"),
                          ("sm_store_job", "xedge-sm: `xedge_sm_store_job_duration_seconds`")):
            h = lat.get(key)
            if h and h.get("count"):
                w(f"| {what} during the drain: p50 / p99 (count) | {h['p50'] * 1000:.1f} ms / "
                  f"{h['p99'] * 1000:.1f} ms ({h['count']}) |")
        w(f"| after A is back: {r['balance_logins']} new logins through HAProxy on A / B | "
          f"{r['balance_on_a']} / {r['balance_on_b']} (failed {r['balance_failed']}) |")
        w("")
        w("B's logins per second around the drain (t: seconds since 3 s before the SIGTERM):\n")
        w("| t (s) | " + " | ".join(f"{t:g}" for t, _ in r["b_login_rates"]) + " |")
        w("|---|" + "---|" * len(r["b_login_rates"]))
        w("| logins/s | " + " | ".join(f"{v:g}" for _, v in r["b_login_rates"]) + " |")
        w("")
    rows = [(n, load(f"{res}/metrics-{n}-facts.json")) for n in ("login", "chat")]
    if any(f for _, f in rows):
        w("### /metrics against xedge-bench\n")
        w("| run | logins: metrics / bench | messages in: metrics / bench sent | "
          "messages out: metrics / bench received | sm binds | agree |")
        w("|---|---|---|---|---|---|")
        for n, f in rows:
            if f:
                w(f"| {n} | {f['logins_metrics']} / {f['logins_bench']} | {f['msg_in_metrics']} / "
                  f"{f['msg_sent_bench']} | {f['msg_out_metrics']} / {f['msg_received_bench']} | "
                  f"{f['binds_sm']} | {'yes' if f['agree'] else 'NO'} |")
        w("")
    try:
        checks = [json.loads(l) for l in open(f"{res}/checks.jsonl")]
    except FileNotFoundError:
        checks = []
    if checks:
        w("### Checks\n")
        w("| check | result | detail |")
        w("|---|---|---|")
        for c in checks:
            w(f"| {c['check']} | {'ok' if c['ok'] else '**FAILED**'} | {c['detail'].replace('|', '/')} |")
        w("")
    print("\n".join(out))


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd = argv[1]
    if cmd == "get":
        try:
            sys.stdout.write(fetch(argv[2]))
        except OSError:          # refused, or an HTTP error status (HTTPError is an OSError)
            sys.exit(1)
    elif cmd == "scrape":
        json.dump(scrape(argv[2]), open(argv[3], "w"), indent=0, sort_keys=True)
    elif cmd == "sum":
        want = dict(a.split("=", 1) for a in argv[4:])
        v = total(json.load(open(argv[2])), argv[3], want)
        print(int(v) if v == int(v) else v)
    elif cmd == "watch":
        interval, max_s, targets, rest = 1.0, 600.0, [], argv[3:]
        while rest:
            a = rest.pop(0)
            if a == "--interval":
                interval = float(rest.pop(0))
            elif a == "--max-s":
                max_s = float(rest.pop(0))
            else:
                targets.append(tuple(a.split("=", 1)))
        cmd_watch(argv[2], targets, interval, max_s)
    elif cmd == "rates":
        print(json.dumps(cmd_rates(argv[2], argv[3], float(argv[4]), float(argv[5]))))
    elif cmd == "metrics-vs-bench":
        lis = ["c2s", "c2s_tls"]
        if "--listeners" in argv:
            lis = argv[argv.index("--listeners") + 1].split(",")
        print(json.dumps(cmd_mvb(argv[2], argv[3], argv[4], lis)))
    elif cmd == "quantiles":
        print(json.dumps(cmd_quantiles(argv[2], argv[3], argv[4])))
    elif cmd == "roll-merge":
        cmd_roll_merge(argv[2], argv[3:])
    elif cmd == "element-error":
        print(cmd_element_error(int(argv[2]), int(argv[3])))
    elif cmd == "summary":
        cmd_summary(argv[2])
    else:
        sys.exit(f"ops.py: unknown command {cmd!r}\n{__doc__}")


if __name__ == "__main__":
    main(sys.argv)
