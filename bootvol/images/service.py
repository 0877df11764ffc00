"""Image records: create, upload, list, show, update, read, delete.

An image is either *stored* (its bytes uploaded to the image-store FlexVol, location is that
file) or *remote* (location is an http(s) URL whose bytes are downloaded when a volume
first needs them). Records live in the database; bytes go through ImageStore.

Who sees and lists what is bootvol.images.listing (Glance's rules; new images are
``shared``, Glance's default, and seen by their members). Changing or deleting takes the
owner or an admin; a visible image that the caller may not change answers Forbidden, an
invisible one ImageNotFound, so that a project learns nothing of another's private images.
Transfers of bytes hold a lease on their image (bootvol.images.leases).
The operator's CLI (OPERATOR) addresses images by id or unique name; the API by id only.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy.exc import IntegrityError

from bootvol.caller import OPERATOR, Caller
from bootvol.config import DownloadSettings, WebDownloadSettings
from bootvol.db.models import (
    ImageRecord,
    ImageStatus,
    Visibility,
)
from bootvol.db.records import Records
from bootvol.db.session import SessionFactory
from bootvol.errors import (
    BootvolError,
    Conflict,
    Forbidden,
    ImageNotFound,
    InvalidRequest,
    NotFound,
)
from bootvol.images.imports import ImageImports
from bootvol.images.inspect import DISK_FORMATS
from bootvol.images.leases import StaleTransfer, TransferLease, settle, stale_transfers
from bootvol.images.listing import ImageListing, ImageQuery
from bootvol.images.location import ImageLocation
from bootvol.images.patch import (
    CONTAINER_FORMATS,
    CORE,
    READ_ONLY,
    PatchOperation,
    apply_patch,
    check_visibility,
    is_reserved,
)
from bootvol.images.store import ImageStore, StoredImage
from bootvol.images.transfer import HASH_ALGO, Progress, read_chunks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageCreate:
    name: str
    disk_format: str | None  # None: the image stays queued until a patch sets it (Glance)
    container_format: str = "bare"
    url: str | None = None
    # Optional promises about a remote image, verified when it is downloaded.
    size: int | None = None
    checksum: str | None = None  # md5, Glance's checksum
    os_hash_value: str | None = None  # sha512, Glance's os_hash_value: verified instead of md5
    # Glance's fields, for images made through the API.
    id: str | None = None
    owner: str | None = None  # a project id; the caller's project when None
    visibility: Visibility | None = None  # private when owned, public otherwise
    protected: bool = False
    hidden: bool = False
    min_disk: int = 0
    min_ram: int = 0
    tags: Sequence[str] = ()
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageData:
    """An image's bytes, streamed."""

    size: int | None
    checksum: str | None
    chunks: Iterator[bytes]


