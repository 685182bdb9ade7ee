"""A tiny raw XMPP client for exact wire checks: sockets, ssl, ElementTree.

Every read has a deadline.  Received bytes are parsed incrementally; each
top-level element (child of <stream:stream>) becomes an Element in
`items`.  `raw` keeps every byte received on the current connection, so a
test can assert that something was never sent.
"""
import base64
import hashlib
import hmac
import os
import select
import socket
import ssl
import time
import xml.etree.ElementTree as ET
from collections import deque

NS_STREAM = "http://etherx.jabber.org/streams"
NS_CLIENT = "jabber:client"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session"
NS_STREAM_ERR = "urn:ietf:params:xml:ns:xmpp-streams"
NS_STANZA_ERR = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_PING = "urn:xmpp:ping"


def q(ns, local):
    return f"{{{ns}}}{local}"


FEATURES = q(NS_STREAM, "features")
STREAM_ERROR = q(NS_STREAM, "error")
DEFAULT_TIMEOUT = 5.0


class StreamClosed(AssertionError):
    pass


class Timeout(AssertionError):
    pass


def header(to="localhost", version="1.0", extra=""):
    return (f"<?xml version='1.0'?><stream:stream xmlns='{NS_CLIENT}' "
            f"xmlns:stream='{NS_STREAM}' to='{to}' version='{version}'{extra}>")


def client_tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def stream_error_condition(el):
    """The defined condition of a <stream:error/> element (or None)."""
    for child in el:
        if child.tag.startswith("{" + NS_STREAM_ERR + "}") and not child.tag.endswith("}text"):
            return child.tag.split("}", 1)[1]
    return None


def sasl_condition(el):
    for child in el:
        if child.tag.startswith("{" + NS_SASL + "}") and not child.tag.endswith("}text"):
            return child.tag.split("}", 1)[1]
    return None


def dump(el):
    return ET.tostring(el, encoding="unicode")


def stanza_error(el):
    """(type, condition) of the <error/> child of a stanza of type 'error', or None."""
    err = el.find(q(NS_CLIENT, "error"))
    if err is None:
        return None
    cond = None
    for child in err:
        if child.tag.startswith("{" + NS_STANZA_ERR + "}") and not child.tag.endswith("}text"):
            cond = child.tag.split("}", 1)[1]
            break
    return err.get("type"), cond


def client_hello(sni="localhost"):
    """The bytes of a real TLS ClientHello (Python's ssl, memory BIOs only)."""
    ctx = client_tls_context()
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, outg, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outg.read()


def connect(port, host="127.0.0.1", timeout=DEFAULT_TIMEOUT, source=None, rcvbuf=None):
    """A TCP connection, optionally from a given local address (127.0.0.N: loopback
    has them all) and with a small receive buffer set before connecting."""
    if source is None and rcvbuf is None:
        return socket.create_connection((host, port), timeout=timeout)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source:
            s.bind((source, 0))
        s.settimeout(timeout)
        s.connect((host, port))
    except BaseException:
        s.close()
        raise
    return s


