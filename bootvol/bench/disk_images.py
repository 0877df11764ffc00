"""The disk images the benchmark measures: which one (``--image``), built how.

``sample``  synthetic: distinct data in every other MiB, holes between (bench.samples);
``os``      an ext4 filesystem of this machine's files, as OS images are (bench.os_image);
``guest``   the bootable guest of scripts/guest-image, at its own size.

Each is built raw, its zero blocks dug out (so its data is exactly its non-zero blocks),
and converted to qcow2, the format clouds serve images in.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from bootvol.bench.guest import cached_guest_image
from bootvol.bench.os_image import dig_holes, make_os_image
from bootvol.bench.samples import make_qcow2, make_raw
from bootvol.storage.copy import data_bytes, sparse_copy


class ImageKind(enum.StrEnum):
    SAMPLE = "sample"
    OS = "os"
    GUEST = "guest"


@dataclass(frozen=True)
class BenchImage:
    kind: ImageKind
    raw: Path
    qcow2: Path
    size_bytes: int  # virtual
    data_bytes: int  # the image's own allocated data: its non-zero 4 KiB blocks


def guest_image_bytes(work_dir: Path) -> int:
    """The guest's size (built into ``work_dir/guest`` the first time)."""
    return cached_guest_image(work_dir / "guest").path.stat().st_size


def build_bench_image(
    kind: ImageKind, folder: Path, *, size_bytes: int, work_dir: Path
) -> BenchImage:
    """Build ``kind`` in ``folder`` (``size_bytes`` for sample and os; the guest has its own)."""
    raw = folder / f"{kind}.raw"
    if kind is ImageKind.SAMPLE:
        make_raw(raw, size_bytes=size_bytes)
    elif kind is ImageKind.OS:
        make_os_image(raw, size_bytes=size_bytes, staging=folder / "os-files")
    else:
        sparse_copy(cached_guest_image(work_dir / "guest").path, raw)
        dig_holes(raw)
    qcow2 = make_qcow2(raw, folder / f"{kind}.qcow2")
    return BenchImage(
        kind=kind,
        raw=raw,
        qcow2=qcow2,
        size_bytes=raw.stat().st_size,
        data_bytes=data_bytes(raw),
    )
