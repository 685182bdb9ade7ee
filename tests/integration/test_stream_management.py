"""XEP-0198 Stream Management held at the edge (issue 13): enable after bind, <r/>/<a/>
counting, the edge asking for acks, resumption after an abrupt close (stanzas sent while
the client was away delivered after <resumed/>), <failed/> for unknown and other users'
ids, <handled-count-too-high/>, resumption on another worker, and what happens to
unacknowledged stanzas when a session ends (XEP-0198 §4): messages go to another resource
or offline storage, iq requests are answered with <service-unavailable/>."""
import asyncio
import re
import socket
import time

import pytest

from conftest import USERS, wait_until
from slixclient import Client, close_all, run
from rawxmpp import NS_CLIENT, NS_STANZA_ERR, STREAM_ERROR, Raw, Timeout, dump, q

NS_SM = "urn:xmpp:sm:3"
MESSAGE, IQ, BODY = q(NS_CLIENT, "message"), q(NS_CLIENT, "iq"), q(NS_CLIENT, "body")
ONE_WORKER = [{"workers": 1, "admin": True}]


def sm(local):
    return q(NS_SM, local)


def login_sm(port, user, resource, resume=True, max_=None):
    """Log in, bind, enable stream management.  Returns (client, <enabled/>)."""
    c = Raw(port)
    c.login(user, USERS[user], resource)
    attrs = " resume='true'" if resume else ""
    if max_ is not None:
        attrs += f" max='{max_}'"
    c.send(f"<enable xmlns='{NS_SM}'{attrs}/>")
    en = c.expect(sm("enabled"), timeout=10)
    return c, en


def login_until_sasl(port, user):
    """STARTTLS, SASL, restart: ready for bind or <resume/>.  Returns (client, features)."""
    c = Raw(port)
    c.open_stream()
    c.starttls()
    c.open_stream()
    el = c.auth(user, USERS[user])
    assert el.tag.endswith("success"), dump(el)
    return c, c.open_stream()


def ask_h(c, timeout=10):
    """The edge's count of our stanzas, through <r/> -> <a h/>."""
    c.send(f"<r xmlns='{NS_SM}'/>")
    return int(c.wait_for(lambda e: e.tag == sm("a"), timeout).get("h"))


def abrupt_close(c):
    """The TCP connection goes without </stream:stream> (and without close_notify)."""
    try:
        c.sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    c.close()


@pytest.mark.parametrize("server", ONE_WORKER, indirect=True)
def test_feature_enable_and_counting(server):
    c, feats = login_until_sasl(server.c2s_port, "alice")
    try:
        assert feats.find(sm("sm")) is not None, f"no <sm/> feature after SASL: {dump(feats)}"
        # §3: not before binding.
        c.send(f"<enable xmlns='{NS_SM}'/>")
        el = c.expect(sm("failed"), timeout=10)
        assert el.find(q(NS_STANZA_ERR, "unexpected-request")) is not None, dump(el)
        c.bind("counting")
        c.send(f"<enable xmlns='{NS_SM}' resume='true' max='60'/>")
        en = c.expect(sm("enabled"), timeout=10)
        assert en.get("resume") in ("true", "1") and en.get("id"), dump(en)
        assert int(en.get("max")) == 60, "the client's smaller max is not what was granted"
        # The id is not guessable: 128 random bits at its end.
        assert re.fullmatch(r"[A-Za-z0-9_-]+\.\d+\.[0-9a-f]{16}\.[0-9a-f]{32}", en.get("id")), en.get("id")
        assert ask_h(c) == 0
        for i in range(3):
            c.ping(f"p{i}", timeout=10)
        c.send("<presence/>")
        assert ask_h(c) == 4, "three iqs and a presence are four handled stanzas"
        # A second <enable/> is a stream error (§3).
        c.send(f"<enable xmlns='{NS_SM}'/>")
        el = c.wait_for(lambda e: e.tag == STREAM_ERROR, 10)
        assert el.find(q("urn:ietf:params:xml:ns:xmpp-streams", "policy-violation")) is not None, dump(el)
    finally:
        c.close()


