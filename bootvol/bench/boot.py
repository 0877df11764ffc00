"""``bootvol bench --boot``: servers booted from bootvol volumes, timed from the request.

On the benchmark's throwaway cluster (bootvol.bench.cluster), with a compute host in this
process on the real libvirt and QEMU, and the guest image (bootvol.bench.guest) served as
qcow2 by the stand-in image service (bootvol.bench.server):

1. ``download`` then ``cache-clone``, once per round: a new image record for the served
   qcow2 (so no FlexVol caches it), one server from it (its boot volume downloads the
   image into the cache of the FlexVol it lands on), then a second server from the same
   image (its boot volume is cloned from that entry). Each server boots alone: it is
   deleted, once its guest's line is in, before the next is asked for.
2. the storm: one more new image record, N servers asked for at once, waited for (every
   guest's line), then deleted. Each boot volume's record says whether it downloaded the
   image and whether it filled its FlexVol's cache: both must happen at most once per
   FlexVol, however many servers ask at once.

Every server must print its own boot volume's line (the volume id as its disk's serial,
the payload's checksum). A server that ends ``ERROR``, prints another line or none, or a
single-server row whose boot volume took another path fails the run at once
(BenchmarkFailed); a storm FlexVol that fetched or filled the image twice is a problem
in the result (the CLI prints the table, then fails).

Cleanup, on success, failure, Ctrl-C or SIGTERM: the compute host stops, every domain of
the run is removed (QEMU stopped, console log deleted), then the cluster goes with its
volumes, images and database. Signals that arrive during the cleanup wait for its end: a
second Ctrl-C must not leave a QEMU running on a FlexVol being unmounted.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from bootvol.bench.boot_results import (
    BootBenchResult,
    BootCase,
    BootSample,
    CaseResult,
    StormResult,
)
from bootvol.bench.cluster import BenchCluster, bench_cluster
from bootvol.bench.content import file_md5
from bootvol.bench.guest import (
    GuestImage,
    build_guest_image,
    libvirt_unavailable,
    load_guest_image,
    reachable_by_qemu,
)
from bootvol.bench.host import LocalComputeHost, ServerFailed
from bootvol.bench.samples import make_qcow2
from bootvol.bench.server import ServedFolder
from bootvol.compute.records import BuildRecord
from bootvol.config import Acceleration
from bootvol.db.models import ServerRecord, as_utc
from bootvol.errors import BenchmarkFailed, BootvolError, InvalidRequest
from bootvol.images.service import ImageCreate
from bootvol.runtime import Bootvol
from bootvol.units import MiB
from bootvol.volumes.records import ProvisioningRecord

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

LIBVIRT_URI = "qemu:///system"
FLAVOR = "m1.tiny"  # Nova's smallest default (1 vCPU, 512 MiB, 1 GiB): the guest needs less
GUEST_IMAGE_BYTES = 64 * MiB  # what scripts/guest-image makes: the cluster is sized for it


@dataclass(frozen=True)
class BootOptions:
    servers: int = 10  # in the storm
    rounds: int = 3  # download and cache-clone servers, one of each per round
    accel: Acceleration = Acceleration.AUTO
    guest_image: Path | None = None  # built by scripts/guest-image when None
    folder: Path | None = None  # folders under it instead of loopback XFS FlexVols
    timeout_seconds: float = 600.0  # a bound for each wait (a hang), not a target


def run_boot_benchmark(
    options: BootOptions, *, progress: Progress | None = None
) -> BootBenchResult:
    """Build the cluster and a compute host, boot every server, remove everything."""
    report = progress or (lambda _message: None)
    reason = libvirt_unavailable(LIBVIRT_URI)
    if reason is not None:
        raise InvalidRequest(f"bootvol bench --boot boots servers on libvirt and QEMU: {reason}")
    with ExitStack() as stack:
        signals = stack.enter_context(_held_signals())
        report("building the throwaway cluster and the guest image (not measured)")
        cluster = stack.enter_context(
            bench_cluster(image_bytes=GUEST_IMAGE_BYTES, folder=options.folder)
        )
        guest = _guest_image(options, cluster)
        served = cluster.work_dir / "served"
        served.mkdir()
        qcow2 = make_qcow2(guest.path, served / "guest.qcow2")
        for flexvol in cluster.app.topology:
            reachable_by_qemu(flexvol.path)
        files = stack.enter_context(ServedFolder(served))
        report(f"starting a compute host ({options.accel}; not measured)")
        host = stack.enter_context(_compute_host(cluster.app, options))
        run = _BootRun(cluster, host=host, options=options, guest=guest, report=report)
        # Unwinding starts here: from now on a signal waits until everything is removed.
        stack.callback(signals.hold)
        description = (
            f"scripts/guest-image: {guest.path.stat().st_size // MiB} MiB raw, served as "
            f"{qcow2.stat().st_size / MiB:.1f} MiB qcow2 over HTTP"
        )
        try:
            return run.measure(url=files.url_for(qcow2.name), qcow2=qcow2, description=description)
        except ServerFailed as exc:
            raise BenchmarkFailed(exc.message) from exc


def _compute_host(app: Bootvol, options: BootOptions) -> LocalComputeHost:
    """The run's host, with room for every server it asks for at once: the scheduler would
    refuse the storm's last ones on a 2-core machine's 8 vCPUs, and what is measured is
    the boot, not the scheduler's arithmetic (the guests idle once their line is out)."""
    flavor = app.flavors.get(FLAVOR)
    ratios = app.settings.compute
    return LocalComputeHost(
        app,
        name=f"bench-{uuid.uuid4().hex[:8]}",
        accel=options.accel,
        uri=LIBVIRT_URI,
        vcpus=max(
            os.cpu_count() or 1,
            math.ceil(options.servers * flavor.vcpus / ratios.cpu_allocation_ratio),
        ),
        ram_mib=max(
            _machine_ram_mib(),
            math.ceil(options.servers * flavor.ram_mib / ratios.ram_allocation_ratio),
        ),
    )


