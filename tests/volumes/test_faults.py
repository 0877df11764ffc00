"""Faults during a creation: each ends the volume ``error`` with a message a user can act
on, leaves no file behind (no cache entry, no scratch, no volume file), and the service
goes on making volumes.

ENOSPC while filling the cache, a FlexVol that disappears or turns read-only, an HTTP
source that stalls or hangs up mid-stream, and qemu-img failing on a corrupt image.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bootvol.bench.loopback import FsKind
from bootvol.bench.samples import register_remote
from bootvol.caller import OPERATOR
from bootvol.db.models import VolumeRecord, VolumeStatus
from bootvol.units import MiB
from bootvol.volumes.service import VolumeCreate

from ..faulty_http import FaultyServer
from ..support import Estate

FAST_TIMEOUTS = "[download]\nread_timeout_seconds = 1\n"


@pytest.fixture
def faulty(estate_on_small: Estate) -> Iterator[FaultyServer]:
    with FaultyServer(estate_on_small.workdir) as server:
        yield server


@pytest.fixture
def small_vol(small_fs: Callable[[FsKind, int], Path]) -> Path:
    return small_fs(FsKind.XFS, 300)  # XFS's smallest; ~250 MiB free


@pytest.fixture
def estate_on_small(make_estate, mounts, small_vol: Path, request) -> Estate:
    tag = request.node.name[:30].replace("[", "-").replace("]", "")
    return make_estate(
        extra=FAST_TIMEOUTS,
        flexvols={
            "images": ("svm1", mounts["xfs_a"] / tag / "images"),
            "small": ("svm2", small_vol / "small"),  # another cluster: only a download fills it
        },
    )


def remote_qcow2(estate: Estate, server: FaultyServer, *, size_mib: int = 16) -> str:
    return estate.remote_image(size_mib=size_mib, url_for=server.url_for)[0]


def register(estate: Estate, server: FaultyServer, file: Path, disk_format: str = "qcow2") -> str:
    url = server.url_for(file.name)
    return register_remote(estate.app.images, file, url=url, disk_format=disk_format)


def make(estate: Estate, image: str, *, before: Callable[[], None] = lambda: None) -> VolumeRecord:
    """Accept on the small FlexVol, let ``before`` break something, then provision."""
    record = estate.app.volumes.accept(
        VolumeCreate(image=image, size_gib=1, flexvol="small"), caller=OPERATOR
    )
    before()
    return estate.app.volumes.provisioner.provision(record.id)


def assert_clean_error(estate: Estate, volume: VolumeRecord, *words: str) -> None:
    assert volume.status == VolumeStatus.ERROR
    message = (volume.message or "").lower()
    for word in words:
        assert word.lower() in message, message
    folder = estate.flexvols["small"]
    if folder.is_dir():
        leftovers = [p.name for p in folder.iterdir() if p.name != ".bootvol"]
        assert leftovers == [], leftovers
        tmp = folder / ".bootvol" / "tmp"
        assert not tmp.is_dir() or list(tmp.iterdir()) == []


def assert_still_works(estate: Estate, server: FaultyServer) -> None:
    server.mode = "normal"
    image = remote_qcow2(estate, server, size_mib=8)
    volume = make(estate, image)
    assert volume.status == VolumeStatus.AVAILABLE, volume.message


def test_enospc_filling_the_cache(estate_on_small: Estate, faulty: FaultyServer) -> None:
    estate = estate_on_small
    image = remote_qcow2(estate, faulty, size_mib=64)
    ballast = estate.flexvols["small"].parent / "ballast"

    def fill_the_filesystem() -> None:  # after placement checked the room, as a race would
        free = shutil.disk_usage(ballast.parent).free
        subprocess.run(["fallocate", "-l", str(free - MiB), str(ballast)], check=True)

    volume = make(estate, image, before=fill_the_filesystem)
    assert_clean_error(estate, volume, "no space left on the FlexVol")
    ballast.unlink()
    assert_still_works(estate, faulty)


def test_flexvol_turned_read_only(estate_on_small: Estate, faulty: FaultyServer, small_vol) -> None:
    estate = estate_on_small
    image = remote_qcow2(estate, faulty)

    def remount(mode: str) -> Callable[[], None]:
        return lambda: subprocess.run(
            ["mount", "-o", f"remount,{mode}", str(small_vol)], check=True
        )

    volume = make(estate, image, before=remount("ro"))
    assert_clean_error(estate, volume, "small", "read-only")
    remount("rw")()
    assert_still_works(estate, faulty)


def test_flexvol_folder_disappeared(estate_on_small: Estate, faulty: FaultyServer) -> None:
    estate = estate_on_small
    image = remote_qcow2(estate, faulty)
    folder = estate.flexvols["small"]
    volume = make(estate, image, before=lambda: shutil.rmtree(folder))
    assert_clean_error(estate, volume, "FlexVol small", "gone")
    assert not folder.exists()  # not silently made again on the filesystem beneath
    estate.app.topology.get("small").ensure(create=True)  # what a restart does
    assert_still_works(estate, faulty)


@pytest.mark.parametrize("mode", ["stall", "hangup"])
def test_http_source_stalls_or_hangs_up(
    estate_on_small: Estate, faulty: FaultyServer, mode
) -> None:
    estate = estate_on_small
    image = remote_qcow2(estate, faulty)
    faulty.mode = mode
    volume = make(estate, image)
    assert_clean_error(estate, volume, "image server")
    if mode == "stall":
        assert "read_timeout_seconds" in (volume.message or "")
    assert_still_works(estate, faulty)


def test_qemu_img_fails_on_corrupt_data(estate_on_small: Estate, faulty: FaultyServer) -> None:
    estate = estate_on_small
    raw = estate.sample("disk.raw")
    qcow2 = estate.sample_qcow2(raw, "corrupt.qcow2")
    # The header stays valid (inspection passes); the L1 table it points at is garbage, so
    # the data cannot be read: qemu-img convert fails.
    with qcow2.open("r+b") as f:
        f.seek(40)
        (l1_offset,) = struct.unpack(">Q", f.read(8))
        f.seek(l1_offset)
        f.write(b"\xff" * 4096)
    image = register(estate, faulty, qcow2)
    volume = make(estate, image)
    assert_clean_error(estate, volume, "qemu-img")
    assert_still_works(estate, faulty)
