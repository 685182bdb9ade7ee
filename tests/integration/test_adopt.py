"""XEP-0198 resumption on another edge (docs/architecture.md, "Shards"; core/adopt.c,
sm/adopt.c): two edges behind HAProxy (PROXY protocol v2) in front of two xedge-sm
processes.  A client with stream management on edge X; kill -9 of edge X; its session
server keeps the session (orphaned) for `max` seconds, still available, and keeps the
messages sent to it meanwhile; the client reconnects through HAProxy, lands on the
other edge, and resumes there: <resumed/> with the h the session server counted, the
same full JID without a new bind, and every message it had not acknowledged.  An id
nobody holds gets <failed/>; so does a resumption after `max`, and then the messages are
in offline storage.  An edge killed and started again resumes its own old sessions the same
way."""
import re
import socket
import urllib.request

from conftest import Proc, wait_until
from peers import haproxy  # noqa: F401
from rawxmpp import NS_CLIENT, Raw, dump, q
from test_shards import PASSWORD, _cluster, ctl_socket, message_with, owner

NS_SM = "urn:xmpp:sm:3"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
MESSAGE = q(NS_CLIENT, "message")


def _edge_ids(e, c2s):
    # Distinct edge ids (the default comes from the host name: the same for both here).
    return f"stream_management:\n  edge_id: e{e}\n"


def _up(tmp_path, sockdir, cert, haproxy):
    """The cluster (two edges, proxied) and HAProxy in front of both, checking them so
    that a killed edge is left out."""
    gen = _cluster(tmp_path, sockdir, cert, edges=2, proxied=True, edge_extra=_edge_ids)
    c = next(gen)
    chk = " check inter 200ms fall 1 rise 1"
    ha = haproxy(c["c2s"][0], "v2",
                 extra_server=f"{chk}\n  server y 127.0.0.1:{c['c2s'][1]} send-proxy-v2{chk}\n"
                              "  option redispatch\n  retries 5")
    return gen, c, ha


def _edge_of(c, jid):
    """Which edge (0 or 1) logged the bind of jid."""
    on = [i for i in (0, 1) if f"jid={jid}" in c["procs"][2 + i].text()]
    assert len(on) == 1, on
    return on[0]


def _resumed_ok(admin_port):
    body = urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=10).read().decode()
    return sum(float(l.rsplit(" ", 1)[1]) for l in body.splitlines()
               if l.startswith('xedge_stream_resumptions_total{result="ok"'))


def _kill(proc):
    proc.p.kill()
    proc.p.wait(10)
    proc.stopped = True


def _until_sasl(port, user):
    """Through HAProxy, once it has left the killed edge out: STARTTLS, SASL, restart."""
    def attempt():
        try:
            c = Raw(port, timeout=5.0)
            c.open_stream()
        except (AssertionError, OSError):
            return None
        return c
    c = wait_until(attempt, timeout=30, what="a stream through HAProxy to the live edge")
    c.starttls()
    c.open_stream()
    el = c.auth(user, PASSWORD)
    assert el.tag.endswith("success"), dump(el)
    c.open_stream()
    return c


def _sm_client(port, user, resource, max_=None):
    a = Raw(port)
    a.login(user, PASSWORD, resource)
    m = f" max='{max_}'" if max_ else ""
    a.send(f"<enable xmlns='{NS_SM}' resume='true'{m}/>")
    en = a.wait_for(lambda e: e.tag == f"{{{NS_SM}}}enabled", 10.0)
    return a, en.get("id")


