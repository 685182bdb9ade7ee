"""A real XEP-0114 gateway behind xedge: biboumi (XMPP <-> IRC) against ngircd, all on
loopback.

An xedge user joins the IRC channel as a MUC room (XEP-0045 join presence to
`#chan%IRCSERVER@irc.localhost/nick`, biboumi's addressing: man biboumi, "Addressing"),
an IRC client written here (NICK/USER/JOIN/PRIVMSG, PING answered) sits in the same
channel, and messages cross both ways: the user's groupchat message reaches IRC as a
PRIVMSG from its nick, an IRC PRIVMSG reaches the user as a groupchat message from
`#chan%IRCSERVER@irc.localhost/ircnick`.

Nothing leaves the machine: ngircd listens on a 127.x.y.z address of its own (port 6667,
the plain port biboumi falls back to after 6697 and 6670, which nobody serves on that
address), with its own config file, no DNS, ident or PAM and no server links; biboumi is
told only that address, and its identd is off.
"""
import asyncio
import os
import queue
import random
import shutil
import socket
import threading
import time

import pytest

from conftest import USERS, Proc
from slixclient import Client, close_all, run

BIBOUMI = shutil.which("biboumi") or "/usr/bin/biboumi"
NGIRCD = shutil.which("ngircd") or "/usr/sbin/ngircd"
GATEWAY = "irc.localhost"
SECRET = "biboumi-" + os.urandom(8).hex()
CHANNEL = "#xedge"
IRC_NICK = "ircbob"
DEADLINE = 30.0

pytestmark = [
    pytest.mark.skipif(not os.access(BIBOUMI, os.X_OK),
                       reason="biboumi is not installed (apt-get install biboumi)"),
    pytest.mark.skipif(not os.access(NGIRCD, os.X_OK),
                       reason="ngircd is not installed (apt-get install ngircd)"),
]


def wait(cond, what, timeout=DEADLINE, procs=()):
    deadline = time.monotonic() + timeout
    while not cond():
        for p in procs:
            assert p.alive(), f"{p.name} exited while waiting for {what}:\n{p.text()[-3000:]}"
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.05)


def loopback_address():
    """A 127.x.y.z address (not 127.0.0.1) whose port 6667 is free."""
    rnd = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(100):
        addr = f"127.{rnd.randrange(1, 255)}.{rnd.randrange(0, 256)}.{rnd.randrange(2, 255)}"
        with socket.socket() as s:
            try:
                s.bind((addr, 6667))
            except OSError:
                continue
        return addr
    raise RuntimeError("no free 127.x.y.z:6667")


@pytest.fixture
def ircd(tmp_path):
    """ngircd on a loopback address of its own; yields that address."""
    addr = loopback_address()
    d = tmp_path / "ngircd"
    (d / "conf.d").mkdir(parents=True)
    conf = d / "ngircd.conf"
    conf.write_text(
        "[Global]\n"
        "\tName = irc.test\n"
        "\tInfo = xedge test IRC server\n"
        "\tAdminInfo1 = xedge tests\n\tAdminInfo2 = loopback only\n"
        "\tAdminEMail = nobody@localhost\n"
        f"\tListen = {addr}\n"
        "\tPorts = 6667\n"
        f"\tPidFile = {d}/ngircd.pid\n"
        "\tMotdPhrase = \"xedge test\"\n"
        "[Limits]\n\tMaxConnectionsIP = 0\n\tMaxNickLength = 30\n"
        "[Options]\n"
        "\tDNS = no\n\tIdent = no\n\tPAM = no\n"
        "\tConnectIPv4 = no\n\tConnectIPv6 = no\n"
        f"\tIncludeDir = {d}/conf.d\n")
    p = Proc("ngircd", [NGIRCD, "-n", "-f", str(conf)], d / "ngircd.log")
    try:
        wait(lambda: "Now listening on" in p.text(), "ngircd listening", procs=[p])
        yield addr
    finally:
        p.stop()


@pytest.fixture
def biboumi(server, tmp_path):
    """biboumi connected to the edge's component listener as irc.localhost."""
    d = tmp_path / "biboumi"
    d.mkdir()
    log = d / "biboumi.log"
    cfg = d / "biboumi.cfg"
    cfg.write_text(f"hostname={GATEWAY}\n"
                   f"password={SECRET}\n"
                   "xmpp_server_ip=127.0.0.1\n"
                   f"port={server.component_port}\n"
                   "realname_customization=true\n"
                   "realname_from_jid=false\n"
                   f"log_file={log}\n"
                   "log_level=0\n"
                   f"db_name={d}/biboumi.sqlite\n"
                   "identd_port=0\n"
                   f"policy_directory={d}\n")
    p = Proc("biboumi", [BIBOUMI, str(cfg)], d / "console.log")
    try:
        wait(lambda: log.exists() and "Authenticated with the XMPP server" in log.read_text(),
             "biboumi's component handshake", procs=[p])
        server.wait_log(rf"component connected.*name={GATEWAY}")
        yield log
    finally:
        p.stop()


