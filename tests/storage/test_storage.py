"""The storage layer on real filesystems: clones, sparse copy offload, capabilities, rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bootvol.bench.loopback import FsKind
from bootvol.bench.samples import make_raw
from bootvol.errors import CloneNotSupported
from bootvol.storage.cluster import Cluster, Svm, copy_offload_decision
from bootvol.storage.copy import CopyMethod, reflink, sparse_copy
from bootvol.storage.flexvol import FlexVol
from bootvol.units import MiB


def allocated(path: Path) -> int:
    return path.stat().st_blocks * 512


def test_reflink_shares_blocks_on_xfs(mounts: dict[str, Path], tmp_path: Path) -> None:
    folder = mounts["xfs_a"] / f"t-{tmp_path.name}"
    folder.mkdir()
    source = make_raw(folder / "src", size_bytes=32 * MiB)
    stats = os.statvfs(folder)
    before = stats.f_bfree * stats.f_frsize
    reflink(source, folder / "clone")
    os.sync()
    stats = os.statvfs(folder)
    assert before - stats.f_bfree * stats.f_frsize < MiB  # no new data blocks
    assert (folder / "clone").read_bytes() == source.read_bytes()


def test_reflink_refuses_across_filesystems(mounts: dict[str, Path], tmp_path: Path) -> None:
    source = make_raw(tmp_path / "src", size_bytes=MiB)
    destination = mounts["xfs_b"] / f"clone-{tmp_path.name}"
    with pytest.raises(CloneNotSupported):
        reflink(source, destination)
    assert not destination.exists()


@pytest.mark.parametrize(
    ("source_fs", "destination_fs", "method"),
    [
        ("xfs_a", "xfs_a", CopyMethod.COPY_FILE_RANGE),
        ("xfs_a", "xfs_b", CopyMethod.SENDFILE),
        ("xfs_a", "btrfs", CopyMethod.SENDFILE),
        ("btrfs", "btrfs", CopyMethod.COPY_FILE_RANGE),
    ],
)
def test_sparse_copy_keeps_holes_and_stays_in_the_kernel(
    mounts: dict[str, Path],
    tmp_path: Path,
    source_fs: str,
    destination_fs: str,
    method: CopyMethod,
) -> None:
    source = make_raw(
        mounts[source_fs] / f"src-{tmp_path.name}", size_bytes=64 * MiB, fill_every_mib=4
    )
    destination = mounts[destination_fs] / f"dst-{tmp_path.name}"
    try:
        result = sparse_copy(source, destination)
        assert result.method is method
        assert result.host_bytes == 0
        assert result.bytes_copied == 16 * MiB
        assert destination.stat().st_size == source.stat().st_size
        assert allocated(destination) <= allocated(source) + MiB  # holes stayed holes
        assert destination.read_bytes() == source.read_bytes()
    finally:
        source.unlink()
        destination.unlink(missing_ok=True)


def test_sparse_copy_keeps_a_trailing_hole(small_fs) -> None:
    mount = small_fs(FsKind.EXT4, 64)
    source = mount / "src"
    with open(source, "wb") as handle:
        handle.write(b"x" * 4096)
        handle.truncate(8 * MiB)
    destination = mount / "dst"
    sparse_copy(source, destination)
    assert destination.stat().st_size == 8 * MiB
    assert destination.read_bytes() == source.read_bytes()


def test_capabilities_detect_reflink(mounts: dict[str, Path], small_fs, tmp_path) -> None:
    svm = Svm("s", Cluster("c", "9.14.1"), True)
    xfs = FlexVol(name="x", svm=svm, path=mounts["xfs_a"] / f"cap-{tmp_path.name}")
    ext4 = FlexVol(name="e", svm=svm, path=small_fs(FsKind.EXT4, 16) / "e")
    assert xfs.capabilities.reflink and xfs.capabilities.filesystem == "xfs"
    assert not ext4.capabilities.reflink and ext4.capabilities.filesystem == "ext4"
    assert list((ext4.state_dir / "tmp").iterdir()) == []  # the probe cleaned up


def test_copy_offload_rules() -> None:
    new, old, other = Cluster("c1", "9.14.1"), Cluster("c0", "8.1.4"), Cluster("c2", "9.1")
    on, off = Svm("on", new, True), Svm("off", new, False)
    assert copy_offload_decision(on, on, enabled=True).allowed
    assert not copy_offload_decision(on, on, enabled=False).allowed
    assert "vstorage is disabled on SVM off" in copy_offload_decision(on, off, enabled=True).reason
    assert (
        "stays within one cluster"
        in copy_offload_decision(on, Svm("x", other, True), enabled=True).reason
    )
    assert (
        "needs 8.2"
        in copy_offload_decision(Svm("a", old, True), Svm("b", old, True), enabled=True).reason
    )
    assert copy_offload_decision(
        Svm("a", Cluster("c", "8.2"), True), Svm("b", Cluster("c", "8.2"), True), enabled=True
    ).allowed
