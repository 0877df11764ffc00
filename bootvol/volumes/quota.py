"""A project's volume quotas (Cinder's ``volumes``, ``snapshots`` and ``gigabytes``, which
counts both, as Cinder does), checked in one place.

Creating a volume and extending one both ask ``VolumeQuota`` for room. The check and the
write that uses the room share one transaction with the project's row locked
(bootvol.db.quota_lock), so that two requests cannot both take the last of a quota.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bootvol.db.models import ProjectRecord, SnapshotRecord, VolumeRecord
from bootvol.db.quota_lock import QuotaLock
from bootvol.db.session import SessionFactory
from bootvol.errors import QuotaExceeded


@dataclass(frozen=True)
class Usage:
    volumes: int
    gigabytes: int  # of volumes and snapshots
    snapshots: int = 0


class VolumeQuota:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions
        self._lock = QuotaLock(sessions)

    def usage(self, project_id: str) -> Usage:
        with self._sessions() as session:
            return _usage(session, project_id)

    @contextmanager
    def room_for(
        self, project_id: str | None, *, volumes: int, gigabytes: int, snapshots: int = 0
    ) -> Iterator[Session]:
        """A transaction in which ``project_id`` has room for ``volumes`` more volumes and
        ``gigabytes`` more GiB; the caller writes what uses it in that session. Raises
        QuotaExceeded (Cinder's messages) when it has not. Volumes of no project (the
        operator's) count against nothing."""
        with self._lock.project(project_id) as (session, project):
            if project is not None:
                usage = _usage(session, project.id)
                _check(project, usage, volumes=volumes, gigabytes=gigabytes, snapshots=snapshots)
            yield session


def _usage(session: Session, project_id: str) -> Usage:
    count, gigabytes = session.execute(
        select(
            func.count(VolumeRecord.id), func.coalesce(func.sum(VolumeRecord.size_gib), 0)
        ).where(VolumeRecord.project_id == project_id)
    ).one()
    snapshots, snapshot_gigabytes = session.execute(
        select(
            func.count(SnapshotRecord.id), func.coalesce(func.sum(SnapshotRecord.size_gib), 0)
        ).where(SnapshotRecord.project_id == project_id)
    ).one()
    return Usage(
        volumes=int(count),
        gigabytes=int(gigabytes) + int(snapshot_gigabytes),
        snapshots=int(snapshots),
    )


def _check(
    project: ProjectRecord, usage: Usage, *, volumes: int, gigabytes: int, snapshots: int
) -> None:
    """Cinder's quota errors (VolumeLimitExceeded, VolumeSizeExceedsAvailableQuota)."""
    if project.quota_volumes >= 0 and usage.volumes + volumes > project.quota_volumes:
        raise QuotaExceeded(
            f"VolumeLimitExceeded: Maximum number of volumes allowed "
            f"({project.quota_volumes}) exceeded for quota 'volumes'."
        )
    if (
        snapshots
        and project.quota_snapshots >= 0
        and usage.snapshots + snapshots > project.quota_snapshots
    ):
        raise QuotaExceeded(
            f"SnapshotLimitExceeded: Maximum number of snapshots allowed "
            f"({project.quota_snapshots}) exceeded"
        )
    if project.quota_gigabytes >= 0 and usage.gigabytes + gigabytes > project.quota_gigabytes:
        raise QuotaExceeded(
            f"VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed "
            f"gigabytes quota. Requested {gigabytes}G, quota is "
            f"{project.quota_gigabytes}G and {usage.gigabytes}G has been consumed."
        )
