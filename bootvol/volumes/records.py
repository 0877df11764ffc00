"""What every volume says about how it was made: its provisioning record.

One typed record end to end: the workflow fills it in, the database stores it as JSON
(``to_json``/``from_json``, through bootvol.db.models), and the API, the CLI and the
benchmarks read it back by attribute.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


class ProvisioningPath(enum.StrEnum):
    """How a volume was made: the flowchart's outcomes, and the two ways outside it."""

    CACHE_CLONE = "cache-clone"  # image already cached in the destination FlexVol
    DIRECT_CLONE = "direct-clone"  # raw image file lives in the destination FlexVol
    COPY_OFFLOAD = "copy-offload"  # storage-side copy from another FlexVol of the cluster
    DOWNLOAD = "download"  # fetched from the image service and converted on this host
    # Outside the image flowchart (volumes made by the API without an image):
    VOLUME_CLONE = "volume-clone"  # from another volume (Cinder's source_volid)
    EMPTY = "empty"  # no source: a sparse file


class FlowchartStep(enum.StrEnum):
    """The flowchart's decisions in the order they are tried (the keys of ``skipped``).

    Copy offload is tried twice, from two sources, so that each says why it was not taken.
    """

    CACHE_CLONE = "cache-clone"
    OFFLOAD_FROM_CACHE = "copy-offload from a cache"
    DIRECT_CLONE = "direct-clone"
    OFFLOAD_FROM_IMAGE_FILE = "copy-offload from the image file"
    DOWNLOAD = "download"


class CloneKind(enum.StrEnum):
    """How the volume's file is cut from its source (the other keys of ``skipped``)."""

    REFLINK = "reflink"  # FICLONE: shares blocks, constant time
    QCOW2 = "qcow2"  # thin qcow2 overlay backed by the raw cache file
    COPY = "copy"  # sparse copy (in the kernel where it can)


class FileFormat(enum.StrEnum):
    """The format of a volume's file."""

    RAW = "raw"
    QCOW2 = "qcow2"  # an overlay on a cache entry (clone fallback where reflink cannot)


class StepName(enum.StrEnum):
    """The timed steps a provisioning record lists."""

    CACHE_LOOKUP = "cache lookup"
    CACHE_FILL = "cache fill"
    COPY_OFFLOAD = "copy offload"
    DOWNLOAD = "download"
    INSPECT = "inspect"
    CONVERT = "convert"
    CLONE_REFLINK = "clone (reflink)"
    CLONE_QCOW2 = "clone (qcow2)"
    CLONE_COPY = "clone (copy)"
    REBASE_OVERLAY = "rebase overlay"
    CREATE_SPARSE_FILE = "create sparse file"
    EXTEND = "extend"

    @classmethod
    def clone(cls, kind: CloneKind) -> StepName:
        return cls(f"clone ({kind})")


@dataclass
class Step:
    name: StepName
    seconds: float
    detail: str = ""


@dataclass
class ProvisioningRecord:
    path: ProvisioningPath | None = None
    source: str = ""  # what the volume was cut from, in words
    # Each flowchart step or clone kind not taken, and why.
    skipped: dict[FlowchartStep | CloneKind, str] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    host_bytes: int = 0  # image bytes through user space on this host (see README)
    clone_method: CloneKind | None = None
    copy_method: str | None = None  # copy offload's kernel mechanism, when one ran
    # This creation filled the destination FlexVol's cache (False: it found the entry, or
    # another creation filled it meanwhile).
    filled_cache: bool = False

    def skip(self, what: FlowchartStep | CloneKind, reason: str) -> None:
        earlier = self.skipped.get(what)
        self.skipped[what] = f"{earlier}; {reason}" if earlier else reason

    @contextmanager
    def step(self, name: StepName, detail: str = "") -> Iterator[Step]:
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

    def step_seconds(self) -> dict[StepName, float]:
        """Seconds per step name (a name that ran twice counts both)."""
        totals: dict[StepName, float] = {}
        for step in self.steps:
            totals[step.name] = totals.get(step.name, 0.0) + step.seconds
        return totals

    def to_json(self) -> dict[str, Any]:
        """The record as JSON data (as stored, and as ``--json`` prints it)."""
        return {
            "path": str(self.path) if self.path else None,
            "source": self.source,
            "skipped": {str(key): reason for key, reason in self.skipped.items()},
            "steps": [
                {"name": str(s.name), "seconds": s.seconds, "detail": s.detail} for s in self.steps
            ],
            "host_bytes": self.host_bytes,
            "clone_method": str(self.clone_method) if self.clone_method else None,
            "copy_method": self.copy_method,
            "filled_cache": self.filled_cache,
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProvisioningRecord:
        return cls(
            path=ProvisioningPath(data["path"]) if data.get("path") else None,
            source=data.get("source", ""),
            skipped={_skip_key(key): reason for key, reason in data.get("skipped", {}).items()},
            steps=[
                Step(name=StepName(s["name"]), seconds=s["seconds"], detail=s.get("detail", ""))
                for s in data.get("steps", [])
            ],
            host_bytes=data.get("host_bytes", 0),
            clone_method=CloneKind(data["clone_method"]) if data.get("clone_method") else None,
            copy_method=data.get("copy_method"),
            filled_cache=data.get("filled_cache", False),
        )


def _skip_key(key: str) -> FlowchartStep | CloneKind:
    if key == "copy-offload":  # records from before the two offload steps were named apart
        return FlowchartStep.OFFLOAD_FROM_IMAGE_FILE
    try:
        return FlowchartStep(key)
    except ValueError:
        return CloneKind(key)
