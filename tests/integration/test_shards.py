"""Session servers as shards (docs/architecture.md, "Shards"): each account lives on the
shard its bare JID hashes to (rendezvous hashing, parser/shard.h), and users of two
shards talk to each other as if there were one server.

In one process (`shards: 2`, threads) and across processes (two xedge-sm listed in
backend.shards).  The suite's users split across two shards named "0" and "1":
alice and bob on shard 1, carol on shard 0 (test_owner_is_the_published_hash checks
that against the C code through the servers' own counters), so alice <-> carol is the
cross-shard pair; every test asserts that its stanzas really crossed shards.
"""
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import USERS, Proc, binary, child_env, free_port, wait_until
from peers import haproxy  # noqa: F401
from rawxmpp import NS_CLIENT, Raw, dump, q

MESSAGE, PRESENCE, IQ = q(NS_CLIENT, "message"), q(NS_CLIENT, "presence"), q(NS_CLIENT, "iq")
BODY = q(NS_CLIENT, "body")
NS_ROSTER = "jabber:iq:roster"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"

_M = (1 << 64) - 1
_FNV = 0xcbf29ce484222325


def _fnv(h, data):
    for c in data:
        h = ((h ^ c) * 0x100000001b3) & _M
    return h


def _mix(h):
    h ^= h >> 30
    h = (h * 0xbf58476d1ce4e5b9) & _M
    h ^= h >> 27
    h = (h * 0x94d049bb133111eb) & _M
    return h ^ (h >> 31)


def owner(bare, names):
    """parser/shard.c's shard_owner, written again from its description."""
    k = _fnv(_FNV, bare.encode())
    scores = [_mix(_fnv(_FNV, n.encode()) ^ k) for n in names]
    return scores.index(max(scores))


SHARDED = {"shards": 2, "admin": True}


PASSWORD = "shard-Secret-9"


def login(port, user, resource, presence=True):
    c = Raw(port)
    c.login(user, USERS.get(user, PASSWORD), resource)
    if presence:
        c.send("<presence/>")
    return c


def message_with(c, body, timeout=10.0):
    return c.wait_for(lambda e: e.tag == MESSAGE and e.findtext(BODY) == body, timeout)


def presence_from(c, jid, ptype=None, timeout=10.0):
    return c.wait_for(lambda e: e.tag == PRESENCE and e.get("from") == jid and
                      e.get("type") == ptype, timeout)


def ctl_socket(sock, *args):
    return subprocess.run([str(binary("xedgectl")), "-s", str(sock), *args], capture_output=True,
                          text=True, timeout=30, env=child_env())


def subscribe_and_chat(a, ua, ra, b, ub, rb):
    """a (ua/ra) subscribes to b's presence, b approves, a sees b online; then a message
    each way, each from the right full JID."""
    a.send(f"<presence to='{ub}@localhost' type='subscribe'/>")
    presence_from(b, f"{ua}@localhost", "subscribe")
    b.send(f"<presence to='{ua}@localhost' type='subscribed'/>")
    presence_from(a, f"{ub}@localhost/{rb}")
    a.send(f"<message to='{ub}@localhost' type='chat'><body>across</body></message>")
    assert message_with(b, "across").get("from") == f"{ua}@localhost/{ra}"
    b.send(f"<message to='{ua}@localhost/{ra}' type='chat'><body>back</body></message>")
    assert message_with(a, "back").get("from") == f"{ub}@localhost/{rb}"


def edge_metric(port, name):
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return sum(float(l.rsplit(" ", 1)[1]) for l in body.splitlines()
               if l.split("{")[0].split(" ")[0] == name)


def test_users_split_across_shards():
    """The fixed facts the other tests stand on."""
    assert owner("alice@localhost", ["0", "1"]) == 1
    assert owner("bob@localhost", ["0", "1"]) == 1
    assert owner("carol@localhost", ["0", "1"]) == 0


