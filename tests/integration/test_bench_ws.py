"""xedge-bench over WebSocket (RFC 7395, issue 15): scenario files whose `connect` is `ws` or
`wss` log in, chat and log out against xedge's ws/wss listeners, against Prosody's
mod_websocket (http and https ports, /xmpp-websocket) and against ejabberd's ejabberd_http_ws
(/ws, plain), with the counts in the JSON (logins,
messages delivered, the `ws` transaction, zero errors).  A small asyncio WebSocket server
written here plays a server to the letter (a ping to answer, an <open/> split over three
frames with a ping between them, the closing handshake) and checks what the generator sends
(every frame masked, a new key each time, the pong's payload, <open/>, <close/>, the close
frame's code); then it plays broken servers (a bad 101, a 404, a masked frame, a frame too
big, an unknown opcode, a binary message) and each run reports its failure cause.
The load generator is the release build in build/ (XEDGE_BENCH: another build)."""
import asyncio
import base64
import hashlib
import json
import os
import struct
import subprocess
import threading

import pytest

from conftest import REPO, free_port
from peers import ejabberd, ejabberd_module, prosody  # noqa: F401

BENCH = os.environ.get("XEDGE_BENCH", str(REPO / "build" / "xedge-bench"))
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"

# ejabberd's WebSocket: ejabberd_http_ws on its own HTTP listener, path /ws (plain ws only:
# the test ejabberd has no certificate)
EJ_WS_PORT = free_port()
EJABBERD_OPTIONS = {"extra_listen": f"""\
  - port: {EJ_WS_PORT}
    ip: "127.0.0.1"
    module: ejabberd_http
    request_handlers:
      /ws: ejabberd_http_ws
"""}

# 4 users in pairs: each writes 5 messages to its pair's other user and 3 to itself;
# barriers keep everyone online until every message is out; an idle second with a
# keepalive of 200 ms sends ping frames (a whitespace keepalive is not a message).
CHAT = """\
name: ws-chat
target: {{domain: localhost, tls: {tls}, ws_path: {path}}}
users: {{prefix: {prefix}, password: {pw}, count: 4}}
phases: [{{users: 4}}]
timeout: 10s
keepalive: 200ms
sessions:
  - name: pair
    steps:
      - connect
      - auth: {mech}
      - bind
      - presence
      - roster
      - barrier
      - chat: {{to: peer, rate: 20/s, count: 5}}
      - chat: {{to: self, count: 3}}
      - idle: 1s
      - barrier
      - logout
"""


