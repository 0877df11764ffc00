"""What the benchmark measured, its statistics, the performance targets, and its JSON.

Times are wall-clock seconds from the request to a usable volume (``VolumeService.create``
returning it ``available``), so they include everything a caller waits for: database
records, placement, locks, the provisioning path itself and the cache cleaner's check.
``host_bytes`` is the engine's own count (see bootvol.storage.qemu_img): image bytes read
or written through the buffers of bootvol or its child qemu-img; per path, the largest of
any one volume.
"""

from __future__ import annotations

import enum
import math
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bootvol.bench.disk_images import ImageKind
from bootvol.bench.layouts import LayoutTrial
from bootvol.bench.reference import ReferenceRound
from bootvol.units import MiB
from bootvol.volumes.records import ProvisioningPath, StepName

if TYPE_CHECKING:  # not at run time: api_service imports median and p95 from here
    from bootvol.bench.api_service import ApiLatency

# The performance targets, on a 2-core machine.
CACHE_CLONE_MAX_SECONDS = 0.005
CACHE_CLONE_MIN_SPEEDUP = 100.0
SIZE_INDEPENDENCE_MAX_RATIO = 1.5
OFFLOAD_MAX_HOST_BYTES = MiB
SPACE_MAX_RATIO = 1.1
ENTRY_MAX_VS_IMAGE_DATA = 1.5
DOWNLOAD_MAX_VS_REFERENCE = 1.5
API_MAX_MS = 100.0


class BenchPath(enum.StrEnum):
    """The rows of the benchmark: the flowchart's paths, copy offload split by format."""

    DOWNLOAD = "download"
    COPY_OFFLOAD = "copy-offload"  # raw image: the copy is the whole job
    COPY_OFFLOAD_QCOW2 = "copy-offload-qcow2"  # qemu-img still converts on the host
    DIRECT_CLONE = "direct-clone"
    CACHE_CLONE = "cache-clone"

    @property
    def provisioning_path(self) -> ProvisioningPath:
        """What the volume's provisioning record must say for the sample to count."""
        if self is BenchPath.COPY_OFFLOAD_QCOW2:
            return ProvisioningPath.COPY_OFFLOAD
        return ProvisioningPath(self.value)


# The paths whose image bytes must stay out of user space.
ZERO_COPY_PATHS = (BenchPath.COPY_OFFLOAD, BenchPath.DIRECT_CLONE, BenchPath.CACHE_CLONE)


@dataclass(frozen=True)
class Sample:
    seconds: float
    host_bytes: int
    how: str  # the copy and clone mechanisms the engine reported
    steps: dict[StepName, float] = field(default_factory=dict)  # the provisioning record's


def median(values: list[float]) -> float:
    return statistics.median(values)


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile: with 20 samples the 19th, with 3 the largest."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass(frozen=True)
class PathResult:
    path: BenchPath
    samples: list[Sample]

    @property
    def seconds(self) -> list[float]:
        return [s.seconds for s in self.samples]

    @property
    def median_s(self) -> float:
        return median(self.seconds)

    @property
    def p95_s(self) -> float:
        return p95(self.seconds)

    @property
    def host_bytes(self) -> int:
        return max(s.host_bytes for s in self.samples)

    @property
    def how(self) -> str:
        return ", ".join(sorted({s.how for s in self.samples}))

    @property
    def steps_median_s(self) -> dict[StepName, float]:
        """Each provisioning step's median seconds: where the time goes."""
        names = dict.fromkeys(name for s in self.samples for name in s.steps)
        return {
            name: median([s.steps[name] for s in self.samples if name in s.steps]) for name in names
        }


@dataclass(frozen=True)
class Reference:
    """The naive path by hand (see bench.reference), one round per download measured."""

    rounds: list[ReferenceRound]

    @property
    def totals(self) -> list[float]:
        """``curl -o`` + ``qemu-img convert``: the issue's reference."""
        return [r.naive_s for r in self.rounds]

    @property
    def median_s(self) -> float:
        return median(self.totals)

    @property
    def p95_s(self) -> float:
        return p95(self.totals)

    @property
    def same_guarantees(self) -> list[float]:
        """``curl -o`` + ``sha512sum`` + ``qemu-img convert -t none``: checked and durable."""
        return [r.same_guarantees_s for r in self.rounds]


@dataclass(frozen=True)
class SpaceResult:
    """Physical space (statvfs, before the cache fill → after N cache-clone volumes)."""

    volumes: int
    image_bytes: int  # the image's virtual size
    image_data_bytes: int  # the image's own allocated data (its non-zero blocks)
    image_physical_bytes: int  # blocks its cache entry holds: one image's real footprint
    physical_bytes_used: int  # by the cache entry and all N volumes together
    entry_extents: int  # data extents of the cache entry: what a reflink clone walks

    @property
    def naive_bytes(self) -> int:
        """What N full copies would take: N x image size."""
        return self.volumes * self.image_bytes

    @property
    def ratio(self) -> float:
        """Space of N volumes over the space of one image (the target: under 1.1)."""
        return self.physical_bytes_used / max(1, self.image_physical_bytes)

    @property
    def entry_vs_data(self) -> float:
        """The cache entry's space over the image's own data (the target: at most 1.5)."""
        return self.image_physical_bytes / max(1, self.image_data_bytes)


