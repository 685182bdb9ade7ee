"""`xedge --check-config` on the files a domain names and on XEDGE_* overrides:
what an operator sees for each mistake, and the exit status."""
import datetime
import os
import subprocess

import pytest

from conftest import binary, child_env

DOMAIN = "a.example"


def openssl(*args):
    subprocess.run(["openssl", *[str(a) for a in args]], check=True, capture_output=True,
                   timeout=60)


def ec_key(path):
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", path)
    return path


def rsa_key(path):
    openssl("genrsa", "-out", path, "2048")
    return path


def self_signed(key, path, name=DOMAIN):
    openssl("req", "-x509", "-new", "-key", key, "-out", path, "-subj", f"/CN={name}",
            "-addext", f"subjectAltName=DNS:{name}", "-days", "30")
    return path


def check(tmp_path, crt, key, extra="", env=None):
    cfg = tmp_path / "xedge.yaml"
    cfg.write_text("listeners:\n"
                   "  - type: c2s\n"
                   "    address: 127.0.0.1:1\n"
                   "domains:\n"
                   f"  - name: {DOMAIN}\n"
                   f"    cert: {crt}\n"
                   f"    key: {key}\n" + extra)
    e = child_env()
    e.update(env or {})
    r = subprocess.run([str(binary("xedge")), "--check-config", str(cfg)], capture_output=True,
                       text=True, timeout=60, env=e, stdin=subprocess.DEVNULL)
    return cfg, r


def log_msgs(r, level):
    """The msg="..." of every log line of that level on stderr."""
    out = []
    for line in r.stderr.splitlines():
        if f" level={level} msg=\"" in line:
            out.append(line.split(' msg="', 1)[1].split('"', 1)[0] + line.split('"', 2)[2])
    return out


def expect_failure(cfg, r, msg):
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert log_msgs(r, "error") == [msg], r.stderr
    assert r.stderr.rstrip().endswith(f"{cfg}: TLS set-up failed (see the log line above)"), r.stderr


@pytest.fixture
def ec_pair(tmp_path):
    k = ec_key(tmp_path / "good.key")
    return self_signed(k, tmp_path / "good.crt"), k


def test_matching_ec_pair_is_ok(tmp_path, ec_pair):
    cfg, r = check(tmp_path, *ec_pair)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{cfg}: ok"
    assert log_msgs(r, "warn") == [] and log_msgs(r, "error") == [], r.stderr


def test_mismatched_p256_key(tmp_path, ec_pair):
    crt, _ = ec_pair
    other = ec_key(tmp_path / "other.key")
    cfg, r = check(tmp_path, crt, other)
    expect_failure(cfg, r, "tls: the private key does not belong to the certificate (its public "
                   "key does not verify what the key signs) "
                   f"domain={DOMAIN} cert={crt} key={other}")


def test_mismatched_pkcs8_p256_key(tmp_path, ec_pair):
    crt, _ = ec_pair
    other = tmp_path / "other-p8.key"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", other)
    assert "BEGIN PRIVATE KEY" in other.read_text()
    cfg, r = check(tmp_path, crt, other)
    expect_failure(cfg, r, "tls: the private key does not belong to the certificate (its public "
                   "key does not verify what the key signs) "
                   f"domain={DOMAIN} cert={crt} key={other}")


def test_mismatched_rsa_key(tmp_path):
    crt = self_signed(rsa_key(tmp_path / "r1.key"), tmp_path / "r1.crt")
    other = rsa_key(tmp_path / "r2.key")
    cfg, r = check(tmp_path, crt, other)
    expect_failure(cfg, r, "tls: the private key does not belong to the certificate "
                   f"domain={DOMAIN} cert={crt} key={other}")


def test_matching_rsa_pair_is_ok(tmp_path):
    k = rsa_key(tmp_path / "r1.key")
    cfg, r = check(tmp_path, self_signed(k, tmp_path / "r1.crt"), k)
    assert r.returncode == 0, r.stderr


def test_missing_cert_file(tmp_path, ec_pair):
    missing = tmp_path / "missing.crt"
    cfg, r = check(tmp_path, missing, ec_pair[1])
    expect_failure(cfg, r, f"tls: cannot open {missing}: No such file or directory "
                   f"domain={DOMAIN}")


def test_missing_key_file(tmp_path, ec_pair):
    missing = tmp_path / "missing.key"
    cfg, r = check(tmp_path, ec_pair[0], missing)
    expect_failure(cfg, r, f"tls: cannot open {missing}: No such file or directory "
                   f"domain={DOMAIN}")


def test_unreadable_key(tmp_path, ec_pair):
    """chmod 000 does not stop root (the tests run as root here): a directory
    in place of the key is unreadable to anyone."""
    d = tmp_path / "key-dir"
    d.mkdir()
    cfg, r = check(tmp_path, ec_pair[0], d)
    expect_failure(cfg, r, f"tls: cannot read {d}: Is a directory domain={DOMAIN}")


