"""Sections of docs/benchmarks.md added to report.py's page (imported by report.py):

  before_after   xedge at BASE_REF against xedge at HEAD, pass 1 of the same run
  behind_xedge   Prosody alone against Prosody behind xedge (upstream mode), pass 1
  floor_median   the TCP echo floor beside the median p99 of the equal-load repeats
  curve          p50/p99 against offered load up to each server's saturation, and its plot

Each takes the results directory (run.sh's $BENCH_DIR/results), params.json's dict and a
writer w(line); the plotting ones also report.py's Plotter. What is missing is said, never
invented. Standard library only.
"""
import os

from harness import bench_get, load

NAMES = {"xedge": "xedge", "prosody": "Prosody", "ejabberd": "ejabberd",
         "xedge-base": "xedge (before)", "prosody-up": "Prosody behind xedge"}
MAIN = ["xedge", "prosody", "ejabberd"]
NOISE = 0.10     # a ratio within 1 ± NOISE counts as "within noise" (see before_after)


def num(v, nd=None):
    if v is None:
        return "—"
    if nd is None:
        nd = 0 if abs(v) >= 100 else (1 if abs(v) >= 10 else 2)
    return f"{v:,.{nd}f}"


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def rf(r):
    return "—" if r is None else f"{r:.2f}×"


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def run(res, t, r):
    return load(os.path.join(res, t, r + ".json"))


def get(res, t, r, name):
    d = run(res, t, r)
    return bench_get(d, name) if d else None


def pct(res, t, r, p, hist="msg_ms"):
    h = get(res, t, r, hist)
    return h.get(p) if isinstance(h, dict) else None


def steady_cpu(res, t, r="chat"):
    """CPU seconds per 1,000 messages delivered over the steady seconds of a chat run (those
    in which xedge-bench sent, the first and the last left out): (tracked process, whole
    target). The tracked process is the server's own (Prosody, also behind xedge), sampled
    by harness.py monitor --track every 0.5 s and interpolated at the window's edges; the
    whole target is xedge-bench's per-second sampling of every --pid (Prosody + xedge)."""
    d, m = run(res, t, r), load(os.path.join(res, t, r + ".mon.json"))
    pts = [p for p in (bench_get(d, "series") or []) if isinstance(p, dict)] if d else []
    win = [p for p in pts if (p.get("sent_s") or 0) > 0][1:-1]
    if not win:
        return None, None
    msgs = sum(p.get("recv_s") or 0 for p in win)
    if not msgs:
        return None, None
    whole = sum(p.get("target_cpu") or 0 for p in win) / 100.0
    own = None
    tr = (m or {}).get("track") or {}
    ser = [s for s in tr.get("series") or [] if s[1] is not None]
    a, b = win[0]["t"] - 1, win[-1]["t"]

    def at(x):
        for (t0, k0, _), (t1, k1, _) in zip(ser, ser[1:]):
            if t0 <= x <= t1:
                return k0 + (k1 - k0) * (x - t0) / (t1 - t0) if t1 > t0 else k0
        return None
    if len(ser) >= 2:
        ka, kb = at(a), at(b)
        if ka is not None and kb is not None:
            own = (kb - ka) / tr.get("hz", 100) / msgs * 1000
    return own, whole / msgs * 1000


def tracked_rss_growth(res, t, r="idle"):
    """KiB the tracked process grew by during the idle run (its largest sample minus its first)."""
    m = load(os.path.join(res, t, r + ".mon.json")) or {}
    ser = [s for s in ((m.get("track") or {}).get("series") or []) if s[2] is not None]
    return (max(s[2] for s in ser) - ser[0][2]) if len(ser) >= 2 else None


