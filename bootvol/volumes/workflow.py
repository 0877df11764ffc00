"""The Enhanced Instance Creation flowchart: a volume from an image, cheapest path first.

Tried in order; the first that applies makes the volume:

1.  cache-clone   the image is cached in the destination FlexVol → clone the cache entry.
1b. copy-offload  another FlexVol of the same cluster caches it and copy offload is allowed
                  → copy that raw entry storage-side into our cache, then clone.
2.  direct-clone  the raw image file lives in the destination FlexVol → clone it.
3.  copy-offload  the image file lives in another FlexVol of the cluster, offload allowed
                  → copy it into our cache (converting there if it is not raw), then clone.
4.  download      fetch it, verify, inspect, convert to raw into our cache, then clone.
5.  extend the volume to the requested size.

A caller that downloads images itself (Cinder, which fetches the image before it hands the
volume back to the driver) asks for steps 1–3 only (``download=False``): when none applies,
``DownloadLeft`` says so with the record of why, and nothing was made.

Each of 1–4 finds what to cut the volume from (a ``CloneSource``); the volume's file is cut
from it (bootvol.volumes.volume_file: reflink, else a qcow2 overlay, else a sparse copy).

A path that does not apply is *skipped* with its reason; a path that fails with a
StorageError (a clone refused, a copy that errors) is logged and the next path is tried, as
Cinder's NetApp driver does. An image that fails its safety checks (ImageRefused) or a
request that cannot fit (InsufficientSpace, InvalidRequest) fails the creation at once:
another path would meet the same bytes.

Reversion strategy: every step that allocates undoes itself. Cache fills happen in scratch
folders that vanish on failure (see ImageCache.fill_once); a failed clone removes the
volume file and its base link before the next attempt. Nothing a failed creation made
remains, except a cache entry that was completely and correctly filled.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bootvol.config import CloneMethod, DownloadSettings
from bootvol.errors import InsufficientSpace, InvalidRequest, StorageError
from bootvol.images.download import Expected, fetch
from bootvol.images.inspect import inspect_image, qemu_format
from bootvol.images.location import ImageLocation
from bootvol.storage import qemu_img
from bootvol.storage.layout import EntryLayout, describe_layout
from bootvol.storage.topology import Topology
from bootvol.units import GiB
from bootvol.volumes.cache import CACHE_PREFIX, ImageCache
from bootvol.volumes.records import (
    FileFormat,
    FlowchartStep,
    ProvisioningPath,
    ProvisioningRecord,
    StepName,
)
from bootvol.volumes.volume_file import ProvisionedVolume, VolumeTarget, clone_kinds, cut

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageSource:
    """What the workflow needs to know of an image; built from its record by the service."""

    id: str
    disk_format: str
    # A file (inside a FlexVol, or not), an http(s):// URL, or None where the caller
    # downloads the image itself and knows of no file (see DownloadLeft).
    location: ImageLocation | None
    size: int | None = None
    md5: str | None = None
    sha512: str | None = None

    @property
    def file(self) -> Path | None:
        return self.location.file if self.location else None


class _Skip(Exception):
    """This path does not apply; the message says why."""


class DownloadLeft(Exception):
    """Only a download would make this volume, and the caller asked for no download.

    Not an error: the caller downloads the image and calls again with a location it can
    read (Cinder's ``clone_image`` declines, then ``copy_image_to_volume`` runs).
    """

    def __init__(self, record: ProvisioningRecord) -> None:
        reasons = "; ".join(f"{p}: {r}" for p, r in record.skipped.items())
        super().__init__(f"only a download is left ({reasons})")
        self.record = record


@dataclass(frozen=True)
class CloneSource:
    """What a flowchart step found to cut the volume from, and how to say so."""

    file: Path
    path: ProvisioningPath
    description: str


Attempt = Callable[[VolumeTarget, ImageSource, ProvisioningRecord], CloneSource]


class Workflow:
    def __init__(
        self,
        *,
        topology: Topology,
        clone_method: CloneMethod,
        on_download: Callable[[], None] | None = None,
        download: DownloadSettings | None = None,
        overlays: bool = True,
        layout: EntryLayout = EntryLayout(),
    ) -> None:
        self.topology = topology
        self.layout = layout  # how cache entries are written (bootvol.storage.layout)
        self.clone_method = clone_method
        # A qcow2 overlay names its backing file by this host's path: fine where volumes are
        # opened here (bootvol's compute), not where another host mounts the FlexVol.
        self.overlays = overlays
        self._download_settings = download or DownloadSettings()
        self._on_download = on_download

    def create_volume_from_image(
        self, *, target: VolumeTarget, image: ImageSource, download: bool = True
    ) -> ProvisionedVolume:
        """Make ``target`` from ``image`` by the cheapest path; with ``download=False``, raise
        DownloadLeft instead of downloading."""
        record = ProvisioningRecord()
        flowchart: list[tuple[FlowchartStep, Attempt]] = [
            (FlowchartStep.CACHE_CLONE, self._clone_local_cache),  # 1
            (FlowchartStep.OFFLOAD_FROM_CACHE, self._offload_remote_cache),  # 1b
            (FlowchartStep.DIRECT_CLONE, self._clone_image_file),  # 2
            (FlowchartStep.OFFLOAD_FROM_IMAGE_FILE, self._offload_image_file),  # 3
            (FlowchartStep.DOWNLOAD, self._download if download else self._leave_download),  # 4
        ]
        target.flexvol.ensure()
        with ImageCache(target.flexvol).in_use(image.id):
            file_format = self._cut_by_first_path_that_works(flowchart, target, image, record)
        self._extend(target, file_format, record)  # 5
        log.info(
            "volume %s: %s from %s (%s clone) in %.3f s, %d host bytes; skipped: %s",
            target.volume_id,
            record.path,
            record.source,
            record.clone_method,
            record.seconds,
            record.host_bytes,
            {str(k): v for k, v in record.skipped.items()} or "nothing",
        )
        return ProvisionedVolume(file=target.file, file_format=file_format, record=record)

    def _cut_by_first_path_that_works(
        self,
        flowchart: list[tuple[FlowchartStep, Attempt]],
        target: VolumeTarget,
        image: ImageSource,
        record: ProvisioningRecord,
    ) -> FileFormat:
        for step, attempt in flowchart:
            try:
                source = attempt(target, image, record)
                file_format = self._cut(source.file, target, record)
            except _Skip as skip:
                record.skip(step, str(skip))
                continue
            except StorageError as exc:
                target.remove_files()
                record.skip(step, f"failed: {exc.message}")
                log.warning(
                    "volume %s: %s failed, trying the next path: %s",
                    target.volume_id,
                    step,
                    exc.message,
                )
                continue
            record.path, record.source = source.path, source.description
            return file_format
        reasons = "; ".join(f"{p}: {r}" for p, r in record.skipped.items())
        raise StorageError(f"every provisioning path failed ({reasons})")

    # 1. ------------------------------------------------------------------------------------
    def _clone_local_cache(
        self, target: VolumeTarget, image: ImageSource, record: ProvisioningRecord
    ) -> CloneSource:
        with record.step(StepName.CACHE_LOOKUP):
            entry = ImageCache(target.flexvol).lookup(image.id)
        if entry is None:
            raise _Skip(f"no {CACHE_PREFIX}{image.id} in {target.flexvol.name}")
        return CloneSource(entry, ProvisioningPath.CACHE_CLONE, f"cache of {target.flexvol.name}")

    # 1b. -----------------------------------------------------------------------------------
    def _offload_remote_cache(
        self, target: VolumeTarget, image: ImageSource, record: ProvisioningRecord
    ) -> CloneSource:
        holders = [
            f for f in self.topology if f is not target.flexvol and ImageCache(f).contains(image.id)
        ]
        if not holders:
            raise _Skip("no other FlexVol caches the image")
        # A holder on the destination's own filesystem copies by reflink: try it first.
        holders.sort(key=lambda f: not f.shares_filesystem_with(target.flexvol))
        refusals = []
        for holder in holders:
            decision = self.topology.offload_decision(holder, target.flexvol)
            if decision.allowed:
                break
            refusals.append(f"{holder.name}'s cache: {decision.reason}")
        else:
            raise _Skip("; ".join(refusals))
        remote = ImageCache(holder)
        with remote.in_use(image.id):  # the remote cleaner must not evict it mid-copy
            entry = remote.lookup(image.id)
            if entry is None:
                raise _Skip(f"{holder.name}'s cache entry was evicted meanwhile")
            return self._fill_cache(
                target,
                image,
                record,
                fill=lambda temporary: self._copy_offload(entry, temporary, target, record),
                source=f"cache of {holder.name} (copy offload)",
            )

    # 2. ------------------------------------------------------------------------------------
    def _clone_image_file(
        self, target: VolumeTarget, image: ImageSource, record: ProvisioningRecord
    ) -> CloneSource:
        file = self._image_file(image)
        if not target.flexvol.contains(file):
            holder = self.topology.flexvol_holding(file)
            raise _Skip(
                f"the image file is in {holder.name if holder else 'no FlexVol'}, "
                f"not in {target.flexvol.name}"
            )
        if image.disk_format != "raw":
            raise _Skip(f"the image is {image.disk_format}; only raw images clone directly")
        return CloneSource(
            file, ProvisioningPath.DIRECT_CLONE, f"image file in {target.flexvol.name}"
        )

    # 3. ------------------------------------------------------------------------------------
    def _offload_image_file(
        self, target: VolumeTarget, image: ImageSource, record: ProvisioningRecord
    ) -> CloneSource:
        file = self._image_file(image)
        holder = self.topology.flexvol_holding(file)
        if holder is None:
            raise _Skip(f"the image file {file} is in no FlexVol")
        decision = self.topology.offload_decision(holder, target.flexvol)
        if not decision.allowed:
            raise _Skip(decision.reason)

        def fill(temporary: Path) -> None:
            if image.disk_format == "raw":
                self._copy_offload(file, temporary, target, record)
                return
            staged = temporary.with_name(f"{temporary.name}.{image.disk_format}")
            self._copy_offload(file, staged, target, record)
            self._make_raw(staged, temporary, image, target, record)

        return self._fill_cache(
            target, image, record, fill=fill, source=f"image file in {holder.name}"
        )

    # 4. ------------------------------------------------------------------------------------
    def _download(
        self, target: VolumeTarget, image: ImageSource, record: ProvisioningRecord
    ) -> CloneSource:
        location = image.location
        if location is None:
            raise _Skip("the image has no location to download it from")
        if self._on_download is not None:
            self._on_download()

        def fill(temporary: Path) -> None:
            staged = temporary.with_name(f"{temporary.name}.download")
            with record.step(StepName.DOWNLOAD, detail=str(location)):
                fetched = fetch(
                    location,
                    staged,
                    expected=Expected(size=image.size, md5=image.md5, sha512=image.sha512),
                    what=f"image {image.id}",
                    timeouts=self._download_settings,
                )
            record.host_bytes += fetched.host_bytes
            self._make_raw(staged, temporary, image, target, record)

        return self._fill_cache(
            target,
            image,
            record,
            fill=fill,
            source=str(location),
            path=ProvisioningPath.DOWNLOAD,
        )

    def _leave_download(
        self, target: VolumeTarget, image: ImageSource, record: ProvisioningRecord
    ) -> CloneSource:
        record.skip(FlowchartStep.DOWNLOAD, "left to the caller, which downloads the image")
        raise DownloadLeft(record)

    # 5. ------------------------------------------------------------------------------------
    def _extend(
        self, target: VolumeTarget, file_format: FileFormat, record: ProvisioningRecord
    ) -> None:
        """Give the volume its requested size (a qcow2 overlay was made at that size)."""
        if file_format is FileFormat.RAW:
            with record.step(StepName.EXTEND):
                target.flexvol.extend(target.file, target.size_bytes)

    # shared steps --------------------------------------------------------------------------
    def _image_file(self, image: ImageSource) -> Path:
        if image.file is None:
            raise _Skip("the image is remote; its bytes are in no FlexVol")
        return image.file

    def _fill_cache(
        self,
        target: VolumeTarget,
        image: ImageSource,
        record: ProvisioningRecord,
        *,
        fill: Callable[[Path], None],
        source: str,
        path: ProvisioningPath = ProvisioningPath.COPY_OFFLOAD,
    ) -> CloneSource:
        """Fill the destination's cache entry once (``fill`` writes it), to clone from."""
        cache = ImageCache(target.flexvol)
        with record.step(StepName.CACHE_FILL) as step:
            entry, filled = cache.fill_once(image.id, fill)
            step.detail = (
                f"filled: {describe_layout(entry)}"
                if filled
                else "filled meanwhile by another creation"
            )
        record.filled_cache = filled
        if not filled:
            return CloneSource(
                entry, ProvisioningPath.CACHE_CLONE, f"cache of {target.flexvol.name}"
            )
        return CloneSource(entry, path, source)

    def _copy_offload(
        self, source: Path, destination: Path, target: VolumeTarget, record: ProvisioningRecord
    ) -> None:
        with record.step(StepName.COPY_OFFLOAD) as step:
            result = target.flexvol.copy_from(source, destination, layout=self.layout)
            step.detail = f"{result.bytes_copied} data bytes via {result.method}"
        record.copy_method = str(result.method)
        record.host_bytes += result.host_bytes

    def _make_raw(
        self,
        staged: Path,
        raw: Path,
        image: ImageSource,
        target: VolumeTarget,
        record: ProvisioningRecord,
    ) -> None:
        """Inspect untrusted bytes, then convert them to raw at ``raw`` (or just rename)."""
        with record.step(StepName.INSPECT):
            inspected = inspect_image(
                staged, declared_format=image.disk_format, what=f"image {image.id}"
            )
        record.host_bytes += inspected.host_bytes
        available = target.flexvol.space().available_bytes
        if image.disk_format != "raw" and inspected.virtual_size > available:
            raise InsufficientSpace(
                f"image {image.id} expands to {inspected.virtual_size / GiB:.2f} GiB raw; "
                f"FlexVol {target.flexvol.name} has {available / GiB:.2f} GiB available"
            )
        if image.disk_format == "raw":
            os.rename(staged, raw)
            return
        with record.step(StepName.CONVERT, detail=f"{image.disk_format} → raw"):
            record.host_bytes += qemu_img.convert_to_raw(
                staged,
                raw,
                source_format=qemu_format(image.disk_format),
                virtual_size=inspected.virtual_size,
                layout=self.layout,
            )
        staged.unlink()

    def _cut(
        self, source_file: Path, target: VolumeTarget, record: ProvisioningRecord
    ) -> FileFormat:
        """Cut the volume's file from ``source_file``: the end of every path before step 5."""
        image_size = source_file.stat().st_size
        if target.size_bytes < image_size:
            raise InvalidRequest(
                f"the volume ({target.size_bytes / GiB:g} GiB) is smaller than the image's "
                f"virtual size ({image_size / GiB:.2f} GiB); ask for at least "
                f"{-(-image_size // GiB)} GiB"
            )
        target.check_claim()
        kinds = clone_kinds(
            target.flexvol, self.clone_method, record, overlay_allowed=self.overlays
        )
        return cut(source_file, target, record, kinds=kinds)
