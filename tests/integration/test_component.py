"""External components (XEP-0114, jabber:component:accept) at the edge.

The component side is either a raw socket (RawComponent: exact bytes, exact errors) or
slixmpp's ComponentXMPP (a real component library).  Users are slixmpp clients.

What a component sees, per XEP-0114 §3 and RFC 6120:
  - header to a configured name: our header from that name with a fresh id, no version;
    to anything else: <host-unknown/>; another namespace: <invalid-namespace/>;
  - <handshake>hex(SHA-1(id + secret))</handshake>: an empty <handshake/>; a wrong or
    malformed one (or anything else first): <not-authorized/> and the close;
  - a second stream for a name already connected: <conflict/> (the first keeps it);
  - stanzas need a from in its domain (<invalid-from/>), a from and a to
    (<improper-addressing/>); a malformed to is a jid-malformed stanza error;
  - an idle stream gets whitespace keepalives, not connection-timeout.
"""
import asyncio
import hashlib
import os
import time
import xml.etree.ElementTree as ET

import pytest
import slixmpp

from conftest import USERS
from rawxmpp import NS_STANZA_ERR, NS_STREAM, STREAM_ERROR, Raw, StreamClosed, Timeout, dump, q
from slixclient import Client, close_all, run

NS_COMP = "jabber:component:accept"
COMP = "comp.localhost"
SECRET = "s3cret-'&<-x"           # characters the config and the hash must carry as they are
OTHER = "other.localhost"
OTHER_SECRET = "other-secret"
NESTED = "muc." + COMP              # a component of its own inside COMP's domain
COMPONENTS = [(COMP, SECRET), (OTHER, OTHER_SECRET), (NESTED, "nested-secret")]
OPTS = {"components": COMPONENTS}


def comp_header(to, ns=NS_COMP, extra=""):
    return (f"<?xml version='1.0'?><stream:stream xmlns='{ns}' "
            f"xmlns:stream='{NS_STREAM}' to='{to}'{extra}>")


def digest(sid, secret):
    return hashlib.sha1((sid + secret).encode()).hexdigest()


class RawComponent(Raw):
    """A component on a raw socket."""

    def open(self, name=COMP, ns=NS_COMP, extra=""):
        """Send our header; return the server's header element."""
        self.reset()
        self.send(comp_header(name, ns, extra))
        deadline = time.monotonic() + self.timeout
        while self.stream_header is None:
            if self.eof:
                raise StreamClosed(f"closed before a header; received {self.raw!r}")
            self._recv_once(deadline)
        return self.stream_header

    def handshake(self, secret=SECRET, value=None):
        sid = self.stream_header.get("id")
        self.send(f"<handshake>{value if value is not None else digest(sid, secret)}</handshake>")

    def login(self, name=COMP, secret=SECRET):
        self.open(name)
        self.handshake(secret)
        el = self.next_item()
        assert el.tag == q(NS_COMP, "handshake") and len(el) == 0 and not (el.text or "").strip(), \
            dump(el)
        return self

    def stanza(self, pred=None, timeout=None):
        """The next stanza (skipping nothing): asserts it is in jabber:component:accept."""
        el = self.wait_for(pred or (lambda e: True), timeout)
        assert el.tag.startswith("{" + NS_COMP + "}"), f"not a component stanza: {dump(el)}"
        return el


def comp_error(el):
    err = el.find(q(NS_COMP, "error"))
    if err is None:
        return None
    for child in err:
        if child.tag.startswith("{" + NS_STANZA_ERR + "}") and not child.tag.endswith("}text"):
            return err.get("type"), child.tag.split("}", 1)[1]
    return err.get("type"), None


def opts(**kw):
    """The `server` fixture with the components configured (and more options)."""
    return pytest.mark.parametrize("server", [dict(OPTS, **kw)], indirect=True)


# ---- the handshake (raw sockets) ---------------------------------------------------

@opts()
def test_handshake_ok(server):
    with RawComponent(server.component_port) as c:
        hdr = c.open()
        # XEP-0114 §3: the reply comes from the component's name with a stream id;
        # no version (so no features follow).
        assert hdr.get("from") == COMP, dump(hdr)
        sid = hdr.get("id")
        assert sid and len(sid) >= 16, dump(hdr)
        assert hdr.get("version") is None, dump(hdr)
        assert b"xmlns='jabber:component:accept'" in c.raw, c.raw
        c.handshake()
        el = c.next_item()
        assert el.tag == q(NS_COMP, "handshake") and len(el) == 0, dump(el)
        server.wait_log(rf"component connected.*name={COMP}")
        c.end_stream()
        c.read_until_eof()
        assert c.stream_ended
    server.wait_log(rf"component disconnected.*name={COMP}")


