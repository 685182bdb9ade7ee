"""systemd integration: sd_notify datagrams (READY, STATUS, WATCHDOG, STOPPING) from xedge
and xedge-sm, `make install` into a DESTDIR, man pages that render without warnings, and
unit files that `systemd-analyze verify` accepts."""
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO, Server, ServerOptions, port_accepts

PROGRAMS = ("xedge", "xedge-sm", "xedgectl", "xedge-bench")
UNITS = ("xedge.service", "xedge-sm.service")


class NotifyListener:
    """A bound unix datagram socket standing in for systemd's $NOTIFY_SOCKET; every
    datagram is kept with its arrival time, and `on_ready` runs when READY=1 arrives."""

    def __init__(self, name: str, on_ready=None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + name[1:] if name.startswith("@") else name)
        self.sock.settimeout(0.2)
        self.name = name
        self.on_ready = on_ready
        self.msgs = []            # (monotonic time, {key: value})
        self.ready_probe = None   # what on_ready returned
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            kv = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            if kv.get("READY") == "1" and self.on_ready:
                self.ready_probe = self.on_ready()
            self.msgs.append((time.monotonic(), kv))

    def times(self, key, value=None):
        return [t for t, kv in list(self.msgs) if key in kv and (value is None or kv[key] == value)]

    def wait(self, what, cond, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.05)
        pytest.fail(f"no {what} on {self.name} within {timeout:.0f} s; got {self.msgs}")

    def close(self):
        self._stop = True
        self._t.join(2)
        self.sock.close()


def _server(request, tmp_path, sockdir, cert, **kw):
    srv = Server(ServerOptions(**kw), tmp_path, sockdir, cert)
    request.node._xedge_servers = getattr(request.node, "_xedge_servers", []) + [srv]
    return srv


