"""The measurements: every provisioning path, side by side, for each image size.

For one image size, in this order (each volume is checked to have taken the path it is
counted under; anything else fails the run):

1. ``download``           remote qcow2 at http://127.0.0.1 → vol_a, no cache entry anywhere,
   and reference          alternating with the naive path by hand on vol_a, same URL
                          (bench.reference)
3. ``copy-offload``       raw image in the image store → vol_b, no cache entry anywhere
4. ``copy-offload-qcow2`` the same with the qcow2 image (qemu-img converts on the host)
5. ``direct-clone``       raw image in the image store → a volume in the image store
6. ``cache-clone``        raw image → vol_b once more to fill its cache, then N volumes;
                          statvfs before the fill and after the N volumes gives their space
7. layouts                the qcow2 image converted into vol_b with each cache entry layout
                          (bench.layouts), where vol_b can reflink

Download and copy offload move the whole image each time, so they run ``slow_volumes``
times (each volume deleted, and the cache emptied, before the next); the clone paths run
``volumes`` times and keep their volumes until the path is done. Dirty pages are flushed
(``sync``) before each timed creation so one measurement does not pay for the last one's
writeback.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bootvol.bench import reference
from bootvol.bench.api_service import ApiLatency, measure_api_latency
from bootvol.bench.cluster import (
    DOWNLOAD_FLEXVOL,
    IMAGE_STORE,
    OFFLOAD_FLEXVOL,
    BenchCluster,
    bench_cluster,
)
from bootvol.bench.disk_images import BenchImage, ImageKind, build_bench_image, guest_image_bytes
from bootvol.bench.layouts import LayoutTrial, try_layouts
from bootvol.bench.results import (
    BenchPath,
    BenchResult,
    PathResult,
    Reference,
    Sample,
    SizeResult,
    SpaceResult,
    size_key,
)
from bootvol.bench.server import ServedFolder
from bootvol.db.models import ImageRecord, VolumeStatus
from bootvol.errors import BenchmarkFailed
from bootvol.images.service import ImageCreate
from bootvol.storage.flexvol import FlexVol
from bootvol.storage.layout import extent_count
from bootvol.units import GiB, MiB
from bootvol.volumes.cache import ImageCache
from bootvol.volumes.records import ProvisioningRecord, StepName
from bootvol.volumes.service import VolumeCreate

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BenchOptions:
    sizes_gib: list[float]
    volumes: int = 20  # per clone path
    slow_volumes: int = 3  # per download and copy-offload path
    folder: Path | None = None  # folders under it instead of loopback XFS FlexVols
    image: ImageKind = ImageKind.OS
    api: bool = False  # also POST → available over the Cinder API (bench.api_service)


def image_bytes_for(size_gib: float) -> int:
    """The sample's size: ``size_gib`` rounded to whole MiB, at least one."""
    return max(1, round(size_gib * GiB / MiB)) * MiB


def run_benchmark(options: BenchOptions, *, progress: Progress | None = None) -> BenchResult:
    """Build the throwaway cluster, measure every size, tear everything down."""
    report = progress or (lambda _message: None)
    largest = max(image_bytes_for(size) for size in options.sizes_gib)
    report("building the throwaway cluster")
    with (
        bench_cluster(image_bytes=largest, folder=options.folder) as cluster,
        ServedFolder(cluster.work_dir) as server,
    ):
        sizes_gib = options.sizes_gib
        if options.image is ImageKind.GUEST:  # one size: the guest's own
            sizes_gib = [guest_image_bytes(cluster.work_dir) / GiB]
        sizes: list[SizeResult] = []
        api: ApiLatency | None = None
        for index, size_gib in enumerate(sizes_gib):
            run = _SizeRun(cluster, server, size_gib=size_gib, options=options, report=report)
            sizes.append(run.measure(api=options.api and index == 0))
            api = api or run.api
        return BenchResult(
            cluster=cluster.description,
            image=options.image,
            volumes=options.volumes,
            slow_volumes=options.slow_volumes,
            sizes=sizes,
            api=api,
        )


@dataclass(frozen=True)
class _Images:
    built: BenchImage  # the files
    raw: ImageRecord  # stored in the image-store FlexVol
    qcow2: ImageRecord  # stored in the image-store FlexVol
    remote: ImageRecord  # qcow2 at an http://127.0.0.1 URL


