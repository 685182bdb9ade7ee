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
