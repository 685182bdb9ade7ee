"""The Grafana dashboard (deploy/grafana/xedge-dashboard.json) shows only metrics that
xedge and xedge-sm export.

An edge and an external xedge-sm, each with an admin listener, are scraped after the
traffic that makes the series that appear only once they count something (a login, a
failed authentication, a stream error).  Every xedge_* name in the dashboard's queries
(panel targets and template variables; _bucket/_sum/_count cut to the histogram's name)
must be a family one of them exports, with at least one sample.
"""
import json
import re
import urllib.request

import pytest

from conftest import REPO, USERS, free_port
from rawxmpp import Raw, header

DASHBOARD = REPO / "deploy" / "grafana" / "xedge-dashboard.json"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+\S+", re.M)
NAME = re.compile(r"\bxedge_[a-z0-9_]+")
EDGE_ADMIN = free_port()
SM_ADMIN = free_port()


def family(name):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def exported(port):
    """The metric families with at least one sample on 127.0.0.1:port/metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        assert r.status == 200
        text = r.read().decode()
    return {family(m.group(1)) for m in SAMPLE.finditer(text)}


def queries(node):
    """Every query string in the dashboard: targets' expr and variables' query/definition."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("expr", "definition") and isinstance(v, str):
                yield v
            elif k == "query" and isinstance(v, str):
                yield v
            else:
                yield from queries(v)
    elif isinstance(node, list):
        for v in node:
            yield from queries(v)


def test_dashboard_is_grafana_json():
    d = json.loads(DASHBOARD.read_text())
    assert d["schemaVersion"] >= 36
    assert [i["name"] for i in d["__inputs"]] == ["DS_PROMETHEUS"]
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for p in d["panels"]:
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]
        assert p["targets"] and all(t["expr"].strip() for t in p["targets"]), p["title"]


@pytest.mark.parametrize("server", [{
    "mode": "external",
    "extra_edge_yaml": f"admin:\n  address: 127.0.0.1:{EDGE_ADMIN}\n",
    "sm_env": {"XEDGE_ADMIN_ADDRESS": f"127.0.0.1:{SM_ADMIN}"},
}], indirect=True)
def test_dashboard_metrics_are_exported(server):
    # A login, a failed authentication and a stream error: the series that appear
    # only once they count something.
    with Raw(server.c2s_port) as c:
        c.login("alice", USERS["alice"])
        c.end_stream()
    with Raw(server.c2s_port) as c:
        c.open_stream()
        c.starttls()
        c.open_stream()
        el = c.auth_plain("alice", "not-her-password")
        assert el.tag.endswith("}failure"), el.tag
    with Raw(server.c2s_port) as c:
        c.send(header("no-such-domain.example"))
        assert c.expect_stream_error() == "host-unknown"

    have = exported(EDGE_ADMIN) | exported(SM_ADMIN)
    used = set()
    for q in queries(json.loads(DASHBOARD.read_text())):
        used |= {family(n) for n in NAME.findall(q)}
    assert len(used) >= 30, sorted(used)     # the parse found the dashboard's queries
    missing = sorted(used - have)
    assert not missing, (f"the dashboard queries metrics nobody exports: {missing}\n"
                         f"exported: {sorted(have)}\n{server.log_tails()}")