class _SizeRun:
    """Every measurement for one image size; removes its images and volumes when done."""

    def __init__(
        self,
        cluster: BenchCluster,
        server: ServedFolder,
        *,
        size_gib: float,
        options: BenchOptions,
        report: Progress,
    ) -> None:
        self.app = cluster.app
        self.cluster = cluster
        self.server = server
        self.size_gib = size_gib
        self.key = size_key(size_gib)
        self.image_bytes = image_bytes_for(size_gib)
        self.volume_gib = max(1, math.ceil(self.image_bytes / GiB))
        self.options = options
        self.folder = cluster.work_dir / f"size-{self.key}"
        self._report = report
        self._volumes: list[str] = []
        self.api: ApiLatency | None = None

    def report(self, message: str) -> None:
        self._report(f"{self.key} GiB: {message}")

    def measure(self, *, api: bool = False) -> SizeResult:
        self.folder.mkdir()
        images = self._make_images()
        try:
            if api:
                self.api = self._api_latency(images.raw)
            download, reference = self._download_beside_reference(images.remote)
            paths = {  # measured in this order, top to bottom
                BenchPath.DOWNLOAD: download,
                BenchPath.COPY_OFFLOAD: self._one_by_one(
                    BenchPath.COPY_OFFLOAD, images.raw, OFFLOAD_FLEXVOL
                ),
                BenchPath.COPY_OFFLOAD_QCOW2: self._one_by_one(
                    BenchPath.COPY_OFFLOAD_QCOW2, images.qcow2, OFFLOAD_FLEXVOL
                ),
                BenchPath.DIRECT_CLONE: self._direct_clone(images.raw),
            }
            paths[BenchPath.CACHE_CLONE], space = self._cache_clone(images)
            return SizeResult(
                size_gib=self.size_gib,
                image_bytes=self.image_bytes,
                qcow2_bytes=images.qcow2.size or 0,
                paths=paths,
                reference=reference,
                space=space,
                layouts=self._layouts(images.built),
            )
        finally:
            self._remove(images)

    # images ---------------------------------------------------------------------------------
    def _make_images(self) -> _Images:
        kind = self.options.image
        self.report(f"making and uploading the {kind} images (not measured)")
        built = build_bench_image(
            kind, self.folder, size_bytes=self.image_bytes, work_dir=self.cluster.work_dir
        )
        raw = self.app.images.create_from_file(
            ImageCreate(name=f"bench-{kind}-{self.key}-raw", disk_format="raw"), built.raw
        )
        qcow2 = self.app.images.create_from_file(
            ImageCreate(name=f"bench-{kind}-{self.key}-qcow2", disk_format="qcow2"), built.qcow2
        )
        built.raw.unlink()  # stored now; only the qcow2 stays, for the HTTP server
        remote = self.app.images.create(
            ImageCreate(
                name=f"bench-{kind}-{self.key}-remote",
                disk_format="qcow2",
                url=self.server.url_for(f"{self.folder.name}/{built.qcow2.name}"),
                size=qcow2.size,
                checksum=qcow2.checksum,
                os_hash_value=qcow2.os_hash_value,  # as Glance records: verified, not md5
            )
        )
        return _Images(built=built, raw=raw, qcow2=qcow2, remote=remote)

    def _remove(self, images: _Images) -> None:
        self._delete_volumes()
        for image in (images.raw, images.qcow2, images.remote):
            self._evict_everywhere(image.id)
            self.app.images.delete(image.id)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _evict_everywhere(self, image_id: str) -> None:
        """No FlexVol caches the image afterwards (entries are 0444; unlink needs only the
        folder's permission)."""
        for flexvol in self.app.topology:
            ImageCache(flexvol).entry_path(image_id).unlink(missing_ok=True)

    # one volume -------------------------------------------------------------------------------
    def _create(self, path: BenchPath, image: ImageRecord, flexvol: str) -> Sample:
        started = time.perf_counter()
        volume = self.app.volumes.create(
            VolumeCreate(
                image=image.id,
                size_gib=self.volume_gib,
                flexvol=flexvol,
                name=f"bench-{self.key}-{path}-{len(self._volumes)}",
            )
        )
        seconds = time.perf_counter() - started
        self._volumes.append(volume.id)
        if volume.status != VolumeStatus.AVAILABLE:
            raise BenchmarkFailed(f"{path} volume on {flexvol} failed: {volume.message}")
        provisioning = volume.provisioning or ProvisioningRecord()
        if provisioning.path != path.provisioning_path:
            raise BenchmarkFailed(
                f"measuring {path} on {flexvol}, but the volume took {provisioning.path} "
                f"(skipped: {provisioning.to_json()['skipped']})"
            )
        return Sample(
            seconds=seconds,
            host_bytes=provisioning.host_bytes,
            how=_how(provisioning),
            steps=provisioning.step_seconds(),
        )

    def _delete_volumes(self) -> None:
        for volume_id in self._volumes:
            self.app.volumes.delete(volume_id)
        self._volumes.clear()

    # the paths ----------------------------------------------------------------------------
    def _one_by_one(self, path: BenchPath, image: ImageRecord, flexvol: str) -> PathResult:
        samples = []
        for number in range(1, self.options.slow_volumes + 1):
            self.report(f"{path} {number}/{self.options.slow_volumes}")
            samples.append(self._whole_image_volume(path, image, flexvol))
        return PathResult(path, samples)

    def _whole_image_volume(self, path: BenchPath, image: ImageRecord, flexvol: str) -> Sample:
        """One volume by a path that moves the whole image. It starts with no cache entry in
        any FlexVol (else cache-clone or the remote-cache copy offload would run instead)
        and is deleted afterwards, with the entry it filled."""
        self._evict_everywhere(image.id)
        os.sync()
        sample = self._create(path, image, flexvol)
        self._delete_volumes()
        self._evict_everywhere(image.id)
        return sample

    def _download_beside_reference(self, image: ImageRecord) -> tuple[PathResult, Reference]:
        """Downloads alternating with the by-hand reference (see bench.reference) on the
        same FlexVol, so both meet the same machine state: page cache, writeback, and
        memory a hypervisor has taken back and must fault in again."""
        reference.tools()  # fail before any measurement if curl or sha512sum is missing
        url = image.location.url if image.location else ""
        folder = self.app.topology.get(DOWNLOAD_FLEXVOL).path / "bench-reference"
        folder.mkdir()
        samples: list[Sample] = []
        rounds: list[reference.ReferenceRound] = []
        try:
            # One round unmeasured: the first writes after the sample images were made and
            # uploaded meet the writeback of those gigabytes and memory not yet faulted in.
            self.report("download and reference, warm-up round (not measured)")
            download = BenchPath.DOWNLOAD
            self._whole_image_volume(download, image, DOWNLOAD_FLEXVOL)
            reference.run_round(url, folder)
            for number in range(1, self.options.slow_volumes + 1):
                self.report(f"download and reference {number}/{self.options.slow_volumes}")
                samples.append(self._whole_image_volume(download, image, DOWNLOAD_FLEXVOL))
                os.sync()
                rounds.append(reference.run_round(url, folder))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return PathResult(BenchPath.DOWNLOAD, samples), Reference(rounds)

    def _direct_clone(self, image: ImageRecord) -> PathResult:
        self._evict_everywhere(image.id)
        self.report(f"direct-clone x {self.options.volumes}")
        os.sync()
        samples = [
            self._create(BenchPath.DIRECT_CLONE, image, IMAGE_STORE)
            for _ in range(self.options.volumes)
        ]
        self._delete_volumes()
        return PathResult(BenchPath.DIRECT_CLONE, samples)

    def _cache_clone(self, images: _Images) -> tuple[PathResult, SpaceResult]:
        image = images.raw
        flexvol = self.app.topology.get(OFFLOAD_FLEXVOL)
        self._evict_everywhere(image.id)
        self.report("filling the cache of vol_b by copy offload (not measured)")
        before = _used_bytes(flexvol)
        self._create(BenchPath.COPY_OFFLOAD, image, OFFLOAD_FLEXVOL)
        self._delete_volumes()  # the N volumes below are the ones that count
        self.report(f"cache-clone x {self.options.volumes}")
        os.sync()
        samples = [
            self._create(BenchPath.CACHE_CLONE, image, OFFLOAD_FLEXVOL)
            for _ in range(self.options.volumes)
        ]
        used = _used_bytes(flexvol) - before
        entry = ImageCache(flexvol).entry_path(image.id)
        space = SpaceResult(
            volumes=len(samples),
            image_bytes=self.image_bytes,
            image_data_bytes=images.built.data_bytes,
            image_physical_bytes=entry.stat().st_blocks * 512,
            physical_bytes_used=used,
            entry_extents=_extents(entry),
        )
        self._delete_volumes()
        self._evict_everywhere(image.id)
        return PathResult(BenchPath.CACHE_CLONE, samples), space

    def _api_latency(self, image: ImageRecord) -> ApiLatency:
        """Over the API, on the idle service: the image is in the image store, so every
        volume is a clone (direct, or from a cache placement fills first)."""
        self.report(f"POST → available over the API x {self.options.volumes}")
        return measure_api_latency(
            self.cluster, image_id=image.id, size_gib=self.volume_gib, volumes=self.options.volumes
        )

    def _layouts(self, built: BenchImage) -> list[LayoutTrial]:
        flexvol = self.app.topology.get(OFFLOAD_FLEXVOL)
        if not flexvol.capabilities.reflink:
            return []  # no clones to time
        self.report("cache entry layouts, one conversion each")
        folder = flexvol.path / "bench-layouts"
        folder.mkdir()
        try:
            return try_layouts(
                built.qcow2, folder, virtual_size=built.size_bytes, clones=self.options.volumes
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _how(provisioning: ProvisioningRecord) -> str:
    """The mechanisms that moved or shared the bytes, e.g. ``sendfile → reflink clone``."""
    steps = {step.name for step in provisioning.steps}
    parts = []
    if StepName.DOWNLOAD in steps:
        parts.append("http")
    if provisioning.copy_method:
        parts.append(provisioning.copy_method)
    if StepName.CONVERT in steps:
        parts.append("qemu-img convert")
    parts.append(f"{provisioning.clone_method} clone")
    return " → ".join(parts)


def _extents(path: Path) -> int:
    """The extents the filesystem maps the file with: what a clone must share."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return extent_count(fd)
    finally:
        os.close(fd)


def _used_bytes(flexvol: FlexVol) -> int:
    """Blocks in use on the FlexVol's filesystem (shared extents count once), once the
    frees of deleted files have landed."""
    space = flexvol.space(settled=True)
    return space.total_bytes - space.available_bytes
