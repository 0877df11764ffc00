"""Which worker provisions a ``creating`` volume: claims recorded on the volume's row.

A claim is ``claimed_by`` (``host:pid`` of the claiming process) and ``claimed_at``. A volume
is claimed at most once: ``claim_next`` takes the oldest unclaimed ``creating`` volume with a
conditional UPDATE (``… WHERE id = ? AND claimed_by IS NULL``) that only one claimant can win,
in any number of threads or processes sharing the database. A synchronous creation (the CLI)
records its claim when it inserts the row, so no worker ever picks it up.

A claim whose process has died on this host is released by ``release_abandoned`` at the
start of a server, and the volume is made again from the beginning.
"""

from __future__ import annotations

import os
import socket

from sqlalchemy import select, update

from bootvol.db.models import VolumeRecord, VolumeStatus, utcnow
from bootvol.db.session import SessionFactory

_IN_PROGRESS = (VolumeStatus.CREATING, VolumeStatus.DOWNLOADING)


def this_process() -> str:
    """The claimant name of this process: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def claim_next(sessions: SessionFactory, *, claimant: str) -> str | None:
    """Claim the oldest unclaimed ``creating`` volume; its id, or None when there is none."""
    while True:
        with sessions() as session:
            candidate = session.scalars(
                select(VolumeRecord.id)
                .where(VolumeRecord.status == VolumeStatus.CREATING)
                .where(VolumeRecord.claimed_by.is_(None))
                .order_by(VolumeRecord.created_at)
                .limit(1)
            ).first()
        if candidate is None:
            return None
        with sessions.begin() as session:
            won = session.execute(
                update(VolumeRecord)
                .where(VolumeRecord.id == candidate, VolumeRecord.claimed_by.is_(None))
                .values(claimed_by=claimant, claimed_at=utcnow())
            ).rowcount
        if won == 1:
            return candidate
        # Another claimant took it between the SELECT and the UPDATE: look again.


def release_abandoned(sessions: SessionFactory) -> list[str]:
    """Release claims held by dead processes of this host; return the volumes released."""
    host = socket.gethostname()
    with sessions() as session:
        claimed = session.execute(
            select(VolumeRecord.id, VolumeRecord.claimed_by).where(
                VolumeRecord.status.in_(_IN_PROGRESS), VolumeRecord.claimed_by.like(f"{host}:%")
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
                .values(status=VolumeStatus.CREATING, claimed_by=None, claimed_at=None)
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
    return True
