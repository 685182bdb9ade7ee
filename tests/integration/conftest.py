"""Fixtures for the xedge integration suite: real processes, real sockets.

The binaries come from $XEDGE_BIN (default build/, relative to the repository
root), so `XEDGE_BIN=build/asan /usr/bin/python3 -m pytest -q tests/integration`
runs the same suite against the ASan+UBSan build.

`server` starts xedge with the embedded session server by default.  Ask for
the external session server (xedge-sm + xedge with a `backend:` section) with
    @pytest.mark.parametrize("server", ["embedded", "external"], indirect=True)
or pass a dict: {"mode": "embedded", "tls_require": False, ...} (see
ServerOptions).  Each test gets fresh processes, a fresh database and fresh
ports; on teardown every process gets SIGTERM and must exit 0 within 10 s
with no sanitizer report in its log.  When a test fails, the tail of every
process log is attached to the report.

Nothing here may hang: every wait has a deadline, child processes die with
the test runner (PR_SET_PDEATHSIG), and a watchdog (faulthandler) ends the
run with a traceback if one test exceeds XEDGE_TEST_WATCHDOG seconds.
"""
import ctypes
import faulthandler
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

DOMAIN = "localhost"
USERS = {"alice": "alice-Secret-1", "bob": "bob-Secret-2", "carol": "carol-Secret-3"}
WORKERS = 2          # two edge workers: clients of one test may land on different ones
START_TIMEOUT = 20.0  # ASan builds start slower
STOP_TIMEOUT = 10.0
WATCHDOG = float(os.environ.get("XEDGE_TEST_WATCHDOG", "120"))
SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
                      "ERROR: ThreadSanitizer", "WARNING: ThreadSanitizer",
                      "AddressSanitizer:DEADLYSIGNAL")


def bin_dir() -> Path:
    d = Path(os.environ.get("XEDGE_BIN", "build"))
    return d if d.is_absolute() else REPO / d


def binary(name: str) -> Path:
    p = bin_dir() / name
    if not os.access(p, os.X_OK):
        pytest.fail(f"{p} is missing: build it first (make all, or make asan for build/asan)",
                    pytrace=False)
    return p


# ---- ports --------------------------------------------------------------------

