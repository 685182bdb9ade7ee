"""Federation test harness: a private network namespace per test module, with its
own DNS server, a test CA, and real XMPP servers (Prosody 0.12, ejabberd 23.01)
federating inside it.

What it guarantees
  - Nothing touches the machine's network, mounts or resolver.  A holder process
    made by `unshare --net --mount --propagation private --fork` owns a network
    namespace (only `lo`, brought up) and a mount namespace in which
    /etc/resolv.conf is bind-mounted to `nameserver 127.0.0.1`.  Every process of
    the harness is started inside with `nsenter -t HOLDER -n -m`, in its own
    process group, dying with the test runner (PR_SET_PDEATHSIG); teardown stops
    them, then kills whatever is left in the namespace, then the holder — also
    when a test failed.
  - Each test domain has its own loopback address inside (lo answers for all of
    127.0.0.0/8), so every server uses the standard ports, 5222 and 5269:
        xedge.example 127.0.0.2   prosody.example 127.0.0.3
        ejabberd.example 127.0.0.4   xedge2.example 127.0.0.5
    (.example is reserved, RFC 2606: never a real domain.)
  - dnsmasq on 127.0.0.1:53 inside answers only from its records: A and
    `_xmpp-server._tcp.D SRV 0 5 5269 D` for every test domain, plus what the test
    asks for; unknown names under .example are NXDOMAIN; nothing is forwarded.
  - Certificates (FedPKI, made once per session with openssl): a test CA; per
    domain a leaf signed by it (SAN DNS:D and the SRV-ID otherName
    _xmpp-server.D, RFC 6125/7712) and a separate self-signed leaf.
  - Two modes for the servers: "verified" (CA-signed certificates, the CA is
    trusted, unauthenticated peers refused: SASL EXTERNAL) and "selfsigned" (each
    presents its self-signed certificate; peers fall back to dialback, XEP-0220).

Fixtures (import them into the test module):

    from fedns import fed_pki, fedns_module, fedns, fed_module, fed  # noqa: F401

  fed_pki        session  FedPKI
  fedns_module   module   FedNS: namespace + dnsmasq, no XMPP server.  Extra DNS
                          records: the module's FEDNS_RECORDS (dict, see below) or
                          indirect parametrization {"records": {...}}.
  fedns          function the module's FedNS, checked alive, its logs attached to
                          the test's report when it fails.
  fed_module     module   parametrized by mode ("verified", "selfsigned"): Prosody
                          on prosody.example and ejabberd on ejabberd.example
                          running in the module's namespace (stopped when the mode
                          changes).  Attributes: ns, mode, prosody, ejabberd.
  fed            function the same, checked alive, logs attached on failure.

Example (what tests/integration/test_fedns.py does):

    from fedns import fed_module, fed, fed_pki, fedns_module, login  # noqa: F401
    from slixclient import Client, close_all, run

    def test_chat(fed):
        a_jid, a_pw = fed.prosody.new_user()
        b_jid, b_pw = fed.ejabberd.new_user()
        async def scenario():
            a, b = Client(a_jid, a_pw), Client(b_jid, b_pw)
            try:
                await login(a, fed.prosody)
                await login(b, fed.ejabberd)
                a.send_message(mto=b_jid, mbody="hi", mtype="chat")
                await b.next_message(timeout=30, body="hi")
            finally:
                await close_all(a, b)
        with fed.ns.enter():        # this thread's sockets are made in the namespace
            run(scenario(), timeout=90)

Servers: ns.prosody(domain, mode, pki) / ns.ejabberd(domain, mode, pki) start one
(FedProsody / FedEjabberd; any domain of DOMAINS, several may share a namespace).
Each has domain, addr, mode, cert, dir, config, log; register(user, pw) and
new_user() (prosodyctl / ejabberdctl, inside the namespace); start(), stop(),
restart(); log_lines(rx), wait_log(rx), log_mark(); s2s_auth(remote) and
wait_s2s_auth(remote): how each s2s stream with `remote` was authenticated, read
from the log ({"in": [...], "out": [...]} of "EXTERNAL" / "dialback").

Adding a server (the lead's xedge): write its config with ns.addr("xedge.example")
and fed_pki.cert("xedge.example", mode) (.crt, .key; in verified mode
`tls.ca_file: fed_pki.ca`), then
    p = ns.popen([xedge, "-c", cfg], "xedge", log=path, ok_codes=(0,))
    ns.wait_listening("127.0.0.2", 5269, p)
ns.popen() processes are stopped at teardown (or by ns.stop(p), which returns the
problems: no exit within the deadline, an exit status outside ok_codes); their
logs go with a failing test's report (ns.extra_logs takes more PeerLogs).

Traps: Prosody 0.12 dials out from 127.0.0.1 (it has no outgoing source address
option), ejabberd from its own address.  After a failed outgoing connection
ejabberd bounces stanzas to that domain for up to s2s_max_retry_delay (5 s here).
Prosody delivers a subscription approval and roster pushes only to resources that
requested the roster (RFC 6121 "interested resources"): fetch it first.

DNS records: {name: [record, ...]} where a record is ("A", "127.0.0.9"),
("AAAA", "::1"), ("SRV", target, port[, priority[, weight]]), ("SRV", ".") (the
service is decidedly not available, RFC 2782), ("CNAME", target), ("TXT", text); a
single record may stand for a one-element list; None removes a name's default
records.  Examples:
    {"_xmpps-server._tcp.xedge.example": [("SRV", "xedge.example", 5270)],  # Direct TLS
     "odd.example": [("A", "127.0.0.2")],
     "_xmpp-server._tcp.odd.example": ("SRV", "odd.example", 15269),         # other port
     "nosrv.example": ("A", "127.0.0.2"),                                    # A fallback
     "_xmpp-server._tcp.xedge2.example": None}                              # no SRV
Names without records under .example (e.g. gone.example) answer NXDOMAIN.
ns.dns_records(records) changes them later (dnsmasq is restarted with the new set;
it caches nothing: local records have TTL 0), ns.dns_query(name, "SRV") asks it.

In-process clients: `with ns.enter():` switches the calling thread's network
namespace (setns(CLONE_NEWNET)) and back; sockets keep the namespace they were
made in.  Only the network namespace changes: name lookups made by this process
(getaddrinfo) still read the machine's /etc/resolv.conf, whose server is not
reachable from inside — connect to addresses (ns.addr(domain)), as login() does.
"""
import contextlib
import ctypes
import os
import pwd
import random
import re
import select
import shutil
import signal
import socket
import string
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import _die_with_parent, tail

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "fed"

