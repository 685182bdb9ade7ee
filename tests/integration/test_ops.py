"""Operations (issue 12): one server per address, and a prompt reconnect to the
session server.

- A second xedge (or xedge-sm) given the same configuration refuses to start:
  it exits non-zero naming the address and the pid that serves it, and the
  first one keeps serving.
- After xedge-sm restarts, the edge reconnects at once (not after a backoff of
  seconds); while xedge-sm stays down, its attempts are bounded.
"""
import asyncio
import subprocess
import time

import pytest

from conftest import USERS, Proc, binary, child_env
from slixclient import Client, run

RECONNECT_FAILED = "session server reconnect failed"


async def try_login(server, user="alice", timeout=5.0):
    """True when `user` logs in (then logs out), False when the login fails."""
    c = Client(f"{user}@{server.domain}/ops", USERS[user])
    try:
        await c.login(server.c2s_port, timeout=timeout)
    except Exception:
        return False
    finally:
        await c.close()
    return True


def login_until(server, deadline: float) -> float:
    """Log in again and again until one succeeds; the monotonic time it did."""
    while time.monotonic() < deadline:
        if run(try_login(server, timeout=max(1.0, deadline - time.monotonic()))):
            return time.monotonic()
    raise AssertionError(f"no login before the deadline\n{server.log_tails()}")


def start_second(argv) -> subprocess.CompletedProcess:
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=child_env(), timeout=20)


@pytest.mark.parametrize("own_state", [False, True], ids=["same-config", "own-database"])
def test_second_edge_refuses_to_start(server, tmp_path, own_state):
    first = server.proc("xedge")
    config = server.edge_config
    if own_state:
        # The case SO_REUSEPORT let through: the same listeners, but a database
        # and admin socket of its own, so nothing else stood in its way.
        config = tmp_path / "second.yaml"
        text = server.edge_config.read_text()
        assert str(server.database) in text and str(server.admin_socket) in text
        config.write_text(text.replace(str(server.database), str(tmp_path / "second.db"))
                          .replace(str(server.admin_socket), str(tmp_path / "second.sock")))
    second = start_second([str(binary("xedge")), "-c", str(config)])
    assert second.returncode != 0, f"the second xedge ran: {second.stdout}{second.stderr}"
    want = (f"address 127.0.0.1:{server.c2s_port} is already served by xedge pid {first.p.pid} "
            "(stop it first, or change listeners[].address)")
    assert want in second.stderr, second.stderr
    assert "xedge started" not in second.stdout + second.stderr
    assert not (tmp_path / "second.db").exists()   # refused before it touched anything
    assert first.alive()
    assert run(try_login(server)), server.log_tails()


@pytest.mark.parametrize("server", ["external"], indirect=True)
def test_second_session_server_refuses_to_start(server):
    first = server.proc("xedge-sm")
    second = start_second([str(binary("xedge-sm")), "-c", str(server.sm_config)])
    assert second.returncode != 0, f"the second xedge-sm ran: {second.stdout}{second.stderr}"
    want = (f"address 127.0.0.1:{server.sm_port} is already served by xedge-sm pid {first.p.pid} "
            "(stop it first, or change session_server.listen)")
    assert want in second.stderr, second.stderr
    assert "xedge-sm started" not in second.stdout + second.stderr
    assert first.alive()
    assert run(try_login(server)), server.log_tails()


@pytest.mark.parametrize("server", ["external"], indirect=True)
def test_reconnect_promptly_after_session_server_restart(server):
    assert run(try_login(server)), server.log_tails()
    ups = server.log().count("session server link up")
    assert server.restart_sm() == []
    back = time.monotonic()     # the new xedge-sm logged 'started'
    # Every worker relinks: the old backoff (1 s, then 2 s, ... after a refused
    # attempt) would take seconds here; a prompt retry takes a fraction of one.
    server.wait_log("session server link up", timeout=20.0, count=ups + server.opts.workers)
    relinked = time.monotonic() - back
    logged_in = login_until(server, back + 20) - back
    assert relinked < 2.0, f"links back {relinked:.1f} s after xedge-sm started"
    assert logged_in < 5.0, f"first login {logged_in:.1f} s after xedge-sm started"


@pytest.mark.parametrize("server", ["external"], indirect=True)
def test_bounded_reconnect_attempts_while_session_server_down(server):
    assert run(try_login(server)), server.log_tails()
    old = server.proc("xedge-sm")
    assert old.stop() == []
    server.wait_log("session server link lost", timeout=20.0, count=server.opts.workers)
    # Logins meanwhile fail (temporary-auth-failure), they do not hang.
    assert not run(try_login(server))
    # The measuring window: xedge-sm stays down for 3 s.
    before = server.log().count(RECONNECT_FAILED)
    time.sleep(3.0)
    attempts = server.log().count(RECONNECT_FAILED) - before
    workers = server.opts.workers
    # 200 ms apart: about 15 per worker in 3 s.  A busy loop would make thousands;
    # giving up would make none.
    assert 3 * workers <= attempts <= 25 * workers, \
        f"{attempts} failed reconnect attempts in 3 s by {workers} workers"
    assert server.proc("xedge").alive()

    # Back up: the edge notices within a fraction of a second (before: its next
    # attempt came 7 s after the loss, 1 + 2 + 4 s of backoff).
    ups = server.log().count("session server link up")
    n = sum(1 for p in server.procs if p.name.startswith("xedge-sm"))
    sm = Proc("xedge-sm", [str(binary("xedge-sm")), "-c", str(server.sm_config)],
              server.dir / f"xedge-sm-{n + 1}.log")
    server.procs.insert(0, sm)
    server._wait(sm, "'xedge-sm started' log line", lambda: "xedge-sm started" in sm.text())
    back = time.monotonic()
    server.wait_log("session server link up", timeout=20.0, count=ups + workers)
    relinked = time.monotonic() - back
    logged_in = login_until(server, back + 20) - back
    assert relinked < 1.5, f"links back {relinked:.1f} s after xedge-sm started"
    assert logged_in < 5.0, f"first login {logged_in:.1f} s after xedge-sm started"
