#!/usr/bin/python3
"""Write docs/benchmarks.md (from scratch) and its plots from a bench/compare results tree.

  report.py --results DIR --doc FILE --plots DIR [--repo REPO]

DIR is what bench/compare/run.sh leaves in $BENCH_DIR/results:
  machine.json params.json rate.json duration.json commands.txt
  <target>/{start,start-2,provision,provision-tsung,probe}.json
  <target>/<run>.json (xedge-bench --json), <run>.mon.json (harness.py monitor), <run>.cmd,
           <run>.error, <run>.skipped, error.txt          runs: idle login chat rate headroom xcheck
  <target>/tsung/{tsung,tsung.mon}.json (bench/tsung/summary.py; Prosody's were at tsung/
           before the cross-check also ran against xedge, and are still read there)
Every value is read with a fallback (harness.bench_get); what is missing is said so in the
document, never invented. Every hand-written "## " section of the existing FILE (one GENERATED
does not name) is kept, in its order: those above "## Trusting the numbers" there go back
above it, the others ("## First figures" ...) at the end. The raw JSON is copied to PLOTS/raw/.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import bench_get, load, metrics_line, steady  # noqa: E402
import report_more as more  # noqa: E402

TARGETS = ["xedge", "prosody", "ejabberd"]
NAMES = {"xedge": "xedge", "prosody": "Prosody", "ejabberd": "ejabberd"}
RUNS = ["idle", "login", "chat", "rate", "rate-2", "rate-3", "headroom", "xcheck"]


# ---- formatting ---------------------------------------------------------------------------
def num(v, nd=None):
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    if nd is None:
        a = abs(v)
        nd = 0 if a >= 100 else 1 if a >= 10 else 2 if a >= 0.1 else 3
    if nd == 0:
        return f"{v:,.0f}"
    return f"{v:,.{nd}f}"


def ratio(a, b):
    if a is None or b in (None, 0):
        return None
    try:
        return float(a) / float(b)
    except (TypeError, ValueError):
        return None


def rfmt(r):
    if r is None:
        return "—"
    if r < 0.01:
        return f"{r:.4f}×"
    return f"{r:.2f}×" if r < 10 else f"{r:.1f}×"


def verdict(ok):
    return "—" if ok is None else ("**met**" if ok else "**not met**")


class Results:
    def __init__(self, d):
        self.dir = d
        self.machine = load(os.path.join(d, "machine.json")) or {}
        self.params = load(os.path.join(d, "params.json")) or {}
        self.rate = load(os.path.join(d, "rate.json")) or {}
        self.duration = load(os.path.join(d, "duration.json")) or {}
        # tsung's results per cross-checked target (older runs: Prosody's at tsung/).
        self.tsung, self.tsung_mon = {}, {}
        for t in TARGETS:
            for td in [os.path.join(d, t, "tsung")] + ([os.path.join(d, "tsung")] if t == "prosody" else []):
                if t not in self.tsung or not self.tsung[t]:
                    self.tsung[t] = load(os.path.join(td, "tsung.json"))
                    self.tsung_mon[t] = load(os.path.join(td, "tsung.mon.json"))
        try:
            with open(os.path.join(d, "commands.txt")) as f:
                self.commands = f.read().strip().splitlines()
        except OSError:
            self.commands = []
        self.targets = [t for t in TARGETS if os.path.isdir(os.path.join(d, t))]
        self.runs, self.mon, self.cmd, self.err, self.retry = {}, {}, {}, {}, {}
        self.info = {}
        for t in self.targets:
            td = os.path.join(d, t)
            self.info[t] = {k: load(os.path.join(td, k + ".json")) for k in
                            ("start", "start-2", "provision", "provision-tsung", "probe")}
            try:
                with open(os.path.join(td, "error.txt")) as f:
                    self.info[t]["error"] = f.read().strip()
            except OSError:
                self.info[t]["error"] = None
            for r in RUNS:
                self.runs[(t, r)] = load(os.path.join(td, r + ".json"))
                self.mon[(t, r)] = load(os.path.join(td, r + ".mon.json"))
                self.cmd[(t, r)] = self._read(os.path.join(td, r + ".cmd"))
                self.retry[(t, r)] = load(os.path.join(td, r + "-attempts.json"))
                self.err[(t, r)] = (self._read(os.path.join(td, r + ".error")) or
                                    self._read(os.path.join(td, r + ".skipped")))

    @staticmethod
    def _read(p):
        try:
            with open(p) as f:
                return f.read().strip()
        except OSError:
            return None

    def get(self, t, r, name):
        d = self.runs.get((t, r))
        return bench_get(d, name) if d else None

    def pct(self, t, r, hist, p):
        h = self.get(t, r, hist)
        return h.get(p) if isinstance(h, dict) else None


# ---- tables ---------------------------------------------------------------------------------
def side_by_side(res, run, rows, targets):
    """rows: [(label, fn(t) -> value, nd, better)] better: 'high' | 'low' | None (no ratio)."""
    have = [t for t in targets if res.runs.get((t, run))]
    if not have:
        return "_No results for this scenario (see the notes at the end)._\n"
    ratio_cols = [o for o in ("prosody", "ejabberd") if "xedge" in have and o in have]
    head = "| | " + " | ".join(NAMES[t] for t in have)
    head += "".join(f" | xedge/{NAMES[o]}" for o in ratio_cols) + " |"
    sep = "|---|" + "---:|" * (len(have) + len(ratio_cols))
    out = [head, sep]
    for label, fn, nd, better in rows:
        vals = {t: fn(t) for t in have}
        line = f"| {label} | " + " | ".join(num(vals[t], nd) for t in have)
        for o in ratio_cols:
            line += " | " + (rfmt(ratio(vals.get("xedge"), vals.get(o))) if better else "")
        out.append(line + " |")
    return "\n".join(out) + "\n"


def failures_text(res, t, run):
    d = res.runs.get((t, run)) or {}
    f = d.get("failures")
    if isinstance(f, dict) and f:
        return ", ".join(f"{k}: {v}" for k, v in sorted(f.items(), key=lambda kv: -kv[1])[:4])
    lf = (d.get("logins") or {}).get("failed")
    if isinstance(lf, dict) and lf:
        return ", ".join(f"{k}: {v}" for k, v in lf.items())
    return None


# ---- plots ----------------------------------------------------------------------------------
def series(res, t, run):
    d = res.runs.get((t, run))
    s = bench_get(d, "series") if d else None
    return s if isinstance(s, list) else []


def sval(p, *keys):
    for k in keys:
        if isinstance(p, dict) and p.get(k) is not None:
            return p[k]
    return None


class Plotter:
    COLORS = {"xedge": "#1b7837", "prosody": "#2166ac", "ejabberd": "#b2182b",
              "tsung": "#762a83", "xedge-bench": "#1b7837"}

    def __init__(self, outdir, workdir):
        self.outdir, self.work = outdir, workdir
        os.makedirs(outdir, exist_ok=True)
        os.makedirs(workdir, exist_ok=True)
        self.made, self.notes = [], []
        self.gnuplot = shutil.which("gnuplot")

    def dat(self, name, rows):
        p = os.path.join(self.work, name + ".dat")
        with open(p, "w") as f:
            for r in rows:
                f.write(" ".join("nan" if v is None else str(v) for v in r) + "\n")
        return p

    def run(self, name, script):
        png = os.path.join(self.outdir, name + ".png")
        gp = os.path.join(self.work, name + ".gp")
        with open(gp, "w") as f:
            f.write("set terminal pngcairo size 900,450 noenhanced font ',10'\n")
            f.write(f"set output '{png}'\nset grid\nset key top right\n")
            f.write(script)
        if not self.gnuplot:
            self.notes.append(f"{name}.png: gnuplot is not installed (apt-get install gnuplot-nox)")
            return None
        r = subprocess.run([self.gnuplot, gp], capture_output=True, text=True, timeout=60)
        if r.returncode != 0 or not os.path.exists(png):
            self.notes.append(f"{name}.png: gnuplot failed: {r.stderr.strip()[:200]}")
            return None
        self.made.append(png)
        return name + ".png"

    def lines(self, name, title, xlabel, ylabel, curves, logy=False, key="top left"):
        """curves: [(label, color, [(x, y), ...])]"""
        curves = [c for c in curves if c[2]]
        if not curves:
            self.notes.append(f"{name}.png: no time series in the results")
            return None
        plots = []
        for i, (label, color, pts) in enumerate(curves):
            p = self.dat(f"{name}-{i}", pts)
            plots.append(f"'{p}' using 1:2 with lines lw 2 lc rgb '{color}' title '{label}'")
        script = (f"set title '{title}'\nset xlabel '{xlabel}'\nset ylabel '{ylabel}'\nset key {key}\n"
                  + ("set logscale y\n" if logy else "set yrange [0:*]\n")
                  + "plot " + ", \\\n     ".join(plots) + "\n")
        return self.run(name, script)

    def bars(self, name, title, ylabel, groups, members, values, logy=False):
        """groups: x categories; members: [(label, color)]; values[g][m] -> number or None."""
        members = [m for m in members if any(values[g].get(m[0]) is not None for g in groups)]
        rows = [[g] + [values[g].get(m[0]) for m in members] for g in groups]
        if not members:
            self.notes.append(f"{name}.png: no values")
            return None
        p = self.dat(name, [[f'"{r[0]}"'] + r[1:] for r in rows])
        cols = ", \\\n     ".join(
            f"'{p}' using {i + 2}:xtic(1) title '{m[0]}' lc rgb '{m[1]}'" for i, m in enumerate(members))
        script = (f"set title '{title}'\nset ylabel '{ylabel}'\nset style data histograms\n"
                  "set style histogram cluster gap 1\nset style fill solid 0.8 border -1\n"
                  "set boxwidth 0.9\nset key top left\n"
                  + ("set logscale y\n" if logy else "set yrange [0:*]\n")
                  + f"plot {cols}\n")
        return self.run(name, script)


def wall_rates(d):
    """(offered, absorbed, seconds, bench_cpu, server_cpu, peak_offered) from an open-loop
    run's per-second series: means of messages sent and delivered per wall-clock second, and of
    both CPUs, over the seconds in which the load generator was sending (the first and the last
    of them, partial, left out). Falls back to the summary's figures when there is no series."""
    pts = [p for p in (bench_get(d, "series") or []) if isinstance(p, dict)]
    sending = [p for p in pts if (sval(p, "sent_s") or 0) > 0][1:-1]
    if sending:
        n = len(sending)

        def mean(k):
            return sum(sval(p, k) or 0 for p in sending) / n
        return (mean("sent_s"), mean("recv_s"), n, mean("bench_cpu"), mean("target_cpu"),
                max(sval(p, "sent_s") for p in sending))
    return (bench_get(d, "sent_per_s"), bench_get(d, "recv_per_s"), None,
            bench_get(d, "bench_cpu_avg"), bench_get(d, "target_cpu_avg"), None)