@pytest.mark.parametrize("server", [SHARDED], indirect=True)
def test_owner_is_the_published_hash(server):
    """Each user's session is on the shard the hash names: xedgectl's `sessions` asks
    every shard's admin socket, and each bound session counts on its own shard only."""
    carol = login(server.c2s_port, "carol", "c")
    alice = login(server.c2s_port, "alice", "a")
    try:
        wait_until(lambda: server.metric("xedge_sm_sessions") == 2, what="two sessions bound")
        lines = server.sessions()
        assert any("carol@localhost/c" in l for l in lines), lines
        assert any("alice@localhost/a" in l for l in lines), lines
        # Shard 0's own socket lists carol only, shard 1's alice only.
        r0 = server.ctl("sessions").stdout
        assert "carol@localhost/c" in r0 and "alice@localhost/a" in r0, r0
        one = ctl_socket(f"{server.admin_socket}.1", "sessions")
        assert "alice@localhost/a" in one.stdout and "carol" not in one.stdout, one
    finally:
        alice.close()
        carol.close()


@pytest.mark.parametrize("server", [SHARDED], indirect=True)
def test_cross_shard_chat_presence_and_roster(server):
    """alice (shard 1) and carol (shard 0): subscription handshake, roster pushes on
    both sides, presence both ways, chat both ways, an iq between full JIDs."""
    alice = login(server.c2s_port, "alice", "a", presence=False)
    carol = login(server.c2s_port, "carol", "c", presence=False)
    try:
        for c in (alice, carol):    # interested resources get roster pushes (RFC 6121 §2.1.6)
            c.send("<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq>")
            c.wait_for(lambda e: e.tag == IQ and e.get("id") == "r0", 10.0)
            c.send("<presence/>")
        alice.send("<presence to='carol@localhost' type='subscribe'/>")
        req = presence_from(carol, "alice@localhost", "subscribe")
        assert req.get("to") in ("carol@localhost", "carol@localhost/c"), dump(req)
        carol.send("<presence to='alice@localhost' type='subscribed'/>")
        # alice's roster push says both (to) and she gets carol's presence.
        push = alice.wait_for(lambda e: e.tag == IQ and e.get("type") == "set" and
                              e.find(f"{{{NS_ROSTER}}}query/{{{NS_ROSTER}}}item[@jid='carol@localhost']")
                              is not None and
                              e.find(f"{{{NS_ROSTER}}}query/{{{NS_ROSTER}}}item").get("subscription")
                              == "to", 10.0)
        alice.send(f"<iq type='result' id='{push.get('id')}'/>")
        presence_from(alice, "carol@localhost/c")
        # And the other way.
        carol.send("<presence to='alice@localhost' type='subscribe'/>")
        presence_from(alice, "carol@localhost", "subscribe")
        alice.send("<presence to='carol@localhost' type='subscribed'/>")
        presence_from(carol, "alice@localhost/a")
        # Chat both ways, in order.
        for i in range(20):
            alice.send(f"<message to='carol@localhost' type='chat'><body>a{i}</body></message>")
        got = [message_with(carol, f"a{i}").findtext(BODY) for i in range(20)]
        assert got == [f"a{i}" for i in range(20)]
        carol.send("<message to='alice@localhost/a' type='chat'><body>hi alice</body></message>")
        m = message_with(alice, "hi alice")
        assert m.get("from") == "carol@localhost/c", dump(m)
        # An iq to a full JID on the other shard, and its answer back.
        alice.send("<iq type='get' id='v1' to='carol@localhost/c'><query xmlns='jabber:iq:version'/></iq>")
        got = carol.wait_for(lambda e: e.tag == IQ and e.get("id") == "v1", 10.0)
        assert got.get("from") == "alice@localhost/a", dump(got)
        carol.send("<iq type='result' id='v1' to='alice@localhost/a'><query xmlns='jabber:iq:version'>"
                   "<name>raw</name></query></iq>")
        r = alice.wait_for(lambda e: e.tag == IQ and e.get("id") == "v1", 10.0)
        assert r.get("type") == "result" and r.get("from") == "carol@localhost/c", dump(r)
        # carol goes offline: alice sees unavailable across the shards.
        carol.send("</stream:stream>")
        presence_from(alice, "carol@localhost/c", "unavailable")
    finally:
        alice.close()
        carol.close()
    # The stanzas crossed shards, straight from thread to thread (no edge relay), and
    # every one sent arrived.
    # (The clients' unavailable presence may still be crossing: wait for the two to agree.)
    def crossed():
        m = server.metrics()
        out = m.get('xedge_sm_shard_stanzas_total{dir="out"}', 0)
        return out >= 25 and m.get('xedge_sm_shard_stanzas_total{dir="in"}', -1) == out
    wait_until(crossed, what="every stanza one shard sent to the other received there")
    assert server.metric("xedge_shard_relayed_total") == 0