@opts()
def test_stream_ids_are_fresh(server):
    ids = set()
    for _ in range(3):
        with RawComponent(server.component_port) as c:
            ids.add(c.open().get("id"))
    assert len(ids) == 3, ids


@opts()
def test_handshake_uppercase_hex_and_case_of_to(server):
    # The name is a domain: ASCII case does not matter (RFC 7622 §3.2); the hex
    # digits are the same value in either case.
    with RawComponent(server.component_port) as c:
        hdr = c.open(COMP.upper())
        assert hdr.get("from") == COMP
        c.handshake(value=digest(hdr.get("id"), SECRET).upper())
        assert c.next_item().tag == q(NS_COMP, "handshake")


@opts()
def test_bad_secret_not_authorized(server):
    with RawComponent(server.component_port) as c:
        c.open()
        c.handshake(secret=SECRET + "x")
        assert c.expect_stream_error_closed() == "not-authorized"
    server.wait_log(r"component handshake failed: wrong secret")


@opts()
def test_other_components_secret_not_authorized(server):
    with RawComponent(server.component_port) as c:
        c.open(COMP)
        c.handshake(secret=OTHER_SECRET)
        assert c.expect_stream_error_closed() == "not-authorized"


@opts()
def test_malformed_handshake_not_authorized(server):
    for value in ("", "abc", "zz" * 20, "WS", "a" * 41, "<x/>" + "a" * 36, "&#x61;" * 40):
        with RawComponent(server.component_port) as c:
            sid = c.open().get("id")
            if value == "WS":                       # the right digest, with whitespace
                value = " " + digest(sid, SECRET)
            c.handshake(value=value)
            assert c.expect_stream_error_closed() == "not-authorized", value


@opts()
def test_handshake_with_child_not_authorized(server):
    with RawComponent(server.component_port) as c:
        sid = c.open().get("id")
        c.send(f"<handshake>{digest(sid, SECRET)}<x/></handshake>")
        assert c.expect_stream_error_closed() == "not-authorized"


@opts()
def test_unknown_host(server):
    for to in ("nope.localhost", "localhost", "sub." + COMP):
        with RawComponent(server.component_port) as c:
            c.send(comp_header(to))
            assert c.expect_stream_error_closed() == "host-unknown", to


@opts()
def test_missing_to_host_unknown(server):
    with RawComponent(server.component_port) as c:
        c.send(f"<?xml version='1.0'?><stream:stream xmlns='{NS_COMP}' xmlns:stream='{NS_STREAM}'>")
        assert c.expect_stream_error_closed() == "host-unknown"


@opts()
def test_client_namespace_invalid_namespace(server):
    with RawComponent(server.component_port) as c:
        c.send(comp_header(COMP, ns="jabber:client"))
        assert c.expect_stream_error_closed() == "invalid-namespace"


@opts()
def test_component_namespace_on_c2s_port(server):
    with RawComponent(server.c2s_port) as c:
        c.send(comp_header("localhost"))
        assert c.expect_stream_error_closed() == "invalid-namespace"


@opts()
def test_stanza_before_handshake_not_authorized(server):
    with RawComponent(server.component_port) as c:
        c.open()
        c.send(f"<message from='x@{COMP}' to='alice@localhost'><body>early</body></message>")
        assert c.expect_stream_error_closed() == "not-authorized"


@opts()
def test_second_header_after_handshake(server):
    with RawComponent(server.component_port) as c:
        c.login()
        c.send(comp_header(COMP).replace("<?xml version='1.0'?>", ""))
        assert c.expect_stream_error_closed() == "unsupported-stanza-type"


@opts(handshake_timeout=2, auth_timeout=3)
def test_handshake_must_come_in_time(server):
    # No header: the handshake timeout; header but no <handshake/>: the auth timeout.
    with RawComponent(server.component_port) as c:
        c.read_until_eof(timeout=10)
    with RawComponent(server.component_port) as c:
        c.open()
        assert c.expect_stream_error(timeout=10) == "connection-timeout"