def before_after(res, P, w):
    if not run(res, "xedge-base", "chat") and not run(res, "xedge-base", "idle"):
        return
    ref, commit = P.get("base_ref", "?"), (P.get("base_commit") or "")[:7]
    w(f"## No regression of the native path: xedge before ({ref}) and after (HEAD)\n")
    w(f"xedge built at the base commit (`BASE_REF={ref}`, {commit}; "
      "`run.sh` builds it from `git archive` in its own directory) and xedge at HEAD ran the "
      "same pass-1 runs in this run, one after the other, with the same config, pinning, nice "
      "value, load generator (HEAD's `xedge-bench`) and sizes; each with its own fresh accounts. "
      f"A ratio within 1 ± {NOISE:.2f} is counted as noise: on this shared VM the same binary's "
      "figures move by that much between runs (compare the xedge column here with earlier "
      "versions of this page).\n")
    rows = [("chat messages delivered per second (closed loop, saturation)", "chat", "recv_per_s", "high", 0),
            ("memory per idle TLS session (KiB)", "idle", "kib_per_session", "low", 2),
            ("logins per second (TLS + SCRAM-SHA-1 + bind)", "login", "logins_per_s", "high", 0)]
    w(f"| | before ({ref}) | after (HEAD) | ratio after/before | verdict |\n|---|---:|---:|---:|---|")
    for label, r, name, better, nd in rows:
        b, a = get(res, "xedge-base", r, name), get(res, "xedge", r, name)
        q = ratio(a, b)
        if q is None:
            v = "—"
        elif abs(q - 1) <= NOISE:
            v = "within noise"
        elif (q > 1) == (better == "high"):
            v = f"better (beyond ±{NOISE * 100:.0f} %)"
        else:
            v = f"**worse** (beyond ±{NOISE * 100:.0f} %)"
        w(f"| {label} | {num(b, nd)} | {num(a, nd)} | {rf(q)} | {v} |")
    for label, r, name in (("chat latency p99 (ms, closed loop: queueing)", "chat", None),
                           ("server CPU in the chat run (% of its core)", "chat", "target_cpu_avg"),
                           ("xedge-bench CPU in the chat run (% of its core)", "chat", "bench_cpu_avg")):
        if name is None:
            b, a = pct(res, "xedge-base", r, "p99"), pct(res, "xedge", r, "p99")
        else:
            b, a = get(res, "xedge-base", r, name), get(res, "xedge", r, name)
        w(f"| {label} | {num(b)} | {num(a)} | {rf(ratio(a, b))} | |")
    bc = get(res, "xedge", "chat", "bench_cpu_avg")
    w("")
    if bc is not None and bc >= 80:
        w(f"- xedge-bench used {bc:.0f} % of its core in xedge's chat run: both chat figures may "
          "be set partly by the load generator, which makes them lower bounds for either binary.")
    for t in ("xedge-base", "xedge"):
        for r in ("idle", "login", "chat"):
            m = load(os.path.join(res, t, r + ".mon.json")) or {}
            f = m.get("foreign_on_server_cpu")
            if f is not None and f >= 10 and r != "idle":
                w(f"- {NAMES[t]}, {r}: other processes took {f:.0f} % of the server's CPU.")
    w("")


