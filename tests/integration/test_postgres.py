"""PostgreSQL as the session server's database (session_server.database: a
postgresql:// URI), against a real PostgreSQL server (pgserver.py): the client
flows users see (registration and login, roster and subscriptions with
presence, offline messages, the archive, vCard and private storage, account
removal), data surviving a crash of xedge, two xedge-sm processes on one
database, and a PostgreSQL restart under a running xedge.  The password in
the URI must never reach a log."""
import asyncio
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import USERS, Server, ServerOptions, wait_until
from pgserver import PG_PASSWORD, pg, pgdb  # noqa: F401 -- fixtures
from rawxmpp import NS_CLIENT, NS_SASL, Raw, dump, q
from slixclient import Client, close_all, run

NS_REG = "jabber:iq:register"
NS_MAM = "urn:xmpp:mam:2"
NS_FWD = "urn:xmpp:forward:0"
IQ, MESSAGE, BODY = q(NS_CLIENT, "iq"), q(NS_CLIENT, "message"), q(NS_CLIENT, "body")


def start(request, workdir: Path, cert, uri: str, **opts) -> Server:
    """xedge (and xedge-sm when mode is external) on the database uri, with the
    accounts alice, bob and carol when they are not there yet; stopped (and its
    shutdown checked) at the end of the test."""
    sockdir = Path(tempfile.mkdtemp(prefix="xe", dir="/tmp"))
    workdir.mkdir(parents=True, exist_ok=True)
    o = {"database": uri, "sm": {"mam_default": "always"},
         "extra_edge_yaml": "register:\n  enabled: true\n  rate: 50\n", **opts}
    srv = Server(ServerOptions(**o), workdir, sockdir, cert)
    request.node._xedge_servers = getattr(request.node, "_xedge_servers", []) + [srv]

    def finish():
        problems = srv.stop()
        shutil.rmtree(sockdir, ignore_errors=True)
        assert not problems, "server shutdown:\n  " + "\n  ".join(problems) + srv.log_tails()
        assert_no_password(srv)
    request.addfinalizer(finish)
    srv.start()
    for u in USERS:
        if srv.ctl("user", "add", srv.jid(u), USERS[u], check=False).returncode != 0:
            assert "exist" in srv.ctl("user", "add", srv.jid(u), USERS[u],
                                      check=False).stderr.lower() + srv.log_tails()
    return srv


def assert_no_password(srv: Server):
    for p in srv.procs + getattr(srv, "crashed", []):
        assert PG_PASSWORD not in p.text(), f"{p.name} logged the database password"


def login(srv, user, resource=None, password=None):
    c = Raw(srv.c2s_port)
    c.login(user, password or USERS[user], resource)
    return c


def raw_iq(c, iq_id, body, itype="get", to=None):
    to_attr = f" to='{to}'" if to else ""
    c.send(f"<iq type='{itype}' id='{iq_id}'{to_attr}>{body}</iq>")
    return c.wait_for(lambda e: e.tag == IQ and e.get("id") == iq_id)


def rows(pgsrv, db, sql) -> int:
    return int(pgsrv.psql(sql, db=db))


def wait_rows(pgsrv, db, sql, n, timeout=20.0):
    wait_until(lambda: rows(pgsrv, db, sql) == n, timeout, f"{n} rows for {sql}")


def offline_count(pgsrv, db, jid) -> int:
    return rows(pgsrv, db, f"SELECT count(*) FROM offline WHERE \"user\" = '{jid}'")


def send_offline(srv, to, body, sender="alice"):
    with login(srv, sender, "sender") as a:
        a.send(f"<message to='{to}' type='chat' id='{body}'><body>{body}</body></message>")
        assert a.ping("sync").get("type") == "result"


def receive(srv, user, bodies, timeout=20.0):
    """Log user in with initial presence; every body in bodies arrives."""
    got = set()
    with login(srv, user, "reader") as c:
        c.send("<presence/>")
        while not set(bodies) <= got:
            el = c.next_item(timeout=timeout)
            if el.tag == MESSAGE and el.findtext(BODY):
                got.add(el.findtext(BODY))
    return got


# ---- client flows ------------------------------------------------------------------


