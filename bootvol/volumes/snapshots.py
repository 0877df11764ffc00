"""Volume snapshots: a clone of the volume's file at one moment, beside it on its FlexVol.

A snapshot is ``snapshot-<id>`` in the volume's FlexVol, cut as a volume from a volume is
(bootvol.volumes.sources.clone_volume): a reflink where the filesystem can (constant time,
no space until either side is written), else a sparse copy in the kernel. It is made within
the request, so it is ``available`` (or ``error`` with nothing left behind) when the request
returns. A volume made from it (``snapshot_id``) is placed on the same FlexVol and cloned
from it again. As in Cinder, snapshots count against the project's ``snapshots`` quota and
their size against ``gigabytes``; a volume that has snapshots is deleted only with them
(``cascade``); an attached volume is snapshotted only with ``force`` (crash-consistent: a
reflink of the file as the guest left it).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from bootvol.caller import OPERATOR, Caller
from bootvol.db.models import SnapshotRecord, SnapshotStatus
from bootvol.db.records import Records
from bootvol.db.session import SessionFactory
from bootvol.errors import BootvolError, Conflict, NotFound
from bootvol.storage.topology import Topology
from bootvol.units import GiB
from bootvol.volumes import metadata as user_metadata
from bootvol.volumes.quota import VolumeQuota
from bootvol.volumes.sources import clone_volume
from bootvol.volumes.volume_file import VolumeTarget

if TYPE_CHECKING:  # the volume service owns snapshots' volumes; it imports this module
    from bootvol.volumes.service import VolumeService

log = logging.getLogger(__name__)

SNAPSHOT_KIND = "snapshot"  # the file name's prefix, as the Cinder driver's snapshots have


@dataclass(frozen=True)
class SnapshotCreate:
    volume_id: str
    name: str | None = None
    description: str | None = None
    force: bool = False  # snapshot a volume in use (attached)
    metadata: Mapping[str, str] = field(default_factory=dict)


class SnapshotService:
    def __init__(
        self,
        *,
        sessions: SessionFactory,
        topology: Topology,
        volumes: VolumeService,
        quota: VolumeQuota,
    ) -> None:
        self._sessions = sessions
        self._records = Records(sessions, SnapshotRecord, kind="snapshot")
        self._topology = topology
        self._volumes = volumes
        self._quota = quota

    def create(self, request: SnapshotCreate, *, caller: Caller = OPERATOR) -> SnapshotRecord:
        user_metadata.check(request.metadata)
        volume = self._volumes.copyable(
            request.volume_id, force=request.force, caller=caller, purpose="snapshotted"
        )
        record = SnapshotRecord(
            id=str(uuid.uuid4()),
            volume_id=volume.id,
            name=request.name,
            description=request.description,
            status=SnapshotStatus.CREATING,
            size_gib=volume.size_gib,
            flexvol=volume.flexvol,
            file_format=volume.file_format,
            project_id=volume.project_id,
            user_id=caller.user_id,
            user_metadata=dict(request.metadata),
        )
        with self._quota.room_for(
            volume.project_id, volumes=0, gigabytes=volume.size_gib, snapshots=1
        ) as session:
            session.add(record)
        target = self._target(record)
        try:
            made = clone_volume(
                source_id=volume.id,
                source_file=Path(volume.file),
                source_format=volume.file_format,
                target=target,
                clone_method=self._volumes.settings.clone_method,
            )
        except BootvolError as exc:
            target.remove_files()
            log.error("snapshot %s of volume %s failed: %s", record.id, volume.id, exc.message)
            return self._records.update(record.id, status=SnapshotStatus.ERROR)
        log.info(
            "snapshot %s of volume %s made by %s in %.4f s",
            record.id,
            volume.id,
            made.record.clone_method,
            made.record.seconds,
        )
        return self._records.update(record.id, status=SnapshotStatus.AVAILABLE, file=str(made.file))

    def get(self, ref: str, *, caller: Caller = OPERATOR) -> SnapshotRecord:
        record = self._records.get_by_id(ref)
        if record is None or not (caller.sees_everything or record.project_id == caller.project_id):
            raise NotFound(f"Snapshot {ref} could not be found.")
        return record

    def list(
        self, *, caller: Caller, all_projects: bool = False, volume_id: str | None = None
    ) -> list[SnapshotRecord]:
        statement = select(SnapshotRecord).order_by(SnapshotRecord.created_at.desc())
        if not (caller.sees_everything and all_projects):
            statement = statement.where(SnapshotRecord.project_id == caller.project_id)
        if volume_id is not None:
            statement = statement.where(SnapshotRecord.volume_id == volume_id)
        with self._sessions() as session:
            return list(session.scalars(statement))

    def update(
        self,
        ref: str,
        *,
        caller: Caller,
        name: str | None = None,
        description: str | None = None,
    ) -> SnapshotRecord:
        record = self.get(ref, caller=caller)
        changes = {k: v for k, v in (("name", name), ("description", description)) if v is not None}
        return self._records.update(record.id, **changes) if changes else record

    def set_metadata(
        self, ref: str, items: Mapping[str, str], *, replace: bool, caller: Caller
    ) -> SnapshotRecord:
        record = self.get(ref, caller=caller)
        metadata = user_metadata.merged(record.user_metadata, items, replace=replace)
        return self._records.update(record.id, user_metadata=metadata)

    def delete_metadata(self, ref: str, key: str, *, caller: Caller) -> None:
        record = self.get(ref, caller=caller)
        metadata = user_metadata.without(record.user_metadata, key, owner=f"Snapshot {record.id}")
        self._records.update(record.id, user_metadata=metadata)

    def delete(self, ref: str, *, caller: Caller = OPERATOR) -> SnapshotRecord:
        record = self.get(ref, caller=caller)
        # A snapshot is made within its request: one still creating was cut off by a crash,
        # and admins (and a cascade) may remove it, else it and its volume stay forever.
        if record.status == SnapshotStatus.CREATING and not caller.sees_everything:
            raise Conflict(f"Invalid snapshot: snapshot {record.id} is still being made")
        self._target(record).remove_files()
        self._records.delete(record.id)
        log.info("snapshot %s of volume %s deleted", record.id, record.volume_id)
        return record

    def of_volume(self, volume_id: str) -> list[SnapshotRecord]:
        return self.list(caller=OPERATOR, all_projects=True, volume_id=volume_id)

    def _target(self, record: SnapshotRecord) -> VolumeTarget:
        return VolumeTarget(
            volume_id=record.id,
            flexvol=self._topology.get(record.flexvol),
            size_bytes=record.size_gib * GiB,
            kind=SNAPSHOT_KIND,
        )