def disturbed(m, P, run=None):
    """Why a run was disturbed by other processes, or None: one of ours (server, load
    generator) was runnable but not running at least 10 % of the run while other processes
    took at least 10 % of its CPU. Others using a CPU that ours left idle do not count. (The
    server's wait includes its own threads waiting for each other on their one CPU.)"""
    if not m:
        return None
    out = []
    for key, wkey, what in (("foreign_on_server_cpu", "server_waiting_max_thread_pct", "the server"),
                            ("foreign_on_load_cpu", "bench_waiting_pct", "the load generator")):
        f, wt = m.get(key), m.get(wkey)
        if wt is None and wkey.startswith("server"):
            wt = m.get("server_waiting_pct")
        if f is not None and wt is not None and f >= 10 and wt >= 10:
            out.append(f"{what} was runnable but waiting {wt:.0f} % of the time while other "
                       f"processes took {f:.0f} % of its CPU")
    f = m.get("foreign_on_server_cpu")
    if run and run.startswith("rate") and not out and f is not None and f >= 10:
        # A latency run: the server is mostly idle, but every time another process holds its
        # CPU when a message arrives, that wait is in the latency.
        out.append(f"other processes took {f:.0f} % of the server's CPU: its tail latency "
                   "includes waiting for them")
    return "; ".join(out) or None


# ---- the document ---------------------------------------------------------------------------
# The "## " sections this script (and report_more.py) writes, by the start of their heading:
# every other "## " section of the existing page is hand-written and kept.
GENERATED = ("Summary: the targets of issue 3", "The machine and the software",
             "How each server runs", "Provisioning", "Idle hold:", "Login storm:",
             "Chat, closed loop:", "Chat at equal offered load:",
             "Latency against this machine's floor", "Latency against offered load",
             "No regression of the native path:", "Prosody behind xedge (upstream mode)",
             "Trusting the numbers", "Notes from this run", "Reproducing")


def generated(heading):
    return any(heading == g or (g.endswith(":") and heading.startswith(g)) for g in GENERATED)


def kept_sections(doc_path):
    """The existing page's hand-written '## ' sections (those GENERATED does not name), each
    with everything up to the next '## ' heading, in their order: (before, after). 'before'
    are those above '## Trusting the numbers' (the page puts them back there), 'after' those
    below it ('## First figures' and what follows, at the end as always)."""
    try:
        with open(doc_path) as f:
            text = f.read()
    except OSError:
        return [], []
    before, after = [], []
    seen_trust = False
    # a "## " line inside a fenced block is not a heading
    fenced, starts = False, []
    pos = 0
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("## "):
            starts.append(pos)
        pos += len(line)
    for i, st in enumerate(starts):
        body = text[st:starts[i + 1] if i + 1 < len(starts) else len(text)]
        heading = body.split("\n", 1)[0][3:].strip()
        if heading == "Trusting the numbers":
            seen_trust = True
        if generated(heading):
            continue
        (after if seen_trust else before).append(body.rstrip() + "\n")
    return before, after


