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
from bootvol.storage import qemu_img
from bootvol.storage.flexvol import FlexVol
from bootvol.storage.topology import Topology
from bootvol.volumes.cache import CACHE_PREFIX, ImageCache
from bootvol.volumes.records import CloneKind, ProvisioningPath, ProvisioningRecord

log = logging.getLogger(__name__)

GiB = 1 << 30


@dataclass(frozen=True)
class ImageSource:
    """What the workflow needs to know of an image; built from its record by the service."""

    id: str
    disk_format: str
    location: str  # a file inside a FlexVol, or an http(s):// URL
    size: int | None = None
    md5: str | None = None
    sha512: str | None = None

    @property
    def file(self) -> Path | None:
        if self.location.startswith(("http://", "https://")):
            return None
        return Path(self.location)


@dataclass(frozen=True)
class VolumeTarget:
    volume_id: str
    flexvol: FlexVol
    size_bytes: int
    # Raises when this process may no longer write the volume's file (its claim was taken
    # over); called just before the file is made, after the long steps.
    check_claim: Callable[[], None] = lambda: None

    @property
    def file(self) -> Path:
        return self.flexvol.path / f"volume-{self.volume_id}"

    @property
    def base_link(self) -> Path:
        """For a qcow2 overlay volume: a hard link that keeps its backing file alive."""
        return self.flexvol.bases_dir / f"volume-{self.volume_id}.base"

    def remove_files(self) -> None:
        self.file.unlink(missing_ok=True)
        self.base_link.unlink(missing_ok=True)


@dataclass(frozen=True)
class ProvisionedVolume:
    file: Path
    file_format: str  # raw, or qcow2 for an overlay
    record: ProvisioningRecord


class _Skip(Exception):
    """This path does not apply; the message says why."""


Attempt = Callable[[VolumeTarget, ImageSource, ProvisioningRecord], ProvisionedVolume]


