"""Compute hosts: every process that runs instances registers itself and heartbeats.

A host is ``up`` while its last heartbeat is younger than ``down_after_seconds``; a host
that stops heartbeating (its process died, its node went away) is shown ``down`` and the
scheduler gives it no new instance. What a host has left is what its registered vCPUs and
RAM (times the allocation ratios) leave after the servers placed on it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select

from bootvol.db.models import ComputeHostRecord, ServerRecord, as_utc, utcnow
from bootvol.db.session import SessionFactory


@dataclass(frozen=True)
class HostState:
    name: str
    vcpus: int
    ram_mib: int
    accel: str
    up: bool
    heartbeat_at: dt.datetime
    used_vcpus: int
    used_ram_mib: int
    servers: int


class HostRegistry:
    def __init__(self, sessions: SessionFactory, *, down_after_seconds: float) -> None:
        self._sessions = sessions
        self._down_after = dt.timedelta(seconds=down_after_seconds)

    def register(self, name: str, *, vcpus: int, ram_mib: int, accel: str) -> None:
        """Add or refresh this host (a restart may change what it has)."""
        now = utcnow()
        with self._sessions.begin() as session:
            record = session.get(ComputeHostRecord, name)
            if record is None:
                record = ComputeHostRecord(name=name)
                session.add(record)
            record.vcpus, record.ram_mib, record.accel = vcpus, ram_mib, accel
            record.started_at = record.heartbeat_at = now

    def heartbeat(self, name: str) -> None:
        with self._sessions.begin() as session:
            record = session.get(ComputeHostRecord, name)
            if record is not None:
                record.heartbeat_at = utcnow()

    def is_up(self, name: str) -> bool:
        """Whether the host heartbeats (an unknown host is down)."""
        with self._sessions() as session:
            record = session.get(ComputeHostRecord, name)
        return record is not None and utcnow() - as_utc(record.heartbeat_at) < self._down_after

    def remove(self, name: str) -> None:
        """Forget a host that will not run again (``bootvol demo``'s own, once its server is
        gone): a record left behind would look ``up`` until its heartbeat ages, and get
        servers that no process builds."""
        with self._sessions.begin() as session:
            record = session.get(ComputeHostRecord, name)
            if record is not None:
                session.delete(record)

    def list(self) -> list[HostState]:
        now = utcnow()
        with self._sessions() as session:
            hosts = list(
                session.scalars(select(ComputeHostRecord).order_by(ComputeHostRecord.name))
            )
            usage = {
                host: (int(vcpus), int(ram), int(count))
                for host, vcpus, ram, count in session.execute(
                    select(
                        ServerRecord.host,
                        func.coalesce(func.sum(ServerRecord.vcpus), 0),
                        func.coalesce(func.sum(ServerRecord.ram_mib), 0),
                        func.count(ServerRecord.id),
                    )
                    .where(ServerRecord.host.is_not(None))
                    .group_by(ServerRecord.host)
                )
            }
        return [
            HostState(
                name=host.name,
                vcpus=host.vcpus,
                ram_mib=host.ram_mib,
                accel=host.accel,
                up=now - as_utc(host.heartbeat_at) < self._down_after,
                heartbeat_at=as_utc(host.heartbeat_at),
                used_vcpus=usage.get(host.name, (0, 0, 0))[0],
                used_ram_mib=usage.get(host.name, (0, 0, 0))[1],
                servers=usage.get(host.name, (0, 0, 0))[2],
            )
            for host in hosts
        ]