@pytest.mark.parametrize("server", ONE_WORKER, indirect=True)
def test_edge_asks_for_acks_and_drops_acked(server):
    bob, _ = login_sm(server.c2s_port, "bob", "acks")
    alice = Raw(server.c2s_port)
    try:
        alice.login("alice", USERS["alice"], "sender")
        for i in range(3):
            alice.send(f"<message to='{bob.jid}' type='chat' id='a{i}'><body>a{i}</body></message>")
        # A few unacked stanzas: the edge asks within its short period (2 s).
        items = [bob.next_item(10) for _ in range(4)]
        assert [e.tag for e in items] == [MESSAGE] * 3 + [sm("r")], [dump(e) for e in items]
        bob.send(f"<a xmlns='{NS_SM}' h='3'/>")
        # Eight unacknowledged stanzas: the edge asks at once, right after the eighth.
        for i in range(9):
            alice.send(f"<message to='{bob.jid}' type='chat' id='b{i}'><body>b{i}</body></message>")
        items = [bob.next_item(10) for _ in range(10)]
        assert [e.tag for e in items] == [MESSAGE] * 8 + [sm("r"), MESSAGE], [dump(e) for e in items]
        bob.send(f"<a xmlns='{NS_SM}' h='11'/>")
        # An ack past what was sent would end the stream: these were in range.
        assert bob.ping("still-alive", timeout=10).get("type") == "result"
        assert ask_h(bob) == 1
    finally:
        alice.close()
        bob.close()


@pytest.mark.parametrize("server", ONE_WORKER, indirect=True)
def test_ack_past_what_was_sent_is_a_stream_error(server):
    c, _ = login_sm(server.c2s_port, "alice", "toohigh")
    try:
        c.ping("one", timeout=10)          # one stanza sent to the client: the result
        c.send(f"<a xmlns='{NS_SM}' h='5'/>")
        el = c.wait_for(lambda e: e.tag == STREAM_ERROR, 10)
        assert el.find(q("urn:ietf:params:xml:ns:xmpp-streams", "undefined-condition")) is not None, dump(el)
        hc = el.find(sm("handled-count-too-high"))
        assert hc is not None, dump(el)
        assert hc.get("h") == "5" and hc.get("send-count") == "1", dump(el)
    finally:
        c.close()


@pytest.mark.parametrize("server", ONE_WORKER, indirect=True)
def test_resume_after_abrupt_close_delivers_what_was_missed(server):
    bob, en = login_sm(server.c2s_port, "bob", "phone")
    alice = Raw(server.c2s_port)
    try:
        alice.login("alice", USERS["alice"], "sender")
        # Stanza 1 to bob: the ping's result (bob handled one: the ping).
        bob.ping("first", timeout=10)
        alice.send(f"<message to='{bob.jid}' type='chat' id='before'><body>before</body></message>")
        bob.wait_for(lambda e: e.tag == MESSAGE and e.findtext(BODY) == "before", 10)
        handled = ask_h(bob)
        assert handled == 1
        # Stanza 2 received and acknowledged; stanza 3 received and never acknowledged.
        bob.send(f"<a xmlns='{NS_SM}' h='2'/>")
        alice.send(f"<message to='{bob.jid}' type='chat' id='unacked'><body>unacked</body></message>")
        bob.wait_for(lambda e: e.tag == MESSAGE and e.findtext(BODY) == "unacked", 10)
        abrupt_close(bob)
        server.wait_log(r"session detached: resumable", timeout=15)
        for i in range(3):
            alice.send(f"<message to='{bob.jid}' type='chat' id='away{i}'><body>away{i}</body></message>")
        alice.ping("sent-away", timeout=10)

        bob2, _ = login_until_sasl(server.c2s_port, "bob")
        bob2.send(f"<resume xmlns='{NS_SM}' previd='{en.get('id')}' h='2'/>")
        el = bob2.expect(sm("resumed"), timeout=10)
        assert el.get("previd") == en.get("id")
        assert int(el.get("h")) == handled
        bodies = []
        while len(bodies) < 4:
            e = bob2.next_item(10)
            if e.tag == MESSAGE:
                bodies.append(e.findtext(BODY))
        assert bodies == ["unacked", "away0", "away1", "away2"], bodies
        # Live traffic after the resent ones, on the same full JID (no new bind).
        alice.send(f"<message to='{bob.jid}' type='chat' id='live'><body>live</body></message>")
        e = bob2.wait_for(lambda e: e.tag == MESSAGE, 10)
        assert e.findtext(BODY) == "live" and e.get("to") == bob.jid
        assert ask_h(bob2) == handled
        assert server.metric("xedge_stream_resumptions_total", result="ok") >= 1
        assert server.metric("xedge_sessions_detached_total") >= 1
        bob2.close()
    finally:
        alice.close()


