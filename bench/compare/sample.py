#!/usr/bin/python3
"""Write a hand-made results tree, as bench/compare/run.sh would leave it, to test report.py
without running anything:

  sample.py DIR            then: report.py --results DIR --doc /tmp/b.md --plots /tmp/bench

The numbers are invented and round (so nobody mistakes them for measurements). xedge and
Prosody results use xedge-bench's JSON shape (bench/report.c); ejabberd's use the shape
sketched in issue 3 (logins.ok, logins.per_sec, chat.per_sec, idle.per_session_kib ...), to
check that report.py reads both; ejabberd's login run is missing, to check that a missing
run is reported as missing.
"""
import json
import os
import sys


def series(n, f):
    return [f(t) for t in range(n)]


def bench_json(scenario, clients, *, per_s=None, login_p=None, recv=None, sent=None, msg_p=None,
               idle=None, tcpu=90.0, bcpu=30.0, rss0=20000, rate=0.0):
    d = {
        "scenario": scenario, "clients": clients, "threads": 1, "tls": "starttls",
        "mech": "SCRAM-SHA-1", "target": "127.0.0.1", "port": 47222, "domain": "localhost",
        "elapsed_s": 20.0, "interrupted": False,
        "logins": {"started": clients, "connected": clients, "logged_in": clients, "failed": 0,
                   "dropped": 0, "peak_online": clients, "peak_connected": clients,
                   "span_s": clients / (per_s or 1000), "per_s": per_s or 1000.0},
        "latency_ms": {
            "connect": {"count": clients, "p50": 0.1, "p90": 0.2, "p99": 0.5, "p999": 1, "max": 2, "mean": 0.15},
            "tls": {"count": clients, "p50": 1, "p90": 2, "p99": 4, "p999": 8, "max": 10, "mean": 1.2},
            "auth": {"count": clients, "p50": 1, "p90": 2, "p99": 3, "p999": 5, "max": 9, "mean": 1.1},
            "login": dict(zip(("count", "p50", "p90", "p99", "p999", "max", "mean"),
                              [clients] + list(login_p or (5, 10, 20, 40, 80, 7)))),
            "message": dict(zip(("count", "p50", "p90", "p99", "p999", "max", "mean"),
                                [int((recv or 0) * 10)] + list(msg_p or (0, 0, 0, 0, 0, 0)))),
        },
        "failures": {},
        "messages": {"mode": "open" if rate else "closed", "window": 4, "rate": rate, "body": 64,
                     "warmup_s": 2, "measured_s": 10, "sent": int((sent or recv or 0) * 10),
                     "received": int((recv or 0) * 10), "lost": 0, "duplicated": 0,
                     "reordered": 0, "misrouted": 0, "sent_per_s": sent or recv or 0,
                     "recv_per_s": recv or 0, "sent_total": 0, "received_total": 0,
                     "window_timeouts": 0},
        "target": {"pids": [1234], "cpu_avg": tcpu, "cpu_max": 100.0, "rss_max_kib": rss0 * 4},
        "bench": {"cpu_avg": bcpu, "cpu_max": bcpu + 10, "bytes_in": 0, "bytes_out": 0},
        "series": series(12, lambda t: {
            "t": t, "connected": min(clients, (t + 1) * clients // 4),
            "logged_in": min(clients, (t + 1) * clients // 4),
            "logins_s": (per_s or 0) if t < 4 else 0, "failed_s": 0,
            "sent_s": (sent or recv or 0) if t >= 4 else 0, "recv_s": (recv or 0) if t >= 4 else 0,
            "p50": 1.0, "p99": 4.0, "target_cpu": tcpu, "bench_cpu": bcpu,
            "target_rss_kib": rss0 + (idle or 0) * min(clients, (t + 1) * clients // 4)}),
    }
    if idle is not None:
        d["idle"] = {"rss_before_kib": rss0, "rss_after_kib": int(rss0 + idle * clients),
                     "sessions": clients, "kib_per_session": idle}
    return d


def xcheck(d, sent, received):
    """A cross-check run of bench/scenarios/tsung-chat.yaml: the whole run's counts."""
    d["scenario_file"] = {"name": "tsung-chat", "chat": {"sent": sent, "sent_measured": sent,
                                                         "received": received,
                                                         "received_measured": received}}
    return d


def issue_shape(scenario, clients, *, per_sec=None, chat_rate=None, p99=None, per_session=None):
    """The JSON shape sketched in issue 3."""
    d = {"scenario": scenario, "clients": clients,
         "logins": {"ok": clients, "failed": {}, "per_sec": per_sec or 500.0,
                    "handshake_ms": {"p50": 3, "p90": 6, "p99": 12, "p999": 20, "max": 30},
                    "auth_ms": {"p50": 2, "p90": 4, "p99": 8, "p999": 12, "max": 20}},
         "target": {"cpu_avg": 99.0, "cpu_max": 100.0, "rss_max_kib": 200000},
         "bench": {"cpu_avg": 12.0}}
    if chat_rate is not None:
        d["chat"] = {"sent": chat_rate * 10, "received": chat_rate * 10, "lost": 0, "duplicated": 0,
                     "reordered": 0, "per_sec": chat_rate,
                     "latency_ms": {"p50": 10, "p90": 30, "p99": p99, "p999": p99 * 2, "max": p99 * 3}}
    if per_session is not None:
        d["idle"] = {"sessions": clients, "rss_before_kib": 90000,
                     "rss_after_kib": 90000 + per_session * clients, "per_session_kib": per_session}
    return d


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)

    def put(path, obj):
        p = os.path.join(out, path)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            if isinstance(obj, str):
                f.write(obj)
            else:
                json.dump(obj, f)

    put("machine.json", {"date": "2000-01-01 00:00 UTC (SAMPLE)", "nproc": 2, "cpu_model": "Sample CPU",
                         "hypervisor": "KVM", "kernel": "6.1.0", "os": "Debian GNU/Linux 12 (bookworm)",
                         "mem_gib": 8, "loadavg_at_start": ["0.01", "0.02", "0.03"],
                         "xedge_commit": "0000000", "packages": {"prosody": "0.12.3", "ejabberd": "23.01"}})
    put("params.json", {"quick": 1, "targets": "xedge prosody ejabberd", "n_idle": 1000, "n_login": 500,
                        "n_chat": 200, "chat_s": 10, "warmup_s": 2, "settle_s": 3, "chat_window": 4,
                        "rate_fraction": 0.5, "concurrency": 200, "tsung_users": 100, "tsung_rate": 5,
                        "tsung_s": 20, "tsung_targets": "prosody xedge", "n_provisioned": 1000, "server_cpu": "0", "load_cpu": "1",
                        "sources": "127.0.0.1,127.0.0.2", "bench_bin": "build/xedge-bench",
                        "have_bench": 1, "bench_dir": "/tmp/sample"})
    put("rate.json", {"rate_total": 1000, "rate_per_client": 5.0, "fastest": "xedge", "fastest_rate": 100000})
    put("duration.json", {"seconds": 240})
    put("commands.txt", "bench/compare/xedge/start.sh\nbuild/xedge-bench --scenario idle ...\n")
    for t, aff in (("xedge", "0"), ("prosody", "0"), ("ejabberd", "0")):
        put(f"{t}/start.json", {"seconds": 0.2, "affinity": aff, "server_pid": 1234})
        put(f"{t}/probe.json", {"starttls": True, "mechanisms": ["SCRAM-SHA-1", "PLAIN"],
                                "tls_version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384", "ibr": False})
        put(f"{t}/provision.json", {"method": f"{t} sample method", "users": 1000, "seconds": 2.0, "per_sec": 500})
    # xedge and Prosody: xedge-bench's shape
    put("xedge/idle.json", bench_json("idle", 1000, idle=40.0))
    put("xedge/login.json", bench_json("login", 500, per_s=3000.0, login_p=(2, 4, 8, 16, 30, 3)))
    put("xedge/chat.json", bench_json("chat", 200, recv=100000.0, msg_p=(2, 4, 8, 16, 40, 3), bcpu=60))
    put("xedge/rate.json", bench_json("chat", 200, recv=1000.0, msg_p=(0.5, 0.8, 1.5, 3, 6, 0.6), rate=5))
    put("xedge/headroom.json", bench_json("chat", 200, sent=210000.0, recv=110000.0,
                                          msg_p=(50, 90, 200, 400, 800, 70), rate=1000, bcpu=95))
    put("prosody/idle.json", bench_json("idle", 1000, idle=80.0))
    put("prosody/login.json", bench_json("login", 500, per_s=600.0, login_p=(30, 60, 120, 200, 300, 40)))
    put("prosody/chat.json", bench_json("chat", 200, recv=4000.0, msg_p=(150, 200, 260, 300, 400, 160)))
    put("prosody/rate.json", bench_json("chat", 200, recv=1000.0, msg_p=(3, 8, 30, 60, 90, 5), rate=5))
    put("prosody/xcheck.json", xcheck(bench_json("tsung-chat", 100, recv=495.0, msg_p=(2, 5, 20, 40, 60, 3),
                                              sent=500.0, rate=5), 10000, 9990))
    put("prosody/xcheck.mon.json", {"seconds": 25, "target_cpu": 40, "bench_cpu": 5, "monitor_cpu": 0.3,
                                    "foreign_cpu": 2.0, "foreign_cpu_peak": 4.0})
    # ejabberd: the issue's shape; no login run
    put("ejabberd/idle.json", issue_shape("idle", 1000, per_session=120.0))
    put("ejabberd/chat.json", issue_shape("chat", 200, chat_rate=12000.0, p99=80.0))
    put("ejabberd/rate.json", issue_shape("chat", 200, chat_rate=1000.0, p99=12.0))
    put("ejabberd/login.error", "xedge-bench exit status 2: nothing could connect (SAMPLE)")
    # tsung: Prosody's where runs before the xedge cross-check kept it, xedge's in its directory
    for path, lat in (("tsung/tsung.json", 4.0), ("xedge/tsung/tsung.json", 1.0)):
        put(path, {"tool": "tsung", "users": 100, "rate_per_user": 5, "duration_s": 20,
                   "logins": 100, "sent": 10000, "delivered": 10000, "steady_intervals": 3,
                   "steady_seconds": 15, "sent_per_sec": 500.0, "delivered_per_sec": 500.0,
                   "latency_ms": {"mean": lat, "max": 50.0}, "errors": {},
                   "series": [{"t": 5 * i, "sent": 2500, "delivered": 2500, "dt": 5 if i else None}
                              for i in range(5)]})
    put("xedge/tsung/tsung.mon.json", {"seconds": 25, "target_cpu": 10, "bench_cpu": 30, "monitor_cpu": 0.3})
    put("xedge/xcheck.json", xcheck(bench_json("tsung-chat", 100, recv=499.0, msg_p=(0.5, 1, 2, 4, 8, 0.6),
                                            sent=500.0, rate=5), 10000, 10000))


if __name__ == "__main__":
    main()
