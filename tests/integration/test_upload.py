"""XEP-0363 HTTP file upload (`services.upload`): the slot from the edge over XMPP, the PUT
and GET on the wss listener, as clients see them.  Discovery through the server's
disco#items and the service's disco#info (max-file-size form); a slot, its PUT (201) and
GET (bytes, Content-Type, Content-Length, ranges 206/416, HEAD); every refusal a client can
meet (file too large with max-file-size, bad requests, a tampered or expired URL, a
Content-Length or Content-Type other than the slot's, a used slot, the quota with its retry
stamp); a broken upload (abrupt close, kill -9) leaves nothing a GET can see; expired files
are removed; slixmpp's xep_0363 plugin uploads through aiohttp like a real client."""
import hashlib
import hmac
import http.client as httpc
import os
import socket
import ssl
import time
import urllib.parse

import pytest

from conftest import USERS, wait_until
from rawxmpp import NS_CLIENT, Raw, dump, q
from slixclient import Client, run

UP = "upload.localhost"
NS_UP = "urn:xmpp:http:upload:0"
NS_INFO = "http://jabber.org/protocol/disco#info"
NS_ITEMS = "http://jabber.org/protocol/disco#items"
IQ = q(NS_CLIENT, "iq")


def services(**kw):
    keys = {"domain": UP, "dir": "files", **kw}
    return "services:\n  upload:\n" + "".join(f"    {k}: {v}\n" for k, v in keys.items())


def with_upload(admin=False, **kw):
    return pytest.mark.parametrize("server", [{"ws": True, "admin": admin,
                                               "extra_edge_yaml": services(**kw)}], indirect=True)


def login(server, user="alice", resource="up"):
    c = Raw(server.c2s_port)
    c.login(user, USERS[user], resource)
    return c


def iq(c, body, iq_id, to=UP, typ="get"):
    c.send(f"<iq type='{typ}' to='{to}' id='{iq_id}'>{body}</iq>")
    return c.wait_for(lambda e: e.tag == IQ and e.get("id") == iq_id, 10.0)


def slot(c, iq_id, name="photo.jpg", size=10, ctype="image/jpeg"):
    attrs = f" filename='{name}'" + (f" size='{size}'" if size is not None else "")
    attrs += f" content-type='{ctype}'" if ctype else ""
    return iq(c, f"<request xmlns='{NS_UP}'{attrs}/>", iq_id)


def urls(r):
    assert r.get("type") == "result", dump(r)
    s = r.find(f"{{{NS_UP}}}slot")
    return s.find(f"{{{NS_UP}}}put").get("url"), s.find(f"{{{NS_UP}}}get").get("url")


def error(r):
    assert r.get("type") == "error", dump(r)
    e = r.find(f"{{{NS_CLIENT}}}error")
    return e.get("type"), e[0].tag.split("}")[1], e


def http(method, url, body=b"", headers=None, timeout=15.0):
    """One request over TLS to the edge; (status, headers, body)."""
    u = urllib.parse.urlsplit(url)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = httpc.HTTPSConnection("127.0.0.1", u.port, context=ctx, timeout=timeout)
    path = u.path + ("?" + u.query if u.query else "")
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def files_on_disk(server):
    root = server.dir / "files"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()
                  and p.name != ".secret")


