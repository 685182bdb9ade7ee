"""Profanity (Debian's profanity 0.13, a terminal XMPP client) driven as a person
would: inside tmux, typing commands, reading the screen (tmux capture-pane).

Same servers as test_im_flows.py (xedge and Prosody, both with the suite's
self-signed certificate: `/connect ... tls trust` forces STARTTLS and trusts
it), and the same rule: cases needing a feature xedge lacks are strict xfail
for the xedge parameter only.  Each test gets its own HOME (Profanity writes its
config, logs and databases there) and its own tmux server socket.

If profanity or tmux is missing and cannot be installed (apt-get, as root), the
tests skip with that reason; they never pass silently without the client.
"""
import asyncio
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import child_env
from peers import PeerLog, _attach
from slixclient import close_all, run
from test_im_flows import login, targets
from test_im_flows import target  # noqa: F401 -- the fixture, shared

SCREEN_W, SCREEN_H = 200, 60


def _have_tools():
    return shutil.which("profanity") and shutil.which("tmux")


@pytest.fixture(scope="session")
def profanity_bin():
    if not _have_tools():
        why = "not root"
        if os.geteuid() == 0:
            env = dict(child_env(), DEBIAN_FRONTEND="noninteractive")
            install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                       "profanity", "tmux"]
            r = subprocess.run(install, capture_output=True, text=True, timeout=600, env=env)
            if r.returncode != 0:       # a stale package list: update once, try again
                subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=600,
                               env=env)
                r = subprocess.run(install, capture_output=True, text=True, timeout=600, env=env)
            why = (r.stderr or r.stdout).strip()[-500:]
        if not _have_tools():
            pytest.skip(f"profanity/tmux missing and not installable ({why}): "
                        "deploy/debian-deps.sh test")
    return shutil.which("profanity")


class Profanity:
    """One Profanity in a detached tmux session of a private tmux server."""

    def __init__(self, exe, workdir, sockdir, name="prof"):
        self.home = workdir / f"home-{name}"
        self.home.mkdir(parents=True, exist_ok=True)
        self.sock = sockdir / f"tmux-{name}.sock"      # AF_UNIX: a short path
        self.name = name
        self.env = dict(child_env(), HOME=str(self.home), TERM="xterm-256color",
                        LANG="C.UTF-8", XDG_CONFIG_HOME=str(self.home / ".config"),
                        XDG_DATA_HOME=str(self.home / ".local" / "share"))
        self.env.pop("TMUX", None)
        self.log = self.home / ".local" / "share" / "profanity" / "logs" / "profanity.log"
        self.procs = [PeerLog(f"profanity {name}", self.log)]
        self.started = False
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", name, "-x", str(SCREEN_W),
                  "-y", str(SCREEN_H), f"{exe} --log=DEBUG --logfile={self.log}")
        self.started = True

    def tmux(self, *args, check=True):
        r = subprocess.run(["tmux", "-S", str(self.sock), *args], capture_output=True,
                           text=True, env=self.env, timeout=20, stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {r.returncode} {r.stderr}")
        return r

    def alive(self):
        return self.tmux("has-session", "-t", self.name, check=False).returncode == 0

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", self.name).stdout

    def type(self, line):
        """Type a line and press Enter."""
        self.tmux("send-keys", "-t", self.name, "-l", line)
        self.tmux("send-keys", "-t", self.name, "Enter")

    async def wait_screen(self, pattern, timeout=15.0):
        """Wait until the screen matches the regex; returns the match."""
        rx = re.compile(pattern, re.M)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if not self.alive():
                raise AssertionError(f"profanity exited while waiting for {pattern!r}")
            m = rx.search(self.screen())
            if m:
                return m
            if loop.time() > deadline:
                raise AssertionError(f"profanity: no {pattern!r} on screen within {timeout} s; "
                                     f"screen:\n{self.screen()}")
            await asyncio.sleep(0.1)

    async def connect(self, jid, password, port):
        """/connect with STARTTLS forced and the test certificate trusted; returns the
        full JID Profanity bound."""
        self.type(f"/connect {jid} server 127.0.0.1 port {port} tls trust")
        await self.wait_screen(r"Enter password:")
        self.type(password)
        m = await self.wait_screen(rf"({re.escape(jid)}/\S+) logged in successfully")
        await self.wait_screen(r"\[TLS\]")          # the status bar: the stream is encrypted
        return m.group(1)

    def stop(self):
        if not self.started:
            return
        if self.alive():
            self.type("/quit")
            deadline = time.monotonic() + 10
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.1)
        self.tmux("kill-server", check=False)      # our private server only (-S)
        self.started = False