DOMAINS = {
    "xedge.example": "127.0.0.2",
    "prosody.example": "127.0.0.3",
    "ejabberd.example": "127.0.0.4",
    "xedge2.example": "127.0.0.5",
}
MODES = ("verified", "selfsigned")
C2S_PORT, S2S_PORT = 5222, 5269
START_TIMEOUT = 90.0        # ejabberd boots an Erlang VM: slow on a loaded 2-core machine
STOP_TIMEOUT = 20.0
CTL_TIMEOUT = 60.0
CLONE_NEWNET = 0x40000000
KEEP = bool(os.environ.get("XEDGE_KEEP_PEERS"))     # keep the work directories

_libc = ctypes.CDLL(None, use_errno=True)


def _render(template: str, **values) -> str:
    return string.Template((TEMPLATES / template).read_text()).substitute(values)


class PeerLog:
    """What conftest's report hook needs: a name and a log path."""

    def __init__(self, name, log):
        self.name, self.log = name, Path(log)


def _wait(what, cond, timeout, procs=(), logs=()):
    """Poll cond() until true.  Fails with the log tails when the deadline passes or
    when one of procs (Popen) exits."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return
        dead = [p for p in procs if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            why = (f"the process exited with status {dead[0].returncode}" if dead
                   else f"not within {timeout:.0f} s")
            raise AssertionError(f"waiting for {what}: {why}\n" + "\n".join(
                f"--- {p.name} ({p.log}) ---\n{tail(p.log, 40)}" for p in logs))
        time.sleep(0.05)


def _need_tools(*tools):
    missing = [t for t in tools if shutil.which(t) is None
               and not os.access(t, os.X_OK)]
    if missing:
        pytest.fail(f"federation tests need {', '.join(missing)}: "
                    "deploy/debian-deps.sh test", pytrace=False)


# ---- certificates --------------------------------------------------------------------

@dataclass
class Cert:
    crt: Path       # the certificate (PEM)
    key: Path       # its private key (PEM, unencrypted)
    pem: Path       # both in one file (ejabberd's certfiles)


OPENSSL_CNF = """\
# Written by tests/integration/fedns.py: extensions of the federation test certificates.
[req]
distinguished_name = dn
prompt = no
[dn]
CN = {cn}
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyAgreement
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
subjectAltName = @san
[san]
{san}
"""


class FedPKI:
    """A test CA and certificates for the federation tests, made with openssl in a
    directory readable by the servers' users (EC P-256: quick to make).

    ca: the CA certificate (PEM) — `tls.ca_file` for a verifying server.
    cert(domain, mode): the Cert a server of `domain` presents in that mode
    ("verified": signed by the CA; "selfsigned": its own, self-signed).
    issue(name, dns, srv, selfsigned): any other certificate a test needs."""

    def __init__(self, workdir: Path):
        self.dir = Path(workdir)
        os.chmod(self.dir, 0o755)
        self.ca_key = self.dir / "ca.key"
        self.ca = self.dir / "ca.pem"
        self._serial = random.Random().randrange(1 << 40, 1 << 48)
        self._cache = {}
        self._openssl("req", "-x509", "-new", "-newkey", "ec", "-pkeyopt",
                      "ec_paramgen_curve:prime256v1", "-nodes", "-days", "7",
                      "-keyout", self.ca_key, "-out", self.ca,
                      "-config", self._cnf("ca", "xedge federation test CA", []),
                      "-extensions", "ca")

    def _openssl(self, *args):
        r = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise AssertionError(f"openssl {' '.join(map(str, args))}: {r.stderr}")
        return r.stdout

    def _cnf(self, name, cn, san_lines):
        p = self.dir / f"{name}.cnf"
        p.write_text(OPENSSL_CNF.format(cn=cn, san="\n".join(san_lines) or "DNS.1 = " + cn))
        return p

    def issue(self, name, dns=None, srv=None, selfsigned=False) -> Cert:
        """A new leaf certificate in files named after `name`: SAN DNS names `dns`
        (default [name]) and SRV-IDs (otherName 1.3.6.1.5.5.7.8.7, IA5String
        "_xmpp-server.<domain>") for the domains in `srv` (default: the DNS names);
        signed by the CA, or self-signed."""
        dns = [name] if dns is None else list(dns)
        srv = dns if srv is None else list(srv)
        san = [f"DNS.{i} = {d}" for i, d in enumerate(dns, 1)]
        san += [f"otherName.{i} = 1.3.6.1.5.5.7.8.7;IA5STRING:_xmpp-server.{d}"
                for i, d in enumerate(srv, 1)]
        base = self.dir / (name + (".self" if selfsigned else ""))
        crt, key = Path(f"{base}.crt"), Path(f"{base}.key")
        cnf = self._cnf(base.name, dns[0] if dns else name, san)
        self._serial += 1
        if selfsigned:
            self._openssl("req", "-x509", "-new", "-newkey", "ec", "-pkeyopt",
                          "ec_paramgen_curve:prime256v1", "-nodes", "-days", "7",
                          "-set_serial", self._serial, "-keyout", key, "-out", crt,
                          "-config", cnf, "-extensions", "leaf")
        else:
            csr = Path(f"{base}.csr")
            self._openssl("req", "-new", "-newkey", "ec", "-pkeyopt",
                          "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                          "-out", csr, "-config", cnf)
            self._openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                          "-set_serial", self._serial, "-days", "7", "-extfile", cnf,
                          "-extensions", "leaf", "-out", crt)
        pem = Path(f"{base}.pem")
        pem.write_text(crt.read_text() + key.read_text())
        for p in (crt, key, pem):
            os.chmod(p, 0o644)          # test keys: the ejabberd user must read them
        return Cert(crt, key, pem)

    def cert(self, domain, mode="verified") -> Cert:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: one of {MODES}")
        k = (domain, mode)
        if k not in self._cache:
            self._cache[k] = self.issue(domain, selfsigned=(mode == "selfsigned"))
        return self._cache[k]

    def close(self):
        if not KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)


# ---- DNS -------------------------------------------------------------------------------

QTYPES = {"A": 1, "CNAME": 5, "TXT": 16, "AAAA": 28, "SRV": 33}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def default_records(domains=DOMAINS) -> dict:
    recs = {}
    for d, ip in domains.items():
        recs[d] = [("A", ip)]
        recs[f"_xmpp-server._tcp.{d}"] = [("SRV", d, S2S_PORT, 0, 5)]
    return recs


def _norm_records(records: dict) -> dict:
    out = {}
    for name, recs in (records or {}).items():
        name = name.rstrip(".").lower()
        if not re.fullmatch(r"[a-z0-9_][a-z0-9_.-]*", name):
            raise ValueError(f"DNS name {name!r}")
        if recs is None:
            out[name] = None
            continue
        if isinstance(recs, tuple):
            recs = [recs]
        norm = []
        for r in recs:
            kind = r[0].upper()
            if kind not in QTYPES:
                raise ValueError(f"record type {r[0]!r}: one of {sorted(QTYPES)}")
            if kind == "SRV" and r[1] != ".":
                target, port = r[1], int(r[2])
                prio = int(r[3]) if len(r) > 3 else 0
                weight = int(r[4]) if len(r) > 4 else 5
                norm.append(("SRV", target, port, prio, weight))
            else:
                norm.append((kind, *r[1:]))
        out[name] = norm
    return out


def _dnsmasq_lines(records: dict) -> str:
    lines = []
    for name, recs in sorted(records.items()):
        for r in recs or ():
            kind = r[0]
            if kind in ("A", "AAAA"):
                lines.append(f"host-record={name},{r[1]}")
            elif kind == "SRV" and r[1] == ".":
                lines.append(f"srv-host={name}")
            elif kind == "SRV":
                _, target, port, prio, weight = r
                lines.append(f"srv-host={name},{target},{port},{prio},{weight}")
            elif kind == "CNAME":
                lines.append(f"cname={name},{r[1]}")
            elif kind == "TXT":
                text = str(r[1]).replace('"', '')
                lines.append(f'txt-record={name},"{text}"')
    return "\n".join(lines)


def _dns_name(buf, off):
    labels, jumped, end = [], False, None
    for _ in range(128):
        n = buf[off]
        if n & 0xC0 == 0xC0:
            if not jumped:
                end = off + 2
            off = ((n & 0x3F) << 8) | buf[off + 1]
            jumped = True
            continue
        off += 1
        if n == 0:
            break
        labels.append(buf[off:off + n].decode("ascii", "replace"))
        off += n
    return ".".join(labels), (end if jumped else off)


def dns_query(name, qtype="A", server=("127.0.0.1", 53), timeout=5.0):
    """One UDP DNS query from this thread (call it inside ns.enter()).  Returns
    (rcode name, answers): A/AAAA -> address, CNAME -> name, TXT -> text,
    SRV -> (priority, weight, port, target)."""
    qid = random.randrange(1 << 16)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
    q += struct.pack(">HH", QTYPES[qtype], 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q, server)
        while True:
            buf, _ = s.recvfrom(4096)
            if len(buf) >= 12 and struct.unpack(">H", buf[:2])[0] == qid:
                break
    _, flags, qd, an, _, _ = struct.unpack(">HHHHHH", buf[:12])
    off = 12
    for _ in range(qd):
        _, off = _dns_name(buf, off)
        off += 4
    answers = []
    for _ in range(an):
        _, off = _dns_name(buf, off)
        rtype, _, _, rdlen = struct.unpack(">HHIH", buf[off:off + 10])
        off += 10
        rd = buf[off:off + rdlen]
        if rtype == 1:
            answers.append(socket.inet_ntop(socket.AF_INET, rd))
        elif rtype == 28:
            answers.append(socket.inet_ntop(socket.AF_INET6, rd))
        elif rtype == 5:
            answers.append(_dns_name(buf, off)[0])
        elif rtype == 16:
            answers.append(rd[1:1 + rd[0]].decode(errors="replace"))
        elif rtype == 33:
            prio, weight, port = struct.unpack(">HHH", rd[:6])
            answers.append((prio, weight, port, _dns_name(buf, off + 6)[0]))
        off += rdlen
    return RCODES.get(flags & 0xF, str(flags & 0xF)), answers


# ---- the namespace ---------------------------------------------------------------------

HOLDER_SCRIPT = """\
set -e
ip link set lo up
mount --bind "$1" /etc/resolv.conf
echo ready
exec sleep infinity
"""


class NsProc:
    """A process started inside the namespace (its own process group)."""

    def __init__(self, name, popen, log, ok_codes):
        self.name, self.p, self.log = name, popen, Path(log) if log else None
        self.ok_codes = tuple(ok_codes)     # exit statuses after SIGTERM that are clean
        self.stopped = False

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None


class FedNS:
    """A private network + mount namespace with dnsmasq, and what runs in it.

    addr(domain)            the domain's loopback address inside
    enter()                 context manager: this thread's sockets are made inside
    popen(argv, name, ...)  start a process inside (nsenter), stopped at teardown
    run(argv, ...)          run a command inside to its end (CompletedProcess)
    stop(proc)              SIGTERM its process group, wait, SIGKILL at the deadline
    listening(addr, port)   a TCP listener exists inside (from /proc, no connection)
    wait_listening(addr, port, proc=None)
    dns_records(records=None, reset=False), dns_query(name, qtype)
    prosody(...), ejabberd(...)   start a server of that kind (see FedProsody, FedEjabberd)
    procs                   PeerLogs of everything started (for the report hook)
    """

    def __init__(self, records=None, domains=None):
        _need_tools("unshare", "nsenter", "ip", "mount", "dnsmasq", "setpriv")
        self.domains = dict(DOMAINS if domains is None else domains)
        self.dir = Path(tempfile.mkdtemp(prefix="xfedns", dir="/tmp"))
        os.chmod(self.dir, 0o755)
        self.procs_started = []     # NsProc
        self.servers = []
        self.extra_logs = []
        self.holder = None
        self.pid = self.netns = None
        self._netns_fd = None
        self._dnsmasq = None
        self._base_records = default_records(self.domains)
        self._extra = {}
        self.closed = False
        try:
            self._start_holder()
            self.dns_records(records or {})
        except BaseException:
            self.close()
            raise

    # -- the holder --

    def _start_holder(self):
        resolv = self.dir / "resolv.conf"
        resolv.write_text("# the federation namespace's resolver (tests/integration/fedns.py)\n"
                          "nameserver 127.0.0.1\noptions timeout:2 attempts:3\n")
        os.chmod(resolv, 0o644)
        self.holder_log = self.dir / "holder.log"
        argv = ["unshare", "--net", "--mount", "--propagation", "private", "--fork",
                "--kill-child", "sh", "-c", HOLDER_SCRIPT, "fedns-holder", str(resolv)]
        with open(self.holder_log, "wb") as errf:
            self.holder = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                           stdout=subprocess.PIPE, stderr=errf,
                                           preexec_fn=_die_with_parent,
                                           start_new_session=True)
        deadline = time.monotonic() + 30
        out = b""
        while b"ready\n" not in out:
            left = deadline - time.monotonic()
            if left <= 0:
                self._holder_failed("no 'ready' within 30 s")
            r, _, _ = select.select([self.holder.stdout], [], [], min(left, 0.5))
            if r:
                chunk = os.read(self.holder.stdout.fileno(), 256)
                if not chunk:
                    self._holder_failed("it exited")
                out += chunk
            elif self.holder.poll() is not None:
                self._holder_failed("it exited")
        self.holder.stdout.close()
        # unshare itself entered the new namespaces before it forked the holder shell.
        self.pid = self.holder.pid
        self.netns = os.readlink(f"/proc/{self.pid}/ns/net")
        self.mntns = os.readlink(f"/proc/{self.pid}/ns/mnt")
        if self.netns == os.readlink("/proc/self/ns/net"):
            raise AssertionError("the holder is in the runner's own network namespace")
        self._netns_fd = os.open(f"/proc/{self.pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)

    def _holder_failed(self, why):
        _killpg(self.holder.pid)
        try:
            self.holder.wait(5)
        except subprocess.TimeoutExpired:
            pass
        err = self.holder_log.read_text(errors="replace").strip()
        if "unshare" in err and "Operation not permitted" in err:
            pytest.skip("the kernel forbids network/mount namespaces here (unshare: EPERM), "
                        f"and the federation tests need them: {err}")
        raise AssertionError(f"the namespace holder did not come up ({why}, status "
                             f"{self.holder.returncode}): {err}")

    def alive(self):
        return not self.closed and self.holder is not None and self.holder.poll() is None

    def addr(self, domain):
        return self.domains[domain]

    # -- the calling thread inside --

    @contextlib.contextmanager
    def enter(self):
        """Switch this thread's network namespace to the test namespace (setns with
        CLONE_NEWNET) for the block; back to the previous one after, even on error.
        Nests.  Sockets made inside keep their namespace after the block."""
        prev = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if _libc.setns(self._netns_fd, CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                raise OSError(e, f"setns(CLONE_NEWNET) into the test namespace: "
                                 f"{os.strerror(e)}")
            try:
                yield self
            finally:
                if _libc.setns(prev, CLONE_NEWNET) != 0:
                    e = ctypes.get_errno()
                    # Left inside, this thread would run the rest of the suite in the
                    # namespace: stop the run rather than go on there.
                    os.write(2, f"fedns: cannot setns back: {os.strerror(e)}\n".encode())
                    os._exit(70)
        finally:
            os.close(prev)

    def inside(self):
        """Is the calling thread in the test namespace now?"""
        return os.readlink("/proc/thread-self/ns/net") == self.netns

    # -- processes --

    def _argv(self, argv, user=None):
        argv = [str(a) for a in argv]
        if user is not None:
            # setpriv sets the parent-death signal after the uid change (a change of
            # credentials clears it).
            argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups",
                    "--pdeathsig=KILL", "--", *argv]
        return ["nsenter", "-t", str(self.pid), "-n", "-m", "--", *argv]

    def popen(self, argv, name, log=None, user=None, env=None, cwd=None,
              ok_codes=(0, -signal.SIGTERM)) -> NsProc:
        """Start argv inside the namespace (as `user` if given, else root), stdout and
        stderr to `log` (default <dir>/<name>.out), in its own process group, dying
        with the test runner.  Stopped at teardown; ns.stop(proc) stops it before.
        ok_codes: the exit statuses after SIGTERM that are not a problem (a server
        that must exit cleanly: (0,))."""
        assert self.alive(), "the namespace holder is gone"
        log = Path(log) if log else self.dir / f"{name}.out"
        with open(log, "ab") as logf:
            if user is not None:
                pw = pwd.getpwnam(user)
                os.chown(log, pw.pw_uid, pw.pw_gid)
            p = subprocess.Popen(self._argv(argv, user), stdin=subprocess.DEVNULL,
                                 stdout=logf, stderr=subprocess.STDOUT,
                                 env=env if env is not None else _env(),
                                 cwd=str(cwd or self.dir), preexec_fn=_die_with_parent,
                                 start_new_session=True)
        proc = NsProc(name, p, log, ok_codes)
        self.procs_started.append(proc)
        return proc

    def run(self, argv, user=None, env=None, cwd=None, timeout=CTL_TIMEOUT, check=True,
            input=None) -> subprocess.CompletedProcess:
        """Run argv inside the namespace to its end; AssertionError when it fails
        (check) or exceeds timeout."""
        argv = self._argv(argv, user)
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                               env=env if env is not None else _env(), cwd=str(cwd or self.dir),
                               input=input, stdin=None if input is not None else subprocess.DEVNULL,
                               preexec_fn=_die_with_parent, start_new_session=True)
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f"{' '.join(argv)}: still running after {timeout:.0f} s\n"
                                 f"stdout: {e.stdout}\nstderr: {e.stderr}") from None
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {r.returncode}\n"
                                 f"stdout: {r.stdout}\nstderr: {r.stderr}")
        return r

    def stop(self, proc: NsProc, sig=signal.SIGTERM, timeout=STOP_TIMEOUT, pid=None) -> list:
        """Signal the process group of proc (or only `pid`, when given), wait up to
        timeout, then SIGKILL the group.  Returns problems (empty: exited 0)."""
        problems = []
        if proc.stopped:
            return problems
        proc.stopped = True
        p = proc.p
        if p.poll() is not None:
            problems.append(f"{proc.name} had already exited (status {p.returncode})")
        else:
            try:
                if pid is not None:
                    os.kill(pid, sig)
                else:
                    os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                problems.append(f"{proc.name} did not exit within {timeout:.0f} s of "
                                f"{signal.Signals(sig).name}")
            if p.returncode is not None and p.returncode not in proc.ok_codes \
                    and not problems:
                problems.append(f"{proc.name} exited with status {p.returncode}")
        _killpg(p.pid)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            problems.append(f"{proc.name} survived SIGKILL")
        return problems

    # -- listeners --

    def listening(self, addr, port) -> bool:
        """Is there a TCP listener on addr:port (or 0.0.0.0:port) inside?  Read from
        /proc/HOLDER/net/tcp: no probe connection (which servers would log)."""
        want = {f"{_hexip(addr)}:{port:04X}", f"00000000:{port:04X}"}
        try:
            with open(f"/proc/{self.pid}/net/tcp") as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A" and parts[1] in want:
                        return True
        except OSError:
            return False
        return False

    def wait_listening(self, addr, port, proc=None, timeout=START_TIMEOUT, logs=()):
        _wait(f"a listener on {addr}:{port} in the namespace",
              lambda: self.listening(addr, port), timeout,
              [proc.p] if proc is not None else [],
              list(logs) or ([PeerLog(proc.name, proc.log)] if proc is not None else []))

    # -- DNS --

    def dns_records(self, records=None, reset=False) -> dict:
        """The records dnsmasq serves ({name: [record, ...]}).  With `records`:
        merged over the current ones (a name given replaces that name's records,
        None removes them), dnsmasq restarted with them, and the call returns when
        it answers.  reset=True: start again from the defaults."""
        if records is None and not reset and self._dnsmasq is not None:
            return self._effective()
        if reset:
            self._extra = {}
        self._extra.update(_norm_records(records))
        self._restart_dnsmasq()
        return self._effective()

    def _effective(self):
        recs = {k: list(v) for k, v in self._base_records.items()}
        for name, v in self._extra.items():
            if v is None:
                recs.pop(name, None)
            else:
                recs[name] = list(v)
        return recs

    def _restart_dnsmasq(self):
        if self._dnsmasq is not None:
            problems = self.stop(self._dnsmasq)
            if problems:
                raise AssertionError("dnsmasq: " + "; ".join(problems))
        d = self.dir / "dns"
        d.mkdir(exist_ok=True)
        conf = d / "dnsmasq.conf"
        self.dns_log = d / "dnsmasq.log"
        conf.write_text(_render("dnsmasq.conf.in", log=self.dns_log, pid=d / "dnsmasq.pid",
                                records=_dnsmasq_lines(self._effective())))
        self._dnsmasq = self.popen(["dnsmasq", f"--conf-file={conf}", "--keep-in-foreground"],
                                   "dnsmasq", log=d / "dnsmasq.out")
        probe = next(iter(self._effective()))

        def answers():
            try:
                with self.enter():
                    return dns_query(probe, "A", timeout=0.5)[0] in ("NOERROR", "NXDOMAIN")
            except OSError:
                return False
        _wait("dnsmasq answering on 127.0.0.1:53 in the namespace", answers, START_TIMEOUT,
              [self._dnsmasq.p], [PeerLog("dnsmasq", self._dnsmasq.log),
                                  PeerLog("dnsmasq queries", self.dns_log)])

    def dns_query(self, name, qtype="A", timeout=5.0):
        """Ask the namespace's dnsmasq: (rcode, answers), see dns_query()."""
        with self.enter():
            return dns_query(name, qtype, timeout=timeout)

    # -- servers --

    def prosody(self, domain="prosody.example", mode="verified", pki=None, **kw):
        s = FedProsody(self, domain, mode, pki, **kw)
        self.servers.append(s)
        return s.start()

    def ejabberd(self, domain="ejabberd.example", mode="verified", pki=None, **kw):
        s = FedEjabberd(self, domain, mode, pki, **kw)
        self.servers.append(s)
        return s.start()

    @property
    def procs(self):
        """PeerLogs of the namespace and everything in it (conftest's report hook)."""
        logs = [PeerLog("fedns holder", self.holder_log)]
        if self._dnsmasq is not None:
            logs.append(PeerLog("dnsmasq queries", self.dns_log))
        for s in self.servers:
            logs += s.procs
        # Other live processes (stopped ones are done with), not twice.
        seen = {str(x.log) for x in logs}
        for p in self.procs_started:
            if p.log and not p.stopped and p is not self._dnsmasq and str(p.log) not in seen:
                logs.append(PeerLog(p.name, p.log))
        return logs + self.extra_logs

    def log_tails(self, lines=40):
        return "\n".join(f"--- {p.name} ({p.log}) ---\n{tail(p.log, lines)}" for p in self.procs)

    # -- teardown --

    def _members(self):
        """Pids of every process in the namespace but the holder (unshare) itself."""
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) in (os.getpid(), self.pid):
                continue
            try:
                if os.readlink(f"/proc/{d}/ns/net") == self.netns:
                    pids.append(int(d))
            except OSError:
                pass
        return pids

    def close(self) -> list:
        """Stop the servers, every process started, whatever else is left inside, and
        the holder.  Returns the problems seen (unclean exits)."""
        if self.closed:
            return []
        self.closed = True
        problems = []
        for s in reversed(self.servers):
            try:
                problems += s.stop()
            except Exception as e:          # noqa: BLE001 -- teardown goes on
                problems.append(f"{s.name}: stop: {e!r}")
        for p in reversed(self.procs_started):
            if not p.stopped:
                ps = self.stop(p)
                if p is not self._dnsmasq:
                    problems += ps
        if self.holder is not None and self.netns is not None:
            for _ in range(3):              # strays: daemonized children, ctl VMs
                left = self._members()
                if not left:
                    break
                for pid in left:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.1)
        if self.holder is not None:
            _killpg(self.holder.pid)
            try:
                self.holder.wait(10)
            except subprocess.TimeoutExpired:
                problems.append("the namespace holder survived SIGKILL")
        if self._netns_fd is not None:
            os.close(self._netns_fd)
            self._netns_fd = None
        if not KEEP and not problems:
            shutil.rmtree(self.dir, ignore_errors=True)
        return problems


