"""XEP-0313 Message Archive Management and XEP-0359 stanza ids, as slixmpp
(xep_0313, xep_0059) users see them: ids on delivery, paging through the archive
with RSM, filters, errors, the query form, preferences and disco."""
import asyncio
import sqlite3
import time
import xml.etree.ElementTree as ET

import pytest

from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath

from conftest import USERS
from slixclient import Client, close_all, run

NS_MAM = "urn:xmpp:mam:2"
NS_SID = "urn:xmpp:sid:0"
NS_FWD = "urn:xmpp:forward:0"
NS_CLIENT = "jabber:client"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_XDATA = "jabber:x:data"


class MamClient(Client):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.register_plugin("xep_0059")
        self.register_plugin("xep_0313")


async def login(server, user):
    c = MamClient(server.jid(user), USERS[user])
    return await c.login(server.c2s_port)


def stanza_ids(msg):
    return [(e.get("id"), e.get("by")) for e in msg.xml.findall(f"{{{NS_SID}}}stanza-id")]


def page_of(iq, results=None):
    """(rows, fin) of a MAM answer: rows as (archive id, from, body, delay stamp)."""
    rows = []
    for m in iq["mam"]["results"] if results is None else results:
        res = m.xml.find(f"{{{NS_MAM}}}result")
        fwd = res.find(f"{{{NS_FWD}}}forwarded")
        inner = fwd.find(f"{{{NS_CLIENT}}}message")
        delay = fwd.find("{urn:xmpp:delay}delay")
        rows.append((res.get("id"), inner.get("from"), inner.findtext(f"{{{NS_CLIENT}}}body"),
                     delay.get("stamp") if delay is not None else None))
    return rows, iq.xml.find(f"{{{NS_MAM}}}fin")


def fin_set(fin, name):
    return fin.findtext(f"{{{NS_RSM}}}set/{{{NS_RSM}}}{name}")


async def query(c, with_jid=None, **rsm):
    return page_of(await c["xep_0313"].retrieve(with_jid=with_jid, rsm=rsm or None,
                                                  timeout=10))


async def raw_iq(c, xml, itype="set"):
    iq = c.Iq()
    iq["type"] = itype
    iq.append(ET.fromstring(xml))
    return await iq.send(timeout=10)


async def raw_query(c, inner_xml, qid):
    """A query written by hand (slixmpp cannot send an empty RSM <before/>)."""
    got = []

    def on_message(msg):
        res = msg.xml.find(f"{{{NS_MAM}}}result")
        if res is not None and res.get("queryid") == qid:
            got.append(msg)
    c.register_handler(Callback(f"mam-{qid}", StanzaPath("message/mam_result"), on_message))
    try:
        iq = await raw_iq(c, f"<query xmlns='{NS_MAM}' queryid='{qid}'>{inner_xml}</query>")
    finally:
        c.remove_handler(f"mam-{qid}")
    return page_of(iq, got)


WITH_ALICE = (f"<x xmlns='{NS_XDATA}' type='submit'><field var='FORM_TYPE' type='hidden'>"
              f"<value>{NS_MAM}</value></field><field var='with'><value>alice@localhost</value>"
              "</field></x>")


async def error_of(coro):
    try:
        await coro
    except IqError as e:
        return e.iq["error"]["condition"]
    raise AssertionError("the query succeeded; an error was expected")


# Most tests archive everything (session_server.mam_default: always); the default policy,
# roster contacts only, has its own test below.
ALWAYS = {"sm": {"mam_default": "always"}}


