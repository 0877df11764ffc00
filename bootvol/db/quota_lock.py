"""The transaction a quota check and the write that uses its room share.

Two requests must not both take the last of a quota: the check and the insert (or update)
run in one transaction with the project's row locked (``FOR UPDATE`` on PostgreSQL; SQLite
has one writer at a time), and one at a time within this process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select
from sqlalchemy.orm import Session

from bootvol.db.models import ProjectRecord
from bootvol.db.session import SessionFactory


class QuotaLock:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions
        self._lock = threading.Lock()

    @contextmanager
    def project(self, project_id: str | None) -> Iterator[tuple[Session, ProjectRecord | None]]:
        """The transaction, and the project's row locked in it (None: the operator's
        records, which count against no project, or an unknown project)."""
        with self._lock, self._sessions.begin() as session:
            project = None
            if project_id is not None:
                project = session.scalars(
                    select(ProjectRecord).where(ProjectRecord.id == project_id).with_for_update()
                ).first()
            yield session, project
