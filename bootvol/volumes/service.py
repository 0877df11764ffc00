"""Volume records and their lifecycle: create from an image, list, show, extend, delete.

A creation is recorded ``creating`` before any byte moves, and always ends ``available`` or
``error`` with a message, even when interrupted; files of a failed creation are removed by
the workflow. The cache cleaner runs on the FlexVol after each creation.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

from bootvol.config import Settings
from bootvol.db.models import ImageRecord, ImageStatus, VolumeRecord, VolumeStatus
from bootvol.db.records import Records
from bootvol.db.session import SessionFactory
from bootvol.errors import BootvolError, Conflict, InvalidRequest
from bootvol.images.service import ImageService
from bootvol.storage import qemu_img
from bootvol.storage.flexvol import FlexVol
from bootvol.storage.topology import Topology
from bootvol.volumes.cleaner import clean_flexvol
from bootvol.volumes.placement import check_room, choose_flexvol
from bootvol.volumes.workflow import ImageSource, VolumeTarget, Workflow

log = logging.getLogger(__name__)

GiB = 1 << 30


@dataclass(frozen=True)
class VolumeCreate:
    image: str  # id or name
    size_gib: int
    name: str | None = None
    flexvol: str | None = None  # let placement choose when None


class VolumeService:
    def __init__(
        self,
        *,
        sessions: SessionFactory,
        topology: Topology,
        images: ImageService,
        settings: Settings,
    ) -> None:
        self._records = Records(sessions, VolumeRecord, kind="volume")
        self.topology = topology
        self.images = images
        self.settings = settings

    def create(self, request: VolumeCreate) -> VolumeRecord:
        """Create a volume from an image, synchronously; returns it ``available`` or ``error``.

        Requests that cannot be honoured at all (unknown image, too small, no room) raise
        before any record exists.
        """
        if request.size_gib < 1:
            raise InvalidRequest(f"volume size must be at least 1 GiB (got {request.size_gib})")
        image = self.images.get(request.image)
        if image.status != ImageStatus.ACTIVE or not image.location:
            raise Conflict(f"image {image.id} is {image.status}; only active images make volumes")
        size_bytes = request.size_gib * GiB
        raw_size = image.virtual_size or image.size or 0
        if image.virtual_size and size_bytes < image.virtual_size:
            raise InvalidRequest(
                f"volume size {request.size_gib} GiB is smaller than image {image.name}'s "
                f"virtual size {image.virtual_size / GiB:.2f} GiB"
            )
        flexvol = self._place(request, image, raw_size)

        record = VolumeRecord(
            id=str(uuid.uuid4()),
            name=request.name,
            status=VolumeStatus.CREATING,
            size_gib=request.size_gib,
            image_id=image.id,
            flexvol=flexvol.name,
        )
        self._records.add(record)
        target = VolumeTarget(volume_id=record.id, flexvol=flexvol, size_bytes=size_bytes)
        workflow = Workflow(
            topology=self.topology,
            clone_method=self.settings.clone_method,
            on_download=lambda: self._records.update(record.id, status=VolumeStatus.DOWNLOADING),
        )
        try:
            made = workflow.create_volume_from_image(target=target, image=_source(image))
        except BaseException as exc:
            target.remove_files()
            message = exc.message if isinstance(exc, BootvolError) else f"interrupted: {exc!r}"
            log.error("volume %s failed: %s", record.id, message)
            record = self._records.update(record.id, status=VolumeStatus.ERROR, message=message)
            if not isinstance(exc, Exception):
                raise
            return record
        finally:
            self._clean_cache(flexvol.name)
        return self._records.update(
            record.id,
            status=VolumeStatus.AVAILABLE,
            file=str(made.file),
            file_format=made.file_format,
            provisioning=made.record.to_dict(),
        )

    def _place(self, request: VolumeCreate, image: ImageRecord, raw_size: int) -> FlexVol:
        file = _source(image).file
        if request.flexvol is not None:
            flexvol = self.topology.get(request.flexvol)
            if not flexvol.holds_volumes:
                raise InvalidRequest(f"FlexVol {flexvol.name} does not hold volumes")
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

    def _clean_cache(self, flexvol_name: str) -> None:
        try:
            clean_flexvol(self.topology.get(flexvol_name), self.settings.cache)
        except BootvolError as exc:
            log.warning("cache cleaner on %s: %s", flexvol_name, exc.message)

    def list(self) -> list[VolumeRecord]:
        return self._records.list()

    def get(self, ref: str) -> VolumeRecord:
        """A volume by id, or by name when the name is unique."""
        return self._records.get(ref)

    def delete(self, ref: str) -> VolumeRecord:
        record = self.get(ref)
        if record.status in (VolumeStatus.CREATING, VolumeStatus.DOWNLOADING):
            raise Conflict(f"volume {record.id} is {record.status}; wait for it to finish")
        if record.flexvol:
            flexvol = self.topology.get(record.flexvol)
            VolumeTarget(volume_id=record.id, flexvol=flexvol, size_bytes=0).remove_files()
        self._records.delete(record.id)
        log.info("volume %s deleted", record.id)
        return record

    def extend(self, ref: str, new_size_gib: int) -> VolumeRecord:
        record = self.get(ref)
        if record.status != VolumeStatus.AVAILABLE or not record.file or not record.flexvol:
            raise Conflict(f"volume {record.id} is {record.status}; only available volumes extend")
        if new_size_gib <= record.size_gib:
            raise InvalidRequest(
                f"new size {new_size_gib} GiB must be larger than the current {record.size_gib} GiB"
            )
        flexvol = self.topology.get(record.flexvol)
        size_bytes = new_size_gib * GiB
        self._records.update(record.id, status=VolumeStatus.EXTENDING)
        try:
            if record.file_format == "raw":
                flexvol.extend(Path(record.file), size_bytes)
            else:
                qemu_img.resize(
                    Path(record.file), image_format=record.file_format, size_bytes=size_bytes
                )
        except BootvolError:
            self._records.update(record.id, status=VolumeStatus.AVAILABLE)
            raise
        return self._records.update(record.id, status=VolumeStatus.AVAILABLE, size_gib=new_size_gib)


def _source(image: ImageRecord) -> ImageSource:
    return ImageSource(
        id=image.id,
        disk_format=image.disk_format,
        location=image.location or "",
        size=image.size,
        md5=image.checksum,
        sha512=image.os_hash_value,
    )
