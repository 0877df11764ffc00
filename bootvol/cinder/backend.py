"""The engine's work for the Cinder driver, in Cinder's terms but without Cinder.

A Backend is one Cinder backend section: its FlexVols with ``volumes:true`` are its pools;
every FlexVol it knows (pools or not) is a copy offload source. Files are named as
bootvol's own service names them, by Cinder's ids: ``volume-<name_id>`` (Cinder's
``volume.name``) and ``snapshot-<snapshot id>`` (``snapshot.name``), beside each other in
the pool's folder, so that a snapshot and the volumes made from it are reflinks of one
another.

Every method blocks (file I/O, qemu-img, flock waits): the driver runs them off Cinder's
eventlet hub.
"""

from __future__ import annotations

from dataclasses import dataclass

from bootvol.config import StorageSettings
from bootvol.errors import NotFound
from bootvol.storage.flexvol import FlexVol
from bootvol.storage.topology import Topology
from bootvol.units import GiB
from bootvol.volumes.cache import ImageCache
from bootvol.volumes.cleaner import CleanReport, clean_flexvol
from bootvol.volumes.records import FileFormat
from bootvol.volumes.sources import clone_volume, empty_volume
from bootvol.volumes.volume_file import ProvisionedVolume, VolumeTarget, grow
from bootvol.volumes.workflow import ImageSource, Workflow


@dataclass(frozen=True)
class PoolStats:
    name: str
    total_bytes: int
    available_bytes: int
    provisioned_bytes: int  # the volumes' and snapshots' sizes, as the guests see them
    reflink: bool
    cached_images: int


@dataclass(frozen=True)
class StoredFile:
    """A volume or snapshot file of this backend, and its format (which the driver keeps in
    Cinder's admin metadata: the file's own header is guest data and proves nothing)."""

    target: VolumeTarget
    file_format: FileFormat

    @property
    def description(self) -> str:
        return f"{self.target.kind} {self.target.volume_id}"


class Backend:
    def __init__(self, settings: StorageSettings) -> None:
        self.settings = settings
        self.topology = Topology.from_settings(settings)
        # Raw files only: Nova mounts the export elsewhere, where an overlay's backing path
        # (this host's) does not exist. Where reflink cannot, volumes are sparse copies.
        self.workflow = Workflow(
            topology=self.topology,
            clone_method=settings.clone_method,
            overlays=False,
            layout=settings.cache.layout,
        )

    def pools(self) -> list[FlexVol]:
        return self.topology.volume_flexvols()

    def pool(self, name: str) -> FlexVol:
        flexvol = self.topology.get(name)
        if not flexvol.holds_volumes:
            raise NotFound(f"FlexVol {name} is not a pool of this backend (volumes:false)")
        return flexvol

    def check(self) -> None:
        """Every pool is mounted and writable (raises StorageError naming the one that is not)."""
        for flexvol in self.pools():
            flexvol.ensure()

    def target(
        self, *, pool: str, volume_id: str, size_gib: int, kind: str = "volume"
    ) -> VolumeTarget:
        return VolumeTarget(
            volume_id=volume_id, flexvol=self.pool(pool), size_bytes=size_gib * GiB, kind=kind
        )

    def create_empty(self, target: VolumeTarget) -> ProvisionedVolume:
        return empty_volume(target=target)

    def create_from_image(
        self, target: VolumeTarget, image: ImageSource, *, download: bool
    ) -> ProvisionedVolume:
        """The flowchart; without ``download``, DownloadLeft when only a download is left."""
        return self.workflow.create_volume_from_image(target=target, image=image, download=download)

    def clone(self, source: StoredFile, target: VolumeTarget) -> ProvisionedVolume:
        """A volume from a volume, a snapshot from its volume, a volume from a snapshot:
        a reflink where the filesystem can, else a sparse copy (never an overlay)."""
        target.flexvol.ensure()
        provisioned = clone_volume(
            source_id=source.target.volume_id,
            source_file=source.target.file,
            source_format=source.file_format,
            target=target,
            clone_method=self.settings.clone_method,
        )
        provisioned.record.source = source.description
        return provisioned

    def extend(self, stored: StoredFile) -> None:
        grow(
            stored.target.flexvol,
            stored.target.file,
            file_format=stored.file_format,
            size_bytes=stored.target.size_bytes,
        )

    def remove(self, target: VolumeTarget) -> None:
        """Remove the file and its overlay link; a file already gone is fine (Cinder retries
        deletes, and a volume that failed to be made has none)."""
        target.remove_files()

    def stats(self) -> list[PoolStats]:
        return [self._pool_stats(flexvol) for flexvol in self.pools()]

    def clean_caches(self) -> list[CleanReport]:
        return [clean_flexvol(flexvol, self.settings.cache) for flexvol in self.pools()]

    def _pool_stats(self, flexvol: FlexVol) -> PoolStats:
        flexvol.ensure()
        space = flexvol.space()
        provisioned = sum(
            entry.stat().st_size
            for pattern in ("volume-*", "snapshot-*")
            for entry in flexvol.path.glob(pattern)
        )
        return PoolStats(
            name=flexvol.name,
            total_bytes=space.total_bytes,
            available_bytes=space.available_bytes,
            provisioned_bytes=provisioned,
            reflink=flexvol.capabilities.reflink,
            cached_images=len(ImageCache(flexvol).entries()),
        )
