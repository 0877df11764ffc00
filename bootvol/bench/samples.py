"""Sample disk images for the demo, the benchmark and the tests.

A sample is a raw disk whose every other MiB (by default) holds distinct data, the rest
holes, as a real OS image has allocated and empty regions; a qcow2 sample is that raw disk
converted by qemu-img.
"""

from __future__ import annotations

import os
from pathlib import Path

from bootvol.bench.content import file_md5
from bootvol.images.service import ImageCreate, ImageService
from bootvol.storage import qemu_img
from bootvol.units import MiB


def make_raw(path: Path, *, size_bytes: int, fill_every_mib: int = 2, seed: int = 0) -> Path:
    """Write a sparse raw disk with a distinct 1 MiB block at every ``fill_every_mib`` MiB."""
    block = bytearray(os.urandom(MiB))
    # Random bytes 510-511 are the MBR signature 0x55AA once in 65536 disks; the inspector
    # then reads random partition entries and refuses the image ("invalid boot flag").
    block[510:512] = b"\0\0"
    with open(path, "wb") as out:
        out.truncate(size_bytes)
        for index, offset in enumerate(range(0, size_bytes, fill_every_mib * MiB)):
            # Stamp the block so no two are equal (no accidental dedup, real content hashes).
            block[:16] = f"{seed:08x}{index:08x}".encode()
            out.seek(offset)
            out.write(block[: min(MiB, size_bytes - offset)])
    return path


def make_qcow2(raw: Path, path: Path) -> Path:
    qemu_img.run(
        ["convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(path)],
        limits=qemu_img.CONVERT_LIMITS,
    )
    return path


def register_remote(
    images: ImageService, file: Path, *, url: str, disk_format: str, name: str | None = None
) -> str:
    """Register ``file``, served at ``url``, as an image whose bytes stay there (in no FlexVol:
    only a download reaches them), with its size and md5 to verify; returns the image id."""
    return images.create(
        ImageCreate(
            name=name or file.name,
            disk_format=disk_format,
            url=url,
            size=file.stat().st_size,
            checksum=file_md5(file),
        )
    ).id
