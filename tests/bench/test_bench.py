"""`bootvol bench` end to end on tiny images: every path is measured where it claims to be.

Timings are not asserted: the performance targets belong to the benchmark's own run on its
reference machine (see the README). What a tiny run checks is that each path was really
taken and moved the bytes, and used the space, the engine promises.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from bootvol.units import MiB

from ..support import require_loopback

SIZE = "0.03125"  # GiB: a 32 MiB image
BENCH = [sys.executable, "-m", "bootvol", "bench"]
PATHS = ("download", "copy-offload", "copy-offload-qcow2", "direct-clone", "cache-clone")


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BENCH, *args], capture_output=True, text=True, check=False, timeout=600)


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    require_loopback()
    result = run_bench("--sizes", SIZE, "--volumes", "3", "--slow-volumes", "1", "--api", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_every_path_is_measured(report: dict[str, Any]) -> None:
    assert report["sizes_gib"] == [float(SIZE)]
    for path in PATHS:
        measured = report["paths"][path][SIZE]
        assert measured["median_s"] > 0
        assert measured["p95_s"] >= measured["median_s"]
    assert report["paths"]["download"][SIZE]["volumes"] == 1
    assert report["paths"]["cache-clone"][SIZE]["volumes"] == 3
    assert report["paths"]["direct-clone"][SIZE]["volumes"] == 3
    assert report["reference"][SIZE]["median_s"] > 0
    assert {target["name"] for target in report["targets"]}


def test_api_latency_is_measured_over_the_running_service(report: dict[str, Any]) -> None:
    # `bootvol serve` in its own process: POST /volumes, then polling until available.
    api = report["api"]
    assert 0 < api["post_to_available_ms"]["median"] <= api["post_to_available_ms"]["p95"]
    assert api["volumes"] == 3 and len(api["samples_ms"]) == 3
    # The image is in the image store: every volume over the API is a clone.
    assert set(api["paths"]) <= {"direct-clone", "cache-clone"}
    assert sum(api["paths"].values()) == 3
    assert any(t["name"].startswith("over the API") for t in report["targets"])


def test_only_the_naive_paths_pass_image_bytes_through_the_host(report: dict[str, Any]) -> None:
    image_bytes = report["images"][SIZE]["image_bytes"]
    for path in ("copy-offload", "direct-clone", "cache-clone"):
        assert report["paths"][path][SIZE]["host_bytes"] < MiB, path
    # Written on download, then read and written by qemu-img convert.
    assert report["paths"]["download"][SIZE]["host_bytes"] > image_bytes // 2
    assert report["paths"]["download"][SIZE]["host_bytes"] > report["images"][SIZE]["qcow2_bytes"]
    assert report["paths"]["copy-offload-qcow2"][SIZE]["host_bytes"] > 0


def test_clones_of_one_image_take_the_space_of_one_image(report: dict[str, Any]) -> None:
    space = report["space"]
    assert space["volumes"] == 3
    assert space["ratio"] < 1.1
    assert space["physical_bytes_used"] < space["naive_bytes"] / 2


def test_sizes_must_be_positive_numbers() -> None:
    for sizes, says in (("0", "positive"), ("1,one", "comma-separated")):
        result = run_bench("--sizes", sizes)
        assert result.returncode != 0
        assert says in result.stderr


def test_the_os_like_image_is_measured_with_its_cache_entry_laid_out(
    report: dict[str, Any],
) -> None:
    assert report["image"] == "os"
    space = report["space_by_size"][SIZE]
    assert 0 < space["image_data_bytes"] < report["images"][SIZE]["image_bytes"]
    assert space["entry_bytes"] <= 1.5 * space["image_data_bytes"]
    layouts = {trial["min_hole"]: trial for trial in report["layouts_by_size"][SIZE]}
    assert set(layouts) == {"4k", "64k", "1M", "4M", "16M"}
    # Every zero block a hole: the most extents and the least space.
    assert layouts["4k"]["extents"] > layouts["1M"]["extents"] >= layouts["16M"]["extents"]
    assert layouts["4k"]["entry_bytes"] <= layouts["16M"]["entry_bytes"]


def test_the_guest_image_is_measured_at_its_own_size() -> None:
    require_loopback()
    result = run_bench("--image", "guest", "--volumes", "2", "--slow-volumes", "1", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["image"] == "guest"
    (size,) = report["sizes_gib"]
    assert report["images"][str(size)]["image_bytes"] == 64 * MiB
    assert report["paths"]["cache-clone"][str(size)]["volumes"] == 2
    refused = run_bench("--image", "guest", "--sizes", "1")
    assert refused.returncode != 0
    assert "own size" in refused.stderr