# ---- stanzas from the component (raw) -------------------------------------------------

@opts()
def test_invalid_from(server):
    for frm in ("alice@localhost", "x@" + OTHER, "x@notcomp.localhost", "x@xcomp.localhost",
                "room@" + NESTED, "a.b." + NESTED):
        with RawComponent(server.component_port) as c:
            c.login()
            c.send(f"<message from='{frm}' to='alice@localhost'><body>spoof</body></message>")
            assert c.expect_stream_error_closed() == "invalid-from", frm


IMPROPER = [
    "<message to='alice@localhost'><body>no from</body></message>",
    "<message from='' to='alice@localhost'><body>empty from</body></message>",
    f"<message from='a b@{COMP}' to='alice@localhost'><body>malformed from</body></message>",
    f"<message from='x@{COMP}'><body>no to</body></message>",
    f"<iq type='get' id='1' from='x@{COMP}' to=''><ping xmlns='urn:xmpp:ping'/></iq>",
]


@opts()
def test_improper_addressing(server):
    for stanza in IMPROPER:
        with RawComponent(server.component_port) as c:
            c.login()
            c.send(stanza)
            assert c.expect_stream_error_closed() == "improper-addressing", stanza


@opts()
def test_malformed_to_is_a_stanza_error(server):
    with RawComponent(server.component_port) as c:
        c.login()
        c.send(f"<message id='m1' from='x@{COMP}' to='a b@localhost'><body>x</body></message>")
        el = c.stanza(lambda e: e.get("id") == "m1")
        assert el.get("type") == "error" and el.get("to") == f"x@{COMP}", dump(el)
        assert comp_error(el) == ("modify", "jid-malformed"), dump(el)
        c.send(f"<iq id='i1' from='x@{COMP}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        el = c.stanza(lambda e: e.get("id") == "i1")
        assert comp_error(el) == ("modify", "bad-request"), dump(el)


@opts(max_stanza_bytes=8192)
def test_client_limits_apply(server):
    """The framing limits of clients hold for components (policy-violation, RFC 6120
    §4.9.3.18), before and after the handshake."""
    with RawComponent(server.component_port) as c:
        c.open()
        c.send("<handshake>" + "a" * 9000 + "</handshake>")
        assert c.expect_stream_error_closed() == "policy-violation"
    with RawComponent(server.component_port) as c:
        c.login()
        c.send(f"<message from='x@{COMP}' to='alice@localhost'><body>{'y' * 9000}</body></message>")
        assert c.expect_stream_error_closed() == "policy-violation"


@opts()
def test_unknown_element_after_handshake(server):
    with RawComponent(server.component_port) as c:
        c.login()
        c.send("<foo xmlns='urn:example'/>")
        assert c.expect_stream_error_closed() == "unsupported-stanza-type"


# ---- one stream per component ---------------------------------------------------------

@opts()
def test_second_connection_conflict_first_keeps_route(server):
    first = RawComponent(server.component_port).login()
    try:
        # Several tries: with two workers the new streams land on either one; the
        # rule is process-wide.
        for _ in range(4):
            with RawComponent(server.component_port) as c:
                c.open()
                c.handshake()
                assert c.expect_stream_error_closed() == "conflict"
        # The first stream is untouched: it still answers and is still registered.
        first.send(" ")
        first.pump(0.3)
        assert not first.eof
        assert len(server.wait_log(rf"component refused: already connected.*name={COMP}",
                                   count=4)) == 4
        # Another component's name is independent.
        RawComponent(server.component_port).login(OTHER, OTHER_SECRET).close()
    finally:
        first.end_stream()
        first.read_until_eof()
        first.close()
    server.wait_log(rf"component disconnected.*name={COMP}")
    # Once it is gone, the name is free again, on any worker.
    for _ in range(3):
        c = RawComponent(server.component_port).login()
        c.end_stream()
        c.read_until_eof()
        c.close()
        server.wait_log(rf"component disconnected.*name={COMP}", count=1)


@opts()
def test_dropped_connection_frees_the_name(server):
    c = RawComponent(server.component_port).login()
    c.close()          # no </stream:stream>: a lost connection
    deadline = time.monotonic() + 10
    while True:
        with RawComponent(server.component_port) as d:
            d.open()
            d.handshake()
            el = d.next_item()
            if el.tag == q(NS_COMP, "handshake"):
                break
            assert el.tag == STREAM_ERROR, dump(el)
            assert time.monotonic() < deadline, "the name stayed taken after the drop"
            time.sleep(0.1)


@opts(idle_timeout=2)
def test_idle_component_gets_keepalives(server):
    with RawComponent(server.component_port) as c:
        c.login()
        n = len(c.raw)
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and len(c.raw) == n:
            c.pump(0.5)
        assert c.raw[n:] and not c.raw[n:].strip(), c.raw[n:]   # whitespace only
        c.pump(3.5)
        assert not c.eof, "an idle component was disconnected"
        assert not c.items, [dump(e) for e in c.items]


# ---- through the session server: users and components --------------------------------

NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"


class SlixComponent(slixmpp.ComponentXMPP):
    """slixmpp's real component, answering disco#info (xep_0030) and recording messages."""

    def __init__(self, jid, secret, port):
        super().__init__(jid, secret, "127.0.0.1", port)
        loop = asyncio.get_event_loop()
        self.ready = loop.create_future()
        self.closed = loop.create_future()
        self.messages = asyncio.Queue()
        self.stream_errors = []
        self.register_plugin("xep_0030")
        self["xep_0030"].add_identity(category="gateway", itype="xmpp", name="xedge test gateway",
                                      jid=jid)
        self["xep_0030"].add_feature("urn:example:xedge-test", jid=jid)
        self.add_event_handler("session_start", self._on_start)
        self.add_event_handler("message", self.messages.put_nowait)
        self.add_event_handler("stream_error", lambda e: self.stream_errors.append(e["condition"]))
        self.add_event_handler("disconnected", self._on_disconnected)

    def _on_start(self, _):
        if not self.ready.done():
            self.ready.set_result(True)

    def _on_disconnected(self, reason):
        if not self.closed.done():
            self.closed.set_result(reason)
        if not self.ready.done():
            self.ready.set_exception(AssertionError(
                f"component disconnected before the handshake (stream errors: {self.stream_errors})"))

    async def start(self, timeout=15.0):
        self.connect()
        await asyncio.wait_for(asyncio.shield(self.ready), timeout)
        return self

    async def close(self, timeout=5.0):
        if self.closed.done() or self.transport is None:
            return
        self.disconnect()
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), timeout)
        except asyncio.TimeoutError:
            self.abort()


