"""What ``bootvol bench --boot`` measured (dataclasses), its checks, and its JSON.

Every time comes from a server's build record, kept by the compute host that built it
(bootvol.compute.host), from the request (the server record's creation):

    request ──► boot volume made (flowchart) ──► domain defined and started ──► ACTIVE
                                                              guest boots ──► first console line

``volume_s`` is the boot volume's provisioning record (its steps' seconds); ``domain_s`` is
libvirt's define and start; ``to_active_s`` and ``to_guest_line_s`` are from the request.
Under TCG (QEMU's emulator) the guest's boot is most of the wait; the volume is not.
"""

from __future__ import annotations

import enum
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bootvol.bench.results import Target, p95
from bootvol.volumes.records import ProvisioningPath, ProvisioningRecord


class BootCase(enum.StrEnum):
    """The single-server rows: where the image is when the server is asked for."""

    DOWNLOAD = "download"  # only at its HTTP URL: downloaded, converted, cached, cloned
    CACHE_CLONE = "cache-clone"  # cached in the FlexVol that gets the boot volume: cloned

    @property
    def provisioning_path(self) -> ProvisioningPath:
        """What the boot volume's record must say for the server to count in this row."""
        return ProvisioningPath(self.value)


@dataclass(frozen=True)
class BootSample:
    """One server, from its build record and its boot volume's record."""

    server_id: str
    volume_id: str
    flexvol: str  # where the boot volume was made
    volume: ProvisioningRecord
    domain_s: float
    to_active_s: float
    to_guest_line_s: float

    @property
    def volume_s(self) -> float:
        return self.volume.seconds

    @property
    def guest_boot_s(self) -> float:
        """From ACTIVE to the guest's line: the guest's own boot (firmware to init)."""
        return self.to_guest_line_s - self.to_active_s

    def to_json(self) -> dict[str, Any]:
        return {
            "server_id": self.server_id,
            "volume_id": self.volume_id,
            "flexvol": self.flexvol,
            "path": str(self.volume.path),
            "volume_s": self.volume_s,
            "domain_s": self.domain_s,
            "to_active_s": self.to_active_s,
            "to_guest_line_s": self.to_guest_line_s,
            "guest_boot_s": round(self.guest_boot_s, 6),
            "host_bytes": self.volume.host_bytes,
            "filled_cache": self.volume.filled_cache,
        }


@dataclass(frozen=True)
class Figures:
    """One statistic (median, slowest…) of each time over some samples."""

    volume_s: float
    domain_s: float
    to_active_s: float
    to_guest_line_s: float
    guest_boot_s: float
    host_bytes: int

    @classmethod
    def of(cls, samples: list[BootSample], statistic: Callable[[list[float]], float]) -> Figures:
        return cls(
            volume_s=statistic([s.volume_s for s in samples]),
            domain_s=statistic([s.domain_s for s in samples]),
            to_active_s=statistic([s.to_active_s for s in samples]),
            to_guest_line_s=statistic([s.to_guest_line_s for s in samples]),
            guest_boot_s=statistic([s.guest_boot_s for s in samples]),
            host_bytes=round(statistic([float(s.volume.host_bytes) for s in samples])),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "volume_s": round(self.volume_s, 6),
            "domain_s": round(self.domain_s, 6),
            "to_active_s": round(self.to_active_s, 6),
            "to_guest_line_s": round(self.to_guest_line_s, 6),
            "guest_boot_s": round(self.guest_boot_s, 6),
            "host_bytes": self.host_bytes,
        }


# The targets for a server booted from a cached image, on a 2-core machine.
CACHED_ACTIVE_MAX_S = 1.0
PROVISIONING_MAX_SHARE = 0.10


@dataclass(frozen=True)
class CaseResult:
    """Servers booted one at a time (each alone on the host), all by one path."""

    case: BootCase
    samples: list[BootSample]

    @property
    def median(self) -> Figures:
        return Figures.of(self.samples, statistics.median)

    @property
    def provisioning_share(self) -> float:
        """Of request → guest line, bootvol's part: request → ACTIVE (boot volume, domain
        defined and started), medians; the rest is the guest's own boot."""
        median = self.median
        return median.to_active_s / median.to_guest_line_s if median.to_guest_line_s else 0.0

    def summary_json(self) -> dict[str, Any]:
        """The issue's shape: ``{"active_s": {"median": …}, "guest_line_s": {…}, …}``."""
        median = self.median
        return {
            "servers": len(self.samples),
            "active_s": {"median": round(median.to_active_s, 6)},
            "guest_line_s": {"median": round(median.to_guest_line_s, 6)},
            "volume_s": {"median": round(median.volume_s, 6)},
            "provisioning_share": round(self.provisioning_share, 4),
        }


