"""Scratch space and atomic publication of files on a FlexVol.

On-disk invariants:

* Work in progress lives only in ``<flexvol>/.bootvol/tmp/<random>/``; a scratch folder
  holds a ``lock`` file that its owner keeps flock'ed for as long as it works there. A folder
  whose lock can be taken belongs to a process that died, and may be removed at once.
* A folder gets its ``<random>`` name only once its lock is held: it is prepared as
  ``.new-<random>`` and renamed. So a remover never sees a live folder unlocked, and a
  restart after a crash removes every dead folder without waiting out a grace period.
* A file becomes visible under its final name only through :func:`publish`: contents fsynced,
  then ``rename`` (atomic on one filesystem), then the directory fsynced. So a final name never
  points at half-written bytes, whatever crashes when.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bootvol.storage.locks import LockBusy, file_lock

_LOCK_NAME = "lock"
_NEW_PREFIX = ".new-"
# A ``.new-`` folder lives for microseconds; one older than this was left by a crash.
_NEW_FOLDER_GRACE_SECONDS = 60.0


@contextmanager
def scratch_dir(parent: Path) -> Iterator[Path]:
    """A private, locked folder under ``parent``, removed with everything in it afterwards."""
    parent.mkdir(parents=True, exist_ok=True)
    name = uuid.uuid4().hex
    preparing = parent / f"{_NEW_PREFIX}{name}"
    preparing.mkdir()
    path = parent / name
    lock_fd = os.open(preparing / _LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        os.rename(preparing, path)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(preparing, ignore_errors=True)  # when the rename never happened
        os.close(lock_fd)


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(temporary: Path, final: Path, *, read_only: bool = False) -> None:
    """Make ``temporary`` visible as ``final``, durably and all at once."""
    fsync_path(temporary)
    if read_only:
        os.chmod(temporary, 0o444)
    os.rename(temporary, final)
    fsync_path(final.parent)


def remove_stale_scratch(parent: Path) -> list[Path]:
    """Remove scratch folders whose owner died (its lock is free); return what was removed."""
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    now = time.time()
    for entry in parent.iterdir():
        if not entry.is_dir():
            continue
        try:
            if entry.name.startswith(_NEW_PREFIX):
                if now - entry.stat().st_mtime >= _NEW_FOLDER_GRACE_SECONDS:
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(entry)
                continue
            with file_lock(entry / _LOCK_NAME, blocking=False):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
        except (LockBusy, FileNotFoundError):
            continue
    return removed
