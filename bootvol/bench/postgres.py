"""A throwaway PostgreSQL server: ``initdb`` + ``pg_ctl`` in a temporary folder of its own.

The tests' metadata store for PostgreSQL runs, and the real Cinder's database in the Cinder
stack (several Cinder processes writing at once make SQLite fail with "database is locked").
Nothing outside is assumed: the server runs from Debian's ``postgresql`` package binaries
(``scripts/setup`` installs it when missing), listens only on a unix socket in its own folder
(no TCP port, so several servers on one machine cannot collide), and is deleted at the end.
``initdb`` and ``pg_ctl`` refuse to run as root, so as root they run as the ``postgres`` user
the package creates; that is why the folder is a fresh one under the system's temporary
folder, which that user can reach, and not one inside a caller's (perhaps 0700) folder.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

PORT = 5432  # only names the socket file (.s.PGSQL.5432); no TCP listener is opened


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major, reverse=True)
    return Path(found[0]).parent if found else None


def _major(path: str) -> int:
    try:
        return int(Path(path).parent.parent.name)
    except ValueError:
        return 0


def postgres_unavailable() -> str | None:
    """Why a throwaway server cannot run here, or None when it can."""
    if postgres_bin() is None:
        return "PostgreSQL is not installed (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run initdb as"
    return None


class PostgresServer:
    """A running throwaway server; ``new_database()`` makes a database and gives its URL."""

    def __init__(self, base: Path, socket_dir: Path) -> None:
        self.base = base  # everything of the server: data, sockets, log
        self.socket_dir = socket_dir
        # The maintenance URL; psycopg takes a socket folder as the host.
        self.admin_url = self.url_for("postgres")

    @property
    def log(self) -> Path:
        return self.base / "log"

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}&port={PORT}"

    def new_database(self, name: str | None = None) -> str:
        name = name or f"bootvol_{uuid.uuid4().hex[:12]}"
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url_for(name)


@contextmanager
def throwaway_postgres() -> Iterator[PostgresServer]:
    """Start a server (about a second); stop it (``-m immediate``) and delete it after."""
    reason = postgres_unavailable()
    if reason is not None:
        raise RuntimeError(reason)
    bin_dir = postgres_bin()
    assert bin_dir is not None
    base = Path(tempfile.mkdtemp(prefix="bootvol-pg-"))
    data, sockets = base / "data", base / "sockets"
    data.mkdir()
    sockets.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (base, data, sockets):
            os.chown(path, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    os.chmod(data, 0o700)

    def run(*command: str) -> None:
        subprocess.run([*as_user, *command], check=True, capture_output=True, text=True, cwd=base)

    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
        # No TCP at all (listen_addresses=''). fsync off: the data is thrown away, and fsync
        # is the slowest part of a commit.
        options = (
            f"-c listen_addresses='' -k {sockets} -p {PORT} -c fsync=off -c max_connections=200"
        )
        log = str(base / "log")
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l", log, "start")
        yield PostgresServer(base, sockets)
    finally:
        # pg_ctl waits until the server has exited (-w is its default for stop).
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(base, ignore_errors=True)