@dataclass(frozen=True)
class SizeResult:
    size_gib: float
    image_bytes: int
    qcow2_bytes: int
    paths: dict[BenchPath, PathResult]
    reference: Reference
    space: SpaceResult
    layouts: list[LayoutTrial] = field(default_factory=list)  # none where clones cannot run

    @property
    def key(self) -> str:
        return size_key(self.size_gib)

    def speedup(self, seconds: float) -> float:
        """How many times faster than the download path's median ``seconds`` is."""
        return self.paths[BenchPath.DOWNLOAD].median_s / seconds if seconds > 0 else math.inf


@dataclass(frozen=True)
class Target:
    name: str
    passed: bool | None  # None: this run cannot tell (e.g. only one image size)
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@dataclass(frozen=True)
class BenchResult:
    cluster: str
    image: ImageKind
    volumes: int
    slow_volumes: int
    sizes: list[SizeResult] = field(default_factory=list)
    api: ApiLatency | None = None  # --api

    @property
    def largest(self) -> SizeResult:
        return max(self.sizes, key=lambda s: s.size_gib)

    @property
    def smallest(self) -> SizeResult:
        return min(self.sizes, key=lambda s: s.size_gib)

    def targets(self) -> list[Target]:
        return [
            self._cache_clone_fast(),
            self._cache_clone_speedup(),
            self._cache_clone_size_independent(),
            self._zero_copy(),
            self._space(),
            self._entry_space(),
            self._download_near_reference(),
            self._download_beats_same_guarantees(),
            *([self._api_latency(self.api)] if self.api else []),
        ]

    def _cache_clone_fast(self) -> Target:
        medians = {s.key: s.paths[BenchPath.CACHE_CLONE].median_s for s in self.sizes}
        worst = max(medians.values())
        return Target(
            f"cache-clone median < {CACHE_CLONE_MAX_SECONDS * 1000:.0f} ms",
            worst < CACHE_CLONE_MAX_SECONDS,
            ", ".join(f"{k} GiB: {v * 1000:.1f} ms" for k, v in medians.items()),
        )

    def _cache_clone_speedup(self) -> Target:
        largest = self.largest
        speedup = largest.speedup(largest.paths[BenchPath.CACHE_CLONE].median_s)
        return Target(
            f"cache-clone ≥ {CACHE_CLONE_MIN_SPEEDUP:.0f}x faster than download "
            f"at {largest.key} GiB",
            speedup >= CACHE_CLONE_MIN_SPEEDUP,
            f"{speedup:,.0f}x",
        )

    def _cache_clone_size_independent(self) -> Target:
        name = (
            f"cache-clone time independent of image size "
            f"(largest within {SIZE_INDEPENDENCE_MAX_RATIO}x of smallest)"
        )
        if len(self.sizes) < 2:
            return Target(name, None, "needs two image sizes")
        small, large = self.smallest, self.largest
        ratio = (
            large.paths[BenchPath.CACHE_CLONE].median_s
            / small.paths[BenchPath.CACHE_CLONE].median_s
        )
        return Target(
            name,
            ratio <= SIZE_INDEPENDENCE_MAX_RATIO,
            f"{large.key} GiB / {small.key} GiB = {ratio:.2f}x; the cache entries hold "
            f"{large.space.entry_extents} and {small.space.entry_extents} data extents",
        )

    def _zero_copy(self) -> Target:
        worst = {
            path: max(s.paths[path].host_bytes for s in self.sizes) for path in ZERO_COPY_PATHS
        }
        return Target(
            "copy-offload (raw), direct-clone, cache-clone: < 1 MiB of image bytes "
            "through user space",
            all(v < OFFLOAD_MAX_HOST_BYTES for v in worst.values()),
            ", ".join(f"{p}: {v} B" for p, v in worst.items()),
        )

    def _space(self) -> Target:
        space = self.largest.space
        return Target(
            f"{space.volumes} volumes of one {self.largest.key} GiB image use < "
            f"{SPACE_MAX_RATIO}x the space of one image",
            space.ratio < SPACE_MAX_RATIO,
            f"{space.ratio:.3f}x ({space.physical_bytes_used / MiB:,.1f} MiB used, one image "
            f"{space.image_physical_bytes / MiB:,.1f} MiB; {space.volumes} copies would take "
            f"{space.naive_bytes / MiB:,.0f} MiB)",
        )

    def _entry_space(self) -> Target:
        details = []
        for size in self.sizes:
            space = size.space
            details.append(
                f"{size.key} GiB: {space.entry_vs_data:.2f}x "
                f"({space.image_physical_bytes / MiB:,.0f} MiB for "
                f"{space.image_data_bytes / MiB:,.0f} MiB of data, {space.entry_extents} extents)"
            )
        return Target(
            f"a cache entry's space ≤ {ENTRY_MAX_VS_IMAGE_DATA:g}x the image's own data",
            all(s.space.entry_vs_data <= ENTRY_MAX_VS_IMAGE_DATA for s in self.sizes),
            ", ".join(details),
        )

    def _download_near_reference(self) -> Target:
        ratios = {
            s.key: s.paths[BenchPath.DOWNLOAD].median_s / s.reference.median_s for s in self.sizes
        }
        return Target(
            f"download within {DOWNLOAD_MAX_VS_REFERENCE:g}x of curl -o + qemu-img convert",
            all(r <= DOWNLOAD_MAX_VS_REFERENCE for r in ratios.values()),
            ", ".join(f"{k} GiB: {r:.2f}x" for k, r in ratios.items()),
        )

    def _download_beats_same_guarantees(self) -> Target:
        ratios = {
            s.key: s.paths[BenchPath.DOWNLOAD].median_s / median(s.reference.same_guarantees)
            for s in self.sizes
        }
        return Target(
            "download no slower than by hand with the same guarantees (checked, durable)",
            all(r <= 1.0 for r in ratios.values()),
            ", ".join(f"{k} GiB: {r:.2f}x" for k, r in ratios.items()),
        )

    def _api_latency(self, api: ApiLatency) -> Target:
        return Target(
            f"over the API, POST → available (polled every {api.poll_ms:g} ms) median ≤ "
            f"{API_MAX_MS:g} ms",
            api.median_ms <= API_MAX_MS,
            f"median {api.median_ms:.1f} ms, p95 {api.p95_ms:.1f} ms over {len(api.samples_ms)} "
            f"volumes ({', '.join(f'{p}: {n}' for p, n in api.paths.items())})",
        )

    def to_json(self) -> dict[str, Any]:
        extra = {"api": self.api.to_json()} if self.api else {}
        return {
            **extra,
            "image": str(self.image),
            "sizes_gib": [_number(s.size_gib) for s in self.sizes],
            "volumes": self.volumes,
            "slow_volumes": self.slow_volumes,
            "cluster": self.cluster,
            "paths": {
                str(path): {s.key: _path_json(s, s.paths[path]) for s in self.sizes}
                for path in BenchPath
            },
            "reference": {s.key: _reference_json(s) for s in self.sizes},
            "space": _space_json(self.largest),
            "space_by_size": {s.key: _space_json(s) for s in self.sizes},
            "images": {
                s.key: {"image_bytes": s.image_bytes, "qcow2_bytes": s.qcow2_bytes}
                for s in self.sizes
            },
            "layouts_by_size": {s.key: [t.to_json() for t in s.layouts] for s in self.sizes},
            "targets": [t.to_json() for t in self.targets()],
        }