@pytest.mark.parametrize("server", ONE_WORKER, indirect=True)
def test_resume_failures(server):
    bob, en = login_sm(server.c2s_port, "bob", "victim")
    try:
        abrupt_close(bob)
        server.wait_log(r"session detached: resumable", timeout=15)
        prefix, token = en.get("id").rsplit(".", 1)
        bogus = prefix + "." + ("0" * 32 if token != "0" * 32 else "1" * 32)
        # A guessed token, and garbage.
        for previd in (bogus, "nonsense", en.get("id") + "x"):
            c, _ = login_until_sasl(server.c2s_port, "bob")
            c.send(f"<resume xmlns='{NS_SM}' previd='{previd}' h='0'/>")
            el = c.expect(sm("failed"), timeout=10)
            assert el.find(q(NS_STANZA_ERR, "item-not-found")) is not None, dump(el)
            # The stream goes on: the client binds instead.
            c.bind("fallback")
            c.close()
        # Another account's id is unknown to this one, and reveals nothing (no h).
        c, _ = login_until_sasl(server.c2s_port, "alice")
        c.send(f"<resume xmlns='{NS_SM}' previd='{en.get('id')}' h='0'/>")
        el = c.expect(sm("failed"), timeout=10)
        assert el.find(q(NS_STANZA_ERR, "item-not-found")) is not None and el.get("h") is None, dump(el)
        c.close()
        # Still there for its owner, once.
        c, _ = login_until_sasl(server.c2s_port, "bob")
        c.send(f"<resume xmlns='{NS_SM}' previd='{en.get('id')}' h='0'/>")
        c.expect(sm("resumed"), timeout=10)
        c.send("</stream:stream>")
        c.read_until_eof(10)
        c.close()
        # Closed cleanly: gone.
        c, _ = login_until_sasl(server.c2s_port, "bob")
        c.send(f"<resume xmlns='{NS_SM}' previd='{en.get('id')}' h='0'/>")
        el = c.expect(sm("failed"), timeout=10)
        assert el.find(q(NS_STANZA_ERR, "item-not-found")) is not None, dump(el)
        c.close()
        assert server.metric("xedge_stream_resumptions_total", result="failed") >= 5
    finally:
        bob.close()


@pytest.mark.parametrize("server", [{"workers": 1, "extra_edge_yaml":
                                     "stream_management:\n  resume_timeout: 2\n"}], indirect=True)
def test_expired_session_unacked_messages_go_offline(server):
    bob, en = login_sm(server.c2s_port, "bob", "expiring")
    alice = Raw(server.c2s_port)
    try:
        assert int(en.get("max")) == 2
        alice.login("alice", USERS["alice"], "sender")
        alice.send(f"<message to='{bob.jid}' type='chat' id='x1'><body>never acked</body></message>")
        bob.wait_for(lambda e: e.tag == MESSAGE and e.findtext(BODY) == "never acked", 10)
        abrupt_close(bob)
        server.wait_log(r"session detached: resumable", timeout=15)
        alice.send(f"<message to='{bob.jid}' type='chat' id='x2'><body>while away</body></message>")
        alice.ping("sent", timeout=10)
        server.wait_log(r"detached session ended.*resumption timeout", timeout=20)
        # Expired: the id is gone...
        c, _ = login_until_sasl(server.c2s_port, "bob")
        c.send(f"<resume xmlns='{NS_SM}' previd='{en.get('id')}' h='0'/>")
        el = c.expect(sm("failed"), timeout=10)
        assert el.find(q(NS_STANZA_ERR, "item-not-found")) is not None, dump(el)
        # ...and what bob never acknowledged waits for him offline.
        c.bind("again")
        c.send("<presence/>")
        bodies = set()
        deadline = time.monotonic() + 20
        while bodies != {"never acked", "while away"} and time.monotonic() < deadline:
            try:
                e = c.next_item(2)
            except Timeout:
                continue
            if e.tag == MESSAGE and e.findtext(BODY):
                bodies.add(e.findtext(BODY))
        assert bodies == {"never acked", "while away"}, bodies
        c.close()
    finally:
        alice.close()


