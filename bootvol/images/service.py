"""Image records: create, upload, list, show, delete.

An image is either *stored* (its bytes uploaded to the image-store FlexVol, location is that
file) or *remote* (location is an http(s) URL whose bytes are downloaded when a volume
first needs them). Records live in the database; bytes go through ImageStore.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from bootvol.db.models import ImageRecord, ImageStatus
from bootvol.db.records import Records
from bootvol.db.session import SessionFactory
from bootvol.errors import BootvolError, Conflict, InvalidRequest
from bootvol.images.inspect import DISK_FORMATS
from bootvol.images.store import ImageStore
from bootvol.images.transfer import HASH_ALGO, Progress, read_chunks

log = logging.getLogger(__name__)

CONTAINER_FORMATS = ("bare",)


@dataclass(frozen=True)
class ImageCreate:
    name: str
    disk_format: str
    container_format: str = "bare"
    url: str | None = None
    # Optional promises about a remote image, verified when it is downloaded.
    size: int | None = None
    checksum: str | None = None


class ImageService:
    def __init__(self, *, sessions: SessionFactory, store: ImageStore) -> None:
        self._records = Records(sessions, ImageRecord, kind="image")
        self.store = store

    def create(self, request: ImageCreate) -> ImageRecord:
        _validate(request)
        record = ImageRecord(
            id=str(uuid.uuid4()),
            name=request.name,
            disk_format=request.disk_format,
            container_format=request.container_format,
            status=ImageStatus.ACTIVE if request.url else ImageStatus.QUEUED,
            location=request.url,
            size=request.size,
            checksum=request.checksum,
        )
        self._records.add(record)
        log.info("image %s (%s) created, status %s", record.id, record.name, record.status)
        return record

    def upload(
        self,
        image_id: str,
        chunks: Iterable[bytes],
        *,
        expected_size: int | None = None,
        progress: Progress | None = None,
    ) -> ImageRecord:
        """Store the bytes of a queued image; on refusal the image is ``killed`` with why."""
        record = self._set_status(image_id, expect=ImageStatus.QUEUED, to=ImageStatus.SAVING)
        try:
            stored = self.store.upload(
                image_id,
                chunks,
                disk_format=record.disk_format,
                expected_size=expected_size,
                progress=progress,
            )
        except BootvolError as exc:
            self._records.update(image_id, status=ImageStatus.KILLED, message=exc.message)
            raise
        except BaseException:
            self._records.update(image_id, status=ImageStatus.KILLED, message="upload interrupted")
            raise
        return self._records.update(
            image_id,
            status=ImageStatus.ACTIVE,
            location=str(stored.path),
            size=stored.digest.size,
            virtual_size=stored.virtual_size,
            checksum=stored.digest.md5,
            os_hash_algo=HASH_ALGO,
            os_hash_value=stored.digest.sha512,
            message=None,
        )

    def create_from_file(
        self, request: ImageCreate, path: Path, *, progress: Progress | None = None
    ) -> ImageRecord:
        """Create and upload in one go; a refused upload leaves no record and no file."""
        record = self.create(request)
        try:
            return self.upload(
                record.id, _read_file(path), expected_size=path.stat().st_size, progress=progress
            )
        except BaseException:
            self._records.delete(record.id)
            raise

    def list(self) -> list[ImageRecord]:
        return self._records.list()

    def get(self, ref: str) -> ImageRecord:
        """An image by id, or by name when the name is unique."""
        return self._records.get(ref)

    def delete(self, ref: str) -> ImageRecord:
        record = self.get(ref)
        self.store.delete(record.id)
        self._records.delete(record.id)
        log.info("image %s (%s) deleted", record.id, record.name)
        return record

    def _set_status(self, image_id: str, *, expect: ImageStatus, to: ImageStatus) -> ImageRecord:
        record = self._records.get(image_id)
        if record.status != expect:
            raise Conflict(
                f"image {image_id} is {record.status}; bytes can only be uploaded to a "
                f"{expect} image"
            )
        return self._records.update(image_id, status=to)


def _validate(request: ImageCreate) -> None:
    if request.disk_format not in DISK_FORMATS:
        raise InvalidRequest(
            f"disk_format {request.disk_format!r} is not one of {', '.join(DISK_FORMATS)}"
        )
    if request.container_format not in CONTAINER_FORMATS:
        raise InvalidRequest(
            f"container_format {request.container_format!r} is not supported (only bare)"
        )
    if request.url is not None and urlparse(request.url).scheme not in ("http", "https"):
        raise InvalidRequest(f"image URL {request.url!r} must be http:// or https://")


def _read_file(path: Path) -> Iterable[bytes]:
    try:
        yield from read_chunks(path)
    except OSError as exc:
        raise InvalidRequest(f"cannot read {path}: {exc.strerror}") from exc