def test_resumed_on_the_other_edge_after_kill(tmp_path, sockdir, cert, haproxy):
    gen, c, ha = _up(tmp_path, sockdir, cert, haproxy)
    try:
        u0, u1 = c["users"]
        ja, jb = f"{u1}@localhost/a", f"{u0}@localhost/b"
        a, previd = _sm_client(ha.port, u1, "a")
        assert previd.startswith(f"e{_edge_of(c, ja)}."), previd
        b = Raw(ha.port)
        b.login(u0, PASSWORD, "b", presence=True)
        x = _edge_of(c, ja)
        assert _edge_of(c, jb) == 1 - x          # round robin: one client on each edge
        # Four stanzas from a after <enable/>, one of them answered by the edge itself
        # (the RFC 3921 session iq): h must say 4.
        a.send("<presence/>")
        a.send("<iq type='set' id='sess'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")
        assert a.wait_for(lambda e: e.get("id") == "sess", 10.0).get("type") == "result"
        for i in range(2):
            a.send(f"<message to='{u0}@localhost' type='chat'><body>from a {i}</body></message>")
        for i in range(2):
            assert message_with(b, f"from a {i}").get("from") == ja
        # Two messages a receives and never acknowledges.
        for i in range(2):
            b.send(f"<message to='{ja}' type='chat'><body>unacked {i}</body></message>")
        for i in range(2):
            message_with(a, f"unacked {i}")
        _kill(c["procs"][2 + x])
        a.close()
        sm1 = c["procs"][1]
        wait_until(lambda: "session orphaned: resumable on another edge" in sm1.text(),
                   what="the session server keeping the session")
        for i in range(3):
            b.send(f"<message to='{ja}' type='chat'><body>away {i}</body></message>")
        # Nothing bounced to the sender: the session is still there.
        b.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        b.wait_for(lambda e: e.get("id") == "p1", 10.0)
        assert not [e for e in b.seen if e.tag == MESSAGE and e.get("type") == "error"], b.seen

        a2 = _until_sasl(ha.port, u1)
        a2.send(f"<resume xmlns='{NS_SM}' previd='{previd}' h='2'/>")
        r = a2.wait_for(lambda e: e.tag in (f"{{{NS_SM}}}resumed", f"{{{NS_SM}}}failed"), 15.0)
        assert r.tag == f"{{{NS_SM}}}resumed", dump(r)
        assert r.get("previd") == previd and r.get("h") == "4", dump(r)
        # Every message not acknowledged, from the right sender: the unacked ones again
        # (duplicates allowed, loss not), then those sent while it was away, in order.
        got = []
        for body in [f"unacked {i}" for i in range(2)] + [f"away {i}" for i in range(3)]:
            m = message_with(a2, body, 15.0)
            assert m.get("from") == jb, dump(m)
            got.append(body)
        # The same full JID, on the new edge, no bind.
        a2.send(f"<message to='{u0}@localhost' type='chat'><body>back</body></message>")
        assert message_with(b, "back").get("from") == ja
        assert _resumed_ok(c["admin"][1 - x]) == 1
        # Stream management goes on there: acks, and the same id is resumable there.
        a2.send(f"<r xmlns='{NS_SM}'/>")
        ack = a2.wait_for(lambda e: e.tag == f"{{{NS_SM}}}a", 10.0)
        assert ack.get("h") == "5", dump(ack)
        a2.sock.shutdown(socket.SHUT_RDWR)
        a2.close()
        a3 = _until_sasl(ha.port, u1)
        a3.send(f"<resume xmlns='{NS_SM}' previd='{previd}' h='2'/>")
        r = a3.wait_for(lambda e: e.tag in (f"{{{NS_SM}}}resumed", f"{{{NS_SM}}}failed"), 15.0)
        assert r.tag == f"{{{NS_SM}}}resumed" and r.get("h") == "5", dump(r)
        a3.close()
        b.close()
    finally:
        gen.close()


def test_unknown_id_fails(tmp_path, sockdir, cert, haproxy):
    gen, c, ha = _up(tmp_path, sockdir, cert, haproxy)
    try:
        u0, u1 = c["users"]
        for previd in ("e9.0.0000000100000001.00112233445566778899aabbccddeeff", "nonsense",
                       "e>9.0.0000000100000001.00112233445566778899aabbccddeeff"):
            a = _until_sasl(ha.port, u1)
            a.send(f"<resume xmlns='{NS_SM}' previd='{previd}' h='0'/>")
            r = a.wait_for(lambda e: e.tag in (f"{{{NS_SM}}}resumed", f"{{{NS_SM}}}failed"), 15.0)
            assert r.tag == f"{{{NS_SM}}}failed", dump(r)
            assert r.find(f"{{{NS_STANZAS}}}item-not-found") is not None, dump(r)
            # §5: after <failed/> the client may bind a new session on the same stream.
            assert a.bind("fresh")
            a.close()
    finally:
        gen.close()


def test_other_account_cannot_adopt(tmp_path, sockdir, cert, haproxy):
    """The id alone is not enough: another account of the same shard presenting it gets
    <failed/>, and the session stays the owner's to resume."""
    gen, c, ha = _up(tmp_path, sockdir, cert, haproxy)
    try:
        u0, u1 = c["users"]
        names = [re.search(r'listen: "([^"]+)"', (tmp_path / f"sm{i}.yaml").read_text()).group(1)
                 for i in (0, 1)]
        mallory = next(f"m{i}" for i in range(1000) if owner(f"m{i}@localhost", names) == 1)
        r = ctl_socket(c["socks"][1], "user", "add", f"{mallory}@localhost", PASSWORD)
        assert r.returncode == 0, r
        a, previd = _sm_client(ha.port, u1, "a")
        x = _edge_of(c, f"{u1}@localhost/a")
        _kill(c["procs"][2 + x])
        a.close()
        wait_until(lambda: "session orphaned" in c["procs"][1].text(), what="the session orphaned")
        m = _until_sasl(ha.port, mallory)
        m.send(f"<resume xmlns='{NS_SM}' previd='{previd}' h='0'/>")
        r = m.wait_for(lambda e: e.tag in (f"{{{NS_SM}}}resumed", f"{{{NS_SM}}}failed"), 15.0)
        assert r.tag == f"{{{NS_SM}}}failed", dump(r)
        m.close()
        a2 = _until_sasl(ha.port, u1)
        a2.send(f"<resume xmlns='{NS_SM}' previd='{previd}' h='0'/>")
        r = a2.wait_for(lambda e: e.tag in (f"{{{NS_SM}}}resumed", f"{{{NS_SM}}}failed"), 15.0)
        assert r.tag == f"{{{NS_SM}}}resumed", dump(r)
        a2.close()
    finally:
        gen.close()


