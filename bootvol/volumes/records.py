"""What every volume says about how it was made: its provisioning record."""

from __future__ import annotations

import enum
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any


class ProvisioningPath(enum.StrEnum):
    """The flowchart's outcomes, in the order they are tried."""

    CACHE_CLONE = "cache-clone"  # image already cached in the destination FlexVol
    DIRECT_CLONE = "direct-clone"  # raw image file lives in the destination FlexVol
    COPY_OFFLOAD = "copy-offload"  # storage-side copy from another FlexVol of the cluster
    DOWNLOAD = "download"  # fetched from the image service and converted on this host
    # Outside the image flowchart (volumes made by the API without an image):
    VOLUME_CLONE = "volume-clone"  # from another volume (Cinder's source_volid)
    EMPTY = "empty"  # no source: a sparse file


class CloneKind(enum.StrEnum):
    REFLINK = "reflink"  # FICLONE: shares blocks, constant time
    QCOW2 = "qcow2"  # thin qcow2 overlay backed by the raw cache file
    COPY = "copy"  # sparse copy (in the kernel where it can)


@dataclass
class Step:
    name: str
    seconds: float
    detail: str = ""


@dataclass
class ProvisioningRecord:
    path: ProvisioningPath | None = None
    source: str = ""  # what the volume was cut from, in words
    skipped: dict[str, str] = field(default_factory=dict)  # path → why it was not taken
    steps: list[Step] = field(default_factory=list)
    host_bytes: int = 0  # image bytes through user space on this host (see README)
    clone_method: CloneKind | None = None
    copy_method: str | None = None  # copy offload's kernel mechanism, when one ran

    def skip(self, path: ProvisioningPath | str, reason: str) -> None:
        key = str(path)
        self.skipped[key] = f"{self.skipped[key]}; {reason}" if key in self.skipped else reason

    @contextmanager
    def step(self, name: str, detail: str = "") -> Iterator[Step]:
        """Time a step; it is recorded even when it fails, so an error shows where."""
        started = time.perf_counter()
        step = Step(name=name, seconds=0.0, detail=detail)
        try:
            yield step
        finally:
            step.seconds = round(time.perf_counter() - started, 6)
            self.steps.append(step)

    @property
    def seconds(self) -> float:
        return round(sum(s.seconds for s in self.steps), 6)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path) if self.path else None
        data["clone_method"] = str(self.clone_method) if self.clone_method else None
        data["seconds"] = self.seconds
        return data
