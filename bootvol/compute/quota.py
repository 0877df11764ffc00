"""A project's compute quotas (Nova's ``instances``, ``cores``, ``ram``), checked in one place.

The limits live on the project's row (``quota_instances``, ``quota_cores``,
``quota_ram_mib``; -1 is unlimited); what is used is counted from the servers, of every
status, as Nova counts instances until they are deleted (an ``ERROR`` server too).

As for volumes, the check and the insert that uses the room share one transaction with the
project's row locked (bootvol.db.quota_lock), and so does a change of the limits, which Nova
refuses below what is already used unless forced. Nova answers a server create over quota
with 403 and "Quota exceeded for …".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bootvol.db.models import (
    DEFAULT_QUOTA_CORES,
    DEFAULT_QUOTA_INSTANCES,
    DEFAULT_QUOTA_RAM_MIB,
    ProjectRecord,
    ServerRecord,
)
from bootvol.db.quota_lock import QuotaLock
from bootvol.db.session import SessionFactory
from bootvol.errors import InvalidRequest, NotFound, QuotaExceeded


@dataclass(frozen=True)
class ComputeUsage:
    instances: int
    cores: int
    ram_mib: int


@dataclass(frozen=True)
class ComputeLimits:
    """A project's compute quotas; -1 is unlimited."""

    instances: int
    cores: int
    ram_mib: int


DEFAULT_LIMITS = ComputeLimits(
    instances=DEFAULT_QUOTA_INSTANCES, cores=DEFAULT_QUOTA_CORES, ram_mib=DEFAULT_QUOTA_RAM_MIB
)


@dataclass(frozen=True)
class ProjectComputeQuota:
    """A project's compute limits and what its servers use of them."""

    project_id: str
    limits: ComputeLimits
    usage: ComputeUsage


@dataclass(frozen=True)
class ComputeLimitsUpdate:
    """New limits (None keeps one). ``force`` sets a limit below what is already used,
    as Nova's ``force`` does."""

    instances: int | None = None
    cores: int | None = None
    ram_mib: int | None = None
    force: bool = False


class ComputeQuota:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions
        self._lock = QuotaLock(sessions)

    def usage(self, project_id: str) -> ComputeUsage:
        with self._sessions() as session:
            return _usage(session, project_id)

    def of(self, project_id: str) -> ProjectComputeQuota:
        """The project's limits and usage, read together. NotFound for an unknown project."""
        with self._sessions() as session:
            project = session.get(ProjectRecord, project_id)
            if project is None:
                raise NotFound(f"Could not find project: {project_id}.")
            return _quota(project, _usage(session, project.id))

    def set_limits(self, project_id: str, update: ComputeLimitsUpdate) -> ProjectComputeQuota:
        """Change the project's limits. Unless ``force``, a limit below what is used is
        refused (Nova's 400), checked with the row locked so no server slips in between."""
        with self._lock.project(project_id) as (session, project):
            if project is None:
                raise NotFound(f"Could not find project: {project_id}.")
            usage = _usage(session, project.id)
            changes = (
                ("instances", "quota_instances", update.instances, usage.instances),
                ("cores", "quota_cores", update.cores, usage.cores),
                ("ram", "quota_ram_mib", update.ram_mib, usage.ram_mib),
            )
            for name, _, limit, used in changes:
                if limit is None:
                    continue
                if limit < -1:
                    raise InvalidRequest(f"Quota limit {limit} for {name} must be -1 or greater.")
                if not update.force and 0 <= limit < used:
                    # nova.api.openstack.compute.quota_sets' message.
                    raise InvalidRequest(
                        f"Quota limit {limit} for {name} must be greater than or equal to "
                        f"already used and reserved {used}."
                    )
            for _, column, limit, _ in changes:
                if limit is not None:
                    setattr(project, column, limit)
            return _quota(project, usage)

    @contextmanager
    def room_for(self, project_id: str | None, *, cores: int, ram_mib: int) -> Iterator[Session]:
        """A transaction in which ``project_id`` has room for one more instance of ``cores``
        vCPUs and ``ram_mib`` MiB; the caller adds the server in that session."""
        with self._lock.project(project_id) as (session, project):
            if project is not None:
                _check(project, _usage(session, project.id), cores=cores, ram_mib=ram_mib)
            yield session


def _quota(project: ProjectRecord, usage: ComputeUsage) -> ProjectComputeQuota:
    limits = ComputeLimits(
        instances=project.quota_instances, cores=project.quota_cores, ram_mib=project.quota_ram_mib
    )
    return ProjectComputeQuota(project_id=project.id, limits=limits, usage=usage)


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
