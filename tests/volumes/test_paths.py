"""Each provisioning path is taken exactly when the flowchart says, with identical content."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from bootvol.bench.content import file_sha256, volume_sha256
from bootvol.db.models import VolumeRecord, VolumeStatus
from bootvol.images.service import ImageCreate
from bootvol.volumes import placement
from bootvol.volumes.cache import ImageCache
from bootvol.volumes.records import FlowchartStep
from bootvol.volumes.service import VolumeCreate

from ..support import BOTH_DATABASES, Estate, MiB

pytestmark = BOTH_DATABASES


def create(estate: Estate, image: str, flexvol: str, size_gib: int = 1) -> VolumeRecord:
    volume = estate.app.volumes.create(
        VolumeCreate(image=image, size_gib=size_gib, flexvol=flexvol)
    )
    assert volume.status == VolumeStatus.AVAILABLE, volume.message
    return volume


def assert_same_content(volume: VolumeRecord, raw: Path) -> None:
    """The volume reads the image's bytes, then zeros: one MiB past the image is compared."""
    size = raw.stat().st_size
    assert volume.file is not None and volume.size_gib << 30 >= size + MiB
    got = volume_sha256(Path(volume.file), file_format=volume.file_format, length=size + MiB)
    expected = hashlib.sha256(raw.read_bytes() + bytes(MiB)).hexdigest()
    assert got == expected, f"volume {volume.id} differs from the image followed by zeros"


def path_of(volume: VolumeRecord) -> str:
    assert volume.provisioning is not None
    return volume.provisioning.path


def upload(estate: Estate, raw: Path, name: str, disk_format: str = "raw") -> str:
    return estate.app.images.create_from_file(
        ImageCreate(name=name, disk_format=disk_format), raw
    ).id


def test_raw_image_paths_in_flowchart_order(estate: Estate) -> None:
    raw = estate.sample("disk.raw")
    image = upload(estate, raw, "disk")

    # 2. raw image stored in the destination FlexVol → direct clone, by reflink.
    direct = create(estate, image, "images")
    assert path_of(direct) == "direct-clone"
    assert direct.provisioning.clone_method == "reflink"
    assert "cache-clone" in direct.provisioning.skipped
    assert_same_content(direct, raw)

    # 3. image in another FlexVol of the cluster → copy offload (sendfile between two XFS).
    offloaded = create(estate, image, "vol_a")
    assert path_of(offloaded) == "copy-offload"
    assert offloaded.provisioning.copy_method == "sendfile"
    assert offloaded.provisioning.host_bytes == 0
    assert "direct-clone" in offloaded.provisioning.skipped
    assert_same_content(offloaded, raw)

    # 1. now cached in vol_a → cache clone.
    cached = create(estate, image, "vol_a")
    assert path_of(cached) == "cache-clone"
    assert cached.provisioning.clone_method == "reflink"
    assert_same_content(cached, raw)

    # 1b. cached in vol_a, wanted on vol_b (btrfs, same cluster) → offload from that cache.
    from_cache = create(estate, image, "vol_b")
    assert path_of(from_cache) == "copy-offload"
    assert "vol_a" in from_cache.provisioning.source
    assert_same_content(from_cache, raw)

    # 4. vol_c is in another cluster: no offload, the image is downloaded from the store.
    remote = create(estate, image, "vol_c")
    assert path_of(remote) == "download"
    assert "cluster" in remote.provisioning.skipped[FlowchartStep.OFFLOAD_FROM_IMAGE_FILE]
    assert remote.provisioning.host_bytes >= 2 * raw.stat().st_size
    assert_same_content(remote, raw)


def test_copy_offload_on_one_filesystem_uses_copy_file_range(estate: Estate) -> None:
    raw = estate.sample("disk.raw")
    image = upload(estate, raw, "disk")
    # vol_same is another folder on the image store's filesystem: the kernel reflinks.
    volume = create(estate, image, "vol_same")
    assert path_of(volume) == "copy-offload"
    assert volume.provisioning.copy_method == "copy_file_range"
    assert volume.provisioning.host_bytes == 0
    assert_same_content(volume, raw)


def test_remote_qcow2_image_is_downloaded_once_then_cloned(estate: Estate) -> None:
    image, raw = estate.remote_image()
    first = create(estate, image, "vol_a")
    assert path_of(first) == "download"
    steps = [s.name for s in first.provisioning.steps]
    assert {"download", "inspect", "convert"} <= set(steps)
    assert first.provisioning.host_bytes > raw.stat().st_size  # bytes crossed this host
    assert_same_content(first, raw)
    cache_entry = ImageCache(estate.app.topology.get("vol_a")).entry_path(image)
    assert file_sha256(cache_entry) == file_sha256(raw)  # the cache holds raw

    second = create(estate, image, "vol_a")
    assert path_of(second) == "cache-clone"
    assert_same_content(second, raw)


