"""Real XMPP peers for the integration suite: Prosody and ejabberd as upstream
servers, HAProxy in front (PROXY protocol v1/v2), xmpp.js as a client, and
PROXY protocol helpers (build, parse, a capturing TCP server).

Everything runs from Debian's packages on 127.0.0.1 with configs written here
(this project's own, nothing from outside the repository) into a temporary
directory, on ports from conftest.free_port().  Every wait has a deadline.

Use the fixtures by importing them into a test module:

    from peers import prosody, ejabberd, ejabberd_module, haproxy, xmppjs  # noqa: F401

    def test_something(prosody):            # Prosody, users alice/bob/carol (conftest.USERS)
        prosody.c2s_port ...

Options go through indirect parametrization (a dict of constructor keywords):

    @pytest.mark.parametrize("prosody", [{"websocket": True}], indirect=True)

When a test fails, the tail of every peer log is attached to the report (the
same hook as xedge's: the peers register on request.node._xedge_servers).

Fixtures
  prosody          fresh Prosody per test (~0.4 s start, ~1 s stop); params: Prosody()
                   keywords, tls=True for conftest's cert.  prosody_shared: one per
                   module (PROSODY_OPTIONS).
  ejabberd         the module's ejabberd (ejabberd_module, EJABBERD_OPTIONS; ~2-4 s
                   start, ~2 s stop), checked alive before each test.
  upstream         parametrized: the test runs on prosody and on ejabberd.
  haproxy          factory: haproxy(backend_port, "v2"|"v1"|None) -> HAProxy (.port).
  xmppjs           XmppJs runner: run(service, user, pw, ...) -> dict, start() -> proc.
Helpers
  plain_login()    rawxmpp.Raw logged in over plaintext, optional PROXY header / source.
  slix_plain_client() + slix_login_plain()   slixmpp without TLS, PLAIN allowed.
  proxy_v1_header(), proxy_v2_header(), parse_proxy_header(), ProxyCapture.
  Ejabberd.session_ip(jid), .sessions(): the client address ejabberd recorded.
  Prosody.roster_add(user, contact, sub, name): a roster item written to its storage
                   before user logs in (as xedgectl roster add does for xedge).
"""
import asyncio
import ipaddress
import json
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import DOMAIN, USERS, _die_with_parent, child_env, free_port, port_accepts, tail

HERE = Path(__file__).resolve().parent
XMPPJS_DIR = HERE / "xmppjs"


class PeerLog:
    """What conftest's report hook needs: a name and a log path."""

    def __init__(self, name, log):
        self.name, self.log = name, Path(log)


