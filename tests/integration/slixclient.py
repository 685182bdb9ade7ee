"""slixmpp (Debian python3-slixmpp 1.8.3) clients for the integration tests.

Create clients inside a running event loop (the tests use run() below, which
bounds the whole coroutine in time).  Each client records what a user would
see: messages, presences, stream errors, the SASL mechanism it sent.
"""
import asyncio
import logging
import ssl
import xml.etree.ElementTree as ET

import slixmpp

log = logging.getLogger("xedge-tests")

NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"


def run(coro, timeout=30.0):
    """Run coro in a fresh event loop; fail (never hang) after timeout seconds."""
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, mech=None):
        super().__init__(jid, password, sasl_mech=mech)
        self.wanted_jid = jid
        self.ssl_context.check_hostname = False     # self-signed test certificate
        self.ssl_context.verify_mode = ssl.CERT_NONE
        loop = asyncio.get_event_loop()
        self.ready = loop.create_future()
        self.closed = loop.create_future()
        self.messages = asyncio.Queue()
        self.presences = []                 # (from full JID, type) in arrival order
        self.presence_event = asyncio.Event()
        self.stream_errors = []             # conditions, e.g. 'conflict'
        self.sent_mechanisms = []           # mechanism attribute of every <auth/> sent
        self.auth_failures = []
        self.register_plugin("xep_0030")
        self.add_filter("out", self._watch_out)
        self.add_event_handler("session_start", self._on_start)
        self.add_event_handler("failed_auth", self._on_failed_auth)
        self.add_event_handler("message", self._on_message)
        self.add_event_handler("presence", self._on_presence)
        self.add_event_handler("stream_error", self._on_stream_error)
        self.add_event_handler("disconnected", self._on_disconnected)
        self.add_event_handler("connection_failed", self._on_conn_failed)

    # -- recorders --

    def _watch_out(self, stanza):
        xml = getattr(stanza, "xml", None)
        if xml is not None and xml.tag == f"{{{NS_SASL}}}auth":
            self.sent_mechanisms.append(xml.get("mechanism"))
        return stanza

    def _on_start(self, _):
        self.send_presence()
        if not self.ready.done():
            self.ready.set_result(True)

    def _on_failed_auth(self, stanza):
        self.auth_failures.append(stanza)
        if not self.ready.done():
            self.ready.set_exception(AssertionError(
                f"{self.wanted_jid}: SASL failed: {stanza}"))

    def _on_conn_failed(self, err):
        if not self.ready.done():
            self.ready.set_exception(AssertionError(f"{self.wanted_jid}: connection failed: {err}"))

    def _on_message(self, msg):
        self.messages.put_nowait(msg)

    def _on_presence(self, pres):
        self.presences.append((str(pres["from"]), pres["type"]))
        self.presence_event.set()

    def _on_stream_error(self, err):
        self.stream_errors.append(err["condition"])

    def _on_disconnected(self, reason):
        if not self.closed.done():
            self.closed.set_result(reason)
        if not self.ready.done():
            self.ready.set_exception(AssertionError(
                f"{self.wanted_jid}: disconnected before the session started "
                f"(stream errors: {self.stream_errors})"))

    # -- actions --

    async def login(self, port, direct_tls=False, timeout=15.0):
        if direct_tls:
            self.connect(("127.0.0.1", port), use_ssl=True, force_starttls=False,
                         disable_starttls=True)
        else:
            self.connect(("127.0.0.1", port), force_starttls=True)
        await asyncio.wait_for(asyncio.shield(self.ready), timeout)
        return self

    @property
    def mechanism(self):
        mech = self["feature_mechanisms"].mech
        return mech.name if mech else None

    def tls_version(self):
        t = self.transport
        so = t.get_extra_info("ssl_object") if t else None
        return so.version() if so else None

    async def next_message(self, timeout=5.0, body=None):
        """The next chat/normal message (with the given body, if set); others are skipped
        and kept in self.skipped."""
        self.skipped = getattr(self, "skipped", [])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise asyncio.TimeoutError(
                    f"{self.boundjid}: no message{' with body ' + repr(body) if body else ''} "
                    f"within {timeout} s (skipped: {[str(m) for m in self.skipped]})")
            try:
                msg = await asyncio.wait_for(self.messages.get(), left)
            except asyncio.TimeoutError:
                continue
            if body is not None and msg["body"] != body:
                self.skipped.append(msg)
                continue
            return msg

    async def wait_presence(self, full_jid, ptype="available", timeout=5.0):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (full_jid, ptype) not in self.presences:
            left = deadline - loop.time()
            if left <= 0:
                raise asyncio.TimeoutError(
                    f"{self.boundjid}: no {ptype} presence from {full_jid} within {timeout} s; "
                    f"presences seen: {self.presences}")
            self.presence_event.clear()
            try:
                await asyncio.wait_for(self.presence_event.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def iq_get(self, to, payload_xml, timeout=5.0):
        iq = self.Iq()
        iq["type"] = "get"
        if to:
            iq["to"] = to
        iq.append(ET.fromstring(payload_xml))
        return await iq.send(timeout=timeout)

    async def close(self, timeout=5.0):
        if self.closed.done() or self.transport is None:
            return
        try:
            self.disconnect()
            await asyncio.wait_for(asyncio.shield(self.closed), timeout)
        except (asyncio.TimeoutError, Exception) as e:     # noqa: BLE001 -- cleanup
            log.warning("%s: close: %r", self.wanted_jid, e)
            self.abort()


async def close_all(*clients):
    await asyncio.gather(*(c.close() for c in clients if c is not None), return_exceptions=True)