def _hexip(addr):
    return "%08X" % struct.unpack("<I", socket.inet_aton(addr))[0]


def _killpg(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("XEDGE_", "ERL_", "NODE_", "ASAN_", "UBSAN_"))}
    env["LANG"] = env.get("LANG", "C.UTF-8")
    return env


def new_username(prefix="u"):
    return f"{prefix}{os.getpid()}x{os.urandom(4).hex()}"


# ---- servers ---------------------------------------------------------------------------

class _Server:
    """What FedProsody and FedEjabberd share: identity, users, logs."""

    name = "server"

    def __init__(self, ns: FedNS, domain, mode, pki):
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: one of {MODES}")
        if pki is None:
            raise ValueError("pki: the session's FedPKI (fixture fed_pki)")
        self.ns, self.domain, self.mode, self.pki = ns, domain, mode, pki
        self.addr = ns.addr(domain)
        self.c2s_port, self.s2s_port = C2S_PORT, S2S_PORT
        self.cert = pki.cert(domain, mode)
        self.users = {}
        self.proc = None
        # A directory (config, data, logs) of its own, also when an earlier server of
        # the same domain ran in this namespace (another mode): its log is not ours.
        self.dir = ns.dir / f"{domain}-{mode}"
        n = 1
        while self.dir.exists():
            n += 1
            self.dir = ns.dir / f"{domain}-{mode}-{n}"

    def jid(self, user):
        return user if "@" in user else f"{user}@{self.domain}"

    def new_user(self, prefix="u"):
        """A fresh account (no history): (bare JID, password)."""
        user, pw = new_username(prefix), "pw-" + os.urandom(6).hex()
        return self.register(user, pw), pw

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def log_mark(self):
        """The current end of the log: wait_log(since=...) reads after it."""
        return len(self.log_text())

    def log_lines(self, pattern, since=0):
        rx = re.compile(pattern)
        return [l for l in self.log_text()[since:].splitlines() if rx.search(l)]

    def wait_log(self, pattern, timeout=30.0, since=0):
        """Wait until a line of the log (after offset since) matches regex pattern;
        returns the matching lines."""
        hits = []

        def look():
            hits[:] = self.log_lines(pattern, since)
            return bool(hits)
        _wait(f"{self.name} log line matching {pattern!r}", look, timeout, [], self.procs)
        return hits

    def log_tails(self, lines=60):
        return "\n".join(f"--- {p.name} ({p.log}) ---\n{tail(p.log, lines)}" for p in self.procs)

    def wait_s2s_auth(self, remote, directions=("in", "out"), timeout=60.0, since=0) -> dict:
        """Wait until s2s_auth(remote) — the subclass's reading of its log — has an
        entry in each direction; returns it."""
        got = {}

        def look():
            got.update(self.s2s_auth(remote, since))
            return all(got[d] for d in directions)
        _wait(f"{self.name} {self.domain}: s2s authentication with {remote} "
              f"({', '.join(directions)}) in its log", look, timeout, [], self.procs)
        return got

    def restart(self):
        problems = self.stop()
        if problems:
            raise AssertionError(f"{self.name} restart: " + "; ".join(problems))
        return self.start()


