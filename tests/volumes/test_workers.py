"""Several workers on one database: each pending volume is made exactly once, by any worker;
a worker killed (SIGKILL) mid-operation is taken over by another within its lease, and one
that only stalled (SIGSTOP) past its lease leaves the volume to its new holder.

Workers run as real ``bootvol worker`` processes on the test's config, on SQLite and on a
throwaway PostgreSQL.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bootvol.bench.content import volume_sha256
from bootvol.caller import OPERATOR
from bootvol.db.models import VolumeRecord, VolumeStatus
from bootvol.images.service import ImageCreate
from bootvol.runtime import open_bootvol
from bootvol.units import MiB
from bootvol.volumes.cache import CACHE_PREFIX, ImageCache
from bootvol.volumes.claims import IN_PROGRESS, VolumeOutcome, claim_next, finish, holds, renew
from bootvol.volumes.service import VolumeCreate

from ..faulty_http import FaultyServer, remote_image
from ..support import BOTH_DATABASES, Estate

LEASE_SECONDS = 2.0
# A held download waits for the test, not for the worker's read timeout.
WORKERS = (
    f"[workers]\nlease_seconds = {LEASE_SECONDS}\npoll_seconds = 0.2\n"
    "[download]\nread_timeout_seconds = 3600\n"
)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """start(estate, wrapper=[...]) → a running `bootvol worker` process, stopped at the end."""
    started: list[subprocess.Popen[str]] = []

    def start(
        estate: Estate, *, wrapper: tuple[str, ...] = (), path_first: Path | None = None
    ) -> subprocess.Popen[str]:
        log = tmp_path / f"worker-{len(started)}.log"
        env = dict(os.environ)
        if path_first is not None:  # commands found there first (a qemu-img that holds)
            env["PATH"] = f"{path_first}:{env['PATH']}"
        process = subprocess.Popen(
            [*wrapper, *estate.command("worker", "--threads", "2")],
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
            text=True,
            env=env,
        )
        started.append(process)
        deadline = time.monotonic() + 30
        while "worker:" not in log.read_text():  # it has released dead claims and claims now
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.05)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(30)


def accept(estate: Estate, image: str | None, *, flexvol: str | None = None) -> str:
    request = VolumeCreate(image=image, size_gib=1, flexvol=flexvol)
    return estate.app.volumes.accept(request, caller=OPERATOR).id


def wait_done(estate: Estate, ids: list[str], *, timeout: float) -> list[VolumeRecord]:
    deadline = time.monotonic() + timeout
    while True:
        records = [estate.app.volumes.get(i) for i in ids]
        pending = [r for r in records if r.status in IN_PROGRESS]
        if not pending:
            return records
        assert time.monotonic() < deadline, f"{len(pending)} volumes still {pending[0].status}"
        time.sleep(0.1)


def content_sha256(volume: VolumeRecord, length: int) -> str:
    assert volume.file is not None
    return volume_sha256(Path(volume.file), file_format=volume.file_format, length=length)


@BOTH_DATABASES
def test_concurrent_claimers_claim_each_volume_once(make_estate) -> None:
    estate = make_estate(extra=WORKERS)
    ids = {accept(estate, None) for _ in range(40)}  # empty volumes: accepting is all we need
    claims: list[str] = []
    barrier = threading.Barrier(8)

    def claimer(n: int) -> None:
        barrier.wait()
        while claim := claim_next(estate.app.sessions, claimant=f"t{n}", lease_seconds=60):
            claims.append(claim.volume_id)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(claims) == Counter(ids)  # every volume once, none twice
    assert {estate.app.volumes.get(i).attempts for i in ids} == {1}


@BOTH_DATABASES
def test_a_claim_is_fenced_by_its_attempt(make_estate) -> None:
    """The same process re-claiming a volume after its lease ran out holds a new claim: the
    old one can neither renew nor write an outcome, and a finished volume is not claimable."""
    estate = make_estate(extra=WORKERS)
    sessions = estate.app.sessions
    volume_id = accept(estate, None)
    first = claim_next(sessions, claimant="node:1", lease_seconds=0.2)
    assert first is not None and first.attempt == 1
    time.sleep(0.3)
    second = claim_next(sessions, claimant="node:1", lease_seconds=60)
    assert second is not None and (second.volume_id, second.attempt) == (volume_id, 2)

    assert not holds(sessions, first) and holds(sessions, second)
    assert not renew(sessions, first, lease_seconds=60)
    assert not finish(sessions, first, VolumeOutcome.failed("stale"))
    assert finish(sessions, second, VolumeOutcome(status=VolumeStatus.AVAILABLE))
    assert estate.app.volumes.get(volume_id).status == VolumeStatus.AVAILABLE
    assert not finish(sessions, second, VolumeOutcome.failed("late"))  # ended: nothing in progress
    assert claim_next(sessions, claimant="node:2", lease_seconds=60) is None


@BOTH_DATABASES
def test_worker_processes_make_each_volume_exactly_once(make_estate, workers, tmp_path) -> None:
    estate = make_estate(extra=WORKERS)
    with FaultyServer(estate.workdir) as server:
        image, expected = remote_image(estate, server)
        flexvols = ["vol_a", "vol_b", "vol_c"]
        ids = [accept(estate, image, flexvol=flexvols[n % 3]) for n in range(24)]
        for _ in range(3):
            workers(estate)
        volumes = wait_done(estate, ids, timeout=120)

    assert all(v.status == VolumeStatus.AVAILABLE for v in volumes), [v.message for v in volumes]
    assert {v.attempts for v in volumes} == {1}  # no volume was claimed twice
    assert all(content_sha256(v, 16 << 20) == expected for v in volumes)
    # Each FlexVol's cache was filled exactly once, by one download or copy offload.
    fills = Counter(v.flexvol for v in volumes if v.provisioning and v.provisioning.filled_cache)
    assert fills == Counter(flexvols)
    # The image crossed the network once per download, and at most once per FlexVol.
    downloads = [v for v in volumes if v.provisioning.path == "download"]
    assert server.requests == len(downloads) <= len(flexvols)


def scratch_files(estate: Estate, flexvol: str) -> list[Path]:
    tmp = estate.app.topology.get(flexvol).state_dir / "tmp"
    return [p for p in tmp.rglob("*") if p.is_file() and p.name != "lock"] if tmp.is_dir() else []


def kill_holder(volume: VolumeRecord) -> None:
    assert volume.claimed_by is not None
    os.kill(int(volume.claimed_by.rsplit(":", 1)[1]), signal.SIGKILL)


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def held_at(syscall: str, *, from_call: int) -> tuple[str, ...]:
    """A wrapper that holds its worker (and the worker's qemu-img children, ``-f``) in the
    kernel at a known point: every call of ``syscall`` from the ``from_call``-th on waits an
    hour on entry (strace's delay injection), far longer than any test runs. The worker
    cannot get past that point however fast the machine is; the test kills it there."""
    inject = f"inject={syscall}:delay_enter=3600s:when={from_call}+"
    return ("strace", "-f", "-qq", "-o", "/dev/null", "-e", inject)


def holding_qemu_img(folder: Path) -> Path:
    """A folder with a ``qemu-img`` that runs the real one, except that ``convert`` is held
    in the kernel at its first write (strace delay injection, an hour), once it has created
    its output. It dies with its parent, as bootvol's own qemu-img children do."""
    real = shutil.which("qemu-img")
    assert real is not None
    folder.mkdir()
    shim = folder / "qemu-img"
    shim.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = convert ]; then\n'
        "  exec strace -f -qq -o /dev/null -e inject=pwrite64:delay_enter=3600s:when=1+ "
        f'setpriv --pdeathsig KILL {real} "$@"\n'
        "fi\n"
        f'exec {real} "$@"\n'
    )
    shim.chmod(0o755)
    return folder


