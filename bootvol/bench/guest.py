"""The guest servers boot in the benchmark, the demo and the tests, and what booting needs.

``scripts/guest-image PATH`` builds the guest (see its header): a 64 MiB raw disk whose init
prints ``bootvol-guest serial=<the boot disk's serial> sha256=<of a payload file>`` on the
serial console, with the payload's expected sum in ``PATH.sha256``. The script ships with
the source tree, not with a wheel: :func:`build_guest_image` says so when it is missing.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bootvol.bench.loopback import loopback_unavailable
from bootvol.errors import BootvolError

GUEST_IMAGE_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "guest-image"
GUEST_LINE_MARK = "bootvol-guest serial="
# virtio-blk carries 20 bytes of serial (VIRTIO_BLK_ID_BYTES): the guest sees the volume
# id's first 20 characters.
VIRTIO_SERIAL_BYTES = 20


@dataclass(frozen=True)
class GuestImage:
    path: Path  # raw
    payload_sha256: str  # what the guest prints after sha256=

    def expected_line(self, volume_id: str) -> str:
        """The line a guest booted from volume ``volume_id`` prints."""
        serial = volume_id[:VIRTIO_SERIAL_BYTES]
        return f"{GUEST_LINE_MARK}{serial} sha256={self.payload_sha256}"


def load_guest_image(path: Path) -> GuestImage:
    """A guest image built earlier (``PATH.sha256`` beside it)."""
    checksum = path.with_name(f"{path.name}.sha256")
    if not path.is_file() or not checksum.is_file():
        raise BootvolError(
            f"{path} is not a guest image built by scripts/guest-image ({checksum.name} is "
            "its payload's checksum and must sit beside it)"
        )
    return GuestImage(path=path, payload_sha256=checksum.read_text().strip())


def build_guest_image(path: Path) -> GuestImage:
    """Build the guest at ``path`` with scripts/guest-image (as root, a few seconds)."""
    if not GUEST_IMAGE_SCRIPT.is_file():
        raise BootvolError(
            f"{GUEST_IMAGE_SCRIPT} is missing: the guest image is built from bootvol's source "
            "tree (a checkout), not from an installed wheel"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [str(GUEST_IMAGE_SCRIPT), str(path)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BootvolError(f"scripts/guest-image failed: {result.stderr.strip()}")
    return load_guest_image(path)


def cached_guest_image(folder: Path) -> GuestImage:
    """The guest image kept in ``folder``, built there the first time."""
    path = folder / "guest.raw"
    try:
        return load_guest_image(path)
    except BootvolError:
        return build_guest_image(path)


def complete_lines(console: str) -> list[str]:
    """A console log's lines that have ended: the log is read while the guest writes it,
    and its last line may still be half-written."""
    return [line.strip() for line in console.replace("\r\n", "\n").split("\n")[:-1]]


def guest_lines(console: str) -> list[str]:
    """The guest's boot lines in a console log (one per boot), complete ones only."""
    return [line for line in complete_lines(console) if GUEST_LINE_MARK in line]


def libvirt_unavailable(uri: str = "qemu:///system") -> str | None:
    """Why servers cannot boot here, or None when they can: booting needs root (the guest
    image's loop mount, the FlexVols' loop devices), QEMU, the libvirt binding (bootvol's
    ``compute`` extra) and a running libvirtd."""
    reason = loopback_unavailable()
    if reason is not None:
        return reason
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 is not installed (./scripts/setup installs it)"
    try:
        import libvirt
    except ImportError:
        return "the libvirt binding is not installed: pip install 'bootvol[compute]'"
    try:
        libvirt.open(uri).close()
    except libvirt.libvirtError as exc:
        return f"libvirt at {uri} is unavailable ({exc.get_error_message()}); is libvirtd running?"
    return None


def reachable_by_qemu(folder: Path) -> list[Path]:
    """Let QEMU reach the files under ``folder``: libvirt runs it as its own user and gives
    it each disk file itself, but every folder above the file must let that user through
    (search permission, ``o+x``; not read: nothing is listed). Returns the folders changed."""
    folder.mkdir(parents=True, exist_ok=True)
    changed = []
    for parent in (folder, *folder.parents):
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(parent, stat.S_IMODE(mode) | stat.S_IXOTH)
            changed.append(parent)
    return changed