@pytest.mark.parametrize("server", [ALWAYS], indirect=True)
def test_mam_archive_paging_filters_and_stanza_ids(server):
    async def scenario():
        alice = bob = carol = None
        try:
            alice, bob, carol = await asyncio.gather(login(server, "alice"),
                                                     login(server, "bob"),
                                                     login(server, "carol"))
            delivered = {}
            for i in range(25):
                alice.send_message(mto="bob@localhost", mbody=f"m{i:02d}", mtype="chat")
                m = await bob.next_message(timeout=10, body=f"m{i:02d}")
                ids = stanza_ids(m)
                # XEP-0359: exactly one id, by the recipient's archive.
                assert len(ids) == 1 and ids[0][1] == "bob@localhost", m
                assert len(ids[0][0]) == 16, ids
                delivered[f"m{i:02d}"] = ids[0][0]
            assert len(set(delivered.values())) == 25
            carol.send_message(mto="bob@localhost", mbody="from carol", mtype="chat")
            await bob.next_message(timeout=10, body="from carol")

            # Paging with max=10 through everything with alice, in order.
            seen, after, pages = [], None, []
            while True:
                rsm = {"max": 10}
                if after:
                    rsm["after"] = after
                rows, fin = await query(bob, with_jid="alice@localhost", **rsm)
                pages.append((len(rows), fin.get("complete")))
                seen += rows
                assert fin_set(fin, "count") == "25", ET.tostring(fin)
                if fin.get("complete") == "true":
                    break
                assert len(pages) < 5, pages
                after = fin_set(fin, "last")
                assert after == rows[-1][0]
            assert pages == [(10, "false"), (10, "false"), (5, "true")], pages
            assert [r[2] for r in seen] == [f"m{i:02d}" for i in range(25)]
            assert [r[0] for r in seen] == [delivered[r[2]] for r in seen]
            assert all(r[1].startswith("alice@localhost/") and r[3] for r in seen), seen[:2]

            # No filter: carol's message too; `with` carol: only hers.
            rows, fin = await query(bob, max=50)
            assert len(rows) == 26 and fin.get("complete") == "true"
            rows, fin = await query(bob, with_jid="carol@localhost")
            assert [r[2] for r in rows] == ["from carol"]
            # A full JID in `with` matches that resource only.
            rows, fin = await query(bob, with_jid=str(alice.boundjid), max=50)
            assert len(rows) == 25 and fin.get("complete") == "true"
            rows, fin = await query(bob, with_jid="alice@localhost/elsewhere")
            assert rows == [] and fin_set(fin, "count") == "0"

            # Empty <before/>: the last page, still oldest first.
            rows, fin = await raw_query(bob, WITH_ALICE + f"<set xmlns='{NS_RSM}'><max>10</max>"
                                        "<before/></set>", "last")
            assert [r[2] for r in rows] == [f"m{i:02d}" for i in range(15, 25)]
            assert fin.get("complete") == "false"
            assert fin_set(fin, "first") == rows[0][0] and fin_set(fin, "last") == rows[-1][0]
            rows, fin = await raw_query(bob, WITH_ALICE + f"<set xmlns='{NS_RSM}'><max>10</max>"
                                        f"<before>{rows[0][0]}</before></set>", "prev")
            assert [r[2] for r in rows] == [f"m{i:02d}" for i in range(5, 15)]
            rows, fin = await raw_query(bob, WITH_ALICE + f"<set xmlns='{NS_RSM}'><max>10</max>"
                                        f"<before>{rows[0][0]}</before></set>", "first")
            assert [r[2] for r in rows] == [f"m{i:02d}" for i in range(5)]
            assert fin.get("complete") == "true"

            # The sender's own archive holds the outgoing copies.
            rows, fin = await query(alice, with_jid="bob@localhost", max=100)
            assert [r[2] for r in rows] == [f"m{i:02d}" for i in range(25)]
            assert fin.get("complete") == "true"
            rows, _ = await query(carol, with_jid="alice@localhost")
            assert rows == []
        finally:
            await close_all(alice, bob, carol)

    run(scenario(), timeout=120)


