"""Ad-hoc commands (XEP-0050) on the server's domain and the XEP-0133 administration
commands, as an operator's client and ordinary users see them: the command list through
disco, ping, adding a user who then logs in, changing a password, deleting a user, the
online users, an announcement, and the errors XEP-0050 §4.6 names.  Raw clients, for the
exact stanzas; slixmpp's own xep_0050 plugin once, as a real client would run a command."""
import itertools
import signal
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import USERS, binary, child_env, wait_until
from test_shards import PASSWORD, _cluster, owner
from rawxmpp import NS_CLIENT, NS_SASL, Raw, dump, q, stanza_error
from slixclient import Client, close_all, run

IQ = q(NS_CLIENT, "iq")
MESSAGE = q(NS_CLIENT, "message")
NS_CMD = "http://jabber.org/protocol/commands"
NS_ADMIN = "http://jabber.org/protocol/admin"
NS_DATA = "jabber:x:data"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
COMMAND = q(NS_CMD, "command")
ADMIN_NODES = [NS_ADMIN + "#" + n for n in (
    "add-user", "delete-user", "change-user-password", "get-online-users-list",
    "get-online-users-num", "announce")]
ADMINS_YAML = "admins:\n  - Alice@localhost\n"
# One session server owns every account: the online users and announcements are offered.
ONE_SHARD = pytest.mark.parametrize("server", [{"shards": 1, "extra_edge_yaml": ADMINS_YAML}],
                                    indirect=True)
_ids = itertools.count(1)


def login(server, user, resource="r", password=None, presence=False):
    c = Raw(server.c2s_port)
    c.login(user, password or USERS[user], resource, presence=presence)
    return c


def iq(c, body, itype="get", to="localhost"):
    iq_id = f"a{next(_ids)}"
    c.send(f"<iq type='{itype}' id='{iq_id}' to='{to}'>{body}</iq>")
    return c.wait_for(lambda e: e.tag == IQ and e.get("id") == iq_id, timeout=15)


def command(c, node, action=None, sessionid=None, form=""):
    a = f" action='{action}'" if action else ""
    s = f" sessionid='{sessionid}'" if sessionid else ""
    return iq(c, f"<command xmlns='{NS_CMD}' node='{node}'{a}{s}>{form}</command>", "set")


def submit(fields, form_type=NS_ADMIN, ftype="submit"):
    x = ET.Element(f"{{{NS_DATA}}}x", {"type": ftype})
    if form_type:
        f = ET.SubElement(x, f"{{{NS_DATA}}}field", {"var": "FORM_TYPE", "type": "hidden"})
        ET.SubElement(f, f"{{{NS_DATA}}}value").text = form_type
    for var, vals in fields.items():
        f = ET.SubElement(x, f"{{{NS_DATA}}}field", {"var": var})
        for v in ([vals] if isinstance(vals, str) else vals):
            ET.SubElement(f, f"{{{NS_DATA}}}value").text = v
    return ET.tostring(x, encoding="unicode")


def cmd_of(el):
    assert el.get("type") == "result", dump(el)
    cmd = el.find(COMMAND)
    assert cmd is not None, dump(el)
    return cmd


def fields_of(cmd):
    x = cmd.find(q(NS_DATA, "x"))
    assert x is not None, ET.tostring(cmd)
    return x, {f.get("var"): f for f in x.findall(q(NS_DATA, "field"))}


def values(field):
    return [v.text or "" for v in field.findall(q(NS_DATA, "value"))]


def note_of(cmd):
    n = cmd.find(q(NS_CMD, "note"))
    return (n.get("type"), n.text) if n is not None else None


def assert_error(el, etype, cond, app=None):
    assert el.get("type") == "error", dump(el)
    assert stanza_error(el) == (etype, cond), dump(el)
    if app:
        assert el.find(f"{q(NS_CLIENT, 'error')}/{q(NS_CMD, app)}") is not None, dump(el)


def start(c, node):
    """Step one of a form command: the form (status executing, one action: complete)."""
    cmd = cmd_of(command(c, node))
    assert cmd.get("node") == node and cmd.get("status") == "executing", ET.tostring(cmd)
    actions = cmd.find(q(NS_CMD, "actions"))
    assert actions is not None and actions.get("execute") == "complete", ET.tostring(cmd)
    assert [a.tag for a in actions] == [q(NS_CMD, "complete")], ET.tostring(cmd)
    x, fields = fields_of(cmd)
    assert x.get("type") == "form"
    assert x.findtext(q(NS_DATA, "title")) and x.findtext(q(NS_DATA, "instructions"))
    assert values(fields["FORM_TYPE"]) == [NS_ADMIN]
    assert fields["FORM_TYPE"].get("type") == "hidden"
    return cmd.get("sessionid"), fields