class Errors:
    """Collects a client's error messages (message_error) by id."""

    def __init__(self, client):
        self.by_id = {}
        self.event = asyncio.Event()
        client.add_event_handler("message_error", self._on)

    def _on(self, msg):
        self.by_id[msg["id"]] = (str(msg["from"]), msg["error"]["type"], msg["error"]["condition"])
        self.event.set()

    async def wait(self, n, timeout=10.0):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.by_id) < n:
            left = deadline - loop.time()
            if left <= 0:
                raise asyncio.TimeoutError(f"{len(self.by_id)} error messages, wanted {n}")
            self.event.clear()
            try:
                await asyncio.wait_for(self.event.wait(), left)
            except asyncio.TimeoutError:
                pass
        return self.by_id


async def login(server, user="alice", resource="pc"):
    return await Client(f"{server.jid(user)}/{resource}", USERS[user]).login(server.c2s_port)


def send(client, to, body, mid, mtype="chat"):
    msg = client.make_message(mto=to, mbody=body, mtype=mtype)
    msg["id"] = mid
    msg.send()


async def in_thread(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def message_to(comp, to, timeout=10.0):
    return comp.stanza(lambda e: e.tag == q(NS_COMP, "message") and e.get("to") == to, timeout)


@opts()
def test_user_and_component_exchange_messages(server):
    comp = RawComponent(server.component_port).login()

    async def go():
        alice = await login(server)
        try:
            alice.send_message(mto=f"echo@{COMP}", mbody="hello component", mtype="chat")
            el = await in_thread(message_to, comp, f"echo@{COMP}")
            assert el.get("from") == "alice@localhost/pc", dump(el)
            assert el.findtext(q(NS_COMP, "body")) == "hello component", dump(el)
            # The component reads it in its own namespace: no jabber:client left on it.
            assert b"jabber:client" not in comp.raw, comp.raw
            comp.send(f"<message from='echo@{COMP}/bot' to='alice@localhost/pc' type='chat' "
                      "id='back1'><body>hello alice</body></message>")
            msg = await alice.next_message(body="hello alice", timeout=10)
            assert str(msg["from"]) == f"echo@{COMP}/bot" and msg["type"] == "chat"
            # Bare JID of the user: delivered to the available resource.
            comp.send(f"<message from='{COMP}' to='alice@localhost'><body>to bare</body></message>")
            msg = await alice.next_message(body="to bare", timeout=10)
            assert str(msg["from"]) == COMP
        finally:
            await close_all(alice)
    try:
        run(go(), timeout=60)
    finally:
        comp.close()


@opts(ws=True)
def test_websocket_user_jabber_client_namespace_is_removed(server):
    """RFC 7395 clients put xmlns='jabber:client' on every stanza; the component must read
    the stanza in jabber:component:accept (a jabber:client message is not one of its
    stanzas)."""
    from wsclient import WS
    comp = RawComponent(server.component_port).login()
    try:
        ws = WS(server.ws_port)
        assert ws.request()[0] == 101
        ws.login("bob", USERS["bob"], resource="ws")
        ws.send(f"<message xmlns='jabber:client' to='echo@{COMP}' id='w1'><body>from ws</body>"
                "</message>")
        el = message_to(comp, f"echo@{COMP}")
        assert el.get("from") == "bob@localhost/ws", dump(el)
        assert el.findtext(q(NS_COMP, "body")) == "from ws", dump(el)
        ws.close()
    finally:
        comp.close()


@opts()
def test_subdomains_route_to_the_component(server):
    comp = RawComponent(server.component_port).login()
    nested = RawComponent(server.component_port).login(NESTED, "nested-secret")

    async def go():
        alice = await login(server)
        try:
            for to in (f"x@deep.sub.{COMP}", f"sub.{COMP}/r"):
                alice.send_message(mto=to, mbody="sub", mtype="chat")
                el = await in_thread(message_to, comp, to)
                assert el.get("from") == "alice@localhost/pc", dump(el)
            # A configured component inside COMP's domain gets its own stanzas.
            for to in (f"room@{NESTED}", f"y@a.{NESTED}"):
                alice.send_message(mto=to, mbody="nested", mtype="chat")
                el = await in_thread(message_to, nested, to)
                assert el.get("from") == "alice@localhost/pc", dump(el)
            # The component answers from the subdomain.
            comp.send(f"<message from='x@deep.sub.{COMP}/r' to='alice@localhost/pc'>"
                      "<body>from sub</body></message>")
            msg = await alice.next_message(body="from sub", timeout=10)
            assert str(msg["from"]) == f"x@deep.sub.{COMP}/r"
            comp.pump(0.3)
            assert not any(e.get("to", "").endswith(NESTED) for e in comp.items), \
                "a nested component's stanza went to the parent"
        finally:
            await close_all(alice)
    try:
        run(go(), timeout=60)
    finally:
        comp.close()
        nested.close()


@opts()
def test_disco_info_answered_by_slixmpp_component(server):
    async def go():
        comp = await SlixComponent(COMP, SECRET, server.component_port).start()
        alice = await login(server)
        try:
            r = await alice.iq_get(COMP, f"<query xmlns='{NS_DISCO_INFO}'/>", timeout=10)
            q_ = r.xml.find(f"{{{NS_DISCO_INFO}}}query")
            ids = [(i.get("category"), i.get("type"), i.get("name"))
                   for i in q_.iter(f"{{{NS_DISCO_INFO}}}identity")]
            feats = {f.get("var") for f in q_.iter(f"{{{NS_DISCO_INFO}}}feature")}
            assert ("gateway", "xmpp", "xedge test gateway") in ids, ids
            assert "urn:example:xedge-test" in feats, feats
            assert str(r["from"]) == COMP
            # Messages both ways with the real component library.
            alice.send_message(mto=f"bot@{COMP}", mbody="ping?", mtype="chat")
            msg = await asyncio.wait_for(comp.messages.get(), 10)
            assert str(msg["from"]) == "alice@localhost/pc" and msg["body"] == "ping?"
            msg.reply("pong!").send()
            back = await alice.next_message(body="pong!", timeout=10)
            assert str(back["from"]) == f"bot@{COMP}"
        finally:
            await close_all(alice)
            await comp.close()
    run(go(), timeout=60)


@opts()
def test_component_gone_service_unavailable_then_reconnect(server):
    async def go():
        alice = await login(server)
        errors = Errors(alice)
        try:
            # Never connected yet: the session server knows the name, no route.
            send(alice, f"x@{COMP}", "nobody home", "e1")
            with pytest.raises(slixmpp.exceptions.IqError) as ei:
                await alice.iq_get(f"x@{COMP}", "<query xmlns='jabber:iq:version'/>", timeout=10)
            assert ei.value.iq["error"]["condition"] == "service-unavailable"
            got = await errors.wait(1)
            assert got["e1"] == (f"x@{COMP}", "cancel", "service-unavailable"), got
            # Connected: it works; gone: service-unavailable again; back: it works.
            for round_ in range(2):
                comp = await in_thread(lambda: RawComponent(server.component_port).login())
                alice.send_message(mto=f"x@{COMP}", mbody=f"round {round_}", mtype="chat")
                el = await in_thread(message_to, comp, f"x@{COMP}")
                assert el.findtext(q(NS_COMP, "body")) == f"round {round_}"
                comp.end_stream()
                await in_thread(comp.read_until_eof)
                comp.close()
                await in_thread(server.wait_log, rf"component disconnected.*name={COMP}", "xedge",
                                5.0, round_ + 1)
                send(alice, f"x@{COMP}", "gone", f"g{round_}")
                got = await errors.wait(2 + round_)
                assert got[f"g{round_}"] == (f"x@{COMP}", "cancel", "service-unavailable"), got
        finally:
            await close_all(alice)
    run(go(), timeout=90)


@opts()
def test_second_connection_conflict_while_slixmpp_component_serves(server):
    async def go():
        comp = await SlixComponent(COMP, SECRET, server.component_port).start()
        alice = await login(server)
        try:
            def second():
                with RawComponent(server.component_port) as c:
                    c.open()
                    c.handshake()
                    return c.expect_stream_error_closed()
            assert await in_thread(second) == "conflict"
            # The first stream still has the route.
            alice.send_message(mto=f"bot@{COMP}", mbody="still you?", mtype="chat")
            msg = await asyncio.wait_for(comp.messages.get(), 10)
            assert msg["body"] == "still you?"
            assert not comp.closed.done()
        finally:
            await close_all(alice)
            await comp.close()
    run(go(), timeout=60)


@pytest.mark.parametrize("n, why", [(250, "slow reader: output queue stayed full"),
                                    (600, "output queue hard limit reached")])
@opts(limits={"max_out_bytes": 65536}, timeouts={"slow_reader": 2})
def test_slow_component_is_bounded_and_lost_stanzas_bounce(server, n, why):
    """A component that stops reading: the edge queues at most max_out_bytes for
    slow_reader seconds (4x at once), then closes it; every message the socket never took
    is bounced to its sender, so each one either reached the component or came back.
    (Kernel buffers hold about 140 KB of the 1 KB messages: 250 leave the queue between
    max_out_bytes and 4x, 600 go past 4x.)"""
    pad = "x" * 1000
    comp = RawComponent(server.component_port, rcvbuf=4096).login()

    async def go():
        alice = await login(server)
        errors = Errors(alice)
        try:
            for i in range(n):
                send(alice, f"sink@{COMP}", f"{i} {pad}", f"s{i}")
            await in_thread(server.wait_log, rf"component disconnected.*name={COMP}", "xedge", 30.0)
            # Now read everything the socket took before the close.
            items = await in_thread(comp.read_until_eof, 20)
            got = {e.get("id") for e in items if e.tag == q(NS_COMP, "message")}
            bounced_want = n - len(got)
            assert bounced_want > 0, "the component took everything: the test proves nothing"
            # Including those the session server sent before it read the DOWN: the edge
            # bounces them after it, and the session server takes a component's errors
            # from any link.
            bounced = await errors.wait(bounced_want, timeout=20)
            assert set(bounced) == {f"s{i}" for i in range(n)} - got, \
                (sorted(set(bounced) & got)[:5], len(bounced), len(got))
            assert all(v[2] == "service-unavailable" for v in bounced.values())
        finally:
            await close_all(alice)
    try:
        run(go(), timeout=120)
    finally:
        comp.close()
    server.wait_log(why)
    assert server.edge.alive()
