"""Leases on image transfers: an image in a transient status belongs to a live process.

An upload (``saving``), a stage (``uploading`` while its bytes arrive) and an import
(``importing``) each run in one process, which renews the image's ``updated_at`` every third
of ``lease_seconds`` while it works (TransferLease), as volume workers renew their claims.
When that process dies the renewals stop; once the lease has run out, any long-running
process (``bootvol serve``, ``bootvol worker``) settles the image as the transfer's own
failure would have (ImageService.release_abandoned): an upload ``killed``, a stage or an
import back to ``queued``, saying why. So no image stays in a transient status forever, and
nothing is taken from a transfer that is alive, on this node or another.

A staged image waiting for its import is ``uploading`` with its size recorded (the stage
completed) and no lease: a resting state, not an abandoned one, so it is not listed.

A transfer whose renewal finds its image in another status has lost the lease (it was
settled after a stall longer than the lease): ``lost`` says so, and the transfer then
writes nothing more to the image.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from sqlalchemy import and_, not_, select, update

from bootvol.db.models import ImageRecord, ImageStatus, utcnow
from bootvol.db.session import SessionFactory

log = logging.getLogger(__name__)

TRANSIENT = (ImageStatus.SAVING, ImageStatus.UPLOADING, ImageStatus.IMPORTING)


class TransferLease:
    """``with TransferLease(sessions, image_id, status=…, lease_seconds=…):`` renews the
    image's lease while the block runs (in a daemon thread, so a long read or write of the
    bytes does not let it lapse); or ``start()`` and ``stop()`` when the transfer's work
    is handed to another thread."""

    def __init__(
        self,
        sessions: SessionFactory,
        image_id: str,
        *,
        status: ImageStatus,
        lease_seconds: float,
    ) -> None:
        self._sessions = sessions
        self._image_id = image_id
        self._status = status
        self._every = lease_seconds / 3
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._renew, name=f"image-lease-{image_id[:8]}", daemon=True
        )
        self.lost = False  # a renewal found the image settled or moved: write nothing more

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def __enter__(self) -> TransferLease:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _renew(self) -> None:
        while not self._stop.wait(self._every):
            try:
                with self._sessions.begin() as session:
                    renewed = session.execute(
                        update(ImageRecord)
                        .where(ImageRecord.id == self._image_id)
                        .where(ImageRecord.status == self._status)
                        .values(updated_at=utcnow())
                    ).rowcount
            except Exception:  # the database hiccuped: the next renewal may get through
                log.exception("renewing the lease on image %s failed", self._image_id)
                continue
            if renewed != 1 and not self._stop.is_set():
                self.lost = True
                log.warning(
                    "image %s is no longer %s: this transfer lost its lease and stops writing",
                    self._image_id,
                    self._status,
                )
                return


@dataclass(frozen=True)
class StaleTransfer:
    image_id: str
    status: ImageStatus
    renewed_at: dt.datetime  # the last renewal seen: settle only if it is still the last
    properties: dict[str, Any]


def stale_transfers(sessions: SessionFactory, *, lease_seconds: float) -> list[StaleTransfer]:
    """Images in a transient status whose lease ran out (not those staged and waiting)."""
    cutoff = utcnow() - dt.timedelta(seconds=lease_seconds)
    staged = and_(ImageRecord.status == ImageStatus.UPLOADING, ImageRecord.size.is_not(None))
    statement = select(
        ImageRecord.id, ImageRecord.status, ImageRecord.updated_at, ImageRecord.properties
    ).where(ImageRecord.status.in_(TRANSIENT), ImageRecord.updated_at < cutoff, not_(staged))
    with sessions() as session:
        return [
            StaleTransfer(image_id, status, renewed_at, dict(properties or {}))
            for image_id, status, renewed_at, properties in session.execute(statement)
        ]


def settle(
    sessions: SessionFactory,
    stale: StaleTransfer,
    *,
    to: ImageStatus,
    message: str,
    properties: dict[str, Any] | None = None,
) -> bool:
    """Move an abandoned image to ``to`` (and ``properties``, made from ``stale``'s) unless
    it was renewed or moved meanwhile: one conditional UPDATE, so a transfer that is alive
    after all keeps its image, and the image is settled whole or not at all."""
    values: dict[str, object] = {"status": to, "message": message, "updated_at": utcnow()}
    if properties is not None:
        values["properties"] = properties
    if to == ImageStatus.QUEUED:
        values["size"] = None  # a stage's size; the bytes are gone
    with sessions.begin() as session:
        moved = session.execute(
            update(ImageRecord)
            .where(ImageRecord.id == stale.image_id)
            .where(ImageRecord.status == stale.status)
            .where(ImageRecord.updated_at == stale.renewed_at)
            .values(**values)
        ).rowcount
    return bool(moved == 1)
