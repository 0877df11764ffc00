"""bootvol's driver inside the real Cinder, driven with the real ``openstack`` command.

Each test says which provisioning path Cinder's volume took (the ``bootvol:path`` property
the driver writes), and checks the bytes: a volume's file must read as the image's raw
content followed by zeros (``qemu-img compare``).
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bootvol.bench.cinder_layout import BACKEND_POOLS
from bootvol.bench.cinder_stack import CinderStack, StackError
from bootvol.bench.content import same_guest_content
from bootvol.bench.local_server import LocalFileServer
from bootvol.bench.samples import make_qcow2, make_raw, register_remote
from bootvol.storage.locks import file_lock
from bootvol.units import GiB, MiB
from bootvol.volumes.cache import CACHE_PREFIX

IMAGE_MIB = 64


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cinder-samples")


@pytest.fixture(scope="module")
def file_server(samples: Path) -> Iterator[LocalFileServer]:
    with LocalFileServer(samples) as server:
        yield server


def _register_remote(
    stack: CinderStack, server: LocalFileServer, file: Path, *, disk_format: str
) -> str:
    """An image whose bytes stay on ``server``, in no FlexVol: only a download reaches it
    (bootvol's Glance checks what is uploaded to it; what it only points at, it cannot)."""
    assert stack.bootvol is not None
    url = server.url_for(file.name)
    return register_remote(stack.bootvol.bootvol.images, file, url=url, disk_format=disk_format)


@pytest.fixture(scope="module")
def remote_image(
    cinder_stack: CinderStack, samples: Path, file_server: LocalFileServer
) -> Iterator[tuple[str, Path]]:
    """A remote qcow2 image: (its id, the raw disk it holds)."""
    raw = make_raw(samples / "remote.raw", size_bytes=IMAGE_MIB * MiB, seed=11)
    qcow2 = make_qcow2(raw, samples / "remote.qcow2")
    image_id = _register_remote(cinder_stack, file_server, qcow2, disk_format="qcow2")
    yield image_id, raw
    cinder_stack.openstack("image", "delete", image_id)


def _upload(stack: CinderStack, file: Path, *, disk_format: str, name: str) -> str:
    image = stack.openstack_json(
        "image", "create", "--public", "--disk-format", disk_format, "--file", str(file), name
    )
    return str(image["id"])


def _create(stack: CinderStack, *options: str, name: str = "v") -> dict[str, Any]:
    created = stack.openstack_json("volume", "create", *options, name, cloud="member")
    stack.wait_for_volume(created["id"], ("available", "error"), cloud="member")
    return _show(stack, created["id"])


def _show(stack: CinderStack, volume_id: str) -> dict[str, Any]:
    return stack.openstack_json("volume", "show", volume_id)


def _delete(stack: CinderStack, *volume_ids: str) -> None:
    for volume_id in volume_ids:
        stack.openstack("volume", "delete", volume_id, cloud="member")
    for volume_id in volume_ids:
        stack.wait_for_volume(volume_id, ("deleted",), cloud="member")


def _same_raw(image: Path, volume_file: Path) -> bool:
    return same_guest_content(image, volume_file, image_format="raw")


def test_a_download_fills_the_cache_and_the_next_volume_is_a_cache_clone(
    cinder_stack: CinderStack, remote_image: tuple[str, Path]
) -> None:
    image_id, raw = remote_image
    first = _create(cinder_stack, "--image", image_id, "--size", "1", "--type", "bv_a")
    second = _create(cinder_stack, "--image", image_id, "--size", "2", "--type", "bv_a")
    try:
        assert (first["status"], second["status"]) == ("available", "available")
        assert first["properties"]["bootvol:path"] == "download"
        assert first["properties"]["bootvol:filled_cache"] == "true"
        assert second["properties"]["bootvol:path"] == "cache-clone"
        assert second["properties"]["bootvol:host_bytes"] == "0"
        assert first["bootable"] == second["bootable"] == True  # noqa: E712
        for volume in (first, second):
            assert cinder_stack.volume_file(volume).stat().st_size == volume["size"] * GiB
            assert _same_raw(raw, cinder_stack.volume_file(volume))
        # The other backend copies vol_a's cache entry storage-side into its own cache.
        offloaded = _create(cinder_stack, "--image", image_id, "--size", "1", "--type", "bv_b")
        try:
            assert offloaded["properties"]["bootvol:path"] == "copy-offload"
            assert "cache of vol_a" in offloaded["properties"]["bootvol:source"]
            assert offloaded["properties"]["bootvol:host_bytes"] == "0"
            assert _same_raw(raw, cinder_stack.volume_file(offloaded))
        finally:
            _delete(cinder_stack, offloaded["id"])
    finally:
        _delete(cinder_stack, first["id"], second["id"])


def test_a_raw_image_in_the_glance_store_is_cloned_directly_or_offloaded(
    cinder_stack: CinderStack, samples: Path
) -> None:
    raw = make_raw(samples / "glance.raw", size_bytes=IMAGE_MIB * MiB, seed=12)
    image_id = _upload(cinder_stack, raw, disk_format="raw", name="glance-raw")
    try:
        direct = _create(cinder_stack, "--image", image_id, "--size", "1", "--type", "bv_images")
        offloaded = _create(cinder_stack, "--image", image_id, "--size", "1", "--type", "bv_b")
        try:
            assert direct["properties"]["bootvol:path"] == "direct-clone"
            assert offloaded["properties"]["bootvol:path"] == "copy-offload"
            assert "image file in images" in offloaded["properties"]["bootvol:source"]
            for volume in (direct, offloaded):
                assert volume["properties"]["bootvol:host_bytes"] == "0"
                assert _same_raw(raw, cinder_stack.volume_file(volume))
        finally:
            _delete(cinder_stack, direct["id"], offloaded["id"])
    finally:
        cinder_stack.openstack("image", "delete", image_id)


def test_clones_and_snapshots_are_reflinks_that_take_no_space(
    cinder_stack: CinderStack, remote_image: tuple[str, Path]
) -> None:
    image_id, raw = remote_image
    source = _create(cinder_stack, "--image", image_id, "--size", "1", "--type", "bv_a")
    vol_a = cinder_stack.storage.topology().get(BACKEND_POOLS["bv_a"])
    made: list[str] = []
    snapshot_id = None
    try:
        before = vol_a.space(settled=True).available_bytes
        clone = _create(cinder_stack, "--source", source["id"], "--size", "2", name="clone")
        made.append(clone["id"])
        snapshot = cinder_stack.openstack_json(
            "volume", "snapshot", "create", "--volume", source["id"], "snap", cloud="member"
        )
        snapshot_id = snapshot["id"]
        _wait_for_snapshot(cinder_stack, snapshot_id, "available")
        restored = _create(cinder_stack, "--snapshot", snapshot_id, "--size", "1", name="restored")
        made.append(restored["id"])
        used = before - vol_a.space(settled=True).available_bytes
        # Three copies of IMAGE_MIB/2 MiB of data, and not a block of it written again.
        assert used < 4 * MiB, f"clones took {used / MiB:.1f} MiB"
        assert clone["properties"]["bootvol:path"] == "volume-clone"
        assert clone["properties"]["bootvol:clone_method"] == "reflink"
        assert restored["properties"]["bootvol:source"] == f"snapshot {snapshot_id}"
        assert cinder_stack.volume_file(clone).stat().st_size == 2 * GiB
        for volume in (clone, restored):
            assert _same_raw(raw, cinder_stack.volume_file(volume))
    finally:
        _delete(cinder_stack, *made)
        if snapshot_id is not None:
            cinder_stack.openstack("volume", "snapshot", "delete", snapshot_id, cloud="member")
            _wait_for_snapshot(cinder_stack, snapshot_id, "deleted")
            assert not (vol_a.path / f"snapshot-{snapshot_id}").exists()
        _delete(cinder_stack, source["id"])


def _wait_for_snapshot(stack: CinderStack, snapshot_id: str, status: str) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            found = stack.cinder("GET", f"/snapshots/{snapshot_id}")["snapshot"]["status"]
        except StackError as exc:
            if status == "deleted" and "404" in str(exc):
                return
            raise
        if found == status:
            return
        assert not found.startswith("error"), found
        time.sleep(0.1)
    raise AssertionError(f"snapshot {snapshot_id} never {status}")


def test_extend_upload_and_connection_info(
    cinder_stack: CinderStack, remote_image: tuple[str, Path]
) -> None:
    image_id, raw = remote_image
    volume = _create(cinder_stack, "--image", image_id, "--size", "1", "--type", "bv_a")
    uploaded_id = None
    try:
        cinder_stack.openstack("volume", "set", "--size", "3", volume["id"], cloud="member")
        cinder_stack.wait_for_volume(volume["id"], cloud="member")
        assert cinder_stack.volume_file(volume).stat().st_size == 3 * GiB

        connection = cinder_stack.cinder(
            "POST",
            f"/volumes/{volume['id']}/action",
            json={"os-initialize_connection": {"connector": {"host": "compute1"}}},
        )["connection_info"]
        assert connection["driver_volume_type"] == "nfs"
        assert connection["data"]["export"] == "fileserver:/exports/vol_a"
        assert connection["data"]["name"] == f"volume-{volume['id']}"
        assert connection["data"]["format"] == "raw"

        uploaded = cinder_stack.openstack_json(
            "image",
            "create",
            "--volume",
            volume["id"],
            "--disk-format",
            "raw",
            "from-volume",
            cloud="member",
        )
        uploaded_id = uploaded["image_id"]
        cinder_stack.wait_for_volume(volume["id"], cloud="member")  # uploading → available
        image = cinder_stack.openstack_json("image", "show", uploaded_id)
        assert image["status"] == "active"
        assert image["size"] == 3 * GiB
        downloaded = raw.with_name("from-volume.raw")
        cinder_stack.openstack("image", "save", "--file", str(downloaded), uploaded_id)
        assert _same_raw(raw, downloaded)
        downloaded.unlink()
    finally:
        if uploaded_id is not None:
            cinder_stack.openstack("image", "delete", uploaded_id)
        _delete(cinder_stack, volume["id"])


@pytest.mark.parametrize("refusal", ["backing file", "format mismatch"])
def test_a_refused_image_ends_the_volume_in_error_and_leaves_no_file(
    cinder_stack: CinderStack, samples: Path, file_server: LocalFileServer, refusal: str
) -> None:
    base = make_raw(samples / "base.raw", size_bytes=8 * MiB, seed=13)
    evil = samples / f"evil-{refusal.replace(' ', '-')}.qcow2"
    if refusal == "backing file":
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(base), str(evil)],
            check=True,
        )
        declared = "qcow2"
    else:
        make_qcow2(base, evil)
        declared = "raw"  # a qcow2 file that says it is raw
    image_id = _register_remote(cinder_stack, file_server, evil, disk_format=declared)
    try:
        volume = _create(cinder_stack, "--image", image_id, "--size", "1", "--type", "bv_a")
        try:
            assert volume["status"] == "error"
            # Refused in Cinder's own download (it rescheduled, so no host is left) or in
            # the cache fill: no volume file, cache entry or scratch file anywhere.
            for pool in BACKEND_POOLS.values():
                folder = cinder_stack.storage.flexvol(pool).path
                assert not (folder / f"volume-{volume['id']}").exists()
                assert not list(folder.glob(f"img-cache-{image_id}*"))
                assert not any((folder / ".bootvol" / "tmp").iterdir())
        finally:
            _delete(cinder_stack, volume["id"])
    finally:
        cinder_stack.openstack("image", "delete", image_id)