def run_form(c, node, fields, action="complete"):
    sid, _ = start(c, node)
    return sid, command(c, node, action, sid, submit(fields))


def auth_outcome(server, user, password, mech):
    """The SASL outcome for user@localhost with password: 'success' or the failure."""
    c = Raw(server.c2s_port)
    try:
        c.open_stream()
        c.starttls()
        c.open_stream()
        el = c.auth(user, password, mech)
        if el.tag == q(NS_SASL, "success"):
            return "success"
        return el[0].tag.split("}")[1] if len(el) else dump(el)
    finally:
        c.close()


def disco_items(c, node):
    el = iq(c, f"<query xmlns='{NS_DISCO_ITEMS}' node='{node}'/>")
    assert el.get("type") == "result", dump(el)
    query = el.find(q(NS_DISCO_ITEMS, "query"))
    assert query.get("node") == node
    return {i.get("node"): i for i in query.findall(q(NS_DISCO_ITEMS, "item"))}


# ---- discovery -----------------------------------------------------------------------------

@ONE_SHARD
def test_command_list_admin_and_user(server):
    alice, bob = login(server, "alice"), login(server, "bob")
    try:
        # The server announces the feature (XEP-0050 §2.1).
        el = iq(bob, f"<query xmlns='{NS_DISCO_INFO}'/>")
        feats = {f.get("var") for f in el.iter(q(NS_DISCO_INFO, "feature"))}
        assert NS_CMD in feats, dump(el)
        # The list (§2.2): admins see the XEP-0133 commands, everyone ping.
        items = disco_items(alice, NS_CMD)
        assert set(items) == {"ping", *ADMIN_NODES}
        assert all(i.get("jid") == "localhost" and i.get("name") for i in items.values())
        assert items[NS_ADMIN + "#add-user"].get("name") == "Add User"
        assert set(disco_items(bob, NS_CMD)) == {"ping"}
        # Plain disco#items on the domain is not the command list.
        el = iq(bob, f"<query xmlns='{NS_DISCO_ITEMS}'/>")
        assert el.get("type") == "result" and el.find(q(NS_DISCO_ITEMS, "query")).get("node") is None
        # The list's own info, and each command node's (§2.3).
        el = iq(bob, f"<query xmlns='{NS_DISCO_INFO}' node='{NS_CMD}'/>")
        ident = el.find(f"{q(NS_DISCO_INFO, 'query')}/{q(NS_DISCO_INFO, 'identity')}")
        assert (ident.get("category"), ident.get("type")) == ("automation", "command-list")
        for user, node in ((bob, "ping"), (alice, NS_ADMIN + "#announce")):
            el = iq(user, f"<query xmlns='{NS_DISCO_INFO}' node='{node}'/>")
            query = el.find(q(NS_DISCO_INFO, "query"))
            assert query.get("node") == node, dump(el)
            ident = query.find(q(NS_DISCO_INFO, "identity"))
            assert (ident.get("category"), ident.get("type")) == ("automation", "command-node")
            assert {f.get("var") for f in query.findall(q(NS_DISCO_INFO, "feature"))} == \
                {NS_CMD, NS_DATA}
        # Not an admin: an administration command's node is not his to know.
        el = iq(bob, f"<query xmlns='{NS_DISCO_INFO}' node='{NS_ADMIN}#add-user'/>")
        assert_error(el, "auth", "forbidden")
    finally:
        alice.close()
        bob.close()


# ---- ping --------------------------------------------------------------------------------

@ONE_SHARD
def test_ping_for_everyone(server):
    bob = login(server, "bob")
    try:
        cmd = cmd_of(command(bob, "ping", "execute"))
        assert cmd.get("status") == "completed" and cmd.get("node") == "ping"
        assert cmd.get("sessionid")
        assert note_of(cmd) == ("info", "Pong")
        # action omitted: execute (§3.3)
        assert cmd_of(command(bob, "ping")).get("status") == "completed"
    finally:
        bob.close()


