"""Upstream mode with backend.upstream_tls: the edge secures its stream to the
upstream server with STARTTLS, verifying the server's certificate against
tls.ca_file and the domain name, before the client hears the upstream's
features.  The upstream is Prosody 0.12 (Debian) with conftest's self-signed
localhost certificate and c2s_require_encryption = true, so a plaintext
upstream stream could not authenticate."""
import subprocess

import pytest

from conftest import USERS, make_cert
from peers import prosody  # noqa: F401
from rawxmpp import Raw, header
from slixclient import run
from test_upstream import chat, edge_for  # noqa: F401

# Prosody offers STARTTLS with the suite's certificate and refuses anything
# else (SASL included) on a stream that is not encrypted.  Set for the host:
# the global option is already set (false) by peers.py, and Prosody 0.12
# cannot report a duplicate global.
SECURE_PROSODY = {"tls": True,
                  "extra_config": 'VirtualHost "localhost"\n  c2s_require_encryption = true\n'}


def other_ca(d):
    """A self-signed certificate for localhost that did not sign Prosody's."""
    return make_cert(d, "other-ca")[0]


@pytest.mark.parametrize("prosody", [SECURE_PROSODY], indirect=True, ids=["prosody-tls-required"])
def test_slixmpp_chats_over_a_verified_upstream_tls(prosody, edge_for, cert):
    edge = edge_for(prosody.c2s_port, upstream_tls=True, ca_file=str(cert[0]))
    alice = (prosody.jid("alice"), USERS["alice"])
    bob = (prosody.jid("bob"), USERS["bob"])
    run(chat(edge.c2s_port, alice, bob, direct_tls=False), 60)
    # Both upstream streams were secured by the edge, and Prosody (which requires
    # encryption) authenticated both: so they authenticated over TLS.
    edge.wait_log("upstream stream secured with TLS", count=2)
    edge.wait_log("authenticated by the upstream", count=2)
    prosody.wait_log(r"Authenticated as bob@localhost")
    encrypted = [l for l in prosody.log_text().splitlines() if "Stream encrypted" in l]
    assert len(encrypted) >= 2, prosody.log_tails()


@pytest.mark.parametrize("prosody", [SECURE_PROSODY], indirect=True, ids=["prosody-tls-required"])
def test_upstream_certificate_not_signed_by_the_ca_fails_the_login(prosody, edge_for, tmp_path):
    edge = edge_for(prosody.c2s_port, upstream_tls=True, ca_file=str(other_ca(tmp_path)))
    with Raw(edge.c2s_port) as c:
        c.open_stream()
        c.starttls()
        c.reset()
        c.send(header("localhost"))
        cond = c.expect_stream_error(timeout=20)
    assert cond == "internal-server-error", cond
    edge.wait_log("TLS handshake with the upstream server failed.*certificate verification failed")
    assert "upstream stream secured" not in edge.log()


def test_upstream_without_starttls_fails_the_login(prosody, edge_for, cert):
    """Prosody without a certificate offers no STARTTLS: with upstream_tls on the
    client is refused, and the log says why."""
    edge = edge_for(prosody.c2s_port, upstream_tls=True, ca_file=str(cert[0]))
    with Raw(edge.c2s_port) as c:
        c.open_stream()
        c.starttls()
        c.reset()
        c.send(header("localhost"))
        cond = c.expect_stream_error(timeout=20)
    assert cond == "internal-server-error", cond
    edge.wait_log("upstream server offers no STARTTLS")


def test_upstream_tls_needs_a_ca_file(tmp_path):
    """--check-config names the line of upstream_tls when tls.ca_file is missing, and
    the line of ca_file when it cannot be read."""
    from conftest import binary
    base = ("listeners:\n  - type: c2s\n    address: 127.0.0.1:5222\n"
            "domains:\n  - name: localhost\n    cert: /nonexistent.crt\n    key: /nonexistent.key\n")
    cfg = tmp_path / "a.yaml"
    cfg.write_text(base + "backend:\n  upstream: 127.0.0.1:5322\n  upstream_tls: true\n")
    r = subprocess.run([str(binary("xedge")), "--check-config", str(cfg)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode != 0
    assert f"{cfg}:10:" in r.stderr and "tls.ca_file" in r.stderr, r.stderr
    cfg.write_text(base + "tls:\n  ca_file: /nonexistent-ca.pem\n"
                   "backend:\n  upstream: 127.0.0.1:5322\n  upstream_tls: true\n")
    r = subprocess.run([str(binary("xedge")), "--check-config", str(cfg)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode != 0
    assert f"{cfg}:9:" in r.stderr and "cannot read" in r.stderr, r.stderr


def test_upstream_certificate_for_another_name_fails_the_login(edge_for, tmp_path, request):
    """The chain verifies (the CA file is the certificate itself) but it names
    other.example, not the domain: the name check refuses it."""
    from peers import Prosody, _attach
    d = tmp_path / "other"
    d.mkdir()
    crt, key = d / "other.crt", d / "other.key"
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                        "/CN=other.example", "-addext", "subjectAltName=DNS:other.example",
                        "-keyout", str(key), "-out", str(crt)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    p = Prosody(tmp_path / "prosody", tls=(crt, key), extra_config=SECURE_PROSODY["extra_config"])
    _attach(request, p)
    try:
        p.start()
        edge = edge_for(p.c2s_port, upstream_tls=True, ca_file=str(crt))
        with Raw(edge.c2s_port) as c:
            c.open_stream()
            c.starttls()
            c.reset()
            c.send(header("localhost"))
            cond = c.expect_stream_error(timeout=20)
        assert cond == "internal-server-error", cond
        edge.wait_log("TLS handshake with the upstream server failed.*certificate verification failed")
    finally:
        p.stop()
