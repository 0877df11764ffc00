"""Throwaway loopback filesystems (XFS reflink, btrfs, ext4) and tmpfs mounts.

The tests and the benchmark build real FlexVols with these: a sparse backing file, ``mkfs``,
and ``mount -o loop``. They need root and loop devices; :func:`loopback_unavailable` says
why not when they cannot run.
"""

from __future__ import annotations

import enum
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class FsKind(enum.StrEnum):
    XFS = "xfs"  # mkfs.xfs -m reflink=1
    BTRFS = "btrfs"
    EXT4 = "ext4"  # no reflink: exercises the clone fallbacks
    TMPFS = "tmpfs"  # no reflink, no backing file


_MKFS = {
    FsKind.XFS: ["mkfs.xfs", "-q", "-f", "-m", "reflink=1"],
    FsKind.BTRFS: ["mkfs.btrfs", "-q", "-f"],
    FsKind.EXT4: ["mkfs.ext4", "-q", "-F"],
}
# Smallest sizes the tools accept (XFS refuses below 300 MiB since xfsprogs 5.19).
MIN_SIZE_MIB = {FsKind.XFS: 300, FsKind.BTRFS: 128, FsKind.EXT4: 8, FsKind.TMPFS: 1}


def loopback_unavailable() -> str | None:
    """Why loopback filesystems cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root (mount, losetup)"
    if not Path("/dev/loop-control").exists():
        return "no loop device support (/dev/loop-control missing)"
    for tool in ("mount", "umount", "mkfs.xfs", "mkfs.btrfs", "mkfs.ext4"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")


@contextmanager
def mounted_filesystem(
    kind: FsKind,
    mount_point: Path,
    *,
    size_mib: int,
    backing_dir: Path | None = None,
    direct_io: bool = False,
) -> Iterator[Path]:
    """Make and mount a filesystem of ``kind`` at ``mount_point``; unmount and remove after.

    With ``direct_io`` the loop device reads and writes its backing file with O_DIRECT
    (4 KiB sectors), as a disk would: no second copy of every block in the page cache of
    the filesystem below, and an fsync costs what the disk costs. The benchmark wants that;
    a buffered loop device makes durable writes cost a memory copy per block on top.
    """
    size_mib = max(size_mib, MIN_SIZE_MIB[kind])
    mount_point.mkdir(parents=True, exist_ok=True)
    image: Path | None = None
    device: str | None = None
    try:
        if kind is FsKind.TMPFS:
            _run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(mount_point)])
        else:
            image = (backing_dir or mount_point.parent) / f".{mount_point.name}.{kind}.img"
            with open(image, "wb") as backing:
                backing.truncate(size_mib << 20)  # sparse: costs only what is written
            if direct_io:
                device = _attach(image)
                _run([*_MKFS[kind], device])
                _run(["mount", device, str(mount_point)])
            else:
                _run([*_MKFS[kind], str(image)])
                _run(["mount", "-o", "loop", str(image), str(mount_point)])
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, check=False)
        if device is not None:
            # On a device still busy (lazy unmount) the kernel defers the detach to its
            # last close instead of failing.
            subprocess.run(["losetup", "-d", device], capture_output=True, check=False)
        if image is not None:
            image.unlink(missing_ok=True)


def _attach(image: Path) -> str:
    result = subprocess.run(
        ["losetup", "--find", "--show", "--direct-io=on", "--sector-size", "4096", str(image)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"losetup {image} failed: {result.stderr.strip()}")
    return result.stdout.strip()