def test_ping_through_slixmpp(server):
    """slixmpp's xep_0050 runs the command as a client would, on the default shards."""
    async def body():
        c = Client(server.jid("bob"), USERS["bob"])
        c.register_plugin("xep_0030")
        c.register_plugin("xep_0050")
        await c.login(server.c2s_port)
        try:
            items = await c["xep_0050"].get_commands(server.domain, timeout=10)
            nodes = [i[1] for i in items["disco_items"]["items"]]
            assert nodes == ["ping"]
            res = await c["xep_0050"].send_command(server.domain, "ping", timeout=10)
            assert res["command"]["status"] == "completed"
            assert res["command"]["notes"] == [("info", "Pong")]
        finally:
            await close_all(c)
    run(body())


# ---- accounts ----------------------------------------------------------------------------

@ONE_SHARD
def test_add_user_then_login_change_password_delete(server):
    alice = login(server, "alice")
    try:
        sid, fields = start(alice, NS_ADMIN + "#add-user")
        assert fields["accountjid"].get("type") == "jid-single"
        assert fields["password"].get("type") == "text-private"
        assert fields["accountjid"].find(q(NS_DATA, "required")) is not None
        cmd = cmd_of(command(alice, NS_ADMIN + "#add-user", "complete", sid, submit({
            "accountjid": "Dave@localhost", "password": "dave-Pw-1",
            "password-verify": "dave-Pw-1"})))
        assert cmd.get("status") == "completed" and cmd.get("sessionid") == sid
        assert note_of(cmd)[0] == "info"
        # password-verify is optional (XEP-0133 §4.1): without it, the password as given.
        _, el = run_form(alice, NS_ADMIN + "#add-user", {
            "accountjid": "erin@localhost", "password": "erin-Pw-1"})
        assert cmd_of(el).get("status") == "completed"
        assert auth_outcome(server, "erin", "erin-Pw-1", "SCRAM-SHA-256") == "success"
        # The new account logs in, with every mechanism the edge offers.
        for mech in ("PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"):
            assert auth_outcome(server, "dave", "dave-Pw-1", mech) == "success", mech
        dave = login(server, "dave", password="dave-Pw-1")
        # The same account again: conflict.
        _, el = run_form(alice, NS_ADMIN + "#add-user", {
            "accountjid": "dave@localhost", "password": "x", "password-verify": "x"})
        assert_error(el, "cancel", "conflict")
        # A new password: the old one no longer works, the new one does.
        _, el = run_form(alice, NS_ADMIN + "#change-user-password", {
            "accountjid": "dave@localhost", "password": "dave-Pw-2"})
        assert cmd_of(el).get("status") == "completed"
        assert auth_outcome(server, "dave", "dave-Pw-1", "SCRAM-SHA-256") == "not-authorized"
        assert auth_outcome(server, "dave", "dave-Pw-2", "SCRAM-SHA-1") == "success"
        # No such account.
        _, el = run_form(alice, NS_ADMIN + "#change-user-password", {
            "accountjid": "nobody@localhost", "password": "p"})
        assert_error(el, "cancel", "item-not-found")
        # Deleted: its open session ends, it cannot log in again.
        _, el = run_form(alice, NS_ADMIN + "#delete-user", {"accountjids": ["dave@localhost"]})
        cmd = cmd_of(el)
        assert cmd.get("status") == "completed" and note_of(cmd)[0] == "info", ET.tostring(cmd)
        # As for an account removed in-band (XEP-0077 §3.2): the stream ends.
        assert dave.expect_stream_error(timeout=10) == "not-authorized"
        assert auth_outcome(server, "dave", "dave-Pw-2", "PLAIN") == "not-authorized"
        # Several at once, one unknown: the others go, the note names the one that did not.
        _, el = run_form(alice, NS_ADMIN + "#delete-user",
                         {"accountjids": ["erin@localhost", "ghost@localhost"]})
        cmd = cmd_of(el)
        ntype, text = note_of(cmd)
        assert ntype == "error" and "ghost@localhost (no such account)" in text, text
        assert "erin" not in text.split("Not deleted:")[1]
        assert auth_outcome(server, "erin", "erin-Pw-1", "PLAIN") == "not-authorized"
        # Still a working session for the admin.
        assert alice.ping("p1").get("type") == "result"
    finally:
        alice.close()


# ---- online users, announcements ---------------------------------------------------------