@pytest.fixture
def profanity(request, profanity_bin, tmp_path, sockdir):
    """A factory: profanity(name) -> a started Profanity; all stopped at teardown."""
    started = []

    def make(name="prof"):
        p = Profanity(profanity_bin, tmp_path, sockdir, name)
        started.append(p)
        _attach(request, p)
        return p
    yield make
    for p in started:
        p.stop()


@pytest.mark.parametrize("target", targets(), indirect=True)
def test_profanity_login_and_chat(target, profanity):
    """Profanity logs in over TLS and chats with a slixmpp peer, both directions."""
    t = target
    tag = os.urandom(3).hex()

    async def main():
        b = None
        try:
            b = await login(t, "bob", "slix")
            p = profanity()
            full = await p.connect(t.jid("alice"), t.password("alice"), t.port)
            p.type(f"/msg {t.jid('bob')} hello-bob-{tag}")
            m = await b.next_message(body=f"hello-bob-{tag}", timeout=15)
            assert str(m["from"]) == full, f"from {m['from']}, Profanity bound {full}"
            b.send_message(mto=m["from"], mbody=f"hello-alice-{tag}", mtype="chat")
            await p.wait_screen(rf"(?i)bob\S*: hello-alice-{tag}")
        finally:
            await close_all(b)
    run(main(), 60)


@pytest.mark.parametrize("target", targets(), indirect=True)
def test_profanity_roster_and_subscription(target, profanity):
    """/roster add, /sub request; the slixmpp contact approves and asks back;
    /sub allow; /sub show says both and the contact is online in the roster."""
    t = target
    alice, bob = t.jid("alice"), t.jid("bob")

    async def main():
        b = None
        try:
            b = await login(t, "bob", "slix", roster=True)
            p = profanity()
            await p.connect(alice, t.password("alice"), t.port)
            p.type(f"/roster add {bob} Bob")
            await p.wait_screen(rf"Roster item added: {re.escape(bob)} \(Bob\)")
            p.type(f"/sub request {bob}")
            await p.wait_screen(rf"Sent subscription request to {re.escape(bob)}")
            await b.wait_pres(alice, "subscribe")
            b.send_presence(pto=alice, ptype="subscribed")
            await p.wait_screen(rf"Subscription received from {re.escape(bob)}")
            b.send_presence(pto=alice, ptype="subscribe")
            await p.wait_screen(rf"Received authorization request from {re.escape(bob)}")
            p.type(f"/sub allow {bob}")
            await p.wait_screen(rf"Accepted subscription for {re.escape(bob)}")
            await b.wait_push(alice, "both")
            p.type(f"/sub show {bob}")
            await p.wait_screen(rf"{re.escape(bob)} subscription status: both")
            await p.wait_screen(r"\+\+ Bob \(slix\) is online")
            # bob goes away: Profanity shows it.
            b.send_presence(pshow="away")
            await p.wait_screen(r"Bob \(slix\) is away")
        finally:
            await close_all(b)
    run(main(), 80)


