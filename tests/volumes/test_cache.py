"""The image cache: shared blocks, single fill under races, never half-written, the cleaner."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from bootvol.bench.loopback import FsKind
from bootvol.config import CacheSettings
from bootvol.images.service import ImageCreate
from bootvol.storage.cluster import Cluster, Svm
from bootvol.storage.flexvol import FlexVol
from bootvol.units import MiB
from bootvol.volumes.cache import ImageCache
from bootvol.volumes.cleaner import PeriodicCleaner, clean_flexvol
from bootvol.volumes.service import VolumeCreate

from ..support import BOOTVOL, Estate

SVM = Svm("svm1", Cluster("cluster1", "9.14.1"), vstorage=True)


def used_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return (stats.f_blocks - stats.f_bfree) * stats.f_frsize


def test_twenty_clones_use_the_space_of_one_image(make_estate, small_fs) -> None:
    xfs = small_fs(FsKind.XFS, 512)
    images_fs = small_fs(FsKind.XFS, 512)
    estate: Estate = make_estate(
        flexvols={"images": ("svm1", images_fs / "images"), "vol_a": ("svm1", xfs / "vol_a")}
    )
    raw = estate.sample("disk.raw", size_mib=128, seed=7)
    image_bytes = raw.stat().st_blocks * 512
    image = estate.app.images.create_from_file(ImageCreate(name="d", disk_format="raw"), raw).id
    before = used_bytes(xfs)
    paths = []
    for _ in range(20):
        volume = estate.app.volumes.create(VolumeCreate(image=image, size_gib=1, flexvol="vol_a"))
        paths.append(volume.provisioning.path)
    grown = used_bytes(xfs) - before
    assert paths == ["copy-offload"] + ["cache-clone"] * 19
    # One cache entry's worth of blocks, plus a little metadata; 20 copies would be 20×.
    assert grown < 1.1 * image_bytes, f"{grown / MiB:.1f} MiB for {image_bytes / MiB:.1f} MiB"


def test_racing_processes_fill_the_cache_once(estate: Estate) -> None:
    raw = estate.sample("disk.raw", size_mib=64)
    image = estate.app.images.create_from_file(ImageCreate(name="d", disk_format="raw"), raw).id
    command = estate.command(
        "volume", "create", "--image", image, "--size", "1", "--flexvol", "vol_a", "--json"
    )
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    results = [p.communicate() for p in processes]
    assert all(p.returncode == 0 for p in processes), [err for _, err in results]
    paths = sorted(json.loads(out)["provisioning"]["path"] for out, _ in results)
    assert paths == ["cache-clone"] * 3 + ["copy-offload"]
    fills = [json.loads(out)["provisioning"]["steps"] for out, _ in results]
    copies = sum(1 for steps in fills for s in steps if s["name"] == "copy offload")
    assert copies == 1


def test_racing_threads_fill_once(estate: Estate) -> None:
    raw = estate.sample("disk.raw", size_mib=32)
    image = estate.app.images.create_from_file(ImageCreate(name="d", disk_format="raw"), raw).id
    cache = ImageCache(estate.app.topology.get("vol_a"))
    fills: list[int] = []
    barrier = threading.Barrier(4)

    def fill(temporary: Path) -> None:
        fills.append(1)
        temporary.write_bytes(raw.read_bytes())

    def race() -> None:
        barrier.wait()
        cache.fill_once(image, fill)

    threads = [threading.Thread(target=race) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fills) == 1
    assert cache.entry_path(image).read_bytes() == raw.read_bytes()


def test_failed_fill_leaves_no_entry_and_no_scratch(estate: Estate) -> None:
    flexvol = estate.app.topology.get("vol_a")
    cache = ImageCache(flexvol)

    def broken_fill(temporary: Path) -> None:
        temporary.write_bytes(b"half an image")
        raise OSError("the source went away")

    with pytest.raises(OSError):
        cache.fill_once("some-image", broken_fill)
    assert not cache.entry_path("some-image").exists()
    assert list((flexvol.state_dir / "tmp").iterdir()) == []


def test_scratch_of_a_killed_process_is_removed_and_never_published(estate: Estate) -> None:
    flexvol = estate.app.topology.get("vol_a")
    script = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from bootvol.storage.scratch import scratch_dir\n"
        f"with scratch_dir(Path({str(flexvol.state_dir / 'tmp')!r})) as d:\n"
        "    (d / 'img-cache-x').write_bytes(b'partial')\n"
        "    print(d, flush=True)\n"
        "    time.sleep(60)\n"
    )
    child = subprocess.Popen([*BOOTVOL[:1], "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    scratch = Path(child.stdout.readline().strip())
    assert flexvol.remove_stale_scratch() == []  # alive: its lock is held
    child.kill()
    child.wait()
    # At once: a named scratch folder is locked before it gets its name, so no grace period.
    assert flexvol.remove_stale_scratch() == [scratch]
    assert not scratch.exists()
    assert not ImageCache(flexvol).contains("x")


class TestCleaner:
    @pytest.fixture
    def filled(self, small_fs) -> tuple[FlexVol, ImageCache]:
        mount = small_fs(FsKind.XFS, 448)
        flexvol = FlexVol(name="small", svm=SVM, path=mount / "small")
        flexvol.ensure()
        cache = ImageCache(flexvol)
        for image_id, size_mib in (("big", 120), ("mid", 60), ("small", 30), ("fresh", 40)):
            cache.fill_once(image_id, lambda t, n=size_mib: t.write_bytes(os.urandom(n * MiB)))
        old = dt.datetime.now(dt.UTC).timestamp() - 24 * 3600
        for image_id in ("big", "mid", "small"):
            path = cache.entry_path(image_id)
            os.utime(path, (old, path.stat().st_mtime))
        return flexvol, cache

    def _settings(self, flexvol: FlexVol, *, start_offset: int, stop_offset: int) -> CacheSettings:
        now = int(flexvol.space().available_percent)
        return CacheSettings(
            thres_avl_size_perc_start=now + start_offset,
            thres_avl_size_perc_stop=now + stop_offset,
            expiry_thres_minutes=60,
        )

    def test_does_nothing_above_the_start_threshold(self, filled) -> None:
        flexvol, cache = filled
        report = clean_flexvol(flexvol, self._settings(flexvol, start_offset=-5, stop_offset=30))
        assert not report.ran and report.evicted == []
        assert len(cache.entries()) == 4

    def test_evicts_largest_expired_first_and_stops_at_the_stop_threshold(self, filled) -> None:
        flexvol, cache = filled
        # Evicting "big" (120 MiB of ~300) lifts available space by far more than 5 points.
        report = clean_flexvol(flexvol, self._settings(flexvol, start_offset=1, stop_offset=5))
        assert report.ran
        assert report.evicted == ["big"], report
        assert report.available_percent_after >= report.available_percent_before + 5
        assert {e.image_id for e in cache.entries()} == {"mid", "small", "fresh"}

    def test_never_evicts_recent_or_in_use_entries(self, filled) -> None:
        flexvol, cache = filled
        with cache.in_use("big"):
            report = clean_flexvol(flexvol, self._settings(flexvol, start_offset=1, stop_offset=70))
        assert report.evicted == ["mid", "small"]  # big in use, fresh not expired
        assert {e.image_id for e in cache.entries()} == {"big", "fresh"}


def test_periodic_cleaner_runs_in_the_background(small_fs) -> None:
    mount = small_fs(FsKind.XFS, 448)
    flexvol = FlexVol(name="bg", svm=SVM, path=mount / "bg")
    flexvol.ensure()
    cache = ImageCache(flexvol)
    cache.fill_once("old", lambda t: t.write_bytes(os.urandom(100 * MiB)))
    path = cache.entry_path("old")
    os.utime(path, (0, path.stat().st_mtime))
    now = int(flexvol.space().available_percent)
    settings = CacheSettings(
        thres_avl_size_perc_start=now + 1,
        thres_avl_size_perc_stop=now + 10,
        expiry_thres_minutes=1,
        clean_interval_seconds=1,
    )
    cleaner = PeriodicCleaner(
        lambda: clean_flexvol(flexvol, settings),
        interval_seconds=settings.clean_interval_seconds,
    )
    cleaner.start()
    try:
        for _ in range(100):  # bounded wait for the first round, not a timing assertion
            if not path.exists():
                break
            time.sleep(0.1)
    finally:
        cleaner.stop()
    assert not path.exists()
