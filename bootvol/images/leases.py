"""Leases on image transfers: an image in a transient status belongs to a live process.

An upload (``saving``), a stage (``uploading`` while its bytes arrive) and an import
(``importing``) each run in one process, which renews the image's ``updated_at`` every third
of ``lease_seconds`` while it works (TransferLease), as volume workers renew their claims.
When that process dies the renewals stop; once the lease has run out, any long-running
process (``bootvol serve``, ``bootvol worker``) settles the image as the transfer's own
failure would have (ImageService.release_abandoned): an upload ``killed``, a stage or an
import back to ``queued``, saying why. So no image stays in a transient status forever, and
nothing is taken from a transfer that is alive, on this node or another.

A staged image waiting for its import is ``uploading`` with its staged file and no lease:
that is a resting state, not an abandoned one (the caller checks the file).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from types import TracebackType

from sqlalchemy import select, update

from bootvol.db.models import ImageRecord, ImageStatus, utcnow
from bootvol.db.session import SessionFactory

log = logging.getLogger(__name__)

TRANSIENT = (ImageStatus.SAVING, ImageStatus.UPLOADING, ImageStatus.IMPORTING)


class TransferLease:
    """``with TransferLease(sessions, image_id, status=…, lease_seconds=…):`` renews the
    image's lease while the block runs (in a daemon thread, so a long read or write of the
    bytes does not let it lapse)."""

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

    def __enter__(self) -> TransferLease:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _renew(self) -> None:
        while not self._stop.wait(self._every):
            try:
                with self._sessions.begin() as session:
                    session.execute(
                        update(ImageRecord)
                        .where(ImageRecord.id == self._image_id)
                        .where(ImageRecord.status == self._status)
                        .values(updated_at=utcnow())
                    )
            except Exception:  # the database hiccuped: the next renewal may get through
                log.exception("renewing the lease on image %s failed", self._image_id)


@dataclass(frozen=True)
class StaleTransfer:
    image_id: str
    status: ImageStatus
    renewed_at: dt.datetime  # the last renewal seen: settle only if it is still the last


def stale_transfers(sessions: SessionFactory, *, lease_seconds: float) -> list[StaleTransfer]:
    """Images in a transient status whose lease ran out."""
    cutoff = utcnow() - dt.timedelta(seconds=lease_seconds)
    statement = select(ImageRecord.id, ImageRecord.status, ImageRecord.updated_at).where(
        ImageRecord.status.in_(TRANSIENT), ImageRecord.updated_at < cutoff
    )
    with sessions() as session:
        return [StaleTransfer(*row) for row in session.execute(statement)]


def settle(
    sessions: SessionFactory, stale: StaleTransfer, *, to: ImageStatus, message: str
) -> bool:
    """Move an abandoned image to ``to`` unless it was renewed or moved meanwhile (one
    conditional UPDATE: a transfer that is alive after all keeps its image)."""
    values: dict[str, object] = {"status": to, "message": message, "updated_at": utcnow()}
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