@with_upload(admin=True, max_size=1000)
def test_discover_slot_put_get_ranges(server):
    a = login(server)
    try:
        # Discovery (§3): the domain lists the service; it says what it is and its limit.
        r = iq(a, f"<query xmlns='{NS_ITEMS}'/>", "d0", to="localhost")
        assert UP in [i.get("jid") for i in r.iter(f"{{{NS_ITEMS}}}item")], dump(r)
        r = iq(a, f"<query xmlns='{NS_INFO}'/>", "d1")
        ident = r.find(f"{{{NS_INFO}}}query/{{{NS_INFO}}}identity")
        assert (ident.get("category"), ident.get("type")) == ("store", "file"), dump(r)
        assert NS_UP in {f.get("var") for f in r.iter(f"{{{NS_INFO}}}feature")}
        fields = {f.get("var"): f.find("{jabber:x:data}value").text
                  for f in r.iter("{jabber:x:data}field")}
        assert fields == {"FORM_TYPE": NS_UP, "max-file-size": "1000"}, dump(r)

        # A slot (§4): PUT and GET on the wss listener, the name kept.
        body = b"0123456789"
        put, get = urls(slot(a, "s1", name="my photo é.jpg"))
        assert put.startswith(f"https://localhost:{server.wss_port}/upload/"), put
        assert urllib.parse.unquote(urllib.parse.urlsplit(get).path).endswith("/my photo é.jpg")
        assert http("GET", get)[0] == 404            # nothing before the PUT
        st, _, _ = http("PUT", put, body, {"Content-Type": "image/jpeg"})
        assert st == 201
        st, h, data = http("GET", get)
        assert (st, data) == (200, body)
        assert h["content-type"] == "image/jpeg" and h["content-length"] == "10"
        assert h["accept-ranges"] == "bytes" and h["x-content-type-options"] == "nosniff"
        st, h, data = http("GET", get, headers={"Range": "bytes=2-5"})
        assert (st, data, h["content-range"]) == (206, b"2345", "bytes 2-5/10")
        st, h, data = http("GET", get, headers={"Range": "bytes=-3"})
        assert (st, data, h["content-range"]) == (206, b"789", "bytes 7-9/10")
        st, h, data = http("GET", get, headers={"Range": "bytes=7-"})
        assert (st, data) == (206, b"789")
        st, h, _ = http("GET", get, headers={"Range": "bytes=10-"})
        assert (st, h["content-range"]) == (416, "bytes */10")
        st, h, data = http("HEAD", get)
        assert (st, h["content-length"], data) == (200, "10", b"")
        # The slot is used: a second PUT is refused, the file stays.
        st, _, _ = http("PUT", put, b"abcdefghij", {"Content-Type": "image/jpeg"})
        assert st == 409
        assert http("GET", get)[2] == body
        # A browser's preflight before a PUT from a web client.
        st, h, _ = http("OPTIONS", put)
        assert st == 204 and "PUT" in h["access-control-allow-methods"]
        # Other paths on the listener are still WebSocket's.
        assert http("GET", f"https://localhost:{server.wss_port}/upload/zz")[0] == 404
        assert http("GET", f"https://localhost:{server.wss_port}/elsewhere")[0] in (400, 404, 426)
        assert [f.rsplit("/", 1)[1] for f in files_on_disk(server)] == [".type", "my photo é.jpg"]
        # What an operator sees (/metrics).
        assert server.metric("xedge_upload_slots_total", result="given") == 1
        assert server.metric("xedge_upload_files_total") == 1
        assert server.metric("xedge_upload_bytes_total", direction="in") == 10
        assert server.metric("xedge_upload_downloads_total") == 6   # GETs: whole, 3 ranges, after the 409; a HEAD
        assert server.metric("xedge_upload_refused_total") >= 4
    finally:
        a.close()


