"""Format detection and safety checks for untrusted image bytes.

Two independent opinions must agree before an image is converted or used:

1. oslo.utils' format inspector (pure Python, reads only headers) detects the real format
   and runs its safety checks: no backing file, no external data file, no VMDK extent
   outside the file, no unknown feature bits, and so on.
2. ``qemu-img info`` with the format *pinned* to the declared one (so qemu never guesses)
   must report the same format, no ``backing-filename`` and no ``data-file``.

Anything else is refused with ImageRefused, whose message names the failed check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oslo_utils.imageutils import format_inspector

from bootvol.errors import ImageRefused
from bootvol.storage import qemu_img

DISK_FORMATS = ("raw", "qcow2", "vmdk", "vhd", "vhdx", "vdi")

# A raw disk image may carry a partition table or be an ISO; the inspector then names that
# more specific format, which is still raw to qemu (as Glance accepts it).
_RAW_ALIASES = {"raw", "gpt", "iso"}
# qemu-img calls VHD "vpc".
_QEMU_NAMES = {"vhd": "vpc"}


@dataclass(frozen=True)
class InspectedImage:
    disk_format: str
    virtual_size: int
    host_bytes: int  # header bytes read through user space, by us and by qemu-img


class _CountingReader:
    """A file whose reads are counted, to report the header bytes inspection touched."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed in close()
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self.bytes_read += len(data)
        return data

    def close(self) -> None:
        self._file.close()


def qemu_format(disk_format: str) -> str:
    return _QEMU_NAMES.get(disk_format, disk_format)


def inspect_image(path: Path, *, declared_format: str, what: str) -> InspectedImage:
    """Check ``path`` is a safe image of ``declared_format``; return its virtual size."""
    if declared_format not in DISK_FORMATS:
        raise ImageRefused(
            f"{what}: disk_format {declared_format!r} is not supported "
            f"(supported: {', '.join(DISK_FORMATS)})"
        )
    detected, header_bytes = _detect(path, what=what)
    if declared_format != detected.NAME and not (
        declared_format == "raw" and detected.NAME in _RAW_ALIASES
    ):
        raise ImageRefused(
            f"{what}: declared disk_format is {declared_format} but the content is "
            f"{detected.NAME}; re-create the image with --disk-format {detected.NAME}"
        )
    try:
        detected.safety_check()
    except format_inspector.SafetyCheckFailed as exc:
        reasons = "; ".join(f"{name}: {failure}" for name, failure in exc.failures.items())
        raise ImageRefused(f"{what}: unsafe {declared_format} image ({reasons})") from exc
    except format_inspector.ImageFormatError as exc:
        raise ImageRefused(f"{what}: cannot be checked as {declared_format}: {exc}") from exc

    report, info_bytes = _qemu_info(path, declared_format=declared_format, what=what)
    _refuse_external_references(report, what=what)
    return InspectedImage(
        disk_format=declared_format,
        virtual_size=int(report["virtual-size"]),
        host_bytes=header_bytes + info_bytes,
    )


def _detect(path: Path, *, what: str) -> tuple[format_inspector.FileInspector, int]:
    reader = _CountingReader(path)
    wrapper = format_inspector.InspectWrapper(reader)  # type: ignore[arg-type]
    try:
        while wrapper.read(65536):
            if wrapper.format:
                break
        wrapper.close()  # at end of file this tells incomplete inspectors "no match"
        detected = wrapper.format
    except format_inspector.ImageFormatError as exc:
        raise ImageRefused(f"{what}: content matches no single known format: {exc}") from exc
    finally:
        reader.close()
    if detected is None:
        raise ImageRefused(f"{what}: content matches no known image format")
    return detected, reader.bytes_read


def _qemu_info(path: Path, *, declared_format: str, what: str) -> tuple[dict[str, Any], int]:
    try:
        return qemu_img.info(path, image_format=qemu_format(declared_format))
    except qemu_img.QemuImgFailed as exc:
        raise ImageRefused(
            f"{what}: qemu-img cannot read it as {declared_format}: {exc.message}"
        ) from exc


def _refuse_external_references(report: dict[str, Any], *, what: str) -> None:
    if report.get("backing-filename") or report.get("full-backing-filename"):
        raise ImageRefused(
            f"{what}: has a backing file ({report.get('backing-filename')}); images must "
            "be self-contained"
        )
    specific = (report.get("format-specific") or {}).get("data") or {}
    if specific.get("data-file"):
        raise ImageRefused(f"{what}: has an external data file ({specific['data-file']})")