class Workflow:
    def __init__(
        self,
        *,
        topology: Topology,
        clone_method: CloneMethod,
        on_download: Callable[[], None] | None = None,
        download: DownloadSettings | None = None,
    ) -> None:
        self.topology = topology
        self.clone_method = clone_method
        self._download_settings = download or DownloadSettings()
        self._on_download = on_download

    def create_volume_from_image(
        self, *, target: VolumeTarget, image: ImageSource
    ) -> ProvisionedVolume:
        record = ProvisioningRecord()
        attempts: list[tuple[ProvisioningPath, Attempt]] = [
            (ProvisioningPath.CACHE_CLONE, self._clone_local_cache),
            (ProvisioningPath.COPY_OFFLOAD, self._offload_remote_cache),
            (ProvisioningPath.DIRECT_CLONE, self._clone_image_file),
            (ProvisioningPath.COPY_OFFLOAD, self._offload_image_file),
            (ProvisioningPath.DOWNLOAD, self._download),
        ]
        target.flexvol.ensure()
        with ImageCache(target.flexvol).in_use(image.id):
            for path, attempt in attempts:
                try:
                    made = attempt(target, image, record)
                except _Skip as skip:
                    record.skip(path, str(skip))
                    continue
                except StorageError as exc:
                    target.remove_files()
                    record.skip(path, f"failed: {exc.message}")
                    log.warning(
                        "volume %s: %s failed, trying the next path: %s",
                        target.volume_id,
                        path,
                        exc.message,
                    )
                    continue
                log.info(
                    "volume %s: %s from %s (%s clone) in %.3f s, %d host bytes; skipped: %s",
                    target.volume_id,
                    record.path,
                    record.source,
                    record.clone_method,
                    record.seconds,
                    record.host_bytes,
                    record.skipped or "nothing",
                )
                return made
        reasons = "; ".join(f"{p}: {r}" for p, r in record.skipped.items())
        raise StorageError(f"every provisioning path failed ({reasons})")

    # 1. ------------------------------------------------------------------------------------
    def _clone_local_cache(
        self, target: VolumeTarget, image: ImageSource, record: ProvisioningRecord
    ) -> ProvisionedVolume:
        with record.step("cache lookup"):
            entry = ImageCache(target.flexvol).lookup(image.id)
        if entry is None:
            raise _Skip(f"no {CACHE_PREFIX}{image.id} in {target.flexvol.name}")
        return self._finish(
            ProvisioningPath.CACHE_CLONE, entry, f"cache of {target.flexvol.name}", target, record
        )

    # 1b. -----------------------------------------------------------------------------------
    def _offload_remote_cache(
        self, target: VolumeTarget, image: ImageSource, record: ProvisioningRecord
    ) -> ProvisionedVolume:
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
            return self._fill_cache_then_clone(
                target,
                image,
                record,
                fill=lambda temporary: self._copy_offload(entry, temporary, target, record),
                source=f"cache of {holder.name} (copy offload)",
            )

    # 2. ------------------------------------------------------------------------------------
    def _clone_image_file(
        self, target: VolumeTarget, image: ImageSource, record: ProvisioningRecord
    ) -> ProvisionedVolume:
        file = self._image_file(image)
        if not target.flexvol.contains(file):
            holder = self.topology.flexvol_holding(file)
            raise _Skip(
                f"the image file is in {holder.name if holder else 'no FlexVol'}, "
                f"not in {target.flexvol.name}"
            )
        if image.disk_format != "raw":
            raise _Skip(f"the image is {image.disk_format}; only raw images clone directly")
        return self._finish(
            ProvisioningPath.DIRECT_CLONE,
            file,
            f"image file in {target.flexvol.name}",
            target,
            record,
        )

    # 3. ------------------------------------------------------------------------------------
    def _offload_image_file(
        self, target: VolumeTarget, image: ImageSource, record: ProvisioningRecord
    ) -> ProvisionedVolume:
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

        return self._fill_cache_then_clone(
            target, image, record, fill=fill, source=f"image file in {holder.name}"
        )

    # 4. ------------------------------------------------------------------------------------
    def _download(
        self, target: VolumeTarget, image: ImageSource, record: ProvisioningRecord
    ) -> ProvisionedVolume:
        if self._on_download is not None:
            self._on_download()

        def fill(temporary: Path) -> None:
            staged = temporary.with_name(f"{temporary.name}.download")
            with record.step("download", detail=image.location):
                fetched = fetch(
                    image.location,
                    staged,
                    expected=Expected(size=image.size, md5=image.md5, sha512=image.sha512),
                    what=f"image {image.id}",
                    timeouts=self._download_settings,
                )
            record.host_bytes += fetched.host_bytes
            self._make_raw(staged, temporary, image, target, record)

        return self._fill_cache_then_clone(
            target,
            image,
            record,
            fill=fill,
            source=image.location,
            path=ProvisioningPath.DOWNLOAD,
        )

    # shared steps --------------------------------------------------------------------------
    def _image_file(self, image: ImageSource) -> Path:
        if image.file is None:
            raise _Skip("the image is remote (http); its bytes are in no FlexVol")
        return image.file

    def _fill_cache_then_clone(
        self,
        target: VolumeTarget,
        image: ImageSource,
        record: ProvisioningRecord,
        *,
        fill: Callable[[Path], None],
        source: str,
        path: ProvisioningPath = ProvisioningPath.COPY_OFFLOAD,
    ) -> ProvisionedVolume:
        cache = ImageCache(target.flexvol)
        with record.step("cache fill") as step:
            entry, filled = cache.fill_once(image.id, fill)
            step.detail = "filled" if filled else "filled meanwhile by another creation"
        if not filled:
            path, source = ProvisioningPath.CACHE_CLONE, f"cache of {target.flexvol.name}"
        return self._finish(path, entry, source, target, record)

    def _copy_offload(
        self, source: Path, destination: Path, target: VolumeTarget, record: ProvisioningRecord
    ) -> None:
        with record.step("copy offload") as step:
            result = target.flexvol.copy_from(source, destination)
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
        with record.step("inspect"):
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
        with record.step("convert", detail=f"{image.disk_format} → raw"):
            record.host_bytes += qemu_img.convert_to_raw(
                staged, raw, source_format=qemu_format(image.disk_format)
            )
        staged.unlink()

    def _finish(
        self,
        path: ProvisioningPath,
        source_file: Path,
        source: str,
        target: VolumeTarget,
        record: ProvisioningRecord,
    ) -> ProvisionedVolume:
        """Clone ``source_file`` into the volume and extend it: the end of every path."""
        image_size = source_file.stat().st_size
        if target.size_bytes < image_size:
            raise InvalidRequest(
                f"the volume ({target.size_bytes / GiB:g} GiB) is smaller than the image's "
                f"virtual size ({image_size / GiB:.2f} GiB); ask for at least "
                f"{-(-image_size // GiB)} GiB"
            )
        target.check_claim()
        file_format = self._clone(source_file, target, record)
        if file_format == "raw":
            with record.step("extend"):
                target.flexvol.extend(target.file, target.size_bytes)
        record.path, record.source = path, source
        return ProvisionedVolume(file=target.file, file_format=file_format, record=record)

    def _clone_kinds(self, flexvol: FlexVol, record: ProvisioningRecord) -> list[CloneKind]:
        if self.clone_method is not CloneMethod.AUTO:
            return [CloneKind(self.clone_method.value)]
        capabilities = flexvol.capabilities
        if capabilities.reflink:
            return [CloneKind.REFLINK, CloneKind.QCOW2, CloneKind.COPY]
        record.skip(
            "reflink", f"{flexvol.name} is on {capabilities.filesystem}, which cannot reflink"
        )
        return [CloneKind.QCOW2, CloneKind.COPY]

    def _clone(self, source: Path, target: VolumeTarget, record: ProvisioningRecord) -> str:
        """Cut the volume from ``source`` with the first clone method that works."""
        return clone_into(source, target, record, self._clone_kinds(target.flexvol, record))


