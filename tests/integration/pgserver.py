"""A real PostgreSQL server for the integration tests (session scoped).

`pg` starts one server for the whole pytest session from the Debian binaries
(/usr/lib/postgresql/<version>/bin, the newest installed): initdb into a
fresh temporary folder, pg_ctl start with its unix socket in that folder and
a free 127.0.0.1 port, stopped (fast) and removed at the end.  PostgreSQL
refuses to run as root, so as root the server runs as the `postgres` user
(runuser) and the folder is given to it; otherwise it runs as the caller.
Tests that need it are skipped, with the reason, only when the binaries are
missing.

xedge connects over TCP with a password (role `xedge`, SCRAM), so the tests
also see that the password never reaches a log.  `pgdb` makes a fresh
database per test owned by that role and returns its URI.
"""
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import free_port, wait_until

PG_ROLE = "xedge"
PG_PASSWORD = "pg-Secret-" + os.urandom(6).hex()


def pg_bindir():
    """The newest /usr/lib/postgresql/N/bin that has initdb, or None."""
    root = Path("/usr/lib/postgresql")
    found = []
    if root.is_dir():
        for d in root.iterdir():
            if d.name.isdigit() and (d / "bin" / "initdb").exists() and \
               (d / "bin" / "pg_ctl").exists():
                found.append((int(d.name), d / "bin"))
    return max(found)[1] if found else None


class PgServer:
    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="xedge-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.as_user = "postgres" if os.geteuid() == 0 else None
        self.ndb = 0
        if self.as_user:
            pw = pwd.getpwnam(self.as_user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            os.chmod(self.dir, 0o700)

    def _run(self, argv, check=True, timeout=60, input=None):
        if self.as_user:
            argv = ["runuser", "-u", self.as_user, "--"] + argv
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input)
        if check and p.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
                               f"\n{self.log_text()}")
        return p

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def init(self):
        pwfile = self.dir / "pw"
        pwfile.write_text("superuser-" + os.urandom(6).hex() + "\n")
        if self.as_user:
            pw = pwd.getpwnam(self.as_user)
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        # Unix socket: trust (the fixture's own psql); TCP: passwords (xedge).
        self._run([str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                   "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8",
                   "--locale=C", f"--pwfile={pwfile}"], timeout=120)
        with open(self.data / "postgresql.conf", "a") as f:
            f.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                    f"unix_socket_directories = '{self.dir}'\nfsync = off\n"
                    "max_connections = 50\nshared_buffers = 16MB\n")
        self.start()
        self.psql(f"CREATE ROLE {PG_ROLE} LOGIN PASSWORD '{PG_PASSWORD}'")

    def start(self):
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                   "-w", "-t", "60", "start"], timeout=90)

    def stop(self, mode: str = "fast"):
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w",
                   "-t", "60", "stop"], check=False, timeout=90)

    def restart(self):
        """Stop (every connection is cut) and start again on the same port."""
        self.stop()
        self.start()

    def psql(self, sql: str, db: str = "postgres") -> str:
        p = self._run([str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v",
                       "ON_ERROR_STOP=1", "-h", str(self.dir), "-p", str(self.port),
                       "-U", "postgres", "-d", db, "-c", sql])
        return p.stdout.strip()

    def createdb(self) -> str:
        self.ndb += 1
        name = f"xedge_{os.getpid()}_{self.ndb}"
        self.psql(f"CREATE DATABASE {name} OWNER {PG_ROLE}")
        return name

    def uri(self, db: str) -> str:
        return f"postgresql://{PG_ROLE}:{PG_PASSWORD}@127.0.0.1:{self.port}/{db}"

    def cleanup(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg():
    bindir = pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries are missing (/usr/lib/postgresql/*/bin/initdb:"
                    " Debian package postgresql)")
    srv = PgServer(bindir)
    try:
        srv.init()
        yield srv
    finally:
        srv.cleanup()


@pytest.fixture
def pgdb(pg):
    """A fresh database for this test: (server, database name, URI)."""
    name = pg.createdb()
    return pg, name, pg.uri(name)