class FedProsody(_Server):
    """Prosody 0.12 inside the namespace, as root, foreground, data in its own
    directory; s2s_secure_auth and the CA (cafile) in "verified" mode, dialback in
    "selfsigned" mode.  log: debug-level prosody.log (the auth lines are debug)."""

    name = "prosody"

    def __init__(self, ns, domain, mode, pki, log_level="debug", extra_config="",
                 modules=()):
        super().__init__(ns, domain, mode, pki)
        _need_tools("prosody", "prosodyctl")
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        (self.dir / "certs").mkdir(exist_ok=True)
        self.config = self.dir / "prosody.cfg.lua"
        self.log = self.dir / "prosody.log"
        self.console = self.dir / "console.log"
        verified = mode == "verified"
        mods = list(modules) + ([] if verified else ["dialback"])
        self.config.write_text(_render(
            "prosody.cfg.lua.in", dir=self.dir, log=self.log, log_level=log_level,
            addr=self.addr, domain=domain, mode=mode,
            secure_auth="true" if verified else "false",
            crt=self.cert.crt, key=self.cert.key,
            cafile_line=f'  cafile = "{pki.ca}";' if verified else "",
            modules="".join(f' "{m}";' for m in mods),
            # Verified: no dialback at all, so authentication can only be SASL EXTERNAL.
            modules_disabled='"s2s_bidi"; "dialback";' if verified else '"s2s_bidi";',
            extra=extra_config))

    @property
    def procs(self):
        return [PeerLog(f"prosody {self.domain}", self.log),
                PeerLog(f"prosody {self.domain} console", self.console)]

    def start(self, timeout=START_TIMEOUT):
        self.proc = self.ns.popen(["prosody", "-F", "--config", self.config],
                                  f"prosody-{self.domain}", log=self.console, cwd=self.dir,
                                  ok_codes=(0,))
        for port in (self.c2s_port, self.s2s_port):
            self.ns.wait_listening(self.addr, port, self.proc, timeout, self.procs)
        for user, pw in self.users.items():
            self.register(user, pw)
        return self

    def prosodyctl(self, *args, check=True):
        return self.ns.run(["prosodyctl", "--config", self.config, *args], check=check,
                           cwd=self.dir)

    def register(self, user, password):
        """Create (or reset) an account with prosodyctl; returns the bare JID."""
        self.prosodyctl("register", user, self.domain, password)
        self.users[user] = password
        return self.jid(user)

    def s2s_auth(self, remote, since=0) -> dict:
        """How the s2s streams with domain `remote` were authenticated, from this
        server's log (after offset since): {"in": [...], "out": [...]}, each a list of
        "EXTERNAL" (SASL EXTERNAL, RFC 6120 6.4 with XEP-0178) or "dialback"
        (XEP-0220), one entry per successful authentication, in log order.  "out":
        streams this server opened to remote; "in": streams remote opened to it."""
        # The lines (debug level; mod_saslauth, mod_dialback and the stanza trace of
        # mod_s2s in Prosody 0.12):
        #   out EXTERNAL  "SASL EXTERNAL with R succeeded"
        #   out dialback  "Received[s2sout_unauthed]: <result ... type='valid' from='R'"
        #                 (R's answer to our dialback key)
        #   in EXTERNAL   "Accepting SASL EXTERNAL identity from R"
        #   in dialback   "Sending[s2sin]: <db:result ... type='valid' ... to='R'>"
        #                 (we accept R's dialback key)
        r = re.escape(remote)
        rules = (
            ("out", "EXTERNAL", rf"\tSASL EXTERNAL with {r} succeeded$"),
            ("out", "dialback", rf"Received\[s2sout_unauthed\]: <result (?=[^>]*"
                                rf"xmlns='jabber:server:dialback')(?=[^>]*type='valid')"
                                rf"(?=[^>]*from='{r}')"),
            ("in", "EXTERNAL", rf"\tAccepting SASL EXTERNAL identity from {r}$"),
            ("in", "dialback", rf"Sending\[s2sin\]: <db:result (?=[^>]*type='valid')"
                               rf"(?=[^>]*to='{r}')"),
        )
        out = {"in": [], "out": []}
        for line in self.log_text()[since:].splitlines():
            for direction, method, rx in rules:
                if re.search(rx, line):
                    out[direction].append(method)
        return out

    def stop(self):
        if self.proc is None or self.proc.stopped:
            return []
        return self.ns.stop(self.proc)


