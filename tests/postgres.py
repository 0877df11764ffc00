"""The tests' throwaway PostgreSQL server (bootvol.bench.postgres), shared by the session.

Without PostgreSQL's binaries the tests that need it skip, except under CI=true, where a skip
would hide a broken machine: there they fail (the rule of ``support.require_loopback``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bootvol.bench.postgres import PostgresServer, postgres_unavailable, throwaway_postgres

__all__ = ["PostgresServer", "postgres_server", "require_postgres"]


def require_postgres() -> None:
    reason = postgres_unavailable()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required under CI: {reason}")
    pytest.skip(reason)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    require_postgres()
    with throwaway_postgres() as server:
        yield server