def _guest_image(options: BootOptions, cluster: BenchCluster) -> GuestImage:
    if options.guest_image is not None:
        return load_guest_image(options.guest_image)
    try:
        return build_guest_image(cluster.work_dir / "guest" / "guest.raw")
    except BootvolError as exc:
        raise BenchmarkFailed(exc.message) from exc


class _BootRun:
    """The measurements, on one cluster, with one compute host in this process."""

    def __init__(
        self,
        cluster: BenchCluster,
        *,
        host: LocalComputeHost,
        options: BootOptions,
        guest: GuestImage,
        report: Progress,
    ) -> None:
        self.app: Bootvol = cluster.app
        self.cluster = cluster
        self.host = host
        self.options = options
        self.guest = guest
        self.report = report

    # the measurements ----------------------------------------------------------------------
    def measure(self, *, url: str, qcow2: Path, description: str) -> BootBenchResult:
        samples: dict[BootCase, list[BootSample]] = {case: [] for case in BootCase}
        for number in range(1, self.options.rounds + 1):
            image = self._remote_image(f"guest-round-{number}", url=url, qcow2=qcow2)
            for case in BootCase:  # download first: it fills the cache the second clones
                self.report(f"round {number}/{self.options.rounds}: one server, {case}")
                samples[case].append(self._one_server(case, image))
        storm = self._storm(self._remote_image("guest-storm", url=url, qcow2=qcow2))
        problems = [
            f"the storm's boot volumes on {f.flexvol} downloaded the image {f.downloads} times "
            f"and filled its cache {f.cache_fills} times (at most once each)"
            for f in storm.flexvols
            if not f.fetched_once
        ]
        return BootBenchResult(
            cluster=self.cluster.description,
            accel=str(self.host.hypervisor.accel),
            flavor=FLAVOR,
            guest=description,
            cases={case: CaseResult(case, found) for case, found in samples.items()},
            storm=storm,
            problems=problems,
        )

    def _remote_image(self, name: str, *, url: str, qcow2: Path) -> str:
        """A new image record for the served qcow2: no FlexVol caches it yet."""
        return self.app.images.create(
            ImageCreate(
                name=name,
                disk_format="qcow2",
                url=url,
                size=qcow2.stat().st_size,
                checksum=file_md5(qcow2),
            )
        ).id

    def _one_server(self, case: BootCase, image_id: str) -> BootSample:
        os.sync()  # the last server's writeback is not this one's to pay
        server_id = self._ask(image_id, name=f"bench-{case}")
        (record,) = self._wait_for_lines([server_id])
        sample = self._sample(record)
        self._delete([server_id])
        if sample.volume.path != case.provisioning_path:
            raise BenchmarkFailed(
                f"measuring {case}, but the boot volume took {sample.volume.path} "
                f"(skipped: {sample.volume.to_json()['skipped']})"
            )
        return sample

    def _storm(self, image_id: str) -> StormResult:
        count = self.options.servers
        self.report(f"boot storm: {count} servers at once from an image no FlexVol caches")
        os.sync()
        started = time.perf_counter()
        ids = [self._ask(image_id, name=f"bench-storm-{n}") for n in range(count)]
        requests_s = time.perf_counter() - started
        records = self._wait_for_lines(ids)
        samples = [self._sample(record) for record in records]
        self._delete(ids)
        first = min(as_utc(r.created_at) for r in records)

        def last(seconds: Callable[[BootSample], float]) -> float:
            return max(
                _offset(as_utc(r.created_at), first) + seconds(s)
                for r, s in zip(records, samples, strict=True)
            )

        return StormResult(
            samples=samples,
            requests_s=requests_s,
            all_active_s=last(lambda s: s.to_active_s),
            all_guest_lines_s=last(lambda s: s.to_guest_line_s),
        )

    # one server ----------------------------------------------------------------------------
    def _ask(self, image_id: str, *, name: str) -> str:
        return self.host.ask(image_id, name=name, flavor=FLAVOR)

    def _wait_for_lines(self, server_ids: list[str]) -> list[ServerRecord]:
        return self.host.wait_for_lines(server_ids, timeout=self.options.timeout_seconds)

    def _delete(self, server_ids: list[str]) -> None:
        """So that the next measurement has the machine to itself."""
        self.host.delete(server_ids, timeout=self.options.timeout_seconds)

    def _sample(self, record: ServerRecord) -> BootSample:
        build = record.build or BuildRecord()
        # The host fills these in before it adds the guest's line (wait_for_lines waited for it).
        if (
            build.domain_start_s is None
            or build.request_to_active_s is None
            or build.guest_line_s is None
        ):
            raise BenchmarkFailed(f"server {record.name}'s build record is incomplete: {build}")
        volume = self.app.volumes.get(record.root_volume_id or "")
        expected = self.guest.expected_line(volume.id)
        line = self.host.first_line(record.id)
        if line != expected:
            raise BenchmarkFailed(
                f"server {record.name} booted, but its guest printed {line!r} instead of "
                f"{expected!r}: not its own boot volume's content"
            )
        return BootSample(
            server_id=record.id,
            volume_id=volume.id,
            flexvol=volume.flexvol or "",
            volume=volume.provisioning or ProvisioningRecord(),
            domain_s=build.domain_start_s,
            to_active_s=build.request_to_active_s,
            to_guest_line_s=build.guest_line_s,
        )