def write(res, doc_path, plots_dir, repo):
    P = res.params
    M = res.machine
    tg = [t for t in TARGETS if t in res.targets]
    quick = bool(P.get("quick"))
    work = os.path.join(res.dir, "plots-work")
    pl = Plotter(plots_dir, work)
    rel_plots = os.path.relpath(plots_dir, os.path.dirname(os.path.abspath(doc_path)))
    o = []
    w = o.append

    def img(name, alt):
        if name:
            w(f"\n![{alt}]({rel_plots}/{name})\n")

    # ---- header
    w("# Benchmarks\n")
    mins = res.duration.get("seconds")
    w(f"Generated by `{P.get('command') or 'make bench-compare' + (' QUICK=1' if quick else '')}` (`bench/compare/run.sh`) "
      f"on {M.get('date', '?')}; the run took {num(mins / 60 if mins else None, 1)} minutes. "
      "Every figure below was measured in that run, on this machine; nothing is assumed. "
      "Absolute numbers on a shared 2-vCPU VM are noisy: the ratios between servers measured "
      "in the same run are what count. The raw results (xedge-bench JSON, CPU monitor, tsung "
      f"summary) are in [`{rel_plots}/raw/`]({rel_plots}/raw/). Every load run is a scenario "
      "file of `bench/scenarios/` (`idle.yaml`, `login.yaml`, `chat.yaml`, `tsung-chat.yaml`) "
      "given its sizes with `--var` (the commands are under each section).\n")
    if quick:
        w("> **Smoke run (QUICK=1)**: small N and short durations, to check the harness; "
          "these figures are not the comparison. Run `make bench-compare` for it.\n")
    if not P.get("have_bench"):
        w("> **No load runs**: `build/xedge-bench` was missing (ALLOW_NO_BENCH=1): only the "
          "start-up, provisioning and the tsung run were done.\n")

    # ---- summary of the targets
    x_chat = {t: res.get(t, "chat", "recv_per_s") for t in tg}
    # p99 at equal load: the median of the repeats (one run's p99 near the floor is noise)
    p99 = {t: more.median([res.pct(t, "rate", "msg_ms", "p99")] +
                          [more.pct(res.dir, t, r, "p99") for r in more.repeats(P)[1:]]) for t in tg}
    mem = {t: res.get(t, "idle", "kib_per_session") for t in tg}
    lrate = {t: res.get(t, "login", "logins_per_s") for t in tg}

    def cmp(metric, other, factor, higher=True):
        r = ratio(metric.get("xedge"), metric.get(other))
        if r is None:
            return None, None
        return r, (r >= factor if higher else r < factor)

    w("## Summary: the targets of issue 3\n")
    w("| goal | xedge | Prosody | ejabberd | ratio | met? |\n|---|---:|---:|---:|---|---|")
    goals = []
    r1, ok1 = cmp(x_chat, "prosody", 10)
    r2, ok2 = cmp(x_chat, "ejabberd", 3)
    w(f"| chat throughput ≥ 10× Prosody (closed loop, msg/s delivered) | {num(x_chat.get('xedge'))} | "
      f"{num(x_chat.get('prosody'))} | {num(x_chat.get('ejabberd'))} | xedge/Prosody {rfmt(r1)} | {verdict(ok1)} |")
    w(f"| chat throughput ≥ 3× ejabberd | | | | xedge/ejabberd {rfmt(r2)} | {verdict(ok2)} |")
    r3, ok3 = cmp(p99, "prosody", 1, higher=False)
    r4, ok4 = cmp(p99, "ejabberd", 1, higher=False)
    both = None if ok3 is None or ok4 is None else (ok3 and ok4)
    w(f"| p99 message latency at equal offered load below both (ms; median of {len(more.repeats(P))} runs) | {num(p99.get('xedge'))} | "
      f"{num(p99.get('prosody'))} | {num(p99.get('ejabberd'))} | xedge/Prosody {rfmt(r3)}, "
      f"xedge/ejabberd {rfmt(r4)} | {verdict(both)} |")
    r5, ok5 = cmp(mem, "prosody", 1, higher=False)
    r6, ok6 = cmp(mem, "ejabberd", 1, higher=False)
    both2 = None if ok5 is None or ok6 is None else (ok5 and ok6)
    w(f"| memory per idle TLS session below both (KiB) | {num(mem.get('xedge'))} | "
      f"{num(mem.get('prosody'))} | {num(mem.get('ejabberd'))} | xedge/Prosody {rfmt(r5)}, "
      f"xedge/ejabberd {rfmt(r6)} | {verdict(both2)} |")
    r7, ok7 = cmp(lrate, "prosody", 3)
    w(f"| login rate ≥ 3× Prosody (TLS + SCRAM-SHA-1 + bind, logins/s) | {num(lrate.get('xedge'))} | "
      f"{num(lrate.get('prosody'))} | {num(lrate.get('ejabberd'))} | xedge/Prosody {rfmt(r7)} | {verdict(ok7)} |")
    goals = [ok1, ok2, both, both2, ok7]
    met = sum(1 for g in goals if g)
    unknown = sum(1 for g in goals if g is None)
    w(f"\n{met} of {len(goals)} targets met" + (f" ({unknown} not measured)" if unknown else "") + ". "
      "Ratios are xedge divided by the other server: above 1 is better for rates, below 1 is "
      "better for latency and memory.\n")
    fast = res.rate.get("fastest")
    hd = res.runs.get((fast, "headroom")) if fast else None
    if hd:
        off, ab, _, _, _, _ = wall_rates(hd)
        fr = res.rate.get("fastest_rate")
        if off and ab and ab >= 0.95 * off:
            w(f"{NAMES.get(fast, fast)}'s chat throughput above is a lower bound: open loop, it "
              f"delivered all of the {num(ab)} messages/s one load-generator core offered "
              "(see *The load generator is not the bottleneck*).\n")
        elif ab and fr and ab > 1.1 * fr:
            w(f"Open loop and saturated, {NAMES.get(fast, fast)} delivered {num(ab)} messages/s, "
              f"{rfmt(ratio(ab, fr))} its closed-loop figure above (see *The load generator is not "
              "the bottleneck*); the table uses the closed-loop figures, measured the same way "
              "for every server.\n")

    # ---- machine
    w("## The machine and the software\n")
    pk = M.get("packages") or {}
    la = M.get("loadavg_at_start") or []
    w("| | |\n|---|---|")
    w(f"| CPUs | {M.get('nproc', '?')} × {M.get('cpu_model', '?')}"
      f"{' (' + M['hypervisor'] + ' guest)' if M.get('hypervisor') else ''} |")
    w(f"| memory | {M.get('mem_gib', '?')} GiB |")
    w(f"| kernel | Linux {M.get('kernel', '?')} ({M.get('os', '?')}) |")
    w(f"| load average when the run started | {' '.join(la) if la else '?'} |")
    w(f"| xedge | commit {M.get('xedge_commit', '?')}, release build (`make all`, -O2) |")
    if P.get("base_commit"):
        w(f"| xedge before | commit {P['base_commit'][:7]} (`BASE_REF={P.get('base_ref')}`), the same build |")
    for k, label in [("prosody", "Prosody"), ("lua5.4", "Lua"), ("lua-sec", "LuaSec"),
                     ("ejabberd", "ejabberd"), ("erlang-base", "Erlang/OTP"), ("wolfssl", "wolfSSL"),
                     ("openssl", "OpenSSL"), ("liburing", "liburing"), ("tsung", "tsung"),
                     ("gnuplot-nox", "gnuplot")]:
        if pk.get(k):
            w(f"| {label} | {pk[k]} (Debian) |")
    w("")

    # ---- how the servers run
    w("## How each server runs\n")
    sc, lc = P.get("server_cpu", "0"), P.get("load_cpu", "1")
    w(f"One server at a time, started from its Debian package with a config generated by the "
      f"harness, listening on 127.0.0.1 only, its state in `{P.get('bench_dir', '?')}` (wiped at "
      f"the start of each run); every process and thread of the server is pinned to CPU {sc} "
      f"(`taskset`; for ejabberd the whole Erlang VM, re-applied to every thread once it is up) "
      f"and the load generator to CPU {lc}, so the server has exactly one core. The affinity "
      "below is read back from `/proc` after start-up."
      + (f" The whole run has a session (scheduler autogroup) of its own at nice {P['nice']}, and "
         "its servers and load generators run at that nice value: on this shared machine other "
         "sessions' work otherwise took up to half of the server's pinned CPU (with autogroups, "
         "nice only orders processes within one session). What other processes still took of "
         "each CPU is reported with every run."
         if P.get("nice") else "") + "\n")
    w("| | " + " | ".join(NAMES[t] for t in tg) + " |")
    w("|---|" + "---|" * len(tg))
    cfgs = {"xedge": "`bench/compare/xedge/xedge.yaml.in`", "prosody": "`bench/prosody/prosody.cfg.lua`",
            "ejabberd": "`bench/ejabberd/ejabberd.yml.in`"}
    model = {"xedge": "1 edge worker thread + the embedded session server's thread (`workers: 1`)",
             "prosody": "one Lua thread (epoll backend)",
             "ejabberd": "Erlang VM, 1 scheduler + 1 dirty CPU scheduler (`+S 1:1 +SDcpu 1:1`)"}
    w("| config | " + " | ".join(cfgs[t] for t in tg) + " |")
    w("| process | " + " | ".join(model[t] for t in tg) + " |")
    w("| pinned to CPU (read back) | " + " | ".join(
        (res.info[t].get("start") or {}).get("affinity", "—") for t in tg) + " |")
    w("| nice / open files limit | " + " | ".join(
        f"{(res.info[t].get('start') or {}).get('nice', '—')} / "
        f"{num((res.info[t].get('start') or {}).get('max_open_files'), 0)}" for t in tg) + " |")
    w("| SASL mechanisms offered | " + " | ".join(
        ", ".join((res.info[t].get("probe") or {}).get("mechanisms", [])) or "—" for t in tg) + " |")
    w("| TLS negotiated (probe) | " + " | ".join(
        f"{(res.info[t].get('probe') or {}).get('tls_version', '—')} "
        f"{(res.info[t].get('probe') or {}).get('cipher', '')}" for t in tg) + " |")
    w("| ready after start | " + " | ".join(
        f"{num((res.info[t].get('start') or {}).get('seconds'), 1)} s" for t in tg) + " |")
    w("")
    w("What is the same everywhere:\n")
    w("- **TLS**: one self-signed ECDSA P-256 certificate (`bench/compare/cert.sh`) for all three, "
      "STARTTLS required. The TLS 1.3 cipher suite is whatever client and server agree on (row "
      "above: the probe is Python's OpenSSL client; xedge-bench uses wolfSSL).")
    w("- **SASL: SCRAM-SHA-1 for every target**, so that the work is equal: Prosody 0.12 offers "
      "SCRAM-SHA-1 and PLAIN only (no SCRAM-SHA-256). ejabberd also offers SCRAM-SHA-1-PLUS; "
      "xedge-bench does no channel binding and asks for plain SCRAM-SHA-1 (gs2 header `n,,`). "
      "The stored keys are salted per account with PBKDF2 4096 on all three (Prosody's default "
      "of 10,000 is set to 4096). Only the tsung cross-check uses PLAIN (tsung has no SCRAM).")
    if P.get("have_bench"):
        w("- **The client's PBKDF2** is cached by xedge-bench per salt (`--scram-cache`, RFC 5802 "
          "§5.1): the idle run, which comes first, computes it once per account, so the login "
          "storm measures the servers, not the load generator's PBKDF2. The servers' work "
          "(checking the proof against stored keys) is the same either way.")
    w("- **No limits**: Prosody without `mod_limits`, ejabberd with `shaper: none`, xedge with its "
      "per-IP and per-session rate limits lifted (all clients come from 127.0.0.x). Listen "
      "backlog 4096 everywhere; TCP_NODELAY everywhere (Prosody: `network_settings = { nagle = "
      "false }`; with Nagle, its STARTTLS and features cost ~40 ms per round trip here).")
    w("- **Features**: accounts, roster, presence, one-to-one routing, offline storage. No stream "
      "management, carbons, PEP, MAM or s2s on any of them.")
    w(f"- **Load generator**: `{P.get('bench_bin', 'build/xedge-bench')}`, one thread (one io_uring "
      f"ring), pinned to CPU {lc}, sockets bound round-robin to {P.get('sources', '?')} (enough "
      "source ports); `--pid` samples the server's CPU and RSS every second.\n")

    # ---- provisioning
    w("## Provisioning\n")
    w(f"{num(P.get('n_provisioned'))} accounts `bench0`… (password `pw`) per server, created fresh "
      "in every run with each server's fastest supported bulk path, found by measuring:\n")
    w("| | accounts | method | seconds | accounts/s |\n|---|---:|---|---:|---:|")
    for t in tg:
        pv = res.info[t].get("provision") or {}
        w(f"| {NAMES[t]} | {num(pv.get('users'))} | {pv.get('method', '—')} | "
          f"{num(pv.get('seconds'), 1)} | {num(pv.get('per_sec'))} |")
    w("\nThe slower paths, measured while the harness was written (same machine, one server "
      "pinned to one CPU): `prosodyctl register` ~31 ms per account (~32/s); XEP-0077 in-band "
      "registration on Prosody ~30/s with one account per connection, ~400/s with several per "
      "connection; `ejabberdctl register` ~1.5 s per account (it boots an Erlang VM each time: "
      "10,000 accounts would take 4 hours); ejabberd's HTTP admin API (`/api/register`) ~90/s; "
      "in-band registration on ejabberd ~20–75/s. ejabberd's `import_prosody` would need `luerl`, "
      "which Debian's build lacks. ejabberd 23.01 stores the SCRAM fields base64-encoded but its "
      "XEP-0227 importer decodes them once, so `bench/ejabberd/piefxis.py` encodes them twice; "
      "`register.sh` checks the result by logging in (SCRAM-SHA-1 and PLAIN) and falls back to "
      "the HTTP API if the import did not work.\n")

    # ---- scenarios
    n_idle, n_login, n_chat = P.get("n_idle"), P.get("n_login"), P.get("n_chat")

    def cpu_rows(run):
        return [("server CPU, avg (% of its one core)", lambda t: res.get(t, run, "target_cpu_avg"), 0, None),
                ("xedge-bench CPU, avg (% of its core)", lambda t: res.get(t, run, "bench_cpu_avg"), 0, None),
                ("other processes on the server's CPU (%)",
                 lambda t: (res.mon.get((t, run)) or {}).get("foreign_on_server_cpu"), 0, None)]

    def commands(run):
        cmds = [f"# {NAMES[t]}\n{res.cmd[(t, run)]}" for t in tg if res.cmd.get((t, run))]
        if cmds:
            w("<details><summary>commands</summary>\n\n```sh\n" + "\n".join(cmds) + "\n```\n</details>\n")

    def run_notes(run):
        for t in tg:
            if res.err.get((t, run)):
                w(f"- {NAMES[t]}: {res.err[(t, run)]}")
            mv = load(os.path.join(res.dir, t, run + ".metrics.json"))
            if mv:
                w(f"- {NAMES[t]}: {metrics_line(mv)} (the deltas of its /metrics over the "
                  "run against xedge-bench's logged_in, sent_total and received_total)")
            ft = failures_text(res, t, run)
            if ft:
                w(f"- {NAMES[t]} failures by cause: {ft}")
            bc = res.get(t, run, "bench_cpu_avg")
            if bc is not None and bc >= 80:
                w(f"- {NAMES[t]}: xedge-bench used {num(bc, 0)} % of its core: the load generator was "
                  "near its own limit, so this figure may be set by it (a lower bound for the server).")
            why = disturbed(res.mon.get((t, run)), P, run)
            if why:
                w(f"- {NAMES[t]}: disturbed: {why}.")
            att = res.retry.get((t, run))
            if att:
                w(f"- {NAMES[t]}: this run was repeated because other processes took "
                  f"{num(att.get('first'), 0)} % of the server's CPU the first time "
                  f"({num(att.get('second'), 0)} % the second); the {att.get('kept', '?')} attempt, "
                  "the less disturbed, is shown (the other is in the raw results as "
                  f"`{t}-{run}-other.json`).")
        w("")

    w(f"## Idle hold: {num(n_idle)} TLS sessions\n")
    w(f"{num(n_idle)} clients log in (STARTTLS, SCRAM-SHA-1, bind, initial presence, roster), "
      f"{P.get('concurrency', '?')} at a time, then stay idle; after {P.get('settle_s', '?')} s the "
      "server's resident memory (VmRSS) is compared with its value before the first connection.\n")
    w(side_by_side(res, "idle", [
        ("sessions held", lambda t: res.get(t, "idle", "sessions") or res.get(t, "idle", "logged_in"), 0, None),
        ("login failures", lambda t: res.get(t, "idle", "failed"), 0, None),
        ("server RSS before (MiB)", lambda t: (res.get(t, "idle", "rss_before_kib") or 0) / 1024 or None, 1, None),
        ("server RSS with the sessions (MiB)", lambda t: (res.get(t, "idle", "rss_after_kib") or 0) / 1024 or None, 1, None),
        ("**memory per idle TLS session (KiB)**", lambda t: res.get(t, "idle", "kib_per_session"), 1, "low"),
    ] + cpu_rows("idle"), tg))
    run_notes("idle")
    img(pl.lines("idle", f"Idle hold: server RSS while {n_idle} TLS sessions log in",
                 "sessions logged in", "server RSS (MiB)",
                 [(NAMES[t], pl.COLORS[t], [(sval(p, "logged_in", "online"), sval(p, "target_rss_kib") / 1024)
                                            for p in series(res, t, "idle")
                                            if sval(p, "target_rss_kib") and sval(p, "logged_in", "online") is not None])
                  for t in tg]), "idle memory")
    commands("idle")

    def lat(run, hist, p):
        return lambda t: res.pct(t, run, hist, p)

    w(f"## Login storm: {num(n_login)} TLS clients\n")
    w(f"{num(n_login)} clients connect and log in as fast as the server lets them, "
      f"{P.get('concurrency', '?')} logins in progress at a time: TCP, STARTTLS, TLS 1.3 handshake, "
      "SCRAM-SHA-1, resource binding, initial presence, roster. The rate is logins completed per "
      "second over the login phase; latency is per client, from connect to roster.\n")
    w(side_by_side(res, "login", [
        ("logged in", lambda t: res.get(t, "login", "logged_in"), 0, None),
        ("failed", lambda t: res.get(t, "login", "failed"), 0, None),
        ("**logins per second**", lambda t: res.get(t, "login", "logins_per_s"), 0, "high"),
        ("login latency p50 (ms)", lat("login", "login_ms", "p50"), None, "low"),
        ("login latency p90 (ms)", lat("login", "login_ms", "p90"), None, "low"),
        ("login latency p99 (ms)", lat("login", "login_ms", "p99"), None, "low"),
        ("login latency p99.9 (ms)", lat("login", "login_ms", "p999"), None, "low"),
        ("login latency max (ms)", lat("login", "login_ms", "max"), None, "low"),
        ("TLS handshake p50 / p99 (ms)", lambda t: f"{num(res.pct(t, 'login', 'tls_ms', 'p50'))} / "
                                                     f"{num(res.pct(t, 'login', 'tls_ms', 'p99'))}", None, None),
        ("SASL to bound p50 / p99 (ms)", lambda t: f"{num(res.pct(t, 'login', 'auth_ms', 'p50'))} / "
                                                    f"{num(res.pct(t, 'login', 'auth_ms', 'p99'))}", None, None),
    ] + cpu_rows("login"), tg))
    run_notes("login")
    img(pl.lines("login", f"Login storm: {n_login} TLS clients, logins completed per second",
                 "seconds", "logins per second",
                 [(NAMES[t], pl.COLORS[t], [(sval(p, "t"), sval(p, "logins_s", "logins"))
                                            for p in series(res, t, "login") if sval(p, "t") is not None])
                  for t in tg]), "login rate over time")
    commands("login")

    w(f"## Chat, closed loop: {num(n_chat)} TLS clients\n")
    w(f"{num(n_chat)} clients log in, then each keeps {P.get('chat_window', '?')} messages in flight "
      "(a new one as soon as one of its messages arrives) to random online peers; "
      f"{P.get('warmup_s', '?')} s of warm-up, then {P.get('chat_s', '?')} s measured. The rate is "
      "messages delivered per second: the most each server delivers with one core. Latency "
      "here includes queueing behind the window (Little's law); the equal-load run below compares "
      "latency fairly.\n")

    def chat_rows(run, offered=False):
        rows = []
        if offered:
            rows.append(("offered (sent/s)", lambda t: res.get(t, run, "sent_per_s"), 0, None))
        rows += [
            ("**messages delivered per second**", lambda t: res.get(t, run, "recv_per_s"), 0, "high" if not offered else None),
            ("messages sent per second", lambda t: res.get(t, run, "sent_per_s"), 0, None) if not offered else None,
            ("latency p50 (ms)", lat(run, "msg_ms", "p50"), None, "low"),
            ("latency p90 (ms)", lat(run, "msg_ms", "p90"), None, "low"),
            ("**latency p99 (ms)**", lat(run, "msg_ms", "p99"), None, "low"),
            ("latency p99.9 (ms)", lat(run, "msg_ms", "p999"), None, "low"),
            ("latency max (ms)", lat(run, "msg_ms", "max"), None, "low"),
            ("lost (not arrived within the drain) / duplicated / reordered", lambda t: f"{num(res.get(t, run, 'lost'), 0)} / "
                                                         f"{num(res.get(t, run, 'duplicated'), 0)} / "
                                                         f"{num(res.get(t, run, 'reordered'), 0)}", None, None),
            ("login failures", lambda t: res.get(t, run, "failed"), 0, None),
        ]
        return [r for r in rows if r] + cpu_rows(run)

    w(side_by_side(res, "chat", chat_rows("chat"), tg))
    run_notes("chat")
    img(pl.lines("chat", f"Chat, closed loop, {n_chat} clients: messages delivered per second",
                 "seconds", "messages per second (log scale)",
                 [(NAMES[t], pl.COLORS[t], [(sval(p, "t"), sval(p, "recv_s"))
                                            for p in series(res, t, "chat")
                                            if sval(p, "t") is not None and (sval(p, "recv_s") or 0) > 0])
                  for t in tg], logy=True, key="bottom right"), "chat throughput over time")
    commands("chat")

    rt = res.rate
    w(f"## Chat at equal offered load: {num(rt.get('rate_total'))} messages/s\n")
    w(f"The same {num(n_chat)} clients (other accounts), open loop: each sends "
      f"{num(rt.get('rate_per_client'), 3)} messages/s whatever happens, i.e. "
      f"{num(rt.get('rate_total'))} messages/s in total, {P.get('rate_fraction', '?')} × the slowest "
      "server's closed-loop rate above, so that every server can carry it. This is where latency "
      "is compared.\n")
    w(side_by_side(res, "rate", chat_rows("rate", offered=True), tg))
    if len(more.repeats(P)) > 1:
        w(f"This table is the first of {len(more.repeats(P))} runs of this load per server; each "
          "run's p99, their median and the machine's floor measured in the same run are in "
          "*Latency against this machine's floor* below.\n")
    run_notes("rate")
    vals = {}
    for q, lab in (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p999", "p99.9"), ("max", "max")):
        vals[lab] = {NAMES[t]: res.pct(t, "rate", "msg_ms", q) for t in tg}
    img(pl.bars("latency", f"Message latency at {num(rt.get('rate_total'))} msg/s offered "
                "(ms, log scale)", "milliseconds", list(vals), [(NAMES[t], pl.COLORS[t]) for t in tg],
                vals, logy=True), "latency percentiles at equal load")
    commands("rate")

    # ---- the floor and the latency curve; before/after; Prosody behind xedge
    fm = more.floor_median(res.dir, P, w)
    more.curve(res.dir, P, w, pl, img, fm)
    more.before_after(res.dir, P, w)
    more.behind_xedge(res.dir, P, w)

    # ---- the hand-written sections of the existing page (issues 10 .. 14, re-measurements)
    kept_before, kept_after = kept_sections(doc_path)
    for k in kept_before:
        w(k)

    # ---- trust
    w("## Trusting the numbers\n")
    w("### Cross-check with tsung\n")
    tu, trt, tsec = P.get("tsung_users"), P.get("tsung_rate"), P.get("tsung_s")
    xt = [t for t in TARGETS if t in (P.get("tsung_targets") or "prosody").split()
          or res.tsung.get(t) or res.runs.get((t, "xcheck"))]
    w(f"tsung 1.7 and xedge-bench run the same scenario against "
      f"{' and '.join(NAMES[t] for t in xt) or 'Prosody'}, one after the other: "
      "`bench/tsung/chat.xml.in` for tsung, `bench/scenarios/tsung-chat.yaml` (the same file "
      f"written for xedge-bench) for xedge-bench. {tu} users arrive at 100/s and log in "
      "(STARTTLS, SASL PLAIN — tsung has no SCRAM — bind, presence, roster), wait until all "
      "are online (tsung's wait_global, xedge-bench's barrier) and a random time (exponential, "
      f"mean 1/{trt} s), then each sends {num((tsec or 0) * (trt or 0), 0)} chat "
      f"messages of 64 bytes, one every 1/{trt} s, each to a random online user "
      f"({num((tu or 0) * (trt or 0))} messages/s offered), waits 3 s and closes its stream. "
      "Both tools are pinned to the load CPU; tsung's Erlang VM runs one scheduler." +
      (" Against xedge, tsung is also an independent client: Erlang/OTP's TLS 1.3 in "
       "middlebox compatibility mode." if "xedge" in xt else "") + "\n")
    w("The two are compared on what they measure alike: **the messages delivered over the whole "
      "run** (every user sends the same number of messages in both, so a lossless server "
      "delivers users x messages to each tool), and **the messages delivered per second over "
      "the steady state**, the same rule on both tools' series (`bench/tsung/summary.py` and "
      "`harness.py steady`): the intervals in which the messages sent are at least 90 % of the "
      "busiest interval's, which leaves out the arrivals, the barrier and the last messages "
      "(tsung's intervals are its 5-s statistics; xedge-bench's 1-s series is summed in "
      "5-s intervals, so both are judged on intervals of the same length). "
      "Criterion: both within **2 %**.\n")
    for t in xt:
        ts, tmon, xc = res.tsung.get(t), res.tsung_mon.get(t), res.runs.get((t, "xcheck"))
        w(f"#### {NAMES[t]}\n")
        if not (ts or xc):
            w("_Not run (see the notes at the end)._\n")
        else:
            xs = steady(xc) if xc else {}
            ts = ts or {}
            t_rate, x_rate = ts.get("delivered_per_sec"), xs.get("delivered_per_sec")
            t_n, x_n = ts.get("delivered"), xs.get("delivered")

            def diff(a, b):
                return abs(b - a) / a * 100 if a and b is not None else None
            d_rate, d_n = diff(t_rate, x_rate), diff(t_n, x_n)
            w("| | tsung | xedge-bench | difference |\n|---|---:|---:|---:|")
            w(f"| users logged in | {num(ts.get('logins'), 0)} | "
              f"{num(bench_get(xc, 'logged_in') if xc else None, 0)} | |")
            w(f"| messages sent, whole run | {num(ts.get('sent'), 0)} | {num(xs.get('sent'), 0)} | "
              f"{num(diff(ts.get('sent'), xs.get('sent')), 2)} % |")
            w(f"| **messages delivered, whole run** | **{num(t_n, 0)}** | **{num(x_n, 0)}** | "
              f"**{num(d_n, 2)} %** |")
            w(f"| messages sent per second (steady state) | {num(ts.get('sent_per_sec'))} | "
              f"{num(xs.get('sent_per_sec'))} | |")
            w(f"| **messages delivered per second (steady state)** | **{num(t_rate)}** | "
              f"**{num(x_rate)}** | **{num(d_rate, 2)} %** |")
            w(f"| steady state (s) | {num(ts.get('steady_seconds'), 0)} | "
              f"{num(xs.get('steady_seconds'), 0)} | |")
            xm = bench_get(xc, "msg_ms") if xc else None
            w(f"| latency mean / max (ms) | {num((ts.get('latency_ms') or {}).get('mean'))} / "
              f"{num((ts.get('latency_ms') or {}).get('max'))} | "
              f"{num((xm or {}).get('mean'))} / {num((xm or {}).get('max'))} | |")
            w(f"| load generator CPU, avg (% of its core) | "
              f"{num((tmon or {}).get('bench_cpu'), 0)} | "
              f"{num(bench_get(xc, 'bench_cpu_avg') if xc else None, 0)} | |")
            ok = None if d_rate is None or d_n is None else (d_rate <= 2 and d_n <= 2)
            w(f"\nAgainst {NAMES[t]}, delivered counts differ by **{num(d_n, 2)} %** and delivered "
              f"rates by **{num(d_rate, 2)} %**: xedge-bench agrees with tsung within 2 %: "
              f"{verdict(ok)}.\n")
            curves = []
            if ts and ts.get("series"):
                curves.append(("tsung", pl.COLORS["tsung"], [(p["t"], p["delivered"] / p["dt"])
                                                             for p in ts["series"] if p.get("dt")]))
            if xc:
                curves.append(("xedge-bench", pl.COLORS["xedge-bench"],
                               [(sval(p, "t"), sval(p, "recv_s")) for p in (bench_get(xc, "series") or [])
                                if sval(p, "t") is not None]))
            img(pl.lines("xcheck" if t == "prosody" else f"xcheck-{t}",
                         f"Cross-check against {NAMES[t]}: messages delivered per second",
                         "seconds since the tool started", "messages per second", curves),
                f"cross-check against {NAMES[t]}")
        if res.err.get((t, "xcheck")):
            w(f"- xedge-bench: {res.err[(t, 'xcheck')]}\n")

    w("### The load generator is not the bottleneck\n")
    fast = rt.get("fastest")
    hd = res.runs.get((fast, "headroom")) if fast else None
    closed = {t: res.get(t, "chat", "recv_per_s") for t in tg}
    if hd:
        off, ab, secs, bcpu, tcpu, peak = wall_rates(hd)
        fr = rt.get("fastest_rate")
        factor = P.get("headroom_factor", 2)
        kept_up = off is not None and ab is not None and ab >= 0.95 * off
        w(f"The fastest server in the closed-loop run was {NAMES.get(fast, fast)} "
          f"({num(fr)} messages/s delivered). Against it, xedge-bench ran open loop asking for "
          f"{factor} × that rate ({num(factor * fr if fr else None)} messages/s, {num(n_chat)} "
          "clients): what it actually writes into the server's sockets is the load it offers, and "
          "what the server delivers per second meanwhile is what it absorbs. Both are averaged "
          f"over the {num(secs, 0)} seconds in which xedge-bench was sending (its per-second "
          "series, the first and last partial seconds left out). What the server cannot keep up "
          "with queues in socket buffers, arrives after the sending stops, and pushes back on the "
          "sender as the buffers fill (TCP flow control): the offered rate falls from its peak as "
          "the backlog grows.\n")
        w("| | messages/s |\n|---|---:|")
        w(f"| asked for ({factor} × the closed-loop rate) | {num(factor * fr if fr else None)} |")
        w(f"| **offered** (written by xedge-bench per second, mean) | **{num(off)}** |")
        w(f"| offered, the busiest second | {num(peak)} |")
        w(f"| **absorbed** (delivered by {NAMES.get(fast, fast)} per second meanwhile) | **{num(ab)}** |")
        w(f"| xedge-bench CPU over those seconds (% of its core) | {num(bcpu, 0)} |")
        w(f"| {NAMES.get(fast, fast)} CPU over those seconds (% of its core) | {num(tcpu, 0)} |")
        w(f"| message latency p99, backlog included (ms) | {num((bench_get(hd, 'msg_ms') or {}).get('p99'))} |")
        lost, fails = bench_get(hd, "lost"), failures_text(res, fast, "headroom")
        if lost or fails:
            w(f"| messages not delivered within the drain / sessions closed | {num(lost, 0)} / "
              f"{fails or '0'} |")
        w("")
        if fails:
            lossy = [f"{NAMES[t]} {r}" for t in tg for r in RUNS if (t, r) != (fast, "headroom")
                     and res.runs.get((t, r)) and ((res.get(t, r, "lost") or 0) > 0
                                                  or (res.get(t, r, "failed") or 0) > 0)]
            w(f"- Overloaded, {NAMES.get(fast, fast)} closed sessions ({fails}); messages queued "
              "for or from them were not delivered. This run measures capacity under overload; "
              + ("no other run on this page lost a message or a login." if not lossy else
                 "other runs with lost messages or failed logins: " + ", ".join(lossy) + "."))
        if kept_up:
            w(f"- {NAMES.get(fast, fast)} kept up with everything offered: its capacity was not "
              "reached, so whether xedge-bench can offer twice what it absorbs is **not shown** "
              f"by this run, and {NAMES.get(fast, fast)}'s figures on this page are lower bounds.")
        else:
            r = ratio(off, ab)
            w(f"- {NAMES.get(fast, fast)} saturated at {num(ab)} messages/s while xedge-bench offered "
              f"{num(off)}: {rfmt(r)} what the fastest server absorbs — at least twice: "
              f"{verdict(None if r is None else r >= 2)}.")
            if bcpu is not None and tcpu is not None:
                w(f"- Meanwhile the server used {num(tcpu, 0)} % of its core and xedge-bench "
                  f"{num(bcpu, 0)} % of its own: "
                  + ("the server, not the load generator, was the limit." if tcpu >= 90 and bcpu < 90
                     else "both were near their limits." if bcpu >= 90 else
                     "neither was at its CPU limit."))
            if ab and fr and ab > 1.1 * fr:
                w(f"- Saturated open loop, {NAMES.get(fast, fast)} delivered {rfmt(ratio(ab, fr))} its "
                  "closed-loop rate (a backlog lets it batch more per read and write): its "
                  "closed-loop figure above is not its ceiling.")
        others = {t: v for t, v in closed.items() if t != fast and v}
        for t, v in others.items():
            r = ratio(off, v)
            w(f"- {NAMES[t]} absorbed at most {num(v)} messages/s (closed loop): xedge-bench offered "
              f"{rfmt(r)} that — at least twice: {verdict(None if r is None else r >= 2)}.")
        w("")
        if res.cmd.get((fast, "headroom")):
            w("<details><summary>command</summary>\n\n```sh\n" + res.cmd[(fast, "headroom")] + "\n```\n</details>\n")
    else:
        w("_The headroom run is missing (see the notes at the end)._\n")
    w("CPU use in every run, a core being 100 %: xedge-bench's own measurement, then the "
      "harness's independent sampling of `/proc` (every 0.5 s) for the load generator, the "
      "server, and what other processes took of the server's CPU and of the load generator's CPU "
      "(that CPU's busy time minus ours):\n")
    w("| server | run | xedge-bench CPU (own) | xedge-bench CPU (/proc) | server CPU (/proc) | "
      "others on the server's CPU | others on the load CPU | server threads waiting to run | "
      "xedge-bench waiting to run |")
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for t in tg:
        for r in RUNS:
            d, m = res.runs.get((t, r)), res.mon.get((t, r))
            if not d and not m:
                continue
            m = m or {}
            w(f"| {NAMES[t]} | {r} | {num(bench_get(d, 'bench_cpu_avg') if d else None, 0)} | "
              f"{num(m.get('bench_cpu'), 0)} | {num(m.get('target_cpu'), 0)} | "
              f"{num(m.get('foreign_on_server_cpu'), 0)} | {num(m.get('foreign_on_load_cpu'), 0)} | "
              f"{num(m.get('server_waiting_max_thread_pct', m.get('server_waiting_pct')), 0)} | "
              f"{num(m.get('bench_waiting_pct'), 0)} |")
    for t in TARGETS:
        m = res.tsung_mon.get(t)
        if not m:
            continue
        w(f"| {NAMES[t]} | tsung | — | {num(m.get('bench_cpu'), 0)} | {num(m.get('target_cpu'), 0)} | "
          f"{num(m.get('foreign_on_server_cpu'), 0)} | {num(m.get('foreign_on_load_cpu'), 0)} | "
          f"{num(m.get('server_waiting_max_thread_pct', m.get('server_waiting_pct')), 0)} | "
          f"{num(m.get('bench_waiting_pct'), 0)} |")
    bad = [(t, r, disturbed(res.mon.get((t, r)), P, r)) for t in tg for r in RUNS]
    bad = [(t, r, why) for t, r, why in bad if why]
    w("\n\"Waiting to run\" is the time a thread was runnable but not running "
      "(`/proc/PID/task/*/schedstat`), as a share of the run; for the server, of its thread that "
      "waited most. It includes a server's threads waiting for each other on their one CPU "
      "(xedge's worker and session-server threads, ejabberd's VM threads), not only for other "
      "processes.\n")
    w("A run counts as disturbed when the server or the load generator was runnable but not "
      "running at least 10 % of the time while other processes took at least 10 % of its CPU "
      "(others using a CPU that ours left idle does not slow ours down).\n")
    if bad:
        w("> **Disturbed runs** — their figures may be lower than the server can do; re-run on a "
          "quiet machine to confirm:\n>")
        for t, r, why in bad:
            w(f"> - {NAMES[t]}, {r}: {why}")
        w("")
    else:
        w("No run was disturbed by that measure.\n")

    # ---- notes
    notes = []
    for t in tg:
        if res.info[t].get("error"):
            notes.append(f"{NAMES[t]}: {res.info[t]['error']}")
    notes += pl.notes
    if notes:
        w("## Notes from this run\n")
        for n in notes:
            w(f"- {n}")
        w("")

    # ---- commands
    w("## Reproducing\n")
    w("```sh\nbench/compare/deps.sh            # as root: prosody ejabberd tsung gnuplot-nox, if missing\n"
      "make all                         # xedge, xedgectl, xedge-bench\n"
      f"make bench-compare               # this page (its run time is at the top); QUICK=1: a few-minute smoke run\n```\n")
    w("Everything the run executed, in order (generated configs and state under "
      f"`{P.get('bench_dir', '?')}`):\n")
    if res.commands:
        w("<details><summary>all commands</summary>\n\n```sh\n" + "\n".join(res.commands) + "\n```\n</details>\n")

    for k in kept_after:
        w(k)
    text = "\n".join(o).replace("\n\n\n", "\n\n")
    os.makedirs(os.path.dirname(os.path.abspath(doc_path)), exist_ok=True)
    with open(doc_path, "w") as f:
        f.write(text)
    # raw results next to the plots
    raw = os.path.join(plots_dir, "raw")
    shutil.rmtree(raw, ignore_errors=True)
    os.makedirs(raw)
    for root, _, files in os.walk(res.dir):
        if "plots-work" in root:
            continue
        for fn in files:
            if fn.endswith(".json") or fn in ("commands.txt",):
                sub = os.path.relpath(root, res.dir)
                name = fn if sub == "." else f"{sub.replace(os.sep, '-')}-{fn}"
                shutil.copy(os.path.join(root, fn), os.path.join(raw, name))
    return pl


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--results", required=True)
    p.add_argument("--doc", required=True)
    p.add_argument("--plots", required=True)
    p.add_argument("--repo", default=os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
    a = p.parse_args()
    res = Results(a.results)
    pl = write(res, a.doc, a.plots, a.repo)
    print(f"report.py: wrote {a.doc} and {len(pl.made)} plots in {a.plots}", file=sys.stderr)
    for n in pl.notes:
        print(f"report.py: note: {n}", file=sys.stderr)


if __name__ == "__main__":
    main()