@pytest.mark.parametrize("target", targets(), indirect=True)
def test_profanity_carbons(target, profanity):
    """Profanity (carbons on by default) and a slixmpp second resource of alice:
    each sees the other's conversation with bob as carbons."""
    t = target
    alice, bob = t.jid("alice"), t.jid("bob")
    tag = os.urandom(3).hex()

    async def main():
        a2 = b = None
        try:
            b = await login(t, "bob", "slix")
            a2 = await login(t, "alice", "slix", plugins=("xep_0280",))
            await a2["xep_0280"].enable(timeout=10)
            sent = asyncio.Queue()
            a2.add_event_handler("carbon_sent", lambda m: sent.put_nowait(m["carbon_sent"]))
            p = profanity()
            full = await p.connect(alice, t.password("alice"), t.port)
            p.type("/carbons on")
            await p.wait_screen(r"Message carbons preference enabled")

            # Profanity -> bob: the slixmpp resource gets a sent carbon.
            p.type(f"/msg {bob} from-profanity-{tag}")
            await b.next_message(body=f"from-profanity-{tag}", timeout=15)
            fwd = await asyncio.wait_for(sent.get(), 15)
            assert (fwd["body"], str(fwd["from"])) == (f"from-profanity-{tag}", full)

            # bob -> alice/slix: Profanity shows it (received carbon) in the chat window.
            b.send_message(mto=f"{alice}/slix", mbody=f"to-slix-{tag}", mtype="chat")
            await a2.next_message(body=f"to-slix-{tag}", timeout=15)
            await p.wait_screen(rf"(?i)bob\S*: to-slix-{tag}")

            # alice/slix -> bob: Profanity shows it as her own message (sent carbon).
            a2.send_message(mto=bob, mbody=f"from-slix-{tag}", mtype="chat")
            await b.next_message(body=f"from-slix-{tag}", timeout=15)
            await p.wait_screen(rf"me: from-slix-{tag}")
        finally:
            await close_all(a2, b)
    run(main(), 80)


MUC_YAML = "services:\n  muc:\n    domain: conference.localhost\n"


@pytest.mark.parametrize("server", [{"extra_edge_yaml": MUC_YAML}], indirect=True)
def test_profanity_group_chat(server, profanity):
    """XEP-0045 as a person uses it: Profanity /join creates the room, /room accept opens it
    (the instant room), a second client joins and talks, Profanity shows it and its own
    message reaches the other occupant, then /kick throws the other client out (307)."""
    from rawxmpp import NS_CLIENT, Raw, q
    from conftest import USERS

    room = f"prof-{os.urandom(2).hex()}@conference.localhost"
    presence, message = q(NS_CLIENT, "presence"), q(NS_CLIENT, "message")
    muc_user = "http://jabber.org/protocol/muc#user"

    async def main():
        p = profanity()
        await p.connect("alice@localhost", USERS["alice"], server.c2s_port)
        p.type(f"/join {room} nick Alice")
        await p.wait_screen(r"(?i)room (is )?locked|requires configuration|/room accept")
        p.type("/room accept")
        await p.wait_screen(r"(?i)room unlocked|accepted")
        b = Raw(server.c2s_port)
        try:
            b.login("bob", USERS["bob"], "raw")
            b.send("<presence/>")
            b.send(f"<presence to='{room}/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
            b.wait_for(lambda e: e.tag == presence and e.get("from") == f"{room}/Bob" and
                       any(s.get("code") == "110" for s in e.iter(f"{{{muc_user}}}status")), 15.0)
            await p.wait_screen(r"(?s)Participants.*\bBob\b")     # the occupants panel
            b.send(f"<message to='{room}' type='groupchat'><body>hello from bob</body></message>")
            await p.wait_screen(r"Bob: hello from bob")
            p.type("hello from alice")
            m = b.wait_for(lambda e: e.tag == message and e.findtext(q(NS_CLIENT, "body")) ==
                           "hello from alice", 15.0)
            assert m.get("from") == f"{room}/Alice"
            p.type("/kick Bob behave")
            k = b.wait_for(lambda e: e.tag == presence and e.get("type") == "unavailable" and
                           e.get("from") == f"{room}/Bob", 15.0)
            assert "307" in {s.get("code") for s in k.iter(f"{{{muc_user}}}status")}
            await p.wait_screen(r"(?i)bob.*kicked")
        finally:
            b.close()
    run(main(), 90)
