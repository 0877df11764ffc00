"""Where a FlexVol cannot reflink (ext4, tmpfs), volumes are still cut, and say how."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bootvol.bench.content import file_sha256, volume_sha256
from bootvol.bench.loopback import FsKind
from bootvol.db.models import VolumeStatus
from bootvol.images.service import ImageCreate
from bootvol.units import MiB
from bootvol.volumes.service import VolumeCreate

from ..support import Estate


@pytest.fixture(params=[FsKind.EXT4, FsKind.TMPFS])
def plain_fs(request: pytest.FixtureRequest, small_fs) -> Path:
    return small_fs(request.param, 256)


def estate_on(make_estate, plain_fs: Path, clone_method: str) -> Estate:
    return make_estate(
        extra=f'clone_method = "{clone_method}"',
        flexvols={
            "images": ("svm1", plain_fs / "images"),
            "vol_a": ("svm1", plain_fs / "vol_a"),
        },
    )


def test_auto_falls_back_to_a_qcow2_overlay(make_estate, plain_fs: Path) -> None:
    estate = estate_on(make_estate, plain_fs, "auto")
    assert not estate.app.topology.get("vol_a").capabilities.reflink
    raw = estate.sample("disk.raw", size_mib=16)
    image = estate.app.images.create_from_file(ImageCreate(name="d", disk_format="raw"), raw).id
    first = estate.app.volumes.create(VolumeCreate(image=image, size_gib=2, flexvol="vol_a"))
    second = estate.app.volumes.create(VolumeCreate(image=image, size_gib=2, flexvol="vol_a"))
    for volume in (first, second):
        assert volume.status == VolumeStatus.AVAILABLE, volume.message
        assert volume.file_format == "qcow2"
        assert volume.provisioning.clone_method == "qcow2"
        assert "cannot reflink" in volume.provisioning.skipped["reflink"]
        got = volume_sha256(Path(volume.file), file_format="qcow2", length=raw.stat().st_size)
        assert got == file_sha256(raw)
        assert os.stat(volume.file).st_size < MiB  # thin: the data stays in the cache entry
    assert second.provisioning.path == "cache-clone"

    # The overlay's backing file outlives cache eviction and image deletion (hard link).
    estate.app.images.delete(image)
    for entry in Path(estate.flexvols["vol_a"]).glob("img-cache-*"):
        entry.unlink()
    got = volume_sha256(Path(first.file), file_format="qcow2", length=raw.stat().st_size)
    assert got == file_sha256(raw)
    extended = estate.app.volumes.extend(first.id, 4)
    assert extended.size_gib == 4
    estate.app.volumes.delete(first.id)
    assert list((Path(estate.flexvols["vol_a"]) / ".bootvol" / "bases").iterdir()) == [
        Path(estate.flexvols["vol_a"]) / ".bootvol" / "bases" / f"volume-{second.id}.base"
    ]


def test_copy_method_makes_sparse_raw_copies(make_estate, plain_fs: Path) -> None:
    estate = estate_on(make_estate, plain_fs, "copy")
    raw = estate.sample("disk.raw", size_mib=16)
    image = estate.app.images.create_from_file(ImageCreate(name="d", disk_format="raw"), raw).id
    volume = estate.app.volumes.create(VolumeCreate(image=image, size_gib=1, flexvol="vol_a"))
    assert volume.status == VolumeStatus.AVAILABLE, volume.message
    assert volume.file_format == "raw"
    assert volume.provisioning.clone_method == "copy"
    assert volume.provisioning.host_bytes == 0  # copy_file_range / sendfile in the kernel
    assert os.stat(volume.file).st_blocks * 512 <= raw.stat().st_blocks * 512 + MiB
    got = volume_sha256(Path(volume.file), file_format="raw", length=raw.stat().st_size)
    assert got == file_sha256(raw)


def test_forced_reflink_on_a_plain_filesystem_fails_clearly(make_estate, plain_fs) -> None:
    estate = estate_on(make_estate, plain_fs, "reflink")
    raw = estate.sample("disk.raw", size_mib=4)
    image = estate.app.images.create_from_file(ImageCreate(name="d", disk_format="raw"), raw).id
    volume = estate.app.volumes.create(VolumeCreate(image=image, size_gib=1, flexvol="vol_a"))
    assert volume.status == VolumeStatus.ERROR
    assert "reflink" in volume.message
    assert not list(Path(estate.flexvols["vol_a"]).glob("volume-*"))