@pytest.mark.parametrize("server", [SHARDED], indirect=True)
def test_cross_shard_offline_and_errors(server):
    """A message to an offline user of the other shard is stored there and delivered at
    its next login; one to an account that does not exist on the other shard comes back
    as service-unavailable (RFC 6121 §8.5.2.2.1), from the address it was sent to."""
    alice = login(server.c2s_port, "alice", "a")
    try:
        alice.send("<message to='carol@localhost' type='chat' id='m1'><body>while away</body></message>")
        owner_of_nobody = next(n for n in (f"nobody{i}" for i in range(100))
                               if owner(f"{n}@localhost", ["0", "1"]) == 0)
        alice.send(f"<message to='{owner_of_nobody}@localhost' type='chat' id='m2'><body>x</body></message>")
        err = alice.wait_for(lambda e: e.tag == MESSAGE and e.get("id") == "m2", 10.0)
        assert err.get("type") == "error" and err.get("from") == f"{owner_of_nobody}@localhost", dump(err)
        assert err.find(f"{{{NS_CLIENT}}}error/{{{NS_STANZAS}}}service-unavailable") is not None, dump(err)
        wait_until(lambda: server.metric("xedge_sm_offline_stored_total") == 1,
                   what="the message stored on carol's shard")
        carol = login(server.c2s_port, "carol", "c")
        try:
            m = message_with(carol, "while away")
            assert m.get("from") == "alice@localhost/a", dump(m)
        finally:
            carol.close()
    finally:
        alice.close()


@pytest.mark.parametrize("server", [SHARDED], indirect=True)
def test_xedgectl_follows_the_owner(server):
    """Commands about an account go to the shard that owns it: a roster item added for
    carol (shard 0) and for alice (shard 1) reaches each one's client as a push."""
    alice = login(server.c2s_port, "alice", "a", presence=False)
    carol = login(server.c2s_port, "carol", "c", presence=False)
    try:
        for c in (alice, carol):
            c.send("<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq>")
            c.wait_for(lambda e: e.tag == IQ and e.get("id") == "r0", 10.0)
        server.roster_add("alice", "dave@localhost", "none", "Dave")
        server.roster_add("carol", "erin@localhost", "none", "Erin")
        for c, contact in ((alice, "dave@localhost"), (carol, "erin@localhost")):
            c.wait_for(lambda e, contact=contact: e.tag == IQ and e.get("type") == "set" and
                       e.find(f"{{{NS_ROSTER}}}query/{{{NS_ROSTER}}}item[@jid='{contact}']")
                       is not None, 10.0)
        assert "dave@localhost" in server.ctl("roster", "list", "alice@localhost").stdout
        assert "erin@localhost" in server.ctl("roster", "list", "carol@localhost").stdout
    finally:
        alice.close()
        carol.close()


# ---- several xedge-sm processes -----------------------------------------------------

