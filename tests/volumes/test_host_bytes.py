"""Image bytes through user space, counted independently of bootvol under ``strace -f -y``.

strace sees every read/write-family call of the CLI process and its children (qemu-img) with
the path of each file descriptor; summing those on image, cache, volume and scratch files is
what ``host_bytes`` promises to report. In-kernel copies (FICLONE, copy_file_range, sendfile)
are not such calls, and are not counted.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from bootvol.images.service import ImageCreate
from bootvol.units import MiB

from ..support import Estate

_CALLS = "read,write,pread64,pwrite64,readv,writev,preadv,pwritev,preadv2,pwritev2"
_LINE = re.compile(r"^(\w+)\((\d+)<([^>]*)>.*\)\s+=\s+(\d+)")
_IMAGE_NAMES = re.compile(r"(^|/)(image-|img-cache-|volume-)|/\.bootvol/tmp/")


def traced_create(estate: Estate, tmp_path: Path, image: str, flexvol: str) -> tuple[dict, int]:
    """Run `bootvol volume create` under strace; return its JSON and the traced image bytes."""
    prefix = tmp_path / f"trace-{flexvol}"
    command = [
        "strace",
        "-f",
        "-ff",
        "-y",
        "-qq",
        "-e",
        f"trace={_CALLS}",
        "-o",
        str(prefix),
        *estate.command(
            "volume", "create", "--image", image, "--size", "1", "--flexvol", flexvol, "--json"
        ),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    roots = tuple(str(p) for p in estate.flexvols.values())
    traced = 0
    for trace in tmp_path.glob(f"{prefix.name}.*"):
        for line in trace.read_text(errors="replace").splitlines():
            match = _LINE.match(line)
            if match and match.group(3).startswith(roots) and _IMAGE_NAMES.search(match.group(3)):
                traced += int(match.group(4))
        trace.unlink()
    return json.loads(result.stdout), traced


@pytest.mark.parametrize(
    ("flexvol", "path"),
    [("images", "direct-clone"), ("vol_a", "copy-offload"), ("vol_same", "copy-offload")],
)
def test_clone_and_raw_copy_offload_move_no_image_bytes(
    estate: Estate, tmp_path: Path, flexvol: str, path: str
) -> None:
    raw = estate.sample("disk.raw", size_mib=32)
    image = estate.app.images.create_from_file(ImageCreate(name="d", disk_format="raw"), raw).id
    volume, traced = traced_create(estate, tmp_path, image, flexvol)
    assert volume["provisioning"]["path"] == path
    assert traced < 1 * MiB, f"{traced} image bytes crossed user space on the {path} path"
    assert volume["provisioning"]["host_bytes"] < 1 * MiB

    again, traced_again = traced_create(estate, tmp_path, image, flexvol)
    if path == "copy-offload":  # the second one clones the now-filled cache
        assert again["provisioning"]["path"] == "cache-clone"
    assert traced_again < 1 * MiB


def test_download_bytes_are_seen_and_reported(estate: Estate, tmp_path: Path) -> None:
    """The same tracing does see bytes when they cross: the checks above could fail."""
    image, raw = estate.remote_image(size_mib=32)
    volume, traced = traced_create(estate, tmp_path, image, "vol_a")
    assert volume["provisioning"]["path"] == "download"
    data_bytes = raw.stat().st_size // 2  # the sample fills every other MiB
    assert traced > 2 * data_bytes  # written once when downloaded, read and written by qemu-img
    reported = volume["provisioning"]["host_bytes"]
    assert abs(reported - traced) < 0.05 * traced + MiB, (reported, traced)