@dataclass(frozen=True)
class FlexVolFetches:
    """What the storm's servers did to one FlexVol's image cache."""

    flexvol: str
    servers: int  # boot volumes made there
    downloads: int  # of them, by the download path: the image fetched over HTTP
    cache_fills: int  # of them, the one that filled the cache entry (download or copy offload)

    @property
    def fetched_once(self) -> bool:
        return self.downloads <= 1 and self.cache_fills <= 1


@dataclass(frozen=True)
class StormResult:
    """N servers asked for at once from one image that no FlexVol caches."""

    samples: list[BootSample]
    requests_s: float  # to send every request (they are accepted, then built by the host)
    all_active_s: float  # first request → the last server ACTIVE
    all_guest_lines_s: float  # first request → the last guest's line

    @property
    def median(self) -> Figures:
        return Figures.of(self.samples, statistics.median)

    @property
    def p95(self) -> Figures:
        return Figures.of(self.samples, p95)

    @property
    def slowest(self) -> Figures:
        return Figures.of(self.samples, max)

    @property
    def paths(self) -> dict[str, int]:
        """How many boot volumes took each path (first seen first, in the order asked for)."""
        return dict(Counter(str(s.volume.path) for s in self.samples))

    @property
    def flexvols(self) -> list[FlexVolFetches]:
        by_flexvol: dict[str, list[BootSample]] = {}
        for sample in self.samples:
            by_flexvol.setdefault(sample.flexvol, []).append(sample)
        return [
            FlexVolFetches(
                flexvol=name,
                servers=len(samples),
                downloads=sum(s.volume.path == ProvisioningPath.DOWNLOAD for s in samples),
                cache_fills=sum(s.volume.filled_cache for s in samples),
            )
            for name, samples in sorted(by_flexvol.items())
        ]

    @property
    def fetched_once_per_flexvol(self) -> bool:
        return all(f.fetched_once for f in self.flexvols)


@dataclass(frozen=True)
class BootBenchResult:
    cluster: str  # the FlexVols, in words
    accel: str  # kvm or tcg
    flavor: str
    guest: str  # the image, in words
    cases: dict[BootCase, CaseResult]
    storm: StormResult
    problems: list[str] = field(default_factory=list)  # what fails the run (exit 12)

    @property
    def passed(self) -> bool:
        return not self.problems

    def targets(self) -> list[Target]:
        """Measured, not enforced: a miss is reported with its figures, as bench's are."""
        cached = self.cases.get(BootCase.CACHE_CLONE)
        if cached is None or not cached.samples:
            return []
        median = cached.median
        return [
            Target(
                f"cached image: request → ACTIVE median ≤ {CACHED_ACTIVE_MAX_S:g} s",
                median.to_active_s <= CACHED_ACTIVE_MAX_S,
                f"{median.to_active_s:.3f} s (boot volume {median.volume_s * 1000:.1f} ms, "
                f"domain defined and started {median.domain_s:.3f} s)",
            ),
            Target(
                f"cached image: request → ACTIVE under {PROVISIONING_MAX_SHARE:.0%} of "
                "request → guest line",
                cached.provisioning_share < PROVISIONING_MAX_SHARE,
                f"{cached.provisioning_share:.1%} ({median.to_active_s:.3f} s of "
                f"{median.to_guest_line_s:.3f} s; the guest's own boot "
                f"{median.guest_boot_s:.3f} s, {self.accel})",
            ),
        ]

    def to_json(self) -> dict[str, Any]:
        storm = self.storm
        return {
            "boot": {
                "cached": self.cases[BootCase.CACHE_CLONE].summary_json(),
                "download": self.cases[BootCase.DOWNLOAD].summary_json(),
            },
            "targets": [t.to_json() for t in self.targets()],
            "cluster": self.cluster,
            "accel": self.accel,
            "flavor": self.flavor,
            "guest": self.guest,
            "cases": {
                str(case): {
                    "servers": len(result.samples),
                    "median": result.median.to_json(),
                    "samples": [s.to_json() for s in result.samples],
                }
                for case, result in self.cases.items()
            },
            "storm": {
                "servers": len(storm.samples),
                "requests_s": round(storm.requests_s, 6),
                "all_active_s": round(storm.all_active_s, 6),
                "all_guest_lines_s": round(storm.all_guest_lines_s, 6),
                "median": storm.median.to_json(),
                "p95": storm.p95.to_json(),
                "slowest": storm.slowest.to_json(),
                "paths": storm.paths,
                "flexvols": {
                    f.flexvol: {
                        "servers": f.servers,
                        "downloads": f.downloads,
                        "cache_fills": f.cache_fills,
                    }
                    for f in storm.flexvols
                },
                "fetched_once_per_flexvol": storm.fetched_once_per_flexvol,
                "samples": [s.to_json() for s in storm.samples],
            },
            "passed": self.passed,
            "problems": self.problems,
        }
