"""Malformed qcow2, vmdk and vhd headers (hypothesis) fed to the image inspector: it either
accepts the file or refuses it with ImageRefused; never another exception, never a hang,
and it leaves no file behind.

Each example starts from a real image made by qemu-img, then overwrites random bytes of its
header region (and for vhd its footer) and may cut the file short.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bootvol.errors import ImageRefused
from bootvol.images.inspect import inspect_image

# qemu-img's names for the formats (vhd is "vpc").
FORMATS = {"qcow2": "qcow2", "vmdk": "vmdk", "vhd": "vpc"}
HEADER_BYTES = 4096


def seed_image(disk_format: str) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"seed.{disk_format}"
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", FORMATS[disk_format], str(path), "16M"],
            check=True,
        )
        return path.read_bytes()


SEEDS = {name: seed_image(name) for name in FORMATS}


@st.composite
def mutated(draw: st.DrawFn, disk_format: str) -> bytes:
    data = bytearray(SEEDS[disk_format])
    regions = [min(HEADER_BYTES, len(data))]
    for _ in range(draw(st.integers(1, 16))):
        # Mostly the header; for vhd also the footer, which is what identifies it.
        if disk_format == "vhd" and draw(st.booleans()):
            offset = len(data) - 1 - draw(st.integers(0, 511))
        else:
            offset = draw(st.integers(0, regions[0] - 1))
        data[offset] = draw(st.integers(0, 255))
    if draw(st.integers(0, 4)) == 0:  # sometimes cut it short
        del data[draw(st.integers(0, len(data))) :]
    return bytes(data)


@pytest.mark.parametrize("disk_format", list(FORMATS))
def test_malformed_headers_are_refused_or_accepted_never_crash(
    disk_format: str, tmp_path: Path
) -> None:
    @settings(
        max_examples=200,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(content=mutated(disk_format))
    def check(content: bytes) -> None:
        path = tmp_path / f"image.{disk_format}"
        path.write_bytes(content)
        try:
            inspected = inspect_image(path, declared_format=disk_format, what="fuzzed image")
        except ImageRefused as exc:
            assert exc.message.startswith("fuzzed image"), exc.message
        else:
            assert inspected.virtual_size >= 0
        path.unlink()
        assert list(tmp_path.iterdir()) == []  # the inspector made no file of its own

    check()