@ONE_SHARD
def test_online_users_and_announce(server):
    alice = login(server, "alice", presence=True)
    bob = login(server, "bob", "phone", presence=True)
    bob2 = login(server, "bob", "laptop", presence=True)
    carol = login(server, "carol", presence=True)
    try:
        cmd = cmd_of(command(alice, NS_ADMIN + "#get-online-users-num"))
        assert cmd.get("status") == "completed"
        x, fields = fields_of(cmd)
        assert x.get("type") == "result"
        assert values(fields["onlineusersnum"]) == ["3"]       # users, not sessions
        # The domain as the client spelled it.
        el = iq(alice, f"<command xmlns='{NS_CMD}' node='{NS_ADMIN}#get-online-users-num'/>",
                "set", to="LocalHost")
        assert values(fields_of(cmd_of(el))[1]["onlineusersnum"]) == ["3"]
        sid, fields = start(alice, NS_ADMIN + "#get-online-users-list")
        assert fields["max_items"].get("type") == "list-single"
        el = command(alice, NS_ADMIN + "#get-online-users-list", "complete", sid,
                     submit({"max_items": "25"}))
        x, fields = fields_of(cmd_of(el))
        assert fields["onlineuserjids"].get("type") == "jid-multi"
        assert sorted(values(fields["onlineuserjids"])) == \
            ["alice@localhost", "bob@localhost", "carol@localhost"]
        # carol leaves: two.
        carol.close()
        carol = None
        wait_until(lambda: values(fields_of(cmd_of(command(
            alice, NS_ADMIN + "#get-online-users-num")))[1]["onlineusersnum"]) == ["2"],
            what="carol counted offline")
        # An announcement reaches every online session, from the domain.
        _, el = run_form(alice, NS_ADMIN + "#announce",
                         {"subject": "Maintenance", "announcement": ["Down at 10:00.", "Sorry & bye"]})
        cmd = cmd_of(el)
        assert cmd.get("status") == "completed" and note_of(cmd)[0] == "info"
        # The admin's own copy came in while it waited for the result.
        assert b"<message type='headline' from='localhost' to='alice@localhost/r'>" in alice.raw
        for c in (bob, bob2):
            m = c.wait_for(lambda e: e.tag == MESSAGE and e.get("from") == "localhost", timeout=10)
            assert m.findtext(q(NS_CLIENT, "subject")) == "Maintenance"
            assert m.findtext(q(NS_CLIENT, "body")) == "Down at 10:00.\nSorry & bye"
            assert m.get("to") == c.jid
    finally:
        for c in (alice, bob, bob2, carol):
            if c:
                c.close()


# ---- who may ----------------------------------------------------------------------------

@ONE_SHARD
def test_every_admin_command_refused_to_a_user(server):
    bob = login(server, "bob")
    try:
        # XEP-0050 §4.6: forbidden, of type cancel.
        for node in ADMIN_NODES:
            assert_error(command(bob, node), "cancel", "forbidden")
        # With a made-up session id and a complete form all the same.
        assert_error(command(bob, NS_ADMIN + "#add-user", "complete", "0123456789abcdef",
                             submit({"accountjid": "mallory@localhost", "password": "p",
                                     "password-verify": "p"})), "cancel", "forbidden")
        assert auth_outcome(server, "mallory", "p", "PLAIN") == "not-authorized"
    finally:
        bob.close()


# ---- errors ----------------------------------------------------------------------------------

