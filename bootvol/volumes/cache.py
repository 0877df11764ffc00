"""ImageCache: the per-FlexVol image cache of raw ``img-cache-<image-id>`` files.

On-disk invariants (per FlexVol):

* ``img-cache-<image-id>`` exists only complete: it is filled in a scratch folder and
  published by rename (storage.scratch.publish), read-only. Its contents never change.
* It is filled at most once however many creations race for it, across processes and nodes:
  fillers serialise on ``.bootvol/locks/img-cache-<id>.fill.lock`` and re-check under it.
* A creation that is using an entry holds ``.bootvol/locks/img-cache-<id>.use.lock``
  shared; eviction takes it exclusively without waiting, so an entry in use is never evicted.
* Its access time is its last use: set explicitly on every use, because filesystems mounted
  ``relatime``/``noatime`` would not keep it.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bootvol.storage.flexvol import FlexVol
from bootvol.storage.locks import LockBusy, file_lock
from bootvol.storage.scratch import publish

CACHE_PREFIX = "img-cache-"


@dataclass(frozen=True)
class CacheEntry:
    flexvol: str
    image_id: str
    path: Path
    size_bytes: int  # apparent size (the image's virtual size)
    allocated_bytes: int  # blocks the file holds; shared blocks count in each file
    last_used: dt.datetime
    links: int  # >1 while qcow2 overlay volumes keep it as their backing file

    def idle_minutes(self, now: dt.datetime) -> float:
        return (now - self.last_used).total_seconds() / 60


class ImageCache:
    def __init__(self, flexvol: FlexVol) -> None:
        self.flexvol = flexvol

    def entry_path(self, image_id: str) -> Path:
        return self.flexvol.path / f"{CACHE_PREFIX}{image_id}"

    def lookup(self, image_id: str) -> Path | None:
        """The entry for ``image_id`` if this FlexVol caches it; marks it used."""
        path = self.entry_path(image_id)
        try:
            _mark_used(path)
        except FileNotFoundError:
            return None
        return path

    def contains(self, image_id: str) -> bool:
        return self.entry_path(image_id).is_file()

    @contextmanager
    def in_use(self, image_id: str) -> Iterator[None]:
        """Keep the cleaner away from this image's entry for the duration of the block."""
        self.flexvol.ensure()
        with file_lock(self._use_lock(image_id), shared=True):
            yield

    def fill_once(self, image_id: str, fill: Callable[[Path], None]) -> tuple[Path, bool]:
        """Make sure the entry exists; return (its path, whether this call filled it).

        ``fill(temporary)`` writes the raw image into ``temporary``, a path in a scratch folder
        on this FlexVol; if it raises, nothing is published and the scratch is removed.
        """
        self.flexvol.ensure()
        final = self.entry_path(image_id)
        with file_lock(self.flexvol.lock_file(f"{CACHE_PREFIX}{image_id}.fill")):
            if final.is_file():  # another creation filled it while we waited
                _mark_used(final)
                return final, False
            with self.flexvol.scratch() as scratch:
                temporary = scratch / final.name
                fill(temporary)
                publish(temporary, final, read_only=True)
        _mark_used(final)
        return final, True

    def entries(self) -> list[CacheEntry]:
        found = []
        for path in self.flexvol.files(CACHE_PREFIX):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue  # evicted meanwhile
            found.append(
                CacheEntry(
                    flexvol=self.flexvol.name,
                    image_id=path.name.removeprefix(CACHE_PREFIX),
                    path=path,
                    size_bytes=stat.st_size,
                    allocated_bytes=stat.st_blocks * 512,
                    last_used=dt.datetime.fromtimestamp(stat.st_atime, dt.UTC),
                    links=stat.st_nlink,
                )
            )
        return found

    def evict(self, entry: CacheEntry) -> bool:
        """Delete an entry unless a creation is using or filling it right now."""
        try:
            with (
                file_lock(self._use_lock(entry.image_id), blocking=False),
                file_lock(
                    self.flexvol.lock_file(f"{CACHE_PREFIX}{entry.image_id}.fill"),
                    blocking=False,
                ),
            ):
                entry.path.unlink(missing_ok=True)
                return True
        except LockBusy:
            return False

    def _use_lock(self, image_id: str) -> Path:
        return self.flexvol.lock_file(f"{CACHE_PREFIX}{image_id}.use")


def _mark_used(path: Path) -> None:
    mtime = path.stat().st_mtime
    os.utime(path, (time.time(), mtime))