EJABBERD_ERL = """\
#!/bin/sh
exec setpriv --pdeathsig KILL /usr/bin/erl "$@"
"""


class FedEjabberd(_Server):
    """ejabberd 23.01 inside the namespace, as the ejabberd user, foreground, no epmd
    (fixed Erlang distribution port on the namespace's 127.0.0.1), its directory
    under the namespace's.  "verified": s2s_cafile = the test CA and no
    mod_s2s_dialback (SASL EXTERNAL only); "selfsigned": mod_s2s_dialback.
    log: ejabberd.log (info: "Accepted inbound/outbound s2s <mech> authentication")."""

    name = "ejabberd"
    RUN_AS = "ejabberd"

    def __init__(self, ns, domain, mode, pki, log_level="info", extra_listen="",
                 extra_modules="", extra_config=""):
        super().__init__(ns, domain, mode, pki)
        _need_tools("/usr/sbin/ejabberdctl", "/usr/bin/erl")
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        (self.dir / "spool").mkdir(exist_ok=True)
        # One node per address: several ejabberds can share a namespace.
        octet = int(self.addr.rsplit(".", 1)[1])
        self.dist_port = 25000 + octet
        self.node = f"fed{octet}@localhost"
        self.config = self.dir / "ejabberd.yml"
        self.ctl_config = self.dir / "ejabberdctl.cfg"
        self.log = self.dir / "logs" / "ejabberd.log"
        self.console = self.dir / "logs" / "console.log"
        verified = mode == "verified"
        self.config.write_text(_render(
            "ejabberd.yml.in", domain=domain, addr=self.addr, mode=mode, log_level=log_level,
            pem=self.cert.pem,
            # ca_file as well: ejabberd checks its own certificate chain against it.
            cafile_line=f's2s_cafile: "{pki.ca}"\nca_file: "{pki.ca}"' if verified else "",
            extra_listen=extra_listen,
            modules=("" if verified else "  mod_s2s_dialback: {}\n") + extra_modules)
            + extra_config)
        self.ctl_config.write_text(_render("ejabberdctl.cfg.in", node=self.node,
                                           dist_port=self.dist_port, dir=self.dir))
        (self.dir / "inetrc").write_text(_render("inetrc.in"))
        (self.dir / "erl").write_text(EJABBERD_ERL)
        os.chmod(self.dir / "erl", 0o755)
        pw = pwd.getpwnam(self.RUN_AS)
        for root, dirs, files in os.walk(self.dir):
            for n in [root] + [os.path.join(root, x) for x in dirs + files]:
                os.chown(n, pw.pw_uid, pw.pw_gid)

    @property
    def procs(self):
        return [PeerLog(f"ejabberd {self.domain}", self.log),
                PeerLog(f"ejabberd {self.domain} errors", self.dir / "logs" / "error.log"),
                PeerLog(f"ejabberd {self.domain} console", self.console)]

    def _argv(self, *args):
        return ["/usr/sbin/ejabberdctl", "--config-dir", self.dir,
                "--ctl-config", self.ctl_config, "--config", self.config,
                "--spool", self.dir / "spool", "--logs", self.dir / "logs", *args]

    def _env(self):
        env = _env()
        env["HOME"] = str(self.dir)         # the Erlang cookie lives here
        return env

    def start(self, timeout=START_TIMEOUT):
        mark = self.log_mark()
        self.proc = self.ns.popen(self._argv("foreground"), f"ejabberd-{self.domain}",
                                  log=self.console, user=self.RUN_AS, env=self._env(),
                                  cwd=self.dir, ok_codes=(0,))
        for port in (self.c2s_port, self.s2s_port):
            self.ns.wait_listening(self.addr, port, self.proc, timeout, self.procs)
        _wait(f"ejabberd {self.domain} started", lambda: any(
            "is started in the node" in l for l in self.log_text()[mark:].splitlines()),
              timeout, [self.proc.p], self.procs)
        for user, pw in self.users.items():
            self.register(user, pw)
        return self

    def ctl(self, *args, check=True, timeout=CTL_TIMEOUT):
        """Run an ejabberdctl command against this node, inside the namespace."""
        return self.ns.run(self._argv(*args), user=self.RUN_AS, env=self._env(),
                           cwd=self.dir, check=check, timeout=timeout)

    def register(self, user, password):
        """Create an account with ejabberdctl (or reset its password); bare JID."""
        r = self.ctl("register", user, self.domain, password, check=False)
        if r.returncode != 0:
            if "already registered" not in (r.stdout + r.stderr):
                raise AssertionError(f"ejabberdctl register {user}: {r.returncode}\n"
                                     f"{r.stdout}{r.stderr}\n{self.log_tails(20)}")
            self.ctl("change_password", user, self.domain, password)
        self.users[user] = password
        return self.jid(user)

    def s2s_auth(self, remote, since=0) -> dict:
        """As FedProsody.s2s_auth: {"in": [...], "out": [...]} of "EXTERNAL" or
        "dialback", from this server's log."""
        # ejabberd 23.01 (info): "Accepted inbound s2s MECH authentication R -> L (ip)"
        # and "Accepted outbound s2s MECH authentication L -> R (ip)", MECH EXTERNAL
        # or dialback.
        rx = re.compile(r"Accepted (inbound|outbound) s2s (\S+) authentication (\S+) -> (\S+) ")
        out = {"in": [], "out": []}
        for line in self.log_text()[since:].splitlines():
            m = rx.search(line)
            if not m:
                continue
            way, mech, src, dst = m.groups()
            if way == "inbound" and src == remote and dst == self.domain:
                out["in"].append(mech)
            elif way == "outbound" and src == self.domain and dst == remote:
                out["out"].append(mech)
        return out

    def _beam_pid(self):
        """The Erlang VM: ejabberdctl's child (erl execs down to beam.smp)."""
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            return None
        return kids[0] if kids else None

    def stop(self):
        """SIGTERM to the Erlang VM (init:stop(), an orderly shutdown); ejabberdctl
        then exits with the VM's status."""
        if self.proc is None or self.proc.stopped:
            return []
        beam = self._beam_pid()
        return self.ns.stop(self.proc, pid=beam) if beam else self.ns.stop(self.proc)


