"""Reading a volume as a guest would see it, to compare contents across provisioning paths."""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from pathlib import Path

from bootvol.storage import qemu_img


def file_sha256(path: Path, *, length: int | None = None) -> str:
    """SHA-256 of the first ``length`` bytes of a file (all of it when None)."""
    digest = hashlib.sha256()
    remaining = length if length is not None else -1
    with open(path, "rb") as source:
        while remaining != 0:
            chunk = source.read(1 << 20 if remaining < 0 else min(1 << 20, remaining))
            if not chunk:
                break
            digest.update(chunk)
            if remaining > 0:
                remaining -= len(chunk)
    return digest.hexdigest()


def file_md5(path: Path) -> str:
    """The md5 a Glance image record's ``checksum`` holds, read in chunks."""
    with open(path, "rb") as source:
        return hashlib.file_digest(source, lambda: hashlib.md5(usedforsecurity=False)).hexdigest()


def same_guest_content(
    image: Path, volume: Path, *, image_format: str, volume_format: str = "raw"
) -> bool:
    """``qemu-img compare``: the volume reads as the image, its extra room all zeros.
    Formats are given, never probed: a raw volume's first bytes are guest data."""
    compared = subprocess.run(
        [
            qemu_img.qemu_img_path(),
            "compare",
            "-q",
            "-f",
            image_format,
            "-F",
            volume_format,
            str(image),
            str(volume),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if compared.returncode not in (0, 1):  # 0 equal, 1 different, else an error
        raise RuntimeError(f"qemu-img compare failed: {compared.stderr.strip()}")
    return compared.returncode == 0


def volume_sha256(path: Path, *, file_format: str, length: int) -> str:
    """SHA-256 of a volume's first ``length`` guest-visible bytes (qcow2 read through qemu)."""
    if file_format == "raw":
        return file_sha256(path, length=length)
    with tempfile.TemporaryDirectory(prefix="bootvol-flat-") as folder:
        flat = Path(folder) / "flat.raw"
        qemu_img.run(
            ["convert", "-q", "-f", file_format, "-O", "raw", str(path), str(flat)],
            limits=qemu_img.CONVERT_LIMITS,
        )
        return file_sha256(flat, length=length)