def size_key(size_gib: float) -> str:
    return f"{size_gib:g}"


def _number(value: float) -> float | int:
    return int(value) if value.is_integer() else value


def _path_json(size: SizeResult, result: PathResult) -> dict[str, Any]:
    return {
        "median_s": round(result.median_s, 6),
        "p95_s": round(result.p95_s, 6),
        "host_bytes": result.host_bytes,
        "volumes": len(result.samples),
        "speedup_vs_download": round(size.speedup(result.median_s), 2),
        "how": result.how,
        "seconds": [round(s, 6) for s in result.seconds],
        "steps_median_s": {str(k): round(v, 6) for k, v in result.steps_median_s.items()},
    }


def _reference_json(size: SizeResult) -> dict[str, Any]:
    reference = size.reference
    rounds = reference.rounds
    return {
        "median_s": round(reference.median_s, 6),
        "p95_s": round(reference.p95_s, 6),
        "curl_s": [round(r.curl_s, 6) for r in rounds],
        "convert_s": [round(r.convert_s, 6) for r in rounds],
        "download_vs_reference": round(
            size.paths[BenchPath.DOWNLOAD].median_s / reference.median_s, 3
        ),
        "same_guarantees": {
            "what": "curl -o, sha512sum, qemu-img convert -t none (verified and durable)",
            "median_s": round(median(reference.same_guarantees), 6),
            "p95_s": round(p95(reference.same_guarantees), 6),
            "checksum_s": [round(r.checksum_s, 6) for r in rounds],
            "durable_convert_s": [round(r.durable_convert_s, 6) for r in rounds],
            "download_vs_same_guarantees": round(
                size.paths[BenchPath.DOWNLOAD].median_s / median(reference.same_guarantees), 3
            ),
        },
    }


def _space_json(size: SizeResult) -> dict[str, Any]:
    space = size.space
    return {
        "size_gib": _number(size.size_gib),
        "volumes": space.volumes,
        "image_bytes": space.image_bytes,
        "image_data_bytes": space.image_data_bytes,
        "entry_bytes": space.image_physical_bytes,
        "entry_vs_image_data": round(space.entry_vs_data, 4),
        "image_physical_bytes": space.image_physical_bytes,
        "physical_bytes_used": space.physical_bytes_used,
        "naive_bytes": space.naive_bytes,
        "ratio": round(space.ratio, 4),
        "entry_extents": space.entry_extents,
    }