@pytest.mark.parametrize("server", ONE_WORKER, indirect=True)
def test_unacked_iq_request_bounces_and_message_moves_to_other_resource(server):
    bob, en = login_sm(server.c2s_port, "bob", "leaving")
    other = Raw(server.c2s_port)
    alice = Raw(server.c2s_port)
    try:
        other.login("bob", USERS["bob"], "staying", presence=True)
        alice.login("alice", USERS["alice"], "asker")
        alice.send(f"<iq type='get' id='q1' to='{bob.jid}'><query xmlns='jabber:iq:version'/></iq>")
        bob.wait_for(lambda e: e.tag == IQ and e.get("id") == "q1", 10)
        alice.send(f"<message to='{bob.jid}' type='chat' id='m1'><body>for leaving</body></message>")
        bob.wait_for(lambda e: e.tag == MESSAGE and e.get("id") == "m1", 10)
        # A clean close with both unacknowledged: they are handed back (§4).
        bob.send("</stream:stream>")
        bob.read_until_eof(10)
        err = alice.wait_for(lambda e: e.tag == IQ and e.get("id") == "q1", 10)
        assert err.get("type") == "error" and err.get("from") == bob.jid, dump(err)
        assert err.find(f"{q(NS_CLIENT, 'error')}/{q(NS_STANZA_ERR, 'service-unavailable')}") is not None, \
            dump(err)
        m = other.wait_for(lambda e: e.tag == MESSAGE and e.findtext(BODY) == "for leaving", 10)
        assert m is not None
        assert server.metric("xedge_stanzas_returned_total") >= 1
    finally:
        alice.close()
        other.close()
        bob.close()


@pytest.mark.parametrize("server", ONE_WORKER, indirect=True)
def test_resume_while_old_connection_still_open(server):
    bob, en = login_sm(server.c2s_port, "bob", "halfdead")
    try:
        bob2, _ = login_until_sasl(server.c2s_port, "bob")
        bob2.send(f"<resume xmlns='{NS_SM}' previd='{en.get('id')}' h='0'/>")
        bob2.expect(sm("resumed"), timeout=10)
        cond = bob.expect_stream_error(10)
        assert cond == "conflict"
        assert bob2.ping("alive", timeout=10).get("type") == "result"
        bob2.close()
    finally:
        bob.close()


@pytest.mark.parametrize("server", [{"workers": 2, "admin": True}], indirect=True)
def test_resume_on_another_worker(server):
    """SO_REUSEPORT spreads connections over the workers: the session moves to the worker
    the resuming connection reached, and what was sent meanwhile still arrives, in order.
    Which worker holds a session: the id names it; whether a resumption moved it: the
    xedge_sessions_moved_total metric (log lines are rate-limited per call site)."""
    def counts():
        return (server.metric("xedge_sessions_detached_total"),
                server.metric("xedge_stream_resumptions_total", result="ok"),
                server.metric("xedge_sessions_moved_total"))

    def lose(client, detached):
        abrupt_close(client)
        wait_until(lambda: counts()[0] >= detached + 1, 15, "the session detached")

    alice = Raw(server.c2s_port)
    alice.login("alice", USERS["alice"], "sender")
    seen = set()
    deadline = time.monotonic() + 90
    i = 0
    try:
        while not ({"same", "other"} <= seen):
            assert time.monotonic() < deadline, f"workers hit: {seen}\n{server.log_tails(40)}"
            i += 1
            bob, en = login_sm(server.c2s_port, "bob", f"roam{i}")
            jid = bob.jid
            held_by = int(en.get("id").split(".")[-3])
            assert held_by in (0, 1)
            detached, ok, moved = counts()
            lose(bob, detached)
            for n in range(3):
                alice.send(f"<message to='{jid}' type='chat' id='r{i}-{n}'><body>r{i}-{n}</body></message>")
            alice.ping(f"sent{i}", timeout=10)
            bob2, _ = login_until_sasl(server.c2s_port, "bob")
            bob2.send(f"<resume xmlns='{NS_SM}' previd='{en.get('id')}' h='0'/>")
            el = bob2.expect(sm("resumed"), timeout=15)
            assert el.get("previd") == en.get("id")
            bodies = []
            while len(bodies) < 3:
                e = bob2.next_item(10)
                if e.tag == MESSAGE:
                    bodies.append(e.findtext(BODY))
            assert bodies == [f"r{i}-{n}" for n in range(3)], bodies
            # Live traffic after the move: the session server now routes to the new worker.
            alice.send(f"<message to='{jid}' type='chat' id='live{i}'><body>live{i}</body></message>")
            e = bob2.wait_for(lambda e: e.tag == MESSAGE, 10)
            assert e.findtext(BODY) == f"live{i}"
            wait_until(lambda: counts()[1] == ok + 1, 10, "the resumption counted")
            seen.add("other" if counts()[2] == moved + 1 else "same")
            # The id stays the session's wherever it moved: lost and resumed once more.
            h = ask_h(bob2)
            detached, ok, moved = counts()
            lose(bob2, detached)
            alice.send(f"<message to='{jid}' type='chat' id='again{i}'><body>again{i}</body></message>")
            alice.ping(f"again-sent{i}", timeout=10)
            bob3, _ = login_until_sasl(server.c2s_port, "bob")
            bob3.send(f"<resume xmlns='{NS_SM}' previd='{en.get('id')}' h='4'/>")
            el = bob3.expect(sm("resumed"), timeout=15)
            assert int(el.get("h")) == h
            e = bob3.wait_for(lambda e: e.tag == MESSAGE, 10)
            assert e.findtext(BODY) == f"again{i}", dump(e)
            bob3.send(f"<a xmlns='{NS_SM}' h='5'/>")
            # A clean end: the session is over, on whichever worker holds it now.
            bob3.send("</stream:stream>")
            bob3.read_until_eof(10)
            bob3.close()
            bob2.close()
        server.wait_log(r"session moved", timeout=5)
    finally:
        alice.close()


