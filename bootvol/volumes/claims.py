"""Which worker provisions a ``creating`` volume: leased claims recorded on the volume's row.

A claim is ``claimed_by`` (``host:pid`` of the claiming process), ``lease_expires_at`` and
``attempts`` (how many claims the volume has had). The invariants:

* A volume is claimable when it is in progress (``creating``/``downloading``) and either
  unclaimed or its lease has run out (a claim without a lease, from before leases, counts
  as run out). A claim is taken by a conditional UPDATE that re-checks that condition, so
  among any number of claimants in threads, processes or nodes sharing the database exactly
  one wins; PostgreSQL re-evaluates the WHERE clause on the row a concurrent winner wrote,
  and SQLite has one writer at a time. On PostgreSQL the candidate is picked ``FOR UPDATE
  SKIP LOCKED`` so that concurrent claimants spread over different rows instead of queueing
  on the oldest one.
* The holder renews its lease (``Lease``) every third of ``lease_seconds`` while it works.
  A holder that dies stops renewing; after at most ``lease_seconds`` any worker may claim
  the volume and make it again from the beginning (the volume's making is idempotent: the
  volume file is recreated, cache entries are published atomically).
* A holder that only stalled (a paused process, a database out of reach) may wake up to
  find its volume taken over. It checks its claim (``holds``) just before it makes the
  volume's file, after the long steps (the database is asked only when less than half of
  the lease it last wrote remains: ``Lease.certainly_held``), and writes its outcome only
  while it still holds the claim (``finish``), so it never clobbers the new holder's file
  or record. A claim is identified by its claimant *and* its attempt number (a fencing
  token): a thread of the same process that re-claims the volume later holds a different
  claim. What remains is
  a stall of more than a lease inside the making of the file itself (a reflink takes
  milliseconds; a full copy on storage that cannot reflink takes longer).
* A synchronous creation (the CLI) is born claimed by its process and renews like a worker,
  so no worker takes it while it is being made.

``release_abandoned`` releases at once the claims of dead processes of this host (a restart
need not wait for their leases to run out).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from sqlalchemy import or_, select, update

from bootvol.db.models import VolumeRecord, VolumeStatus, as_utc, utcnow
from bootvol.db.session import SessionFactory
from bootvol.volumes.volume_file import ProvisionedVolume

log = logging.getLogger(__name__)

IN_PROGRESS = (VolumeStatus.CREATING, VolumeStatus.DOWNLOADING)


def this_process() -> str:
    """The claimant name of this process: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Claim:
    volume_id: str
    claimant: str
    attempt: int  # 1 for the first claim; more when earlier holders died


def _claimable(now: dt.datetime):  # type: ignore[no-untyped-def]
    return (
        VolumeRecord.status.in_(IN_PROGRESS),
        or_(
            VolumeRecord.claimed_by.is_(None),
            VolumeRecord.lease_expires_at.is_(None),
            VolumeRecord.lease_expires_at < now,
        ),
    )


def claim_next(sessions: SessionFactory, *, claimant: str, lease_seconds: float) -> Claim | None:
    """Claim the oldest claimable volume for ``lease_seconds``; None when there is none.

    One statement, ``UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED) AND <claimable>
    RETURNING``: on SQLite it takes the writer lock before it reads (so it waits on
    busy_timeout rather than failing on a stale snapshot); on PostgreSQL claimants skip rows
    another has locked, and the outer WHERE re-checks the row a concurrent winner changed.
    """
    now = utcnow()
    oldest = (
        select(VolumeRecord.id)
        .where(*_claimable(now))
        .order_by(VolumeRecord.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)  # SQLite's compiler leaves it out: no row locks
        .scalar_subquery()
    )
    with sessions.begin() as session:
        claimed = session.execute(
            update(VolumeRecord)
            .where(VolumeRecord.id == oldest, *_claimable(now))
            .values(
                claimed_by=claimant,
                lease_expires_at=now + dt.timedelta(seconds=lease_seconds),
                attempts=VolumeRecord.attempts + 1,
            )
            .returning(VolumeRecord.id, VolumeRecord.attempts)
            .execution_options(synchronize_session=False)
        ).first()
    if claimed is None:
        return None
    return Claim(volume_id=claimed[0], claimant=claimant, attempt=claimed[1])


def _held(claim: Claim):  # type: ignore[no-untyped-def]
    """The claim is still this one: same claimant and same attempt (a fencing token, so
    that a thread of the same process re-claiming the volume later does not count)."""
    return (
        VolumeRecord.id == claim.volume_id,
        VolumeRecord.claimed_by == claim.claimant,
        VolumeRecord.attempts == claim.attempt,
        VolumeRecord.status.in_(IN_PROGRESS),
    )


def renew(sessions: SessionFactory, claim: Claim, *, lease_seconds: float) -> dt.datetime | None:
    """Extend the lease of ``claim``: its new end, or None when it is no longer held."""
    expires = utcnow() + dt.timedelta(seconds=lease_seconds)
    return expires if _write(sessions, claim, {"lease_expires_at": expires}) else None


def mark_downloading(sessions: SessionFactory, claim: Claim) -> bool:
    """Cinder's ``downloading`` status while the download path runs; False when not held."""
    return _write(sessions, claim, {"status": VolumeStatus.DOWNLOADING})


def holds(sessions: SessionFactory, claim: Claim) -> bool:
    """Whether ``claim`` is still held."""
    with sessions() as session:
        return session.scalar(select(VolumeRecord.id).where(*_held(claim))) is not None