class Irc:
    """A plain IRC client: registers, answers PINGs, collects lines in a thread."""

    def __init__(self, addr, nick):
        self.nick = nick
        self.sock = socket.create_connection((addr, 6667), timeout=DEADLINE)
        self.lines = queue.Queue()
        self.seen = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.send(f"NICK {nick}")
        self.send(f"USER {nick} 0 * :xedge test")
        self.expect(lambda l: l.split()[1:2] == ["001"], "001 welcome")

    def send(self, line):
        self.sock.sendall((line + "\r\n").encode())

    def _read(self):
        buf = b""
        try:
            while True:
                data = self.sock.recv(4096)
                if not data:
                    break
                buf += data
                while b"\r\n" in buf:
                    raw, buf = buf.split(b"\r\n", 1)
                    line = raw.decode(errors="replace")
                    if line.startswith("PING"):
                        self.send("PONG" + line[4:])
                    self.lines.put(line)
        except OSError:
            pass
        self.lines.put(None)

    def expect(self, pred, what, timeout=DEADLINE):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"IRC: no {what} within {timeout} s; seen: {self.seen[-20:]}"
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            assert line is not None, f"IRC connection closed waiting for {what}: {self.seen[-20:]}"
            self.seen.append(line)
            if pred(line):
                return line

    def close(self):
        try:
            self.send("QUIT :bye")
            self.sock.close()
        except OSError:
            pass


class MucUser(Client):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.register_plugin("xep_0045")
        self.groupchat = asyncio.Queue()
        self.add_event_handler("groupchat_message", self.groupchat.put_nowait)

    async def next_groupchat(self, frm, body, timeout=DEADLINE):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = []
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise asyncio.TimeoutError(f"no groupchat {body!r} from {frm}; seen {seen}")
            try:
                m = await asyncio.wait_for(self.groupchat.get(), left)
            except asyncio.TimeoutError:
                continue
            seen.append((str(m["from"]), m["body"]))
            if str(m["from"]) == frm and m["body"] == body:
                return m


@pytest.mark.parametrize("server", [{"components": [(GATEWAY, SECRET)]}], indirect=True)
def test_irc_channel_through_biboumi(server, ircd, biboumi):
    room = f"{CHANNEL}%{ircd}@{GATEWAY}"
    irc = Irc(ircd, IRC_NICK)
    irc.send(f"JOIN {CHANNEL}")
    irc.expect(lambda l: l.startswith(f":{IRC_NICK}!") and " JOIN " in l, "our own JOIN")

    async def go():
        alice = await MucUser(f"{server.jid('alice')}/irc", USERS["alice"]).login(server.c2s_port)
        try:
            # XEP-0045 join: biboumi connects to the IRC server and joins the channel.
            pres, _subject, occupants, _history = await alice["xep_0045"].join_muc_wait(
                room, "alice", timeout=DEADLINE)
            assert str(pres["from"]) == f"{room}/alice", pres
            assert f"{room}/{IRC_NICK}" in {str(o["from"]) for o in occupants}, occupants
            await asyncio.get_running_loop().run_in_executor(
                None, irc.expect, lambda l: l.startswith(":alice!") and f"JOIN :{CHANNEL}" in l,
                "alice's JOIN")
            # XMPP -> IRC
            alice.send_message(mto=room, mbody="hello from xmpp", mtype="groupchat")
            await alice.next_groupchat(f"{room}/alice", "hello from xmpp")   # the room's echo
            await asyncio.get_running_loop().run_in_executor(
                None, irc.expect,
                lambda l: l.startswith(":alice!") and l.endswith(f"PRIVMSG {CHANNEL} :hello from xmpp"),
                "alice's PRIVMSG")
            # IRC -> XMPP
            irc.send(f"PRIVMSG {CHANNEL} :hello from irc")
            m = await alice.next_groupchat(f"{room}/{IRC_NICK}", "hello from irc")
            assert m["type"] == "groupchat"
            # Leaving the room parts the channel.
            alice["xep_0045"].leave_muc(room, "alice")
            await asyncio.get_running_loop().run_in_executor(
                None, irc.expect, lambda l: l.startswith(":alice!") and f"PART {CHANNEL}" in l,
                "alice's PART")
        finally:
            await close_all(alice)
    try:
        run(go(), timeout=3 * DEADLINE)
    finally:
        irc.close()
    # biboumi's traffic went through the component stream, and only to our IRC server.
    text = biboumi.read_text()
    tried = {l.split("Trying to connect to ")[1].strip() for l in text.splitlines()
             if "Trying to connect to " in l}
    assert tried <= {f"127.0.0.1:{server.component_port}", f"{ircd}:6697", f"{ircd}:6670",
                     f"{ircd}:6667"}, tried
