"""The Alembic migrations build exactly the schema the models describe, on SQLite and
PostgreSQL, and every revision's downgrade undoes it (so an operator can step back)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from bootvol.db.models import Base
from bootvol.db.session import make_engine, migrations, upgrade

from ..support import BOTH_DATABASES


def schema_drift(engine) -> list[object]:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)


@BOTH_DATABASES
def test_migrations_match_the_models_and_downgrade_cleanly(
    database_url: str | None, tmp_path: Path
) -> None:
    engine = make_engine(database_url or f"sqlite:///{tmp_path / 'bootvol.sqlite'}")
    upgrade(engine)
    assert schema_drift(engine) == []

    with engine.begin() as connection:
        command.downgrade(migrations(connection), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}

    upgrade(engine)  # and back up again: the downgrades left nothing in the way
    assert schema_drift(engine) == []
    engine.dispose()
