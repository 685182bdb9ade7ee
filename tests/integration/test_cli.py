"""The command-line contract: --check-config and xedgectl errors."""
import subprocess

import pytest

from conftest import REPO, binary, child_env


def run(*argv, timeout=30):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=timeout, env=child_env(), stdin=subprocess.DEVNULL)


def edge_yaml(cert, extra=""):
    crt, key = cert
    return ("listeners:\n"
            "  - type: c2s\n"
            "    address: 127.0.0.1:1\n"
            "domains:\n"
            "  - name: localhost\n"
            f"    cert: {crt}\n"
            f"    key: {key}\n" + extra)


def test_check_config_ok(tmp_path, cert):
    cfg = tmp_path / "ok.yaml"
    cfg.write_text(edge_yaml(cert))
    r = run(binary("xedge"), "--check-config", cfg)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{cfg}: ok"


@pytest.mark.parametrize("extra,line,words", [
    ("bogus_key: 1\n", 8, "bogus_key"),
    ("limits:\n  max_stanza_bytes: lots\n", 9, "max_stanza_bytes"),
    ("tls:\n  require: maybe\n", 9, "true or false"),
])
def test_check_config_names_the_bad_line(tmp_path, cert, extra, line, words):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(edge_yaml(cert, extra))
    r = run(binary("xedge"), "--check-config", cfg)
    assert r.returncode == 1, (r.stdout, r.stderr)
    out = (r.stdout + r.stderr).strip()
    assert out.startswith(f"{cfg}:{line}: "), out
    assert words in out, out


def test_check_config_missing_cert_file(tmp_path, cert):
    cfg = tmp_path / "nocert.yaml"
    cfg.write_text(edge_yaml((tmp_path / "missing.crt", tmp_path / "missing.key")))
    r = run(binary("xedge"), "--check-config", cfg)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "missing.crt" in r.stdout + r.stderr


def test_sm_check_config(tmp_path):
    cfg = tmp_path / "sm.yaml"
    cfg.write_text("domains:\n  - name: localhost\nsession_server:\n"
                   f"  database: {tmp_path / 'x.db'}\n  listen: \"127.0.0.1:5999\"\n"
                   "  secret: s\n")
    r = run(binary("xedge-sm"), "--check-config", cfg)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{cfg}: ok"
    cfg.write_text("domains:\n  - name: localhost\nsession_server:\n"
                   f"  database: {tmp_path / 'x.db'}\n")
    r = run(binary("xedge-sm"), "--check-config", cfg)
    assert r.returncode == 1 and "listen" in r.stderr, (r.stdout, r.stderr)


def test_xedgectl_without_a_server(tmp_path):
    r = run(binary("xedgectl"), "-s", tmp_path / "nothing.sock", "sessions")
    assert r.returncode == 1
    assert "cannot reach" in r.stderr, r.stderr
    r = run(binary("xedgectl"), "-s", tmp_path / "nothing.sock", "frobnicate")
    assert r.returncode == 2, (r.returncode, r.stderr)


def test_xedgectl_errors_from_a_running_server(server):
    r = server.ctl("user", "add", "alice@localhost", "again", check=False)
    assert r.returncode == 1 and "exists" in r.stderr, r.stderr
    r = server.ctl("user", "add", "dave@example.org", "pw", check=False)
    assert r.returncode == 1, r.stderr
    r = server.ctl("roster", "add", "nobody@localhost", "bob@localhost", "both", check=False)
    assert r.returncode == 1 and "no such user" in r.stderr, r.stderr
    r = server.ctl("roster", "add", "alice@localhost", "bob@localhost", "sideways", check=False)
    assert r.returncode == 1, r.stderr
    # password from stdin
    r = server.ctl("user", "add", "dave@localhost", "-", input="dave-pw\n")
    assert r.returncode == 0
    assert server.ctl("roster", "list", "dave@localhost").stdout == "roster is empty\n"


@pytest.mark.parametrize("program", ["xedge", "xedge-sm", "xedgectl", "xedge-bench"])
def test_every_program_prints_its_version(program):
    # The load generator is built once, in build/ (no sanitizer build of it).
    path = REPO / "build" / program if program == "xedge-bench" else binary(program)
    r = run(path, "--version")
    assert r.returncode == 0, r.stderr
    name, version = r.stdout.split()
    assert name == program and version.count(".") == 2, r.stdout
    # The same version everywhere (core/version.h).
    assert version == run(binary("xedge"), "--version").stdout.split()[1]


def test_xedgectl_user_list_passwd_roster_del(server):
    assert server.ctl("user", "list").stdout.split() == sorted(
        server.jid(u) for u in ("alice", "bob", "carol"))
    r = server.ctl("user", "passwd", "alice@localhost", "-", input="a-new-password\n")
    assert r.stdout == "password of alice@localhost changed\n"
    r = server.ctl("user", "passwd", "nobody@localhost", "pw", check=False)
    assert r.returncode == 1 and "no such user" in r.stderr, r.stderr
    server.roster_add("alice", "bob")
    r = server.ctl("roster", "del", "alice@localhost", "bob@localhost")
    assert r.stdout == "roster of alice@localhost: bob@localhost removed\n"
    assert server.ctl("roster", "list", "alice@localhost").stdout == "roster is empty\n"
    r = server.ctl("roster", "del", "alice@localhost", "bob@localhost", check=False)
    assert r.returncode == 1 and "no roster item" in r.stderr, r.stderr
    r = server.ctl("user", "del", "carol@localhost")
    assert r.stdout == "user carol@localhost deleted, sessions closed: 0\n"
    assert server.ctl("sessions").stdout == "no sessions\n"
