"""Cache entry layouts on real filesystems: short gaps stored as zeros, long ones holes, few
extents, the same bytes (bootvol.storage.layout, and the two writers that use it)."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from bootvol.bench.samples import make_qcow2
from bootvol.config import CacheSettings
from bootvol.storage import qemu_img
from bootvol.storage.copy import CopyMethod, data_bytes, data_segments, sparse_copy
from bootvol.storage.layout import SPARSE, EntryLayout, extent_count
from bootvol.units import KiB, MiB

DENSE = EntryLayout(min_hole_bytes=MiB)
BLOCKS = 200  # data blocks, each followed by a short gap
LONG_GAP = 8 * MiB


def fragmented_raw(path: Path) -> tuple[Path, int]:
    """A raw disk of 64 KiB data blocks with 8-64 KiB holes between (as free space in an OS
    image lies), then one 8 MiB hole and a last block; returns it and its data bytes."""
    offset = 0
    with open(path, "wb") as out:
        for number in range(BLOCKS):
            out.seek(offset)
            out.write((number + 1).to_bytes(4, "big") * (16 * KiB))  # 64 KiB, no zero block
            offset += 64 * KiB + (8 + 8 * (number % 8)) * KiB
        offset += LONG_GAP
        out.seek(offset)
        out.write(b"\xff" * 64 * KiB)
        out.truncate(offset + 64 * KiB + MiB)  # and a trailing hole
    return path, (BLOCKS + 1) * 64 * KiB


def extents(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        return extent_count(fd)
    finally:
        os.close(fd)


def holes_longer_than(path: Path, length: int) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        segments = data_segments(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)
    gaps = [b[0] - (a[0] + a[1]) for a, b in itertools.pairwise(segments)]
    return sum(1 for gap in gaps if gap >= length)


def test_a_dense_conversion_fills_short_gaps_and_keeps_long_holes(
    mounts: dict[str, Path], tmp_path: Path
) -> None:
    raw, data = fragmented_raw(tmp_path / "image.raw")
    qcow2 = make_qcow2(raw, tmp_path / "image.qcow2")
    folder = mounts["xfs_a"] / f"layout-{tmp_path.name}"
    folder.mkdir()
    size = raw.stat().st_size
    sparse, dense = folder / "sparse", folder / "dense"
    qemu_img.convert_to_raw(qcow2, sparse, source_format="qcow2", virtual_size=size, layout=SPARSE)
    qemu_img.convert_to_raw(qcow2, dense, source_format="qcow2", virtual_size=size, layout=DENSE)

    assert sparse.read_bytes() == dense.read_bytes() == raw.read_bytes()
    assert extents(sparse) > BLOCKS  # every short gap a hole
    # The short gaps are zeros now; only the long hole (and the tail) stay holes.
    assert holes_longer_than(dense, 1) == 1
    assert extents(dense) <= 3
    assert data < data_bytes(dense) < data + BLOCKS * 64 * KiB
    assert dense.stat().st_blocks * 512 < size - LONG_GAP // 2  # the long hole is not held


def test_a_sparse_layout_keeps_every_hole_and_takes_the_least_space(
    mounts: dict[str, Path], tmp_path: Path
) -> None:
    raw, data = fragmented_raw(tmp_path / "image.raw")
    folder = mounts["xfs_a"] / f"layout-{tmp_path.name}"
    folder.mkdir()
    entry = folder / "entry"
    qemu_img.convert_to_raw(
        raw, entry, source_format="raw", virtual_size=raw.stat().st_size, layout=SPARSE
    )
    assert data_bytes(entry) == data
    assert holes_longer_than(entry, 1) == BLOCKS


def test_copy_offload_to_another_filesystem_lays_the_copy_out_the_same_way(
    mounts: dict[str, Path], tmp_path: Path
) -> None:
    source_folder = mounts["xfs_a"] / f"src-{tmp_path.name}"
    source_folder.mkdir()
    source, _ = fragmented_raw(source_folder / "image.raw")
    copy = mounts["xfs_b"] / f"copy-{tmp_path.name}"

    result = sparse_copy(source, copy, layout=DENSE)

    assert result.method is CopyMethod.SENDFILE and result.host_bytes == 0
    assert copy.read_bytes() == source.read_bytes()
    assert holes_longer_than(copy, 1) == 1
    assert extents(copy) <= 3


def test_copy_offload_within_a_filesystem_shares_the_source_as_it_is(
    mounts: dict[str, Path], tmp_path: Path
) -> None:
    folder = mounts["xfs_a"] / f"same-{tmp_path.name}"
    folder.mkdir()
    source, data = fragmented_raw(folder / "image.raw")

    sparse_copy(source, folder / "copy", layout=DENSE)

    # A reflink: no blocks reserved and none written, the source's holes and all.
    assert data_bytes(folder / "copy") == data
    assert holes_longer_than(folder / "copy", 1) == BLOCKS


@pytest.mark.parametrize(
    ("text", "size"), [("4k", 4096), ("64k", 65536), ("1M", MiB), (8192, 8192)]
)
def test_min_hole_takes_sizes_as_operators_write_them(text: str | int, size: int) -> None:
    assert CacheSettings(min_hole=text).layout.min_hole_bytes == size


@pytest.mark.parametrize("text", ["3k", "1.5M", "lots", 0])
def test_min_hole_refuses_what_is_not_a_whole_number_of_blocks(text: str | int) -> None:
    with pytest.raises(ValueError, match=r"min_hole|not a size"):
        CacheSettings(min_hole=text)
