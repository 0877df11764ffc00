"""File locks that hold across processes and across nodes sharing an NFS mount.

``flock`` on Linux NFS clients is emulated with byte-range (POSIX) locks on the server, so a
lock taken here is seen by every node that mounts the same FlexVol. Lock files are tiny and
are never deleted: deleting a lock file while another process holds it open would let a third
process lock a new inode of the same name and believe it is alone.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class LockBusy(Exception):
    """A non-blocking lock attempt found the lock taken."""


@contextmanager
def file_lock(path: Path, *, shared: bool = False, blocking: bool = True) -> Iterator[None]:
    """Hold an flock on ``path`` (created if missing) for the duration of the block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        if not blocking:
            mode |= fcntl.LOCK_NB
        try:
            fcntl.flock(fd, mode)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise LockBusy(str(path)) from exc
            raise
        yield
    finally:
        os.close(fd)  # closing releases the lock
