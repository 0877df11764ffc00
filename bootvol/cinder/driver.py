"""BootvolDriver: Cinder's volume driver interface over bootvol's engine (bootvol.cinder.backend).

Thin on purpose: each method turns Cinder's objects into the engine's (pool = the FlexVol
named after ``#`` in ``volume.host``, files named by Cinder's ids), runs the engine off the
eventlet hub, and turns bootvol's errors into Cinder's exceptions.

Facts of Cinder 29 this relies on (cinder/volume/flows/manager/create_volume.py):
- ``clone_image`` is asked first for a volume from an image; ``(update, True)`` ends the
  creation there. ``(None, False)`` makes Cinder download the image to a temporary file,
  check it, call ``create_volume`` and then ``copy_image_to_volume``.
- ``copy_image_to_volume``'s return is dropped and ``create_volume``'s model update is
  applied again afterwards: so ``create_volume`` returns only ``provider_location``, and the
  other methods save what they learn (the file format in admin metadata, the provisioning
  record as ``bootvol:`` volume metadata) on the volume object themselves.
- cinder-volume runs on eventlet: a blocking call (flock waits, qemu-img, copy_file_range,
  fsync) would stop every other request and the service's heartbeats. Engine calls go
  through ``tpool.execute``; when Cinder runs on native threads, they are called directly.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from cinder import exception, interface
from cinder import utils as cinder_utils
from cinder.common import constants
from cinder.image import image_utils
from cinder.volume import driver, volume_utils

import bootvol
from bootvol.cinder import images, options, records
from bootvol.cinder.backend import Backend, StoredFile
from bootvol.errors import BootvolError, ImageRefused
from bootvol.units import GiB
from bootvol.volumes.cleaner import PeriodicCleaner
from bootvol.volumes.records import FileFormat, ProvisioningPath, ProvisioningRecord
from bootvol.volumes.volume_file import ProvisionedVolume, VolumeTarget
from bootvol.volumes.workflow import DownloadLeft

log = logging.getLogger(__name__)

T = TypeVar("T")

FORMAT_KEY = "format"  # admin metadata, as Cinder's NFS drivers and attachments API read it


@interface.volumedriver
class BootvolDriver(driver.VolumeDriver):
    """Volumes as files on reflink FlexVols; images by cache-clone, copy offload or download."""

    VERSION = bootvol.__version__
    CI_WIKI_NAME = "bootvol"
    # One cinder-volume manages a volume (by its host); fills are single-flight across hosts
    # by the cache's locks on the FlexVol, but Cinder's active-active needs more than that.
    SUPPORTS_ACTIVE_ACTIVE = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.configuration.append_config_values(options.OPTS)
        self._backend: Backend | None = None
        self._cleaner: PeriodicCleaner | None = None

    @staticmethod
    def get_driver_options() -> list[Any]:
        return options.OPTS

    # setup ---------------------------------------------------------------------------------
    def do_setup(self, context: Any) -> None:
        try:
            settings = options.storage_settings(self.configuration)
        except options.OptionError as exc:
            raise exception.InvalidConfigurationValue(option=exc.option, value=exc.value) from exc
        self._backend = Backend(settings)
        log.info(
            "bootvol: pools %s, copy offload %s, clone method %s",
            ", ".join(f.name for f in self._backend.pools()),
            "on" if settings.copy_offload else "off",
            settings.clone_method,
        )

    def check_for_setup_error(self) -> None:
        self._run(self.backend.check)
        # Started here, not in __init__: cinder-volume builds the driver in its parent
        # process and runs it in a forked child per backend.
        if self._cleaner is None:
            self._cleaner = PeriodicCleaner(
                lambda: self._run(self.backend.clean_caches),
                interval_seconds=self.backend.settings.cache.clean_interval_seconds,
            )
            self._cleaner.start()

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            raise exception.VolumeBackendAPIException(data="bootvol: do_setup has not run")
        return self._backend

    # stats ---------------------------------------------------------------------------------
    def get_volume_stats(self, refresh: bool = False) -> dict[str, Any]:
        if refresh or not self._stats:
            self._update_volume_stats()
        return self._stats

    def _update_volume_stats(self) -> None:
        conf = self.configuration
        ratio = volume_utils.get_max_over_subscription_ratio(
            conf.max_over_subscription_ratio, supports_auto=False
        )
        pools = [
            {
                "pool_name": pool.name,
                "total_capacity_gb": round(pool.total_bytes / GiB, 2),
                "free_capacity_gb": round(pool.available_bytes / GiB, 2),
                "provisioned_capacity_gb": round(pool.provisioned_bytes / GiB, 2),
                "reserved_percentage": conf.reserved_percentage,
                "max_over_subscription_ratio": ratio,
                "thin_provisioning_support": True,
                "thick_provisioning_support": False,
                "multiattach": False,
                "QoS_support": False,
                "online_extend_support": False,
                # A volume from a volume or snapshot is pinned to its source's pool.
                "clone_across_pools": False,
                # Capabilities of our own, which extra specs can match.
                "reflink": pool.reflink,
                "cached_images": pool.cached_images,
            }
            for pool in self._run(self.backend.stats)
        ]
        self._stats = {
            "volume_backend_name": conf.safe_get("volume_backend_name") or "bootvol",
            "vendor_name": "bootvol",
            "driver_version": self.VERSION,
            "storage_protocol": constants.NFS,
            "pools": pools,
        }

    # volumes -------------------------------------------------------------------------------
    def create_volume(self, volume: Any) -> dict[str, Any]:
        target = self._target(volume)
        self._provision(volume, lambda: self.backend.create_empty(target))
        return self._location(target)

    def clone_image(
        self,
        context: Any,
        volume: Any,
        image_location: Any,
        image_meta: dict[str, Any],
        image_service: Any,
    ) -> tuple[dict[str, Any] | None, bool]:
        target = self._target(volume)
        file = self._run(images.file_in_flexvol, self.backend.topology, image_location)
        image = images.image_source(image_meta, location_file=file)
        try:
            self._provision(
                volume,
                lambda: self.backend.create_from_image(target, image, download=False),
                image_id=image.id,
            )
        except DownloadLeft as left:
            log.info(
                "volume %s: nothing cheaper than a download of image %s; Cinder downloads it (%s)",
                volume.id,
                image.id,
                left,
            )
            return None, False
        return {**self._location(target), "bootable": True}, True

    def copy_image_to_volume(
        self,
        context: Any,
        volume: Any,
        image_service: Any,
        image_id: str,
        disable_sparse: bool = False,
    ) -> None:
        """Fill this pool's cache from the image Cinder downloaded, then clone the volume.

        Cinder fetched and checked the image already (TemporaryImages); read that file
        rather than download again. The cache is still filled with bootvol's own checks
        (size, the format inspector) and in scratch, as any fill.
        """
        target = self._target(volume)
        image_meta = image_service.show(context, image_id)
        fetched = image_utils.TemporaryImages.for_image_service(image_service).get(
            context, image_id
        )
        # Cinder's create_volume made an empty file first; the flowchart makes its own.
        self._run(self.backend.remove, target)
        if fetched is not None:
            self._fill_from(volume, target, image_meta, Path(fetched))
            return
        with image_utils.temporary_file(prefix=f"bootvol_{image_id}_") as tmp:
            image_utils.fetch_verify_image(context, image_service, image_id, tmp)
            self._fill_from(volume, target, image_meta, Path(tmp))

    def _fill_from(self, volume: Any, target: VolumeTarget, image_meta: Any, file: Path) -> None:
        # glanceclient checked the bytes against Glance's hash as Cinder downloaded them
        # (do_checksum): hashing them again would only cost a pass of Python over the image;
        # the kernel copies the file into the cache instead, and its size is still checked.
        image = replace(images.image_source(image_meta, location_file=file), md5=None, sha512=None)

        def make() -> ProvisionedVolume:
            provisioned = self.backend.create_from_image(target, image, download=True)
            if provisioned.record.path is ProvisioningPath.DOWNLOAD:
                provisioned.record.source = f"image {image.id}, downloaded by Cinder"
            return provisioned

        self._provision(volume, make, image_id=image.id)

    def create_cloned_volume(self, volume: Any, src_vref: Any) -> dict[str, Any]:
        target = self._target(volume)
        source = StoredFile(self._target(src_vref), self._format_of(src_vref))
        self._provision(volume, lambda: self.backend.clone(source, target))
        return self._location(target)

    def create_volume_from_snapshot(self, volume: Any, snapshot: Any) -> dict[str, Any]:
        target = self._target(volume)
        source = StoredFile(self._snapshot_target(snapshot), self._format_of(snapshot.volume))
        self._provision(volume, lambda: self.backend.clone(source, target))
        return self._location(target)

    def delete_volume(self, volume: Any) -> None:
        try:
            target = self._target(volume)
        except exception.VolumeBackendAPIException:
            if volume.provider_location is not None:
                raise  # a pool this backend made it in is gone: say so, do not forget it
            # Never made here (no host, or a pool no longer configured): nothing to remove.
            log.info("volume %s: not in a pool of this backend, no file to delete", volume.id)
            return
        self._run(self.backend.remove, target)

    def extend_volume(self, volume: Any, new_size: int) -> None:
        target = self._target(volume, size_gib=new_size)
        self._run(self.backend.extend, StoredFile(target, self._format_of(volume)))

    def local_path(self, volume: Any) -> str:
        return str(self._target(volume).file)

    # snapshots -----------------------------------------------------------------------------
    def create_snapshot(self, snapshot: Any) -> None:
        """A reflink of the volume beside it (constant time; shares every block)."""
        volume = snapshot.volume
        source = StoredFile(self._target(volume), self._format_of(volume))
        provisioned = self._run(self.backend.clone, source, self._snapshot_target(snapshot))
        log.info(
            "snapshot %s of volume %s: %s in %.3f s",
            snapshot.id,
            volume.id,
            provisioned.record.clone_method,
            provisioned.record.seconds,
        )

    def delete_snapshot(self, snapshot: Any) -> None:
        self._run(self.backend.remove, self._snapshot_target(snapshot))

    # images from volumes -------------------------------------------------------------------
    def copy_volume_to_image(
        self, context: Any, volume: Any, image_service: Any, image_meta: dict[str, Any]
    ) -> None:
        volume_utils.upload_volume(
            context,
            image_service,
            image_meta,
            self.local_path(volume),
            volume,
            volume_format=str(self._format_of(volume)),
            run_as_root=False,
        )

    # connections ---------------------------------------------------------------------------
    def initialize_connection(self, volume: Any, connector: Any, **kwargs: Any) -> dict[str, Any]:
        """NFS connection info, as Nova's LibvirtNFSVolumeDriver mounts it: the FlexVol's
        export, the file's name in it, and its format."""
        target = self._target(volume)
        export = target.flexvol.export
        if export is None:
            raise exception.VolumeBackendAPIException(
                data=f"FlexVol {target.flexvol.name} has no export: add export:<server>:/<path> "
                "to its bootvol_flexvol line so compute hosts can mount it"
            )
        data = {"export": export, "name": target.file.name, "format": str(self._format_of(volume))}
        if self.configuration.bootvol_mount_options:
            data["options"] = self.configuration.bootvol_mount_options
        # os-brick's NFS connector needs mount_point_base when Cinder attaches on its host.
        return {
            "driver_volume_type": "nfs",
            "data": data,
            "mount_point_base": self.configuration.bootvol_mount_point_base,
        }

    def terminate_connection(self, volume: Any, connector: Any, **kwargs: Any) -> None:
        pass  # nothing is exported per connector: the FlexVol's export serves every host

    def ensure_export(self, context: Any, volume: Any) -> None:
        pass

    def create_export(self, context: Any, volume: Any, connector: Any) -> None:
        pass

    def remove_export(self, context: Any, volume: Any) -> None:
        pass

    # helpers -------------------------------------------------------------------------------
    def _target(self, volume: Any, *, size_gib: int | None = None) -> VolumeTarget:
        with _as_cinder_errors():
            return self.backend.target(
                pool=_pool_of(volume),
                volume_id=volume.name_id,
                size_gib=volume.size if size_gib is None else size_gib,
            )

    def _snapshot_target(self, snapshot: Any) -> VolumeTarget:
        with _as_cinder_errors():
            return self.backend.target(
                pool=_pool_of(snapshot.volume),
                volume_id=snapshot.id,
                size_gib=snapshot.volume_size,
                kind="snapshot",
            )

    def _location(self, target: VolumeTarget) -> dict[str, Any]:
        return {"provider_location": target.flexvol.export or str(target.flexvol.path)}

    def _format_of(self, volume: Any) -> FileFormat:
        with volume.obj_as_admin():
            value = (volume.admin_metadata or {}).get(FORMAT_KEY, FileFormat.RAW.value)
        return FileFormat(value)

    def _provision(
        self,
        volume: Any,
        make: Callable[[], ProvisionedVolume],
        *,
        image_id: str | None = None,
    ) -> ProvisionedVolume:
        """Make the volume's file, then save its format and record on the volume."""
        with _as_cinder_errors(image_id):
            provisioned = _off_the_hub(make)
        self._save(volume, provisioned.file_format, provisioned.record)
        if image_id is not None:
            return provisioned  # the workflow logged the path it took, and why
        log.info(
            "volume %s: %s from %s (%s) in %.3f s, %d host bytes; skipped: %s",
            volume.id,
            provisioned.record.path,
            provisioned.record.source,
            provisioned.record.clone_method,
            provisioned.record.seconds,
            provisioned.record.host_bytes,
            {str(k): v for k, v in provisioned.record.skipped.items()} or "nothing",
        )
        return provisioned

    def _save(self, volume: Any, file_format: FileFormat, record: ProvisioningRecord) -> None:
        # Cinder saves metadata and admin metadata whole (delete=True): merge, don't replace.
        with volume.obj_as_admin():
            admin_metadata = dict(volume.admin_metadata or {})
            admin_metadata[FORMAT_KEY] = str(file_format)
            volume.update(
                {
                    "admin_metadata": admin_metadata,
                    "metadata": records.merged(volume.metadata or {}, record),
                }
            )
            volume.save()

    def _run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with _as_cinder_errors():
            return _off_the_hub(function, *args, **kwargs)


def _pool_of(volume: Any) -> str:
    pool = volume_utils.extract_host(volume.host, "pool")
    if pool is None:
        raise exception.VolumeBackendAPIException(
            data=f"volume {volume.id} has no pool in its host {volume.host!r}"
        )
    return pool


def _off_the_hub(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking engine code in eventlet's thread pool (directly on native threads)."""
    if cinder_utils.concurrency_mode_threading():
        return function(*args, **kwargs)
    from eventlet import tpool

    return tpool.execute(function, *args, **kwargs)


@contextlib.contextmanager
def _as_cinder_errors(image_id: str | None = None) -> Iterator[None]:
    """bootvol's errors as the Cinder exceptions its manager records on the volume."""
    try:
        yield
    except ImageRefused as exc:
        raise exception.ImageUnacceptable(image_id=image_id or "", reason=exc.message) from exc
    except BootvolError as exc:
        raise exception.VolumeBackendAPIException(data=exc.message) from exc