_handed_out: set = set()


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A loopback TCP port nobody uses now and not handed out before, chosen below the
    kernel's ephemeral range: a port from that range can be taken, between the check
    and the server's bind, as the local port of any outgoing connection (a client, an
    upstream stream), and the server then fails with "address in use"."""
    low = _ephemeral_low()
    lo, hi = (10000, low) if low > 12000 else (low, 65535)
    rnd = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(2000):
        port = rnd.randrange(lo, hi)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port")


def wait_until(cond, timeout: float = 20.0, what: str = "condition"):
    """Poll cond() until it returns something true (returned); AssertionError naming
    `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout:.0f} s")
        time.sleep(0.02)


def port_accepts(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


# ---- processes ------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # If the test runner dies (watchdog, ^C, crash), the servers die too.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def child_env() -> dict:
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:halt_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    # Never let a config override from the caller's environment leak in.
    for k in list(env):
        if k.startswith("XEDGE_") and k not in ("XEDGE_BIN", "XEDGE_TEST_WATCHDOG"):
            del env[k]
    return env


def tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"(cannot read {path}: {e})"
    return "\n".join(text.splitlines()[-lines:])


class Proc:
    """One server process with its log file (stdout and stderr)."""

    def __init__(self, name: str, argv: list, log: Path, env: dict = None):
        self.name, self.argv, self.log = name, argv, log
        self._logf = open(log, "wb")
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._logf,
                                  stderr=subprocess.STDOUT, env={**child_env(), **(env or {})},
                                  preexec_fn=_die_with_parent, cwd=str(log.parent))
        self.stopped = False
        self.terminated = False

    def terminate(self):
        """Send SIGTERM now (a test of shutdown); stop() then waits for the exit."""
        self.terminated = True
        self.p.send_signal(signal.SIGTERM)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self) -> list:
        """SIGTERM, wait; returns a list of problems (empty: clean exit)."""
        problems = []
        if self.stopped:
            return problems
        self.stopped = True
        if self.p.poll() is not None and not self.terminated:
            problems.append(f"{self.name} had already exited (status {self.p.returncode}) "
                            "before the test ended")
        else:
            if not self.terminated:
                self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
                problems.append(f"{self.name} did not exit within {STOP_TIMEOUT:.0f} s of SIGTERM")
            else:
                if self.p.returncode != 0:
                    problems.append(f"{self.name} exited with status {self.p.returncode} "
                                    "after SIGTERM (expected 0)")
        self._logf.close()
        for line in self.text().splitlines():
            if any(pat in line for pat in SANITIZER_PATTERNS):
                problems.append(f"{self.name} log has a sanitizer report: {line.strip()}")
                break
        return problems


@dataclass
class ServerOptions:
    mode: str = "embedded"          # or "external": xedge-sm + xedge with backend:;
                                    # or "upstream": backend.upstream (no session server)
    upstream: str = ""              # upstream mode: "127.0.0.1:PORT" of any XMPP server
    upstream_proxy: str = "none"    # upstream mode: none, v1 or v2
    upstream_tls: bool = False      # upstream mode: STARTTLS to the upstream, verified
    ca_file: str = ""               # tls.ca_file: CA certificates for upstream_tls
    ws: bool = False                # also a ws and a wss listener (ws_port, wss_port)
    proxy_protocol: bool = False    # every listener requires a PROXY header
    tls_require: bool = True
    workers: int = WORKERS
    shards: int = 0                 # embedded session-server shards (0: xedge's default, one per core)
    max_auth_failures: int = 3
    max_stanza_bytes: int = 65536
    handshake_timeout: int = 10
    auth_timeout: int = 30
    idle_timeout: int = 600
    log_level: str = "debug"
    extra_edge_yaml: str = ""        # appended verbatim to the edge config
    extra_sm_yaml: str = ""          # appended verbatim to xedge-sm's config (external mode)
    domain: str = ""                 # the served domain (default DOMAIN)
    # More listeners: [(type, port)], e.g. [("s2s", 5269)] (address 127.0.0.1, or host:port)
    extra_listeners: list = field(default_factory=list)
    # XEP-0114 components [(name, secret), ...]: a `component` listener (component_port)
    # and the `components:` list
    components: list = field(default_factory=list)
    sm: dict = field(default_factory=dict)   # more session_server: keys (either mode)
    # More edge `limits:` / `timeouts:` keys, e.g. {"max_connections_per_ip": 5};
    # a key given here wins over the named field of the same meaning above.
    limits: dict = field(default_factory=dict)
    timeouts: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)      # more environment for xedge
    admin: bool = False              # an admin HTTP listener (admin_port) on the edge, and on
                                     # xedge-sm (sm_admin_port) in external mode
    drain: dict = field(default_factory=dict)    # drain: keys (redirect, rate, grace)
    sm_env: dict = field(default_factory=dict)   # more environment for xedge-sm (external)
    database: str = ""               # session_server.database (default: xedge.db in the
                                     # test's folder; a postgresql:// URI: see pgserver.py)

    @classmethod
    def from_param(cls, param):
        if param is None:
            return cls()
        if isinstance(param, str):
            return cls(mode=param)
        if isinstance(param, dict):
            return cls(**param)
        raise TypeError(f"server param {param!r}")


def _yaml_section(values: dict) -> str:
    return "".join(f"  {k}: {v}\n" for k, v in values.items())


class Server:
    """A running xedge (and xedge-sm when external) for one test."""

    def __init__(self, opts: ServerOptions, workdir: Path, sockdir: Path, cert):
        self.opts = opts
        self.dir = workdir
        self.domain = opts.domain or DOMAIN
        self.c2s_port = free_port()
        self.tls_port = free_port()
        self.procs: list = []
        self.cert, self.key = cert
        self.admin_socket = sockdir / "admin.sock"
        self.database = opts.database or workdir / "xedge.db"
        self.secret = "link-secret-" + os.urandom(6).hex()
        self.edge_config = workdir / "xedge.yaml"
        self.ws_port = free_port() if opts.ws else None
        self.wss_port = free_port() if opts.ws else None
        self.component_port = free_port() if opts.components else None
        self.admin_port = free_port() if opts.admin else None
        self.sm_admin_port = free_port() if opts.admin and opts.mode == "external" else None
        if opts.mode == "upstream":
            self.sm_config = None
            self.ctl_config = None
        elif opts.mode == "external":
            self.sm_port = free_port()
            self.sm_config = workdir / "xedge-sm.yaml"
            self.ctl_config = self.sm_config
        elif opts.mode == "embedded":
            self.sm_config = None
            self.ctl_config = self.edge_config
        else:
            raise ValueError(f"server mode {opts.mode!r}: embedded, external or upstream")
        self._write_configs()

    # -- configuration --

    def _sm_yaml(self, with_listen: bool) -> str:
        s = ("session_server:\n"
             f"  database: {self.database}\n"
             f"  admin_socket: {self.admin_socket}\n")
        if with_listen:
            s += f"  listen: \"127.0.0.1:{self.sm_port}\"\n  secret: \"{self.secret}\"\n"
        return s + _yaml_section(self.opts.sm)

    def _write_configs(self):
        o = self.opts
        listeners = [("c2s", self.c2s_port), ("c2s_tls", self.tls_port)]
        if o.ws:
            listeners += [("ws", self.ws_port), ("wss", self.wss_port)]
        if o.components:
            listeners += [("component", self.component_port)]
        listeners += [(t, p if ":" in str(p) else f"127.0.0.1:{p}") for t, p in o.extra_listeners]
        pp = "    proxy_protocol: true\n" if o.proxy_protocol else ""
        edge = (f"workers: {o.workers}\n" +
                (f"shards: {o.shards}\n" if o.shards else "") +
                f"log_level: {o.log_level}\n"
                "listeners:\n" +
                "".join(f"  - type: {t}\n    address: {p if ':' in str(p) else f'127.0.0.1:{p}'}\n{pp}"
                        for t, p in listeners) +
                "domains:\n"
                f"  - name: {self.domain}\n"
                f"    cert: {self.cert}\n"
                f"    key: {self.key}\n"
                "tls:\n"
                f"  require: {'true' if o.tls_require else 'false'}\n" +
                (f"  ca_file: {o.ca_file}\n" if o.ca_file else "") +
                "limits:\n" +
                _yaml_section({"max_auth_failures": o.max_auth_failures,
                               "max_stanza_bytes": o.max_stanza_bytes, **o.limits}) +
                "timeouts:\n" +
                _yaml_section({"handshake": o.handshake_timeout, "auth": o.auth_timeout,
                               "idle": o.idle_timeout, **o.timeouts}))
        if o.mode == "embedded":
            edge += self._sm_yaml(with_listen=False)
        elif o.mode == "upstream":
            edge += ("backend:\n"
                     f"  upstream: \"{o.upstream}\"\n"
                     f"  proxy_protocol: {o.upstream_proxy}\n" +
                     ("  upstream_tls: true\n" if o.upstream_tls else ""))
        else:
            edge += ("backend:\n"
                     f"  address: \"127.0.0.1:{self.sm_port}\"\n"
                     f"  secret: \"{self.secret}\"\n")
            sm = (f"log_level: {o.log_level}\n"
                  "domains:\n"
                  f"  - name: {self.domain}\n" + self._sm_yaml(with_listen=True))
            if self.sm_admin_port:
                sm += f"admin:\n  address: 127.0.0.1:{self.sm_admin_port}\n"
            self.sm_config.write_text(sm + o.extra_sm_yaml)
        if o.components:
            edge += "components:\n" + "".join(f"  - name: {n}\n    secret: \"{k}\"\n"
                                              for n, k in o.components)
        if self.admin_port:
            edge += f"admin:\n  address: 127.0.0.1:{self.admin_port}\n"
        if o.drain:
            edge += "drain:\n" + _yaml_section(o.drain)
        edge += o.extra_edge_yaml
        self.edge_config.write_text(edge)

    # -- the admin HTTP listener --

    def http(self, path: str, which: str = "xedge", timeout: float = 10.0):
        """GET path from the admin listener of xedge or xedge-sm: (status, body)."""
        import http.client
        port = self.admin_port if which == "xedge" else self.sm_admin_port
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read().decode()
        finally:
            conn.close()

    def metrics(self, which: str = "xedge") -> dict:
        """The samples of /metrics: {'name{labels}': value}."""
        status, body = self.http("/metrics", which)
        assert status == 200, f"/metrics answered {status}: {body[:500]}"
        out = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                key, _, val = line.rpartition(" ")
                out[key] = float(val)
        return out

    def metric(self, name: str, which: str = "xedge", **labels) -> float:
        """The sum of the samples of `name` whose labels include `labels`."""
        want = [f'{k}="{v}"' for k, v in labels.items()]
        total = 0.0
        for key, v in self.metrics(which).items():
            base = key.split("{", 1)[0]
            if base == name and all(w in key for w in want):
                total += v
        return total

    # -- life cycle --

    def _wait(self, proc: Proc, what: str, cond, timeout: float = START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive():
                raise AssertionError(f"{proc.name} exited with status {proc.p.returncode} while "
                                     f"waiting for {what}\n--- {proc.log} ---\n{tail(proc.log)}")
            if cond():
                return
            time.sleep(0.03)
        raise AssertionError(f"{proc.name}: no {what} within {timeout:.0f} s\n"
                             f"--- {proc.log} ---\n{tail(proc.log)}")

    def _log_suffix(self) -> str:
        g = getattr(self, "generation", 0)
        return f"-{g + 1}" if g else ""

    def start(self):
        if self.opts.mode == "external":
            sm = Proc("xedge-sm", [str(binary("xedge-sm")), "-c", str(self.sm_config)],
                      self.dir / f"xedge-sm{self._log_suffix()}.log", self.opts.sm_env)
            self.procs.append(sm)
            # (No probe connection to the edge listener: it would log a failed link.)
            self._wait(sm, "'xedge-sm started' log line and admin socket",
                       lambda: "xedge-sm started" in sm.text() and self.admin_socket.exists())
        edge = Proc("xedge", [str(binary("xedge")), "-c", str(self.edge_config)],
                    self.dir / f"xedge{self._log_suffix()}.log", self.opts.env)
        self.procs.append(edge)
        self.edge = edge
        self._wait(edge, "'xedge started' log line", lambda: "xedge started" in edge.text())
        if self.opts.mode != "upstream":
            links = self.opts.workers * self.shards()
            self._wait(edge, f"{links} 'session server link up' log lines (one per worker and shard)",
                       lambda: edge.text().count("session server link up") >= links)
        if self.opts.mode == "embedded":
            self._wait(edge, "admin socket", self.admin_socket.exists)
        for port in (self.c2s_port, self.tls_port, self.ws_port, self.wss_port,
                     self.component_port):
            if port is None:
                continue
            self._wait(edge, f"listener on 127.0.0.1:{port}", lambda port=port: port_accepts(port))
        return self

    def shards(self) -> int:
        """Session-server shards the edge links each worker to (from its start-up log)."""
        if self.opts.mode != "embedded":
            return 1
        m = re.search(r'msg="embedded session servers" shards=(\d+)', self.edge.text())
        assert m, "xedge logged no 'embedded session servers' line"
        return int(m.group(1))

    def restart_sm(self) -> list:
        """External mode: stop xedge-sm (SIGTERM) and start it again with the same
        config and database.  Returns the problems of the stop (empty: clean)."""
        assert self.opts.mode == "external", "restart_sm needs mode external"
        old = next(p for p in self.procs if p.name == "xedge-sm" and not p.stopped)
        problems = old.stop()
        self.start_sm()
        return problems

    def start_sm(self):
        """External mode: start xedge-sm again (after it was stopped)."""
        n = sum(1 for p in self.procs if p.name.startswith("xedge-sm"))
        sm = Proc("xedge-sm", [str(binary("xedge-sm")), "-c", str(self.sm_config)],
                  self.dir / f"xedge-sm-{n + 1}.log")
        self.procs.insert(0, sm)
        self._wait(sm, "'xedge-sm started' log line",
                   lambda: "xedge-sm started" in sm.text() and self.admin_socket.exists())

    def crash_and_restart(self):
        """kill -9 every process (a crash: nothing flushed, nothing said), then start
        again on the same configuration, database and ports."""
        for p in self.procs:
            if not p.stopped and p.alive():
                p.p.kill()
                p.p.wait(STOP_TIMEOUT)
            p.stopped = True
        self.crashed = getattr(self, "crashed", []) + self.procs
        self.procs = []
        self.generation = getattr(self, "generation", 0) + 1
        return self.start()

    def stop(self) -> list:
        problems = []
        for p in reversed(self.procs):     # the edge first, then its session server
            problems += p.stop()
        return problems

    def log_tails(self, lines: int = 60) -> str:
        return "\n".join(f"--- {p.name} log ({p.log}) ---\n{tail(p.log, lines)}" for p in self.procs)

    def proc(self, which: str = "xedge") -> "Proc":
        """The running (last started) process of that name."""
        return [p for p in self.procs if p.name == which][-1]

    def rss_kib(self, which: str = "xedge") -> int:
        """Resident set size of a server process, in KiB (from /proc)."""
        with open(f"/proc/{self.proc(which).p.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError(f"no VmRSS for {which}")

    def log(self, which: str = "xedge") -> str:
        texts = [p.text() for p in self.procs if p.name == which]
        if not texts:
            raise KeyError(which)
        return "".join(texts)

    def wait_log(self, pattern: str, which: str = "xedge", timeout: float = 5.0,
                 count: int = 1) -> list:
        """Wait until regex pattern matches `count` lines of a process log."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            hits = [l for l in self.log(which).splitlines() if rx.search(l)]
            if len(hits) >= count:
                return hits
            if time.monotonic() > deadline:
                raise AssertionError(f"no {count} log line(s) matching {pattern!r} in {which} "
                                     f"within {timeout} s\n{self.log_tails()}")
            time.sleep(0.05)

    # -- administration (xedgectl) --

    def ctl(self, *args, check: bool = True, input: str = None) -> subprocess.CompletedProcess:
        argv = [str(binary("xedgectl")), "-c", str(self.ctl_config), *args]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30, input=input,
                           env=child_env(), stdin=None if input is not None else subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {r.returncode}\nstdout: {r.stdout}\n"
                                 f"stderr: {r.stderr}\n{self.log_tails()}")
        return r

    def add_user(self, user: str, password: str = None):
        jid = user if "@" in user else f"{user}@{self.domain}"
        self.ctl("user", "add", jid, password or USERS[jid.split("@")[0]])
        return jid

    def roster_add(self, user: str, contact: str, sub: str = "both", name: str = None):
        args = ["roster", "add", self.jid(user), self.jid(contact), sub]
        if name:
            args.append(name)
        return self.ctl(*args)

    def sessions(self) -> list:
        return self.ctl("sessions").stdout.splitlines()

    def jid(self, user: str) -> str:
        return user if "@" in user else f"{user}@{self.domain}"

    def password(self, user: str) -> str:
        return USERS[user.split("@")[0]]


# ---- fixtures -------------------------------------------------------------------

def make_cert(d: Path, name: str = "localhost"):
    """A new self-signed ECDSA P-256 certificate for localhost in d: (crt, key)."""
    crt, key = d / f"{name}.crt", d / f"{name}.key"
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                        "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                        "-keyout", str(key), "-out", str(crt)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return crt, key


@pytest.fixture(scope="session")
def cert(tmp_path_factory):
    """A self-signed ECDSA P-256 certificate for localhost, made once per run."""
    return make_cert(tmp_path_factory.mktemp("cert"))


@pytest.fixture
def sockdir():
    # AF_UNIX paths are limited to 108 bytes: pytest's tmp_path can be longer.
    d = Path(tempfile.mkdtemp(prefix="xe", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _start_server(request, tmp_path, sockdir, cert, param):
    srv = Server(ServerOptions.from_param(param), tmp_path, sockdir, cert)
    request.node._xedge_servers = getattr(request.node, "_xedge_servers", []) + [srv]
    try:
        srv.start()
    except BaseException:
        problems = srv.stop()
        if problems:
            print("\n".join(problems))
        raise
    return srv


@pytest.fixture
def bare_server(request, tmp_path, sockdir, cert):
    """A running server with no accounts."""
    srv = _start_server(request, tmp_path, sockdir, cert, getattr(request, "param", None))
    yield srv
    problems = srv.stop()
    if problems:
        pytest.fail("server shutdown:\n  " + "\n  ".join(problems) + "\n" + srv.log_tails(),
                    pytrace=False)


@pytest.fixture
def server(request, tmp_path, sockdir, cert):
    """A running server with the accounts alice, bob and carol (passwords in USERS)."""
    srv = _start_server(request, tmp_path, sockdir, cert, getattr(request, "param", None))
    try:
        for u in USERS:
            srv.add_user(u)
    except BaseException:
        srv.stop()
        raise
    yield srv
    problems = srv.stop()
    if problems:
        pytest.fail("server shutdown:\n  " + "\n  ".join(problems) + "\n" + srv.log_tails(),
                    pytrace=False)


@pytest.fixture
def buddies(server):
    """alice and bob have each other on their rosters with subscription both."""
    server.roster_add("alice", "bob", "both", "Bob")
    server.roster_add("bob", "alice", "both", "Alice")
    return server


# ---- a legitimate pair beside an attacker ------------------------------------------

class LegitPair:
    """alice and bob logged in over STARTTLS from 127.0.0.1 (resource 'legit'), chatting
    while a test attacks the same server.  check(): the edge is still running and one
    message goes each way, from-stamped.  Attackers should connect from other loopback
    addresses (Raw(..., source="127.0.0.N")) so per-IP limits never hit the pair."""

    RESOURCE = "legit"

    def __init__(self, server, timeout: float = 10.0):
        from rawxmpp import Raw
        self.server = server
        self.rounds = 0
        self.alice = self.bob = None
        try:
            self.alice = Raw(server.c2s_port, timeout=timeout)
            self.alice.login("alice", USERS["alice"], self.RESOURCE)
            self.bob = Raw(server.c2s_port, timeout=timeout)
            self.bob.login("bob", USERS["bob"], self.RESOURCE)
        except BaseException:
            self.close()
            raise

    def broken(self) -> bool:
        return any(c is None or c.eof for c in (self.alice, self.bob))

    def alive(self):
        """(c) The edge process (and xedge-sm, when external) is still running."""
        dead = [p for p in self.server.procs if not p.stopped and not p.terminated and not p.alive()]
        if dead:
            raise AssertionError(
                "server process died: " + ", ".join(f"{p.name} (status {p.p.returncode})"
                                                    for p in dead) + "\n" + self.server.log_tails())

    def chat(self, timeout: float = 5.0, tag: str = "chat"):
        """(d) alice -> bob and bob -> alice, each delivered and stamped with its sender."""
        from rawxmpp import NS_CLIENT, q
        self.rounds += 1
        for src, dst in ((self.alice, self.bob), (self.bob, self.alice)):
            body = f"legit-{tag}-{self.rounds}-{os.urandom(3).hex()}"
            try:
                src.send(f"<message to='{dst.jid}' type='chat'><body>{body}</body></message>")
                m = dst.wait_for(lambda e: e.tag == q(NS_CLIENT, "message") and
                                 e.findtext(q(NS_CLIENT, "body")) == body, timeout)
            except (AssertionError, OSError) as e:
                raise AssertionError(f"legitimate client beside the attack: {src.jid} -> {dst.jid} "
                                     f"not delivered: {e}\n{self.server.log_tails(30)}") from None
            assert m.get("from") == src.jid, f"legit message stamped {m.get('from')!r}"

    def check(self, timeout: float = 5.0, tag: str = "chat"):
        self.alive()
        self.chat(timeout, tag)

    def keepalive(self):
        """A whitespace keepalive from both (idle timeouts)."""
        for c in (self.alice, self.bob):
            c.send(b" ")

    def received(self, marker) -> bool:
        """Did either legit client ever receive these bytes?"""
        if isinstance(marker, str):
            marker = marker.encode()
        return any(c is not None and marker in c.raw for c in (self.alice, self.bob))

    def close(self):
        for c in (self.alice, self.bob):
            if c is not None:
                c.close()


@pytest.fixture
def legit(server):
    """A LegitPair on `server`; at teardown it must still chat (checked for every test
    that uses it), which makes 'the attack did not hurt anybody else' part of the test."""
    pair = LegitPair(server)
    try:
        yield pair
        pair.check(tag="teardown")
    finally:
        pair.close()


class Arena:
    """One server shared by a whole test module (options: the module's ARENA_OPTIONS,
    as for `server`), with alice, bob, carol, and a LegitPair logged in beside every
    attack.  If a test killed the server (or the pair), the next test gets a fresh one;
    the test that did it fails at teardown with the logs."""

    def __init__(self, param, tmp_path_factory, cert):
        self.param, self.tmp_path_factory, self.cert = param, tmp_path_factory, cert
        self.server = self.pair = None
        self.generation = 0
        self.problems = []
        self.sockdirs = []

    def _start(self):
        self.generation += 1
        workdir = self.tmp_path_factory.mktemp(f"arena{self.generation}")
        sockdir = Path(tempfile.mkdtemp(prefix="xa", dir="/tmp"))
        self.sockdirs.append(sockdir)
        srv = Server(ServerOptions.from_param(self.param), workdir, sockdir, self.cert)
        self.server = srv
        try:
            srv.start()
            for u in USERS:
                srv.add_user(u)
        except BaseException:
            self.problems += srv.stop()
            raise

    def ensure(self, item=None):
        if self.server is not None and any(not p.alive() for p in self.server.procs
                                           if not p.stopped):
            if self.pair:
                self.pair.close()
            self.pair = None
            self.problems += self.server.stop()
            self.server = None
        if self.server is None:
            self._start()
        if self.pair is not None and self.pair.broken():
            self.pair.close()
            self.pair = None
        if self.pair is None:
            self.pair = LegitPair(self.server)
        if item is not None:
            item._xedge_servers = getattr(item, "_xedge_servers", []) + [self.server]
        return self

    def check(self, tag="teardown"):
        self.pair.check(tag=tag)

    def stop(self) -> list:
        if self.pair:
            self.pair.close()
        if self.server:
            self.problems += self.server.stop()
        for d in self.sockdirs:
            shutil.rmtree(d, ignore_errors=True)
        return self.problems


@pytest.fixture(scope="module")
def arena(request, tmp_path_factory, cert):
    a = Arena(getattr(request.module, "ARENA_OPTIONS", None), tmp_path_factory, cert)
    yield a
    problems = a.stop()
    if problems:
        pytest.fail("arena server:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def beside(arena, request):
    """Use in every test of an arena module: before the test the shared server is up and
    the legit pair logged in; after it (c) the server is still up and (d) the pair still
    chats, or the test errors at teardown."""
    arena.ensure(request.node)
    yield arena
    arena.check()


# ---- reporting and the watchdog -------------------------------------------------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for srv in getattr(item, "_xedge_servers", []):
            for p in srv.procs:
                rep.sections.append((f"{p.name} log tail ({p.log})", tail(p.log, 80)))


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "watchdog(seconds): this test may run up to that long before the watchdog "
        "ends the run (default XEDGE_TEST_WATCHDOG); for tests whose waits have long deadlines")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    # A hung test ends the whole run with every thread's traceback rather than
    # hanging CI; the servers die with us through PR_SET_PDEATHSIG.
    mark = item.get_closest_marker("watchdog")
    faulthandler.dump_traceback_later(max(WATCHDOG, float(mark.args[0])) if mark else WATCHDOG,
                                      exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
