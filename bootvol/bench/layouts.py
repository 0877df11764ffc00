"""The cache entry layouts side by side: one image converted with each ``min_hole``.

For each choice the qcow2 image is converted into a FlexVol as a cache entry would be
(bootvol.storage.qemu_img.convert_to_raw with that layout), then measured: the conversion's
seconds, the entry's extents (FIEMAP) and allocated bytes, and the median of ``clones``
reflink clones of it (the FICLONE alone: the part of a cache-clone the layout decides).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bootvol.storage import qemu_img
from bootvol.storage.copy import reflink
from bootvol.storage.layout import BLOCK_BYTES, DEFAULT_MIN_HOLE, EntryLayout, extent_count
from bootvol.units import KiB, MiB

CHOICES = (BLOCK_BYTES, 64 * KiB, DEFAULT_MIN_HOLE, 4 * MiB, 16 * MiB)


@dataclass(frozen=True)
class LayoutTrial:
    min_hole_bytes: int
    convert_s: float
    extents: int
    entry_bytes: int  # allocated
    clone_ms: float  # median FICLONE

    @property
    def label(self) -> str:
        return size_label(self.min_hole_bytes)

    def to_json(self) -> dict[str, float | int | str]:
        return {
            "min_hole": self.label,
            "min_hole_bytes": self.min_hole_bytes,
            "convert_s": round(self.convert_s, 4),
            "extents": self.extents,
            "entry_bytes": self.entry_bytes,
            "clone_ms": round(self.clone_ms, 4),
        }


def size_label(size: int) -> str:
    return f"{size // MiB}M" if size % MiB == 0 else f"{size // KiB}k"


def try_layouts(qcow2: Path, folder: Path, *, virtual_size: int, clones: int) -> list[LayoutTrial]:
    """Every choice of CHOICES on ``qcow2``, written in ``folder`` (on a FlexVol) and removed."""
    trials = []
    for min_hole in CHOICES:
        entry = folder / f"layout-{size_label(min_hole)}"
        started = time.perf_counter()
        qemu_img.convert_to_raw(
            qcow2,
            entry,
            source_format="qcow2",
            virtual_size=virtual_size,
            layout=EntryLayout(min_hole_bytes=min_hole),
        )
        fd = os.open(entry, os.O_RDONLY)
        try:
            os.fsync(fd)  # a cache entry is durable before it is published
            convert_s = time.perf_counter() - started
            extents = extent_count(fd)
            entry_bytes = os.fstat(fd).st_blocks * 512
        finally:
            os.close(fd)
        trials.append(
            LayoutTrial(
                min_hole_bytes=min_hole,
                convert_s=convert_s,
                extents=extents,
                entry_bytes=entry_bytes,
                clone_ms=_median_clone_ms(entry, clones),
            )
        )
        entry.unlink()
    return trials


def _median_clone_ms(entry: Path, clones: int) -> float:
    seconds = []
    for number in range(clones):
        clone = entry.with_name(f"{entry.name}.clone-{number}")
        started = time.perf_counter()
        reflink(entry, clone)
        seconds.append(time.perf_counter() - started)
    for number in range(clones):
        entry.with_name(f"{entry.name}.clone-{number}").unlink()
    return statistics.median(seconds) * 1000