@pytest.mark.parametrize("server", [ALWAYS], indirect=True)
def test_mam_hints_forged_ids_errors_form_prefs_disco(server):
    async def scenario():
        alice = bob = None
        try:
            alice, bob = await asyncio.gather(login(server, "alice"), login(server, "bob"))
            # no-store, and a stanza-id forged in bob's archive's name.
            alice.send_raw("<message to='bob@localhost' type='chat'><body>secret</body>"
                           "<no-store xmlns='urn:xmpp:hints'/></message>")
            m = await bob.next_message(timeout=10, body="secret")
            assert stanza_ids(m) == []
            alice.send_raw("<message to='bob@localhost' type='chat'><body>forged</body>"
                           f"<stanza-id xmlns='{NS_SID}' id='fake' by='bob@localhost'/>"
                           f"<stanza-id xmlns='{NS_SID}' id='other' by='elsewhere.example'/>"
                           "</message>")
            m = await bob.next_message(timeout=10, body="forged")
            ids = stanza_ids(m)
            assert ("fake", "bob@localhost") not in ids and ("other", "elsewhere.example") in ids
            assert len([i for i in ids if i[1] == "bob@localhost"]) == 1, ids
            rows, _ = await query(bob)
            assert [r[2] for r in rows] == ["forged"]
            assert rows[0][0] == [i for i in ids if i[1] == "bob@localhost"][0][0]

            # Errors: an RSM id not in the archive, a field we do not serve, a bad date.
            assert await error_of(query(bob, max=5, after="nosuchid")) == "item-not-found"
            assert await error_of(raw_iq(bob, f"<query xmlns='{NS_MAM}'><x xmlns='{NS_XDATA}' "
                                              "type='submit'><field var='FORM_TYPE'><value>"
                                              f"{NS_MAM}</value></field><field var='fulltext'>"
                                              "<value>x</value></field></x></query>")) \
                == "feature-not-implemented"
            assert await error_of(raw_iq(bob, f"<query xmlns='{NS_MAM}'><x xmlns='{NS_XDATA}' "
                                              "type='submit'><field var='start'><value>"
                                              "yesterday</value></field></x></query>")) \
                == "bad-request"

            # start/end filters: everything is after 2000 and before 2100.
            r = await raw_iq(bob, f"<query xmlns='{NS_MAM}' queryid='t1'><x xmlns='{NS_XDATA}' "
                                  "type='submit'><field var='start'><value>2000-01-01T00:00:00Z"
                                  "</value></field><field var='end'><value>2099-01-01T00:00:00"
                                  ".5+02:00</value></field></x></query>")
            assert r.xml.find(f"{{{NS_MAM}}}fin").get("complete") == "true"
            r = await raw_iq(bob, f"<query xmlns='{NS_MAM}'><x xmlns='{NS_XDATA}' "
                                  "type='submit'><field var='end'><value>2000-01-01T00:00:00Z"
                                  "</value></field></x></query>")
            assert fin_set(r.xml.find(f"{{{NS_MAM}}}fin"), "count") == "0"

            # The form, the preferences, disco on the account.
            r = await raw_iq(bob, f"<query xmlns='{NS_MAM}'/>", "get")
            fields = {f.get("var") for f in r.xml.iter(f"{{{NS_XDATA}}}field")}
            assert {"FORM_TYPE", "with", "start", "end"} <= fields
            r = await raw_iq(bob, f"<prefs xmlns='{NS_MAM}'/>", "get")
            assert r.xml.find(f"{{{NS_MAM}}}prefs").get("default") == "always"
            # Per-JID rules are not kept; a default that is none of the three is bad.
            assert await error_of(raw_iq(
                bob, f"<prefs xmlns='{NS_MAM}' default='always'><always><jid>x@localhost</jid>"
                     "</always></prefs>")) == "feature-not-implemented"
            assert await error_of(raw_iq(bob, f"<prefs xmlns='{NS_MAM}' default='often'/>")) \
                == "bad-request"
            # default='never': bob's next message is not archived, until 'always' again.
            r = await raw_iq(bob, f"<prefs xmlns='{NS_MAM}' default='never'/>")
            assert r.xml.find(f"{{{NS_MAM}}}prefs").get("default") == "never"
            alice.send_message(mto="bob@localhost", mbody="unarchived", mtype="chat")
            m = await bob.next_message(timeout=10, body="unarchived")
            assert stanza_ids(m) == []
            r = await raw_iq(bob, f"<prefs xmlns='{NS_MAM}' default='always'/>")
            assert r["type"] == "result"
            info = await bob["xep_0030"].get_info(jid="bob@localhost", timeout=10)
            feats = set(info["disco_info"]["features"])
            assert NS_MAM in feats and NS_SID in feats, feats
        finally:
            await close_all(alice, bob)

    run(scenario(), timeout=90)


