"""XEP-0078 jabber:iq:auth against a real xedge: off by default (an iq error, the stream
stays open), then logins that bind the requested resource, wrong passwords, missing
fields, a plaintext stream, and the refusal after a failed SASL attempt."""
import pytest

from conftest import USERS
from rawxmpp import NS_CLIENT, NS_SASL, Raw, dump, q, stanza_error

NS_AUTH = "jabber:iq:auth"
NS_FEAT_AUTH = "http://jabber.org/features/iq-auth"
ON = pytest.mark.parametrize("server", [{"extra_edge_yaml": "legacy_auth:\n  enabled: true\n"}],
                             indirect=True)


def secure(port):
    c = Raw(port)
    c.open_stream()
    c.starttls()
    return c, c.open_stream()


def auth_iq(c, iq_id, typ, inner=""):
    c.send(f"<iq type='{typ}' id='{iq_id}'><query xmlns='{NS_AUTH}'>{inner}</query></iq>")
    return c.wait_for(lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("id") == iq_id)


def login_iq(c, iq_id, user, password, resource):
    return auth_iq(c, iq_id, "set", f"<username>{user}</username><password>{password}</password>"
                                    f"<resource>{resource}</resource>")


def error_of(el):
    assert el.get("type") == "error", f"expected an error, got {dump(el)}"
    typ, cond = stanza_error(el)
    return typ, cond, el.find(q(NS_CLIENT, "error")).get("code")


def test_off_by_default_is_an_iq_error(server):
    c, feats = secure(server.c2s_port)
    with c:
        assert feats.find(q(NS_FEAT_AUTH, "auth")) is None, dump(feats)
        assert error_of(auth_iq(c, "a1", "get")) == ("cancel", "service-unavailable", "503")
        assert error_of(login_iq(c, "a2", "alice", USERS["alice"], "r"))[1] == "service-unavailable"
        # The stream stays open.
        assert c.auth("alice", USERS["alice"]).tag == q(NS_SASL, "success")


@ON
def test_login_binds_the_resource(server):
    c, feats = secure(server.c2s_port)
    with c:
        assert feats.find(q(NS_FEAT_AUTH, "auth")) is not None, dump(feats)
        fields = auth_iq(c, "a1", "get").find(q(NS_AUTH, "query"))
        assert [f.tag for f in fields] == [q(NS_AUTH, "username"), q(NS_AUTH, "password"),
                                           q(NS_AUTH, "resource")], dump(fields)
        ok = login_iq(c, "a2", "Alice", USERS["alice"], "legacy")
        assert ok.get("type") == "result" and len(ok) == 0, dump(ok)
        # A working session, bound to the resource asked for.
        assert c.ping("p1").get("type") == "result"
        with Raw(server.c2s_port) as bob:
            bob.login("bob", USERS["bob"], "b")
            bob.send("<message to='alice@localhost/legacy' type='chat'><body>hi legacy</body></message>")
            m = c.wait_for(lambda e: e.tag == q(NS_CLIENT, "message"))
            assert m.findtext(q(NS_CLIENT, "body")) == "hi legacy"
            assert m.get("to") == "alice@localhost/legacy"
        assert any("alice@localhost/legacy" in line for line in server.sessions()), server.sessions()


@ON
def test_failures(server):
    c, _ = secure(server.c2s_port)
    with c:
        # §2: wrong credentials: not-authorized (401), for a wrong password and an
        # unknown user alike; missing fields: not-acceptable (406).
        assert error_of(login_iq(c, "f1", "alice", "wrong", "r")) == ("auth", "not-authorized", "401")
        assert error_of(login_iq(c, "f2", "nobody", "pw", "r"))[1] == "not-authorized"
        assert error_of(auth_iq(c, "f3", "set", "<username>alice</username><password>x</password>")) == \
            ("modify", "not-acceptable", "406")
        assert error_of(auth_iq(c, "f4", "set", "<username>alice</username><resource>r</resource>"))[1] == \
            "not-acceptable"
        assert error_of(auth_iq(c, "f5", "set", "<username>alice</username><digest>00</digest>"
                                                "<resource>r</resource>"))[1] == "not-acceptable"
    c, _ = secure(server.c2s_port)
    with c:
        assert login_iq(c, "ok", "bob", USERS["bob"], "x").get("type") == "result"


@ON
def test_failed_logins_end_the_stream_at_the_limit(server):
    c, _ = secure(server.c2s_port)
    with c:
        for i in range(2):
            assert error_of(login_iq(c, f"w{i}", "alice", "wrong", "r"))[1] == "not-authorized"
        c.send(f"<iq type='set' id='w3'><query xmlns='{NS_AUTH}'><username>alice</username>"
               f"<password>wrong</password><resource>r</resource></query></iq>")
        assert c.expect_stream_error_closed() == "policy-violation"


@ON
def test_refused_after_a_failed_sasl_attempt(server):
    c, _ = secure(server.c2s_port)
    with c:
        assert c.auth("alice", "wrong").tag == q(NS_SASL, "failure")
        # XEP-0078 §5: then iq:auth is a policy-violation stream error.
        c.send(f"<iq type='set' id='a1'><query xmlns='{NS_AUTH}'><username>alice</username>"
               f"<password>{USERS['alice']}</password><resource>r</resource></query></iq>")
        assert c.expect_stream_error_closed() == "policy-violation"


@pytest.mark.parametrize("server", [{"extra_edge_yaml": "legacy_auth:\n  enabled: true\n",
                                     "tls_require": False}], indirect=True)
def test_refused_over_plain_tcp(server):
    with Raw(server.c2s_port) as c:
        feats = c.open_stream()
        assert feats.find(q(NS_FEAT_AUTH, "auth")) is None, dump(feats)
        el = login_iq(c, "a1", "alice", USERS["alice"], "r")
        assert error_of(el)[1] == "service-unavailable"
        assert b"alice@localhost/r" not in c.raw
        # Still open; over TLS the same login works.
        assert auth_iq(c, "a2", "get").get("type") == "error"
    c, _ = secure(server.c2s_port)
    with c:
        assert login_iq(c, "a3", "alice", USERS["alice"], "r").get("type") == "result"