@ONE_SHARD
def test_errors(server):
    alice, alice2 = login(server, "alice", "one"), login(server, "alice", "two")
    node = NS_ADMIN + "#add-user"
    try:
        assert_error(command(alice, "no-such-node"), "cancel", "item-not-found")
        assert_error(command(alice, node, "jump"), "modify", "bad-request", "malformed-action")
        assert_error(command(alice, node, "next"), "modify", "bad-request", "bad-action")
        assert_error(command(alice, node, "complete", "feedfeedfeedfeed"), "modify",
                     "bad-request", "bad-sessionid")
        sid, _ = start(alice, node)
        # Another session (the same account) cannot continue it.
        assert_error(command(alice2, node, "complete", sid, submit({})), "modify",
                     "bad-request", "bad-sessionid")
        # Nor can it be continued as another command.
        assert_error(command(alice, NS_ADMIN + "#delete-user", "complete", sid,
                             submit({"accountjids": "bob@localhost"})),
                     "modify", "bad-request", "bad-sessionid")
        assert_error(command(alice, node, "next", sid), "modify", "bad-request", "bad-action")
        assert_error(command(alice, node, "prev", sid), "modify", "bad-request", "bad-action")
        bad_forms = [
            "",                                                        # no form
            submit({"accountjid": "f@localhost", "password": "p", "password-verify": "p"},
                   ftype="form"),                                      # not a submission
            submit({"accountjid": "f@localhost", "password": "p", "password-verify": "q"}),
            submit({"accountjid": "f@localhost", "password-verify": "p"}),  # no password
            submit({"accountjid": "f@localhost", "password": "", "password-verify": ""}),
            submit({"password": "p", "password-verify": "p"}),         # no account
            submit({"accountjid": "f@elsewhere.example", "password": "p",
                    "password-verify": "p"}),                          # not our domain
            submit({"accountjid": "@@", "password": "p", "password-verify": "p"}),
            submit({"accountjid": "f@localhost", "password": "p", "password-verify": "p"},
                   form_type="urn:example:other"),                     # another FORM_TYPE
            f"<x xmlns='{NS_DATA}' type='submit'><field var='a'/><field var='a'/></x>",
            f"<x xmlns='{NS_DATA}' type='submit'><field var='accountjid' type='jid-single'>"
            "<value>a@localhost</value><value>b@localhost</value></field></x>",
            # untyped, but the form asked for one JID
            submit({"accountjid": ["a@localhost", "b@localhost"], "password": "p",
                    "password-verify": "p"}),
            # typed otherwise than the form asked
            f"<x xmlns='{NS_DATA}' type='submit'><field var='accountjid' type='jid-multi'>"
            "<value>a@localhost</value></field><field var='password'><value>p</value></field>"
            "<field var='password-verify'><value>p</value></field></x>",
        ]
        for form in bad_forms:
            el = command(alice, node, "complete", sid, form)
            assert_error(el, "modify", "bad-request", "bad-payload")
        assert auth_outcome(server, "f", "p", "PLAIN") == "not-authorized"
        # The session is still good after those: execute is the stage's default action.
        el = command(alice, node, "execute", sid, submit({
            "accountjid": "frank@localhost", "password": "p", "password-verify": "p"}))
        assert cmd_of(el).get("status") == "completed"
        # Completed: it is over (§4.6 session-expired).
        assert_error(command(alice, node, "complete", sid, submit({})), "cancel",
                     "not-allowed", "session-expired")
        # Canceled: over as well.
        sid, _ = start(alice, NS_ADMIN + "#announce")
        cmd = cmd_of(command(alice, NS_ADMIN + "#announce", "cancel", sid))
        assert cmd.get("status") == "canceled" and cmd.get("sessionid") == sid
        assert_error(command(alice, NS_ADMIN + "#announce", "complete", sid,
                             submit({"announcement": "x"})), "cancel", "not-allowed",
                     "session-expired")
        # Four commands in progress per session: a fifth ends the oldest.
        sids = [start(alice2, NS_ADMIN + "#delete-user")[0] for _ in range(5)]
        assert len(set(sids)) == 5
        assert_error(command(alice2, NS_ADMIN + "#delete-user", "complete", sids[0],
                             submit({"accountjids": "carol@localhost"})), "cancel",
                     "not-allowed", "session-expired")
        for sid in sids[1:]:
            cmd = cmd_of(command(alice2, NS_ADMIN + "#delete-user", "cancel", sid))
            assert cmd.get("status") == "canceled"
        assert auth_outcome(server, "carol", USERS["carol"], "PLAIN") == "success"
        # A get is not how commands run.
        el = iq(alice, f"<command xmlns='{NS_CMD}' node='ping'/>", "get")
        assert el.get("type") == "error", dump(el)
    finally:
        alice.close()
        alice2.close()


# ---- shards ---------------------------------------------------------------------------------

def online_num(c):
    cmd = cmd_of(command(c, NS_ADMIN + "#get-online-users-num"))
    assert cmd.get("status") == "completed", ET.tostring(cmd)
    return values(fields_of(cmd)[1]["onlineusersnum"]), note_of(cmd)


def online_list(c, max_items="none"):
    _, el = run_form(c, NS_ADMIN + "#get-online-users-list", {"max_items": max_items})
    cmd = cmd_of(el)
    assert cmd.get("status") == "completed", ET.tostring(cmd)
    return values(fields_of(cmd)[1]["onlineuserjids"]), note_of(cmd)


