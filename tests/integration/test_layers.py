"""How the layers end a connection, as a client sees it: a half-closed client
still gets our closing tag, a failed TLS handshake gets its alert before the
close, and the configuration refuses combinations the layers cannot serve."""
import socket
import ssl
import subprocess

import pytest

from conftest import binary, child_env
from rawxmpp import Raw


@pytest.mark.parametrize("server", [{"tls_require": False}], indirect=True)
def test_half_closed_client_gets_the_closing_tag(server):
    """A client's EOF (it may have only half-closed) is answered with
    </stream:stream> before our side closes (RFC 6120 §4.4)."""
    with Raw(server.c2s_port) as c:
        c.open_stream()
        c.sock.shutdown(socket.SHUT_WR)
        c.read_until_eof()
        assert c.raw.rstrip().endswith(b"</stream:stream>"), c.raw[-200:]


def test_failed_handshake_sends_its_alert(server):
    """No cipher in common: the client hears handshake_failure (alert 40), not a
    bare TCP close."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("CAMELLIA128-SHA")
    with socket.create_connection(("127.0.0.1", server.tls_port), timeout=5) as s:
        with pytest.raises(ssl.SSLError) as err:
            ctx.wrap_socket(s, server_hostname="localhost")
    assert "HANDSHAKE_FAILURE" in str(err.value).upper(), err.value
    server.wait_log("TLS handshake failed")


@pytest.mark.parametrize("yaml, why", [
    ("backend:\n  upstream: 127.0.0.1:5322\n  address: 127.0.0.1:7000\n", "exclude each other"),
    ("backend:\n  proxy_protocol: v2\n", "upstream mode only"),
    ("backend:\n  upstream: localhost:5322\n", "numeric IP and port"),
    ("backend:\n  upstream: 127.0.0.1:5322\n  proxy_protocol: v3\n", "none, v1 or v2"),
    ("listeners:\n  - type: c2s\n    address: 127.0.0.1:5222\n    path: /ws\n", "ws and wss listeners only"),
    ("listeners:\n  - type: ws\n    address: 127.0.0.1:5280\n    path: xmpp\n", "absolute HTTP path"),
    ("listeners:\n  - type: ws\n    address: 127.0.0.1:5280\n    proxy_protocol: maybe\n", "proxy_protocol"),
    ("listeners:\n  - type: websocket\n    address: 127.0.0.1:5280\n", "ws (WebSocket"),
])
def test_check_config_names_the_bad_line(tmp_path, cert, yaml, why):
    crt, key = cert
    f = tmp_path / "x.yaml"
    f.write_text(f"domains:\n  - name: localhost\n    cert: {crt}\n    key: {key}\n" + yaml)
    r = subprocess.run([str(binary("xedge")), "--check-config", str(f)], capture_output=True,
                       text=True, timeout=30, env=child_env())
    assert r.returncode != 0
    assert f"{f}:" in r.stderr and why in r.stderr, r.stderr
