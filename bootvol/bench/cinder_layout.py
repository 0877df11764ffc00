"""The estate the Cinder tests and ``scripts/cinder-demo`` run the real Cinder on.

    images   bootvol's Glance image store, and the pool of backend bv_images (volume type
             bv_images): raw images clone directly there
    vol_a    the pool of backends bv_a and bv_a2 (volume types bv_a, bv_a2)
    vol_b    the pool of backend bv_b (volume type bv_b)

One cluster (ONTAP 9.14.1) and one SVM with vStorage; every FlexVol exported as
``fileserver:/exports/<name>``; each backend lists the FlexVols it does not own with
``volumes:false``, so that copy offload between them is possible. As root, each FlexVol is
an XFS (reflink=1) filesystem of its own on a loop device, so that copy offload crosses
filesystems as it would cross FlexVols.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bootvol.bench.cinder_client import StackError
from bootvol.bench.cinder_conf import BOOTVOL_DRIVER, CinderBackend, StorageLayout, bootvol_backend
from bootvol.bench.loopback import FsKind, loopback_unavailable, mounted_filesystem
from bootvol.config import ClusterSettings, FlexVolSettings, SvmSettings

log = logging.getLogger(__name__)

IMAGE_STORE = "images"
# bv_a2 shares vol_a with bv_a, as two cinder-volume hosts share an export (a cache fill must
# still happen once); bv_images keeps its volumes on Glance's image store itself, where raw
# images clone directly.
BACKEND_POOLS = {"bv_a": "vol_a", "bv_a2": "vol_a", "bv_b": "vol_b", "bv_images": IMAGE_STORE}
FLEXVOLS = tuple(dict.fromkeys((IMAGE_STORE, *BACKEND_POOLS.values())))


def backend_layout(
    flexvols: Mapping[str, Path], *, volume_driver: str = BOOTVOL_DRIVER
) -> tuple[StorageLayout, tuple[CinderBackend, ...]]:
    """The estate at ``flexvols``' paths (name → folder), and its backends."""
    storage = StorageLayout(
        clusters=(ClusterSettings(name="cluster1", version="9.14.1"),),
        svms=(SvmSettings(name="svm1", cluster="cluster1", vstorage=True),),
        flexvols=tuple(
            FlexVolSettings(
                name=name, svm="svm1", path=flexvols[name], export=f"fileserver:/exports/{name}"
            )
            for name in FLEXVOLS
        ),
    )
    backends = tuple(
        bootvol_backend(name, storage=storage, pools=[pool], volume_driver=volume_driver)
        for name, pool in BACKEND_POOLS.items()
    )
    return storage, backends


@contextmanager
def throwaway_flexvols(
    base: Path, names: Sequence[str] = FLEXVOLS, *, size_mib: int
) -> Iterator[dict[str, Path]]:
    """One XFS (reflink=1) loopback filesystem per FlexVol, mounted at ``base/<name>``;
    unmounted after, returning once their loop devices are detached."""
    reason = loopback_unavailable()
    if reason is not None:
        raise StackError(f"loopback FlexVols cannot be made here: {reason}")
    try:
        with ExitStack() as stack:
            yield {
                name: stack.enter_context(
                    mounted_filesystem(FsKind.XFS, base / name, size_mib=size_mib)
                )
                for name in names
            }
    finally:
        _wait_for_loop_devices_to_leave(base)


def _wait_for_loop_devices_to_leave(base: Path, *, timeout: float = 30.0) -> None:
    """``umount -l`` returns at once; the kernel detaches an autoclear loop device a moment
    later, once the filesystem is released."""
    deadline = time.monotonic() + timeout
    while left := _loop_devices_under(base):
        if time.monotonic() > deadline:
            log.warning("loop devices still attached %.0f s after unmounting: %s", timeout, left)
            return
        threading.Event().wait(0.05)


def _loop_devices_under(base: Path) -> list[str]:
    devices = []
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        try:
            if backing.read_text().startswith(f"{base}/"):
                devices.append(backing.parent.parent.name)
        except OSError:  # detached while we looked
            continue
    return devices