@pytest.mark.parametrize("server", [{"shards": 2, "extra_edge_yaml": ADMINS_YAML}], indirect=True)
def test_two_shards(server):
    """Every command is offered with several shards.  The online users' number and list
    count the users of every shard (alice and bob hash to one, carol to the other:
    test_shards.py), an announcement reaches the sessions of both; the account commands
    work for the accounts of the admin's shard and, adding, for any."""
    assert server.shards() == 2
    assert owner("alice@localhost", ["0", "1"]) == owner("bob@localhost", ["0", "1"]) != \
        owner("carol@localhost", ["0", "1"])
    alice = login(server, "alice", presence=True)
    bob = login(server, "bob", presence=True)
    carol = login(server, "carol", "phone", presence=True)
    carol2 = login(server, "carol", "laptop", presence=True)
    try:
        items = disco_items(alice, NS_CMD)
        assert set(items) == {"ping", *ADMIN_NODES}
        assert online_num(alice) == (["3"], None)          # carol counted once, from her shard
        assert online_list(alice) == (["alice@localhost", "bob@localhost", "carol@localhost"],
                                      None)
        assert online_list(alice, "25")[0] == ["alice@localhost", "bob@localhost",
                                              "carol@localhost"]
        # The shards' question is theirs alone: from a user it gets no shard's answer, and
        # to a user of the other shard it is an ordinary iq, delivered.
        ask = (f"<gather xmlns='urn:xedge:gather:0' op='online-list' domain='localhost' "
               f"reply='xedge-shard-0@localhost'/>")
        el = iq(alice, ask)
        assert el.get("type") == "error", dump(el)
        alice.send(f"<iq type='get' id='g-to-carol' to='{carol.jid}'>{ask}</iq>")
        got = carol.wait_for(lambda e: e.tag == IQ and e.get("id") == "g-to-carol", timeout=10)
        assert got.get("from") == alice.jid, dump(got)
        # The other shard's user leaves: the count follows.
        carol.close()
        carol2.close()
        carol = carol2 = None
        wait_until(lambda: online_num(alice)[0] == ["2"], what="carol counted offline")
        carol = login(server, "carol", "phone", presence=True)
        wait_until(lambda: online_num(alice)[0] == ["3"], what="carol counted online again")
        # An announcement reaches both shards' sessions.
        _, el = run_form(alice, NS_ADMIN + "#announce",
                         {"subject": "Both shards", "announcement": ["Hello", "everyone"]})
        cmd = cmd_of(el)
        assert cmd.get("status") == "completed"
        assert note_of(cmd) == ("info", "The announcement was sent to 3 session(s).")
        for c in (bob, carol):
            m = c.wait_for(lambda e: e.tag == MESSAGE and e.get("from") == "localhost", timeout=10)
            assert m.get("type") == "headline" and m.get("to") == c.jid
            assert m.findtext(q(NS_CLIENT, "subject")) == "Both shards"
            assert m.findtext(q(NS_CLIENT, "body")) == "Hello\neveryone"
        # Accounts of either shard are added (one database) and log in on their own shard.
        for user in ("u1", "u2", "u3", "u4"):
            _, el = run_form(alice, NS_ADMIN + "#add-user", {
                "accountjid": f"{user}@localhost", "password": f"{user}-pw",
                "password-verify": f"{user}-pw"})
            assert cmd_of(el).get("status") == "completed"
            login(server, user, password=f"{user}-pw").close()
        # Deleting: done for the admin's shard's accounts, refused with a note for the others.
        _, el = run_form(alice, NS_ADMIN + "#delete-user",
                         {"accountjids": [f"{u}@localhost" for u in ("u1", "u2", "u3", "u4")]})
        cmd = cmd_of(el)
        kept = [u for u in ("u1", "u2", "u3", "u4")
                if auth_outcome(server, u, f"{u}-pw", "PLAIN") == "success"]
        gone = [u for u in ("u1", "u2", "u3", "u4") if u not in kept]
        note = note_of(cmd)
        assert kept and gone, (kept, gone)   # the four hash to both shards (names "0", "1")
        for u in kept:
            assert note and note[0] == "error" and f"{u}@localhost (another shard owns it" in note[1]
        for u in gone:
            assert f"{u}@localhost" not in (note[1] if note else "")
    finally:
        for c in (alice, bob, carol, carol2):
            if c:
                c.close()