def test_register_login_remove(request, tmp_path, cert, pgdb):
    pgsrv, db, uri = pgdb
    srv = start(request, tmp_path / "x", cert, uri)
    c = Raw(srv.c2s_port)
    with c:
        c.open_stream()
        c.starttls()
        c.open_stream()
        ok = raw_iq(c, "r1", f"<query xmlns='{NS_REG}'><username>dave</username>"
                             "<password>dave-Secret-4</password></query>", "set")
        assert ok.get("type") == "result", dump(ok)
        # Taken: the database's unique key answers (XEP-0077 §3.1.1 conflict).
        again = raw_iq(c, "r2", f"<query xmlns='{NS_REG}'><username>dave</username>"
                                "<password>other</password></query>", "set")
        assert again.get("type") == "error" and again.find(
            f"{{{NS_CLIENT}}}error/{{urn:ietf:params:xml:ns:xmpp-stanzas}}conflict") is not None, \
            dump(again)
    assert rows(pgsrv, db, "SELECT count(*) FROM users WHERE jid = 'dave@localhost'") == 1
    for mech in ("PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"):
        with Raw(srv.c2s_port) as d:
            d.login("dave", "dave-Secret-4", "r", mech=mech)
            assert d.jid.startswith("dave@localhost/")
    # Something stored for dave, then the account removed: every row goes.
    send_offline(srv, "dave@localhost", "for-dave")
    wait_rows(pgsrv, db, "SELECT count(*) FROM offline WHERE \"user\" = 'dave@localhost'", 1)
    with login(srv, "dave", "gone", "dave-Secret-4") as d:
        d.send(f"<iq type='set' id='rm'><query xmlns='{NS_REG}'><remove/></query></iq>")
        res = d.wait_for(lambda e: e.get("id") == "rm")
        assert res.get("type") == "result", dump(res)
    for table in ("users WHERE jid", "offline WHERE \"user\""):
        assert rows(pgsrv, db, f"SELECT count(*) FROM {table} = 'dave@localhost'") == 0
    with Raw(srv.c2s_port) as d:
        d.open_stream()
        d.starttls()
        d.open_stream()
        assert d.auth("dave", "dave-Secret-4").tag == q(NS_SASL, "failure")


async def slix(srv, jid):
    c = Client(jid, USERS[jid.split("@")[0]])
    c.roster.auto_authorize = None
    c.roster.auto_subscribe = False
    await c.login(srv.c2s_port)
    await c.get_roster()
    return c


async def until(cond, what, timeout=10.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.02)


def test_roster_subscription_presence_offline_and_mam(request, tmp_path, cert, pgdb):
    pgsrv, db, uri = pgdb
    srv = start(request, tmp_path / "x", cert, uri)

    async def scenario():
        alice = bob = None
        try:
            alice = await slix(srv, "alice@localhost/phone")
            bob = await slix(srv, "bob@localhost/laptop")
            await alice.update_roster("bob@localhost", name="Bob", groups=["Friends"])
            await until(lambda: alice.client_roster.has_jid("bob@localhost"), "roster push")
            alice.send_presence(pto="bob@localhost", ptype="subscribe")
            await bob.wait_presence("alice@localhost", "subscribe")
            bob.send_presence(pto="alice@localhost", ptype="subscribed")
            await alice.wait_presence("bob@localhost", "subscribed")
            # RFC 6121 §3.1.5: bob's presence follows his approval.
            await alice.wait_presence("bob@localhost/laptop", "available")
            await until(lambda: alice.client_roster["bob@localhost"]["subscription"] == "to",
                        "alice's item at 'to'")
            alice.send_message(mto="bob@localhost/laptop", mbody="hello bob", mtype="chat")
            await bob.next_message(body="hello bob")
        finally:
            await close_all(alice, bob)
    run(scenario(), 60)
    assert rows(pgsrv, db, "SELECT count(*) FROM roster WHERE \"user\" = 'alice@localhost'"
                           " AND contact = 'bob@localhost' AND subscription = 'to'") == 1
    # The roster as a new session reads it back (versioned, groups kept).
    with login(srv, "alice", "again") as a:
        res = raw_iq(a, "ro", "<query xmlns='jabber:iq:roster'/>")
        item = res.find("{jabber:iq:roster}query/{jabber:iq:roster}item")
        assert item is not None and item.get("jid") == "bob@localhost", dump(res)
        assert item.get("subscription") == "to" and item.get("name") == "Bob", dump(res)
        assert item.findtext("{jabber:iq:roster}group") == "Friends", dump(res)

    # Offline: stored in PostgreSQL, delivered at login, then deleted.
    send_offline(srv, "carol@localhost", "while-you-were-out")
    wait_until(lambda: offline_count(pgsrv, db, "carol@localhost") == 1, 20, "stored message")
    receive(srv, "carol", {"while-you-were-out"})
    wait_until(lambda: offline_count(pgsrv, db, "carol@localhost") == 0, 20, "delivered, deleted")

    # The archive (XEP-0313): alice's chat with bob, and the offline message.
    with login(srv, "alice", "mam") as a:
        a.send(f"<iq type='set' id='m1'><query xmlns='{NS_MAM}' queryid='q1'/></iq>")
        bodies = []
        while True:
            el = a.next_item(timeout=10)
            if el.tag == IQ and el.get("id") == "m1":
                assert el.get("type") == "result", dump(el)
                assert el.find(f"{{{NS_MAM}}}fin").get("complete") == "true", dump(el)
                break
            res = el.find(f"{{{NS_MAM}}}result")
            if el.tag == MESSAGE and res is not None:
                bodies.append(res.find(f"{{{NS_FWD}}}forwarded/{{{NS_CLIENT}}}message")
                              .findtext(BODY))
        assert bodies == ["hello bob", "while-you-were-out"], bodies


