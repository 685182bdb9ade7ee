#!/usr/bin/python3
"""bench/scale/run.sh's summary: memory per idle TLS session held, of the generator (its JSON
`generator` object), of the server (xedge's VmRSS growth, sampled by xedge-bench's --pid, at the
held moment) and of the kernel (TCP buffer pages of /proc/net/sockstat and the slab's growth of
/proc/meminfo, both ends of every connection, at their peak), with the login figures.
    usage: summary.py RESULTS_DIR            (markdown on stdout)
           summary.py --check RESULTS_DIR    (exit 1 unless every user logged in and was held)"""
import json
import sys


def load(res):
    b = json.load(open(res + "/bench.json"))
    p = json.load(open(res + "/params.json"))
    tcp = []
    for line in open(res + "/sockstat.txt"):
        f = line.split()
        if len(f) == 3:
            tcp.append((int(f[0]), int(f[1]), int(f[2])))
    return b, p, tcp


def held_point(b):
    """The last timeline point with the most users online: the end of the hold."""
    best = None
    for pt in b["timeline"]:
        if best is None or pt["users"] >= best["users"]:
            best = pt
    return best


def chat(res, out):
    """The chat run (open loop, past what the server takes): the generator's offered rate
    (messages written per second) against the server's absorbed rate (delivered per second), and
    the CPU of each, over the seconds in which the generator was sending (the first and last,
    partial, left out)."""
    try:
        c = json.load(open(res + "/chat.json"))
    except (OSError, ValueError):
        out.append("| chat run | no result (see chat.err) |")
        return
    pts = [p for p in c["series"] if p["sent_s"] > 0][1:-1]
    if not pts:
        out.append("| chat run | no messages sent |")
        return
    n = len(pts)
    sent = sum(p["sent_s"] for p in pts) / n
    recv = sum(p["recv_s"] for p in pts) / n
    gcpu = sum(p["bench_cpu"] for p in pts) / n
    scpu = sum(p["target_cpu"] for p in pts) / n
    out.append("| chat, open loop, %d clients, one generator thread (CPU 1) against xedge (CPU 0): "
               "offered / absorbed | **%.0f / %.0f messages/s** (%.1f×, over %d s) |"
               % (c["logins"]["logged_in"], sent, recv, sent / recv if recv else 0, n))
    out.append("| chat: CPU, generator / server (%% of one core) | %.0f %% / %.0f %% |" % (gcpu, scpu))
    out.append("| chat: generator CPU per message offered | %.1f µs |" % (gcpu / 100 * 1e6 / sent))


def kib(n):
    return "%.2f KiB" % (n / 1024)


def main():
    check = sys.argv[1] == "--check"
    res = sys.argv[-1]
    b, p, tcp = load(res)
    g = b["generator"]
    n, held = p["n"], g["sessions_held"]
    login = b["transactions"]["login"]
    if check:
        ok = login["count"] == n and held == n
        if not ok:
            print("bench-scale: %d of %d logged in, %d held" % (login["count"], n, held))
        sys.exit(0 if ok else 1)
    pt = held_point(b)
    server = (pt["target_rss_kib"] - p["xedge_rss_before_kib"]) * 1024 / held if held else 0
    tcp_peak = max((m for _, m, _ in tcp), default=p["tcp_mem_pages_before"])
    slab_peak = max((s for _, _, s in tcp), default=p["slab_kib_before"])
    tcp_b = (tcp_peak - p["tcp_mem_pages_before"]) * p["page_size"] / held if held else 0
    slab_b = (slab_peak - p["slab_kib_before"]) * 1024 / held if held else 0
    lat = login["hist"]
    span = [pt2["t"] for pt2 in b["timeline"] if pt2["tx"].get("login", {}).get("count")]
    secs = (span[-1] - span[0] + 1) if span else 0
    out = []
    out.append("# One generator: %d idle TLS sessions\n" % n)
    out.append("`%s` (%s, commit %s, %d CPUs, load average after: %s)\n"
               % (p["command"], p["date"], p["commit"], p["cpus"], p["loadavg_after"]))
    if p["n_asked"] != n:
        out.append("**%d sessions asked, %d run: the rest would not fit in the %d MiB available.**\n"
                   % (p["n_asked"], n, p["mem_available_kib"] // 1024))
    out.append("| | value |\n|---|---|")
    out.append("| sessions held (online at the end of the hold) | %d of %d |" % (held, n))
    out.append("| logins | %d, %d errors, in %d s (%.0f/s); p50 %.0f ms, p99 %.0f ms |"
               % (login["count"], login["errors"], secs, login["count"] / secs if secs else 0,
                  lat["p50_ms"], lat["p99_ms"]))
    out.append("| xedge: workers, source addresses, logins in progress | %d, %d, %d |"
               % (p["workers"], p["sources"], p["concurrency"]))
    out.append("| **generator (xedge-bench) per session: RSS** | **%s** (%.1f → %.1f MiB) |"
               % (kib(g["bytes_per_session"] or 0), g["rss_before_kib"] / 1024,
                  g["rss_held_kib"] / 1024))
    if g.get("heap_bytes_per_session") is not None:
        out.append("| generator per session: heap allocated (jemalloc) | %s (%.1f → %.1f MiB; "
                   "resident %.1f MiB) |" % (kib(g["heap_bytes_per_session"]),
                                              g["heap_allocated_before"] / 1048576,
                                              g["heap_allocated_held"] / 1048576,
                                              g["heap_resident_held"] / 1048576))
    out.append("| **server (xedge) per session: RSS** | **%s** (%.1f → %.1f MiB) |"
               % (kib(server), p["xedge_rss_before_kib"] / 1024, pt["target_rss_kib"] / 1024))
    out.append("| kernel per session (both sockets; in no process's RSS): slab + TCP buffers | "
               "%s + %s (peaks %.1f MiB, %.1f MiB; machine-wide) |"
               % (kib(slab_b), kib(tcp_b), slab_peak / 1024, tcp_peak * p["page_size"] / 1048576))
    out.append("| generator CPU (avg, of one core) / server CPU (avg) | %.0f %% / %.0f %% |"
               % (g["cpu_avg"], b["target_load"]["cpu_avg"]))
    chat(res, out)
    errs = b["errors"]["by_cause"]
    if errs:
        out.append("\nFailures: " + ", ".join("%s %d" % kv for kv in sorted(errs.items())))
    print("\n".join(out))


main()
