"""TLS against clients written by others: tsung (Erlang/OTP's TLS 1.3 client in middlebox
compatibility mode) and OpenSSL's s_client with a 512-byte max_fragment_length.

Both found real bugs: OTP aborts unless the server sends the dummy change_cipher_spec of
RFC 8446 §D.4 after its ServerHello (hello_middlebox_assert), and OpenSSL aborted with
record_overflow on the first record over the negotiated fragment length once the session
had moved to our record layer.
"""
import base64
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import child_env, free_port

TSUNG_USERS = 4
TSUNG_DEADLINE = 100      # seconds: tsung's Erlang VM starts in a few; the scenario takes ~5

TSUNG_SCENARIO = """<?xml version="1.0"?>
<!DOCTYPE tsung SYSTEM "/usr/share/tsung/tsung-1.0.dtd">
<tsung loglevel="notice" dumptraffic="false" version="1.0">
  <clients><client host="localhost" use_controller_vm="true" maxusers="100"/></clients>
  <servers><server host="127.0.0.1" port="{port}" type="tcp"/></servers>
  <load duration="60" unit="second">
    <arrivalphase phase="1" duration="{arrival}" unit="second">
      <users maxnumber="{users}" arrivalrate="10" unit="second"/>
    </arrivalphase>
  </load>
  <options>
    <option type="ts_jabber" name="domain" value="{domain}"/>
    <option name="file_server" id="userdb" value="{users_csv}"/>
  </options>
  <sessions>
    <session probability="100" name="login" type="ts_jabber" bidi="true">
      <setdynvars sourcetype="file" fileid="userdb" delimiter=";" order="iter">
        <var name="username"/><var name="password"/>
      </setdynvars>
      <request subst="true"><jabber type="connect" ack="local">
        <xmpp_authenticate username="%%_username%%" passwd="%%_password%%"/></jabber></request>
      <request><jabber type="starttls" ack="bidi_ack"/></request>
      <request><jabber type="connect" ack="local"/></request>
      <transaction name="login">
        <request><jabber type="auth_sasl" ack="local"/></request>
        <request><jabber type="connect" ack="local"/></request>
        <request><jabber type="auth_sasl_bind" ack="local"/></request>
        <request><jabber type="auth_sasl_session" ack="local"/></request>
      </transaction>
      <request><jabber type="presence:initial" ack="no_ack"/></request>
      <transaction name="roster">
        <request><jabber type="iq:roster:get" ack="local"/></request>
      </transaction>
      <thinktime value="1" random="false"/>
      <request><jabber type="close" ack="no_ack"/></request>
    </session>
  </sessions>
</tsung>
"""


def tsung_totals(log: Path) -> dict:
    """Totals per statistic from tsung.log: the last dump line of each name holds the last
    interval and everything before it.  Samples: 'stats: NAME n mean stddev max min
    mean_before n_before' (count = n + n_before); counters: 'stats: NAME n total'."""
    last = {}
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("stats: "):
            f = line.split()
            last[f[1]] = f[2:]
    totals = {}
    for name, f in last.items():
        try:
            totals[name] = (int(float(f[0])) + int(float(f[6]))) if len(f) >= 7 else int(float(f[-1]))
        except ValueError:
            pass
    return totals