@contextmanager
def _held_signals() -> Iterator[_SignalHold]:
    """Ctrl-C and SIGTERM stop the run (KeyboardInterrupt: the cleanup runs). The cleanup
    itself is not interrupted: once a first signal has arrived, or once ``hold`` is called
    (the run is over and unwinding), later ones wait until this context exits."""
    hold = _SignalHold()
    if threading.current_thread() is not threading.main_thread():
        yield hold  # signal handlers belong to the main thread; nothing to install
        return
    previous = {
        number: signal.getsignal(number)
        for number in (signal.SIGINT, signal.SIGTERM)
        # Ignored by whoever started us (a shell's background job ignores Ctrl-C): leave it.
        if signal.getsignal(number) is not signal.SIG_IGN
    }
    for number in previous:
        signal.signal(number, hold.handle)
    try:
        yield hold
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if hold.arrived is not None:
        raise KeyboardInterrupt  # the run had ended well, but was asked to stop meanwhile


class _SignalHold:
    def __init__(self) -> None:
        self.held = False
        self.arrived: int | None = None

    def hold(self) -> None:
        self.held = True

    def handle(self, number: int, _frame: FrameType | None) -> None:
        if not self.held:
            self.held = True
            raise KeyboardInterrupt
        self.arrived = number
        log.warning("removing the benchmark's servers and FlexVols first, then stopping")


def _machine_ram_mib() -> int:
    # Imported here: bootvol.compute.host needs the libvirt binding (see LocalComputeHost).
    from bootvol.compute.host import machine_resources

    return machine_resources().ram_mib


def _offset(moment: dt.datetime, start: dt.datetime) -> float:
    return (moment - start).total_seconds()