def test_two_backends_sharing_a_flexvol_fill_its_cache_once(
    cinder_stack: CinderStack, samples: Path, file_server: LocalFileServer
) -> None:
    """bv_a and bv_a2 run in two cinder-volume processes over the same vol_a, like two hosts
    mounting one export: Cinder's locks do not reach across them, the cache's do."""
    raw = make_raw(samples / "shared.raw", size_bytes=IMAGE_MIB * MiB, seed=14)
    image_id = _register_remote(cinder_stack, file_server, raw, disk_format="raw")
    vol_a = cinder_stack.storage.topology().get("vol_a")
    vol_a.ensure()
    fill_lock = vol_a.lock_file(f"{CACHE_PREFIX}{image_id}.fill")
    made: list[str] = []
    try:
        # Hold the fill lock so both fills queue behind it, then let them go together.
        with file_lock(fill_lock):
            for volume_type in ("bv_a", "bv_a2"):
                created = cinder_stack.openstack_json(
                    "volume",
                    "create",
                    "--image",
                    image_id,
                    "--size",
                    "1",
                    "--type",
                    volume_type,
                    f"shared-{volume_type}",
                    cloud="member",
                )
                made.append(created["id"])
            _wait_for_lock_waiters(fill_lock, count=2)
        volumes = []
        for volume_id in made:
            cinder_stack.wait_for_volume(volume_id, cloud="member")
            volumes.append(_show(cinder_stack, volume_id))
        paths = sorted(v["properties"]["bootvol:path"] for v in volumes)
        filled = sorted(v["properties"]["bootvol:filled_cache"] for v in volumes)
        # One filled the cache from Cinder's download; the other found it filled meanwhile.
        assert paths == ["cache-clone", "download"], paths
        assert filled == ["false", "true"], filled
        # The fill copied Cinder's download in the kernel: only the inspector's header reads
        # went through this host's buffers, not the image's 64 MiB (twice).
        (downloaded,) = [v for v in volumes if v["properties"]["bootvol:path"] == "download"]
        assert int(downloaded["properties"]["bootvol:host_bytes"]) < MiB
        hosts = {v["os-vol-host-attr:host"].partition("#")[0] for v in volumes}
        assert hosts == {"stack@bv_a", "stack@bv_a2"}
        for volume in volumes:
            assert _same_raw(raw, cinder_stack.volume_file(volume))
    finally:
        _delete(cinder_stack, *made)
        cinder_stack.openstack("image", "delete", image_id)


def _wait_for_lock_waiters(lock: Path, *, count: int, timeout: float = 300) -> None:
    """Until ``count`` processes wait for the flock on ``lock`` (the "->" lines of
    /proc/locks name a blocked request and the inode it waits for)."""
    inode = lock.stat().st_ino
    # A waiter behind another waiter is indented once more ("8:  -> FLOCK …").
    waiting = re.compile(rf"^\d+:\s+-> FLOCK .* [0-9a-f]+:[0-9a-f]+:{inode} ", re.MULTILINE)
    deadline = time.monotonic() + timeout
    while len(waiting.findall(Path("/proc/locks").read_text())) < count:
        assert time.monotonic() < deadline, f"fewer than {count} waiters on {lock}"
        time.sleep(0.05)