def behind_xedge(res, P, w):
    if not any(run(res, "prosody-up", r) for r in ("idle", "login", "chat")):
        return
    w("## Prosody behind xedge (upstream mode)\n")
    w("The same pass-1 runs against Prosody alone and against Prosody behind xedge in upstream "
      "mode: clients do STARTTLS and TLS 1.3 with xedge, which relays each of them over its own "
      "plaintext c2s stream on loopback to the same Prosody (same modules, storage, PBKDF2 "
      "count; its config is `bench/prosody/prosody.cfg.lua` with mod_tls removed, encryption not "
      "required and PLAIN allowed without TLS: `bench/compare/prosody-up/start.sh`). SASL "
      "(SCRAM-SHA-1), bind, roster, presence and routing are still Prosody's.\n")
    w(f"**Pinning: xedge and Prosody both on CPU {P.get('server_cpu', '0')}**, the one core "
      "Prosody has when it runs alone. Giving xedge a core of its own would hand the pair twice "
      "the CPU of the server it is compared with (and on this 2-vCPU VM the other core is the "
      "load generator's), so a gain could be bought with hardware; on one shared core, what "
      "the pair delivers more is what Prosody saves by not doing TLS and XML-stream I/O "
      "itself, net of what xedge spends on it. It is the conservative choice: the pair pays "
      "for xedge's work out of Prosody's core.\n")
    rows = []
    ca, cu = get(res, "prosody", "chat", "recv_per_s"), get(res, "prosody-up", "chat", "recv_per_s")
    rows.append(("**chat messages delivered per second** (closed loop)", ca, cu, 0))
    ma, mu = get(res, "prosody", "idle", "kib_per_session"), get(res, "prosody-up", "idle", "kib_per_session")
    rows.append(("**memory per idle TLS session (KiB)**: RSS growth of Prosody (+ xedge)", ma, mu, 1))
    n_up = get(res, "prosody-up", "idle", "sessions") or get(res, "prosody-up", "idle", "logged_in")
    pg = tracked_rss_growth(res, "prosody-up")
    if pg is not None and n_up:
        p_share = pg / n_up
        rows.append(("… of which Prosody (KiB per session)", ma, p_share, 1))
        rows.append(("… of which xedge (KiB per session)", None, (mu - p_share) if mu is not None else None, 1))
    la, lu = get(res, "prosody", "login", "logins_per_s"), get(res, "prosody-up", "login", "logins_per_s")
    rows.append(("**logins per second** (TLS + SCRAM-SHA-1 + bind)", la, lu, 0))
    own_a, whole_a = steady_cpu(res, "prosody")
    own_u, whole_u = steady_cpu(res, "prosody-up")
    rows.append(("**Prosody's own CPU seconds per 1,000 messages** (chat, steady seconds)", own_a, own_u, 3))
    if whole_u is not None and own_u is not None:
        rows.append(("xedge's CPU seconds per 1,000 messages", None, whole_u - own_u, 3))
    rows.append(("both processes' CPU seconds per 1,000 messages", whole_a, whole_u, 3))
    rows.append(("chat latency p99 (ms, closed loop: queueing)", pct(res, "prosody", "chat", "p99"),
                 pct(res, "prosody-up", "chat", "p99"), None))
    rows.append(("login latency p99 (ms)", pct(res, "prosody", "login", "p99", "login_ms"),
                 pct(res, "prosody-up", "login", "p99", "login_ms"), None))
    w("| | Prosody alone | Prosody behind xedge | behind / alone |\n|---|---:|---:|---:|")
    for label, a, u, nd in rows:
        w(f"| {label} | {num(a, nd)} | {num(u, nd)} | {rf(ratio(u, a))} |")
    w("")
    if own_a and own_u:
        w(f"- Per message delivered, Prosody itself spent {rf(ratio(own_u, own_a))} the CPU time "
          f"behind xedge that it spent alone ({(1 - own_u / own_a) * 100:.0f} % less)"
          if own_u < own_a else
          f"- Per message delivered, Prosody itself spent {rf(ratio(own_u, own_a))} the CPU time "
          "behind xedge that it spent alone (no saving)")
        w("  — its share of the work that moved to the edge: TLS record encryption and "
          "decryption, and the client sockets' reads and writes. Measured from "
          "`/proc/PID/stat` of the Prosody process alone (`harness.py monitor --track`) over "
          "the chat run's steady seconds, divided by the messages xedge-bench counted as "
          "delivered in them.")
    if ca and cu:
        w(f"- With one core between them, the pair delivered {rf(ratio(cu, ca))} what Prosody "
          "alone delivered.")
    for r in ("idle", "login", "chat"):
        d = run(res, "prosody-up", r)
        fl = bench_get(d, "failed") if d else None
        if fl:
            causes = ", ".join(f"{k} {v:,}" for k, v in sorted((bench_get(d, "failures") or {}).items()))
            held = bench_get(d, "logged_in")
            w(f"- Prosody behind xedge, {r}: {fl:,} of {num(bench_get(d, 'clients'))} logins failed ({causes}); "
              f"the figures above are for the {num(held)} that logged in.")
            if r == "idle" and held and 17000 <= 2 * held <= 18200:
                w("  xedge holds two connections per client in upstream mode (the client's and "
                  "its upstream stream), and one worker's `limits.max_connections` is 18,000 "
                  "(capped by the 20,000-entry descriptor table per ring): it refused the "
                  "clients past ~9,000 (`connection refused: worker at max_connections` in "
                  "the edge's log). Memory per session is per session held.")
    w("- Memory: xedge-bench samples the RSS of every target process (`--pid` for each) and "
      "divides the growth by the sessions held; Prosody's own part is the growth of its RSS "
      "in the same run (largest sample of the harness's monitor minus its first).")
    for r in ("idle", "login", "chat"):
        m = load(os.path.join(res, "prosody-up", r + ".mon.json")) or {}
        f = m.get("foreign_on_server_cpu")
        if f is not None and f >= 10 and r != "idle":
            w(f"- Prosody behind xedge, {r}: other processes took {f:.0f} % of the server's CPU.")
    cmds = [c for c in (load_text(os.path.join(res, "prosody-up", r + ".cmd")) for r in ("idle", "login", "chat")) if c]
    if cmds:
        w("\n<details><summary>commands</summary>\n\n```sh\n" + "\n".join(cmds) + "\n```\n</details>\n")
    w("")


