"""An OS-like disk image built from this machine's own files, for the benchmark.

What decides a clone's speed is the layout of the cache entry, and that follows the image:
a real OS image is a filesystem whose files were written, some removed again (package
caches, build leftovers), and whose free blocks were zeroed before it was compressed, so its
data lies in runs of every length between holes of every length. This builds one the same
way, without root:

1. ``mkfs.ext4 -d`` from a copy of this machine's ``/usr`` files (three quarters of the
   filesystem's size, in path order; hard links where the filesystem allows, else copies);
2. every third of those files removed again (``debugfs rm``), as an image build does;
3. the filesystem's free blocks punched out and zero blocks dug out, as ``virt-sparsify``
   or zerofree + a sparse copy would;
4. converted to qcow2 by ``qemu-img`` (64 KiB clusters: the partly free ones keep their
   zeros, as every qcow2 image does).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bootvol.errors import BootvolError
from bootvol.storage.copy import data_segments
from bootvol.storage.layout import punch_hole

SOURCE_TREE = Path("/usr")
FILL_FRACTION = 0.75  # of the filesystem's size, before removals
REMOVE_EVERY = 3  # every third file is removed again
_BLOCK = 4096
_DIG_CHUNK = 1 << 20
_ZERO_CHUNK = bytes(_DIG_CHUNK)
_ZERO_BLOCK = bytes(_BLOCK)


@dataclass(frozen=True)
class OsImage:
    raw: Path
    files: int  # files left in the filesystem


def make_os_image(raw: Path, *, size_bytes: int, staging: Path) -> OsImage:
    """Build the raw OS-like image at ``raw`` (``size_bytes``, a multiple of 4 KiB);
    ``staging`` is a scratch folder for the file tree, removed afterwards."""
    for tool in ("mkfs.ext4", "debugfs", "dumpe2fs"):
        if shutil.which(tool) is None:
            raise BootvolError(f"the OS-like image needs {tool}: install e2fsprogs/util-linux")
    size_bytes -= size_bytes % _BLOCK
    try:
        files = _stage(SOURCE_TREE, staging, budget=int(size_bytes * FILL_FRACTION))
        mkfs = ["mkfs.ext4", "-q", "-F", "-b", str(_BLOCK), "-d", str(staging), str(raw)]
        _run([*mkfs, f"{size_bytes // 1024}k"])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    removed = files[REMOVE_EVERY - 1 :: REMOVE_EVERY]
    commands = raw.with_name(f"{raw.name}.debugfs")
    commands.write_text("".join(f'rm "/{path}"\n' for path in removed))
    try:
        _run(["debugfs", "-w", "-f", str(commands), str(raw)])
    finally:
        commands.unlink()
    _punch_free_blocks(raw)
    dig_holes(raw)
    return OsImage(raw=raw, files=len(files) - len(removed))


def _stage(source: Path, staging: Path, *, budget: int) -> list[str]:
    """Link or copy regular files of ``source`` into ``staging`` (symlinks as symlinks), in
    path order, until ``budget`` bytes; return the staged files' paths, relative."""
    staged: list[str] = []
    used = 0
    for root, dirs, names in os.walk(source):
        dirs.sort()
        relative = Path(root).relative_to(source)
        (staging / relative).mkdir(parents=True, exist_ok=True)
        for name in sorted(names):
            original, copy = Path(root) / name, staging / relative / name
            try:
                info = original.lstat()
            except OSError:
                continue
            if stat.S_ISLNK(info.st_mode):
                os.symlink(os.readlink(original), copy)
            elif (
                stat.S_ISREG(info.st_mode)
                and used + info.st_size <= budget
                and _link_or_copy(original, copy)
            ):
                staged.append(str(relative / name))
                used += info.st_size
        if used >= budget - _BLOCK:
            break
    if not staged:
        raise BootvolError(f"no readable files under {source} to build the OS-like image from")
    return staged


def _link_or_copy(original: Path, copy: Path) -> bool:
    try:
        os.link(original, copy)
        return True
    except OSError:
        pass
    try:
        shutil.copyfile(original, copy)
        return True
    except OSError:
        return False


def _punch_free_blocks(raw: Path) -> None:
    """Make every block the filesystem calls free a hole (their old contents are gone)."""
    listing = subprocess.run(
        ["dumpe2fs", str(raw)], capture_output=True, text=True, check=True
    ).stdout
    fd = os.open(raw, os.O_WRONLY)
    try:
        for line in listing.splitlines():
            line = line.strip()
            if not line.startswith("Free blocks: "):
                continue
            for first, last in re.findall(r"(\d+)(?:-(\d+))?", line.removeprefix("Free blocks: ")):
                punch_hole(fd, int(first) * _BLOCK, (int(last or first) + 1) * _BLOCK)
    finally:
        os.close(fd)


def dig_holes(path: Path) -> None:
    """Turn every zero 4 KiB block of ``path`` into a hole (as ``fallocate --dig-holes``,
    which here now and then left zero blocks behind)."""
    fd = os.open(path, os.O_RDWR)
    try:
        for start, length in data_segments(fd, os.fstat(fd).st_size):
            for offset in range(start, start + length, _DIG_CHUNK):
                chunk = os.pread(fd, min(_DIG_CHUNK, start + length - offset), offset)
                for begin, end in _zero_runs(chunk):
                    punch_hole(fd, offset + begin, offset + end)
        os.fsync(fd)
    finally:
        os.close(fd)


def _zero_runs(chunk: bytes) -> list[tuple[int, int]]:
    """The runs of whole zero blocks in ``chunk`` (offsets from its start)."""
    if chunk == _ZERO_CHUNK[: len(chunk)]:
        return [(0, len(chunk) - len(chunk) % _BLOCK)]
    runs: list[tuple[int, int]] = []
    view = memoryview(chunk)
    for offset in range(0, len(chunk) - _BLOCK + 1, _BLOCK):
        if view[offset : offset + _BLOCK] == _ZERO_BLOCK:
            if runs and runs[-1][1] == offset:
                runs[-1] = (runs[-1][0], offset + _BLOCK)
            else:
                runs.append((offset, offset + _BLOCK))
    return runs


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BootvolError(f"{' '.join(command)} failed: {result.stderr.strip()}")