@pytest.mark.parametrize("server", [{"mode": "external", **ALWAYS}], indirect=True)
def test_mam_retention_zero_turns_archiving_off(server):
    """session_server.mam_retention_days: 0 (xedge-sm) archives nothing new; what is
    stored stays readable."""
    async def exchange(body):
        alice = bob = None
        try:
            alice, bob = await asyncio.gather(login(server, "alice"), login(server, "bob"))
            alice.send_message(mto="bob@localhost", mbody=body, mtype="chat")
            m = await bob.next_message(timeout=10, body=body)
            rows, _ = await query(bob)
            prefs = await raw_iq(bob, f"<prefs xmlns='{NS_MAM}'/>", "get")
            return (stanza_ids(m), [r[2] for r in rows],
                    prefs.xml.find(f"{{{NS_MAM}}}prefs").get("default"))
        finally:
            await close_all(alice, bob)

    ids, bodies, default = run(exchange("kept"), timeout=60)
    assert len(ids) == 1 and bodies == ["kept"] and default == "always"

    links = server.log("xedge").count("session server link up")
    with open(server.sm_config, "a") as f:
        f.write("  mam_retention_days: 0\n")
    assert server.restart_sm() == []
    deadline = time.monotonic() + 20
    while server.log("xedge").count("session server link up") < links + server.opts.workers:
        assert time.monotonic() < deadline, server.log_tails()
        time.sleep(0.1)

    ids, bodies, default = run(exchange("not kept"), timeout=60)
    assert ids == [] and bodies == ["kept"] and default == "never"


@pytest.mark.parametrize("server", [{"mode": "external", **ALWAYS}], indirect=True)
def test_mam_retention_sweep_deletes_old_rows(server):
    """Rows older than session_server.mam_retention_days (30 by default) are deleted by
    the sweep xedge-sm runs at start and then once a minute; younger ones stay."""
    async def bodies(send=None):
        alice = bob = None
        try:
            alice, bob = await asyncio.gather(login(server, "alice"), login(server, "bob"))
            if send:
                alice.send_message(mto="bob@localhost", mbody=send, mtype="chat")
                await bob.next_message(timeout=10, body=send)
            rows, _ = await query(bob)
            return [r[2] for r in rows]
        finally:
            await close_all(alice, bob)

    assert run(bodies("recent"), timeout=60) == ["recent"]
    old = int(time.time()) - 31 * 86400
    db = sqlite3.connect(str(server.database), timeout=10)
    with db:
        db.execute("INSERT INTO archive(user, with_jid, with_full, stanza_id, raw, ts) "
                   "VALUES ('bob@localhost', 'alice@localhost', 'alice@localhost/x', "
                   "'oldoldoldoldold1', ?, ?)",
                   ("<message xmlns='jabber:client' from='alice@localhost/x' "
                    "to='bob@localhost' type='chat'><body>old</body></message>", old))
    db.close()
    # Archive order is arrival order: the row inserted last comes last.
    assert run(bodies(), timeout=60) == ["recent", "old"]

    links = server.log("xedge").count("session server link up")
    assert server.restart_sm() == []
    deadline = time.monotonic() + 20
    while server.log("xedge").count("session server link up") < links + server.opts.workers:
        assert time.monotonic() < deadline, server.log_tails()
        time.sleep(0.1)
    assert run(bodies(), timeout=60) == ["recent"]


def test_mam_default_archives_roster_contacts_only(server):
    """session_server.mam_default: roster (the default): a message from a stranger is not
    archived; once alice and bob are contacts, their messages are."""
    async def exchange(body):
        alice = bob = None
        try:
            alice, bob = await asyncio.gather(login(server, "alice"), login(server, "bob"))
            prefs = await raw_iq(bob, f"<prefs xmlns='{NS_MAM}'/>", "get")
            alice.send_message(mto="bob@localhost", mbody=body, mtype="chat")
            m = await bob.next_message(timeout=10, body=body)
            rows, _ = await query(bob)
            return (stanza_ids(m), [r[2] for r in rows],
                    prefs.xml.find(f"{{{NS_MAM}}}prefs").get("default"))
        finally:
            await close_all(alice, bob)

    ids, bodies, default = run(exchange("from a stranger"), timeout=60)
    assert ids == [] and bodies == [] and default == "roster"
    server.roster_add("alice", "bob")
    server.roster_add("bob", "alice")
    ids, bodies, default = run(exchange("from a contact"), timeout=60)
    assert len(ids) == 1 and bodies == ["from a contact"]