def test_resume_after_max_fails_and_messages_are_stored(tmp_path, sockdir, cert, haproxy):
    gen, c, ha = _up(tmp_path, sockdir, cert, haproxy)
    try:
        u0, u1 = c["users"]
        ja = f"{u1}@localhost/a"
        a, previd = _sm_client(ha.port, u1, "a", max_=2)
        a.send("<presence/>")
        x = _edge_of(c, ja)
        b = Raw(ha.port)
        b.login(u0, PASSWORD, "b", presence=True)
        _kill(c["procs"][2 + x])
        a.close()
        sm1 = c["procs"][1]
        wait_until(lambda: "session orphaned" in sm1.text(), what="the session orphaned")
        for i in range(3):
            b.send(f"<message to='{ja}' type='chat'><body>late {i}</body></message>")
        wait_until(lambda: "why=resumption timeout" in sm1.text(), timeout=30,
                   what="the orphaned session ended after max")
        a2 = _until_sasl(ha.port, u1)
        a2.send(f"<resume xmlns='{NS_SM}' previd='{previd}' h='0'/>")
        r = a2.wait_for(lambda e: e.tag in (f"{{{NS_SM}}}resumed", f"{{{NS_SM}}}failed"), 15.0)
        assert r.tag == f"{{{NS_SM}}}failed", dump(r)
        a2.bind("again")
        a2.send("<presence/>")
        for i in range(3):
            m = message_with(a2, f"late {i}", 15.0)
            assert m.get("from") == f"{u0}@localhost/b", dump(m)
        a2.close()
        b.close()
    finally:
        gen.close()


def test_resumed_on_the_same_edge_restarted(tmp_path, sockdir, cert):
    """One edge, killed and started again: the restarted edge does not hold the id it issued
    before (its registry was in the dead process), so it asks the session server, which kept
    the session: the client resumes on the restarted edge, same full JID, messages sent
    meanwhile delivered."""
    gen = _cluster(tmp_path, sockdir, cert, edges=1, edge_extra=_edge_ids)
    c = next(gen)
    try:
        u0, u1 = c["users"]
        ja = f"{u1}@localhost/a"
        a, previd = _sm_client(c["c2s"][0], u1, "a")
        a.send("<presence/>")
        assert a.ping("p1").get("type") == "result"     # both handled before the kill
        edge = c["procs"][2]
        _kill(edge)
        a.close()
        wait_until(lambda: "session orphaned" in c["procs"][1].text(), what="the session orphaned")
        again = Proc("xedge-0b", edge.argv, edge.log.parent / "edge0b.log")
        c["procs"].append(again)
        wait_until(lambda: again.text().count("session server link up") >= 4,
                   what="the restarted edge linked to both shards")
        b = Raw(c["c2s"][0])
        b.login(u0, PASSWORD, "b", presence=True)
        b.send(f"<message to='{ja}' type='chat'><body>while restarting</body></message>")
        a2 = _until_sasl(c["c2s"][0], u1)
        a2.send(f"<resume xmlns='{NS_SM}' previd='{previd}' h='0'/>")
        r = a2.wait_for(lambda e: e.tag in (f"{{{NS_SM}}}resumed", f"{{{NS_SM}}}failed"), 15.0)
        assert r.tag == f"{{{NS_SM}}}resumed" and r.get("previd") == previd, dump(r)
        assert r.get("h") == "2", dump(r)               # its presence and ping
        assert message_with(a2, "while restarting", 15.0).get("from") == f"{u0}@localhost/b"
        a2.send(f"<message to='{u0}@localhost/b' type='chat'><body>same jid</body></message>")
        assert message_with(b, "same jid").get("from") == ja
        a2.close()
        b.close()
    finally:
        gen.close()


def test_edge_stopped_cleanly_leaves_no_orphan(tmp_path, sockdir, cert):
    """SIGTERM is not a crash: the edge ends its sessions (their clients get
    <system-shutdown/>), so the session server keeps nothing for them and their contacts see
    them go at once."""
    gen = _cluster(tmp_path, sockdir, cert, edges=1, edge_extra=_edge_ids)
    c = next(gen)
    try:
        u0, u1 = c["users"]
        a, previd = _sm_client(c["c2s"][0], u1, "a")
        a.send("<presence/>")
        assert a.ping("p1").get("type") == "result"
        edge, sm1 = c["procs"][2], c["procs"][1]
        edge.terminate()
        err = a.wait_for(lambda e: e.tag == "{http://etherx.jabber.org/streams}error", 15.0)
        assert err.find("{urn:ietf:params:xml:ns:xmpp-streams}system-shutdown") is not None, dump(err)
        a.close()
        wait_until(lambda: any('msg="session ended"' in l and f'jid="{u1}@localhost/a"' in l
                               for l in sm1.text().splitlines()),
                   what="the session ended at the session server")
        assert "session orphaned" not in sm1.text()
    finally:
        gen.close()