def test_two_processes_and_a_silent_shard(tmp_path, sockdir, cert):
    """Two xedge-sm processes (the questions between shards go through the edge): the
    admin on one sees the other's user in the number and the list, and the announcement
    reaches it.  A shard that does not answer (stopped) does not hang the command: after
    the deadline it completes with what it has and a note saying how many did not answer."""
    for c in _cluster(tmp_path, sockdir, cert,
                      sm_extra=lambda users: f"admins:\n  - {users[0]}@localhost\n"):
        u0, u1 = c["users"]
        sm1 = c["procs"][1]
        a = Raw(c["c2s"][0])
        a.login(u0, PASSWORD, "a", presence=True)
        b = Raw(c["c2s"][0])
        b.login(u1, PASSWORD, "b", presence=True)
        try:
            assert online_num(a) == (["2"], None)
            assert online_list(a) == (sorted([f"{u0}@localhost", f"{u1}@localhost"]), None)
            _, el = run_form(a, NS_ADMIN + "#announce", {"announcement": "across processes"})
            assert note_of(cmd_of(el)) == ("info", "The announcement was sent to 2 session(s).")
            m = b.wait_for(lambda e: e.tag == MESSAGE and e.get("from") == "localhost", timeout=10)
            assert m.findtext(q(NS_CLIENT, "body")) == "across processes"
            # The other shard stops answering: the command still completes, in about 2 s.
            sm1.p.send_signal(signal.SIGSTOP)
            try:
                t0 = time.monotonic()
                num, note = online_num(a)
                took = time.monotonic() - t0
                assert num == ["1"] and note and note[0] == "warn", (num, note)
                assert note[1].startswith("1 shard(s) of this service did not answer within 2 s")
                assert 1.5 <= took < 10, took
            finally:
                sm1.p.send_signal(signal.SIGCONT)
            # Its late answer is dropped; answers come in time again.
            wait_until(lambda: online_num(a) == (["2"], None), what="both shards answer again")
            assert sm1.alive()
        finally:
            a.close()
            b.close()


@pytest.mark.parametrize("server", [{"mode": "external", "extra_sm_yaml": ADMINS_YAML}],
                         indirect=True)
def test_xedge_sm_reads_admins(server):
    """xedge-sm takes `admins:` from its own file (the edge's is not asked)."""
    alice, bob = login(server, "alice", presence=True), login(server, "bob", presence=True)
    try:
        assert set(disco_items(alice, NS_CMD)) == {"ping", *ADMIN_NODES}
        assert_error(command(bob, NS_ADMIN + "#get-online-users-num"), "cancel", "forbidden")
        x, fields = fields_of(cmd_of(command(alice, NS_ADMIN + "#get-online-users-num")))
        assert values(fields["onlineusersnum"]) == ["2"]
        _, el = run_form(alice, NS_ADMIN + "#add-user", {
            "accountjid": "dave@localhost", "password": "dave-Pw-1",
            "password-verify": "dave-Pw-1"})
        assert cmd_of(el).get("status") == "completed"
        login(server, "dave", password="dave-Pw-1").close()
    finally:
        alice.close()
        bob.close()


# ---- the setting ----------------------------------------------------------------------------

@pytest.mark.parametrize("prog", ["xedge", "xedge-sm"])
def test_check_config_names_the_bad_admin(tmp_path, prog):
    """Both programs read `admins:`; a malformed JID is refused with its line."""
    cfg = tmp_path / "xedge.yaml"
    base = ("domains:\n  - name: localhost\n"
            "session_server:\n  listen: 127.0.0.1:5999\n  database: x.db\n")
    cfg.write_text(base + "admins:\n  - boss@localhost\n  - ops@localhost/phone\n")
    r = subprocess.run([str(binary(prog)), "--check-config", str(cfg)], capture_output=True,
                       text=True, timeout=30, env=child_env())
    assert r.returncode == 1, r
    assert f"{cfg}:8: admins: 'ops@localhost/phone' is not a bare JID (user@domain)" in r.stderr
    if prog == "xedge":
        return      # a valid file needs its listeners and certificates: test_check_config's
    cfg.write_text(base + "admins:\n  - boss@localhost\n")
    r = subprocess.run([str(binary(prog)), "--check-config", str(cfg)], capture_output=True,
                       text=True, timeout=30, env=child_env())
    assert r.returncode == 0, r.stderr
