"""A throwaway PostgreSQL server for the tests: ``initdb`` + ``pg_ctl`` in a temporary folder.

Nothing outside the suite is assumed: the server runs from Debian's ``postgresql`` package
binaries (``scripts/setup`` installs it when missing), listens only on a unix socket in its
own folder, and is deleted at the end. ``initdb`` and ``pg_ctl`` refuse to run as root, so as
root they run as the ``postgres`` user the package creates.

Without the binaries the tests that need it skip, except under CI=true, where a skip would
hide a broken machine: there they fail (the rule of ``support.require_loopback``).
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

import pytest
from sqlalchemy import create_engine, text

_PORT = 5432  # only names the socket file (.s.PGSQL.5432); no TCP listener is opened


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major, reverse=True)
    return Path(found[0]).parent if found else None


def _major(path: str) -> int:
    try:
        return int(Path(path).parent.parent.name)
    except ValueError:
        return 0


def require_postgres() -> Path:
    bin_dir = postgres_bin()
    reason = None
    if bin_dir is None:
        reason = "PostgreSQL is not installed (apt-get install postgresql)"
    elif os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            reason = "running as root and there is no postgres user to run initdb as"
    if reason is None:
        assert bin_dir is not None
        return bin_dir
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required under CI: {reason}")
    pytest.skip(reason)


class PostgresServer:
    """A running throwaway server; ``new_database()`` gives each test its own database."""

    def __init__(self, socket_dir: Path) -> None:
        self.socket_dir = socket_dir
        # The maintenance URL; psycopg takes a socket folder as the host.
        self.admin_url = self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}&port={_PORT}"

    def new_database(self) -> str:
        name = f"bootvol_{uuid.uuid4().hex[:12]}"
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url_for(name)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = require_postgres()
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

    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
    # No TCP at all (listen_addresses=''): several suites on one machine cannot collide on a
    # port. fsync off: the data is thrown away, and fsync is the slowest part of a commit.
    options = f"-c listen_addresses='' -k {sockets} -p {_PORT} -c fsync=off -c max_connections=200"
    try:
        log = str(base / "log")
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l", log, "start")
        yield PostgresServer(sockets)
    finally:
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(base, ignore_errors=True)
