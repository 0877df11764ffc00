"""The benchmark's throwaway estate: one cluster, one SVM with vStorage, three FlexVols.

    images   the image store; also holds volumes (direct-clone lands here)
    vol_a    download path and the curl + qemu-img reference
    vol_b    copy offload, then cache-clone

As root with loop devices, each FlexVol is its own XFS (reflink=1) loopback filesystem on a
sparse backing file, so copy offload crosses filesystems as it would cross FlexVols. The loop
devices do direct I/O, so that, as on a real disk or NFS export, durable writes (the fsync
before a cache entry is published) cost the disk's time, not a second page cache's. Given
``folder`` (or without root), they are plain folders under it. Everything, the config and
the database included, lives in one temporary folder removed afterwards.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bootvol.bench.loopback import FsKind, loopback_unavailable, mounted_filesystem
from bootvol.errors import InvalidRequest
from bootvol.runtime import Bootvol, open_bootvol
from bootvol.units import MiB

IMAGE_STORE = "images"
DOWNLOAD_FLEXVOL = "vol_a"
OFFLOAD_FLEXVOL = "vol_b"
FLEXVOLS = (IMAGE_STORE, DOWNLOAD_FLEXVOL, OFFLOAD_FLEXVOL)


@dataclass(frozen=True)
class BenchCluster:
    app: Bootvol
    description: str  # what the FlexVols are, in words, for the report
    work_dir: Path  # sample images and served files, outside every FlexVol
    config: Path  # its bootvol.toml: `bootvol --config` serves the same estate


def flexvol_size_mib(image_bytes: int) -> int:
    """Room for the largest image several times over: stored raw and qcow2, staged
    downloads, cache entries, placement's free-space check and the cleaner's thresholds.
    The backing file is sparse, so only what is written costs disk space."""
    return (4 * image_bytes + (1 << 30)) // MiB


@contextmanager
def bench_cluster(*, image_bytes: int, folder: Path | None) -> Iterator[BenchCluster]:
    """Build the estate for images up to ``image_bytes``; tear all of it down afterwards."""
    if folder is None:
        reason = loopback_unavailable()
        if reason is not None:
            raise InvalidRequest(
                f"the benchmark builds XFS loopback FlexVols, which {reason}; "
                "give --dir PATH to run on folders of an existing filesystem instead"
            )
    else:
        folder.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="bootvol-bench-", dir=folder))
    try:
        with ExitStack() as stack:
            paths = {name: base / "flexvols" / name for name in FLEXVOLS}
            if folder is None:
                size_mib = flexvol_size_mib(image_bytes)
                for path in paths.values():
                    stack.enter_context(
                        mounted_filesystem(
                            FsKind.XFS, path, size_mib=size_mib, backing_dir=base, direct_io=True
                        )
                    )
                description = (
                    f"3 XFS reflink FlexVols on direct-I/O loop devices, "
                    f"{size_mib / 1024:.0f} GiB each"
                )
            else:
                for path in paths.values():
                    path.mkdir(parents=True)
                description = f"3 folder FlexVols under {base}"
            config = _write_config(base / "data", paths)
            app = open_bootvol(config=config)
            for flexvol in app.topology:
                flexvol.capabilities  # noqa: B018 - probe once now, not inside a measurement
            work_dir = base / "work"
            work_dir.mkdir()
            yield BenchCluster(app=app, description=description, work_dir=work_dir, config=config)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _write_config(data_dir: Path, flexvols: dict[str, Path]) -> Path:
    data_dir.mkdir(parents=True)
    blocks = "".join(
        f'\n[[flexvol]]\nname = "{name}"\nsvm = "svm1"\npath = "{path}"\n'
        for name, path in flexvols.items()
    )
    config = data_dir / "bootvol.toml"
    config.write_text(
        f"""\
# Written by `bootvol bench` for one run; removed with its folder.
data_dir = "{data_dir}"
image_store = "{IMAGE_STORE}"
copy_offload = true
clone_method = "auto"

[[cluster]]
name = "bench"
version = "9.14.1"

[[svm]]
name = "svm1"
cluster = "bench"
vstorage = true
{blocks}"""
    )
    return config