@pytest.mark.parametrize("kind", ["path", "abstract"])
def test_xedge_notifies_systemd(request, tmp_path, sockdir, cert, kind):
    name = str(sockdir / "notify.sock") if kind == "path" else f"@xedge-test-notify-{os.getpid()}"
    srv = _server(request, tmp_path, sockdir, cert,
                  env={"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "1000000"})
    n = NotifyListener(name, on_ready=lambda: (port_accepts(srv.c2s_port), port_accepts(srv.tls_port)))
    try:
        srv.start()
        n.wait("READY=1", lambda: n.times("READY", "1"))
        assert n.ready_probe == (True, True), "READY=1 came before both listeners accepted"
        ready = [kv for _, kv in n.msgs if kv.get("READY") == "1"][0]
        assert ready.get("MAINPID") == str(srv.edge.p.pid)
        n.wait("STATUS= line with a connection count",
               lambda: any("connections" in kv.get("STATUS", "") for _, kv in n.msgs))
        # WATCHDOG_USEC=1 s: a ping every 0.5 s.  Watch 3 s and allow a wide margin.
        n.wait("WATCHDOG=1", lambda: n.times("WATCHDOG", "1"))
        start = time.monotonic()
        time.sleep(3.0)
        pings = [t for t in n.times("WATCHDOG", "1") if start <= t < start + 3.0]
        assert 3 <= len(pings) <= 9, f"{len(pings)} WATCHDOG=1 in 3 s (expected ~6)"
        assert len(n.times("READY", "1")) == 1
        assert not n.times("STOPPING")
        # SIGHUP: RELOADING=1 (with MONOTONIC_USEC, as systemd 253 wants), then READY=1.
        srv.edge.p.send_signal(signal.SIGHUP)
        n.wait("READY=1 after RELOADING=1", lambda: len(n.times("READY", "1")) == 2)
        reloading = [kv for _, kv in n.msgs if kv.get("RELOADING") == "1"]
        assert len(reloading) == 1 and reloading[0].get("MONOTONIC_USEC", "").isdigit(), n.msgs
        assert n.times("RELOADING", "1")[0] < n.times("READY", "1")[1]
        srv.edge.terminate()
        n.wait("STOPPING=1", lambda: n.times("STOPPING", "1"))
        assert srv.edge.p.wait(10) == 0
    finally:
        problems = srv.stop()
        n.close()
    assert not problems, problems


def test_xedge_without_watchdog_sends_no_pings(request, tmp_path, sockdir, cert):
    name = str(sockdir / "notify.sock")
    srv = _server(request, tmp_path, sockdir, cert, env={"NOTIFY_SOCKET": name})
    n = NotifyListener(name)
    try:
        srv.start()
        n.wait("READY=1", lambda: n.times("READY", "1"))
        time.sleep(1.5)
        assert not n.times("WATCHDOG"), "WATCHDOG=1 sent although WATCHDOG_USEC is unset"
    finally:
        problems = srv.stop()
        n.close()
    assert not problems, problems


def test_xedge_sm_notifies_systemd(request, tmp_path, sockdir, cert):
    name = f"@xedge-test-sm-notify-{os.getpid()}"
    srv = _server(request, tmp_path, sockdir, cert, mode="external",
                  sm_env={"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "1000000"})
    n = NotifyListener(name, on_ready=lambda: port_accepts(srv.sm_port))
    try:
        srv.start()
        n.wait("READY=1", lambda: n.times("READY", "1"))
        assert n.ready_probe is True, "xedge-sm sent READY=1 before its listener accepted"
        sm = next(p for p in srv.procs if p.name == "xedge-sm")
        ready = [kv for _, kv in n.msgs if kv.get("READY") == "1"][0]
        assert ready.get("MAINPID") == str(sm.p.pid)
        n.wait("STATUS= line with the session count",
               lambda: any("sessions" in kv.get("STATUS", "") for _, kv in n.msgs))
        n.wait("WATCHDOG=1", lambda: n.times("WATCHDOG", "1"))
        start = time.monotonic()
        time.sleep(3.0)
        pings = [t for t in n.times("WATCHDOG", "1") if start <= t < start + 3.0]
        assert 3 <= len(pings) <= 9, f"{len(pings)} WATCHDOG=1 in 3 s (expected ~6)"
        sm.terminate()
        n.wait("STOPPING=1", lambda: n.times("STOPPING", "1"))
    finally:
        problems = srv.stop()
        n.close()
    # The edge logs the lost link; only the processes' exit status and sanitizers matter.
    assert not [p for p in problems if "xedge-sm" in p], problems


# ---- make install ---------------------------------------------------------------

def _make_install(destdir, prefix="/usr"):
    r = subprocess.run(["make", "-s", "install", f"DESTDIR={destdir}", f"PREFIX={prefix}"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


def test_make_install_places_every_file(tmp_path):
    dest = tmp_path / "root"
    _make_install(dest)
    for p in PROGRAMS:
        f = dest / "usr/bin" / p
        assert f.is_file() and os.access(f, os.X_OK), f"{f} missing or not executable"
    for u in UNITS:
        assert (dest / "lib/systemd/system" / u).is_file()
    for p in PROGRAMS:
        assert (dest / "usr/share/man/man1" / f"{p}.1").is_file()
    shipped = sorted(f.name for f in (REPO / "bench/scenarios").glob("*.yaml"))
    assert sorted(f.name for f in (dest / "usr/share/xedge/scenarios").iterdir()) == shipped
    conf = dest / "etc/xedge/xedge.yaml"
    assert conf.read_text() == (REPO / "deploy/xedge.yaml").read_text()
    # A second install keeps the operator's configuration.
    conf.write_text("# mine\n")
    _make_install(dest)
    assert conf.read_text() == "# mine\n"


def test_make_install_default_prefix(tmp_path):
    dest = tmp_path / "root"
    _make_install(dest, prefix="/usr/local")
    assert (dest / "usr/local/bin/xedge").is_file()
    assert (dest / "usr/local/lib/systemd/system/xedge.service").is_file()
    assert (dest / "usr/local/share/man/man1/xedgectl.1").is_file()
    assert (dest / "etc/xedge/xedge.yaml").is_file()
    unit = (dest / "usr/local/lib/systemd/system/xedge.service").read_text()
    assert "ExecStart=/usr/local/bin/xedge " in unit


def test_example_config_is_valid(tmp_path):
    """deploy/xedge.yaml passes --check-config once its certificate files exist."""
    from conftest import binary, make_cert
    crt, key = make_cert(tmp_path)
    text = (REPO / "deploy/xedge.yaml").read_text()
    text = text.replace("/etc/xedge/cert.pem", str(crt)).replace("/etc/xedge/key.pem", str(key))
    text = text.replace("/var/lib/xedge/", str(tmp_path) + "/")
    cfg = tmp_path / "xedge.yaml"
    cfg.write_text(text)
    r = subprocess.run([str(binary("xedge")), "--check-config", str(cfg)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


# ---- man pages and units ----------------------------------------------------------

@pytest.mark.parametrize("prog", PROGRAMS)
def test_man_page_renders_without_warnings(prog):
    if not shutil.which("groff"):
        pytest.skip("groff is not installed")
    r = subprocess.run(["groff", "-man", "-ww", "-z", str(REPO / "deploy/man" / f"{prog}.1")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def _install_for_verify(tmp_path):
    """Installed with PREFIX inside tmp_path and no DESTDIR, so that the units' ExecStart=
    names binaries that exist where `systemd-analyze verify` looks for them."""
    prefix = tmp_path / "prefix"
    r = subprocess.run(["make", "-s", "install", f"PREFIX={prefix}", f"SYSCONFDIR={prefix}/etc/xedge"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return [str(prefix / "lib/systemd/system" / u) for u in UNITS]


def test_units_verify(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    units = _install_for_verify(tmp_path)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", *units],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0 and "sysinit.target" in r.stderr:
        pytest.skip(f"systemd-analyze verify cannot run here: {r.stderr.strip()}")
    assert r.returncode == 0 and r.stderr == "", r.stderr


@pytest.mark.parametrize("unit", UNITS)
def test_units_are_hardened(tmp_path, unit):
    """`systemd-analyze security` (offline) rates each unit's exposure 'OK' (below 2.0 of 10)."""
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    path = next(u for u in _install_for_verify(tmp_path) if u.endswith("/" + unit))
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", path],
                       capture_output=True, text=True, timeout=120)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
    if not m:
        pytest.skip(f"systemd-analyze security --offline cannot run here: {r.stderr.strip()}")
    assert float(m.group(1)) < 2.0, r.stdout
    text = Path(path).read_text()
    for line in ("Type=notify", "CapabilityBoundingSet=\n", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                 "io_uring_setup io_uring_enter io_uring_register", "LimitNOFILE=20000",
                 "Restart=on-failure"):
        assert line in text, f"{unit} lacks {line!r}"