def test_slixmpp_enables_acks_and_resumes(server):
    """A real client (slixmpp's xep_0198 plugin): enable with resumption, acks of what it
    sent, then a dropped TCP connection and a resumption on whichever worker the new one
    reaches; a message sent meanwhile arrives, on the same full JID."""
    async def main():
        loop = asyncio.get_running_loop()
        enabled, resumed = loop.create_future(), loop.create_future()
        acked = asyncio.Queue()
        bob = Client(server.jid("bob"), USERS["bob"])
        bob.register_plugin("xep_0198")
        bob.add_event_handler("sm_enabled", lambda e: enabled.done() or enabled.set_result(e))
        bob.add_event_handler("session_resumed", lambda e: resumed.done() or resumed.set_result(e))
        bob.add_event_handler("stanza_acked", lambda st: acked.put_nowait(st))
        alice = None
        try:
            await bob.login(server.c2s_port)
            en = await asyncio.wait_for(enabled, 10)
            assert en["id"] and en["resume"], str(en)
            alice = await Client(server.jid("alice"), USERS["alice"]).login(server.c2s_port)
            alice.send_message(mto=bob.boundjid.full, mbody="one", mtype="chat")
            await bob.next_message(10, body="one")
            reply = bob.make_message(mto=alice.boundjid.full, mbody="reply", mtype="chat")
            reply["id"] = "reply-1"
            reply.send()
            await alice.next_message(10, body="reply")
            # (slixmpp writes <r/> ahead of its queued stanzas: ask once the reply is out)
            bob.plugin["xep_0198"].request_ack()
            while True:
                st = await asyncio.wait_for(acked.get(), 10)
                if st.get("id") == "reply-1":
                    break
            full = bob.boundjid.full
            bob.transport.abort()      # no </stream:stream>: the session stays resumable
            deadline = loop.time() + 15
            while not re.search(rf"session detached: resumable.*jid={re.escape(full)} ", server.log()):
                assert loop.time() < deadline, server.log_tails(30)
                await asyncio.sleep(0.05)
            alice.send_message(mto=full, mbody="while away", mtype="chat")
            bob.connect(("127.0.0.1", server.c2s_port), force_starttls=True)
            await asyncio.wait_for(resumed, 15)
            await bob.next_message(10, body="while away")
            assert bob.boundjid.full == full
            alice.send_message(mto=full, mbody="after", mtype="chat")
            await bob.next_message(10, body="after")
        finally:
            await close_all(alice, bob)
    run(main(), timeout=60)


