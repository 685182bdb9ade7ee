"""aioxmpp (Debian python3-aioxmpp 0.13.3) clients for the integration tests: the second,
independent client library beside slixmpp (slixclient.py).

A client reaches the server under test over STARTTLS on 127.0.0.1 (the suite's certificate
is self-signed: it is not verified) and runs on the test's own asyncio loop, which
slixclient.run bounds in time; every wait here has its own deadline too.
"""
import asyncio

import aioxmpp
import aioxmpp.connector


def make_client(jid, password, port, host="127.0.0.1"):
    """An aioxmpp.Client for the full JID `jid` (a str), not connected yet."""
    return aioxmpp.Client(
        aioxmpp.JID.fromstr(jid), aioxmpp.make_security_layer(password, no_verify=True),
        override_peer=[(host, port, aioxmpp.connector.STARTTLSConnector())])


async def connect(client, timeout=15.0):
    """Start client and wait until its stream is established (resource bound); returns
    the context manager that keeps it connected, for disconnect()."""
    cm = client.connected()
    await asyncio.wait_for(cm.__aenter__(), timeout)
    return cm


async def disconnect(cm, timeout=10.0):
    """End a session connect() started (closing the stream); never raises."""
    try:
        await asyncio.wait_for(cm.__aexit__(None, None, None), timeout)
    except Exception:           # noqa: BLE001 -- cleanup
        pass


async def wait_until(what, cond, timeout=10.0):
    """Poll cond() (on the event loop) until it returns something true, returned; fail
    naming `what` after timeout seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        r = cond()
        if r:
            return r
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.02)