def _wait(what, cond, timeout, proc=None, logs=()):
    """Poll cond() until true; fail with the log tails on timeout or when proc died."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return
        died = proc is not None and proc.poll() is not None
        if died or time.monotonic() > deadline:
            why = (f"exited with status {proc.returncode}" if died
                   else f"not within {timeout:.0f} s")
            raise AssertionError(f"waiting for {what}: {why}\n" + "\n".join(
                f"--- {p.name} log ({p.log}) ---\n{tail(p.log)}" for p in logs))
        time.sleep(0.05)


def _attach(request, peer):
    """Make conftest's report hook print this peer's logs when the test fails."""
    node = request.node
    node._xedge_servers = getattr(node, "_xedge_servers", []) + [peer]


def _param(request):
    p = getattr(request, "param", None)
    return dict(p) if p else {}


def _stop_popen(p, name, timeout=10.0, sig=signal.SIGTERM, ok_codes=(0,)):
    """Signal, wait with a deadline, SIGKILL the process group as the last resort.
    Returns a list of problems (empty: clean exit)."""
    problems = []
    if p.poll() is not None:
        problems.append(f"{name} had already exited (status {p.returncode}) before teardown")
        return problems
    try:
        p.send_signal(sig)
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        problems.append(f"{name} did not exit within {timeout:.0f} s")
    if p.poll() is None or _group_alive(p.pid):
        _kill_group(p.pid)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass
    if not problems and p.returncode not in ok_codes:
        problems.append(f"{name} exited with status {p.returncode} (expected {ok_codes})")
    return problems


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def new_username(prefix="u"):
    return f"{prefix}{os.getpid()}x{os.urandom(4).hex()}"


# ---- Prosody -----------------------------------------------------------------------

PROSODY_CFG = """\
-- Written by tests/integration/peers.py: a Prosody 0.12 upstream for xedge tests.
run_as_root = true
daemonize = false
pidfile = "{dir}/prosody.pid"
data_path = "{dir}/data"
certificates = "{dir}/certs"
log = {{
  {{ levels = {{ min = "{log_level}" }}, to = "file", filename = "{dir}/prosody.log" }};
  {{ levels = {{ min = "error" }}, to = "console" }};
}}
interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {c2s_port} }}
c2s_direct_tls_ports = {{ {direct_tls_port} }}
s2s_ports = {{ }}
component_ports = {{ }}
{http}
-- Plaintext upstream: no TLS required, PLAIN allowed without TLS.
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
{tls}
authentication = "internal_hashed"
allow_registration = false
limits = {{ c2s = {{ rate = "100mb/s" }} }}
c2s_stanza_size_limit = 1024*1024
modules_enabled = {{
  "roster"; "saslauth"; "disco"; "ping"; "version"; "time"; "private";
  "vcard_legacy"; "carbons"; "blocklist"; "offline"; "posix";{modules}
}}
modules_disabled = {{ "s2s"; "s2s_bidi"; "dialback" }}
{extra}
VirtualHost "{domain}"
"""

PROSODY_HTTP = """\
http_ports = {{ {http_port} }}
http_interfaces = {{ "127.0.0.1" }}
https_ports = {{ {https_port} }}
https_interfaces = {{ "127.0.0.1" }}
consider_websocket_secure = true    -- auth over ws:// (loopback) is fine
cross_domain_websocket = true
"""


class Prosody:
    """Debian's prosody (0.12) in the foreground, in its own directory, with a
    plaintext c2s port (and optionally mod_websocket on an http port).

    Attributes: domain, c2s_port, http_port (None without websocket), ws_url,
    dir, config, users (name -> password), procs (logs, for the report hook).
    """

    name = "prosody"

    def __init__(self, workdir, users=None, domain=DOMAIN, websocket=False, tls=None,
                 log_level="debug", modules=(), extra_config="", direct_tls=False):
        """tls: None (no certificate: Prosody offers no STARTTLS) or (cert, key)
        paths (STARTTLS offered, still optional); direct_tls: also a Direct TLS c2s
        port (tls_port; needs tls).  modules: more modules_enabled."""
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "data").mkdir(exist_ok=True)
        (self.dir / "certs").mkdir(exist_ok=True)     # Prosody indexes it (empty: no TLS)
        self.domain = domain
        self.users = dict(USERS if users is None else users)
        self.c2s_port = free_port()
        assert tls or not direct_tls, "Prosody(direct_tls=True) needs tls"
        self.tls_port = free_port() if direct_tls else None
        self.proxy_port = None           # (ejabberd has a PROXY protocol listener)
        self.websocket = websocket
        self.http_port = free_port() if websocket else None
        self.https_port = free_port() if websocket and tls else None
        self.config = self.dir / "prosody.cfg.lua"
        self.log = self.dir / "prosody.log"
        self.console = self.dir / "prosody-console.log"
        self.procs = [PeerLog("prosody", self.log), PeerLog("prosody console", self.console)]
        self.p = None
        # Without "tls" Prosody offers no STARTTLS (it would otherwise find a default
        # certificate and offer it): a plain upstream, as xedge's upstream mode expects.
        mods = list(modules) + (["websocket"] if websocket else []) + (["tls"] if tls else [])
        http = PROSODY_HTTP.format(http_port=self.http_port,
                                   https_port=self.https_port or "") if websocket else ""
        tls_cfg = ""
        if tls:
            crt, key = tls
            tls_cfg = f'ssl = {{ certificate = "{crt}"; key = "{key}" }}\n'
            if websocket:
                tls_cfg += f'https_ssl = {{ certificate = "{crt}"; key = "{key}" }}\n'
        self.config.write_text(PROSODY_CFG.format(
            dir=self.dir, log_level=log_level, c2s_port=self.c2s_port,
            direct_tls_port=self.tls_port or "", http=http, tls=tls_cfg,
            modules="".join(f' "{m}";' for m in mods), extra=extra_config, domain=domain))

    @property
    def ws_url(self):
        assert self.websocket, "Prosody(websocket=True) for a WebSocket endpoint"
        return f"ws://127.0.0.1:{self.http_port}/xmpp-websocket"

    @property
    def wss_url(self):
        assert self.https_port, "Prosody(websocket=True, tls=(cert, key)) for wss://"
        return f"wss://localhost:{self.https_port}/xmpp-websocket"

    def jid(self, user):
        return user if "@" in user else f"{user}@{self.domain}"

    def start(self, timeout=20.0):
        self._consolef = open(self.console, "wb")
        self.p = subprocess.Popen(["prosody", "-F", "--config", str(self.config)],
                                  stdin=subprocess.DEVNULL, stdout=self._consolef,
                                  stderr=subprocess.STDOUT, cwd=str(self.dir), env=child_env(),
                                  preexec_fn=_die_with_parent, start_new_session=True)
        ports = [p for p in (self.c2s_port, self.tls_port, self.http_port, self.https_port) if p]
        _wait(f"prosody listening on 127.0.0.1:{ports}",
              lambda: all(_listening(p) for p in ports), timeout, self.p, self.procs)
        for user, pw in self.users.items():
            self.register(user, pw)
        return self

    def prosodyctl(self, *args, check=True):
        r = subprocess.run(["prosodyctl", "--config", str(self.config), *args],
                           capture_output=True, text=True, timeout=30, env=child_env(),
                           stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise AssertionError(f"prosodyctl {' '.join(args)} exited {r.returncode}\n"
                                 f"stdout: {r.stdout}\nstderr: {r.stderr}")
        return r

    def register(self, user, password):
        """Create (or reset) an account; returns the bare JID."""
        self.prosodyctl("register", user, self.domain, password)
        self.users[user] = password
        return self.jid(user)

    def new_user(self, prefix="u"):
        """A fresh account nobody used before (no offline messages): (jid, password)."""
        user, pw = new_username(prefix), "pw-" + os.urandom(6).hex()
        return self.register(user, pw), pw

    def roster_add(self, user, contact, sub="both", name=None):
        """Put contact on user's roster (like xedgectl roster add) by writing Prosody's
        internal storage file (data/HOST/roster/USER.dat).  Only while user has no
        session: Prosody reads the roster at login and keeps it in memory after."""
        def lua(s):
            return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
        node, host = self.jid(user).split("@")
        assert host.isalnum() and node.isalnum(), "storage names of other forms are encoded"
        path = self.dir / "data" / host / "roster" / f"{node}.dat"
        path.parent.mkdir(parents=True, exist_ok=True)
        items = {}
        if path.exists():       # our own files only: one item per line, below
            for line in path.read_text().splitlines():
                m = re.match(r'  \["([^"]+)"\] = (.*);$', line)
                if m:
                    items[m.group(1)] = m.group(2)
        items[self.jid(contact)] = ("{ subscription = %s; groups = {}; %s}" %
                                    (lua(sub), f"name = {lua(name)}; " if name else ""))
        path.write_text("return {\n  [false] = { version = 1 };\n" +
                        "".join(f'  [{lua(j)}] = {v};\n' for j, v in items.items()) + "};\n")
        return self.jid(contact)

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def log_mark(self):
        """The current end of the log: pass to wait_log(since=...) on a shared server."""
        return len(self.log_text())

    def wait_log(self, pattern, timeout=5.0, since=0):
        """Wait until a line of the log (after offset `since`) matches regex pattern;
        returns the matching lines."""
        rx = re.compile(pattern)
        hits = []

        def look():
            hits[:] = [l for l in self.log_text()[since:].splitlines() if rx.search(l)]
            return bool(hits)
        _wait(f"prosody log line matching {pattern!r}", look, timeout, None, self.procs)
        return hits

    def log_tails(self, lines=60):
        return "\n".join(f"--- {p.name} log ({p.log}) ---\n{tail(p.log, lines)}"
                         for p in self.procs)

    def stop(self):
        if self.p is None:
            return []
        problems = _stop_popen(self.p, "prosody")
        self._consolef.close()
        self.p = None
        return problems


# ---- ejabberd ----------------------------------------------------------------------

EJABBERD_YML = """\
# Written by tests/integration/peers.py: an ejabberd 23.01 upstream for xedge tests.
hosts:
  - {domain}