def load_text(p):
    try:
        with open(p) as f:
            return f.read().strip()
    except OSError:
        return None


def repeats(P):
    n = int(P.get("rate_repeats") or 1)
    return ["rate"] + [f"rate-{i}" for i in range(2, n + 1)]


def floors(res):
    out = {}
    for t in MAIN:
        d = load(os.path.join(res, "floor", f"before-{t}.json"))
        if d:
            out[t] = d
    return out


def floor_median(res, P, w):
    fl = floors(res)
    reps = repeats(P)
    tg = [t for t in MAIN if run(res, t, "rate")]
    if not tg and not fl:
        return None
    rt = load(os.path.join(res, "rate.json")) or {}
    w("## Latency against this machine's floor\n")
    w("An idle vCPU of this VM halts, and waking it costs milliseconds at the tail (DESIGN §3): "
      "at a low rate both CPUs sleep between messages, so a bare TCP echo between the load CPU "
      "and the server CPU already has a p99 of milliseconds, and every server's p99 lands near "
      "it. The run measures that floor: `bench/compare/echo.c` (a C echo server pinned to the "
      f"server CPU, a ping-pong client pinned to the load CPU, both at nice {P.get('nice', 0)}) at the "
      f"equal-load rate ({num(rt.get('rate_total'))} messages/s of {P.get('msg_size', 64)} bytes, "
      f"over {num(P.get('echo_conns'))} connections, {P.get('chat_s', '?')} s), once before each "
      f"server's equal-load runs; each server's equal-load run is repeated {len(reps)} times. "
      "The echo measures from `write(2)` to the end of the echo's `read(2)`: the same trip, load "
      "CPU → server CPU → load CPU, as a chat message between two clients, without TLS, XML "
      "or routing.\n")
    fp99 = [fl[t]["rtt_ms"].get("p99") for t in MAIN if t in fl]
    fp50 = [fl[t]["rtt_ms"].get("p50") for t in MAIN if t in fl]
    head = "| | TCP echo (floor) | " + " | ".join(NAMES[t] for t in tg) + " |"
    w(head + "\n|---|---:|" + "---:|" * len(tg))
    for i, r in enumerate(reps):
        ft = MAIN[i] if i < len(MAIN) else None
        fv = fl[ft]["rtt_ms"].get("p99") if ft in fl else None
        flab = f"{num(fv)} (before {NAMES[ft]})" if fv is not None else "—"
        w(f"| p99 (ms), measurement {i + 1} | {flab} | " +
          " | ".join(num(pct(res, t, r, "p99")) for t in tg) + " |")
    med = {t: median([pct(res, t, r, "p99") for r in reps]) for t in tg}
    med50 = {t: median([pct(res, t, r, "p50") for r in reps]) for t in tg}
    fm, fm50 = median(fp99), median(fp50)
    w(f"| **median p99 (ms)** | **{num(fm)}** | " + " | ".join(f"**{num(med[t])}**" for t in tg) + " |")
    w(f"| median p50 (ms) | {num(fm50)} | " + " | ".join(num(med50[t]) for t in tg) + " |")
    w("| median p99 / floor's median p99 | 1 | " + " | ".join(rf(ratio(med[t], fm)) for t in tg) + " |")
    w("| others' use of the server CPU (%, per measurement) | " +
      ", ".join(num((load(os.path.join(res, "floor", f"before-{t}.mon.json")) or {}).get("foreign_on_server_cpu"), 0)
                for t in MAIN if t in fl) + " | " +
      " | ".join(", ".join(num((load(os.path.join(res, t, r + ".mon.json")) or {}).get("foreign_on_server_cpu"), 0)
                           for r in reps) for t in tg) + " |")
    w("")
    lost = [(t, fl[t].get("lost")) for t in fl if fl[t].get("lost")]
    if lost:
        w("- The echo lost messages (not echoed within 2 s): " + ", ".join(f"{NAMES[t]} {n}" for t, n in lost))
    near = [t for t in tg if med[t] is not None and fm and med[t] < 2 * fm]
    if near:
        w(f"- Within 2× the floor: {', '.join(NAMES[t] for t in near)}. At this load their p99 "
          "is mostly the machine's wake-up latency; their order is noise, as the spread of the "
          "measurements above shows. The latency curve below compares them where the "
          "differences are real.")
    far = [t for t in tg if med[t] is not None and fm and med[t] >= 2 * fm]
    if far:
        w(f"- Above 2× the floor: {', '.join(NAMES[t] for t in far)}: that latency is the "
          "server's own.")
    w("")
    return fm


