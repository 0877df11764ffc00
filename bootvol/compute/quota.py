"""A project's compute quotas (Nova's ``instances``, ``cores``, ``ram``), checked in one place.

As for volumes, the check and the insert that uses the room share one transaction with the
project's row locked (bootvol.db.quota_lock). Nova answers a server create over quota with
403 and "Quota exceeded for …".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bootvol.db.models import ProjectRecord, ServerRecord
from bootvol.db.quota_lock import QuotaLock
from bootvol.db.session import SessionFactory
from bootvol.errors import QuotaExceeded


@dataclass(frozen=True)
class ComputeUsage:
    instances: int
    cores: int
    ram_mib: int


class ComputeQuota:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions
        self._lock = QuotaLock(sessions)

    def usage(self, project_id: str) -> ComputeUsage:
        with self._sessions() as session:
            return _usage(session, project_id)

    @contextmanager
    def room_for(self, project_id: str | None, *, cores: int, ram_mib: int) -> Iterator[Session]:
        """A transaction in which ``project_id`` has room for one more instance of ``cores``
        vCPUs and ``ram_mib`` MiB; the caller adds the server in that session."""
        with self._lock.project(project_id) as (session, project):
            if project is not None:
                _check(project, _usage(session, project.id), cores=cores, ram_mib=ram_mib)
            yield session


def _usage(session: Session, project_id: str) -> ComputeUsage:
    count, cores, ram = session.execute(
        select(
            func.count(ServerRecord.id),
            func.coalesce(func.sum(ServerRecord.vcpus), 0),
            func.coalesce(func.sum(ServerRecord.ram_mib), 0),
        ).where(ServerRecord.project_id == project_id)
    ).one()
    return ComputeUsage(instances=int(count), cores=int(cores), ram_mib=int(ram))


def _check(project: ProjectRecord, usage: ComputeUsage, *, cores: int, ram_mib: int) -> None:
    wanted = (
        ("instances", 1, usage.instances, project.quota_instances),
        ("cores", cores, usage.cores, project.quota_cores),
        ("ram", ram_mib, usage.ram_mib, project.quota_ram_mib),
    )
    for name, requested, used, allowed in wanted:
        if allowed >= 0 and used + requested > allowed:
            # Nova's TooManyInstances message.
            raise QuotaExceeded(
                f"Quota exceeded for {name}: Requested {requested}, but already used {used} "
                f"of {allowed} {name}"
            )
