"""Kernel-side file copies: reflink clones and sparse copy offload.

These functions move file contents without image bytes passing through this process
whenever the kernel allows it, and report how many bytes did pass through user space when
it does not. They know nothing of images, volumes or the database.
"""

from __future__ import annotations

import enum
import errno
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from bootvol.errors import CloneNotSupported, StorageError
from bootvol.storage.layout import EntryLayout, reserve, settle

# linux/fs.h: _IOW(0x94, 9, int). FICLONE shares the source's extents with the destination.
FICLONE = 0x40049409

# Errors with which the kernel says "not this way", as opposed to a real I/O failure:
# EXDEV (two filesystems; since 5.19 copy_file_range refuses most cross-filesystem copies),
# EOPNOTSUPP/ENOTTY/EINVAL (the filesystem has no such operation), ENOSYS (old kernel).
_NOT_THIS_WAY = {errno.EXDEV, errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL, errno.ENOSYS}

_CHUNK = 1 << 30  # per syscall; the kernel caps one call at about 2 GiB anyway
_USER_SPACE_BUFFER = 1 << 20


class CopyMethod(enum.StrEnum):
    """How a copy offload actually moved the bytes, most to least efficient."""

    COPY_FILE_RANGE = "copy_file_range"  # same filesystem: reflink; NFS 4.2: server-side COPY
    SENDFILE = "sendfile"  # two local filesystems: page cache to page cache, in the kernel
    USER_SPACE = "user-space"  # read()/write() through this process; counted in host bytes


@dataclass(frozen=True)
class CopyResult:
    method: CopyMethod
    bytes_copied: int  # data bytes (holes excluded)
    host_bytes: int  # bytes read plus written through this process's buffers


def reflink(source: Path, destination: Path) -> None:
    """Make ``destination`` a copy-on-write clone of ``source`` in constant time.

    Both must be on the same reflink-capable filesystem (XFS with reflink=1, btrfs, NFS 4.2
    CLONE). Raises CloneNotSupported when the filesystem says no, and removes the empty
    destination it created; any other failure is a StorageError.
    """
    src_fd = os.open(source, os.O_RDONLY)
    try:
        dst_fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            fcntl.ioctl(dst_fd, FICLONE, src_fd)
        except OSError as exc:
            os.close(dst_fd)
            dst_fd = -1
            destination.unlink(missing_ok=True)
            if exc.errno in _NOT_THIS_WAY:
                raise CloneNotSupported(
                    f"cannot reflink {source} to {destination}: {exc.strerror}"
                ) from exc
            raise StorageError(f"reflink {source} → {destination} failed: {exc}") from exc
        finally:
            if dst_fd >= 0:
                os.close(dst_fd)
    finally:
        os.close(src_fd)


def data_segments(fd: int, size: int) -> list[tuple[int, int]]:
    """The (offset, length) runs of ``fd`` that hold data, found with SEEK_DATA/SEEK_HOLE."""
    segments: list[tuple[int, int]] = []
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no data past offset: the rest is a hole
                break
            raise
        end = os.lseek(fd, start, os.SEEK_HOLE)
        segments.append((start, min(end, size) - start))
        offset = end
    return segments


