"""Offline messages are never lost (RFC 6121 §8.5.2.2.2 storage, and the issue's rule:
stored messages are deleted only once the edge has written them to the client's socket).
Fault tests: an abrupt disconnect right after initial presence, and kill -9 of the
process, at the moment the stored messages are being handed out."""
import socket
import sqlite3
import struct
import time

from conftest import USERS, wait_until
from rawxmpp import NS_CLIENT, Raw, Timeout, q

MESSAGE, BODY = q(NS_CLIENT, "message"), q(NS_CLIENT, "body")
N = 300


def stored_count(server, user):
    """Rows in the offline table for user (read-only; WAL lets us read while it runs)."""
    db = sqlite3.connect(f"file:{server.database}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("SELECT count(*) FROM offline WHERE user = ?",
                          (server.jid(user),)).fetchone()[0]
    finally:
        db.close()


def wait_stored(server, user, n, timeout=60.0):
    deadline = time.monotonic() + timeout
    while (have := stored_count(server, user)) != n:
        assert time.monotonic() < deadline, f"{have} of {n} messages stored\n" \
                                            f"{server.log_tails(30)}"
        time.sleep(0.1)


def send_to_offline_bob(server, n=N, tag="m"):
    with Raw(server.c2s_port) as alice:
        alice.login("alice", USERS["alice"], "sender")
        for i in range(n):
            alice.send(f"<message to='bob@localhost' type='chat' id='{tag}{i}'>"
                       f"<body>{tag}-{i}</body></message>")
        r = alice.ping("sync")      # everything above was routed
        assert r.get("type") == "result"
    wait_stored(server, "bob", n)
    return {f"{tag}-{i}" for i in range(n)}


def abrupt_close(raw):
    """Reset the TCP connection: no </stream:stream>, no TLS close_notify, unread data dropped."""
    sock = raw.sock
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def collect(server, want, timeout=60.0):
    """Log bob in, send initial presence, read messages until every body in want arrived."""
    got = set()
    with Raw(server.c2s_port) as bob:
        bob.login("bob", USERS["bob"], "reader")
        bob.send("<presence/>")
        deadline = time.monotonic() + timeout
        while not want <= got:
            left = deadline - time.monotonic()
            assert left > 0, f"missing {len(want - got)} of {len(want)}: " \
                             f"{sorted(want - got)[:10]}...\n{server.log_tails(30)}"
            el = bob.next_item(timeout=left)
            if el.tag == MESSAGE and el.findtext(BODY):
                got.add(el.findtext(BODY))
    return got


def stored_bodies(server, user):
    """The bodies of the messages still stored for user."""
    db = sqlite3.connect(f"file:{server.database}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute("SELECT raw FROM offline WHERE user = ?", (server.jid(user),)).fetchall()
    finally:
        db.close()
    got = set()
    for (raw,) in rows:
        text = raw.decode() if isinstance(raw, bytes) else raw
        got.add(text.split("<body>", 1)[1].split("</body>", 1)[0])
    return got


def test_abrupt_disconnects_after_initial_presence_lose_nothing(server):
    """Five logins that vanish (TCP reset) right after asking for their messages: what was
    stored stays stored, apart from what the edge wrote into a socket before its reset
    arrived (written to the client's socket is the rule for a client without XEP-0198: on a
    loaded machine the client can be descheduled between its presence and its reset), and
    the next login gets every message still stored."""
    want = send_to_offline_bob(server)
    for _ in range(5):
        bob = Raw(server.c2s_port)
        bob.login("bob", USERS["bob"], "flaky")
        bob.send("<presence/>")
        abrupt_close(bob)
    wait_until(lambda: sum('msg="session ended"' in line and 'jid="bob@localhost/flaky"' in line
                           for line in server.log().splitlines()) == 5,
               what="the five sessions ended at the session server")
    # A storage read queued now runs after the deletions their delivery reports asked for.
    server.ctl("roster", "list", "bob@localhost")
    left = stored_bodies(server, "bob")
    assert left <= want
    collect(server, left)
    # Delivered and reported written: the store empties.
    deadline = time.monotonic() + 30
    while stored_count(server, "bob"):
        assert time.monotonic() < deadline, f"{stored_count(server, 'bob')} still stored"
        time.sleep(0.1)


def bodies(elements):
    return {e.findtext(BODY) for e in elements if e.tag == MESSAGE and e.findtext(BODY)}


def test_kill_9_while_handing_out_stored_messages_loses_nothing(server):
    """What the edge wrote to the doomed client's socket before the crash is that client's
    (it reads it to the end); everything else is still stored and reaches the next login."""
    want = send_to_offline_bob(server)
    bob = Raw(server.c2s_port)
    bob.login("bob", USERS["bob"], "doomed")
    bob.send("<presence/>")
    # Let delivery start, then crash the whole process.
    first = bob.wait_for(lambda e: e.tag == MESSAGE, timeout=30)
    server.crash_and_restart()
    try:
        rest = bob.read_until_eof(timeout=30)
    except Timeout:
        rest = list(bob.items)
    got = bodies([first] + getattr(bob, "seen", []) + rest)
    bob.close()
    collect(server, want - got)


def test_kill_9_after_storing_keeps_the_messages(server):
    want = send_to_offline_bob(server, n=50, tag="k")
    server.crash_and_restart()
    assert stored_count(server, "bob") == 50
    collect(server, want)