@pytest.mark.parametrize("server", [{"workers": 1, "extra_edge_yaml":
                                     "stream_management:\n  max_unacked: 4096\n"}], indirect=True)
def test_unacked_queue_bound(server):
    """A client that never acknowledges: past max_unacked bytes its stream ends with
    <resource-constraint/> (RFC 6120 §4.9.3.17), the session is not kept for a resumption,
    and what it never acknowledged waits offline."""
    bob, en = login_sm(server.c2s_port, "bob", "hoarder")
    alice = Raw(server.c2s_port)
    try:
        alice.login("alice", USERS["alice"], "sender")
        filler = "x" * 600
        for i in range(10):
            alice.send(f"<message to='{bob.jid}' type='chat' id='f{i}'><body>f{i} {filler}</body></message>")
        # bob reads everything and never acknowledges.
        err = bob.wait_for(lambda e: e.tag == STREAM_ERROR, 15)
        assert err.find(q("urn:ietf:params:xml:ns:xmpp-streams", "resource-constraint")) is not None, dump(err)
        assert not server.wait_log(r"unacked queue over its bound", timeout=5) == []
        c, _ = login_until_sasl(server.c2s_port, "bob")
        c.send(f"<resume xmlns='{NS_SM}' previd='{en.get('id')}' h='0'/>")
        el = c.expect(sm("failed"), timeout=10)
        assert el.find(q(NS_STANZA_ERR, "item-not-found")) is not None, dump(el)
        c.bind("again")
        c.send("<presence/>")
        got = set()
        deadline = time.monotonic() + 20
        while len(got) < 10 and time.monotonic() < deadline:
            try:
                e = c.next_item(2)
            except Timeout:
                continue
            if e.tag == MESSAGE and e.findtext(BODY):
                got.add(e.findtext(BODY).split()[0])
        assert got == {f"f{i}" for i in range(10)}, got
        c.close()
    finally:
        alice.close()
        bob.close()


@pytest.mark.parametrize("server", ONE_WORKER, indirect=True)
def test_hostile_stream_management_elements(server):
    """Malformed or misplaced stream management elements: refused, never a crash; the
    errors a client can recover from keep the stream."""
    def stream_error(send, login=True, enable=True):
        c = Raw(server.c2s_port)
        try:
            if login:
                c.login("alice", USERS["alice"], "hostile")
                if enable:
                    c.send(f"<enable xmlns='{NS_SM}'/>")
                    c.expect(sm("enabled"), timeout=10)
            else:
                c.open_stream()
                c.starttls()
                c.open_stream()
            c.send(send)
            return c.expect_stream_error(10)
        finally:
            c.close()

    assert stream_error(f"<r xmlns='{NS_SM}'/>", enable=False) == "unsupported-stanza-type"
    assert stream_error(f"<a xmlns='{NS_SM}' h='0'/>", enable=False) == "unsupported-stanza-type"
    assert stream_error(f"<a xmlns='{NS_SM}'/>") == "bad-format"
    assert stream_error(f"<a xmlns='{NS_SM}' h='-1'/>") == "bad-format"
    assert stream_error(f"<a xmlns='{NS_SM}' h='4294967296'/>") == "bad-format"
    assert stream_error(f"<a xmlns='{NS_SM}' h='1&#x30;'/>") == "bad-format"
    assert stream_error(f"<nonsense xmlns='{NS_SM}'/>") == "unsupported-stanza-type"
    assert stream_error(f"<enable xmlns='{NS_SM}'/>", login=False) in ("not-authorized",
                                                                     "unsupported-stanza-type")
    # Ids that are not ours in form, and a resume without h: the stream survives the first.
    with Raw(server.c2s_port) as c:
        c.open_stream()
        c.starttls()
        c.open_stream()
        assert c.auth("alice", USERS["alice"]).tag.endswith("success")
        c.open_stream()
        for previd in ("x" * 500, "..", "edge.0.zz.zz", "a.b.c.d.e.f"):
            c.send(f"<resume xmlns='{NS_SM}' previd='{previd}' h='0'/>")
            el = c.expect(sm("failed"), timeout=10)
            assert el.find(q(NS_STANZA_ERR, "item-not-found")) is not None, dump(el)
        c.send(f"<resume xmlns='{NS_SM}' previd='x'/>")
        assert c.expect_stream_error(10) == "bad-format"