def test_qcow2_image_copy_offload_converts_on_the_flexvol(estate: Estate) -> None:
    raw = estate.sample("disk.raw")
    qcow2 = estate.sample_qcow2(raw, "disk.qcow2")
    image = upload(estate, qcow2, "q", disk_format="qcow2")
    # A qcow2 image is never cloned directly, even in its own FlexVol.
    on_store = create(estate, image, "images")
    assert on_store.provisioning.skipped["direct-clone"].startswith("the image is qcow2")
    assert path_of(on_store) == "copy-offload"
    assert "convert" in [s.name for s in on_store.provisioning.steps]
    # qemu-img still reads the qcow2 and writes raw on this host: the record says so.
    assert on_store.provisioning.host_bytes > raw.stat().st_size // 2
    assert_same_content(on_store, raw)
    # The converted raw cache entry then offloads to other FlexVols without conversion.
    volume = create(estate, image, "vol_a")
    assert path_of(volume) == "copy-offload"
    assert "convert" not in [s.name for s in volume.provisioning.steps]
    assert volume.provisioning.host_bytes == 0
    assert_same_content(volume, raw)


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"vstorage": False}, "vstorage is disabled"),
        ({"version": "8.1.0"}, "needs 8.2 or later"),
        ({"extra": "copy_offload = false"}, "copy_offload is off"),
    ],
)
def test_copy_offload_only_when_allowed(make_estate, settings: dict, reason: str) -> None:
    estate = make_estate(**settings)
    raw = estate.sample("disk.raw")
    image = upload(estate, raw, "disk")
    volume = create(estate, image, "vol_a")
    assert path_of(volume) == "download"
    skipped = volume.provisioning.skipped
    assert reason in skipped[FlowchartStep.OFFLOAD_FROM_IMAGE_FILE]
    # Each copy offload says why it was not taken, under its own name.
    assert skipped[FlowchartStep.OFFLOAD_FROM_CACHE] == "no other FlexVol caches the image"
    assert_same_content(volume, raw)


def test_volume_extends_to_requested_size(estate: Estate) -> None:
    raw = estate.sample("disk.raw")
    image = upload(estate, raw, "disk")
    volume = create(estate, image, "vol_a", size_gib=3)
    assert Path(volume.file).stat().st_size == 3 << 30
    assert Path(volume.file).stat().st_blocks * 512 < 2 * raw.stat().st_size  # still sparse
    extended = estate.app.volumes.extend(volume.id, 5)
    assert extended.size_gib == 5
    assert Path(volume.file).stat().st_size == 5 << 30
    assert_same_content(extended, raw)


def test_placement_prefers_cache_then_image_then_space(
    make_estate: Callable[..., Estate],
) -> None:
    # A 1 GiB volume is half of these 2 GiB FlexVols: a margin of 1000 points keeps the
    # FlexVol that caches the image winning (tests/api/test_placement_spread.py: the spread).
    estate = make_estate(extra="[placement]\nspread_margin_percent = 1000")
    raw = estate.sample("disk.raw")
    image = upload(estate, raw, "disk")
    first = estate.app.volumes.create(VolumeCreate(image=image, size_gib=1))
    assert first.flexvol == "images"  # holds the image file
    assert path_of(first) == "direct-clone"
    create(estate, image, "vol_b")  # now vol_b caches it
    second = estate.app.volumes.create(VolumeCreate(image=image, size_gib=1))
    assert second.flexvol == "vol_b"
    assert path_of(second) == "cache-clone"

    # An image in no FlexVol and no cache: the emptiest FlexVol by provisioning, and of
    # those with nothing provisioned, the one with the most available space.
    remote = estate.app.images.create(
        ImageCreate(name="remote", disk_format="raw", url=estate.url("disk.raw"))
    ).id
    # Known in advance, not recomputed by the rule under test: ballast on every other
    # FlexVol's filesystem leaves vol_c with the most available space by 256 MiB or more.
    roomiest = estate.app.topology.get("vol_c")
    for flexvol in estate.app.topology.volume_flexvols():
        excess = flexvol.space().available_bytes - roomiest.space().available_bytes
        if flexvol is not roomiest and excess > -256 * MiB:
            ballast = flexvol.path / "ballast"
            subprocess.run(["fallocate", "-l", str(excess + 256 * MiB), ballast], check=True)
    third = estate.app.volumes.create(VolumeCreate(image=remote, size_gib=1))
    assert third.flexvol == "vol_c"


def test_a_caching_flexvol_wins_only_within_the_margin(estate: Estate) -> None:
    image = upload(estate, estate.sample("disk.raw"), "disk")
    create(estate, image, "vol_a")  # now vol_a caches it
    topology = estate.app.topology
    caching, empty = topology.get("vol_a"), topology.get("vol_b")

    def place(points_fuller: int) -> placement.Placement:
        promised = caching.space().total_bytes * points_fuller // 100
        return placement.choose_flexvol(
            [caching, empty],
            image_id=image,
            image_file=None,
            raw_size=16 * MiB,
            provisioned={"vol_a": promised},
            margin_percent=10,
        )

    near = place(5)
    assert near.flexvol is caching and "already caches the image" in near.reason
    far = place(15)
    assert far.flexvol is empty
    assert "more than 10 points fuller" in far.reason and "gets it in its cache" in far.reason


def test_delete_removes_volume_file(estate: Estate) -> None:
    raw = estate.sample("disk.raw")
    image = upload(estate, raw, "disk")
    volume = create(estate, image, "vol_a")
    estate.app.volumes.delete(volume.id)
    assert not Path(volume.file).exists()
    assert estate.app.volumes.list() == []
