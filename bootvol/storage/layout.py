"""How a cache entry's blocks are laid out, so that cloning it costs the same at any size.

A reflink clone (FICLONE, copy_file_range within a filesystem) costs time per *extent* of
the source, not per byte: XFS remaps about 5 µs per extent record. An entry written with
every zero block as a hole (qemu-img's default ``-S 4k``) of an OS image holds thousands of
extents (a 2 GiB ext4 image of real files: 12,099, one clone 82 ms); the same entry with
only its long zero runs as holes holds a few dozen (36, 0.36 ms) for 3 % more space.

So an entry is written into space reserved for its whole size first (one ``fallocate``,
contiguous where the filesystem has room), its data goes into that reservation, and
:func:`settle` then stores every gap shorter than ``min_hole`` as zeros (the written ranges
on both sides are then physically adjacent and the filesystem merges them into one extent)
and gives every longer gap back (punched: a hole, no space). ``min_hole`` is the operator's
trade between clone time and space (``[cache] min_hole``); at the filesystem's block size
every zero block stays a hole, as before.

Where a filesystem cannot reserve space (no ``fallocate``, or no room for the whole size)
the entry is written sparse as it comes; it is still correct, only made of more extents.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from bootvol.errors import StorageError
from bootvol.units import MiB

BLOCK_BYTES = 4096
DEFAULT_MIN_HOLE = 1 * MiB

_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_ZEROS = bytes(MiB)
# linux/fiemap.h: _IOWR('f', 11, struct fiemap); its 32-byte header, no extent array.
_FS_IOC_FIEMAP = 0xC020660B
_FIEMAP_HEADER = struct.Struct("=QQIIII")
_FIEMAP_FLAG_SYNC = 0x1


@dataclass(frozen=True)
class EntryLayout:
    """Zero runs shorter than ``min_hole_bytes`` are stored as zeros; longer ones are holes."""

    min_hole_bytes: int = DEFAULT_MIN_HOLE

    @property
    def dense(self) -> bool:
        """Whether small gaps are filled: at block size every zero block is a hole anyway."""
        return self.min_hole_bytes > BLOCK_BYTES

    @property
    def zero_detection_bytes(self) -> int:
        """qemu-img's ``-S``: shorter zero runs are written as data (its maximum is 16 MiB;
        longer gaps are found by :func:`settle` all the same)."""
        return max(BLOCK_BYTES, min(self.min_hole_bytes, 16 * MiB))


SPARSE = EntryLayout(min_hole_bytes=BLOCK_BYTES)  # every zero block a hole: least space


@dataclass(frozen=True)
class Settled:
    filled_bytes: int  # gaps written as zeros
    punched_bytes: int  # gaps given back as holes


def extent_count(fd: int) -> int:
    """How many extents the filesystem maps the file with (FIEMAP): what a clone walks."""
    request = bytearray(_FIEMAP_HEADER.pack(0, 2**64 - 1, _FIEMAP_FLAG_SYNC, 0, 0, 0))
    try:
        fcntl.ioctl(fd, _FS_IOC_FIEMAP, request)
    except OSError as exc:
        raise StorageError(f"cannot map the file's extents (FIEMAP): {exc.strerror}") from exc
    return _FIEMAP_HEADER.unpack(request)[3]


def describe_layout(path: Path) -> str:
    """``24 extents, 675 MiB allocated``: what a clone of ``path`` will walk, for the logs."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return (
            f"{extent_count(fd)} extents, {os.fstat(fd).st_blocks * 512 / MiB:,.0f} MiB allocated"
        )
    finally:
        os.close(fd)


def reserve(fd: int, size: int) -> bool:
    """Allocate ``size`` bytes for the file in one request; False where the filesystem
    cannot (no fallocate, or not that much room), and the file is written sparse instead."""
    if size <= 0:
        return False
    if _libc.fallocate(fd, 0, 0, size) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EOPNOTSUPP, errno.ENOSPC, errno.ENOSYS, errno.EINVAL):
        return False
    raise StorageError(f"cannot reserve {size} bytes for a cache entry: {os.strerror(error)}")


def settle(fd: int, layout: EntryLayout) -> Settled:
    """Fill the gaps shorter than the layout's ``min_hole`` with zeros, punch the others.

    Gaps are what SEEK_HOLE reports: holes, and reserved blocks never written (XFS, ext4
    and btrfs report unwritten extents as holes). Does not fsync: the caller does, once.
    """
    size = os.fstat(fd).st_size
    filled = punched = 0
    for start, end in _gaps(fd, size):
        if end - start < layout.min_hole_bytes:
            _write_zeros(fd, start, end)
            filled += end - start
        else:
            punch_hole(fd, start, end)
            punched += end - start
    return Settled(filled_bytes=filled, punched_bytes=punched)


def _gaps(fd: int, size: int) -> list[tuple[int, int]]:
    gaps = []
    offset = 0
    while offset < size:
        start = os.lseek(fd, offset, os.SEEK_HOLE)
        if start >= size:
            break
        try:
            end = os.lseek(fd, start, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no data after start, the gap runs to EOF
                raise
            end = size
        gaps.append((start, end))
        offset = end
    return gaps


def punch_hole(fd: int, start: int, end: int) -> None:
    """Free the blocks of ``start``..``end``: they read as zeros and take no space."""
    if _libc.fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, start, end - start):
        error = ctypes.get_errno()
        raise StorageError(f"cannot punch a hole: {os.strerror(error)}")


def _write_zeros(fd: int, start: int, end: int) -> None:
    offset = start
    while offset < end:
        offset += os.pwrite(fd, _ZEROS[: min(len(_ZEROS), end - offset)], offset)