def data_bytes(path: Path) -> int:
    """Bytes allocated to ``path`` (XFS counts delayed allocations, so page-cache writes show)."""
    try:
        return path.stat().st_blocks * 512
    except FileNotFoundError:
        return 0


@BOTH_DATABASES
@pytest.mark.parametrize("stage", ["download", "copy-offload", "conversion"])
def test_killed_worker_is_taken_over_and_leaves_nothing_half_made(
    make_estate, workers, stage: str, tmp_path: Path
) -> None:
    """Each stage holds its worker mid-operation until the test kills it: the download at
    half the image (the source sends no more until resumed), the copy offload after two of
    its eight 1 MiB sendfile segments, the conversion once qemu-img has created its output
    and before it writes."""
    estate = make_estate(extra=WORKERS)
    with FaultyServer(estate.workdir) as server:
        vol_a = estate.app.topology.get("vol_a")
        wrapper: tuple[str, ...] = ()
        path_first = None
        if stage == "download":
            image, expected = remote_image(estate, server)
            server.mode = "hold"
        else:
            raw = estate.sample("disk.raw")  # 16 MiB, data in every other MiB
            expected = hashlib.sha256(raw.read_bytes()).hexdigest()
            disk_format = "raw" if stage == "copy-offload" else "qcow2"
            upload = raw if disk_format == "raw" else estate.sample_qcow2(raw, "disk.qcow2")
            image = estate.app.images.create_from_file(
                ImageCreate(name="stored", disk_format=disk_format), upload
            ).id
            # images (XFS) → vol_a (another XFS): copy offload by sendfile, then qemu-img.
            if stage == "copy-offload":
                wrapper = held_at("sendfile", from_call=3)
            else:
                path_first = holding_qemu_img(tmp_path / "holding")

        def at_hold_point() -> bool:
            scratch = scratch_files(estate, "vol_a")
            if stage == "download":
                return server.held == 1 and bool(scratch)
            if stage == "copy-offload":
                return any(data_bytes(p) >= 2 * MiB for p in scratch)
            return any(p.suffix != ".qcow2" for p in scratch)  # qemu-img's output exists

        first = workers(estate, wrapper=wrapper, path_first=path_first)
        volume_id = accept(estate, image, flexvol="vol_a")
        wait_until(at_hold_point, timeout=60, what=f"the worker's hold point in the {stage}")
        second = workers(estate)  # another node's worker: it must wait for the lease
        kill_holder(estate.app.volumes.get(volume_id))
        killed_at = time.monotonic()
        # A thread held by strace dies only once its tracer lets go of it: end the strace
        # that wraps the copy-offload worker too.
        first.kill()
        first.wait(30)
        # Nothing half-made is visible under a cache name, now or later.
        assert not ImageCache(vol_a).contains(image)
        server.resume()
        (volume,) = wait_done(estate, [volume_id], timeout=60)
        taken_over_in = time.monotonic() - killed_at

    assert volume.status == VolumeStatus.AVAILABLE, volume.message
    assert volume.attempts == 2
    assert volume.claimed_by is not None and volume.claimed_by.endswith(f":{second.pid}")
    assert taken_over_in < LEASE_SECONDS + 10
    assert content_sha256(volume, 16 << 20) == expected
    names = [p.name for p in estate.flexvols["vol_a"].iterdir()]
    assert [n for n in names if n.startswith(CACHE_PREFIX)] == [f"{CACHE_PREFIX}{image}"]
    # The dead worker's scratch is still there (its files were never published) until a
    # restart, which removes it.
    assert scratch_files(estate, "vol_a")
    open_bootvol(config=estate.config)
    assert scratch_files(estate, "vol_a") == []