def test_tsung_logs_in_over_starttls(server, tmp_path):
    """tsung 1.7 (OTP's TLS 1.3 client, which sends a legacy_session_id and insists on
    the CCS after ServerHello) logs TSUNG_USERS users in over STARTTLS with SASL PLAIN
    (tsung has no SCRAM), binds, gets the roster: every login succeeds, no error."""
    tsung = shutil.which("tsung")
    assert tsung, "tsung is not installed: make test-deps (deploy/debian-deps.sh test)"
    users = tmp_path / "users.csv"
    users.write_text("".join(f"tsung{i};tsung-pass-{i}\n" for i in range(1, TSUNG_USERS + 1)))
    for i in range(1, TSUNG_USERS + 1):
        server.add_user(f"tsung{i}", f"tsung-pass-{i}")
    scenario = tmp_path / "login.xml"
    scenario.write_text(TSUNG_SCENARIO.format(port=server.c2s_port, domain=server.domain,
                                              users=TSUNG_USERS, arrival=TSUNG_USERS,
                                              users_csv=users))
    logdir = tmp_path / "tsung-log"
    logdir.mkdir()
    env = child_env()
    env["HOME"] = str(tmp_path)          # tsung writes ~/.tsung
    # Erlang distribution on loopback at a free port, no epmd: nothing outlives the test.
    env["ERL_FLAGS"] = (f"-start_epmd false -erl_epmd_port {free_port()} "
                        "-kernel inet_dist_use_interface {127,0,0,1} "
                        "-tsung_controller dumpstats_interval 1000")
    t0 = time.monotonic()
    r = subprocess.run([tsung, "-n", "-i", f"xt{server.c2s_port}", "-f", str(scenario),
                        "-l", str(logdir), "start"], capture_output=True, text=True,
                       timeout=TSUNG_DEADLINE, env=env, stdin=subprocess.DEVNULL,
                       cwd=str(tmp_path))
    runs = sorted(p for p in logdir.iterdir() if p.is_dir())
    assert r.returncode == 0 and runs, f"tsung exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    log = runs[-1] / "tsung.log"
    totals = tsung_totals(log)
    controller = "".join(p.read_text(errors="replace") for p in runs[-1].glob("tsung_controller*.log"))
    detail = (f"tsung totals {totals} after {time.monotonic() - t0:.1f} s\n"
              f"--- controller log ---\n{controller[-3000:]}\n{server.log_tails(30)}")
    errors = {k: v for k, v in totals.items() if k.startswith("error")}
    assert not errors, detail
    assert totals.get("users_count") == TSUNG_USERS, detail
    assert totals.get("xmpp_starttls") == TSUNG_USERS, detail
    assert totals.get("tr_login") == TSUNG_USERS, detail
    assert totals.get("tr_roster") == TSUNG_USERS, detail
    assert totals.get("finish_users_count") == TSUNG_USERS, detail
    assert "hello_middlebox_assert" not in controller, detail


class SClient:
    """openssl s_client as a subprocess, its application data on stdout; every read has a
    deadline."""

    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=child_env())
        self.out = b""

    def send(self, data: str):
        self.p.stdin.write(data.encode())
        self.p.stdin.flush()

    def until(self, marker: str, timeout: float = 10.0) -> str:
        """Read until `marker` appears in what arrived since the last call; return that."""
        deadline = time.monotonic() + timeout
        m = marker.encode()
        while m not in self.out:
            left = deadline - time.monotonic()
            if left <= 0 or self.p.poll() is not None and not select.select([self.p.stdout], [], [], 0)[0]:
                break
            if select.select([self.p.stdout], [], [], min(left, 0.5))[0]:
                chunk = os.read(self.p.stdout.fileno(), 65536)
                if not chunk:
                    break
                self.out += chunk
        if m not in self.out:
            self.close()
            raise AssertionError(f"no {marker!r} from the server; got {self.out[-600:]!r}\n"
                                 f"s_client stderr: {self.err[-2000:]}")
        i = self.out.index(m) + len(m)
        got, self.out = self.out[:i], self.out[i:]
        return got.decode(errors="replace")

    def close(self) -> str:
        if self.p.poll() is None:
            try:
                self.p.stdin.close()
            except OSError:
                pass
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.err = self.p.stderr.read().decode(errors="replace")
        return self.err

    err = ""


HEADER = ("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
          "to='localhost' version='1.0'>")


@pytest.mark.parametrize("mode", ["starttls", "direct"])
def test_openssl_max_fragment_length_512(server, mode):
    """openssl s_client -maxfraglen 512 -tls1_3: login, bind, then a 3000-byte message to
    ourselves comes back (our records after the hand-over stay within 512 bytes; its own
    full 512-byte records are accepted), and nothing on s_client's side reports a
    record_overflow (RFC 6066 §4)."""
    argv = ["openssl", "s_client", "-quiet", "-ign_eof", "-tls1_3", "-maxfraglen", "512"]
    if mode == "starttls":
        argv += ["-connect", f"127.0.0.1:{server.c2s_port}", "-starttls", "xmpp",
                 "-xmpphost", "localhost"]
    else:
        argv += ["-connect", f"127.0.0.1:{server.tls_port}"]
    c = SClient(argv)
    try:
        c.send(HEADER)
        c.until("</stream:features>")
        creds = base64.b64encode(f"\0alice\0{server.password('alice')}".encode()).decode()
        c.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{creds}</auth>")
        c.until("<success")
        c.send(HEADER)
        c.until("</stream:features>")
        c.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
               "<resource>mfl</resource></bind></iq>")
        c.until("</iq>")
        body = "".join(chr(ord("a") + i % 26) for i in range(3000))
        c.send(f"<message to='alice@localhost/mfl' type='chat' id='m1'><body>{body}</body></message>")
        got = c.until("</message>")
        assert body in got, got[:300]
        c.send("</stream:stream>")
        c.until("</stream:stream>")
    finally:
        err = c.close()
    assert "overflow" not in err.lower(), err
    assert "alert" not in err.lower(), err