def _cluster(tmp_path, sockdir, cert, edges=1, proxied=False, edge_extra=None, sm_extra=None):
    """Two xedge-sm processes on one database listed in backend.shards, `edges` edges
    linked to both (their c2s listeners want a PROXY header when `proxied`), and one
    account on each shard; sm_extra(users) is more YAML for both xedge-sm.  Yields
    {"c2s": [ports], "admin": [ports], "procs": [sm0, sm1, edges...], "users": [on 0, on 1]}."""
    crt, key = cert
    ports = [free_port(), free_port()]
    c2s = [free_port() for _ in range(edges)]
    admin = [free_port() for _ in range(edges)]
    names = [f"127.0.0.1:{p}" for p in ports]
    # The owner depends on the names, which hold random ports: pick one user per shard.
    users = [next(f"u{i}" for i in range(1000) if owner(f"u{i}@localhost", names) == k)
             for k in (0, 1)]
    shards = "".join(f"    - \"{n}\"\n" for n in names)
    domain = f"domains:\n  - name: localhost\n    cert: {crt}\n    key: {key}\n"
    procs = []
    try:
        for i, p in enumerate(ports):
            cfg = tmp_path / f"sm{i}.yaml"
            cfg.write_text("log_level: debug\n" + domain +
                           f"backend:\n  shards:\n{shards}"
                           "session_server:\n"
                           f"  database: {tmp_path / 'accounts.db'}\n"
                           f"  admin_socket: {sockdir / f'sm{i}.sock'}\n"
                           f"  listen: \"{names[i]}\"\n  secret: \"s3cret\"\n" +
                           (sm_extra(users) if sm_extra else ""))
            sm = Proc(f"xedge-sm-{i}", [str(binary("xedge-sm")), "-c", str(cfg)], tmp_path / f"sm{i}.log")
            procs.append(sm)
            wait_until(lambda sm=sm: "xedge-sm started" in sm.text(), what=f"xedge-sm {i} started")
        for e in range(edges):
            edge_cfg = tmp_path / f"edge{e}.yaml"
            edge_cfg.write_text("workers: 2\nlog_level: debug\n" + domain +
                                f"listeners:\n  - type: c2s\n    address: 127.0.0.1:{c2s[e]}\n" +
                                ("    proxy_protocol: true\n" if proxied else "") +
                                f"admin:\n  address: 127.0.0.1:{admin[e]}\n"
                                f"backend:\n  shards:\n{shards}  secret: \"s3cret\"\n" +
                                (edge_extra(e, c2s) if edge_extra else ""))
            edge = Proc(f"xedge-{e}", [str(binary("xedge")), "-c", str(edge_cfg)],
                        tmp_path / f"edge{e}.log")
            procs.append(edge)
            wait_until(lambda edge=edge: edge.text().count("session server link up") >= 4,
                       what="4 links up (2 workers x 2 shards)")
        for i, user in enumerate(users):
            r = ctl_socket(sockdir / f"sm{i}.sock", "user", "add", f"{user}@localhost", PASSWORD)
            assert r.returncode == 0, r
        yield {"c2s": c2s, "admin": admin, "procs": procs, "users": users,
               "socks": [sockdir / "sm0.sock", sockdir / "sm1.sock"]}
    finally:
        problems = []
        for p in reversed(procs):
            problems += p.stop()
        if problems:
            pytest.fail("shutdown:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def two_sm(tmp_path, sockdir, cert):
    """One edge, two xedge-sm processes (_cluster); c2s and admin are the edge's ports."""
    for c in _cluster(tmp_path, sockdir, cert):
        # The wrong process says which shard owns the account.
        r = ctl_socket(sockdir / "sm0.sock", "roster", "list", f"{c['users'][1]}@localhost")
        assert r.returncode == 1 and "shard 1 of backend.shards owns this account" in r.stderr, r
        yield {**c, "c2s": c["c2s"][0], "admin": c["admin"][0]}


def test_two_processes_chat_and_presence(two_sm):
    """One user on each xedge-sm: presence and chat cross the processes, and each
    process holds only its own user's session."""
    u0, u1 = two_sm["users"]
    a = login(two_sm["c2s"], u1, "a")
    b = login(two_sm["c2s"], u0, "b")
    try:
        subscribe_and_chat(a, u1, "a", b, u0, "b")
    finally:
        a.close()
        b.close()
    # Between processes the edge passes the stanzas on (core/route.c), every one.
    assert edge_metric(two_sm["admin"], "xedge_shard_relayed_total") >= 4
    assert edge_metric(two_sm["admin"], "xedge_shard_relay_failed_total") == 0
    sm0, sm1 = two_sm["procs"][0].text(), two_sm["procs"][1].text()
    assert f'jid="{u0}@localhost/b"' in sm0 and f'jid="{u1}@localhost/a"' not in sm0
    assert f'jid="{u1}@localhost/a"' in sm1 and f'jid="{u0}@localhost/b"' not in sm1


def test_one_shard_killed(two_sm):
    """kill -9 of one xedge-sm: only its users lose their sessions (a stream error, not
    silence); the other shard's users go on; a message to a user of the dead shard comes
    back to its sender as an error instead of vanishing; once the shard is back its
    users log in again and messages flow."""
    u0, u1 = two_sm["users"]
    sm1 = two_sm["procs"][1]
    a = login(two_sm["c2s"], u1, "a")
    b = login(two_sm["c2s"], u0, "b")
    try:
        sm1.p.kill()
        sm1.p.wait(10)
        sm1.stopped = True
        err = a.wait_for(lambda e: e.tag == "{http://etherx.jabber.org/streams}error", 10.0)
        assert err.find("{urn:ietf:params:xml:ns:xmpp-streams}internal-server-error") is not None, dump(err)
        r = b.ping("alive")
        assert r.get("type") == "result", dump(r)
        b.send(f"<message to='{u1}@localhost' type='chat' id='lost1'><body>to the dead shard</body></message>")
        e = b.wait_for(lambda x: x.tag == MESSAGE and x.get("id") == "lost1", 10.0)
        assert e.get("type") == "error", dump(e)
        assert e.find(f"{{{NS_CLIENT}}}error/{{{NS_STANZAS}}}internal-server-error") is not None, dump(e)
    finally:
        a.close()
    # Back on the same config and database.
    again = Proc("xedge-sm-1b", sm1.argv, sm1.log.parent / "sm1b.log")
    two_sm["procs"].insert(2, again)
    edge = two_sm["procs"][-1]
    ups = edge.text().count("session server link up")
    wait_until(lambda: edge.text().count("session server link up") >= ups + 2, timeout=30,
               what="both workers relinked to the restarted shard")
    a = login(two_sm["c2s"], u1, "a2")
    try:
        b.send(f"<message to='{u1}@localhost/a2' type='chat'><body>welcome back</body></message>")
        assert message_with(a, "welcome back").get("from") == f"{u0}@localhost/b"
    finally:
        a.close()
        b.close()


NS_SM = "urn:xmpp:sm:3"


def test_shard_restart_keeps_stream_management_sessions(two_sm):
    """kill -9 of the shard holding a session with XEP-0198 on: the client is not
    disconnected; once the shard is back the edge binds the session there again (same
    full JID, no new login), replays its presence (its contact on the other shard sees
    it again), and messages flow both ways on the same stream."""
    u0, u1 = two_sm["users"]
    sm1, edge = two_sm["procs"][1], two_sm["procs"][-1]
    a = Raw(two_sm["c2s"])
    a.login(u1, PASSWORD, "a")
    a.send(f"<enable xmlns='{NS_SM}' resume='true'/>")
    a.wait_for(lambda e: e.tag == f"{{{NS_SM}}}enabled", 10.0)
    a.send("<presence/>")
    b = login(two_sm["c2s"], u0, "b")
    try:
        a.send(f"<presence to='{u0}@localhost' type='subscribe'/>")
        presence_from(b, f"{u1}@localhost", "subscribe")
        b.send(f"<presence to='{u1}@localhost' type='subscribed'/>")
        b.send(f"<presence to='{u1}@localhost' type='subscribe'/>")
        presence_from(a, f"{u0}@localhost", "subscribe")
        a.send(f"<presence to='{u0}@localhost' type='subscribed'/>")
        a.send("<presence><status>before</status></presence>")
        presence_from(b, f"{u1}@localhost/a")
        # The roster rows are written behind: killed before they are on disk, the
        # restarted shard would not know u0 may see u1's presence.  `roster list` reads
        # the database after every earlier write (jobs run in order).
        wait_until(lambda: f"{u0}@localhost both" in
                   ctl_socket(two_sm["socks"][1], "roster", "list", f"{u1}@localhost").stdout,
                   what="the subscription on disk")
        b.seen = []
        sm1.p.kill()
        sm1.p.wait(10)
        sm1.stopped = True
        wait_until(lambda: "session waits for its shard to return" in edge.text(),
                   what="the edge keeping the session")
        again = Proc("xedge-sm-1b", sm1.argv, sm1.log.parent / "sm1b.log")
        two_sm["procs"].insert(2, again)
        wait_until(lambda: "session bound again on its restarted shard" in edge.text(), timeout=30,
                   what="the session bound again")
        # Its presence, replayed, reaches the contact on the other shard.
        p = b.wait_for(lambda e: e.tag == PRESENCE and e.get("from") == f"{u1}@localhost/a" and
                       e.findtext(f"{{{NS_CLIENT}}}status") == "before", 10.0)
        assert p.get("type") is None, dump(p)
        b.send(f"<message to='{u1}@localhost/a' type='chat'><body>still here?</body></message>")
        assert message_with(a, "still here?").get("from") == f"{u0}@localhost/b"
        a.send(f"<message to='{u0}@localhost' type='chat'><body>yes</body></message>")
        assert message_with(b, "yes").get("from") == f"{u1}@localhost/a"
        # No stream error, no new login: the same stream all along.
        assert not [e for e in a.items if e.tag == "{http://etherx.jabber.org/streams}error"]
        assert edge_metric(two_sm["admin"], "xedge_session_rebinds_total") == 1
    finally:
        a.close()
        b.close()


def sm_h(c, at_least=None, timeout=20.0):
    """The h the server acknowledges (<r/> answered by <a/>); with at_least, ask again
    until it reaches that (confirmations from another process are asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        c.send(f"<r xmlns='{NS_SM}'/>")
        h = int(c.wait_for(lambda e: e.tag == f"{{{NS_SM}}}a", 10.0).get("h"))
        if at_least is None or h >= at_least or time.monotonic() > deadline:
            return h
        time.sleep(0.05)


def test_acknowledged_means_survives_a_shard_kill(two_sm):
    """XEP-0198's <a h/> counts only what the shard confirmed (WIRE_HANDLED): a shard
    frozen (SIGSTOP) holds three messages of its user's client unread; the client asks for
    an ack and hears they are not handled; the shard is killed and started again; the edge
    binds the session there again and sends the three once more, so they reach their
    recipient on the other shard, and only then does h count them."""
    u0, u1 = two_sm["users"]
    sm1 = two_sm["procs"][1]
    a = Raw(two_sm["c2s"])
    a.login(u1, PASSWORD, "a")
    a.send(f"<enable xmlns='{NS_SM}' resume='true'/>")
    a.wait_for(lambda e: e.tag == f"{{{NS_SM}}}enabled", 10.0)
    a.send("<presence/>")
    b = login(two_sm["c2s"], u0, "b")
    try:
        assert sm_h(a, at_least=1) == 1          # the presence, confirmed
        sm1.p.send_signal(signal.SIGSTOP)
        bodies = [f"in the frozen shard {i}" for i in range(3)]
        for body in bodies:
            a.send(f"<message to='{u0}@localhost/b' type='chat'><body>{body}</body></message>")
        assert sm_h(a) == 1, "a stanza the shard never saw was acknowledged"
        sm1.p.kill()
        sm1.p.wait(10)
        sm1.stopped = True
        again = Proc("xedge-sm-1b", sm1.argv, sm1.log.parent / "sm1b.log")
        two_sm["procs"].insert(2, again)
        for body in bodies:
            assert message_with(b, body, timeout=30.0).get("from") == f"{u1}@localhost/a"
        assert sm_h(a, at_least=4) == 4
        assert not [e for e in a.items if e.tag == "{http://etherx.jabber.org/streams}error"]
    finally:
        a.close()
        b.close()


def test_detached_session_survives_a_shard_restart(two_sm):
    """A XEP-0198 session waiting for its client to resume when its shard is killed is
    kept and bound again on the restarted shard: a message sent to it then is waiting
    for the client, which resumes (no new login) and gets it."""
    u0, u1 = two_sm["users"]
    sm1, edge = two_sm["procs"][1], two_sm["procs"][-1]
    a = Raw(two_sm["c2s"])
    a.login(u1, PASSWORD, "a")
    a.send(f"<enable xmlns='{NS_SM}' resume='true'/>")
    previd = a.wait_for(lambda e: e.tag == f"{{{NS_SM}}}enabled", 10.0).get("id")
    a.send("<presence/>")
    assert sm_h(a, at_least=1) == 1
    a.sock.close()                               # abrupt: the session is detached
    wait_until(lambda: "session detached: resumable" in edge.text(), what="the session detached")
    b = login(two_sm["c2s"], u0, "b")
    try:
        sm1.p.kill()
        sm1.p.wait(10)
        sm1.stopped = True
        again = Proc("xedge-sm-1b", sm1.argv, sm1.log.parent / "sm1b.log")
        two_sm["procs"].insert(2, again)
        wait_until(lambda: "session bound again on its restarted shard" in edge.text(), timeout=30,
                   what="the detached session bound again")
        b.send(f"<message to='{u1}@localhost/a' type='chat' id='w1'><body>while you were away</body></message>")
        a2 = until_sasl(two_sm["c2s"], u1)
        try:
            a2.send(f"<resume xmlns='{NS_SM}' previd='{previd}' h='0'/>")
            r = a2.wait_for(lambda e: e.tag in (f"{{{NS_SM}}}resumed", f"{{{NS_SM}}}failed"), 10.0)
            assert r.tag == f"{{{NS_SM}}}resumed", dump(r)
            assert message_with(a2, "while you were away").get("from") == f"{u0}@localhost/b"
        finally:
            a2.close()
    finally:
        b.close()


def test_two_edges_behind_haproxy(tmp_path, sockdir, cert, haproxy):
    """Several edges (DESIGN §5): HAProxy in TCP mode with PROXY protocol v2 in front of two
    edges, each linked to both shards; clients spread over the edges (round robin) and a
    user of each shard talk across edges and shards.  The edges' listeners require the PROXY
    header, so every client came through HAProxy."""
    gen = _cluster(tmp_path, sockdir, cert, edges=2, proxied=True)
    c = next(gen)
    try:
        ha = haproxy(c["c2s"][0], "v2", extra_server=f"\n  server y 127.0.0.1:{c['c2s'][1]} send-proxy-v2")
        u0, u1 = c["users"]
        a = login(ha.port, u1, "a")
        b = login(ha.port, u0, "b")
        try:
            edge0, edge1 = c["procs"][2].text(), c["procs"][3].text()
            on0 = [u for u in (u0, u1) if f"jid={u}@localhost/" in edge0]
            on1 = [u for u in (u0, u1) if f"jid={u}@localhost/" in edge1]
            assert len(on0) == 1 and len(on1) == 1, (on0, on1)   # one client on each edge
            subscribe_and_chat(a, u1, "a", b, u0, "b")
        finally:
            a.close()
            b.close()
    finally:
        gen.close()


def test_edge_killed_nothing_unacknowledged_lost(tmp_path, sockdir, cert):
    """kill -9 of the edge holding a XEP-0198 client that received messages and did not
    acknowledge them: the session server counts a stream-managed session's messages as
    delivered only when the client acknowledged them, so when the session ends (here: its
    resumption time, max='2', passes with its edge gone; test_adopt.py resumes it) it
    re-routes those messages; the client, logging in again through the other edge with
    another resource, gets every one of them."""
    gen = _cluster(tmp_path, sockdir, cert, edges=2)
    c = next(gen)
    try:
        u0, u1 = c["users"]
        edge0 = c["procs"][2]
        a = Raw(c["c2s"][0])
        a.login(u1, PASSWORD, "a")
        a.send(f"<enable xmlns='{NS_SM}' resume='true' max='2'/>")
        a.wait_for(lambda e: e.tag == f"{{{NS_SM}}}enabled", 10.0)
        a.send("<presence/>")
        b = login(c["c2s"][1], u0, "b")
        try:
            bodies = [f"unacked {i}" for i in range(5)]
            for body in bodies:
                b.send(f"<message to='{u1}@localhost/a' type='chat'><body>{body}</body></message>")
            for body in bodies:       # received, never acknowledged (no <a/> sent)
                message_with(a, body)
            edge0.p.kill()
            edge0.p.wait(10)
            edge0.stopped = True
            a.close()
            wait_until(lambda: "edge link closed" in c["procs"][1].text(), what="the shard seeing the edge gone")
            a2 = login(c["c2s"][1], u1, "a2")
            try:
                got = [message_with(a2, body) for body in bodies]
                for m in got:
                    assert m.get("from") == f"{u0}@localhost/b", dump(m)
            finally:
                a2.close()
        finally:
            b.close()
    finally:
        gen.close()


def until_sasl(port, user):
    """STARTTLS, SASL, restart: ready for bind or <resume/>."""
    c = Raw(port)
    c.open_stream()
    c.starttls()
    c.open_stream()
    el = c.auth(user, PASSWORD)
    assert el.tag.endswith("success"), dump(el)
    c.open_stream()
    return c


def test_resume_on_the_wrong_edge_is_sent_to_the_right_one(tmp_path, sockdir, cert):
    """A resumption id names its edge (stream_management.edge_id); a <resume/> that reaches
    another edge of the deployment (stream_management.peers) is answered with
    <see-other-host/> naming the edge that holds the session, where it resumes."""
    def extra(e, c2s):
        other = 1 - e
        return (f"stream_management:\n  edge_id: e{e}\n"
                f"  peers:\n    e{other}: \"127.0.0.1:{c2s[other]}\"\n")

    gen = _cluster(tmp_path, sockdir, cert, edges=2, edge_extra=extra)
    c = next(gen)
    try:
        u0, u1 = c["users"]
        a = Raw(c["c2s"][0])
        a.login(u1, PASSWORD, "a")
        a.send(f"<enable xmlns='{NS_SM}' resume='true'/>")
        en = a.wait_for(lambda e: e.tag == f"{{{NS_SM}}}enabled", 10.0)
        previd = en.get("id")
        assert previd.startswith("e0."), previd
        a.send("<presence/>")
        a.sock.shutdown(socket.SHUT_RDWR)      # lost without </stream>: the session waits
        a.close()
        wrong = until_sasl(c["c2s"][1], u1)
        wrong.send(f"<resume xmlns='{NS_SM}' previd='{previd}' h='0'/>")
        err = wrong.wait_for(lambda e: e.tag == "{http://etherx.jabber.org/streams}error", 10.0)
        host = err.findtext("{urn:ietf:params:xml:ns:xmpp-streams}see-other-host")
        assert host == f"127.0.0.1:{c['c2s'][0]}", dump(err)
        wrong.close()
        right = until_sasl(c["c2s"][0], u1)
        right.send(f"<resume xmlns='{NS_SM}' previd='{previd}' h='0'/>")
        r = right.wait_for(lambda e: e.tag in (f"{{{NS_SM}}}resumed", f"{{{NS_SM}}}failed"), 10.0)
        assert r.tag == f"{{{NS_SM}}}resumed" and r.get("previd") == previd, dump(r)
        right.close()
        assert edge_metric(c["admin"][1], "xedge_stream_resume_redirects_total") == 1
    finally:
        gen.close()
