"""`bootvol bench --boot` end to end, small: servers really boot on libvirt and QEMU (TCG).

As in test_bench, timings are not asserted (they belong to the benchmark's own run, in the
README): a small run checks that both single-server rows took the path they are named
after, that the storm fetched its image at most once per FlexVol, and that nothing of the
run is left on the machine afterwards, even when it is interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bootvol.units import MiB

from ..support import require_libvirt

BENCH = [sys.executable, "-m", "bootvol", "bench", "--boot", "--accel", "tcg"]
TIMEOUT = 600  # a bound for hangs: a 2-core machine shared with other libvirt tests


def bench_domains(under: Path) -> list[str]:
    """Names of the libvirt domains whose disks live under ``under``."""
    import libvirt

    connection = libvirt.open("qemu:///system")
    try:
        return [
            domain.name()
            for domain in connection.listAllDomains()
            if f"{under}/" in domain.XMLDesc(0)
        ]
    finally:
        connection.close()


@pytest.fixture(scope="module")
def report(guest_image: tuple[Path, str]) -> dict[str, Any]:
    require_libvirt()
    raw, _ = guest_image
    result = subprocess.run(
        [*BENCH, "--servers", "2", "--rounds", "1", "--guest-image", str(raw), "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_downloaded_and_cached_images_are_both_measured(report: dict[str, Any]) -> None:
    assert report["accel"] == "tcg" and report["flavor"] == "m1.tiny"
    for case in ("download", "cache-clone"):
        (sample,) = report["cases"][case]["samples"]
        assert sample["path"] == case
        assert 0 < sample["domain_s"] <= sample["to_active_s"] < sample["to_guest_line_s"]
    download = report["cases"]["download"]["samples"][0]
    clone = report["cases"]["cache-clone"]["samples"][0]
    # The download filled a cache entry; the second server's volume is cut from it there,
    # moving no image bytes through the host.
    assert download["filled_cache"] and download["host_bytes"] > MiB
    assert clone["flexvol"] == download["flexvol"]
    assert not clone["filled_cache"] and clone["host_bytes"] < MiB
    # The machine-readable summary, and its two targets judged on the same figures.
    cached = report["boot"]["cached"]
    assert cached["active_s"]["median"] == clone["to_active_s"]
    assert cached["guest_line_s"]["median"] == clone["to_guest_line_s"]
    assert report["boot"]["download"]["active_s"]["median"] == download["to_active_s"]
    active, share = report["targets"]
    assert active["passed"] == (clone["to_active_s"] <= 1.0)
    assert share["passed"] == (clone["to_active_s"] / clone["to_guest_line_s"] < 0.10)


def test_the_storm_fetches_its_image_once_per_flexvol(report: dict[str, Any]) -> None:
    storm = report["storm"]
    assert storm["servers"] == 2 and len(storm["samples"]) == 2
    assert sum(storm["paths"].values()) == 2
    # No FlexVol cached the storm's image: someone downloaded it, and no FlexVol twice.
    flexvols = storm["flexvols"]
    assert sum(f["servers"] for f in flexvols.values()) == 2
    assert sum(f["downloads"] for f in flexvols.values()) >= 1
    assert all(f["downloads"] <= 1 and f["cache_fills"] <= 1 for f in flexvols.values())
    assert storm["fetched_once_per_flexvol"] and report["passed"]
    for sample in storm["samples"]:
        assert sample["to_active_s"] < sample["to_guest_line_s"] <= storm["all_guest_lines_s"]


def test_no_domain_of_the_run_is_left(report: dict[str, Any]) -> None:
    import libvirt

    servers = [
        sample["server_id"]
        for group in (*report["cases"].values(), report["storm"])
        for sample in group["samples"]
    ]
    connection = libvirt.open("qemu:///system")
    try:
        for server_id in servers:
            with pytest.raises(libvirt.libvirtError):
                connection.lookupByUUIDString(server_id)
    finally:
        connection.close()


def test_ctrl_c_removes_every_domain_and_flexvol(
    guest_image: tuple[Path, str], mounts: dict[str, Path]
) -> None:
    require_libvirt()
    raw, _ = guest_image
    folder = mounts["xfs_a"] / f"boot-{os.urandom(3).hex()}"  # folder FlexVols, on XFS
    process = subprocess.Popen(
        [*BENCH, "--servers", "2", "--rounds", "1", "--guest-image", str(raw), "--dir", folder],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Interrupt once a server of the run is running: its domain uses a volume there.
        deadline = time.monotonic() + TIMEOUT
        while not bench_domains(folder):
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "no server of the run started"
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode != 0, stderr
    assert bench_domains(folder) == []
    assert list(folder.iterdir()) == []  # the run's folder (FlexVols, database) is gone
