"""Glance's interoperable image import: stage bytes, then import them in the background.

Glance's api-ref ("Interoperable image import") has two steps for a queued image: stage its
bytes (``PUT /v2/images/{id}/stage``, glance-direct), or name a URL (web-download); then
``POST /v2/images/{id}/import``, answered 202 while a task checks and stores the bytes.
bootvol serves the two methods that need no second Glance or store:

    queued ──stage──▶ uploading ──import (glance-direct)──▶ importing ──▶ active
      │                  │                                      │
      └──import (web-download)──────────────────────────────────┘
    a failed stage, or a failed import:            back to queued, with the reason

Invariants, on top of ImageStore's on-disk ones:

* The status is the import's lock: each step moves it with one conditional UPDATE from the
  status it requires, so that of two concurrent requests exactly one proceeds (the other
  gets Glance's 409).
* ``uploading`` means staged bytes exist or are arriving; ``importing`` means a background
  task owns the image. Staged and downloaded bytes pass ImageStore's checks exactly as an
  upload's (format inspection and the safety checks; a stage's announced size), and are
  hashed (md5, sha512) for the record.
* A web-download URL, and every redirect it leads to, passes [web_download]'s filters
  (Glance's import filtering: ports 80 and 443 by default): a project names the URL, and
  bootvol fetches it from inside the operator's network.
* A failure leaves the image ``queued`` (as Glance's import flow reverts it), with no staged
  or stored file, and says why in ``message`` and in the reserved property
  IMPORT_ERROR_PROPERTY, which ``openstack image show`` lists; a new import clears it.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from bootvol.caller import Caller
from bootvol.config import DownloadSettings, WebDownloadSettings
from bootvol.db.models import ImageRecord, ImageStatus
from bootvol.db.records import Records
from bootvol.db.session import SessionFactory
from bootvol.errors import BootvolError, Conflict, ImageNotFound, InvalidRequest, NotFound
from bootvol.images.leases import StaleTransfer, TransferLease, settle
from bootvol.images.location import ImageLocation, http_chunks
from bootvol.images.store import ImageStore, StoredImage

log = logging.getLogger(__name__)

# In Glance's reserved os_glance_* namespace (clients can neither set nor remove it), where
# Glance keeps its own import state (os_glance_import_task, os_glance_failed_import).
IMPORT_ERROR_PROPERTY = "os_glance_import_error"
# Glance runs import tasks in a small pool (its tasks_pool); two match this project's hosts.
_IMPORT_WORKERS = 2


class ImportMethod(enum.StrEnum):
    GLANCE_DIRECT = "glance-direct"  # the bytes were staged with PUT …/stage
    WEB_DOWNLOAD = "web-download"  # the bytes are fetched from an http(s) URL


@dataclass(frozen=True)
class ImportRequest:
    """The body of ``POST /v2/images/{id}/import``, validated as Glance does."""

    method: ImportMethod
    uri: str | None = None

    @classmethod
    def parse(cls, *, method: str | None, uri: str | None) -> ImportRequest:
        if method is None:
            raise InvalidRequest("Import request requires a 'name' field.")
        try:
            chosen = ImportMethod(method)
        except ValueError:
            raise InvalidRequest(f"Unknown import method name '{method}'.") from None
        if chosen is ImportMethod.WEB_DOWNLOAD and uri is None:
            raise InvalidRequest(
                "URI for web-download does not pass filtering: None (give method.uri, "
                "an http:// or https:// URL)"
            )
        if chosen is not ImportMethod.WEB_DOWNLOAD and uri is not None:
            raise InvalidRequest(f"the uri is for the web-download method only, not {method}")
        return cls(method=chosen, uri=uri)


# ImageService's rules, lent to this module so that there is one of each:
WritableImage = Callable[[str, Caller], ImageRecord]  # ImageNotFound / Forbidden, as Glance


class Activate(Protocol):
    """The image is its stored bytes now; NotFound if it is gone or not in ``expect``."""

    def __call__(
        self, image_id: str, stored: StoredImage, *, expect: ImageStatus | None = None
    ) -> ImageRecord: ...


class ImageImports:
    """Stage and import the bytes of queued images (see the module docstring)."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        store: ImageStore,
        writable: WritableImage,
        activate: Activate,
        filters: WebDownloadSettings,
        timeouts: DownloadSettings,
        lease_seconds: float,
    ) -> None:
        self._lease_seconds = lease_seconds
        self._filters = filters
        self._timeouts = timeouts
        self._sessions = sessions
        self._records = Records(sessions, ImageRecord, kind="image", not_found=ImageNotFound)
        self._store = store
        self._writable = writable
        self._activate = activate
        self._tasks = ThreadPoolExecutor(_IMPORT_WORKERS, thread_name_prefix="image-import")

    def stage(
        self,
        image_id: str,
        chunks: Iterable[bytes],
        *,
        expected_size: int | None = None,
        caller: Caller,
    ) -> ImageRecord:
        """Glance's stage: keep the bytes for a later glance-direct import (``uploading``)."""
        record = self._writable(image_id, caller)
        if not self._records.move_status(
            record.id, expect=ImageStatus.QUEUED, to=ImageStatus.UPLOADING
        ):
            current = self._records.get(record.id).status
            raise Conflict(
                f"Image status transition from {current} to {ImageStatus.UPLOADING} is not allowed"
            )
        try:
            with self._lease(record.id, ImageStatus.UPLOADING) as lease:
                size = self._store.stage(record.id, chunks, expected_size=expected_size)
            if lease.lost:
                raise Conflict(
                    f"staging image {record.id} stalled past its lease and was given up; "
                    "stage it again"
                )
        except BaseException as exc:
            # Glance's _unstage: no bytes kept, and the image may be staged again.
            self._store.unstage(record.id)
            self._fail(record.id, _reason(exc, doing="staging"), expect=ImageStatus.UPLOADING)
            raise
        log.info("image %s: %d bytes staged", record.id, size)
        try:
            return self._records.update(
                record.id, expect_status=ImageStatus.UPLOADING, size=size, message=None
            )
        except NotFound:
            self._store.unstage(record.id)  # deleted while staging: the bytes are no one's
            raise

    def start(self, image_id: str, request: ImportRequest, *, caller: Caller) -> ImageRecord:
        """Check the request against the image as Glance does, mark it ``importing`` and
        run the import in the background; the image ends ``active`` or ``queued``."""
        record = self._writable(image_id, caller)
        expect = self._check(record, request)
        if request.method is ImportMethod.GLANCE_DIRECT and record.size is None:
            # Uploading, but the stage request is still receiving the bytes (a completed
            # stage records their size, as leases.stale_transfers reads it too).
            raise Conflict("Image needs to be staged before 'glance-direct' method can be used")
        if request.uri is not None:
            self._check_uri(request.uri)
        if not self._records.move_status(record.id, expect=expect, to=ImageStatus.IMPORTING):
            raise Conflict(
                f"New operation on image '{record.id}' is not permitted as prior operation "
                "is still in progress"
            )
        record = self._records.update(record.id, message=None, properties=_without_error(record))
        assert record.disk_format is not None  # _check refused an image without one
        log.info("image %s: %s import started", record.id, request.method)
        # Leased from now, not from when a pool thread takes the task: a queued import is
        # as alive as a running one.
        lease = self._lease(record.id, ImageStatus.IMPORTING)
        lease.start()
        try:
            self._tasks.submit(self._run, record.id, request, record.disk_format, lease)
        except BaseException:
            lease.stop()
            raise
        return record

    def _check_uri(self, uri: str) -> None:
        """Glance's import filtering: http(s), then the port and host lists."""
        try:
            location = ImageLocation.remote(uri)
        except InvalidRequest as exc:
            raise _filtered(uri, exc.message) from exc
        parsed = urlsplit(location.url)
        host = (parsed.hostname or "").lower()
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        allowed_ports = self._filters.allowed_ports
        if allowed_ports and port not in allowed_ports:
            raise _filtered(uri, f"port {port} is not in [web_download] allowed_ports")
        if host in (h.lower() for h in self._filters.disallowed_hosts):
            raise _filtered(uri, f"host {host} is in [web_download] disallowed_hosts")
        allowed_hosts = [h.lower() for h in self._filters.allowed_hosts]
        if allowed_hosts and host not in allowed_hosts:
            raise _filtered(uri, f"host {host} is not in [web_download] allowed_hosts")

    @staticmethod
    def _check(record: ImageRecord, request: ImportRequest) -> ImageStatus:
        """Glance's checks, in its order and with its messages; the status to move from."""
        if record.status == ImageStatus.ACTIVE:
            raise Conflict("Image with status active cannot be target for import")
        if request.method is ImportMethod.WEB_DOWNLOAD:
            expect = ImageStatus.QUEUED
            if record.status != expect:
                raise Conflict(
                    f"Image needs to be in 'queued' state to use '{request.method}' method"
                )
        else:
            expect = ImageStatus.UPLOADING
            if record.status != expect:
                raise Conflict("Image needs to be staged before 'glance-direct' method can be used")
        if not record.container_format:
            raise Conflict("'container_format' needs to be set before import")
        if not record.disk_format:
            raise Conflict("'disk_format' needs to be set before import")
        return expect

    def _run(
        self, image_id: str, request: ImportRequest, disk_format: str, lease: TransferLease
    ) -> None:
        """The background task: store the bytes, or put the image back to queued."""
        failure: Exception | None = None
        try:
            stored = self._import(image_id, request, disk_format=disk_format)
        except Exception as exc:
            failure = exc
        finally:
            lease.stop()
        if lease.lost:  # settled meanwhile, as abandoned: the image is not ours to change
            log.warning("image %s: its import ended after its lease was lost", image_id)
            return
        if failure is not None:
            if not isinstance(failure, BootvolError):
                log.error(
                    "image %s: %s import failed unexpectedly",
                    image_id,
                    request.method,
                    exc_info=failure,
                )
            self._store.unstage(image_id)  # a failed import needs staging again, as Glance
            reason = _reason(failure, doing=f"{request.method} import")
            self._fail(image_id, reason, expect=ImageStatus.IMPORTING)
            return
        try:
            self._activate(image_id, stored, expect=ImageStatus.IMPORTING)
        except NotFound:
            # Deleted while importing (and perhaps made again under the same id): the bytes
            # published meanwhile belong to no image.
            self._store.delete(image_id)
            log.info("image %s was deleted during its import", image_id)
            return
        log.info("image %s: %s import done, active", image_id, request.method)

    def _import(self, image_id: str, request: ImportRequest, *, disk_format: str) -> StoredImage:
        if request.method is ImportMethod.GLANCE_DIRECT:
            return self._store.import_staged(image_id, disk_format=disk_format)
        assert request.uri is not None  # ImportRequest.parse requires it
        chunks = http_chunks(
            request.uri,
            what=f"web-download of image {image_id}",
            timeouts=self._timeouts,
            check_url=self._check_uri,
        )
        return self._store.upload(image_id, chunks, disk_format=disk_format)

    def release(self, stale: StaleTransfer) -> bool:
        """Settle a stage or an import whose process died: back to ``queued``, saying why,
        with no bytes kept (staged, or stored before it could activate); False if it was
        alive after all."""
        doing = "staging" if stale.status == ImageStatus.UPLOADING else "the import"
        reason = f"{doing} was interrupted: the process doing it stopped; stage or import again"
        properties = {**stale.properties, IMPORT_ERROR_PROPERTY: reason}
        if not settle(
            self._sessions, stale, to=ImageStatus.QUEUED, message=reason, properties=properties
        ):
            return False
        self._store.delete(stale.image_id)
        return True

    def _lease(self, image_id: str, status: ImageStatus) -> TransferLease:
        return TransferLease(
            self._sessions, image_id, status=status, lease_seconds=self._lease_seconds
        )

    def _fail(self, image_id: str, reason: str, *, expect: ImageStatus) -> None:
        log.warning("image %s back to queued: %s", image_id, reason)
        record = self._records.get_by_id(image_id)
        if record is not None:
            try:
                self._records.update(
                    image_id,
                    expect_status=expect,
                    status=ImageStatus.QUEUED,
                    size=None,
                    message=reason,
                    properties={**_without_error(record), IMPORT_ERROR_PROPERTY: reason},
                )
                return
            except NotFound:
                pass
        log.info("image %s was deleted during its import", image_id)


def _filtered(uri: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"URI for web-download does not pass filtering: {uri} ({why})")


def _without_error(record: ImageRecord) -> dict[str, Any]:
    return {k: v for k, v in (record.properties or {}).items() if k != IMPORT_ERROR_PROPERTY}


def _reason(exc: BaseException, *, doing: str) -> str:
    if isinstance(exc, BootvolError):
        return exc.message
    if isinstance(exc, Exception):  # the details (paths, internals) go to the log only
        return f"{doing} failed unexpectedly; the service's log has the details"
    return f"{doing} interrupted"
