"""A FlexVol: one filesystem (or a folder of one) that holds image, cache and volume files.

Contract of :class:`FlexVol`:

* ``clone_file(src, dst)`` makes ``dst`` a copy-on-write clone of ``src`` in constant time
  with ``FICLONE``. It moves no data. It refuses with CloneNotSupported when the filesystem
  cannot reflink or ``src`` is on another filesystem; it never falls back silently.
* ``copy_from(src, dst)`` is copy offload: it copies a file from anywhere into this FlexVol
  keeping holes, in the kernel (copy_file_range, then sendfile). Only when both are refused
  does it copy through user space, and the result says so with the bytes that passed.
* ``extend(path, size)`` grows a raw file sparsely; it never shrinks.
* ``space()`` is statvfs of the filesystem: what other FlexVols on it use counts too.

Layout inside the FlexVol folder::

    img-cache-<image-id>      raw cache entries (ImageCache's; read-only once published)
    volume-<volume-id>        volumes
    .bootvol/tmp/<random>/    scratch of running operations (see storage.scratch)
    .bootvol/locks/           lock files (never deleted)
    .bootvol/bases/           hard links that keep qcow2 overlays' backing files alive
"""

from __future__ import annotations

import ctypes
import functools
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from bootvol.errors import CloneNotSupported, StorageError
from bootvol.storage import copy
from bootvol.storage.cluster import Svm
from bootvol.storage.layout import EntryLayout
from bootvol.storage.scratch import remove_stale_scratch, scratch_dir


@dataclass(frozen=True)
class Space:
    total_bytes: int
    available_bytes: int

    @property
    def available_percent(self) -> float:
        return 100.0 * self.available_bytes / self.total_bytes if self.total_bytes else 0.0


@dataclass(frozen=True)
class Capabilities:
    reflink: bool
    filesystem: str


class FlexVol:
    def __init__(
        self,
        *,
        name: str,
        svm: Svm,
        path: Path,
        holds_volumes: bool = True,
        export: str | None = None,
    ) -> None:
        self.name = name
        self.svm = svm
        self.path = path
        self.holds_volumes = holds_volumes
        self.export = export  # "server:/path" clients mount, if the FlexVol is exported
        self._ready = False  # ensure() has made or found the folder layout once

    def __repr__(self) -> str:
        return f"FlexVol({self.name!r}, {self.path})"

    @property
    def cluster_name(self) -> str:
        return self.svm.cluster.name

    @property
    def state_dir(self) -> Path:
        return self.path / ".bootvol"

    @property
    def locks_dir(self) -> Path:
        return self.state_dir / "locks"

    @property
    def bases_dir(self) -> Path:
        return self.state_dir / "bases"

    def ensure(self, *, create: bool = False) -> None:
        """Create the folder layout; fail clearly if the mount point is missing or read-only.

        The FlexVol's own folder is made on the first call (bootvol's start) or with
        ``create``: once it existed, a missing folder means an unmounted or deleted FlexVol,
        and making it again would silently put volumes on whatever filesystem lies beneath.
        """
        if self._ready and not create and not self.path.is_dir():
            raise StorageError(
                f"FlexVol {self.name}: {self.path} is gone (unmounted or deleted?); mount it "
                "again or restart bootvol to recreate an empty one"
            )
        try:
            for folder in (self.path, self.state_dir / "tmp", self.locks_dir, self.bases_dir):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"FlexVol {self.name}: cannot prepare {self.path}: {exc.strerror}"
            ) from exc
        self._ready = True

    def scratch(self) -> AbstractContextManager[Path]:
        """A private folder for work in progress on this filesystem (see storage.scratch)."""
        return scratch_dir(self.state_dir / "tmp")

    def remove_stale_scratch(self) -> list[Path]:
        return remove_stale_scratch(self.state_dir / "tmp")

    def lock_file(self, name: str) -> Path:
        return self.locks_dir / f"{name}.lock"

    def contains(self, path: Path) -> bool:
        try:
            path.resolve().relative_to(self.path.resolve())
        except ValueError:
            return False
        return True

    def shares_filesystem_with(self, other: FlexVol) -> bool:
        """True when both live on one filesystem, where copies become reflinks."""
        return self.path.stat().st_dev == other.path.stat().st_dev

    def files(self, prefix: str) -> Iterator[Path]:
        return (p for p in self.path.glob(f"{prefix}*") if p.is_file())

    def space(self, *, settled: bool = False) -> Space:
        """Capacity and available space; ``settled`` first waits for pending frees.

        XFS and btrfs release the blocks of a deleted file in the background, so statvfs
        right after an unlink can still count them. syncfs(2) pushes that work, and one call
        is not always enough (XFS frees in a later log transaction): repeat, with a short
        pause, until two readings agree.
        """
        if not settled:
            return self._statvfs()
        previous = None
        for _ in range(_SETTLE_ROUNDS):
            _syncfs(self.path)
            current = self._statvfs()
            if current == previous:
                break
            previous = current
            time.sleep(_SETTLE_PAUSE_SECONDS)  # give the background free a moment to run
        return current

    def _statvfs(self) -> Space:
        try:
            stats = os.statvfs(self.path)
        except OSError as exc:
            raise StorageError(f"FlexVol {self.name}: statvfs {self.path}: {exc}") from exc
        return Space(
            total_bytes=stats.f_blocks * stats.f_frsize,
            available_bytes=stats.f_bavail * stats.f_frsize,
        )

    @functools.cached_property
    def capabilities(self) -> Capabilities:
        """Probe once whether this filesystem reflinks, by cloning a one-block file."""
        self.ensure()
        with self.scratch() as scratch:
            probe = scratch / "probe"
            probe.write_bytes(b"\0" * 4096)
            try:
                copy.reflink(probe, scratch / "probe-clone")
                can_reflink = True
            except CloneNotSupported:
                can_reflink = False
        return Capabilities(reflink=can_reflink, filesystem=filesystem_type(self.path))

    def clone_file(self, source: Path, destination: Path) -> None:
        copy.reflink(source, destination)

    def copy_from(
        self, source: Path, destination: Path, *, layout: EntryLayout | None = None
    ) -> copy.CopyResult:
        return copy.sparse_copy(source, destination, layout=layout)

    def extend(self, path: Path, size_bytes: int) -> None:
        try:
            if path.stat().st_size < size_bytes:
                os.truncate(path, size_bytes)
        except OSError as exc:
            raise StorageError(f"cannot extend {path} to {size_bytes} bytes: {exc}") from exc


_libc = ctypes.CDLL(None, use_errno=True)
_SETTLE_ROUNDS = 10
_SETTLE_PAUSE_SECONDS = 0.02


def _syncfs(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc.syncfs(fd) != 0:
            error = ctypes.get_errno()
            raise StorageError(f"syncfs {path}: {os.strerror(error)}")
    finally:
        os.close(fd)


def filesystem_type(path: Path) -> str:
    """The type of the filesystem ``path`` is on, from the longest matching mount point."""
    target = str(path.resolve())
    best, best_type = "", "unknown"
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return best_type
    for line in lines:
        left, _, right = line.partition(" - ")
        mount_point = left.split()[4].replace("\\040", " ")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, right.split()[0]
    return best_type