class Raw:
    def __init__(self, port, host="127.0.0.1", direct_tls=False, timeout=DEFAULT_TIMEOUT,
                 sni="localhost", source=None, rcvbuf=None, preamble=b""):
        """preamble: bytes sent first, before TLS (a PROXY protocol header)."""
        self.timeout = timeout
        self.sock = connect(port, host, timeout, source, rcvbuf)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if preamble:
            self.sock.sendall(preamble)
        self.raw = b""          # everything received on this connection (plaintext)
        self.eof = False
        self.tls = False
        self.clean_close = None  # TLS: True after close_notify, False after a bare TCP close
        self.jid = None
        if direct_tls:
            self._wrap(sni)
        self.reset()

    # -- plumbing --

    def reset(self):
        """A new XML stream (start, after STARTTLS, after SASL success)."""
        self.parser = ET.XMLPullParser(events=("start", "end", "start-ns"))
        self.depth = 0
        self.items = deque()
        self.stream_header = None
        self.stream_ended = False

    def _wrap(self, sni="localhost"):
        self.sock = client_tls_context().wrap_socket(self.sock, server_hostname=sni,
                                                      suppress_ragged_eofs=False,
                                                      do_handshake_on_connect=False)
        self.sock.settimeout(self.timeout)
        self.sock.do_handshake()
        self.tls = True

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _feed(self, data):
        self.raw += data
        self.parser.feed(data)
        for ev, el in self.parser.read_events():
            if ev == "start-ns":
                continue
            if ev == "start":
                self.depth += 1
                if self.depth == 1:
                    self.stream_header = el
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.items.append(el)
                    if self.stream_header is not None:
                        try:
                            self.stream_header.remove(el)
                        except ValueError:
                            pass
                elif self.depth == 0:
                    self.stream_ended = True

    def _recv_once(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise Timeout("timed out")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise Timeout("timed out")
        except ssl.SSLEOFError:
            # TCP closed without a TLS close_notify.
            self.eof, self.clean_close = True, False
            return
        except ConnectionResetError:
            self.eof, self.clean_close = True, False
            return
        if not data:
            self.eof = True
            if self.tls:
                self.clean_close = True   # ssl returns b'' only after close_notify here
            return
        self._feed(data)

    def next_item(self, timeout=None):
        """The next top-level element; raises StreamClosed / Timeout."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.items:
            if self.eof:
                raise StreamClosed(f"connection closed; received: {self.raw[-2000:]!r}")
            try:
                self._recv_once(deadline)
            except Timeout:
                raise Timeout(f"no element within {timeout or self.timeout} s; "
                              f"received: {self.raw[-2000:]!r}") from None
        return self.items.popleft()

    def expect(self, tag, timeout=None, skip=()):
        """The next element, which must have tag `tag` (elements in `skip` are dropped)."""
        while True:
            el = self.next_item(timeout)
            if el.tag in skip:
                continue
            assert el.tag == tag, f"expected {tag}, got {dump(el)}"
            return el

    def wait_for(self, pred, timeout=None):
        """Read until an element satisfying pred arrives; return it (others are kept in
        self.seen)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        self.seen = getattr(self, "seen", [])
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout(f"no matching element; received: {self.raw[-2000:]!r}")
            el = self.next_item(left)
            if pred(el):
                return el
            self.seen.append(el)

    def read_until_eof(self, timeout=None):
        """Read until the peer closes; returns the elements received meanwhile."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.eof:
            try:
                self._recv_once(deadline)
            except Timeout:
                raise Timeout(f"connection still open after {timeout or self.timeout} s; "
                              f"received: {self.raw[-2000:]!r}") from None
        got = list(self.items)
        self.items.clear()
        return got

    def expect_stream_error(self, timeout=None):
        """Read to the end: expect <stream:error/>, </stream:stream> and a close.
        Returns the condition."""
        items = self.read_until_eof(timeout)
        errs = [e for e in items if e.tag == STREAM_ERROR]
        assert errs, f"no <stream:error/> before the close; received: {self.raw[-2000:]!r}"
        assert self.stream_ended, f"no </stream:stream> before the close: {self.raw[-2000:]!r}"
        return stream_error_condition(errs[0])

    def pump(self, seconds=0.0):
        """Read whatever arrives within `seconds` (0: only what is already here) into
        items/raw, never raising on silence.  Returns True once the peer has closed."""
        deadline = time.monotonic() + seconds
        while not self.eof:
            pending = self.tls and self.sock.pending()
            if not pending:
                left = max(0.0, deadline - time.monotonic())
                if not select.select([self.sock], [], [], left)[0]:
                    break
            try:
                self._recv_once(time.monotonic() + 1.0)
            except Timeout:
                break          # a partial TLS record: the rest comes later
        return self.eof

    def expect_stream_error_closed(self, timeout=None):
        """RFC 6120 §4.9.1.1: <stream:error/>, then </stream:stream>, then the TCP close;
        over TLS the close must be preceded by a close_notify alert.  Returns the
        condition."""
        cond = self.expect_stream_error(timeout)
        if self.tls:
            assert self.clean_close is True, \
                f"stream error {cond!r} over TLS, but TCP closed without a close_notify"
        return cond

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # -- XMPP steps --

    def open_stream(self, to="localhost"):
        self.reset()
        self.send(header(to))
        feats = self.expect(FEATURES)
        assert self.stream_header is not None and self.stream_header.tag == q(NS_STREAM, "stream")
        return feats

    def starttls(self, sni="localhost", extra=b""):
        self.send(f"<starttls xmlns='{NS_TLS}'/>".encode() + extra)
        self.expect(q(NS_TLS, "proceed"))
        self._wrap(sni)
        self.raw = b""

    def auth_plain(self, user, password, authzid=""):
        msg = f"{authzid}\0{user}\0{password}".encode()
        self.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>"
                  f"{base64.b64encode(msg).decode()}</auth>")
        return self.next_item()

    def auth_scram(self, user, password, hashname="sha256"):
        """SCRAM-SHA-1/256 (RFC 5802/7677) without channel binding.  Returns the final
        element (<success/> after the server signature was verified, or <failure/>)."""
        mech = {"sha1": "SCRAM-SHA-1", "sha256": "SCRAM-SHA-256"}[hashname]
        cnonce = base64.b64encode(os.urandom(18)).decode()
        gs2 = "n,,"
        first_bare = f"n={user},r={cnonce}"
        self.send(f"<auth xmlns='{NS_SASL}' mechanism='{mech}'>"
                  f"{base64.b64encode((gs2 + first_bare).encode()).decode()}</auth>")
        el = self.next_item()
        if el.tag != q(NS_SASL, "challenge"):
            return el
        server_first = base64.b64decode(el.text or "").decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        assert attrs["r"].startswith(cnonce), f"server nonce {attrs['r']!r} lacks ours"
        salt, iters = base64.b64decode(attrs["s"]), int(attrs["i"])
        salted = hashlib.pbkdf2_hmac(hashname, password.encode(), salt, iters)
        ckey = hmac.new(salted, b"Client Key", hashname).digest()
        stored = hashlib.new(hashname, ckey).digest()
        without_proof = f"c={base64.b64encode(gs2.encode()).decode()},r={attrs['r']}"
        auth_msg = f"{first_bare},{server_first},{without_proof}".encode()
        sig = hmac.new(stored, auth_msg, hashname).digest()
        proof = bytes(a ^ b for a, b in zip(ckey, sig))
        final = f"{without_proof},p={base64.b64encode(proof).decode()}"
        self.send(f"<response xmlns='{NS_SASL}'>{base64.b64encode(final.encode()).decode()}"
                  "</response>")
        el = self.next_item()
        if el.tag == q(NS_SASL, "success"):
            skey = hmac.new(salted, b"Server Key", hashname).digest()
            ssig = hmac.new(skey, auth_msg, hashname).digest()
            got = base64.b64decode(el.text or "").decode()
            assert got == "v=" + base64.b64encode(ssig).decode(), \
                f"server signature {got!r} does not verify"
        return el

    def auth(self, user, password, mech="PLAIN"):
        if mech == "PLAIN":
            return self.auth_plain(user, password)
        return self.auth_scram(user, password, {"SCRAM-SHA-1": "sha1",
                                                "SCRAM-SHA-256": "sha256"}[mech])

    def bind(self, resource=None, iq_id="bind1"):
        res = f"<resource>{resource}</resource>" if resource else ""
        self.send(f"<iq type='set' id='{iq_id}'><bind xmlns='{NS_BIND}'>{res}</bind></iq>")
        el = self.wait_for(lambda e: e.get("id") == iq_id)
        assert el.get("type") == "result", f"bind failed: {dump(el)}"
        self.jid = el.find(f"{q(NS_BIND, 'bind')}/{q(NS_BIND, 'jid')}").text
        return self.jid

    def login(self, user, password, resource=None, mech="PLAIN", to="localhost",
              presence=False):
        """STARTTLS (unless Direct TLS), SASL, restart, bind.  Returns the bound JID."""
        if not self.tls:
            feats = self.open_stream(to)
            assert feats.find(q(NS_TLS, "starttls")) is not None, dump(feats)
            self.starttls()
        self.open_stream(to)
        el = self.auth(user, password, mech)
        assert el.tag == q(NS_SASL, "success"), f"auth failed: {dump(el)}"
        feats = self.open_stream(to)
        assert feats.find(q(NS_BIND, "bind")) is not None, dump(feats)
        jid = self.bind(resource)
        if presence:
            self.send("<presence/>")
        return jid

    def ping(self, iq_id, to="localhost", timeout=None):
        to_attr = f" to='{to}'" if to else ""
        self.send(f"<iq type='get' id='{iq_id}'{to_attr}><ping xmlns='{NS_PING}'/></iq>")
        return self.wait_for(lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("id") == iq_id,
                             timeout)

    def end_stream(self):
        self.send("</stream:stream>")
