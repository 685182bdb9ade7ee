"""A second, independent client: libstrophe (C, Debian libstrophe-dev).

tests/clients/strophe_chat.c is compiled once per run against the system
libstrophe and driven over stdin/stdout (see the comment at its top).
"""
import base64
import os
import queue
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO, USERS, child_env

SRC = REPO / "tests" / "clients" / "strophe_chat.c"


@pytest.fixture(scope="session")
def strophe_chat(tmp_path_factory):
    pc = subprocess.run(["pkg-config", "--cflags", "--libs", "libstrophe"], capture_output=True,
                        text=True)
    if pc.returncode != 0:
        pytest.fail("libstrophe is not installed: apt-get install libstrophe-dev "
                    "(deploy/debian-deps.sh test)", pytrace=False)
    exe = tmp_path_factory.mktemp("strophe") / "strophe_chat"
    cc = os.environ.get("CC", "gcc")
    r = subprocess.run([cc, "-std=c11", "-D_GNU_SOURCE", "-O1", "-g", "-Wall", "-Wextra",
                        "-o", str(exe), str(SRC), *pc.stdout.split()],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"building {SRC} failed:\n{r.stderr}"
    return exe


class Strophe:
    def __init__(self, exe, jid, password, port, mode, log: Path):
        self.jid, self.log = jid, log
        self._err = open(log, "wb")
        self.p = subprocess.Popen([str(exe), jid, password, "127.0.0.1", str(port), mode],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self._err, text=True, env=child_env())
        self.lines = queue.Queue()
        self.history = []
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait(self, pred, what, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                line = ""
            if line is None:
                raise AssertionError(f"{self.jid}: client exited ({self.p.poll()}) before {what}; "
                                     f"output: {self.history}\nstderr: {self.stderr()}")
            if line:
                self.history.append(line)
                if pred(line):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.jid}: no {what} within {timeout} s; output: "
                                     f"{self.history}\nstderr: {self.stderr()}")

    def stderr(self):
        self._err.flush()
        return self.log.read_text(errors="replace")[-3000:]

    def ready(self):
        line = self.wait(lambda l: l.startswith("READY ") or l.startswith("CLOSED "), "READY")
        assert line.startswith("READY "), f"{self.jid}: login failed: {line}\n{self.stderr()}"
        _, bound, secured = line.split()
        return bound, secured

    def send(self, to, body):
        self.p.stdin.write(f"send {to} {base64.b64encode(body.encode()).decode()}\n")
        self.p.stdin.flush()
        self.wait(lambda l: l.startswith("SENT "), "SENT")

    def recv(self, body, timeout=10.0):
        enc = base64.b64encode(body.encode()).decode()
        line = self.wait(lambda l: l.startswith("RECV ") and l.split()[3] == enc,
                         f"message {body!r}", timeout)
        _, frm, mtype, _ = line.split()
        return frm, mtype

    def presence_from(self, jid, ptype="available", timeout=10.0):
        want = f"PRESENCE {jid} {ptype}"
        if want in self.history:
            return
        self.wait(lambda l: l == want, want, timeout)

    def quit(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write("quit\n")
                self.p.stdin.flush()
            except BrokenPipeError:
                pass
        try:
            rc = self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(5)
            raise AssertionError(f"{self.jid}: did not exit after quit")
        finally:
            self._err.close()
        return rc

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(5)


@pytest.mark.parametrize("mode", ["starttls", "directtls"])
def test_libstrophe_pair_chats_both_ways(buddies, strophe_chat, tmp_path, mode):
    server = buddies
    port = server.c2s_port if mode == "starttls" else server.tls_port
    want_a, want_b = "alice@localhost/strophe-a", "bob@localhost/strophe-b"
    a = Strophe(strophe_chat, want_a, USERS["alice"], port, mode, tmp_path / "alice.err")
    b = Strophe(strophe_chat, want_b, USERS["bob"], port, mode, tmp_path / "bob.err")
    try:
        ja, sa = a.ready()
        jb, sb = b.ready()
        assert (ja, jb) == (want_a, want_b), "server bound other resources than requested"
        assert sa == sb == "secured=1", "libstrophe says the stream is not encrypted"

        # Both are online and see each other (roster: both).
        a.presence_from(jb)
        b.presence_from(ja)

        body_ab = f"from alice via libstrophe <&> ünï 🚀 {os.urandom(3).hex()}"
        a.send("bob@localhost", body_ab)
        frm, mtype = b.recv(body_ab)
        assert frm == ja and mtype == "chat"

        body_ba = f"reply from bob 'q' \"dq\" {os.urandom(3).hex()}"
        b.send(ja, body_ba)
        frm, mtype = a.recv(body_ba)
        assert frm == jb and mtype == "chat"

        # Clean stream close from both clients.
        assert a.quit() == 0, a.stderr()
        b.presence_from(ja, "unavailable")
        assert b.quit() == 0, b.stderr()
    finally:
        a.kill()
        b.kill()
    log = server.log("xedge")
    assert "stream error" not in log, [l for l in log.splitlines() if "stream error" in l]


def test_libstrophe_and_slixmpp_interoperate(buddies, strophe_chat, tmp_path):
    """libstrophe alice and slixmpp bob on the same server."""
    import asyncio
    from slixclient import Client, close_all, run

    server = buddies
    a = Strophe(strophe_chat, "alice@localhost/strophe", USERS["alice"], server.c2s_port,
                "starttls", tmp_path / "alice.err")
    try:
        ja, _ = a.ready()

        async def scenario():
            bob = Client("bob@localhost/slix", USERS["bob"])
            try:
                await bob.login(server.c2s_port)
                await bob.wait_presence(ja)
                body = f"slix to strophe {os.urandom(3).hex()}"
                bob.send_message(mto=ja, mbody=body, mtype="chat")
                frm, _ = await asyncio.to_thread(a.recv, body)
                assert frm == bob.boundjid.full
                body2 = f"strophe to slix {os.urandom(3).hex()}"
                await asyncio.to_thread(a.send, "bob@localhost", body2)
                m = await bob.next_message(body=body2)
                assert m.xml.get("from") == ja
            finally:
                await close_all(bob)

        run(scenario(), 30)
        assert a.quit() == 0, a.stderr()
    finally:
        a.kill()