@with_upload(max_size=1000)
def test_refusals(server):
    a = login(server)
    try:
        # §5: too large, with the limit.
        typ, cond, e = error(slot(a, "e1", size=1001))
        assert (typ, cond) == ("modify", "not-acceptable")
        assert e.find(f"{{{NS_UP}}}file-too-large/{{{NS_UP}}}max-file-size").text == "1000"
        # Malformed requests.
        assert error(slot(a, "e2", size=None))[:2] == ("modify", "bad-request")
        assert error(slot(a, "e3", size="-5"))[:2] == ("modify", "bad-request")
        assert error(slot(a, "e4", name=""))[:2] == ("modify", "bad-request")
        assert error(iq(a, f"<request xmlns='{NS_UP}' filename='a' size='1'/>", "e5",
                        typ="set"))[:2] == ("modify", "bad-request")
        # A name that would leave its directory is made safe, not refused.
        put, get = urls(slot(a, "s1", name="../../etc/passwd", ctype=None))
        assert get.endswith("/_._.._etc_passwd"), get

        put, get = urls(slot(a, "s2", size=4, ctype="text/plain"))
        ok = {"Content-Type": "text/plain"}
        assert http("PUT", put, b"12345", ok)[0] == 413       # more than the slot's size
        assert http("PUT", put, b"123", ok)[0] == 400         # less
        assert http("PUT", put, b"1234", {"Content-Type": "text/html"})[0] == 403
        assert http("PUT", put.replace("&h=", "&h=0"), b"1234", ok)[0] == 403
        assert http("PUT", put.replace("z=4", "z=5"), b"12345", ok)[0] == 403
        assert http("PUT", get, b"1234", ok)[0] == 403        # the GET URL is not signed
        assert http("DELETE", get)[0] == 405
        assert http("GET", get)[0] == 404                    # none of those stored anything
        # An expired URL, signed with the service key as the edge would.
        key = (server.dir / "files" / ".secret").read_bytes()
        u = urllib.parse.urlsplit(put)
        rel = urllib.parse.unquote(u.path[len("/upload/"):])
        past = int(time.time()) - 1
        mac = hmac.new(key, f"PUT\n{rel}\n4\n{past}\ntext/plain".encode(), hashlib.sha256).hexdigest()
        st, _, data = http("PUT", f"{u.scheme}://{u.netloc}{u.path}?z=4&e={past}&c=1&h={mac}", b"1234", ok)
        assert st == 403 and b"expired" in data
        assert http("PUT", put, b"1234", ok)[0] == 201       # the slot itself still works
    finally:
        a.close()


@with_upload(max_size=1000, quota=100)
def test_quota(server):
    a, b = login(server, "alice"), login(server, "bob")
    try:
        put, _ = urls(slot(a, "q1", size=60, ctype=None))
        assert http("PUT", put, b"x" * 60)[0] == 201
        typ, cond, e = error(slot(a, "q2", size=60, ctype=None))
        assert (typ, cond) == ("wait", "resource-constraint")
        stamp = e.find(f"{{{NS_UP}}}retry").get("stamp")
        assert time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"), stamp
        urls(slot(a, "q3", size=40, ctype=None))            # what is left still fits
        urls(slot(b, "q4", size=60, ctype=None))            # the quota is per user
        # Slots given before the quota filled are checked again at the PUT.
        put1, _ = urls(slot(b, "q5", size=60, ctype=None))
        put2, _ = urls(slot(b, "q6", size=60, ctype=None))
        assert http("PUT", put1, b"y" * 60)[0] == 201
        assert http("PUT", put2, b"z" * 60)[0] == 413
    finally:
        a.close()
        b.close()


def put_partial(url, total, sent):
    """Start a PUT of `total` bytes, send `sent` of them, return the socket (still open)."""
    u = urllib.parse.urlsplit(url)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", u.port), timeout=10))
    s.sendall(f"PUT {u.path}?{u.query} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {total}\r\n"
              f"\r\n".encode() + b"p" * sent)
    return s