def test_key_without_permission(tmp_path, ec_pair):
    if os.geteuid() == 0:
        pytest.skip("running as root: file permissions do not stop reading "
                    "(test_unreadable_key covers an unreadable key)")
    key = tmp_path / "locked.key"
    key.write_bytes(ec_pair[1].read_bytes())
    key.chmod(0)
    cfg, r = check(tmp_path, ec_pair[0], key)
    expect_failure(cfg, r, f"tls: cannot open {key}: Permission denied domain={DOMAIN}")


def test_cert_not_pem(tmp_path, ec_pair):
    junk = tmp_path / "der.crt"
    openssl("x509", "-in", ec_pair[0], "-outform", "DER", "-out", junk)
    cfg, r = check(tmp_path, junk, ec_pair[1])
    expect_failure(cfg, r, f"tls: {junk} is not PEM: no '-----BEGIN ...CERTIFICATE-----' line "
                   f"(a certificate chain in PEM expected) domain={DOMAIN}")


def test_key_not_pem(tmp_path, ec_pair):
    junk = tmp_path / "junk.key"
    junk.write_text("this is not a key\n")
    cfg, r = check(tmp_path, ec_pair[0], junk)
    expect_failure(cfg, r, f"tls: {junk} is not PEM: no '-----BEGIN ...PRIVATE KEY-----' line "
                   f"(a private key in PEM expected) domain={DOMAIN}")


def test_key_given_as_cert(tmp_path, ec_pair):
    """Both files swapped: the certificate file holds no certificate."""
    cfg, r = check(tmp_path, ec_pair[1], ec_pair[0])
    expect_failure(cfg, r, f"tls: {ec_pair[1]} is not PEM: no '-----BEGIN ...CERTIFICATE-----' "
                   f"line (a certificate chain in PEM expected) domain={DOMAIN}")


def dated_cert(tmp_path, key_path, not_before, not_after):
    """A certificate for DOMAIN with the given validity (openssl 3.0's req
    cannot set past dates: python3-cryptography does)."""
    x509 = pytest.importorskip("cryptography.x509", reason="python3-cryptography makes dated certs")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DOMAIN)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(DOMAIN)]), critical=False)
            .sign(key, hashes.SHA256()))
    path = tmp_path / "dated.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_expired_cert_warns(tmp_path, ec_pair):
    now = datetime.datetime.now(datetime.timezone.utc)
    crt = dated_cert(tmp_path, ec_pair[1], now - datetime.timedelta(days=60),
                     now - datetime.timedelta(days=1))
    cfg, r = check(tmp_path, crt, ec_pair[1])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{cfg}: ok"
    assert log_msgs(r, "warn") == ["tls: the certificate has expired: clients will refuse it "
                                   f"domain={DOMAIN} cert={crt}"], r.stderr


def test_not_yet_valid_cert_warns(tmp_path, ec_pair):
    now = datetime.datetime.now(datetime.timezone.utc)
    crt = dated_cert(tmp_path, ec_pair[1], now + datetime.timedelta(days=2),
                     now + datetime.timedelta(days=60))
    cfg, r = check(tmp_path, crt, ec_pair[1])
    assert r.returncode == 0, r.stderr
    assert log_msgs(r, "warn") == ["tls: the certificate is not valid yet: clients will refuse it "
                                   f"domain={DOMAIN} cert={crt}"], r.stderr


def test_cert_for_another_name_warns(tmp_path, ec_pair):
    crt = self_signed(ec_pair[1], tmp_path / "other-name.crt", name="b.example")
    cfg, r = check(tmp_path, crt, ec_pair[1])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{cfg}: ok"
    assert log_msgs(r, "warn") == [
        "tls: the certificate does not name the domain (RFC 6125: no DNS, SRV or XmppAddr "
        f"identity matching it): clients will refuse it domain={DOMAIN} cert={crt}"], r.stderr


def test_env_override_of_absent_key_applies(tmp_path, ec_pair):
    """XEDGE_LOG_LEVEL with no log_level in the file: the warning about a
    certificate for another name is then below the level and not written."""
    crt = self_signed(ec_pair[1], tmp_path / "other-name.crt", name="b.example")
    cfg, r = check(tmp_path, crt, ec_pair[1])
    assert len(log_msgs(r, "warn")) == 1, r.stderr
    cfg, r = check(tmp_path, crt, ec_pair[1], env={"XEDGE_LOG_LEVEL": "error",
                                                   "XEDGE_S2S_IDLE_TIMEOUT": "30"})
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr
    assert r.stdout.strip() == f"{cfg}: ok"
    cfg, r = check(tmp_path, *ec_pair, env={"XEDGE_WORKERS": "1000"})
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stderr.strip() == "XEDGE_WORKERS=1000: workers: expected a whole number from 0 to 256"


