"""Volume records and their lifecycle: accept, list, show, update, extend, delete.

A creation has two halves. ``accept`` validates the request, checks the project's quota
(bootvol.volumes.quota), places the volume on a FlexVol (bootvol.volumes.placement) and
records it ``creating``, all at once and without moving a byte; the provisioner
(bootvol.volumes.provisioning) then makes it and ends it ``available`` or ``error``. The API
accepts and lets a background worker (bootvol.volumes.worker) provision; the CLI's
``create`` does both in turn.

Requests that cannot be honoured at all (unknown image, too small, over quota, no room)
raise in ``accept``, before any record exists.

Who sees what (bootvol.caller.Caller): a project sees its own volumes only; admins see
any volume by id and list every project's with ``all_projects``. The operator's CLI
addresses volumes by id or unique name; the API by id only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Select, func, select, update

from bootvol.caller import OPERATOR, Caller
from bootvol.config import Settings
from bootvol.db.models import (
    DEFAULT_AVAILABILITY_ZONE,
    ImageRecord,
    ImageStatus,
    SnapshotRecord,
    SnapshotStatus,
    VolumeRecord,
    VolumeStatus,
    utcnow,
)
from bootvol.db.paginate import fetch_page, sort_keys, sortable
from bootvol.db.records import Records
from bootvol.db.session import SessionFactory
from bootvol.errors import BootvolError, Conflict, InvalidRequest, NotFound
from bootvol.images.service import ImageService
from bootvol.storage.topology import Topology
from bootvol.units import GiB
from bootvol.volumes import metadata as user_metadata
from bootvol.volumes import placement
from bootvol.volumes.attachments import VolumeAttachments
from bootvol.volumes.claims import IN_PROGRESS, this_process
from bootvol.volumes.events import VolumeObserver
from bootvol.volumes.provisioning import Provisioner, image_source
from bootvol.volumes.quota import Usage, VolumeQuota
from bootvol.volumes.snapshots import SnapshotService
from bootvol.volumes.types import VolumeTypeService, accepts
from bootvol.volumes.volume_file import VolumeTarget, grow

log = logging.getLogger(__name__)


# Cinder lets these statuses be deleted (api-ref "Delete a volume").
_DELETABLE = (VolumeStatus.AVAILABLE, VolumeStatus.ERROR)


@dataclass(frozen=True)
class VolumeCreate:
    """A volume to make: from ``image``, from ``source_volid``, or empty when neither."""

    size_gib: int | None
    image: str | None = None  # id (or, for the operator, a unique name)
    name: str | None = None
    flexvol: str | None = None  # let placement choose when None
    source_volid: str | None = None
    snapshot_id: str | None = None
    volume_type: str | None = None  # id or name; Cinder's __DEFAULT__ when None
    description: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    availability_zone: str | None = None


@dataclass(frozen=True)
class VolumeQuery:
    """A Cinder list request: filters, sort order, one page."""

    limit: int | None = None
    marker: str | None = None
    name: str | None = None
    status: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    bootable: bool | None = None
    all_projects: bool = False
    project_id: str | None = None  # with all_projects, admins may narrow to one project
    sort: Sequence[tuple[str, bool]] = (("created_at", False),)  # (key, ascending)


# Cinder's sortable keys (api-ref "List accessible volumes", sort_key) and their columns.
_SORT_COLUMNS = {
    "id": sortable(VolumeRecord.id),
    "name": sortable(VolumeRecord.name, empty=""),
    "display_name": sortable(VolumeRecord.name, empty=""),
    "status": sortable(VolumeRecord.status),
    "size": sortable(VolumeRecord.size_gib),
    "availability_zone": sortable(VolumeRecord.availability_zone),
    "bootable": sortable(VolumeRecord.bootable),
    "created_at": sortable(VolumeRecord.created_at),
    "updated_at": sortable(VolumeRecord.updated_at),
    "project_id": sortable(VolumeRecord.project_id, empty=""),
}


class VolumeService:
    def __init__(
        self,
        *,
        sessions: SessionFactory,
        topology: Topology,
        images: ImageService,
        settings: Settings,
        observer: VolumeObserver | None = None,
    ) -> None:
        self._sessions = sessions
        self._records = Records(sessions, VolumeRecord, kind="volume")
        self._quota = VolumeQuota(sessions)
        self.attachments = VolumeAttachments(sessions)
        self.topology = topology
        self.images = images
        self.settings = settings
        self.provisioner = Provisioner(
            sessions=sessions,
            topology=topology,
            images=images,
            settings=settings,
            observer=observer,
        )
        self.types = VolumeTypeService(sessions)
        self.snapshots = SnapshotService(
            sessions=sessions, topology=topology, volumes=self, quota=self._quota
        )
        # Called after each accepted creation: a server's worker wakes on it.
        self.on_accept: list[Callable[[], None]] = []
        self._placing = threading.Lock()

    # creation ------------------------------------------------------------------------------
    def create(self, request: VolumeCreate) -> VolumeRecord:
        """Create a volume synchronously (the CLI's way); returns it ``available`` or ``error``."""
        record = self.accept(request, caller=OPERATOR, claimant=this_process())
        return self.provisioner.provision(record.id, accepted=record)

    def accept(
        self, request: VolumeCreate, *, caller: Caller, claimant: str | None = None
    ) -> VolumeRecord:
        """Validate, check quota, place and record the volume ``creating``; return at once.

        With ``claimant`` the record is born claimed by it (a synchronous creation), so no
        background worker picks it up.
        """
        # Placement counts the volumes each FlexVol holds and the insert adds one: one
        # creation at a time in this process, so that a burst of them sees each other and
        # spreads (another process's burst may still overlap: the spread is then rougher).
        with self._placing:
            record = self._accept(request, caller=caller, claimant=claimant)
        for listener in self.on_accept:
            listener()
        return record

    def _accept(
        self, request: VolumeCreate, *, caller: Caller, claimant: str | None
    ) -> VolumeRecord:
        _validate(request)
        volume_type = self.types.get(request.volume_type, caller=caller)
        allowed = accepts(volume_type)
        image: ImageRecord | None = None
        source: VolumeRecord | None = None
        snapshot: SnapshotRecord | None = None
        if request.image is not None:
            image = self.images.get(request.image, caller=caller)
            size_gib = _check_image(request, image)
            chosen = placement.place_for_image(
                self.topology,
                image_id=image.id,
                image_file=image_source(image).file,
                raw_size=image.virtual_size or image.size or 0,
                requested=request.flexvol,
                provisioned=self._provisioned() if request.flexvol is None else {},
                margin_percent=self.settings.placement.spread_margin_percent,
                allowed=allowed,
            )
            log.info(
                "placing a volume of image %s on %s: %s",
                image.id,
                chosen.flexvol.name,
                chosen.reason,
            )
            flexvol = chosen.flexvol
        elif request.snapshot_id is not None:
            snapshot = self.snapshots.get(request.snapshot_id, caller=caller)
            if snapshot.status != SnapshotStatus.AVAILABLE:
                raise Conflict(f"Invalid snapshot: snapshot {snapshot.id} is {snapshot.status}")
            size_gib = request.size_gib or snapshot.size_gib
            if size_gib < snapshot.size_gib:
                raise InvalidRequest(
                    f"Invalid input received: volume size {size_gib} GiB is smaller than the "
                    f"snapshot's {snapshot.size_gib} GiB"
                )
            # Beside the snapshot: a clone of it there shares its blocks.
            flexvol = self.topology.get(snapshot.flexvol)
        elif request.source_volid is not None:
            source = self._visible(request.source_volid, caller)
            size_gib = _check_source(request, source)
            flexvol = placement.place_for_source(
                self.topology,
                source_id=source.id,
                source_flexvol=source.flexvol or "",
                source_file=Path(source.file or ""),
            )
        else:
            if request.size_gib is None:
                raise InvalidRequest("a volume needs a size, an image or a source volume")
            size_gib = request.size_gib
            flexvol = placement.place_empty(
                self.topology,
                requested=request.flexvol,
                provisioned=self._provisioned() if request.flexvol is None else {},
                allowed=allowed,
            )

        now = utcnow()
        record = VolumeRecord(
            id=str(uuid.uuid4()),
            name=request.name,
            status=VolumeStatus.CREATING,
            size_gib=size_gib,
            image_id=image.id if image else None,
            source_volid=source.id if source else None,
            snapshot_id=snapshot.id if snapshot else None,
            volume_type_id=volume_type.id,
            flexvol=flexvol.name,
            project_id=caller.project_id,
            user_id=caller.user_id,
            description=request.description,
            user_metadata=dict(request.metadata),
            availability_zone=request.availability_zone or DEFAULT_AVAILABILITY_ZONE,
            claimed_by=claimant,
            lease_expires_at=(
                now + dt.timedelta(seconds=self.settings.workers.lease_seconds)
                if claimant
                else None
            ),
            attempts=1 if claimant else 0,
        )
        with self._quota.room_for(record.project_id, volumes=1, gigabytes=size_gib) as session:
            session.add(record)
        log.info(
            "volume %s accepted: %d GiB on %s from %s",
            record.id,
            size_gib,
            flexvol.name,
            f"image {image.id}" if image else f"volume {source.id}" if source else "nothing",
        )
        return record

    def _provisioned(self) -> dict[str, int]:
        """Bytes promised to the volumes on each FlexVol: how full placement counts it."""
        statement = select(VolumeRecord.flexvol, func.sum(VolumeRecord.size_gib)).group_by(
            VolumeRecord.flexvol
        )
        with self._sessions() as session:
            return {
                flexvol: int(gib) * GiB
                for flexvol, gib in session.execute(statement)
                if flexvol is not None
            }

    # reading -------------------------------------------------------------------------------
    def list(self) -> list[VolumeRecord]:
        return self._records.list()

    def get(self, ref: str, *, caller: Caller = OPERATOR) -> VolumeRecord:
        """A volume by id, or (for the operator) by name when the name is unique."""
        return self._visible(ref, caller)

    def query(self, query: VolumeQuery, *, caller: Caller) -> tuple[list[VolumeRecord], bool]:
        """One page of the volumes ``caller`` may list; and whether more pages follow."""
        keys = sort_keys(query.sort, _SORT_COLUMNS)
        marker = None if query.marker is None else self._visible(query.marker, caller).id
        with self._sessions() as session:
            return fetch_page(
                session,
                self._listed(query, caller),
                id_column=VolumeRecord.id,
                keys=keys,
                marker_id=marker,
                limit=query.limit,
                # Metadata is JSON: filtered here rather than in SQL, which differs per database.
                keep=(lambda v: _has_metadata(v, query.metadata)) if query.metadata else None,
            )

    def count(self, query: VolumeQuery, *, caller: Caller) -> int:
        """How many volumes the query lists over all its pages (Cinder 3.45's ``count``)."""
        if query.metadata:
            everything = dataclasses.replace(query, limit=None, marker=None)
            return len(self.query(everything, caller=caller)[0])
        counted = self._listed(query, caller).with_only_columns(func.count(VolumeRecord.id))
        with self._sessions() as session:
            return int(session.scalar(counted) or 0)

    def _listed(self, query: VolumeQuery, caller: Caller) -> Select[tuple[VolumeRecord]]:
        """The volumes ``query`` lists (SQL filters only), in no order."""
        statement = select(VolumeRecord)
        if not (caller.sees_everything and query.all_projects):
            statement = statement.where(VolumeRecord.project_id == caller.project_id)
        elif query.project_id is not None:
            statement = statement.where(VolumeRecord.project_id == query.project_id)
        filters: list[tuple[Any, object]] = [
            (VolumeRecord.name, query.name),
            (VolumeRecord.status, query.status),
            (VolumeRecord.bootable, query.bootable),
        ]
        for column, value in filters:
            if value is not None:
                statement = statement.where(column == value)
        return statement

    def usage(self, project_id: str) -> Usage:
        return self._quota.usage(project_id)

    # changes -------------------------------------------------------------------------------
    def update(
        self,
        volume_id: str,
        *,
        caller: Caller,
        name: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        bootable: bool | None = None,
    ) -> VolumeRecord:
        record = self._visible(volume_id, caller)
        changes: dict[str, Any] = {}
        if bootable is not None:
            changes["bootable"] = bootable
        if name is not None:
            changes["name"] = name
        if description is not None:
            changes["description"] = description
        if metadata is not None:
            user_metadata.check(metadata)
            changes["user_metadata"] = dict(metadata)
        return self._records.update(record.id, **changes) if changes else record

    def set_metadata(
        self, volume_id: str, items: Mapping[str, str], *, replace: bool, caller: Caller
    ) -> VolumeRecord:
        """Merge ``items`` into the volume's metadata, or replace it with them."""
        record = self._visible(volume_id, caller)
        metadata = user_metadata.merged(record.user_metadata, items, replace=replace)
        return self._records.update(record.id, user_metadata=metadata)

    def delete_metadata(self, volume_id: str, key: str, *, caller: Caller) -> None:
        record = self._visible(volume_id, caller)
        metadata = user_metadata.without(record.user_metadata, key, owner=f"Volume {record.id}")
        self._records.update(record.id, user_metadata=metadata)

    def delete(
        self, ref: str, *, caller: Caller = OPERATOR, force: bool = False, cascade: bool = False
    ) -> VolumeRecord:
        """Delete an available or errored volume; ``force`` (Cinder's ``os-force_delete``,
        admins only) whatever its status, unless a server holds it. A worker making a
        force-deleted volume finds it gone when it writes the outcome and removes its file."""
        record = self._visible(ref, caller)
        if force:
            caller.require_admin("volume_extension:volume_admin_actions:force_delete")
            held = self.attachments.held_by(record.id)
            if held:
                raise Conflict(f"Invalid volume: volume {record.id} is in use{held}; detach it")
        snapshots = self.snapshots.of_volume(record.id)
        if snapshots and not cascade:
            raise Conflict(
                f"Invalid volume: volume {record.id} has {len(snapshots)} snapshot(s); delete "
                "them first, or delete with cascade (openstack volume delete --purge)"
            )
        if record.status not in _DELETABLE and not force:
            raise Conflict(
                f"Invalid volume: volume {record.id} is {record.status}"
                f"{self.attachments.held_by(record.id)}; it must be available or error to be "
                "deleted"
            )
        for snapshot in snapshots:  # cascade: the snapshots go first, as in Cinder
            self.snapshots.delete(snapshot.id)
        if record.flexvol:
            flexvol = self.topology.get(record.flexvol)
            VolumeTarget(volume_id=record.id, flexvol=flexvol, size_bytes=0).remove_files()
        self._records.delete(record.id)
        log.info("volume %s deleted", record.id)
        return record

    def copyable(self, ref: str, *, force: bool, caller: Caller, purpose: str) -> VolumeRecord:
        """A volume whose file may be copied now (a snapshot, an image of it): available,
        or in-use with ``force``, as Cinder has it; ``purpose`` ("snapshotted") says why."""
        record = self._visible(ref, caller)
        allowed = (
            (VolumeStatus.AVAILABLE, VolumeStatus.IN_USE) if force else (VolumeStatus.AVAILABLE,)
        )
        if record.status not in allowed or not record.file or not record.flexvol:
            hint = "" if force else " (an attached volume needs force)"
            raise Conflict(
                f"Invalid volume: volume {record.id} is {record.status}; it must be available "
                f"to be {purpose}{hint}"
            )
        return record

    def reset_status(
        self, ref: str, status: VolumeStatus, *, caller: Caller = OPERATOR
    ) -> VolumeRecord:
        """Cinder's ``os-reset_status`` (admins only): set the status, nothing else; for a
        volume an operator knows better about than its record (a worker making it learns of
        the change when it records its outcome, and leaves the record alone).

        Not to ``creating`` or ``downloading``: those mean "a worker may (re)make this
        volume from the start", which would wipe the file of a volume that is whole."""
        caller.require_admin("volume_extension:volume_admin_actions:reset_status")
        if status in IN_PROGRESS:
            raise InvalidRequest(
                f"Invalid status {status}: a volume reset to it would be made again from the "
                "start by a worker, its file wiped; reset to available or error"
            )
        record = self._visible(ref, caller)
        log.warning("volume %s: status reset from %s to %s", record.id, record.status, status)
        return self._records.update(record.id, status=status)

    def set_readonly(self, ref: str, readonly: bool, *, caller: Caller = OPERATOR) -> VolumeRecord:
        """Cinder's ``os-update_readonly_flag``: later attachments must be read-only."""
        record = self._visible(ref, caller)
        if record.status != VolumeStatus.AVAILABLE:  # attached volumes are in-use
            raise Conflict(
                f"Invalid volume: volume {record.id} is {record.status}; its read-only flag "
                "changes only while it is available and not attached"
            )
        return self._records.update(record.id, readonly=readonly)

    def extend(self, ref: str, new_size_gib: int, *, caller: Caller = OPERATOR) -> VolumeRecord:
        record = self._visible(ref, caller)
        if record.status != VolumeStatus.AVAILABLE or not record.file or not record.flexvol:
            raise Conflict(f"volume {record.id} is {record.status}; only available volumes extend")
        if new_size_gib <= record.size_gib:
            raise InvalidRequest(
                f"new size {new_size_gib} GiB must be larger than the current {record.size_gib} GiB"
            )
        growth = new_size_gib - record.size_gib
        # The new size is taken from the quota with the volume marked extending, in one
        # transaction: two extends cannot both take the last gigabytes, nor run at once.
        with self._quota.room_for(record.project_id, volumes=0, gigabytes=growth) as session:
            marked = session.execute(
                update(VolumeRecord)
                .where(VolumeRecord.id == record.id, VolumeRecord.status == VolumeStatus.AVAILABLE)
                .values(status=VolumeStatus.EXTENDING, size_gib=new_size_gib)
                .execution_options(synchronize_session=False)
            ).rowcount
        if not marked:
            raise Conflict(f"volume {record.id} changed meanwhile; only available volumes extend")
        flexvol = self.topology.get(record.flexvol)
        try:
            grow(
                flexvol,
                Path(record.file),
                file_format=record.file_format,
                size_bytes=new_size_gib * GiB,
            )
        except BootvolError:
            self._records.update(record.id, status=VolumeStatus.AVAILABLE, size_gib=record.size_gib)
            raise
        return self._records.update(record.id, status=VolumeStatus.AVAILABLE)

    def _visible(self, ref: str, caller: Caller) -> VolumeRecord:
        if caller.is_operator:
            return self._records.get(ref)
        record = self._records.get_by_id(ref)
        if record is None or not (caller.sees_everything or record.project_id == caller.project_id):
            raise NotFound(f"Volume {ref} could not be found.")
        return record


def _validate(request: VolumeCreate) -> None:
    if request.size_gib is not None and request.size_gib < 1:
        raise InvalidRequest(f"volume size must be at least 1 GiB (got {request.size_gib})")
    if request.image is not None and request.source_volid is not None:
        raise InvalidRequest("give one source: an image or a source volume, not both")
    if request.name is not None and len(request.name) > 255:
        raise InvalidRequest("a volume name is at most 255 characters")
    zone = request.availability_zone
    if zone is not None and zone != DEFAULT_AVAILABILITY_ZONE:
        raise InvalidRequest(f"Availability zone '{zone}' is invalid.")
    user_metadata.check(request.metadata)


def _check_image(request: VolumeCreate, image: ImageRecord) -> int:
    if image.status != ImageStatus.ACTIVE or not image.location:
        raise Conflict(f"image {image.id} is {image.status}; only active images make volumes")
    if request.size_gib is None:
        raise InvalidRequest("a volume from an image needs a size")
    size_bytes = request.size_gib * GiB
    if image.virtual_size and size_bytes < image.virtual_size:
        raise InvalidRequest(
            f"volume size {request.size_gib} GiB is smaller than image {image.name}'s "
            f"virtual size {image.virtual_size / GiB:.2f} GiB"
        )
    if request.size_gib < image.min_disk:
        raise InvalidRequest(
            f"volume size {request.size_gib} GiB is smaller than image {image.name}'s "
            f"min_disk of {image.min_disk} GiB"
        )
    return request.size_gib


def _check_source(request: VolumeCreate, source: VolumeRecord) -> int:
    if source.status != VolumeStatus.AVAILABLE or not source.file:
        raise Conflict(
            f"source volume {source.id} is {source.status}; only available volumes clone"
        )
    size_gib = request.size_gib if request.size_gib is not None else source.size_gib
    if size_gib < source.size_gib:
        raise InvalidRequest(
            f"volume size {size_gib} GiB is smaller than the source volume's {source.size_gib} GiB"
        )
    return size_gib


def _has_metadata(volume: VolumeRecord, metadata: Mapping[str, str]) -> bool:
    return all((volume.user_metadata or {}).get(k) == v for k, v in metadata.items())
