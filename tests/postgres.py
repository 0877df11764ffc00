"""The tests' throwaway PostgreSQL server (bootvol.bench.postgres), shared by the session.

Without PostgreSQL's binaries the tests that need it skip, except under CI=true, where a skip
would hide a broken machine: there they fail (``support.require``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bootvol.bench.postgres import PostgresServer, postgres_unavailable, throwaway_postgres

from .support import require

__all__ = ["PostgresServer", "postgres_server", "require_postgres"]


def require_postgres() -> None:
    require("PostgreSQL", postgres_unavailable())


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    require_postgres()
    with throwaway_postgres() as server:
        yield server
