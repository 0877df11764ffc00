"""The driver's options in a Cinder backend section, read into bootvol's StorageSettings.

The estate is given as repeatable key:value lines, one per cluster, SVM and FlexVol, with
the same keys as bootvol's TOML file (``[[cluster]]``, ``[[svm]]``, ``[[flexvol]]``)::

    bootvol_cluster = name:cluster1, version:9.14.1
    bootvol_svm = name:svm1, cluster:cluster1, vstorage:true
    bootvol_flexvol = name:vol_a, svm:svm1, path:/mnt/vol_a, export:fileserver:/exports/vol_a
    bootvol_flexvol = name:images, svm:svm1, path:/mnt/images, volumes:false

FlexVols with ``volumes:true`` (the default) are this backend's pools; the others are
known for copy offload from their caches and image files only (another backend's pools,
Glance's file store). Values cannot contain commas.
"""

from __future__ import annotations

from typing import Any

from oslo_config import cfg, types
from pydantic import ValidationError

from bootvol.config import CloneMethod, StorageSettings

OPTS = [
    cfg.MultiOpt(
        "bootvol_cluster",
        item_type=types.Dict(),
        help="A storage cluster: name:<name>, version:<ONTAP-style version, e.g. 9.14.1>. "
        "Repeat for each cluster.",
    ),
    cfg.MultiOpt(
        "bootvol_svm",
        item_type=types.Dict(),
        help="An SVM: name:<name>, cluster:<cluster name>, vstorage:<true|false> (copy "
        "offload between SVMs needs vstorage on both). Repeat for each SVM.",
    ),
    cfg.MultiOpt(
        "bootvol_flexvol",
        item_type=types.Dict(),
        help="A FlexVol: name:<name>, svm:<svm name>, path:<where this host mounts it>, "
        "export:<server:/export compute hosts mount>, volumes:<true: a pool of this "
        "backend; false: only a copy offload source>. Repeat for each FlexVol.",
    ),
    cfg.BoolOpt(
        "bootvol_copy_offload",
        default=True,
        help="Copy images between FlexVols of one cluster storage-side.",
    ),
    cfg.StrOpt(
        "bootvol_clone_method",
        default=CloneMethod.AUTO.value,
        # No qcow2 overlays: their backing file is named by this host's path, which compute
        # hosts (mounting the export elsewhere) do not have.
        choices=[m.value for m in CloneMethod if m is not CloneMethod.QCOW2],
        help="How volumes are cut from cached images: auto (reflink where the filesystem "
        "can, else a sparse copy), reflink or copy.",
    ),
    cfg.StrOpt(
        "bootvol_mount_point_base",
        default="$state_path/mnt",
        help="Where Cinder's own host mounts the FlexVols' exports when it attaches a volume "
        "itself (backups, migration, encrypted volumes from images).",
    ),
    cfg.StrOpt(
        "bootvol_mount_options",
        help="Mount options for the exports, passed in the connection info to compute hosts.",
    ),
    cfg.IntOpt(
        "bootvol_thres_avl_size_perc_start",
        default=20,
        min=0,
        max=100,
        help="The cache cleaner starts when a pool's available space falls to this percent.",
    ),
    cfg.IntOpt(
        "bootvol_thres_avl_size_perc_stop",
        default=60,
        min=0,
        max=100,
        help="The cache cleaner stops once available space is back at this percent.",
    ),
    cfg.IntOpt(
        "bootvol_expiry_thres_minutes",
        default=720,
        min=0,
        help="Cache entries unused for this many minutes may be cleaned.",
    ),
    cfg.StrOpt(
        "bootvol_cache_min_hole",
        default="1M",
        help="Zero runs shorter than this (4k, 64k, 1M, 16M…) are stored as zeros in a cache "
        "entry, so that it is a few extents and cloning it takes the same time at any image "
        "size; 4k keeps every zero block a hole (least space, slower clones).",
    ),
    cfg.IntOpt(
        "bootvol_clean_interval_seconds",
        default=300,
        min=1,
        help="How often the cache cleaner looks at each pool.",
    ),
]


class OptionError(ValueError):
    """The backend section does not describe a valid estate; names the option."""

    def __init__(self, option: str, value: Any, reason: str) -> None:
        super().__init__(f"{option}: {reason}")
        self.option, self.value, self.reason = option, value, reason


def storage_settings(configuration: Any) -> StorageSettings:
    """The estate and engine settings from a backend's ``configuration`` (Cinder's)."""
    raw = {
        "cluster": list(configuration.bootvol_cluster or []),
        "svm": list(configuration.bootvol_svm or []),
        "flexvol": list(configuration.bootvol_flexvol or []),
        "copy_offload": configuration.bootvol_copy_offload,
        "clone_method": configuration.bootvol_clone_method,
        "cache": {
            "thres_avl_size_perc_start": configuration.bootvol_thres_avl_size_perc_start,
            "thres_avl_size_perc_stop": configuration.bootvol_thres_avl_size_perc_stop,
            "expiry_thres_minutes": configuration.bootvol_expiry_thres_minutes,
            "clean_interval_seconds": configuration.bootvol_clean_interval_seconds,
            "min_hole": configuration.bootvol_cache_min_hole,
        },
    }
    return parse(raw)


def parse(raw: dict[str, Any]) -> StorageSettings:
    try:
        return StorageSettings.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = error["loc"]
        option = _OPTION_OF.get(str(where[0]), str(where[0])) if where else "bootvol"
        detail = ".".join(str(part) for part in where[1:])
        reason = f"{detail}: {error['msg']}" if detail else error["msg"]
        raise OptionError(option, raw.get(str(where[0])) if where else raw, reason) from exc


_OPTION_OF = {
    "cluster": "bootvol_cluster",
    "svm": "bootvol_svm",
    "flexvol": "bootvol_flexvol",
    "copy_offload": "bootvol_copy_offload",
    "clone_method": "bootvol_clone_method",
    "cache": "bootvol_thres_avl_size_perc_start/stop, bootvol_expiry_thres_minutes, "
    "bootvol_cache_min_hole",
}