def test_env_override_of_tls_ca_file_absent_from_file(tmp_path, ec_pair):
    cfg, r = check(tmp_path, *ec_pair, env={"XEDGE_TLS_CA_FILE": str(tmp_path / "none.pem")})
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stderr.strip() == (f"XEDGE_TLS_CA_FILE={tmp_path / 'none.pem'}: tls.ca_file: cannot "
                                f"read {tmp_path / 'none.pem'}: No such file or directory")
    cfg, r = check(tmp_path, *ec_pair, env={"XEDGE_TLS_CA_FILE": str(ec_pair[0])})
    assert r.returncode == 0, r.stderr


def test_env_bad_value_names_the_variable(tmp_path, ec_pair):
    cfg, r = check(tmp_path, *ec_pair, extra="limits:\n  max_depth: 20\n",
                   env={"XEDGE_LIMITS_MAX_DEPTH": "abc"})
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stderr.strip() == ("XEDGE_LIMITS_MAX_DEPTH=abc: limits.max_depth: expected a whole "
                                "number from 2 to 1000")


def test_env_unknown_key_of_a_section(tmp_path, ec_pair):
    cfg, r = check(tmp_path, *ec_pair, env={"XEDGE_LIMITS_MAX_DEPHT": "20"})
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stderr.strip() == (
        "XEDGE_LIMITS_MAX_DEPHT=20: limits: unknown key 'max_depht' (known: max_stanza_bytes, "
        "max_depth, max_attrs, max_name_bytes, max_value_bytes, max_connections, "
        "max_auth_failures, max_connections_per_ip, connection_rate_per_ip, max_tls_handshakes, "
        "max_out_bytes, rate_bytes, rate_stanzas)")


def test_env_names_of_other_programs_are_ignored(tmp_path, ec_pair):
    cfg, r = check(tmp_path, *ec_pair, env={"XEDGE_CONFIG": "/nonexistent.yaml",
                                            "XEDGE_SOMETHING_ELSE": "x"})
    assert r.returncode == 0, r.stderr


def test_kubernetes_service_variables_are_not_keys(tmp_path, ec_pair):
    """Kubernetes puts <SERVICE>_SERVICE_HOST, _SERVICE_PORT and _PORT_* of every Service in
    the namespace into each container: Services named xedge-admin or xedge-s2s must not
    stop xedge from starting with an unknown key."""
    env = {"XEDGE_ADMIN_SERVICE_HOST": "10.0.0.7", "XEDGE_ADMIN_SERVICE_PORT": "5280",
           "XEDGE_ADMIN_SERVICE_PORT_METRICS": "5280", "XEDGE_S2S_PORT": "tcp://10.0.0.8:5269",
           "XEDGE_S2S_PORT_5269_TCP": "tcp://10.0.0.8:5269", "XEDGE_S2S_PORT_5269_TCP_ADDR": "10.0.0.8",
           "XEDGE_DRAIN_SERVICE_HOST": "10.0.0.9"}
    cfg, r = check(tmp_path, *ec_pair, env=env)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("extra, line, why", [
    ("admin:\n  address: localhost:5280\n", 9,
     "admin.address: expected a numeric IP and port, such as 127.0.0.1:5280"),
    ("admin:\n  port: 5280\n", 9, "admin: unknown key 'port' (known: address)"),
    ("drain:\n  redirect: \"edge2 <x>\"\n", 9, "drain.redirect: expected the host[:port] of another edge"),
    ("drain:\n  redirect_uri: https://edge2/x\n", 9, "drain.redirect_uri: expected a ws:// or wss:// URI"),
    ("drain:\n  rate: 0\n", 9, "drain.rate: expected a whole number from 1 to 1000000"),
    ("drain:\n  grace: soon\n", 9, "drain.grace: expected a whole number from 0 to 86400"),
])
def test_admin_and_drain_keys_are_checked(tmp_path, ec_pair, extra, line, why):
    cfg, r = check(tmp_path, *ec_pair, extra=extra)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stderr.startswith(f"{cfg}:{line}: {why}"), r.stderr


def test_admin_and_drain_from_the_environment(tmp_path, ec_pair):
    cfg, r = check(tmp_path, *ec_pair, env={"XEDGE_ADMIN_ADDRESS": "0.0.0.0:5280",
                                            "XEDGE_DRAIN_REDIRECT": "edge2.example.org:5222",
                                            "XEDGE_DRAIN_RATE": "200"})
    assert r.returncode == 0, r.stderr
    cfg, r = check(tmp_path, *ec_pair, env={"XEDGE_DRAIN_RATE": "-1"})
    assert r.returncode == 1 and r.stderr.startswith("XEDGE_DRAIN_RATE=-1: drain.rate:"), r.stderr
