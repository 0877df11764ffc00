"""The load benchmark: many volume creations at once against a running service.

``run_load`` builds the benchmark's throwaway estate (bootvol.bench.cluster), starts the
service on it (API + ``workers`` worker threads, as ``bootvol serve --workers N``), makes
``projects`` projects with a member each, and sends ``volumes`` creations at once through
the Cinder API: half from an image already cached on every FlexVol, half from a remote
qcow2 image that no FlexVol caches yet. It then checks what a loss would break:

* every request was accepted (202) and every volume ends ``available``;
* every volume reads back the image's bytes (SHA-256 of its guest-visible content);
* the uncached image was copied into each FlexVol's cache exactly once.

Times are from sending a request to its volume's final record update.
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bootvol.bench.api_service import ProjectToken, project_tokens
from bootvol.bench.cluster import BenchCluster, bench_cluster
from bootvol.bench.content import file_md5, file_sha256, volume_sha256
from bootvol.bench.results import Target
from bootvol.bench.samples import make_qcow2, make_raw
from bootvol.bench.server import ServedFolder
from bootvol.bench.service_process import ServiceProcess
from bootvol.db.models import VolumeRecord, VolumeStatus, as_utc
from bootvol.images.service import ImageCreate
from bootvol.runtime import Bootvol
from bootvol.units import MiB
from bootvol.volumes.claims import IN_PROGRESS
from bootvol.volumes.service import VolumeCreate

# The target for 200 creations from 10 projects with 2 workers, on a 2-core machine.
MIN_VOLUMES_PER_S = 150.0


@dataclass(frozen=True)
class LoadOptions:
    volumes: int = 200
    projects: int = 10
    workers: int = 2
    image_mib: int = 64
    folder: Path | None = None
    timeout_seconds: float = 600.0


@dataclass
class LoadResult:
    volumes: int
    projects: int
    workers: int
    flexvols: str
    seconds: float  # first request sent → last volume available
    accepted_s: float  # first request sent → the last 202 received
    times: list[float]  # per volume: request sent → final state
    failed_requests: list[str] = field(default_factory=list)
    failed_volumes: list[str] = field(default_factory=list)
    wrong_content: list[str] = field(default_factory=list)
    uncached_fills: dict[str, int] = field(default_factory=dict)  # FlexVol → cache fills

    @property
    def volumes_per_s(self) -> float:
        return self.volumes / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.times)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]

    @property
    def passed(self) -> bool:
        return (
            not self.failed_requests
            and not self.failed_volumes
            and not self.wrong_content
            and all(count == 1 for count in self.uncached_fills.values())
        )

    def targets(self) -> list[Target]:
        """Measured, not enforced (the exit status is for lost or wrong volumes)."""
        return [
            Target(
                f"{self.volumes} creations from {self.projects} projects, {self.workers} "
                f"workers: ≥ {MIN_VOLUMES_PER_S:g} volumes/s",
                self.volumes_per_s >= MIN_VOLUMES_PER_S,
                f"{self.volumes_per_s:.1f} volumes/s: all accepted (202) after "
                f"{self.accepted_s:.2f} s, all available after {self.seconds:.2f} s",
            )
        ]

    def to_dict(self) -> dict[str, object]:
        return {
            "volumes": self.volumes,
            "projects": self.projects,
            "workers": self.workers,
            "flexvols": self.flexvols,
            "seconds": round(self.seconds, 3),
            "accepted_s": round(self.accepted_s, 3),
            "volumes_per_s": round(self.volumes_per_s, 2),
            "p50_seconds": round(self.percentile(50), 3),
            "p99_seconds": round(self.percentile(99), 3),
            "median_seconds": round(statistics.median(self.times), 3) if self.times else None,
            "failed_requests": self.failed_requests,
            "failed_volumes": self.failed_volumes,
            "wrong_content": self.wrong_content,
            "uncached_fills": self.uncached_fills,
            "targets": [t.to_json() for t in self.targets()],
            "passed": self.passed,
        }


def run_load(options: LoadOptions) -> LoadResult:
    image_bytes = options.image_mib * MiB
    with bench_cluster(image_bytes=image_bytes, folder=options.folder) as cluster:
        return _run(cluster, options)


def _run(cluster: BenchCluster, options: LoadOptions) -> LoadResult:
    app = cluster.app
    raw = make_raw(cluster.work_dir / "disk.raw", size_bytes=options.image_mib * MiB, seed=7)
    expected = file_sha256(raw)
    served = cluster.work_dir / "served"
    served.mkdir()
    qcow2 = make_qcow2(raw, served / "disk.qcow2")
    cached = app.images.create_from_file(ImageCreate(name="cached", disk_format="raw"), raw)
    for flexvol in app.topology.volume_flexvols():  # warm every cache (images: direct clone)
        app.volumes.create(VolumeCreate(image=cached.id, size_gib=1, flexvol=flexvol.name))
    warm = {v.id for v in app.volumes.list()}

    log = cluster.work_dir / "serve.log"
    with (
        ServiceProcess(cluster.config, workers=options.workers, log=log) as service,
        ServedFolder(served) as files,  # its own process too: not our interpreter lock
    ):
        uncached = app.images.create(
            ImageCreate(
                name="uncached",
                disk_format="qcow2",
                url=files.url_for("disk.qcow2"),
                size=qcow2.stat().st_size,
                checksum=file_md5(qcow2),
            )
        )
        tokens = project_tokens(service.base_url, app, options.projects)
        requests = [
            (tokens[n % len(tokens)], uncached.id if n % 2 else cached.id)
            for n in range(options.volumes)
        ]
        result = _send_all(service.base_url, app, requests, options)
    result.flexvols = cluster.description
    records = [v for v in app.volumes.list() if v.id not in warm]
    _check(result, records, expected=expected, uncached=uncached.id, length=raw.stat().st_size)
    return result


def _send_all(
    base_url: str, app: Bootvol, requests: list[tuple[ProjectToken, str]], options: LoadOptions
) -> LoadResult:
    result = LoadResult(
        volumes=len(requests),
        projects=options.projects,
        workers=options.workers,
        flexvols="",
        seconds=0.0,
        accepted_s=0.0,
        times=[],
    )
    sent: dict[str, float] = {}

    def send(item: tuple[ProjectToken, str]) -> None:
        member, image_id = item
        started = time.time()
        try:
            response = client.post(
                f"/volume/v3/{member.project_id}/volumes",
                headers={"X-Auth-Token": member.token},
                json={"volume": {"size": 1, "imageRef": image_id}},
            )
        except httpx.HTTPError as exc:
            result.failed_requests.append(f"{exc!r}")
            return
        if response.status_code != 202:
            result.failed_requests.append(f"{response.status_code} {response.text[:200]}")
            return
        sent[response.json()["volume"]["id"]] = started

    limits = httpx.Limits(max_connections=len(requests))
    with (
        httpx.Client(base_url=base_url, timeout=120, limits=limits) as client,
        ThreadPoolExecutor(max_workers=min(len(requests), 100)) as pool,
    ):
        first = time.time()
        list(pool.map(send, requests))
        result.accepted_s = time.time() - first
    deadline = time.monotonic() + options.timeout_seconds
    while True:  # one query a round: the checker must not load the service it measures
        records = [r for r in app.volumes.list() if r.id in sent]
        pending = [r for r in records if r.status in IN_PROGRESS]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    finals = [r for r in records if r not in pending]
    # updated_at is UTC; SQLite returns it naive, which .timestamp() would read as local time.
    result.times = [as_utc(r.updated_at).timestamp() - sent[r.id] for r in finals]
    last = max((as_utc(r.updated_at).timestamp() for r in finals), default=first)
    result.seconds = last - first
    result.failed_volumes += [f"{r.id}: still {r.status}" for r in pending]
    return result


def _check(
    result: LoadResult, records: list[VolumeRecord], *, expected: str, uncached: str, length: int
) -> None:
    for record in records:
        if record.status != VolumeStatus.AVAILABLE:
            result.failed_volumes.append(f"{record.id}: {record.status} {record.message}")
            continue
        assert record.file is not None
        got = volume_sha256(Path(record.file), file_format=record.file_format, length=length)
        if got != expected:
            result.wrong_content.append(record.id)
    fills: dict[str, int] = {}
    for record in records:
        if record.image_id != uncached:
            continue
        fills.setdefault(record.flexvol or "", 0)
        if record.provisioning and record.provisioning.filled_cache:
            fills[record.flexvol or ""] += 1
    result.uncached_fills = fills