loglevel: {log_level}
log_rotate_count: 0
hide_sensitive_log_data: false
registration_timeout: infinity
auth_method: internal
# Offered otherwise (plaintext): DIGEST-MD5 breaks clients that pick it, X-OAUTH2 is
# not for passwords.  Left: PLAIN, SCRAM-SHA-1/-256/-512 (no -PLUS without TLS).
disable_sasl_mechanisms: ["digest-md5", "x-oauth2"]
listen:
  # Plaintext c2s (no certificate configured: no STARTTLS offered at all).
  - port: {c2s_port}
    ip: "127.0.0.1"
    backlog: 1024                 # the default is 5
    module: ejabberd_c2s
    starttls_required: false
    max_stanza_size: 1048576
    shaper: none
    access: c2s
  # The same, behind a PROXY protocol (v1 or v2) sender: the session records the
  # address from the header.  A connection without a header is closed at once, with
  # "Proxy protocol parsing failed: protocol error" in error.log.
  - port: {proxy_port}
    ip: "127.0.0.1"
    backlog: 1024
    module: ejabberd_c2s
    use_proxy_protocol: true
    starttls_required: false
    max_stanza_size: 1048576
    shaper: none
    access: c2s
  # ejabberd's HTTP API (mod_http_api), loopback only: registering users and
  # reading sessions in milliseconds, where each ejabberdctl call boots an Erlang VM.
  - port: {api_port}
    ip: "127.0.0.1"
    backlog: 1024
    module: ejabberd_http
    request_handlers:
      /api: mod_http_api
{extra_listen}
acl:
  local:
    user_regexp: ""
  loopback:
    ip:
      - 127.0.0.0/8
access_rules:
  local:
    allow: local
  c2s:
    deny: blocked
    allow: all
  register:
    allow: all
api_permissions:
  "console commands":
    from:
      - ejabberd_ctl
    who: all
    what: "*"
  "loopback http api":
    from:
      - mod_http_api
    who:
      ip: 127.0.0.0/8
    what: "*"
shaper_rules:
  max_user_sessions: 100
  max_user_offline_messages: 5000
  c2s_shaper: none
