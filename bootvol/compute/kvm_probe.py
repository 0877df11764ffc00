"""Which acceleration this host's guests get: KVM only where a guest really runs under it.

``/dev/kvm`` existing proves little: on nested-virtualisation hosts KVM opens, SeaBIOS runs,
and the guest then dies in its boot loader with "KVM internal error … emulation failure"
(a host CPU without unrestricted guest support, when syslinux enters V86 mode to call the
BIOS). So ``auto`` boots a probe guest that does exactly that, and keeps TCG unless it
prints. The probe takes seconds; its answer is kept for the process's life per libvirt URI.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

from bootvol.compute.domain import Accel
from bootvol.compute.hypervisor import libvirt  # with the install hint when it is missing
from bootvol.errors import HypervisorError

PROBE_TIMEOUT_SECONDS = 30.0
# The probe guest's boot sector, assembled from kvm_probe.asm (nasm -f bin): it enters
# protected mode, then V86 mode through iret (as syslinux does to call the BIOS) and
# prints "V86OK" on COM1. Nested KVM without unrestricted guest support fails exactly
# there ("KVM internal error ... emulation failure"), after the firmware ran fine.
PROBE_SECTOR_CODE = bytes.fromhex(
    "fa31c08ed88ed0bc007c0f0116887c0f20c06683c8010f22c0ea1e7c080066b810008ed88ec08ed0bc0070000066b818"
    "000f00d86a006a006a006a006a00680060000068023002006a0068507c0000cfbaf803be617c2eac84c07403eeebf7eb"
    "fe5638364f4b0a000000000000000000ffff0000009acf00ffff00000092cf00e8008e7c008900001f00687c00000000"
    "000000700000100000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000006800000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000ff"
)


_probed: dict[str, Accel] = {}
_probe_lock = threading.Lock()


def probe_acceleration(setting: str, *, uri: str, console_dir: Path) -> Accel:
    """``kvm`` or ``tcg`` for the ``[compute] accel`` setting (auto, kvm, tcg).

    ``auto`` boots a probe guest under KVM from a one-sector disk (PROBE_SECTOR_CODE)
    that prints "V86OK" from V86 mode. Where nested KVM fails, QEMU stops the guest
    ("KVM internal error"): the domain leaves the running state. The firmware alone
    proves nothing: SeaBIOS runs fine under a KVM that then fails in syslinux. The
    answer is whichever comes first (bounded by PROBE_TIMEOUT_SECONDS, then TCG), and
    is kept for the process's life per libvirt URI (the host's KVM does not change).
    """
    if setting == "tcg":
        return Accel.TCG
    usable = os.access("/dev/kvm", os.R_OK | os.W_OK)
    if setting == "kvm":
        if not usable:
            raise HypervisorError("accel = kvm, but /dev/kvm is missing or not accessible")
        return Accel.KVM
    if not usable:
        return Accel.TCG
    with _probe_lock:
        if uri not in _probed:
            _probed[uri] = _probe_kvm(uri=uri, console_dir=console_dir)
        return _probed[uri]


def _probe_kvm(*, uri: str, console_dir: Path) -> Accel:
    console_dir.mkdir(parents=True, exist_ok=True)
    log_file = console_dir / f"kvm-probe-{os.getpid()}.log"
    disk = console_dir / f"kvm-probe-{os.getpid()}.img"
    log_file.unlink(missing_ok=True)
    sector = PROBE_SECTOR_CODE.ljust(510, b"\0") + b"\x55\xaa"
    disk.write_bytes(sector.ljust(32 << 10, b"\0"))
    # A transient domain without bootvol's metadata: never taken for a server's.
    name = f"bootvol-kvm-probe-{os.getpid()}"
    xml = f"""<domain type='kvm'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
      <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
      <devices><disk type='file' device='disk'><driver name='qemu' type='raw'/>
      <source file='{disk}'/><target dev='hda' bus='ide'/></disk>
      <serial type='file'><source path='{log_file}'/><target port='0'/></serial>
      <memballoon model='none'/></devices></domain>"""
    try:
        connection = libvirt.open(uri)
    except libvirt.libvirtError:
        return Accel.TCG  # no libvirt: the hypervisor's first call says so, with the fix
    try:
        return _boot_probe(connection, xml, log_file)
    finally:
        connection.close()
        log_file.unlink(missing_ok=True)
        disk.unlink(missing_ok=True)


def _boot_probe(connection: libvirt.virConnect, xml: str, log_file: Path) -> Accel:
    try:
        domain = connection.createXML(xml, 0)
    except libvirt.libvirtError:
        return Accel.TCG  # libvirt or QEMU refuses KVM here
    try:
        deadline = time.monotonic() + PROBE_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if log_file.exists() and b"V86OK" in log_file.read_bytes():
                return Accel.KVM
            # QEMU pauses the guest on "KVM internal error", or exits and the transient
            # domain is gone: either way not running.
            if domain.state()[0] != libvirt.VIR_DOMAIN_RUNNING:
                return Accel.TCG
            time.sleep(0.05)
        return Accel.TCG
    except libvirt.libvirtError:
        return Accel.TCG
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            domain.destroy()