@BOTH_DATABASES
def test_volume_fails_cleanly_after_max_attempts(make_estate, workers) -> None:
    estate = make_estate(extra=WORKERS.replace("poll_seconds", "max_attempts = 2\npoll_seconds"))
    with FaultyServer(estate.workdir) as server:
        image, _ = remote_image(estate, server)
        server.mode = "hold"
        volume_id = accept(estate, image, flexvol="vol_a")
        for died in range(1, 3):  # two workers die making it, each held mid-download
            worker = workers(estate)
            wait_until(lambda n=died: server.held == n, timeout=60, what="a held download")
            kill_holder(estate.app.volumes.get(volume_id))
            worker.wait(30)
            open_bootvol(config=estate.config)  # a restart: scratch of the dead goes
        server.resume()
        workers(estate)
        (volume,) = wait_done(estate, [volume_id], timeout=30)
    assert volume.status == VolumeStatus.ERROR
    assert "died 2 times" in (volume.message or "")
    assert not (estate.flexvols["vol_a"] / f"volume-{volume_id}").exists()
    assert scratch_files(estate, "vol_a") == []


@BOTH_DATABASES
def test_stalled_worker_that_lost_its_claim_leaves_the_volume_to_its_new_holder(
    make_estate, workers, tmp_path
) -> None:
    estate = make_estate(extra=WORKERS)
    with FaultyServer(estate.workdir) as server:
        image, expected = remote_image(estate, server)
        server.mode = "hold"
        stalled = workers(estate)
        volume_id = accept(estate, image, flexvol="vol_a")
        wait_until(lambda: server.held == 1, timeout=60, what="the held download")
        os.kill(stalled.pid, signal.SIGSTOP)  # alive but silent: its lease runs out
        try:
            workers(estate)
            wait_until(
                lambda: estate.app.volumes.get(volume_id).attempts == 2,
                timeout=LEASE_SECONDS + 10,
                what="the takeover",
            )
            server.resume()
        finally:
            os.kill(stalled.pid, signal.SIGCONT)
        # The stalled worker finishes its cache fill (the new holder waits for it on the fill
        # lock), then finds its claim gone and must not touch the volume's file or record.
        wait_until(
            lambda: "took the volume over" in (tmp_path / "worker-0.log").read_text(),
            timeout=60,
            what="the stalled worker to notice",
        )
        (volume,) = wait_done(estate, [volume_id], timeout=60)

    assert volume.status == VolumeStatus.AVAILABLE, volume.message
    # Made once, by the new holder: a reflink of the cache entry, not a fallback forced by a
    # volume file the stalled worker had already put in its way.
    assert volume.file_format == "raw"
    assert volume.provisioning.clone_method == "reflink", volume.provisioning.skipped
    assert content_sha256(volume, 16 << 20) == expected
    assert stalled.poll() is None  # the stalled worker carries on with other work