@dataclass(frozen=True)
class VolumeOutcome:
    """How the making of a volume ended, as its record is to say: ``available`` with the
    file and how it was made, or ``error`` with a message."""

    status: VolumeStatus
    message: str | None = None
    made: ProvisionedVolume | None = None
    bootable: bool = False
    image_metadata: dict[str, str] | None = None

    @classmethod
    def failed(cls, message: str) -> VolumeOutcome:
        return cls(status=VolumeStatus.ERROR, message=message)

    def columns(self) -> dict[str, object]:
        """The volume record's columns this outcome sets."""
        columns: dict[str, object] = {"status": self.status, "message": self.message}
        if self.made is not None:
            columns.update(
                file=str(self.made.file),
                file_format=self.made.file_format,
                provisioning=self.made.record,
                image_metadata=self.image_metadata,
            )
            # As Cinder's volume manager: it marks a volume from an image (or a bootable
            # source) bootable, and never clears the flag a user set while it was made
            # (`openstack volume create --bootable` sets it right after the request).
            if self.bootable:
                columns["bootable"] = True
        return columns


def finish(sessions: SessionFactory, claim: Claim, outcome: VolumeOutcome) -> VolumeRecord | None:
    """Write the outcome of ``claim``'s making of its volume and return the volume as
    written; None when the claim was lost.

    A holder that stalled past its lease (a paused process, a database out of reach) may
    find its volume taken over and made again by another worker; its outcome is then stale
    and must not overwrite the new holder's.
    """
    with sessions.begin() as session:
        return session.scalars(
            update(VolumeRecord)
            .where(*_held(claim))
            .values(outcome.columns())
            .returning(VolumeRecord)
            .execution_options(synchronize_session=False)
        ).first()


def _write(sessions: SessionFactory, claim: Claim, columns: dict[str, object]) -> bool:
    with sessions.begin() as session:
        written = session.execute(
            update(VolumeRecord)
            .where(*_held(claim))
            .values(columns)
            .execution_options(synchronize_session=False)
        ).rowcount
    return written == 1


class Lease:
    """Renew a claim from a background thread for the duration of a ``with`` block.

    ``expires_at`` is the lease the claim was taken with (the volume's ``lease_expires_at``).
    The lease's end is kept on the monotonic clock from then on: a wall clock stepped back
    must not make a lease look longer than it is.
    """

    def __init__(
        self,
        sessions: SessionFactory,
        claim: Claim,
        *,
        lease_seconds: float,
        expires_at: dt.datetime | None = None,
    ) -> None:
        self._sessions = sessions
        self._claim = claim
        self._lease_seconds = lease_seconds
        # The end of the lease this process last wrote (time.monotonic); None: unknown or
        # lost, ask the database.
        self._ends: float | None = None
        if expires_at is not None:
            remaining = (as_utc(expires_at) - utcnow()).total_seconds()
            self._ends = time.monotonic() + remaining
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._renew, name=f"lease-{claim.volume_id[:8]}", daemon=True
        )

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def certainly_held(self) -> bool:
        """Whether the claim is held for sure without asking the database: more than half
        of the lease this process last wrote remains. Workers take a volume over only once
        its lease ran out; the half lease covers clocks of nodes that disagree, and a
        process stalled past it finds its lease run out here first, and asks. (The one
        exception, ``release_abandoned`` of a process it wrongly takes for dead, is why
        claimants are ``host:pid``: give each node its own host name.)"""
        ends = self._ends
        return ends is not None and time.monotonic() < ends - self._lease_seconds / 2

    def _renew(self) -> None:
        # A third of the lease: two renewals may fail (a database hiccup) before it runs out.
        while not self._stop.wait(self._lease_seconds / 3):
            asked = time.monotonic()  # the lease runs from before the write, to be safe
            try:
                expires = renew(self._sessions, self._claim, lease_seconds=self._lease_seconds)
            except Exception:  # try again at the next beat; the lease has slack for it
                log.exception("renewing the claim on volume %s failed", self._claim.volume_id)
                continue
            if expires is not None:
                self._ends = asked + self._lease_seconds
                continue
            self._ends = None  # lost (or ended): certainly_held must ask from now on
            if not self._stop.is_set():  # else the volume was finished: ended, not lost
                log.error(
                    "volume %s: the claim of %s (attempt %d) was taken over or ended",
                    self._claim.volume_id,
                    self._claim.claimant,
                    self._claim.attempt,
                )
            return


def release_abandoned(sessions: SessionFactory) -> list[str]:
    """Release claims held by dead processes of this host; return the volumes released."""
    host = socket.gethostname()
    with sessions() as session:
        claimed = session.execute(
            select(VolumeRecord.id, VolumeRecord.claimed_by).where(
                VolumeRecord.status.in_(IN_PROGRESS), VolumeRecord.claimed_by.like(f"{host}:%")
            )
        ).all()
    released = []
    for volume_id, claimant in claimed:
        pid = int(claimant.rsplit(":", 1)[1])
        if _alive(pid):
            continue
        with sessions.begin() as session:
            session.execute(
                update(VolumeRecord)
                .where(VolumeRecord.id == volume_id, VolumeRecord.claimed_by == claimant)
                .values(
                    status=VolumeStatus.CREATING,
                    claimed_by=None,
                    lease_expires_at=None,
                )
            )
        released.append(volume_id)
    return released


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    # A zombie (killed, not yet reaped by its parent) works no more: its claims are free.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"