# ---- clients -----------------------------------------------------------------------------

async def login(client, server, timeout=60.0):
    """Connect a slixclient.Client to server's c2s (STARTTLS) at its address inside the
    namespace and wait for the session.  Call it inside `with ns.enter():`."""
    import asyncio
    if not server.ns.inside():
        raise AssertionError("login() outside the namespace: wrap the run in "
                             "`with ns.enter():`")
    client.connect((server.addr, server.c2s_port), force_starttls=True)
    await asyncio.wait_for(asyncio.shield(client.ready), timeout)
    return client


async def wait_presence_from(client, bare, ptype, timeout=60.0):
    """Wait until client saw a presence of type ptype from bare JID `bare` (any
    resource)."""
    import asyncio
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not any(str(fr).split("/")[0] == bare and t == ptype for fr, t in client.presences):
        left = deadline - loop.time()
        if left <= 0:
            raise AssertionError(f"{client.boundjid}: no {ptype} presence from {bare} within "
                                 f"{timeout} s; seen: {client.presences}")
        client.presence_event.clear()
        try:
            await asyncio.wait_for(client.presence_event.wait(), left)
        except asyncio.TimeoutError:
            pass


async def wait_roster(client, contact, sub, timeout=60.0):
    """Fetch the roster until contact's subscription is `sub` (what the user's client
    shows)."""
    import asyncio
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await client.get_roster(timeout=timeout)
        item = client.client_roster[contact]
        if item["subscription"] == sub:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{client.boundjid}: roster item {contact} is "
                                 f"{item['subscription']!r}, wanted {sub!r}")
        await asyncio.sleep(0.2)