def test_vcard_and_private_storage(request, tmp_path, cert, pgdb):
    pgsrv, db, uri = pgdb
    srv = start(request, tmp_path / "x", cert, uri)
    vcard = "<vCard xmlns='vcard-temp'><FN>Alice &amp; Co</FN><NICKNAME>ali</NICKNAME></vCard>"
    priv = "<query xmlns='jabber:iq:private'><prefs xmlns='x:prefs'><nick>Hamlet</nick></prefs>" \
           "</query>"
    with login(srv, "alice", "w") as a:
        assert raw_iq(a, "v1", vcard, "set").get("type") == "result"
        assert raw_iq(a, "p1", priv, "set").get("type") == "result"
        # Replaced in place (an upsert on PostgreSQL too).
        priv2 = priv.replace("Hamlet", "Ophelia")
        assert raw_iq(a, "p2", priv2, "set").get("type") == "result"
    assert rows(pgsrv, db, "SELECT count(*) FROM kv WHERE \"user\" = 'alice@localhost'") == 2
    with login(srv, "bob", "r") as b:
        res = raw_iq(b, "v2", "<vCard xmlns='vcard-temp'/>", to="alice@localhost")
        assert res.findtext("{vcard-temp}vCard/{vcard-temp}FN") == "Alice & Co", dump(res)
    with login(srv, "alice", "r") as a:
        res = raw_iq(a, "p3", "<query xmlns='jabber:iq:private'><prefs xmlns='x:prefs'/></query>")
        assert res.findtext("{jabber:iq:private}query/{x:prefs}prefs/{x:prefs}nick") == \
            "Ophelia", dump(res)


# ---- durability, several session servers, reconnection ------------------------------


def test_data_survives_a_crash_and_restart(request, tmp_path, cert, pgdb):
    pgsrv, db, uri = pgdb
    srv = start(request, tmp_path / "x", cert, uri, mode="external")
    srv.roster_add("alice", "bob", "both", "Bob")
    send_offline(srv, "carol@localhost", "kept")
    wait_until(lambda: offline_count(pgsrv, db, "carol@localhost") == 1, 20, "stored message")
    srv.crash_and_restart()
    assert "bob@localhost both" in srv.ctl("roster", "list", "alice@localhost").stdout
    receive(srv, "carol", {"kept"})


def test_two_session_servers_share_one_database(request, tmp_path, cert, pgdb):
    pgsrv, db, uri = pgdb
    one = start(request, tmp_path / "one", cert, uri, mode="external")
    two = start(request, tmp_path / "two", cert, uri, mode="external")
    # An account made through one process logs in through the other, both ways.
    one.ctl("user", "add", "erin@localhost", "erin-Secret-5")
    with Raw(two.c2s_port) as e:
        e.login("erin", "erin-Secret-5", "at-two")
        assert e.jid == "erin@localhost/at-two"
    two.ctl("user", "add", "frank@localhost", "frank-Secret-6")
    with Raw(one.c2s_port) as f:
        f.login("frank", "frank-Secret-6", "at-one")
    # The same account made through both: one wins, the other is told it exists.
    r = two.ctl("user", "add", "erin@localhost", "x", check=False)
    assert r.returncode != 0, r
    # At the same moment too: each name is created exactly once, by one of them.
    names = [f"racer{i}@localhost" for i in range(12)]
    with ThreadPoolExecutor(max_workers=4) as ex:
        runs = list(ex.map(lambda a: (a[1], a[0].ctl("user", "add", a[1], "pw-Racer-1",
                                                      check=False).returncode),
                           [(srv, n) for n in names for srv in (one, two)]))
    for n in names:
        assert sum(1 for name, rc in runs if name == n and rc == 0) == 1, (n, runs)
    assert rows(pgsrv, db, "SELECT count(*) FROM users WHERE jid LIKE 'racer%'") == len(names)
    # A message stored by one session server is delivered by the other.
    send_offline(one, "carol@localhost", "across")
    wait_until(lambda: offline_count(pgsrv, db, "carol@localhost") == 1, 20, "stored message")
    receive(two, "carol", {"across"})


def test_postgres_restart_under_a_running_xedge(request, tmp_path, cert, pgdb):
    pgsrv, db, uri = pgdb
    srv = start(request, tmp_path / "x", cert, uri)
    send_offline(srv, "carol@localhost", "before")
    wait_until(lambda: offline_count(pgsrv, db, "carol@localhost") == 1, 20, "stored message")
    pgsrv.restart()          # every connection is cut
    # The store finds its connection dead, reconnects, and the message is stored.
    send_offline(srv, "carol@localhost", "after")
    wait_until(lambda: offline_count(pgsrv, db, "carol@localhost") == 2, 30,
               "message stored after the restart")
    srv.wait_log("database connection lost", timeout=10)
    srv.wait_log("database connection restored", timeout=10)
    assert "127.0.0.1" in srv.log() and db in srv.log()
    receive(srv, "carol", {"before", "after"})
