"""Listeners with `proxy_protocol: true` (raw PROXY v1/v2 headers from Python;
behind a real HAProxy in test_peers_upstream.py): the address a header carries
is the one the session server, the logs and the per-IP limits see; a bad,
missing or slow header closes the connection and nothing else."""
import socket
import struct
import time

import pytest

from conftest import USERS
from rawxmpp import Raw, StreamClosed
from wsclient import WS

PROXIED = [{"proxy_protocol": True, "ws": True}]
SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(src, sport=40000, dst="127.0.0.1", dport=5222):
    return f"PROXY TCP4 {src} {dst} {sport} {dport}\r\n".encode()


def v2(src, sport=40000, dst="127.0.0.1", dport=5222, command=1):
    addrs = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return SIG + bytes([0x20 | command, 0x11]) + struct.pack("!H", len(addrs)) + addrs


def v2_tcp6(src, sport=40000, dst="::1", dport=5222):
    addrs = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) +
             struct.pack("!HH", sport, dport))
    return SIG + bytes([0x21, 0x21]) + struct.pack("!H", len(addrs)) + addrs


def session_addr(server, jid):
    for line in server.sessions():
        if line.startswith(jid + " "):
            return line.split()[1]
    raise AssertionError(f"no session {jid} in {server.sessions()}")


@pytest.mark.parametrize("server", PROXIED, indirect=True)
@pytest.mark.parametrize("direct_tls", [False, True], ids=["starttls", "direct-tls"])
@pytest.mark.parametrize("header, addr", [
    (v1("192.0.2.10"), "192.0.2.10"),
    (v2("198.51.100.7"), "198.51.100.7"),
    (v2_tcp6("2001:db8::5"), "2001:db8::5"),
], ids=["v1", "v2", "v2-tcp6"])
def test_session_server_sees_the_proxied_address(server, header, addr, direct_tls):
    port = server.tls_port if direct_tls else server.c2s_port
    with Raw(port, preamble=header, direct_tls=direct_tls) as c:
        c.login("alice", USERS["alice"], "p")
        assert session_addr(server, "alice@localhost/p") == addr
    server.wait_log(f"PROXY header.*client={addr}")


@pytest.mark.parametrize("server", PROXIED, indirect=True)
def test_websocket_behind_proxy(server):
    with WS(server.ws_port, preamble=v2("203.0.113.9")).upgrade() as c:
        c.login("bob", USERS["bob"], "w")
        assert session_addr(server, "bob@localhost/w") == "203.0.113.9"


@pytest.mark.parametrize("server", PROXIED, indirect=True)
def test_local_command_keeps_the_socket_address(server):
    """v2 LOCAL (a balancer's health check): the socket's own address stands."""
    with Raw(server.c2s_port, preamble=v2("192.0.2.99", command=0)) as c:
        c.login("carol", USERS["carol"], "l")
        assert session_addr(server, "carol@localhost/l") == "127.0.0.1"


@pytest.mark.parametrize("server", PROXIED, indirect=True)
@pytest.mark.parametrize("junk", [
    b"<?xml version='1.0'?><stream:stream to='localhost'>",   # no header at all
    b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n",                  # port out of range
    b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",                     # two spaces
    SIG + b"\x31\x11\x00\x0c" + b"\x00" * 12,                   # version 3
    SIG + b"\x21\x11\xff\xff",                                   # length over the bound
    b"PROXY TCP4 " + b"1" * 120,                                 # no CRLF within 107 bytes
], ids=["xml", "port", "spaces", "v3", "len", "long"])
def test_bad_header_closes_and_nothing_else(server, junk):
    """Nothing is answered (there is no stream yet): the connection closes, the
    log says why, and another client is unaffected."""
    s = socket.create_connection(("127.0.0.1", server.c2s_port), timeout=5)
    s.sendall(junk)
    s.settimeout(5)
    data = b""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            data += d
    except ConnectionResetError:
        pass
    s.close()
    assert data == b""
    server.wait_log("bad PROXY header")
    with Raw(server.c2s_port, preamble=v1("192.0.2.1")) as c:
        c.login("alice", USERS["alice"], "after")


@pytest.mark.parametrize("server", [{"proxy_protocol": True, "handshake_timeout": 2}], indirect=True)
def test_incomplete_header_times_out(server):
    s = socket.create_connection(("127.0.0.1", server.c2s_port), timeout=10)
    s.sendall(b"PROXY TCP4 192.0.2.1")
    t0 = time.monotonic()
    s.settimeout(10)
    assert s.recv(4096) == b""
    assert time.monotonic() - t0 < 8
    s.close()


@pytest.mark.parametrize("server", [{"proxy_protocol": True,
                                     "limits": {"max_connections_per_ip": 2}}], indirect=True)
def test_per_ip_limit_applies_to_the_proxied_address(server):
    """Two connections from 192.0.2.50 (through the same balancer) are the most
    it may hold; a third is closed, while 192.0.2.51 still gets in."""
    held = [Raw(server.c2s_port, preamble=v1("192.0.2.50", sport=1000 + i)) for i in range(2)]
    try:
        for c in held:
            c.open_stream()
        with Raw(server.c2s_port, preamble=v1("192.0.2.50", sport=1003)) as third:
            with pytest.raises(StreamClosed):
                third.open_stream()
        server.wait_log(r"connection refused.*peer=192\.0\.2\.50")
        with Raw(server.c2s_port, preamble=v1("192.0.2.51")) as other:
            other.login("bob", USERS["bob"], "x")
    finally:
        for c in held:
            c.close()