async def subscribe_both_ways(a, a_jid, b, b_jid, timeout=60.0):
    """The full subscription handshake (RFC 6121 §3) between a and b, every step
    explicit and awaited, started by a; then each sees the other online and both
    rosters say "both".  Both clients must have fetched their roster (interested
    resources, RFC 6121 §2.1.6) and have slixmpp's automatic answers off."""
    a.send_presence(pto=b_jid, ptype="subscribe")
    await wait_presence_from(b, a_jid, "subscribe", timeout)
    b.send_presence(pto=a_jid, ptype="subscribed")
    b.send_presence(pto=a_jid, ptype="subscribe")
    await wait_presence_from(a, b_jid, "subscribed", timeout)
    await wait_presence_from(a, b_jid, "subscribe", timeout)
    a.send_presence(pto=b_jid, ptype="subscribed")
    await wait_presence_from(b, a_jid, "subscribed", timeout)
    await a.wait_presence(str(b.boundjid), "available", timeout)
    await b.wait_presence(str(a.boundjid), "available", timeout)
    await wait_roster(a, b_jid, "both", timeout)
    await wait_roster(b, a_jid, "both", timeout)


# ---- fixtures ----------------------------------------------------------------------------

def _attach(request, peer):
    node = request.node
    node._xedge_servers = getattr(node, "_xedge_servers", []) + [peer]