class ImageService:
    def __init__(
        self,
        *,
        sessions: SessionFactory,
        store: ImageStore,
        web_download: WebDownloadSettings,
        download: DownloadSettings,
        lease_seconds: float,
    ) -> None:
        self._sessions = sessions
        self._lease_seconds = lease_seconds  # of transfers (bootvol.images.leases)
        self._records = Records(sessions, ImageRecord, kind="image", not_found=ImageNotFound)
        self.store = store
        self._listing = ImageListing(sessions)
        self.imports = ImageImports(
            sessions=sessions,
            store=store,
            writable=self._writable,
            activate=self._activate,
            filters=web_download,
            timeouts=download,
            lease_seconds=lease_seconds,
        )

    def create(self, request: ImageCreate, *, caller: Caller = OPERATOR) -> ImageRecord:
        _validate(request)
        owner = request.owner
        if owner is None and not caller.is_operator:
            owner = caller.project_id  # Glance: the image belongs to the request's project
        if owner != caller.project_id and not caller.sees_everything:
            raise Forbidden("You are not permitted to create images owned by another project")
        if request.visibility is not None:
            visibility = check_visibility(request.visibility, is_admin=caller.is_admin)
        else:
            # Glance's default: shared, so that the owner may add members without first
            # changing the visibility (with none, only the owner sees it).
            visibility = Visibility.SHARED if owner else Visibility.PUBLIC
        clash = sorted(
            name
            for name in request.properties
            if name in CORE or name in READ_ONLY or is_reserved(name)
        )
        if clash:
            raise Forbidden(f"Attribute '{clash[0]}' is reserved or read-only.")
        record = ImageRecord(
            id=request.id or str(uuid.uuid4()),
            name=request.name,
            disk_format=request.disk_format,
            container_format=request.container_format,
            status=ImageStatus.ACTIVE if request.url else ImageStatus.QUEUED,
            location=ImageLocation.remote(request.url) if request.url else None,
            size=request.size,
            # Lower case, as the hashes computed on download are compared with them.
            checksum=request.checksum.lower() if request.checksum else None,
            os_hash_algo=HASH_ALGO if request.os_hash_value else None,
            os_hash_value=request.os_hash_value.lower() if request.os_hash_value else None,
            owner=owner,
            visibility=visibility,
            protected=request.protected,
            hidden=request.hidden,
            min_disk=request.min_disk,
            min_ram=request.min_ram,
            tags=list(dict.fromkeys(request.tags)),
            properties=dict(request.properties),
        )
        try:
            self._records.add(record)
        except IntegrityError as exc:
            raise Conflict(f"an image with id {record.id} already exists") from exc
        log.info("image %s (%s) created, status %s", record.id, record.name, record.status)
        return record

    def upload(
        self,
        image_id: str,
        chunks: Iterable[bytes],
        *,
        expected_size: int | None = None,
        progress: Progress | None = None,
        caller: Caller = OPERATOR,
    ) -> ImageRecord:
        """Store the bytes of a queued image; on refusal the image is ``killed`` with why."""
        disk_format = self._writable(image_id, caller).disk_format
        if disk_format is None:
            raise InvalidRequest(
                "Properties disk_format, container_format must be set prior to saving data."
            )
        self._set_status(image_id, expect=ImageStatus.QUEUED, to=ImageStatus.SAVING)
        try:
            with TransferLease(
                self._sessions,
                image_id,
                status=ImageStatus.SAVING,
                lease_seconds=self._lease_seconds,
            ) as lease:
                stored = self.store.upload(
                    image_id,
                    chunks,
                    disk_format=disk_format,
                    expected_size=expected_size,
                    progress=progress,
                )
            if lease.lost:  # settled killed meanwhile, which takes no upload: drop the bytes
                self.store.delete(image_id)
                raise Conflict(
                    f"the upload of image {image_id} stalled past its lease and was given up; "
                    "delete the image and upload it again"
                )
        except BootvolError as exc:
            self._records.update(image_id, status=ImageStatus.KILLED, message=exc.message)
            raise
        except BaseException:
            self._records.update(image_id, status=ImageStatus.KILLED, message="upload interrupted")
            raise
        return self._activate(image_id, stored, expect=ImageStatus.SAVING)

    def create_from_volume(
        self, request: ImageCreate, source: Path, *, source_format: str, caller: Caller
    ) -> ImageRecord:
        """Cinder's upload-to-image: a new raw image of a volume's file, cloned into the
        image store where it shares the filesystem; a failure leaves no record and no file."""
        if request.disk_format != "raw":
            raise InvalidRequest(
                f"bootvol makes raw images of volumes, not {request.disk_format}: a raw image "
                "is a clone of the volume, and clones again into volumes"
            )
        record = self.create(request, caller=caller)
        try:
            stored = self.store.store_file(record.id, source, source_format=source_format)
        except BaseException:
            self._records.delete(record.id)
            raise
        return self._activate(record.id, stored)

    def release_abandoned(self) -> list[str]:
        """Settle the images whose transfer's process died (bootvol.images.leases): an
        upload ``killed``, a stage or an import back to ``queued``; their ids."""
        released = []
        for stale in stale_transfers(self._sessions, lease_seconds=self._lease_seconds):
            try:
                if not self._release(stale):
                    continue
            except Exception:  # the others are settled still; this one on the next round
                log.exception("settling image %s failed", stale.image_id)
                continue
            log.warning("image %s: its %s was abandoned; settled", stale.image_id, stale.status)
            released.append(stale.image_id)
        return released

    def _release(self, stale: StaleTransfer) -> bool:
        if stale.status != ImageStatus.SAVING:
            return self.imports.release(stale)
        message = (
            "upload interrupted: the process receiving it stopped; delete the image and "
            "upload it again"
        )
        if not settle(self._sessions, stale, to=ImageStatus.KILLED, message=message):
            return False
        self.store.delete(stale.image_id)  # bytes published before it could activate
        return True

    def _activate(
        self, image_id: str, stored: StoredImage, *, expect: ImageStatus | None = None
    ) -> ImageRecord:
        """The image is its stored bytes now: active, with their size and hashes (NotFound
        if it is gone, or with ``expect``, no longer in that status)."""
        return self._records.update(
            image_id,
            expect_status=expect,
            status=ImageStatus.ACTIVE,
            location=ImageLocation.stored(stored.path),
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

    def query(self, query: ImageQuery, *, caller: Caller) -> tuple[list[ImageRecord], bool]:
        """One page of the images ``caller`` may list; and whether more pages follow."""
        return self._listing.query(query, caller=caller)

    def get(self, ref: str, *, caller: Caller = OPERATOR) -> ImageRecord:
        """An image by id, or (for the operator) by name when the name is unique."""
        if caller.is_operator:
            return self._records.get(ref)
        record = self._listing.visible(self._records.get_by_id(ref), caller)
        if record is None:
            raise ImageNotFound(f"No image found with ID {ref}")
        return record

    def get_for_service(self, image_id: str, *, caller: Caller) -> ImageRecord:
        """An image by id as another OpenStack service asks for it (its locations).

        Glance's default ``fetch_image_location`` policy is its ``service_api`` rule (OSSN-0065:
        where the bytes lie is no user's business): ``role:service or role:admin`` since
        2026.1, the release whose Cinder asks as a ``[glance]`` service user; the admin part
        is kept for Cinders whose ``[glance]`` user is an admin.
        """
        return self._for_service(image_id, caller=caller, action="fetch_image_location")

    def add_location(self, image_id: str, *, caller: Caller) -> NoReturn:
        """Glance v2.17's add-location, which bootvol refuses: it keeps images' bytes itself.

        Cinder adds a location only after cloning a volume into a new image
        (``image_upload_use_cinder_backend``). A 400 becomes its ``Invalid``, after which it
        uploads the bytes instead; a 409 would fail the upload, and a 501 would make it try
        the older PATCH way.
        """
        self._for_service(image_id, caller=caller, action="add_image_location")
        raise InvalidRequest(
            "bootvol does not add locations to images: upload the image's data "
            f"(PUT /v2/images/{image_id}/file) or register a remote image by its URL"
        )

    def _for_service(self, image_id: str, *, caller: Caller, action: str) -> ImageRecord:
        # The role is checked first, so that others learn nothing of which ids exist. A
        # service user reads any project's image: Cinder asks with its own token (a user in
        # its service project) for the images of all its users. Glance would answer 404 for
        # another project's private image unless that user is also an admin.
        if not (caller.is_service or caller.is_admin):
            raise Forbidden(f"You are not authorized to complete {action} action.")
        record = self._records.get_by_id(image_id)
        if record is None:
            raise ImageNotFound(f"No image found with ID {image_id}")
        return record

    def update(
        self, image_id: str, operations: Iterable[PatchOperation], *, caller: Caller
    ) -> ImageRecord:
        """Apply a Glance JSON patch (see bootvol.images.patch)."""
        return self._patch(self._writable(image_id, caller), operations, caller=caller)

    def add_tag(self, image_id: str, tag: str, *, caller: Caller) -> ImageRecord:
        record = self._writable(image_id, caller)
        return self._set_tags(record, [*(record.tags or []), tag], caller=caller)

    def remove_tag(self, image_id: str, tag: str, *, caller: Caller) -> ImageRecord:
        record = self._writable(image_id, caller)
        if tag not in (record.tags or []):
            raise NotFound(f"Tag {tag} not found on image {record.id}")
        return self._set_tags(record, [t for t in record.tags or [] if t != tag], caller=caller)

    def _set_tags(self, record: ImageRecord, tags: list[str], *, caller: Caller) -> ImageRecord:
        operation = PatchOperation(op="replace", path="/tags", value=tags)
        return self._patch(record, [operation], caller=caller)

    def _patch(
        self, record: ImageRecord, operations: Iterable[PatchOperation], *, caller: Caller
    ) -> ImageRecord:
        changes, properties = apply_patch(
            status=record.status,
            properties=record.properties or {},
            operations=operations,
            is_admin=caller.sees_everything,
        )
        return self._records.update(record.id, **changes, properties=properties)

    def read(self, image_id: str, *, caller: Caller) -> ImageData | None:
        """The image's bytes; None while it has none (queued, saving or killed)."""
        record = self.get(image_id, caller=caller)
        if record.status == ImageStatus.DEACTIVATED and not caller.sees_everything:
            raise Forbidden(f"The requested image {record.id} has been deactivated.")
        if record.status not in (ImageStatus.ACTIVE, ImageStatus.DEACTIVATED):
            return None
        if not record.location:
            return None
        chunks = record.location.chunks(what=f"image {record.id}")
        return ImageData(size=record.size, checksum=record.checksum, chunks=chunks)

    def deactivate(self, image_id: str, *, caller: Caller) -> ImageRecord:
        """Glance's deactivate: an active image keeps its bytes, but serves no download
        (but to admins) and makes no new volume until reactivated."""
        return self._set_active(image_id, active=False, caller=caller)

    def reactivate(self, image_id: str, *, caller: Caller) -> ImageRecord:
        return self._set_active(image_id, active=True, caller=caller)

    def _set_active(self, image_id: str, *, active: bool, caller: Caller) -> ImageRecord:
        record = self._writable(image_id, caller)
        allowed = (ImageStatus.ACTIVE, ImageStatus.DEACTIVATED)
        if record.status not in allowed:
            action = "reactivate" if active else "deactivate"
            raise Forbidden(f"Not allowed to {action} image in status '{record.status}'")
        status = ImageStatus.ACTIVE if active else ImageStatus.DEACTIVATED
        log.info("image %s %s", record.id, "reactivated" if active else "deactivated")
        return self._records.update(record.id, status=status)

    def delete(self, ref: str, *, caller: Caller = OPERATOR) -> ImageRecord:
        record = self._writable(ref, caller)
        if not caller.is_operator and record.protected:
            raise Forbidden(f"Image {record.id} is protected and cannot be deleted.")
        self.store.delete(record.id)
        self._records.delete(record.id)
        log.info("image %s (%s) deleted", record.id, record.name)
        return record

    def _writable(self, image_id: str, caller: Caller) -> ImageRecord:
        record = self.get(image_id, caller=caller)
        if not caller.sees_everything and record.owner != caller.project_id:
            raise Forbidden(f"You are not permitted to modify image {record.id}")
        return record

    def _set_status(self, image_id: str, *, expect: ImageStatus, to: ImageStatus) -> ImageRecord:
        # Of two concurrent uploads exactly one proceeds.
        moved = self._records.move_status(image_id, expect=expect, to=to)
        record = self._records.get(image_id)
        if not moved:
            raise Conflict(
                f"image {image_id} is {record.status}; bytes can only be uploaded to a "
                f"{expect} image"
            )
        return record


def _validate(request: ImageCreate) -> None:
    if request.disk_format is None and request.url is not None:
        raise InvalidRequest("a remote image needs its disk_format: the download converts by it")
    if request.disk_format is not None and request.disk_format not in DISK_FORMATS:
        raise InvalidRequest(
            f"disk_format {request.disk_format!r} is not one of {', '.join(DISK_FORMATS)}"
        )
    if request.container_format not in CONTAINER_FORMATS:
        raise InvalidRequest(
            f"container_format {request.container_format!r} is not supported (only bare)"
        )
    if request.url is not None:
        ImageLocation.remote(request.url)  # refused unless http(s)
    elif request.checksum or request.os_hash_value or request.size is not None:
        # Uploaded bytes are measured and hashed as they arrive: nothing to promise.
        raise InvalidRequest("a size or hashes are promised only for a remote image (a URL)")
    for name, value, digits in (
        ("checksum (md5)", request.checksum, 32),
        (f"os_hash_value ({HASH_ALGO})", request.os_hash_value, 128),
    ):
        if value is not None and not re.fullmatch(f"[0-9a-fA-F]{{{digits}}}", value):
            raise InvalidRequest(f"{name} must be {digits} hexadecimal digits, not {value!r}")


def _read_file(path: Path) -> Iterable[bytes]:
    try:
        yield from read_chunks(path)
    except OSError as exc:
        raise InvalidRequest(f"cannot read {path}: {exc.strerror}") from exc
