"""Volume records and their lifecycle: accept, provision, list, show, update, extend, delete.

A creation has two halves. ``accept`` validates the request, checks the project's quota,
places the volume on a FlexVol and records it ``creating``, all at once and without moving
a byte; ``provision`` then makes it (from an image through the workflow, from another
volume, or empty) and always ends it ``available`` or ``error`` with a message, even when
interrupted; files of a failed creation are removed. The API accepts and lets a background
worker (bootvol.volumes.worker) provision; the CLI's ``create`` does both in turn.

Requests that cannot be honoured at all (unknown image, too small, over quota, no room)
raise in ``accept``, before any record exists. The cache cleaner runs on the FlexVol after
each creation from an image.

Who sees what (bootvol.caller.Caller): a project sees its own volumes only; admins see
any volume by id and list every project's with ``all_projects``. The operator's CLI
addresses volumes by id or unique name; the API by id only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bootvol.caller import OPERATOR, Caller
from bootvol.config import Settings
from bootvol.db.models import (
    DEFAULT_AVAILABILITY_ZONE,
    ImageRecord,
    ImageStatus,
    ProjectRecord,
    VolumeRecord,
    VolumeStatus,
    utcnow,
)
from bootvol.db.paginate import SortKey, page, sortable, values_at
from bootvol.db.records import Records
from bootvol.db.session import SessionFactory
from bootvol.errors import (
    BootvolError,
    ClaimLost,
    Conflict,
    InsufficientSpace,
    InvalidRequest,
    NotFound,
    QuotaExceeded,
)
from bootvol.images.service import ImageService
from bootvol.storage.flexvol import FlexVol
from bootvol.storage.topology import Topology
from bootvol.volumes.claims import Claim, Lease, finish, holds, this_process
from bootvol.volumes.cleaner import clean_flexvol
from bootvol.volumes.events import VolumeObserver
from bootvol.volumes.placement import check_room, choose_flexvol
from bootvol.volumes.sources import clone_volume, empty_volume
from bootvol.volumes.workflow import (
    ImageSource,
    ProvisionedVolume,
    VolumeTarget,
    Workflow,
    grow,
)

log = logging.getLogger(__name__)

GiB = 1 << 30

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


@dataclass(frozen=True)
class Usage:
    volumes: int
    gigabytes: int


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
        self.topology = topology
        self.images = images
        self.settings = settings
        self.observer = observer
        # Called after each accepted creation: a server's worker wakes on it.
        self.on_accept: list[Callable[[str], None]] = []
        # Quota checks and inserts of one process run one at a time; across processes the
        # project row's lock (FOR UPDATE, PostgreSQL) or SQLite's writer lock orders them.
        self._quota_lock = threading.Lock()

    # creation ------------------------------------------------------------------------------
    def create(self, request: VolumeCreate) -> VolumeRecord:
        """Create a volume synchronously (the CLI's way); returns it ``available`` or ``error``."""
        record = self.accept(request, caller=OPERATOR, claimant=this_process())
        return self.provision(record.id)

    def accept(
        self, request: VolumeCreate, *, caller: Caller, claimant: str | None = None
    ) -> VolumeRecord:
        """Validate, check quota, place and record the volume ``creating``; return at once.

        With ``claimant`` the record is born claimed by it (a synchronous creation), so no
        background worker picks it up.
        """
        _validate(request)
        image: ImageRecord | None = None
        source: VolumeRecord | None = None
        if request.image is not None:
            image = self.images.get(request.image, caller=caller)
            size_gib = self._check_image(request, image)
            flexvol = self._place_for_image(request, image)
        elif request.source_volid is not None:
            source = self._visible(request.source_volid, caller)
            size_gib = self._check_source(request, source)
            flexvol = self._place_for_source(source)
        else:
            if request.size_gib is None:
                raise InvalidRequest("a volume needs a size, an image or a source volume")
            size_gib = request.size_gib
            flexvol = self._place_empty(request)

        now = utcnow()
        record = VolumeRecord(
            id=str(uuid.uuid4()),
            name=request.name,
            status=VolumeStatus.CREATING,
            size_gib=size_gib,
            image_id=image.id if image else None,
            source_volid=source.id if source else None,
            flexvol=flexvol.name,
            project_id=caller.project_id,
            user_id=caller.user_id,
            description=request.description,
            user_metadata=dict(request.metadata),
            availability_zone=request.availability_zone or DEFAULT_AVAILABILITY_ZONE,
            claimed_by=claimant,
            claimed_at=now if claimant else None,
            lease_expires_at=(
                now + dt.timedelta(seconds=self.settings.workers.lease_seconds)
                if claimant
                else None
            ),
            attempts=1 if claimant else 0,
        )
        self._add_within_quota(record)
        log.info(
            "volume %s accepted: %d GiB on %s from %s",
            record.id,
            size_gib,
            flexvol.name,
            f"image {image.id}" if image else f"volume {source.id}" if source else "nothing",
        )
        for listener in self.on_accept:
            listener(record.id)
        return record

    def provision(self, volume_id: str) -> VolumeRecord:
        """Make an accepted volume; it ends ``available`` or ``error`` (with its message).

        The claim on it (bootvol.volumes.claims) is renewed while this runs, so that no
        other worker takes the volume over unless this process dies.
        """
        record = self._records.get_by_id(volume_id)
        if record is None:
            raise NotFound(f"volume {volume_id} disappeared before it was made")
        if record.status not in (VolumeStatus.CREATING, VolumeStatus.DOWNLOADING):
            raise Conflict(f"volume {volume_id} is {record.status}; only creating volumes are made")
        claim = None
        lease: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
        if record.claimed_by is not None:
            claim = Claim(volume_id=record.id, claimant=record.claimed_by, attempt=record.attempts)
            lease = Lease(self._sessions, claim, lease_seconds=self.settings.workers.lease_seconds)
        with lease:
            made = self._provision(record, claim)
        if record.image_id and record.flexvol:
            # After the outcome is written: the volume does not wait for the cleaner.
            self._clean_cache(self.topology.get(record.flexvol))
        return made

    def _provision(self, record: VolumeRecord, claim: Claim | None) -> VolumeRecord:
        max_attempts = self.settings.workers.max_attempts
        if record.attempts > max_attempts:
            return self._give_up(record, claim, max_attempts)
        source_kind = _source_kind(record)
        extra: dict[str, Any] = {}
        started = time.perf_counter()
        flexvol: FlexVol | None = None
        target: VolumeTarget | None = None
        try:
            flexvol = self.topology.get(record.flexvol or "")
            target = VolumeTarget(
                volume_id=record.id,
                flexvol=flexvol,
                size_bytes=record.size_gib * GiB,
                check_claim=lambda: self._check_claim(claim),
            )
            target.remove_files()  # left by a worker that died making this volume
            if record.image_id:
                made, extra = self._make_from_image(record, target, claim)
            elif record.source_volid:
                made, extra = self._make_from_volume(record, target)
            else:
                made = empty_volume(target=target)
        except BaseException as exc:
            message = _failure_message(exc, flexvol)
            if self._finish(record, claim, status=VolumeStatus.ERROR, message=message):
                if target is not None:
                    _remove_quietly(target)
                log.error("volume %s failed: %s", record.id, message)
                if self.observer is not None:
                    self.observer.volume_failed(source=source_kind)
            if not isinstance(exc, Exception):
                raise
            return self._records.get_by_id(record.id) or record
        provisioning = made.record.to_dict()
        if (
            self._finish(
                record,
                claim,
                status=VolumeStatus.AVAILABLE,
                file=str(made.file),
                file_format=made.file_format,
                provisioning=provisioning,
                message=None,
                **extra,
            )
            and self.observer is not None
        ):
            self.observer.volume_created(
                path=str(provisioning["path"]),
                seconds=time.perf_counter() - started,
                host_bytes=made.record.host_bytes,
            )
        return self._records.get_by_id(record.id) or record

    def _check_claim(self, claim: Claim | None) -> None:
        if claim is not None and not holds(self._sessions, claim):
            raise ClaimLost(
                f"volume {claim.volume_id}: {claim.claimant} lost its claim to another worker"
            )

    def _finish(self, record: VolumeRecord, claim: Claim | None, **values: Any) -> bool:
        """Record the outcome; False (and nothing written) when another worker took over."""
        if claim is None:
            self._records.update(record.id, **values)
            return True
        if finish(self._sessions, claim, **values):
            return True
        log.warning(
            "volume %s: %s stalled past its lease and another worker took the volume over; "
            "leaving the outcome to it",
            record.id,
            claim.claimant,
        )
        return False

    def _mark_downloading(self, record: VolumeRecord, claim: Claim | None) -> None:
        if not self._finish(record, claim, status=VolumeStatus.DOWNLOADING):
            raise ClaimLost(f"volume {record.id}: lost its claim before the download")

    def _give_up(
        self, record: VolumeRecord, claim: Claim | None, max_attempts: int
    ) -> VolumeRecord:
        """The workers that made this volume died ``max_attempts`` times: stop trying."""
        message = (
            f"the workers making this volume died {max_attempts} times (killed, out of memory "
            "or the node went down); see their logs, then delete the volume and create it again"
        )
        if self._finish(record, claim, status=VolumeStatus.ERROR, message=message):
            log.error("volume %s failed: %s", record.id, message)
            if record.flexvol:
                flexvol = self.topology.get(record.flexvol)
                VolumeTarget(volume_id=record.id, flexvol=flexvol, size_bytes=0).remove_files()
            if self.observer is not None:
                self.observer.volume_failed(source=_source_kind(record))
        return self._records.get_by_id(record.id) or record

    def _make_from_image(
        self, record: VolumeRecord, target: VolumeTarget, claim: Claim | None
    ) -> tuple[ProvisionedVolume, dict[str, Any]]:
        image = self.images.get(record.image_id or "")
        workflow = Workflow(
            topology=self.topology,
            clone_method=self.settings.clone_method,
            download=self.settings.download,
            on_download=lambda: self._mark_downloading(record, claim),
        )
        made = workflow.create_volume_from_image(target=target, image=_source(image))
        # Cinder marks a volume made from an image bootable and keeps what the image said of
        # itself (volume_image_metadata), so that it reads the same after the image is gone.
        return made, {"bootable": True, "image_metadata": _image_metadata(image)}

    def _make_from_volume(
        self, record: VolumeRecord, target: VolumeTarget
    ) -> tuple[ProvisionedVolume, dict[str, Any]]:
        source = self._records.get_by_id(record.source_volid or "")
        if source is None or source.status != VolumeStatus.AVAILABLE or not source.file:
            raise Conflict(f"source volume {record.source_volid} is gone or no longer available")
        made = clone_volume(
            source_id=source.id,
            source_file=Path(source.file),
            source_format=source.file_format,
            target=target,
            clone_method=self.settings.clone_method,
        )
        return made, {"bootable": source.bootable, "image_metadata": source.image_metadata}

    def _check_image(self, request: VolumeCreate, image: ImageRecord) -> int:
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

    def _check_source(self, request: VolumeCreate, source: VolumeRecord) -> int:
        if source.status != VolumeStatus.AVAILABLE or not source.file:
            raise Conflict(
                f"source volume {source.id} is {source.status}; only available volumes clone"
            )
        size_gib = request.size_gib if request.size_gib is not None else source.size_gib
        if size_gib < source.size_gib:
            raise InvalidRequest(
                f"volume size {size_gib} GiB is smaller than the source volume's "
                f"{source.size_gib} GiB"
            )
        return size_gib

    def _place_for_image(self, request: VolumeCreate, image: ImageRecord) -> FlexVol:
        file = _source(image).file
        raw_size = image.virtual_size or image.size or 0
        if request.flexvol is not None:
            flexvol = self._volume_flexvol(request.flexvol)
            check_room(flexvol, image_id=image.id, raw_size=raw_size)
            return flexvol
        placement = choose_flexvol(
            self.topology.volume_flexvols(),
            image_id=image.id,
            image_file=file,
            raw_size=raw_size,
        )
        log.info(
            "placing a volume of image %s on %s: %s",
            image.id,
            placement.flexvol.name,
            placement.reason,
        )
        return placement.flexvol

    def _place_for_source(self, source: VolumeRecord) -> FlexVol:
        """A clone lives where its source does: a reflink cannot cross filesystems."""
        flexvol = self.topology.get(source.flexvol or "")
        if not flexvol.capabilities.reflink and source.file:
            needed = Path(source.file).stat().st_blocks * 512
            available = flexvol.space().available_bytes
            if needed > available:
                raise InsufficientSpace(
                    f"FlexVol {flexvol.name} has {available / GiB:.2f} GiB available; a copy "
                    f"of volume {source.id} needs {needed / GiB:.2f} GiB"
                )
        return flexvol

    def _place_empty(self, request: VolumeCreate) -> FlexVol:
        """A sparse file takes no space: the FlexVol with the most available space."""
        if request.flexvol is not None:
            return self._volume_flexvol(request.flexvol)
        return max(self.topology.volume_flexvols(), key=lambda f: f.space().available_bytes)

    def _volume_flexvol(self, name: str) -> FlexVol:
        flexvol = self.topology.get(name)
        if not flexvol.holds_volumes:
            raise InvalidRequest(f"FlexVol {flexvol.name} does not hold volumes")
        return flexvol

    def _add_within_quota(self, record: VolumeRecord) -> None:
        with self._quota_lock, self._sessions.begin() as session:
            if record.project_id is not None:
                project = session.scalars(
                    select(ProjectRecord)
                    .where(ProjectRecord.id == record.project_id)
                    .with_for_update()
                ).first()
                if project is not None:
                    _check_quota(
                        project,
                        _usage(session, project.id),
                        new_volumes=1,
                        new_gigabytes=record.size_gib,
                    )
            session.add(record)

    def _clean_cache(self, flexvol: FlexVol) -> None:
        try:
            report = clean_flexvol(flexvol, self.settings.cache)
        except BootvolError as exc:
            log.warning("cache cleaner on %s: %s", flexvol.name, exc.message)
            return
        if report.evicted and self.observer is not None:
            self.observer.cache_evicted(
                flexvol=flexvol.name, entries=len(report.evicted), freed_bytes=report.freed_bytes
            )

    def clean_caches(self) -> None:
        """Run the cache cleaner on every FlexVol now (a server calls this periodically)."""
        for flexvol in self.topology:
            self._clean_cache(flexvol)

    # reading -------------------------------------------------------------------------------
    def list(self) -> list[VolumeRecord]:
        return self._records.list()

    def get(self, ref: str, *, caller: Caller = OPERATOR) -> VolumeRecord:
        """A volume by id, or (for the operator) by name when the name is unique."""
        return self._visible(ref, caller)

    def query(self, query: VolumeQuery, *, caller: Caller) -> tuple[list[VolumeRecord], bool]:
        """One page of the volumes ``caller`` may list; and whether more pages follow."""
        keys = [SortKey(_sort_column(key), ascending) for key, ascending in query.sort]
        if not any(key == "id" for key, _ in query.sort):
            keys.append(SortKey(_SORT_COLUMNS["id"], keys[-1].ascending if keys else False))
        statement = select(VolumeRecord)
        if not (caller.sees_everything and query.all_projects):
            statement = statement.where(VolumeRecord.project_id == caller.project_id)
        elif query.project_id is not None:
            statement = statement.where(VolumeRecord.project_id == query.project_id)
        for column, value in (
            (VolumeRecord.name, query.name),
            (VolumeRecord.status, query.status),
            (VolumeRecord.bootable, query.bootable),
        ):
            if value is not None:
                statement = statement.where(column == value)
        with self._sessions() as session:
            marker_values = None
            if query.marker is not None:
                marker = self._visible(query.marker, caller)
                marker_values = values_at(session, VolumeRecord.id, keys, marker.id)
            # Metadata is JSON: filtered here rather than in SQL, which differs per database.
            limit = None if query.limit is None or query.metadata else query.limit + 1
            statement = page(statement, keys=keys, marker_values=marker_values, limit=limit)
            volumes = list(session.scalars(statement))
        if query.metadata:
            volumes = [
                v
                for v in volumes
                if all((v.user_metadata or {}).get(k) == x for k, x in query.metadata.items())
            ]
        if query.limit is not None and len(volumes) > query.limit:
            return volumes[: query.limit], True
        return volumes, False

    def usage(self, project_id: str) -> Usage:
        with self._sessions() as session:
            return _usage(session, project_id)

    # changes -------------------------------------------------------------------------------
    def update(
        self,
        volume_id: str,
        *,
        caller: Caller,
        name: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> VolumeRecord:
        record = self._visible(volume_id, caller)
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = name
        if description is not None:
            changes["description"] = description
        if metadata is not None:
            changes["user_metadata"] = dict(metadata)
        return self._records.update(record.id, **changes) if changes else record

    def set_metadata(
        self, volume_id: str, items: Mapping[str, str], *, replace: bool, caller: Caller
    ) -> VolumeRecord:
        """Merge ``items`` into the volume's metadata, or replace it with them."""
        record = self._visible(volume_id, caller)
        metadata = {} if replace else dict(record.user_metadata or {})
        metadata.update(items)
        _validate_metadata(metadata)
        return self._records.update(record.id, user_metadata=metadata)

    def delete_metadata(self, volume_id: str, key: str, *, caller: Caller) -> None:
        record = self._visible(volume_id, caller)
        metadata = dict(record.user_metadata or {})
        if key not in metadata:
            raise NotFound(f"Volume {record.id} has no metadata with key {key}.")
        del metadata[key]
        self._records.update(record.id, user_metadata=metadata)

    def delete(self, ref: str, *, caller: Caller = OPERATOR) -> VolumeRecord:
        record = self._visible(ref, caller)
        if record.status not in _DELETABLE:
            raise Conflict(
                f"Invalid volume: volume {record.id} is {record.status}; it must be "
                "available or error to be deleted"
            )
        if record.flexvol:
            flexvol = self.topology.get(record.flexvol)
            VolumeTarget(volume_id=record.id, flexvol=flexvol, size_bytes=0).remove_files()
        self._records.delete(record.id)
        log.info("volume %s deleted", record.id)
        return record

    def extend(self, ref: str, new_size_gib: int, *, caller: Caller = OPERATOR) -> VolumeRecord:
        record = self._visible(ref, caller)
        if record.status != VolumeStatus.AVAILABLE or not record.file or not record.flexvol:
            raise Conflict(f"volume {record.id} is {record.status}; only available volumes extend")
        if new_size_gib <= record.size_gib:
            raise InvalidRequest(
                f"new size {new_size_gib} GiB must be larger than the current {record.size_gib} GiB"
            )
        if record.project_id is not None:
            with self._quota_lock, self._sessions() as session:
                project = session.get(ProjectRecord, record.project_id)
                if project is not None:
                    _check_quota(
                        project,
                        _usage(session, project.id),
                        new_volumes=0,
                        new_gigabytes=new_size_gib - record.size_gib,
                    )
        flexvol = self.topology.get(record.flexvol)
        size_bytes = new_size_gib * GiB
        self._records.update(record.id, status=VolumeStatus.EXTENDING)
        try:
            grow(flexvol, Path(record.file), file_format=record.file_format, size_bytes=size_bytes)
        except BootvolError:
            self._records.update(record.id, status=VolumeStatus.AVAILABLE)
            raise
        return self._records.update(record.id, status=VolumeStatus.AVAILABLE, size_gib=new_size_gib)

    def _visible(self, ref: str, caller: Caller) -> VolumeRecord:
        if caller.is_operator:
            return self._records.get(ref)
        record = self._records.get_by_id(ref)
        if record is None or not (caller.sees_everything or record.project_id == caller.project_id):
            raise NotFound(f"Volume {ref} could not be found.")
        return record


def _source_kind(record: VolumeRecord) -> str:
    return "image" if record.image_id else "volume" if record.source_volid else "empty"


def _remove_quietly(target: VolumeTarget) -> None:
    """Undo a failed creation's files; a FlexVol that broke may refuse even that."""
    try:
        target.remove_files()
    except OSError as exc:
        log.warning("volume %s: cannot remove its files: %s", target.volume_id, exc)


def _failure_message(exc: BaseException, flexvol: FlexVol | None) -> str:
    if isinstance(exc, BootvolError):
        return exc.message
    if isinstance(exc, OSError) and flexvol is not None:
        # errno names what broke on the FlexVol (EROFS, ENOSPC, EIO, ENOENT…).
        return (
            f"FlexVol {flexvol.name}: {exc.strerror or exc} ({exc.filename or flexvol.path}); "
            "check that it is mounted read-write with space available, then retry"
        )
    return f"interrupted: {exc!r}"


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
    _validate_metadata(request.metadata)


def _validate_metadata(metadata: Mapping[str, str]) -> None:
    for key, value in metadata.items():
        # Cinder's limits: string keys and values of at most 255 characters.
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidRequest("volume metadata keys and values must be strings")
        if not key or len(key) > 255 or len(value) > 255:
            raise InvalidRequest("volume metadata keys and values are 1 to 255 characters")


def _usage(session: Any, project_id: str) -> Usage:
    count, gigabytes = session.execute(
        select(
            func.count(VolumeRecord.id), func.coalesce(func.sum(VolumeRecord.size_gib), 0)
        ).where(VolumeRecord.project_id == project_id)
    ).one()
    return Usage(volumes=int(count), gigabytes=int(gigabytes))


def _check_quota(
    project: ProjectRecord, usage: Usage, *, new_volumes: int, new_gigabytes: int
) -> None:
    """Cinder's quota errors (VolumeLimitExceeded, VolumeSizeExceedsAvailableQuota)."""
    if project.quota_volumes >= 0 and usage.volumes + new_volumes > project.quota_volumes:
        raise QuotaExceeded(
            f"VolumeLimitExceeded: Maximum number of volumes allowed "
            f"({project.quota_volumes}) exceeded for quota 'volumes'."
        )
    if project.quota_gigabytes >= 0 and usage.gigabytes + new_gigabytes > project.quota_gigabytes:
        raise QuotaExceeded(
            f"VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed "
            f"gigabytes quota. Requested {new_gigabytes}G, quota is "
            f"{project.quota_gigabytes}G and {usage.gigabytes}G has been consumed."
        )


def _sort_column(key: str) -> Any:
    try:
        return _SORT_COLUMNS[key]
    except KeyError:
        known = ", ".join(sorted(_SORT_COLUMNS))
        raise InvalidRequest(f"Invalid sort key {key!r} (one of {known})") from None


def _image_metadata(image: ImageRecord) -> dict[str, str]:
    """Cinder's volume_image_metadata: the image's core fields and properties, as strings."""
    core = {
        "image_id": image.id,
        "image_name": image.name,
        "checksum": image.checksum,
        "container_format": image.container_format,
        "disk_format": image.disk_format,
        "min_disk": image.min_disk,
        "min_ram": image.min_ram,
        "size": image.size,
    }
    metadata = {key: str(value) for key, value in core.items() if value is not None}
    metadata.update({key: str(value) for key, value in (image.properties or {}).items()})
    return metadata


def _source(image: ImageRecord) -> ImageSource:
    return ImageSource(
        id=image.id,
        disk_format=image.disk_format,
        location=image.location or "",
        size=image.size,
        md5=image.checksum,
        sha512=image.os_hash_value,
    )
