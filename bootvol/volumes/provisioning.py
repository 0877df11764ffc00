"""Making an accepted volume: claim → workflow → outcome written under the claim.

``Provisioner.provision`` makes a ``creating`` volume from its image (the flowchart,
bootvol.volumes.workflow), from another volume, or empty (bootvol.volumes.sources), and
always ends it ``available`` or ``error`` with a message, even when interrupted; the files
of a failed creation are removed. While it works, the claim on the volume (see
bootvol.volumes.claims) is renewed, the volume file is made only while the claim still
holds (asked of the database when less than half of the lease remains), and the
outcome is written only under it: a worker that stalled past its lease
leaves the volume to its new holder. A volume whose makers died ``max_attempts`` times ends
``error`` without another try. The cache cleaner runs on the FlexVol after each creation
from an image, once the outcome is written.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

from bootvol.config import Settings
from bootvol.db.models import (
    ImageRecord,
    SnapshotRecord,
    SnapshotStatus,
    VolumeRecord,
    VolumeStatus,
)
from bootvol.db.records import Records
from bootvol.db.session import SessionFactory
from bootvol.errors import BootvolError, ClaimLost, Conflict, NotFound
from bootvol.images.location import ImageLocation
from bootvol.images.service import ImageService
from bootvol.storage.flexvol import FlexVol
from bootvol.storage.topology import Topology
from bootvol.units import GiB
from bootvol.volumes.claims import (
    IN_PROGRESS,
    Claim,
    Lease,
    VolumeOutcome,
    finish,
    holds,
    mark_downloading,
)
from bootvol.volumes.cleaner import clean_flexvol
from bootvol.volumes.events import VolumeObserver
from bootvol.volumes.sources import clone_volume, empty_volume
from bootvol.volumes.volume_file import VolumeTarget
from bootvol.volumes.workflow import ImageSource, Workflow

log = logging.getLogger(__name__)


class Provisioner:
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
        self._snapshots = Records(sessions, SnapshotRecord, kind="snapshot")
        self._topology = topology
        self._images = images
        self._settings = settings
        self._observer = observer

    def provision(
        self,
        volume_id: str,
        *,
        accepted: VolumeRecord | None = None,
        claimed: Claim | None = None,
    ) -> VolumeRecord:
        """Make an accepted volume; it ends ``available`` or ``error`` (with its message).

        ``accepted`` is the record ``VolumeService.accept`` just wrote, when the caller
        makes the volume at once (a synchronous creation): it is not read again.
        ``claimed`` is the claim a worker won: if the record names another by now (taken
        over before this read), the volume is left to its holder."""
        record = accepted if accepted is not None else self._records.get_by_id(volume_id)
        if record is None:
            raise NotFound(f"volume {volume_id} disappeared before it was made")
        if record.status not in IN_PROGRESS:
            raise Conflict(f"volume {volume_id} is {record.status}; only creating volumes are made")
        claim = lease = None
        if record.claimed_by is not None:
            claim = Claim(volume_id=record.id, claimant=record.claimed_by, attempt=record.attempts)
            if claimed is not None and claim != claimed:
                log.warning("volume %s: taken over before %s began; leaving it", record.id, claimed)
                return record
            lease = Lease(
                self._sessions,
                claim,
                lease_seconds=self._settings.workers.lease_seconds,
                expires_at=record.lease_expires_at,
            )
        with lease or contextlib.nullcontext():
            written = self._make(record, claim, lease)
        if record.image_id and record.flexvol:
            # After the outcome is written: the volume does not wait for the cleaner.
            self._clean_cache(self._topology.get(record.flexvol))
        if written is None:  # taken over, reset or force-deleted meanwhile
            now = self._records.get_by_id(record.id)
            if now is None and record.flexvol:  # force-deleted: the file made is nobody's
                flexvol = self._topology.get(record.flexvol)
                _remove_quietly(VolumeTarget(volume_id=record.id, flexvol=flexvol, size_bytes=0))
            return now or record
        return written

    def clean_caches(self) -> None:
        """Run the cache cleaner on every FlexVol now (a server calls this periodically)."""
        for flexvol in self._topology:
            self._clean_cache(flexvol)

    def _make(
        self, record: VolumeRecord, claim: Claim | None, lease: Lease | None
    ) -> VolumeRecord | None:
        """Make the volume and write its outcome; the volume as written (None when another
        worker took it over)."""
        max_attempts = self._settings.workers.max_attempts
        if record.attempts > max_attempts:
            return self._give_up(record, claim, max_attempts)
        started = time.perf_counter()
        flexvol: FlexVol | None = None
        target: VolumeTarget | None = None
        try:
            flexvol = self._topology.get(record.flexvol or "")
            target = VolumeTarget(
                volume_id=record.id,
                flexvol=flexvol,
                size_bytes=record.size_gib * GiB,
                check_claim=lambda: self._check_claim(claim, lease),
            )
            target.remove_files()  # left by a worker that died making this volume
            if record.image_id:
                outcome = self._make_from_image(record, target, claim)
            elif record.source_volid:
                outcome = self._make_from_volume(record, target)
            elif record.snapshot_id:
                outcome = self._make_from_snapshot(record, target)
            else:
                outcome = VolumeOutcome(
                    status=VolumeStatus.AVAILABLE, made=empty_volume(target=target)
                )
        except BaseException as exc:
            message = _failure_message(exc, flexvol)
            written = self._finish(record, claim, VolumeOutcome.failed(message))
            if written is not None:
                if target is not None:
                    _remove_quietly(target)
                log.error("volume %s failed: %s", record.id, message)
                if self._observer is not None:
                    self._observer.volume_failed(source=_source_kind(record))
            if not isinstance(exc, Exception):
                raise
            return written
        written = self._finish(record, claim, outcome)
        if written is not None and self._observer is not None:
            assert outcome.made is not None
            provisioning = outcome.made.record
            self._observer.volume_created(
                path=str(provisioning.path),
                seconds=time.perf_counter() - started,
                host_bytes=provisioning.host_bytes,
            )
        return written

    def _make_from_image(
        self, record: VolumeRecord, target: VolumeTarget, claim: Claim | None
    ) -> VolumeOutcome:
        image = self._images.get(record.image_id or "")
        workflow = Workflow(
            topology=self._topology,
            clone_method=self._settings.clone_method,
            download=self._settings.download,
            layout=self._settings.cache.layout,
            on_download=lambda: self._mark_downloading(record, claim),
        )
        made = workflow.create_volume_from_image(target=target, image=image_source(image))
        # Cinder marks a volume made from an image bootable and keeps what the image said of
        # itself (volume_image_metadata), so that it reads the same after the image is gone.
        return VolumeOutcome(
            status=VolumeStatus.AVAILABLE,
            made=made,
            bootable=True,
            image_metadata=_image_metadata(image),
        )

    def _make_from_snapshot(self, record: VolumeRecord, target: VolumeTarget) -> VolumeOutcome:
        snapshot = self._snapshots.get_by_id(record.snapshot_id or "")
        if snapshot is None or snapshot.status != SnapshotStatus.AVAILABLE or not snapshot.file:
            raise Conflict(f"snapshot {record.snapshot_id} is gone or no longer available")
        made = clone_volume(
            source_id=snapshot.id,
            source_file=Path(snapshot.file),
            source_format=snapshot.file_format,
            target=target,
            clone_method=self._settings.clone_method,
        )
        made.record.source = f"snapshot {snapshot.id} (of volume {snapshot.volume_id})"
        # Cinder: a volume from a snapshot is bootable when the snapshot's volume was.
        origin = self._records.get_by_id(snapshot.volume_id)
        return VolumeOutcome(
            status=VolumeStatus.AVAILABLE,
            made=made,
            bootable=bool(origin and origin.bootable),
            image_metadata=origin.image_metadata if origin else None,
        )

    def _make_from_volume(self, record: VolumeRecord, target: VolumeTarget) -> VolumeOutcome:
        source = self._records.get_by_id(record.source_volid or "")
        if source is None or source.status != VolumeStatus.AVAILABLE or not source.file:
            raise Conflict(f"source volume {record.source_volid} is gone or no longer available")
        made = clone_volume(
            source_id=source.id,
            source_file=Path(source.file),
            source_format=source.file_format,
            target=target,
            clone_method=self._settings.clone_method,
        )
        return VolumeOutcome(
            status=VolumeStatus.AVAILABLE,
            made=made,
            bootable=source.bootable,
            image_metadata=source.image_metadata,
        )

    def _check_claim(self, claim: Claim | None, lease: Lease | None) -> None:
        if lease is not None and lease.certainly_held():
            return  # a query less on every clone: nobody can have taken it over yet
        if claim is not None and not holds(self._sessions, claim):
            raise ClaimLost(
                f"volume {claim.volume_id}: {claim.claimant} lost its claim to another worker"
            )

    def _finish(
        self, record: VolumeRecord, claim: Claim | None, outcome: VolumeOutcome
    ) -> VolumeRecord | None:
        """Record the outcome: the volume as written, or None (and nothing written) when
        another worker took over."""
        if claim is None:
            return self._records.update(record.id, **outcome.columns())
        written = finish(self._sessions, claim, outcome)
        if written is None:
            log.warning(
                "volume %s: %s stalled past its lease and another worker took the volume "
                "over; leaving the outcome to it",
                record.id,
                claim.claimant,
            )
        return written

    def _mark_downloading(self, record: VolumeRecord, claim: Claim | None) -> None:
        if claim is None:
            self._records.update(record.id, status=VolumeStatus.DOWNLOADING)
        elif not mark_downloading(self._sessions, claim):
            raise ClaimLost(f"volume {record.id}: lost its claim before the download")

    def _give_up(
        self, record: VolumeRecord, claim: Claim | None, max_attempts: int
    ) -> VolumeRecord | None:
        """The workers that made this volume died ``max_attempts`` times: stop trying."""
        message = (
            f"the workers making this volume died {max_attempts} times (killed, out of memory "
            "or the node went down); see their logs, then delete the volume and create it again"
        )
        written = self._finish(record, claim, VolumeOutcome.failed(message))
        if written is not None:
            log.error("volume %s failed: %s", record.id, message)
            if record.flexvol:
                flexvol = self._topology.get(record.flexvol)
                VolumeTarget(volume_id=record.id, flexvol=flexvol, size_bytes=0).remove_files()
            if self._observer is not None:
                self._observer.volume_failed(source=_source_kind(record))
        return written

    def _clean_cache(self, flexvol: FlexVol) -> None:
        try:
            report = clean_flexvol(flexvol, self._settings.cache)
        except BootvolError as exc:
            log.warning("cache cleaner on %s: %s", flexvol.name, exc.message)
            return
        if report.evicted and self._observer is not None:
            self._observer.cache_evicted(
                flexvol=flexvol.name, entries=len(report.evicted), freed_bytes=report.freed_bytes
            )


def _source_kind(record: VolumeRecord) -> str:
    if record.snapshot_id:
        return "snapshot"
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


def image_source(image: ImageRecord) -> ImageSource:
    """What the workflow needs to know of an image, from its record."""
    if image.disk_format is None:
        raise Conflict(f"image {image.id} has no disk_format yet ({image.status}); set it first")
    return ImageSource(
        id=image.id,
        disk_format=image.disk_format,
        location=_location(image),
        size=image.size,
        md5=image.checksum,
        sha512=image.os_hash_value,
    )


def _location(image: ImageRecord) -> ImageLocation:
    if image.location is None:
        raise Conflict(f"image {image.id} has no bytes yet ({image.status}); upload them first")
    return image.location