def clone_into(
    source: Path, target: VolumeTarget, record: ProvisioningRecord, kinds: list[CloneKind]
) -> str:
    """Make ``target``'s file from ``source`` by the first of ``kinds`` that works; return the
    file's format. A kind that fails leaves nothing behind and is recorded as skipped."""
    for kind in kinds:
        try:
            with record.step(f"clone ({kind})"):
                file_format = _clone_with(kind, source, target, record)
        except (StorageError, OSError) as exc:
            target.remove_files()
            if kind is kinds[-1]:
                raise as_storage_error(exc) from exc
            record.skip(str(kind), f"failed: {exc}")
            continue
        record.clone_method = kind
        return file_format
    raise AssertionError("unreachable: the loop returns or raises")


def _clone_with(
    kind: CloneKind, source: Path, target: VolumeTarget, record: ProvisioningRecord
) -> str:
    flexvol = target.flexvol
    if kind is CloneKind.REFLINK:
        flexvol.clone_file(source, target.file)
        return "raw"
    if kind is CloneKind.QCOW2:
        os.link(source, target.base_link)
        record.host_bytes += qemu_img.create_overlay(
            target.base_link, target.file, size_bytes=target.size_bytes
        )
        return "qcow2"
    result = flexvol.copy_from(source, target.file)
    record.copy_method = str(result.method)
    record.host_bytes += result.host_bytes
    return "raw"


def grow(flexvol: FlexVol, file: Path, *, file_format: str, size_bytes: int) -> None:
    """Give a volume's file ``size_bytes`` of virtual size: a sparse extend for raw, a
    resize of the qcow2 header otherwise (to its current size, a no-op)."""
    if file_format == "raw":
        flexvol.extend(file, size_bytes)
    else:
        qemu_img.resize(file, image_format=file_format, size_bytes=size_bytes)


def as_storage_error(exc: BaseException) -> StorageError:
    return exc if isinstance(exc, StorageError) else StorageError(f"clone failed: {exc}")
