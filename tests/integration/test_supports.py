"""README's "What xedge supports" table is true: every feature it lists is advertised by a
running server (disco#info of the domain and of an account, stream features), and every
feature the server advertises is in the table."""
import re
from pathlib import Path

import pytest

from conftest import USERS
from rawxmpp import NS_BIND, NS_CLIENT, NS_SASL, NS_TLS, Raw, dump, q

NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
README = Path(__file__).resolve().parents[2] / "README.md"
SWITCHES_ON = {"extra_edge_yaml": "register:\n  enabled: true\nlegacy_auth:\n  enabled: true\n"}


def table():
    """{'server': set, 'account': set, 'stream': set} of README's Advertised column."""
    text = README.read_text()
    m = re.search(r"<!-- supports:begin -->\n(.*?)<!-- supports:end -->", text, re.S)
    assert m, "README.md has no supports table between its markers"
    found = {"server": set(), "account": set(), "stream": set()}
    rows = [l for l in m.group(1).splitlines() if l.startswith("| ") and "---" not in l][1:]
    assert len(rows) >= 10, rows
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 4, f"a supports row needs 4 cells: {row}"
        for where, var in re.findall(r"(server|account|stream) `([^`]+)`", cells[2]):
            found[where].add(var)
    return found


def disco(c, to, iq_id):
    c.send(f"<iq type='get' id='{iq_id}' to='{to}'><query xmlns='{NS_DISCO_INFO}'/></iq>")
    r = c.wait_for(lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("id") == iq_id)
    assert r.get("type") == "result", dump(r)
    return {f.get("var") for f in r.iter(q(NS_DISCO_INFO, "feature"))}


def namespaces(features):
    return {child.tag[1:].split("}")[0] for child in features}


@pytest.mark.parametrize("server", [SWITCHES_ON], indirect=True)
def test_readme_table_matches_what_the_server_advertises(server):
    want = table()
    stream = set()
    with Raw(server.c2s_port) as c:
        stream |= namespaces(c.open_stream())                  # before TLS
        c.starttls()
        stream |= namespaces(c.open_stream())                  # before authentication
        assert c.auth("alice", USERS["alice"]).tag == q(NS_SASL, "success")
        stream |= namespaces(c.open_stream())                  # after authentication
        c.bind("supports")
        got = {"server": disco(c, "localhost", "d1"),
               "account": disco(c, "alice@localhost", "d2"),
               "stream": stream}
        # Another account's bare JID answers like one's own (XEP-0030 on accounts).
        assert disco(c, "bob@localhost", "d3") == got["account"]
    for where in ("server", "account", "stream"):
        assert want[where] - got[where] == set(), \
            f"README lists {where} features the server does not advertise"
        assert got[where] - want[where] == set(), \
            f"the server advertises {where} features README does not list"
    assert {NS_TLS, NS_SASL, NS_BIND} <= got["stream"]