def test_worker_process_runs_the_cache_cleaner(make_estate, workers) -> None:
    probe = make_estate()
    now = int(probe.app.topology.get("vol_a").space().available_percent)
    cache_settings = (
        f"[cache]\nthres_avl_size_perc_start = {min(now + 1, 99)}\n"
        f"thres_avl_size_perc_stop = 100\nexpiry_thres_minutes = 1\nclean_interval_seconds = 1\n"
    )
    estate = make_estate(extra=cache_settings + WORKERS)
    flexvol = estate.app.topology.get("vol_a")
    flexvol.ensure()
    cache = ImageCache(flexvol)
    cache.fill_once("old", lambda path: path.write_bytes(os.urandom(1 << 20)))
    entry = cache.entry_path("old")
    os.utime(entry, (0, entry.stat().st_mtime))  # last used in 1970: expired
    workers(estate)
    wait_until(lambda: not entry.exists(), timeout=30, what="the worker's cache cleaner")


def test_a_flag_set_while_the_volume_is_made_outlives_its_outcome(make_estate) -> None:
    """`volume create --bootable` sets the flag right after the request, while a worker makes
    the volume: here it is set at a known point, between accepting and provisioning, so the
    outcome's write must keep it whatever the machine's speed."""
    estate = make_estate()
    volumes = estate.app.volumes
    record = volumes.accept(VolumeCreate(size_gib=1), caller=OPERATOR)  # no worker runs here
    volumes.update(record.id, caller=OPERATOR, bootable=True)
    claim = claim_next(estate.app.sessions, claimant="test-worker", lease_seconds=60)
    assert claim is not None and claim.volume_id == record.id
    made = volumes.provisioner.provision(record.id, claimed=claim)
    assert made.status == VolumeStatus.AVAILABLE and made.bootable
