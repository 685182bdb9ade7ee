"""A raw XMPP-over-WebSocket client (RFC 6455 / RFC 7395) for exact wire checks.

It does the HTTP upgrade by hand, masks what it sends, and reads frames one at a
time; every text message is one XML document (an element), parsed with
ElementTree.  Every read has a deadline.  The tests use it where a real client
library would hide what is on the wire (errors, close codes, fragmentation).
"""
import base64
import hashlib
import os
import socket
import ssl
import struct
import time
import xml.etree.ElementTree as ET

from rawxmpp import NS_BIND, NS_SASL, Timeout, StreamClosed, client_tls_context, q

NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


class WS:
    def __init__(self, port, tls=False, timeout=5.0, preamble=b""):
        self.timeout = timeout
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if preamble:
            self.sock.sendall(preamble)
        if tls:
            self.sock = client_tls_context().wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""
        self.eof = False
        self.status = None
        self.headers = {}

    # -- HTTP --

    def request(self, path="/xmpp-websocket", protocol="xmpp", version="13", method="GET",
                extra="", key=None):
        """Send an upgrade request; returns (status, headers) of the answer."""
        self.key = key or base64.b64encode(os.urandom(16)).decode()
        req = (f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {self.key}\r\n"
               f"Sec-WebSocket-Version: {version}\r\n")
        if protocol:
            req += f"Sec-WebSocket-Protocol: {protocol}\r\n"
        self.sock.sendall((req + extra + "\r\n").encode())
        return self.read_response()

    def read_response(self):
        deadline = time.monotonic() + self.timeout
        while b"\r\n\r\n" not in self.buf:
            self._recv(deadline)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ")[1])
        self.headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()
        return self.status, self.headers

    def upgrade(self):
        status, h = self.request()
        assert status == 101, (status, h)
        assert h.get("sec-websocket-accept") == accept_key(self.key), h
        assert h.get("sec-websocket-protocol") == "xmpp", h
        return self

    # -- frames --

    def _recv(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise Timeout(f"no data within {self.timeout} s; buffered {self.buf[:200]!r}")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise Timeout(f"no data within {self.timeout} s; buffered {self.buf[:200]!r}")
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        if not data:
            self.eof = True
            raise StreamClosed(f"connection closed; buffered {self.buf[:200]!r}")
        self.buf += data

    def frame(self, op, payload, fin=True, masked=True, rsv=0):
        """Send one frame (masked unless told not to, as a broken client would)."""
        if isinstance(payload, str):
            payload = payload.encode()
        b0 = (0x80 if fin else 0) | (rsv << 4) | op
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", b0, (0x80 if masked else 0) | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, (0x80 if masked else 0) | 126, n)
        else:
            head = struct.pack("!BBQ", b0, (0x80 if masked else 0) | 127, n)
        if masked:
            key = os.urandom(4)
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            head += key
        self.sock.sendall(head + payload)

    def send(self, text):
        self.frame(OP_TEXT, text)

    def next_frame(self, timeout=None):
        """(opcode, payload) of the next frame from the server (never masked)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            if len(self.buf) >= 2:
                b0, b1 = self.buf[0], self.buf[1]
                assert not b1 & 0x80, "a server frame must not be masked"
                n, off = b1 & 0x7F, 2
                if n == 126 and len(self.buf) >= 4:
                    n, off = struct.unpack("!H", self.buf[2:4])[0], 4
                elif n == 127 and len(self.buf) >= 10:
                    n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
                if (b1 & 0x7F) < 126 or off > 2:
                    if len(self.buf) >= off + n:
                        payload = self.buf[off:off + n]
                        self.buf = self.buf[off + n:]
                        assert b0 & 0x80, "the server does not fragment"
                        return b0 & 0x0F, payload
            self._recv(deadline)

    def next_element(self, timeout=None, skip_ping=True):
        """The next text message, parsed (each is one XML document, RFC 7395 §3.3.3)."""
        while True:
            op, payload = self.next_frame(timeout)
            if op == OP_TEXT:
                return ET.fromstring(payload)
            if op == OP_CLOSE:
                raise StreamClosed(f"close frame {payload!r}")
            assert op in (OP_PING, OP_PONG), (op, payload)

    def expect(self, tag, timeout=None):
        el = self.next_element(timeout)
        assert el.tag == tag, f"expected {tag}, got {ET.tostring(el, encoding='unicode')}"
        return el

    def close_code(self, timeout=None):
        """Read until a close frame; returns its code (None for an empty payload)."""
        while True:
            op, payload = self.next_frame(timeout)
            if op == OP_CLOSE:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None

    def read_until_eof(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while True:
                self._recv(deadline)
        except StreamClosed:
            return self.buf

    # -- XMPP --

    def open(self, to="localhost"):
        self.send(f"<open xmlns='{NS_FRAMING}' to='{to}' version='1.0'/>")
        opened = self.expect(q(NS_FRAMING, "open"))
        features = self.expect("{http://etherx.jabber.org/streams}features")
        return opened, features

    def login(self, user, password, resource="ws"):
        self.open()
        creds = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        self.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{creds}</auth>")
        self.expect(q(NS_SASL, "success"))
        self.open()
        self.send(f"<iq type='set' id='bind1' xmlns='jabber:client'><bind xmlns='{NS_BIND}'>"
                  f"<resource>{resource}</resource></bind></iq>")
        iq = self.expect("{jabber:client}iq")
        self.jid = iq.find(f"{{{NS_BIND}}}bind/{{{NS_BIND}}}jid").text
        return self.jid

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