def curve_points(res, t):
    pts, i = [], 0
    while True:
        meta = load(os.path.join(res, t, f"curve-{i}.point.json"))
        if not meta:
            break
        d = run(res, t, f"curve-{i}")
        pts.append((meta, d))
        i += 1
    return pts


def curve(res, P, w, pl, img, floor_p99=None):
    tg = [t for t in MAIN if curve_points(res, t)]
    if not tg:
        return
    w("## Latency against offered load\n")
    fr = P.get("curve_fractions", "")
    w(f"Open loop, {num(P.get('n_curve'))} clients (fresh accounts for every point), at "
      f"{', '.join(fr.split())} × each server's own closed-loop rate above; "
      f"{P.get('curve_warmup_s', '?')} s of warm-up, {P.get('curve_s', '?')} s measured, "
      f"{P.get('curve_drain_s', '?')} s of drain. Near saturation the differences between "
      "servers are their own, far above the machine's floor. At and past saturation latency "
      "is the backlog's (queueing grows for as long as the run lasts): those points show "
      "where each server stops keeping up, not a latency it offers.\n")
    w("| server | × its rate | offered (msg/s) | delivered (msg/s) | p50 (ms) | p99 (ms) | lost | server CPU % | xedge-bench CPU % | others on the server CPU % |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    curves = {}
    for t in tg:
        for i, (meta, d) in enumerate(curve_points(res, t)):
            off = bench_get(d, "sent_per_s") if d else None
            dl = bench_get(d, "recv_per_s") if d else None
            mm = (bench_get(d, "msg_ms") or {}) if d else {}
            w(f"| {NAMES[t]} | {meta.get('fraction')} | {num(off)} | {num(dl)} | {num(mm.get('p50'))} | "
              f"{num(mm.get('p99'))} | {num(bench_get(d, 'lost') if d else None, 0)} | "
              f"{num(bench_get(d, 'target_cpu_avg') if d else None, 0)} | {num(bench_get(d, 'bench_cpu_avg') if d else None, 0)} | "
              f"{num((load(os.path.join(res, t, f'curve-{i}.mon.json')) or {}).get('foreign_on_server_cpu'), 0)} |")
            if off and mm.get("p50") and mm.get("p99"):
                curves.setdefault(t, []).append((off, mm["p50"], mm["p99"]))
    w("")
    if pl and curves:
        plots = []
        for t in tg:
            if t not in curves:
                continue
            p = pl.dat(f"curve-{t}", sorted(curves[t]))
            c = pl.COLORS.get(t, "#000000")
            plots.append(f"'{p}' using 1:3 with linespoints lw 2 pt 7 lc rgb '{c}' title '{NAMES[t]} p99'")
            plots.append(f"'{p}' using 1:2 with linespoints lw 1 dt 2 pt 6 lc rgb '{c}' title '{NAMES[t]} p50'")
        if floor_p99:
            plots.append(f"{floor_p99} with lines lw 1 dt 3 lc rgb '#555555' title 'TCP echo floor p99 (equal-load rate)'")
        script = ("set title 'Message latency against offered load (open loop; log scales)'\n"
                  "set xlabel 'offered messages/s'\nset ylabel 'milliseconds'\n"
                  "set logscale xy\nset key top left\n"
                  "plot " + ", \\\n     ".join(plots) + "\n")
        img(pl.run("curve", script), "latency against offered load")