def run(*args, timeout=90):
    return subprocess.run([BENCH, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def chat_run(tmp_path, port, tls, prefix, pw, mech="scram-sha-256", name="ws",
             path="/xmpp-websocket"):
    f = tmp_path / f"{name}.yaml"
    f.write_text(CHAT.format(tls=tls, prefix=prefix, pw=pw, mech=mech, path=path))
    out = tmp_path / f"{name}.json"
    r = run("--port", port, "-s", f, "--json", out)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return json.loads(out.read_text()), r


def check_chat(res, tls):
    tx = res["transactions"]
    sf = res["scenario_file"]
    assert res["errors"]["count"] == 0, res["errors"]
    assert res["logins"]["logged_in"] == 4 and res["logins"]["failed"] == 0, res["logins"]
    assert (sf["arrived"], sf["finished"]) == (4, 4), sf
    assert tx["ws"]["count"] == 4 and tx["ws"]["errors"] == 0, tx["ws"]
    assert tx["login"]["count"] == tx["bind"]["count"] == tx["roster"]["count"] == 4
    if tls == "wss":
        assert tx["tls"]["count"] == 4
    chat = sf["chat"]
    assert chat["sent"] == chat["received"] == 4 * (5 + 3), chat


@pytest.mark.parametrize("server", [{"ws": True}], indirect=True)
def test_ws_and_wss_against_xedge(server, tmp_path):
    for i in range(4):
        server.ctl("user", "add", f"bws{i}@localhost", "bws-pw")
    for tls, port in (("ws", server.ws_port), ("wss", server.wss_port)):
        res, r = chat_run(tmp_path, port, tls, "bws", "bws-pw", name=tls)
        check_chat(res, tls)
        assert "WebSocket" in r.stderr, r.stderr[-500:]
    # the -s scenarios take --tls ws|wss too: logins through the upgrade
    out = tmp_path / "login.json"
    for tls, port in (("ws", server.ws_port), ("wss", server.wss_port)):
        r = run("-s", "login", "--clients", 4, "--user-prefix", "bws", "--password", "bws-pw",
                "--tls", tls, "--port", port, "--json", out)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        res = json.loads(out.read_text())
        assert res["logins"]["logged_in"] == 4 and res["errors"]["count"] == 0, res["errors"]
        assert res["transactions"]["ws"]["count"] == 4
    # no frame of ours broke a rule: the edge fails a WebSocket with "WebSocket closed"
    # and the close code (1002, 1007, 1009, ...)
    bad = [line for line in server.edge.text().splitlines() if "WebSocket closed" in line]
    assert bad == [], bad[:5]


@pytest.mark.parametrize("prosody", [{"websocket": True, "tls": True}], indirect=True)
def test_ws_and_wss_against_prosody(prosody, tmp_path):
    """Prosody's mod_websocket on its http port (ws) and its https port (wss)."""
    for i in range(4):
        prosody.register(f"pws{i}", "pws-pw")
    for tls, port in (("ws", prosody.http_port), ("wss", prosody.https_port)):
        res, _ = chat_run(tmp_path, port, tls, "pws", "pws-pw", mech="scram-sha-1", name=tls)
        check_chat(res, tls)


def test_ws_against_ejabberd(ejabberd, tmp_path):
    """ejabberd's ejabberd_http_ws on /ws (target.ws_path)."""
    for i in range(4):
        ejabberd.register(f"ews{i}", "ews-pw")
    res, _ = chat_run(tmp_path, EJ_WS_PORT, "ws", "ews", "ews-pw", mech="scram-sha-1",
                      path="/ws")
    check_chat(res, "ws")


# ---- a WebSocket server of our own ------------------------------------------------------

def accept_of(key: bytes) -> str:
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()


def frame(op, payload=b"", fin=True, mask=None, length=None):
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | op
    mbit = 0x80 if mask else 0
    if n < 126:
        h = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        h = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        h = struct.pack("!BBQ", b0, mbit | 127, n)
    if mask:
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        h += mask
    return h + payload


class FakeWS:
    """One asyncio WebSocket server in a thread; `mode` says how it behaves.  It records
    the client's frames as (opcode, payload, mask key) in .frames, and problems in .bad."""

    def __init__(self, mode):
        self.mode = mode
        self.frames = []
        self.request = b""
        self.bad = []
        self.done = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()
        assert self.ready.wait(10)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.t.join(10)

    async def read_frame(self, r):
        b0, b1 = await r.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", await r.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await r.readexactly(8))[0]
        if not b1 & 0x80:
            self.bad.append("an unmasked client frame")
            key = b"\0\0\0\0"
        else:
            key = await r.readexactly(4)
        data = bytes(c ^ key[i % 4] for i, c in enumerate(await r.readexactly(n)))
        if not b0 & 0x80:
            self.bad.append("a fragmented client frame")
        self.frames.append((b0 & 0x0F, data, key))
        return b0 & 0x0F, data

    async def read_text(self, r):
        """The next text frame's payload (control frames on the way are recorded)."""
        while True:
            op, data = await self.read_frame(r)
            if op == 1:
                return data

    async def _handle(self, r, w):
        try:
            self.request = await r.readuntil(b"\r\n\r\n")
            key = next(line.split(b":", 1)[1].strip() for line in self.request.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key:"))
            good = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept_of(key)}\r\n"
                    "Sec-WebSocket-Protocol: xmpp\r\n\r\n").encode()
            m = self.mode
            if m == "bad-accept":
                w.write(good.replace(accept_of(key).encode(), base64.b64encode(b"x" * 20)))
            elif m == "no-xmpp":
                w.write(good.replace(b"Sec-WebSocket-Protocol: xmpp\r\n", b""))
            elif m == "404":
                w.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            else:
                w.write(good)
                await w.drain()
                op, data = await self.read_frame(r)          # the client's <open/>
                if m == "masked":
                    w.write(frame(1, "<open/>", mask=b"abcd"))
                elif m == "too-big":
                    w.write(frame(1, b"", length=1 << 21))
                elif m == "bad-opcode":
                    w.write(b"\x83\x00")
                elif m == "binary":
                    w.write(frame(2, "<open/>"))
                elif m == "bad-utf8":
                    w.write(frame(1, b"<open \xff/>"))
                elif m == "stray-cont":
                    w.write(frame(0, "<open/>"))
                elif m == "close-midway":                    # a session, then a close frame
                    w.write(frame(1, f"<open xmlns='{NS_FRAMING}' from='localhost' id='c' "
                                     "version='1.0'/>") +
                            frame(1, "<stream:features xmlns:stream='http://etherx.jabber.org/"
                                     "streams'/>"))
                    await w.drain()
                    # the client's keepalive ping says it is logged in and idle
                    while (await asyncio.wait_for(self.read_frame(r), 20))[0] != 9:
                        pass
                    w.write(frame(8, struct.pack("!H", 1001) + b"bye"))
                elif m in ("good", "sm-too-high"):
                    await self.script(r, w)
                await w.drain()
                if m not in ("good", "sm-too-high"):        # the client's close frame, if any
                    try:
                        while True:
                            await asyncio.wait_for(self.read_frame(r), 10)
                    except asyncio.IncompleteReadError:
                        pass
            await w.drain()
            await asyncio.wait_for(r.read(), 10)             # until the client closes
        except Exception as e:                               # recorded for the test
            self.bad.append(f"{type(e).__name__}: {e}")
        finally:
            w.close()
            self.done.set()

    async def script(self, r, w):
        w.write(frame(9, "hb"))                              # a ping: the pong echoes it
        await w.drain()
        while (await self.read_frame(r))[0] != 10:
            pass
        opened = f"<open xmlns='{NS_FRAMING}' from='localhost' id='s1' version='1.0' xml:lang='en'/>"
        w.write(frame(1, opened[:20], fin=False) + frame(9, "mid") +
                frame(0, opened[20:50], fin=False) + frame(0, opened[50:]))
        w.write(frame(1, "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"
                         "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                         "<mechanism>PLAIN</mechanism></mechanisms></stream:features>"))
        await w.drain()
        data = await self.read_text(r)                       # <auth/>: success, then a new <open/>
        assert data.startswith(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'"), data
        w.write(frame(1, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"))
        await w.drain()
        data = await self.read_text(r)
        assert data.startswith(f"<open xmlns='{NS_FRAMING}'".encode()), data
        w.write(frame(1, opened.replace("s1", "s2")) +
                frame(1, "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"
                         "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>" +
                         ("<sm xmlns='urn:xmpp:sm:3'/>" if self.mode == "sm-too-high" else "") +
                         "</stream:features>"))
        await w.drain()
        data = await self.read_text(r)                       # the bind, as a self-contained stanza
        assert data.startswith(b"<iq xmlns='jabber:client' type='set' id='sb'>"), data
        w.write(frame(1, "<iq xmlns='jabber:client' type='result' id='sb'><bind "
                         "xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>u@localhost/r</jid>"
                         "</bind></iq>"))
        await w.drain()
        if self.mode == "sm-too-high":
            # XEP-0198 §4: an <a/> acknowledging more than the client sent (one stanza
            # since <enable/>) must get <undefined-condition/> with <handled-count-too-high/>
            data = await self.read_text(r)
            assert data.startswith(b"<enable xmlns='urn:xmpp:sm:3'"), data
            w.write(frame(1, "<enabled xmlns='urn:xmpp:sm:3'/>"))
            await w.drain()
            data = await self.read_text(r)                   # the presence: h 1 would be right
            assert data.startswith(b"<presence"), data
            w.write(frame(1, "<a xmlns='urn:xmpp:sm:3' h='5'/>"))
            await w.drain()
        while True:                                          # until the client's <close/>
            op, data = await self.read_frame(r)
            if op == 1 and data.startswith(b"<close"):
                break
        w.write(frame(1, f"<close xmlns='{NS_FRAMING}'/>") + frame(8, struct.pack("!H", 1000)))
        await w.drain()
        while (await self.read_frame(r))[0] != 8:            # its close frame answers ours
            pass


def one_user(tmp_path, port, steps="[connect, logout]", pw="", keepalive="60s"):
    f = tmp_path / "one.yaml"
    f.write_text("name: one\ntarget: {domain: localhost, tls: ws, ws_path: /xmpp}\n"
                 f"phases: [{{users: 1}}]\ntimeout: 5s\nkeepalive: {keepalive}\n"
                 f"sessions:\n  - name: s\n    steps: {steps}\n")
    out = tmp_path / "one.json"
    r = run("--port", port, "-s", f, "--json", out, timeout=60)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return json.loads(out.read_text())


def test_the_client_side_to_the_letter(tmp_path):
    srv = FakeWS("good")
    try:
        res = one_user(tmp_path, srv.port, "[connect, {auth: plain}, bind, logout]")
        assert srv.done.wait(10)
    finally:
        srv.stop()
    assert srv.bad == [], srv.bad
    assert res["errors"]["count"] == 0, res["errors"]
    tx = res["transactions"]
    assert tx["login"]["count"] == tx["ws"]["count"] == tx["auth"]["count"] == 1, tx
    req = srv.request.decode()
    assert req.startswith("GET /xmpp HTTP/1.1\r\n"), req
    for field in ("Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13",
                  "Sec-WebSocket-Protocol: xmpp", f"Host: localhost:{srv.port}"):
        assert field + "\r\n" in req, req
    ops = [op for op, _, _ in srv.frames]
    texts = [d.decode() for op, d, _ in srv.frames if op == 1]
    assert texts[0].startswith(f"<open xmlns='{NS_FRAMING}' to='localhost' version='1.0'"), texts
    assert (10, b"hb") in [(op, d) for op, d, _ in srv.frames]       # the pong of each ping
    assert (10, b"mid") in [(op, d) for op, d, _ in srv.frames]
    # after the bind: presence (unavailable: logout), stanzas in jabber:client, then <close/>
    assert texts[-2] == "<presence xmlns='jabber:client' type='unavailable'/>", texts
    assert texts[-1] == f"<close xmlns='{NS_FRAMING}'/>", texts
    assert ops[-1] == 8 and srv.frames[-1][1] == struct.pack("!H", 1000)  # 1000 echoed
    keys = [k for _, _, k in srv.frames]
    assert len(set(keys)) == len(keys), keys                         # a new key per frame


@pytest.mark.parametrize("mode,cause,code", [
    ("bad-accept", "ws:bad-upgrade", None),
    ("no-xmpp", "ws:bad-upgrade", None),
    ("404", "ws:http-404", None),
    ("masked", "ws:bad-frame", 1002),
    ("too-big", "ws:frame-too-big", 1009),
    ("bad-opcode", "ws:bad-frame", 1002),
    ("binary", "ws:binary-message", 1003),
    ("bad-utf8", "ws:bad-utf8", 1007),
    ("stray-cont", "ws:bad-frame", 1002),
    # logged in (the stream's features), then the server closes: the close frame is
    # answered with its code
    ("close-midway", "dropped:ws:closed-by-server", 1001),
])
def test_broken_servers_give_their_cause(tmp_path, mode, cause, code):
    """Each broken answer fails the one user with its cause; after the 101 the generator
    fails the WebSocket connection with a close frame carrying the RFC 6455 code."""
    srv = FakeWS(mode)
    try:
        midway = mode == "close-midway"
        res = one_user(tmp_path, srv.port, "[connect, {idle: 5s}, logout]" if midway else
                       "[connect, logout]", keepalive="200ms" if midway else "60s")
        assert srv.done.wait(10), "the generator did not close the connection"
    finally:
        srv.stop()
    assert res["errors"]["by_cause"] == {cause: 1}, res["errors"]
    if mode != "close-midway":
        assert res["logins"]["failed"] == 1
        assert res["transactions"]["ws"]["errors"] == 1, res["transactions"]["ws"]
    if code:
        # the <open/>, (the keepalive ping,) then the close frame with the code (masked, as
        # every client frame)
        assert [op for op, _, _ in srv.frames] == ([1, 9, 8] if midway else [1, 8]), srv.frames
        assert srv.frames[-1][1] == struct.pack("!H", code), srv.frames
        assert srv.bad == [], srv.bad


def test_an_ack_of_more_than_was_sent_is_a_stream_error(tmp_path):
    """XEP-0198 §4: the server acknowledges 5 stanzas of the 1 the client sent since
    <enable/>: the client closes the stream with <undefined-condition/> and
    <handled-count-too-high h='5' send-count='1'/>, then <close/>, and counts the cause."""
    srv = FakeWS("sm-too-high")
    try:
        f = tmp_path / "sm.yaml"
        f.write_text("name: sm\ntarget: {domain: localhost, tls: ws, ws_path: /xmpp}\n"
                     "phases: [{users: 1}]\ntimeout: 5s\nsessions:\n  - name: s\n"
                     "    steps: [connect, {auth: plain}, bind, {sm: {resume: false}}, presence,"
                     " {idle: 5s}]\n")
        out = tmp_path / "sm.json"
        r = run("--port", srv.port, "-s", f, "--json", out, timeout=60)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        assert srv.done.wait(10)
    finally:
        srv.stop()
    assert srv.bad == [], srv.bad
    res = json.loads(out.read_text())
    assert any("sm:handled-count-too-high" in k for k in res["errors"]["by_cause"]), res["errors"]
    texts = [d.decode() for op, d, _ in srv.frames if op == 1]
    err = next(t for t in texts if t.startswith("<stream:error"))
    assert "<undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" in err, err
    assert "<handled-count-too-high xmlns='urn:xmpp:sm:3' h='5' send-count='1'/>" in err, err
    assert texts[-1] == f"<close xmlns='{NS_FRAMING}'/>", texts