def data_bytes(path: Path) -> int:
    """Bytes of ``path`` that hold data, holes excluded."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return sum(length for _, length in data_segments(fd, os.fstat(fd).st_size))
    finally:
        os.close(fd)


def sparse_copy(
    source: Path,
    destination: Path,
    *,
    allow_user_space: bool = True,
    layout: EntryLayout | None = None,
) -> CopyResult:
    """Copy ``source`` into a new file ``destination`` keeping its holes.

    Tries, per data segment, ``copy_file_range`` (a reflink on the same XFS/btrfs, a
    server-side COPY on NFS 4.2), then ``sendfile`` (in-kernel between two local
    filesystems), and only when both refuse and ``allow_user_space`` is true a read/write
    loop whose bytes are reported in ``host_bytes``. The destination is fsynced. On any
    failure it is removed and StorageError is raised.

    With a dense ``layout`` (a cache entry) and ``source`` on another filesystem, the copy
    is laid out as bootvol.storage.layout says. On the same filesystem the kernel shares
    the source's extents, and the copy is exactly as fragmented as its source.
    """
    src_fd = os.open(source, os.O_RDONLY)
    try:
        dst_fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as exc:
        os.close(src_fd)
        raise StorageError(f"cannot create {destination}: {exc.strerror}") from exc
    try:
        size = os.fstat(src_fd).st_size
        # Size the file first: writes inside EOF get no speculative preallocation (XFS would
        # otherwise allocate the holes between data segments and lose the sparseness).
        os.ftruncate(dst_fd, size)
        if layout is not None and not (
            layout.dense
            and os.fstat(src_fd).st_dev != os.fstat(dst_fd).st_dev
            and reserve(dst_fd, size)
        ):
            layout = None  # written sparse as it comes
        method = CopyMethod.COPY_FILE_RANGE
        copied = host_bytes = 0
        for start, length in data_segments(src_fd, size):
            method, moved = _copy_segment(src_fd, dst_fd, start, length, method, allow_user_space)
            copied += length
            if method is CopyMethod.USER_SPACE:
                host_bytes += moved
        if layout is not None:
            settle(dst_fd, layout)
        os.fsync(dst_fd)
        return CopyResult(method=method, bytes_copied=copied, host_bytes=host_bytes)
    except BaseException as exc:
        os.close(dst_fd)
        dst_fd = -1
        destination.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            if exc.errno == errno.ENOSPC:
                raise StorageError(f"no space left copying {source} to {destination}") from exc
            raise StorageError(f"copy {source} → {destination} failed: {exc}") from exc
        raise
    finally:
        if dst_fd >= 0:
            os.close(dst_fd)
        os.close(src_fd)


def _copy_segment(
    src_fd: int,
    dst_fd: int,
    start: int,
    length: int,
    method: CopyMethod,
    allow_user_space: bool,
) -> tuple[CopyMethod, int]:
    """Copy one data segment with the best method that works; return (method, user bytes)."""
    if method is CopyMethod.COPY_FILE_RANGE:
        try:
            _copy_file_range_segment(src_fd, dst_fd, start, length)
            return method, 0
        except OSError as exc:
            if exc.errno not in _NOT_THIS_WAY:
                raise
            method = CopyMethod.SENDFILE
    if method is CopyMethod.SENDFILE:
        try:
            _sendfile_segment(src_fd, dst_fd, start, length)
            return method, 0
        except OSError as exc:
            if exc.errno not in _NOT_THIS_WAY or not allow_user_space:
                raise
            method = CopyMethod.USER_SPACE
    return method, _user_space_segment(src_fd, dst_fd, start, length)


def _copy_file_range_segment(src_fd: int, dst_fd: int, start: int, length: int) -> None:
    done = 0
    while done < length:
        n = os.copy_file_range(
            src_fd, dst_fd, min(_CHUNK, length - done), start + done, start + done
        )
        if n == 0:
            raise OSError(errno.EIO, "copy_file_range made no progress (source shrank?)")
        done += n


def _sendfile_segment(src_fd: int, dst_fd: int, start: int, length: int) -> None:
    # sendfile writes at the destination's file position, so place it first.
    os.lseek(dst_fd, start, os.SEEK_SET)
    done = 0
    while done < length:
        n = os.sendfile(dst_fd, src_fd, start + done, min(_CHUNK, length - done))
        if n == 0:
            raise OSError(errno.EIO, "sendfile made no progress (source shrank?)")
        done += n


def _user_space_segment(src_fd: int, dst_fd: int, start: int, length: int) -> int:
    done = 0
    while done < length:
        buffer = os.pread(src_fd, min(_USER_SPACE_BUFFER, length - done), start + done)
        if not buffer:
            raise OSError(errno.EIO, "source shrank during copy")
        written = 0
        while written < len(buffer):
            written += os.pwrite(dst_fd, buffer[written:], start + done + written)
        done += len(buffer)
    return 2 * done  # every byte read into our buffer, then written out of it