modules:
  mod_disco: {{}}
  mod_roster: {{}}
  mod_ping: {{}}
  mod_private: {{}}
  mod_vcard: {{}}
  mod_offline: {{}}
  mod_carboncopy: {{}}
  mod_blocking: {{}}
  mod_privacy: {{}}
  mod_version:
    show_os: false
  mod_http_api: {{}}
  mod_admin_extra: {{}}       # connected_users_info, user_sessions_info
{extra_modules}
"""

EJABBERDCTL_CFG = """\
# Sourced by ejabberdctl (--ctl-config): replaces /etc/ejabberd/ejabberdctl.cfg and
# thereby the system's /etc/default/ejabberd settings.
ERLANG_NODE={node}
INET_DIST_INTERFACE=127.0.0.1
ERL_DIST_PORT={dist_port}        # fixed distribution port: -start_epmd false, no epmd
ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"
EJABBERD_PID_PATH={dir}/ejabberd.pid
# ejabberdctl runs erl as its child (no exec): this wrapper makes the Erlang VM die
# with ejabberdctl, which dies with the test runner (PR_SET_PDEATHSIG), so no VM is
# left behind when the runner is killed.
ERL={dir}/erl
"""

EJABBERD_ERL = """\
#!/bin/sh
exec setpriv --pdeathsig KILL /usr/bin/erl "$@"
"""

# Resolve only from this file: no query ever reaches the machine's resolver.
EJABBERD_INETRC = """\
{lookup, [file]}.
{host, {127,0,0,1}, ["localhost"]}.
{resolv_conf, ""}.
{hosts_file, ""}.
"""


class Ejabberd:
    """Debian's ejabberd (23.01) in the foreground as the ejabberd user (no su, no
    epmd), in its own directory under /tmp, with two plaintext c2s listeners:
    c2s_port (plain) and proxy_port (use_proxy_protocol: true).

    Attributes: domain, c2s_port, proxy_port, dir, users, procs.
    """

    name = "ejabberd"
    RUN_AS = "ejabberd"

    def __init__(self, users=None, domain=DOMAIN, log_level="info", extra_listen="",
                 extra_modules=""):
        """extra_listen / extra_modules: YAML appended to listen: / modules: (indented
        by two spaces, as the items above)."""
        # The ejabberd user must reach the directory: pytest's tmp dirs are 0700 root.
        self.dir = Path(tempfile.mkdtemp(prefix="xej", dir="/tmp"))
        os.chmod(self.dir, 0o755)
        self.domain = domain
        self.users = dict(USERS if users is None else users)
        self.c2s_port = free_port()
        self.proxy_port = free_port()
        self.dist_port = free_port()
        self.api_port = free_port()
        self.node = f"xedgetest{self.dist_port}@localhost"
        self.config = self.dir / "ejabberd.yml"
        self.ctl_config = self.dir / "ejabberdctl.cfg"
        (self.dir / "logs").mkdir()
        (self.dir / "spool").mkdir()
        self.log = self.dir / "logs" / "ejabberd.log"
        self.console = self.dir / "logs" / "console.log"
        self.procs = [PeerLog("ejabberd", self.log), PeerLog("ejabberd console", self.console),
                      PeerLog("ejabberd errors", self.dir / "logs" / "error.log")]
        self.config.write_text(EJABBERD_YML.format(
            domain=domain, log_level=log_level, c2s_port=self.c2s_port,
            proxy_port=self.proxy_port, api_port=self.api_port, extra_listen=extra_listen,
            extra_modules=extra_modules))
        self.ctl_config.write_text(EJABBERDCTL_CFG.format(node=self.node, dist_port=self.dist_port,
                                                          dir=self.dir))
        (self.dir / "inetrc").write_text(EJABBERD_INETRC)
        (self.dir / "erl").write_text(EJABBERD_ERL)
        os.chmod(self.dir / "erl", 0o755)
        pw = pwd.getpwnam(self.RUN_AS)
        self._uid, self._gid = pw.pw_uid, pw.pw_gid
        for root, dirs, files in os.walk(self.dir):
            for n in [root] + [os.path.join(root, x) for x in dirs + files]:
                os.chown(n, self._uid, self._gid)
        self.p = None

    def jid(self, user):
        return user if "@" in user else f"{user}@{self.domain}"

    def _argv(self, *args):
        return ["/usr/sbin/ejabberdctl", "--config-dir", str(self.dir),
                "--ctl-config", str(self.ctl_config), "--config", str(self.config),
                "--spool", str(self.dir / "spool"), "--logs", str(self.dir / "logs"), *args]

    def _env(self):
        env = child_env()
        env["HOME"] = str(self.dir)          # the Erlang cookie lives here
        env.pop("ERL_FLAGS", None)
        return env

    def _as_user(self):
        return dict(user=self._uid, group=self._gid, extra_groups=[])

    def start(self, timeout=60.0):
        self._consolef = open(self.console, "wb")
        os.chown(self.console, self._uid, self._gid)
        self.p = subprocess.Popen(self._argv("foreground"), stdin=subprocess.DEVNULL,
                                  stdout=self._consolef, stderr=subprocess.STDOUT,
                                  cwd=str(self.dir), env=self._env(),
                                  preexec_fn=_die_with_parent, start_new_session=True,
                                  **self._as_user())
        # (Probe by /proc/net/tcp, not by connecting: an empty connection to the PROXY
        # listener logs an error.)
        _wait(f"ejabberd listening on 127.0.0.1:{self.c2s_port}, :{self.proxy_port} and "
              f"the API on :{self.api_port}",
              lambda: all(_listening(p) for p in (self.c2s_port, self.proxy_port, self.api_port)),
              timeout, self.p, self.procs)
        for user, pw in self.users.items():
            self.register(user, pw)
        return self

    def ctl(self, *args, check=True, timeout=30):
        """Run an ejabberdctl command against this node; CompletedProcess."""
        r = subprocess.run(self._argv(*args), capture_output=True, text=True, timeout=timeout,
                           env=self._env(), cwd=str(self.dir), stdin=subprocess.DEVNULL,
                           **self._as_user())
        if check and r.returncode != 0:
            raise AssertionError(f"ejabberdctl {' '.join(args)} exited {r.returncode}\n"
                                 f"stdout: {r.stdout}\nstderr: {r.stderr}\n" + self.log_tails(20))
        return r

    def api(self, command, timeout=10.0, **args):
        """Call an ejabberd command through mod_http_api (POST /api/COMMAND with JSON
        arguments); returns the decoded JSON result.  Same commands as ejabberdctl."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.api_port}/api/{command}",
                                     data=json.dumps(args).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                body = resp.read()
        except urllib.error.HTTPError as e:
            raise EjabberdApiError(command, e.code, e.read().decode(errors="replace")) from None
        return json.loads(body) if body else None

    def register(self, user, password):
        """Create (or reset the password of) an account; returns the bare JID."""
        try:
            self.api("register", user=user, host=self.domain, password=password)
        except EjabberdApiError as e:
            if e.status != 409 and "already registered" not in e.body:
                raise
            self.api("change_password", user=user, host=self.domain, newpass=password)
        self.users[user] = password
        return self.jid(user)

    def new_user(self, prefix="u"):
        """A fresh account nobody used before (no offline messages): (jid, password)."""
        user, pw = new_username(prefix), "pw-" + os.urandom(6).hex()
        return self.register(user, pw), pw

    SESSION_FIELDS = ("jid", "connection", "ip", "port", "priority", "node", "uptime",
                      "status", "resource", "statustext")

    def sessions(self):
        """Connected sessions (`ejabberdctl connected_users_info`) as dicts with keys
        jid (full), connection (c2s...), ip (as ejabberd prints it, IPv4 plain), port,
        priority, node, uptime, status, resource, statustext."""
        rows = self.api("connected_users_info")
        for row in rows:
            row["ip"] = _plain_ip(str(row.get("ip", "")))
        return rows

    def session_ip(self, jid, timeout=10.0):
        """The client address ejabberd recorded for the session of `jid` (a full JID,
        or a bare JID when it has a single session), waiting until the session shows."""
        found = []

        def look():
            found[:] = [s for s in self.sessions()
                        if s["jid"] == jid or s["jid"].split("/")[0] == jid]
            return bool(found)
        _wait(f"an ejabberd session of {jid}", look, timeout, None, self.procs)
        return found[0]["ip"]

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def log_mark(self):
        """The current end of the log: pass to wait_log(since=...) on a shared server."""
        return len(self.log_text())

    def wait_log(self, pattern, timeout=5.0, since=0):
        """Wait until a line of the log (after offset `since`) matches regex pattern;
        returns the matching lines."""
        rx = re.compile(pattern)
        hits = []

        def look():
            hits[:] = [l for l in self.log_text()[since:].splitlines() if rx.search(l)]
            return bool(hits)
        _wait(f"ejabberd log line matching {pattern!r}", look, timeout, None, self.procs)
        return hits

    def log_tails(self, lines=60):
        return "\n".join(f"--- {p.name} log ({p.log}) ---\n{tail(p.log, lines)}"
                         for p in self.procs)

    def stop(self, timeout=30.0, keep_dir=False):
        if self.p is None:
            return []
        problems = []
        if self.p.poll() is not None:
            problems.append(f"ejabberd had already exited (status {self.p.returncode})")
        else:
            try:
                # The API's stop is quicker than `ejabberdctl stop` (no Erlang VM to boot);
                # the reply may never come (the node is going down).
                try:
                    self.api("stop", timeout=5)
                except (OSError, AssertionError, ValueError):
                    pass
                try:
                    self.p.wait(timeout / 2)
                except subprocess.TimeoutExpired:
                    self.ctl("stop", check=False, timeout=timeout / 2)
                    self.p.wait(timeout / 2)
            except subprocess.TimeoutExpired:
                problems.append(f"ejabberd did not stop within {timeout:.0f} s")
            else:
                if self.p.returncode != 0:
                    problems.append(f"ejabberd exited with status {self.p.returncode}")
        if self.p.poll() is None or _group_alive(self.p.pid):
            _kill_group(self.p.pid)
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self._consolef.close()
        self.p = None
        if not keep_dir and not problems and not os.environ.get("XEDGE_KEEP_PEERS"):
            shutil.rmtree(self.dir, ignore_errors=True)
        return problems