@with_upload(max_size=10_000_000)
def test_broken_uploads_leave_nothing(server):
    a = login(server)
    try:
        put, get = urls(slot(a, "b1", size=3_000_000, ctype=None))
        s = put_partial(put, 3_000_000, 1_000_000)
        wait_until(lambda: any(".part-" in f for f in files_on_disk(server)), what="the upload under way")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()                                           # abrupt: RST
        wait_until(lambda: not any(".part-" in f for f in files_on_disk(server)),
                   what="the half-written file removed")
        assert http("GET", get)[0] == 404
        # The same slot can be used again after a failed attempt.
        assert http("PUT", put, b"q" * 3_000_000)[0] == 201
        assert http("GET", get, headers={"Range": "bytes=2999999-"})[2] == b"q"

        # kill -9 in the middle of an upload: after the restart nothing is served.
        put, get = urls(slot(a, "b2", size=2_000_000, ctype=None))
        s = put_partial(put, 2_000_000, 500_000)
        wait_until(lambda: any(".part-" in f for f in files_on_disk(server)), what="the upload under way")
    finally:
        a.close()
    server.crash_and_restart()
    s.close()
    assert http("GET", get)[0] == 404
    assert http("GET", get.replace("/upload/", "/upload/../"))[0] == 404


@with_upload(expire="2s")
def test_expired_files_go(server):
    a = login(server)
    try:
        put, get = urls(slot(a, "x1", size=5, ctype="text/plain"))
        assert http("PUT", put, b"hello", {"Content-Type": "text/plain"})[0] == 201
        wait_until(lambda: http("GET", get)[0] == 404, timeout=30, what="the file to expire")
        wait_until(lambda: files_on_disk(server) == [], timeout=30, what="the sweep to remove it")
    finally:
        a.close()


@with_upload()
def test_slixmpp_upload(server, tmp_path, monkeypatch):
    """slixmpp's xep_0363 plugin: discovery, slot and PUT through aiohttp, verifying TLS."""
    import aiohttp.connector
    monkeypatch.setenv("SSL_CERT_FILE", str(server.cert))   # the test certificate is the trust
    aiohttp.connector.TCPConnector._make_ssl_context.cache_clear()
    src = tmp_path / "notes.txt"
    src.write_bytes(os.urandom(300_000))

    async def go():
        c = Client("alice@localhost/slix", USERS["alice"])
        c.register_plugin("xep_0363")
        await c.login(server.c2s_port)
        try:
            # slixmpp 1.8.3's own discovery (get_info_from_domain) breaks on Python 3.11
            # (asyncio.wait given coroutines): the same disco#info is asked here instead.
            info = await c.plugin["xep_0030"].get_info(jid=UP, timeout=10)
            form = info["disco_info"].iterables[0]["values"]
            assert form["FORM_TYPE"] == [NS_UP], form
            c.plugin["xep_0363"].upload_service = UP
            c.plugin["xep_0363"].max_file_size = int(form["max-file-size"])
            return await c.plugin["xep_0363"].upload_file(src, timeout=20)
        finally:
            c.disconnect()

    url = run(go(), timeout=60)
    aiohttp.connector.TCPConnector._make_ssl_context.cache_clear()
    st, h, data = http("GET", url)
    assert (st, data, h["content-type"]) == (200, src.read_bytes(), "text/plain")


@pytest.mark.parametrize("server", [{
    "mode": "external", "ws": True, "extra_edge_yaml": services(max_size=1000),
    "extra_sm_yaml": f"services:\n  upload:\n    domain: {UP}\n    max_size: 1000\n"}], indirect=True)
def test_with_an_external_session_server(server):
    """xedge-sm's file names the service (domain, max_size) to list it and answer its
    disco#info; the edge's has the rest and serves the slots and files."""
    a = login(server)
    try:
        r = iq(a, f"<query xmlns='{NS_ITEMS}'/>", "d0", to="localhost")
        assert UP in [i.get("jid") for i in r.iter(f"{{{NS_ITEMS}}}item")], dump(r)
        r = iq(a, f"<query xmlns='{NS_INFO}'/>", "d1")
        assert {f.get("var"): f.find("{jabber:x:data}value").text
                for f in r.iter("{jabber:x:data}field")}["max-file-size"] == "1000", dump(r)
        put, get = urls(slot(a, "s1", size=3, ctype=None))
        assert http("PUT", put, b"abc")[0] == 201
        assert http("GET", get)[2] == b"abc"
    finally:
        a.close()
