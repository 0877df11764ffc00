"""The naive path run by hand, beside bootvol's download path, on the same FlexVol.

Two timings per round, from the same ``curl -o`` of the same URL:

* the issue's reference, ``curl -o`` then ``qemu-img convert``: the physical floor of the
  naive path, with no check and nothing made durable (the converted bytes are left dirty in
  the page cache);
* the same with bootvol's guarantees, ``curl -o``, ``sha512sum`` of the file (the hash
  bootvol verifies: Glance's ``os_hash_value``), then ``qemu-img
  convert -t none`` (written through to the disk, then flushed): what any path that
  verifies the bytes and makes the result durable must pay at least.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bootvol.errors import BenchmarkFailed
from bootvol.storage import qemu_img


class ReferenceFailed(BenchmarkFailed):
    """A tool of the by-hand reference is missing or failed."""


@dataclass(frozen=True)
class ReferenceRound:
    curl_s: float
    convert_s: float  # qemu-img convert through the page cache
    checksum_s: float  # sha512sum
    durable_convert_s: float  # qemu-img convert -t none

    @property
    def naive_s(self) -> float:
        return self.curl_s + self.convert_s

    @property
    def same_guarantees_s(self) -> float:
        return self.curl_s + self.checksum_s + self.durable_convert_s


def tools() -> tuple[str, str]:
    """curl and sha512sum, or ReferenceFailed naming the missing package."""
    found = []
    for tool, package in (("curl", "curl"), ("sha512sum", "coreutils")):
        path = shutil.which(tool)
        if path is None:
            raise ReferenceFailed(f"the reference needs {tool}: install the {package} package")
        found.append(path)
    return found[0], found[1]


def run_round(url: str, folder: Path) -> ReferenceRound:
    """One round in ``folder`` (on the FlexVol under test); leaves nothing behind."""
    curl, sha512sum = tools()
    downloaded, converted = folder / "image.qcow2", folder / "image.raw"
    qemu = qemu_img.qemu_img_path()
    convert = [qemu, "convert", "-f", "qcow2", "-O", "raw"]
    try:
        curl_s = _timed([curl, "-s", "-f", "-o", str(downloaded), url])
        convert_s = _timed([*convert, str(downloaded), str(converted)])
        converted.unlink()
        checksum_s = _timed([sha512sum, str(downloaded)])
        durable_s = _timed([*convert, "-t", "none", str(downloaded), str(converted)])
    finally:
        downloaded.unlink(missing_ok=True)
        converted.unlink(missing_ok=True)
    return ReferenceRound(curl_s, convert_s, checksum_s, durable_s)


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise ReferenceFailed(f"{' '.join(command)} failed: {result.stderr.strip()}")
    return seconds