class EjabberdApiError(AssertionError):
    def __init__(self, command, status, body):
        super().__init__(f"ejabberd API {command}: HTTP {status}: {body}")
        self.command, self.status, self.body = command, status, body


def _plain_ip(s):
    """'::ffff:127.0.0.55' -> '127.0.0.55'; anything else unchanged."""
    try:
        ip = ipaddress.ip_address(s)
    except ValueError:
        return s
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    return str(ip)


# ---- HAProxy -----------------------------------------------------------------------

HAPROXY_CFG = """\
# Written by tests/integration/peers.py
global
  maxconn 4096
  hard-stop-after 3s      # soft stop (SIGUSR1) waits for open connections at most this long
defaults
  mode tcp
  timeout connect 5s
  timeout client 120s
  timeout server 120s
frontend fe
  bind 127.0.0.1:{port}
  default_backend be
backend be
  server x 127.0.0.1:{backend_port}{proxy}
"""


class HAProxy:
    """Debian's haproxy in the foreground (-db), TCP mode: 127.0.0.1:port forwards
    to 127.0.0.1:backend_port with PROXY protocol `proxy` = "v2" (send-proxy-v2),
    "v1" (send-proxy) or None (no header)."""

    name = "haproxy"

    def __init__(self, workdir, backend_port, proxy="v2", port=None, extra_server=""):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.backend_port = backend_port
        self.proxy = proxy
        opt = {"v2": " send-proxy-v2", "v1": " send-proxy", None: ""}[proxy]
        self.config = self.dir / f"haproxy-{self.port}.cfg"
        self.config.write_text(HAPROXY_CFG.format(port=self.port, backend_port=backend_port,
                                                  proxy=opt + extra_server))
        self.log = self.dir / f"haproxy-{self.port}.log"
        self.procs = [PeerLog(f"haproxy :{self.port}", self.log)]
        self.p = None

    def start(self, timeout=10.0):
        r = subprocess.run(["haproxy", "-c", "-q", "-f", str(self.config)], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, f"haproxy config check: {r.stdout}{r.stderr}"
        self._logf = open(self.log, "wb")
        self.p = subprocess.Popen(["haproxy", "-f", str(self.config), "-db"],
                                  stdin=subprocess.DEVNULL, stdout=self._logf,
                                  stderr=subprocess.STDOUT, cwd=str(self.dir), env=child_env(),
                                  preexec_fn=_die_with_parent, start_new_session=True)
        # (Probing the frontend makes one connection to the backend: harmless for
        # servers, but a capturing backend sees it; ProxyCapture ignores empty ones.)
        _wait(f"haproxy listening on 127.0.0.1:{self.port}", lambda: _listening(self.port),
              timeout, self.p, self.procs)
        return self

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def stop(self):
        if self.p is None:
            return []
        # SIGUSR1 is haproxy's soft stop: it exits 0 once the connections are gone (or
        # after hard-stop-after); SIGTERM would end it by the signal.
        problems = _stop_popen(self.p, "haproxy", sig=signal.SIGUSR1)
        self._logf.close()
        self.p = None
        return problems


def _listening(port):
    """Is something listening on 127.0.0.1:port?  Reads /proc/net/tcp instead of
    connecting (a probe connection through a proxy would reach its backend)."""
    want = f"0100007F:{port:04X}"
    try:
        with open("/proc/net/tcp") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 3 and parts[1] == want and parts[3] == "0A":
                    return True
    except OSError:
        return port_accepts(port)
    return False


# ---- PROXY protocol ----------------------------------------------------------------

PROXY_V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2_header(src="127.0.0.55", dst="127.0.0.1", sport=40000, dport=5222,
                    command="PROXY", tlvs=b""):
    """A PROXY protocol v2 header (TCP over IPv4 or IPv6, or LOCAL)."""
    ver_cmd = 0x21 if command == "PROXY" else 0x20
    if command != "PROXY":
        return PROXY_V2_SIG + struct.pack("!BBH", ver_cmd, 0x00, len(tlvs)) + tlvs
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if s.version == 4:
        fam, addr = 0x11, s.packed + d.packed + struct.pack("!HH", sport, dport)
    else:
        fam, addr = 0x21, s.packed + d.packed + struct.pack("!HH", sport, dport)
    body = addr + tlvs
    return PROXY_V2_SIG + struct.pack("!BBH", ver_cmd, fam, len(body)) + body


def proxy_v1_header(src="127.0.0.55", dst="127.0.0.1", sport=40000, dport=5222):
    fam = "TCP4" if ipaddress.ip_address(src).version == 4 else "TCP6"
    return f"PROXY {fam} {src} {dst} {sport} {dport}\r\n".encode()


class ProxyHeaderIncomplete(ValueError):
    pass


def parse_proxy_header(data):
    """Parse a PROXY v1/v2 header at the start of data.  Returns a dict: version (1|2),
    command ('PROXY'|'LOCAL'), family ('TCP4'|'TCP6'|'UNSPEC'...), src, dst, sport,
    dport, tlvs {type: bytes} (v2), length (header bytes), rest (bytes after it).
    Raises ProxyHeaderIncomplete when more bytes are needed, ValueError when invalid."""
    if data.startswith(PROXY_V2_SIG[:len(data)]) and len(data) < 16:
        raise ProxyHeaderIncomplete("v2 header incomplete")
    if data.startswith(PROXY_V2_SIG):
        ver_cmd, fam, ln = struct.unpack("!BBH", data[12:16])
        if ver_cmd >> 4 != 2:
            raise ValueError(f"PROXY v2: version {ver_cmd >> 4}")
        if len(data) < 16 + ln:
            raise ProxyHeaderIncomplete("v2 body incomplete")
        body = data[16:16 + ln]
        r = {"version": 2, "command": {0: "LOCAL", 1: "PROXY"}.get(ver_cmd & 0xF, "?"),
             "family": {0x11: "TCP4", 0x12: "UDP4", 0x21: "TCP6", 0x22: "UDP6",
                        0x31: "UNIX", 0x00: "UNSPEC"}.get(fam, hex(fam)),
             "src": None, "dst": None, "sport": None, "dport": None, "tlvs": {},
             "length": 16 + ln, "rest": data[16 + ln:]}
        off = 0
        if fam in (0x11, 0x12):
            r["src"] = str(ipaddress.IPv4Address(body[0:4]))
            r["dst"] = str(ipaddress.IPv4Address(body[4:8]))
            r["sport"], r["dport"] = struct.unpack("!HH", body[8:12])
            off = 12
        elif fam in (0x21, 0x22):
            r["src"] = str(ipaddress.IPv6Address(body[0:16]))
            r["dst"] = str(ipaddress.IPv6Address(body[16:32]))
            r["sport"], r["dport"] = struct.unpack("!HH", body[32:36])
            off = 36
        elif fam == 0x31:
            off = 216
        while off + 3 <= len(body):
            t, tl = body[off], struct.unpack("!H", body[off + 1:off + 3])[0]
            r["tlvs"][t] = body[off + 3:off + 3 + tl]
            off += 3 + tl
        return r
    if data.startswith(b"PROXY "[:len(data)]) or data.startswith(b"PROXY "):
        end = data.find(b"\r\n")
        if end < 0:
            if len(data) >= 107:
                raise ValueError("PROXY v1 line longer than 107 bytes")
            raise ProxyHeaderIncomplete("v1 line incomplete")
        parts = data[:end].decode("ascii").split(" ")
        r = {"version": 1, "command": "PROXY", "family": parts[1], "src": None, "dst": None,
             "sport": None, "dport": None, "tlvs": {}, "length": end + 2,
             "rest": data[end + 2:]}
        if parts[1] in ("TCP4", "TCP6"):
            if len(parts) != 6:
                raise ValueError(f"PROXY v1: {data[:end]!r}")
            r.update(src=parts[2], dst=parts[3], sport=int(parts[4]), dport=int(parts[5]))
        return r
    raise ValueError(f"no PROXY header: {data[:32]!r}")


class ProxyCapture:
    """A TCP server on 127.0.0.1 that records what each connection sends first (the
    PROXY header, parsed) and then echoes every later byte back (echo=True), or just
    collects them (echo=False: h["data"] grows, nothing is answered).  For checking
    what a proxy (HAProxy, or xedge toward its upstream) puts in front of a stream.

        with ProxyCapture() as cap:
            ... connect something to cap.port ...
            h = cap.wait_header()     # dict from parse_proxy_header, plus 'peer':
                                      # (ip, port) of the socket, 'data': bytearray of
                                      # everything after the header
    """

    def __init__(self, echo=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.echo = echo
        self.headers = []        # parsed headers, in arrival order
        self.errors = []         # (peer, error, first bytes) for connections with a bad header
        self.cond = threading.Condition()
        self.closing = False
        self.threads = []
        self.conns = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)

    def _accept(self):
        while not self.closing:
            try:
                c, peer = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            t = threading.Thread(target=self._serve, args=(c, peer), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, c, peer):
        buf = b""
        c.settimeout(30)
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    if buf:
                        self._record_error(peer, "closed inside the header", buf)
                    return
                buf += data
                try:
                    h = parse_proxy_header(buf)
                except ProxyHeaderIncomplete:
                    continue
                except ValueError as e:
                    self._record_error(peer, str(e), buf)
                    return
                h["peer"] = peer
                h["data"] = bytearray(h["rest"])
                with self.cond:
                    self.headers.append(h)
                    self.cond.notify_all()
                break
            if self.echo and h["rest"]:
                c.sendall(h["rest"])
            while True:
                data = c.recv(65536)
                if not data:
                    return
                with self.cond:
                    h["data"] += data
                    self.cond.notify_all()
                if self.echo:
                    c.sendall(data)
        except OSError:
            return
        finally:
            c.close()

    def _record_error(self, peer, err, data):
        with self.cond:
            self.errors.append((peer, err, data[:64]))
            self.cond.notify_all()

    def wait_header(self, n=1, timeout=5.0):
        """The n-th header received (1-based), waiting up to timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.headers) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"ProxyCapture :{self.port}: {len(self.headers)} "
                                         f"header(s) within {timeout} s, wanted {n}; "
                                         f"bad connections: {self.errors}")
                self.cond.wait(left)
            return self.headers[n - 1]

    def close(self):
        self.closing = True
        try:
            self.sock.close()
        except OSError:
            pass
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


# ---- plaintext login (no STARTTLS) with rawxmpp --------------------------------------

def plain_login(port, user, password, domain=DOMAIN, resource=None, mech="PLAIN",
                source=None, proxy_header=b"", timeout=10.0, presence=True):
    """A rawxmpp.Raw connection to a plaintext c2s port (an upstream server's, not
    xedge's), logged in without TLS: optional PROXY header bytes first, then stream,
    SASL, restart, bind (and initial presence).  Returns the Raw (raw.jid is set)."""
    from rawxmpp import FEATURES, NS_BIND, NS_SASL, Raw, dump, q
    r = Raw(port, timeout=timeout, source=source)
    try:
        if proxy_header:
            r.send(proxy_header)
        feats = r.open_stream(domain)
        mechs = [m.text for m in feats.iter(q(NS_SASL, "mechanism"))]
        assert mech in mechs, f"{mech} not offered: {dump(feats)}"
        el = r.auth(user, password, mech)
        assert el.tag == q(NS_SASL, "success"), f"auth failed: {dump(el)}"
        feats = r.open_stream(domain)
        assert feats.tag == FEATURES and feats.find(q(NS_BIND, "bind")) is not None, dump(feats)
        r.bind(resource)
        if presence:
            r.send("<presence/>")
        return r
    except BaseException:
        r.close()
        raise


# ---- slixmpp over plaintext -----------------------------------------------------------

def slix_plain_client(jid, password, mech=None):
    """A slixclient.Client that talks plaintext: no STARTTLS required and PLAIN allowed
    without TLS.  Log in with: await c.login_plain(port)."""
    from slixclient import Client
    c = Client(jid, password, mech=mech)
    # xep_0030 etc. are registered by Client; feature_mechanisms is always there.
    c["feature_mechanisms"].unencrypted_plain = True
    c["feature_mechanisms"].unencrypted_scram = True
    return c


async def slix_login_plain(client, port, timeout=15.0, host="127.0.0.1"):
    """Connect a slixmpp client to a plaintext port without STARTTLS and wait for the
    session."""
    client.connect((host, port), use_ssl=False, force_starttls=False, disable_starttls=True)
    await asyncio.wait_for(asyncio.shield(client.ready), timeout)
    return client


# ---- xmpp.js ------------------------------------------------------------------------

class XmppJsResult(dict):
    """The parsed `XMPPJS_RESULT {...}` line plus 'returncode', 'output'."""


class XmppJs:
    """Runs tests/integration/xmppjs/client.mjs (xmpp.js @xmpp/client 0.14) with node.

        r = xmppjs.run("ws://127.0.0.1:P/xmpp-websocket", "alice", pw,
                       to="bob@localhost", body="hi", expect_body="re: hi")
        assert r["ok"], r["error"]

    start() gives an XmppJsProc to run several clients at once (wait_ready(), result()).
    """

    SCRIPT = XMPPJS_DIR / "client.mjs"

    def __init__(self, workdir, domain=DOMAIN, ca_file=None):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.domain = domain
        self.ca_file = ca_file
        self.n = 0
        self.procs = []
        self.node = shutil.which("node")
        if self.node is None:
            pytest.fail("node is missing: make test-deps", pytrace=False)
        if not (XMPPJS_DIR / "node_modules" / "@xmpp" / "client").is_dir():
            pytest.fail(f"{XMPPJS_DIR}/node_modules is missing: make test-deps "
                        "(npm ci --prefix tests/integration/xmppjs)", pytrace=False)

    def argv(self, service, user, password, *, domain=None, resource=None, mech=None, to=None,
             body=None, expect_body=None, expect_any=False, echo=False, timeout=15.0,
             builtin_ws=False):
        a = [self.node]
        if builtin_ws:
            a.append("--experimental-websocket")
        a += [str(self.SCRIPT), "--service", service, "--domain", domain or self.domain,
              "--user", user, "--password", password, "--timeout", str(timeout)]
        for flag, v in (("--resource", resource), ("--mech", mech), ("--to", to),
                        ("--body", body), ("--expect-body", expect_body)):
            if v is not None:
                a += [flag, v]
        if expect_any:
            a.append("--expect-any")
        if echo:
            a.append("--echo")
        if builtin_ws:
            a.append("--builtin-ws")
        return a

    def env(self, ca_file=None):
        env = child_env()
        ca = ca_file or self.ca_file
        if ca:
            env["NODE_EXTRA_CA_CERTS"] = str(ca)     # the test's self-signed certificate
        else:
            env.pop("NODE_EXTRA_CA_CERTS", None)
        env.pop("NODE_OPTIONS", None)
        return env

    def start(self, service, user, password, ca_file=None, **kw):
        self.n += 1
        log = self.dir / f"xmppjs-{self.n}-{user}.log"
        p = XmppJsProc(self.argv(service, user, password, **kw), self.env(ca_file), log,
                       f"xmppjs {user} #{self.n}", float(kw.get("timeout", 15.0)))
        self.procs.append(p)
        return p

    def run(self, service, user, password, ca_file=None, **kw):
        """Run one client to the end; returns its XmppJsResult (never raises on a
        client failure: check r['ok'] / r['error'])."""
        return self.start(service, user, password, ca_file, **kw).result()

    def stop(self):
        for p in self.procs:
            p.kill()
        return []


class XmppJsProc:
    def __init__(self, argv, env, log, name, timeout):
        self.name, self.log, self.timeout = name, Path(log), timeout
        self._logf = open(self.log, "wb")
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._logf,
                                  stderr=subprocess.STDOUT, env=env, cwd=str(XMPPJS_DIR),
                                  preexec_fn=_die_with_parent)

    def output(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def wait_ready(self, timeout=15.0):
        """Wait for the XMPPJS_READY line (logged in, presence sent); returns the JID."""
        rx = re.compile(r"^XMPPJS_READY (\S+)", re.M)
        _wait(f"{self.name} online", lambda: rx.search(self.output()), timeout, self.p,
              [PeerLog(self.name, self.log)])
        return rx.search(self.output()).group(1)

    def result(self, timeout=None):
        """Wait for the exit (the script's own timeout plus a margin) and parse the
        XMPPJS_RESULT line."""
        try:
            self.p.wait(timeout or self.timeout + 10)
        except subprocess.TimeoutExpired:
            self.kill()
            out = self.output()
            return XmppJsResult(ok=False, error=f"{self.name}: still running after its timeout",
                                returncode=None, output=out)
        self._logf.close()
        out = self.output()
        m = None
        for line in out.splitlines():
            if line.startswith("XMPPJS_RESULT "):
                m = line[len("XMPPJS_RESULT "):]
        r = XmppJsResult(json.loads(m) if m else {"ok": False, "error": "no XMPPJS_RESULT line"})
        r["returncode"], r["output"] = self.p.returncode, out
        if r.get("ok") and self.p.returncode != 0:
            r["ok"] = False
            r["error"] = f"exit status {self.p.returncode}"
        return r

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if not self._logf.closed:
            self._logf.close()


# ---- fixtures -------------------------------------------------------------------------

@pytest.fixture
def prosody(request, tmp_path):
    """A running Prosody (fresh per test) with alice, bob, carol (conftest.USERS).
    Options (indirect parametrization, dict): Prosody() keywords, e.g. websocket=True;
    tls=True means conftest's `cert` (STARTTLS offered, and wss:// with websocket)."""
    opts = _param(request)
    if opts.get("tls") is True:                 # the suite's self-signed localhost cert
        opts["tls"] = request.getfixturevalue("cert")
    p = Prosody(tmp_path / "prosody", **opts)
    _attach(request, p)
    try:
        p.start()
    except BaseException:
        p.stop()
        raise
    yield p
    problems = p.stop()
    if problems:
        pytest.fail("prosody shutdown:\n  " + "\n  ".join(problems) + "\n" + p.log_tails(),
                    pytrace=False)


@pytest.fixture(scope="module")
def prosody_module(request, tmp_path_factory):
    """One Prosody for the whole module (saves ~1.4 s a test: its shutdown takes ~1 s).
    Options: the module's PROSODY_OPTIONS dict.  Use it through `prosody_shared`."""
    p = Prosody(tmp_path_factory.mktemp("prosody"), **getattr(request.module,
                                                            "PROSODY_OPTIONS", {}))
    try:
        p.start()
    except BaseException:
        print(p.log_tails())
        p.stop()
        raise
    yield p
    problems = p.stop()
    if problems:
        pytest.fail("prosody shutdown:\n  " + "\n  ".join(problems) + "\n" + p.log_tails(),
                    pytrace=False)


@pytest.fixture
def prosody_shared(request, prosody_module):
    """The module's Prosody, checked alive, logs attached to this test's report.
    Shared: use prosody_shared.new_user() for clean accounts."""
    assert prosody_module.alive(), "prosody died in an earlier test\n" + prosody_module.log_tails()
    _attach(request, prosody_module)
    return prosody_module


@pytest.fixture(scope="module")
def ejabberd_module(request):
    """One ejabberd for the whole module (start takes seconds), users from conftest.USERS.
    Options: the module's EJABBERD_OPTIONS dict (Ejabberd() keywords)."""
    e = Ejabberd(**getattr(request.module, "EJABBERD_OPTIONS", {}))
    try:
        e.start()
    except BaseException:
        print(e.log_tails())
        e.stop(keep_dir=True)
        raise
    yield e
    problems = e.stop()
    if problems:
        pytest.fail("ejabberd shutdown:\n  " + "\n  ".join(problems) + "\n" + e.log_tails(),
                    pytrace=False)


@pytest.fixture
def ejabberd(request, ejabberd_module):
    """The module's ejabberd, checked alive, with its logs attached to this test's
    report on failure.  It is shared: use ejabberd.new_user() for clean accounts."""
    assert ejabberd_module.alive(), "ejabberd died in an earlier test\n" + \
        ejabberd_module.log_tails()
    _attach(request, ejabberd_module)
    return ejabberd_module


@pytest.fixture
def haproxy(request, tmp_path):
    """A factory: haproxy(backend_port, proxy="v2"|"v1"|None) -> started HAProxy
    (attribute .port is the frontend).  All are stopped at teardown."""
    started = []

    def make(backend_port, proxy="v2", **kw):
        h = HAProxy(tmp_path / "haproxy", backend_port, proxy, **kw)
        started.append(h)
        _attach(request, h)
        return h.start()
    yield make
    problems = []
    for h in started:
        problems += h.stop()
    if problems:
        pytest.fail("haproxy shutdown:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def xmppjs(request, tmp_path):
    """An XmppJs runner (logs in tmp_path/xmppjs, attached to the report on failure)."""
    x = XmppJs(tmp_path / "xmppjs")

    class Logs:                  # the report hook reads .procs lazily, at failure time
        @property
        def procs(self):
            return [PeerLog(p.name, p.log) for p in x.procs]
    _attach(request, Logs())
    yield x
    x.stop()


@pytest.fixture(params=["prosody", "ejabberd"])
def upstream(request):
    """Each test that uses it runs twice: against a fresh Prosody and against the
    module's ejabberd.  Common API: domain, c2s_port, proxy_port (None for Prosody),
    jid(user), users, register(user, pw), new_user(), alive(), log_tails()."""
    return request.getfixturevalue(request.param)