@pytest.fixture(scope="session")
def fed_pki():
    """The session's test CA and certificates (FedPKI)."""
    _need_tools("openssl")
    pki = FedPKI(Path(tempfile.mkdtemp(prefix="xfedpki", dir="/tmp")))
    yield pki
    pki.close()


@pytest.fixture(scope="module")
def fedns_module(request):
    """The module's namespace with dnsmasq (FedNS).  Extra records: indirect param
    {"records": {...}} or the module's FEDNS_RECORDS."""
    param = dict(getattr(request, "param", None) or {})
    records = param.get("records", getattr(request.module, "FEDNS_RECORDS", {}))
    ns = FedNS(records=records, domains=param.get("domains"))
    yield ns
    problems = ns.close()
    if problems:
        pytest.fail("federation namespace teardown:\n  " + "\n  ".join(problems) +
                    "\n" + ns.log_tails(), pytrace=False)


@pytest.fixture
def fedns(request, fedns_module):
    """The module's FedNS, checked alive; its logs attached to a failing test."""
    assert fedns_module.alive(), "the namespace holder died\n" + fedns_module.log_tails()
    _attach(request, fedns_module)
    return fedns_module


class Fed:
    """Prosody (prosody.example) and ejabberd (ejabberd.example) federating in one
    namespace in one mode."""

    def __init__(self, ns, pki, mode):
        self.ns, self.pki, self.mode = ns, pki, mode
        self.prosody = self.ejabberd = None

    def start(self):
        self.prosody = self.ns.prosody(mode=self.mode, pki=self.pki)
        self.ejabberd = self.ns.ejabberd(mode=self.mode, pki=self.pki)
        return self

    def alive(self):
        return self.ns.alive() and all(s is not None and s.alive()
                                       for s in (self.prosody, self.ejabberd))

    def stop(self):
        problems = []
        for s in (self.ejabberd, self.prosody):
            if s is not None:
                problems += s.stop()
                self.ns.servers.remove(s)
        return problems


@pytest.fixture(scope="module", params=MODES)
def fed_module(request, fedns_module, fed_pki):
    """Prosody and ejabberd running in the module's namespace, in mode request.param."""
    f = Fed(fedns_module, fed_pki, request.param)
    try:
        f.start()
    except BaseException:
        print(fedns_module.log_tails())
        f.stop()
        raise
    yield f
    problems = f.stop()
    if problems:
        pytest.fail(f"federation servers ({f.mode}) teardown:\n  " + "\n  ".join(problems),
                    pytrace=False)


@pytest.fixture
def fed(request, fed_module):
    """The module's Fed, checked alive; every log attached to a failing test."""
    assert fed_module.alive(), "a federation server died in an earlier test\n" + \
        fed_module.ns.log_tails()
    _attach(request, fed_module.ns)
    return fed_module
