"""The hypervisor: libvirt domains for servers, through the libvirt-python binding.

Contract (what a caller may rely on):

* One persistent domain per server, named ``bootvol-<server id>`` with the server id as its
  UUID and in its ``<metadata>``, so that a restarted bootvol finds its domains again
  (``domains``) and ``virsh list`` shows them to an operator. Domains outlive the process.
* The boot volume is a virtio disk ``vda`` whose ``<serial>`` is the volume id (as Nova's
  libvirt driver sets it); data volumes hot-plug as ``vdb``, ``vdc``… the same way.
* The serial console is logged to ``<console_dir>/<server id>.log`` (appended across
  boots); ``console_output`` reads it while the guest runs.
* ``shutdown`` is an ACPI power-button press, then a wait for the domain to stop that ends
  on a condition (libvirt's state), bounded by ``timeout``; ``destroy`` pulls the plug.
* Acceleration: ``kvm`` where a probe guest's firmware really runs under it, else QEMU's
  TCG (``probe_acceleration``); nested KVM can exist and still fail in the firmware.

Errors from libvirt become ``HypervisorError`` with what failed and libvirt's reason.
"""

from __future__ import annotations

import contextlib
import enum
import os
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt

from bootvol.errors import HypervisorError

METADATA_NS = "https://bootvol.dev/xmlns/server/1"
# libvirt prints every error to stderr by default; ours are raised (and logged) instead.
libvirt.registerErrorHandler(lambda _context, _error: None, None)
DOMAIN_PREFIX = "bootvol-"
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


class Accel(enum.StrEnum):
    KVM = "kvm"
    TCG = "tcg"


class PowerState(enum.StrEnum):
    """A domain's state as bootvol cares about it (Nova's power states)."""

    RUNNING = "running"
    SHUTOFF = "shutoff"  # defined, not running (shut down, crashed, killed)
    PAUSED = "paused"
    MISSING = "missing"  # no such domain


@dataclass(frozen=True)
class Disk:
    file: Path
    file_format: str  # raw or qcow2
    serial: str  # the volume id


@dataclass(frozen=True)
class DomainSpec:
    server_id: str
    name: str  # the server's name, for operators reading virsh
    vcpus: int
    ram_mib: int
    boot_disk: Disk


@dataclass(frozen=True)
class Domain:
    server_id: str
    state: PowerState


class Hypervisor:
    def __init__(self, *, uri: str, console_dir: Path, accel: Accel) -> None:
        self._uri = uri
        self._console_dir = console_dir
        self.accel = accel
        self._local = threading.local()  # one connection per thread, as libvirt advises

    # connection ----------------------------------------------------------------------------
    def _connection(self) -> libvirt.virConnect:
        connection = getattr(self._local, "connection", None)
        if connection is None or not connection.isAlive():
            try:
                connection = libvirt.open(self._uri)
            except libvirt.libvirtError as exc:
                raise HypervisorError(
                    f"cannot connect to libvirt at {self._uri}: {exc.get_error_message()}; "
                    "is libvirtd running (./scripts/setup starts it)?"
                ) from exc
            self._local.connection = connection
        return connection

    def _domain(self, server_id: str) -> libvirt.virDomain | None:
        try:
            return self._connection().lookupByUUIDString(server_id)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise _error(f"looking up the domain of server {server_id}", exc) from exc

    def _existing(self, server_id: str) -> libvirt.virDomain:
        domain = self._domain(server_id)
        if domain is None:
            raise HypervisorError(f"server {server_id} has no domain on this host")
        return domain

    # lifecycle -----------------------------------------------------------------------------
    def console_log(self, server_id: str) -> Path:
        return self._console_dir / f"{server_id}.log"

    def define_and_start(self, spec: DomainSpec) -> None:
        """Define the server's persistent domain and boot it; on failure nothing is left."""
        self._console_dir.mkdir(parents=True, exist_ok=True)
        xml = domain_xml(spec, accel=self.accel, console_log=self.console_log(spec.server_id))
        try:
            domain = self._connection().defineXML(xml)
        except libvirt.libvirtError as exc:
            raise _error(f"defining the domain of server {spec.server_id}", exc) from exc
        try:
            domain.create()
        except libvirt.libvirtError as exc:
            self.undefine(spec.server_id)
            raise _error(f"starting server {spec.server_id}", exc) from exc

    def start(self, server_id: str) -> None:
        domain = self._existing(server_id)
        if self.state(server_id) is PowerState.RUNNING:
            return
        try:
            domain.create()
        except libvirt.libvirtError as exc:
            raise _error(f"starting server {server_id}", exc) from exc

    def shutdown(self, server_id: str, *, timeout: float) -> bool:
        """Press the power button and wait for the guest to stop; False if it did not
        within ``timeout`` (the caller may then ``destroy``)."""
        domain = self._existing(server_id)
        try:
            domain.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
        except libvirt.libvirtError as exc:
            if self.state(server_id) is not PowerState.RUNNING:
                return True
            raise _error(f"shutting down server {server_id}", exc) from exc
        return self.wait_for(server_id, PowerState.SHUTOFF, timeout=timeout)

    def destroy(self, server_id: str) -> None:
        """Stop the domain at once (it stays defined)."""
        domain = self._domain(server_id)
        if domain is None or self.state(server_id) in (PowerState.SHUTOFF, PowerState.MISSING):
            return
        try:
            domain.destroy()
        except libvirt.libvirtError as exc:
            if self.state(server_id) not in (PowerState.SHUTOFF, PowerState.MISSING):
                raise _error(f"stopping server {server_id}", exc) from exc

    def reboot(self, server_id: str, *, hard: bool) -> None:
        """Soft: an ACPI reboot request to the guest. Hard: a reset of the machine."""
        domain = self._existing(server_id)
        try:
            if hard:
                if self.state(server_id) is PowerState.RUNNING:
                    domain.reset()
                else:
                    domain.create()
            else:
                domain.reboot(libvirt.VIR_DOMAIN_REBOOT_ACPI_POWER_BTN)
        except libvirt.libvirtError as exc:
            raise _error(f"rebooting server {server_id}", exc) from exc

    def undefine(self, server_id: str) -> None:
        """Remove the domain (stopping it first) and its console log."""
        domain = self._domain(server_id)
        if domain is not None:
            self.destroy(server_id)
            try:
                domain.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    raise _error(f"removing the domain of server {server_id}", exc) from exc
        self.console_log(server_id).unlink(missing_ok=True)

    # reading -------------------------------------------------------------------------------
    def state(self, server_id: str) -> PowerState:
        domain = self._domain(server_id)
        if domain is None:
            return PowerState.MISSING
        try:
            state, _reason = domain.state()
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return PowerState.MISSING
            raise _error(f"reading the state of server {server_id}", exc) from exc
        if state in (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED):
            return PowerState.RUNNING
        if state in (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PMSUSPENDED):
            return PowerState.PAUSED
        return PowerState.SHUTOFF

    def wait_for(self, server_id: str, state: PowerState, *, timeout: float) -> bool:
        """Wait until the domain is in ``state``; False when ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while self.state(server_id) is not state:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    def domains(self) -> list[Domain]:
        """bootvol's domains on this host (by their name prefix), for adoption."""
        try:
            found = self._connection().listAllDomains()
        except libvirt.libvirtError as exc:
            raise _error("listing domains", exc) from exc
        return [
            Domain(server_id=d.UUIDString(), state=self.state(d.UUIDString()))
            for d in found
            if d.name().startswith(DOMAIN_PREFIX)
        ]

    def console_output(self, server_id: str, *, lines: int | None = None) -> str:
        try:
            text = self.console_log(server_id).read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return ""
        text = text.replace("\r\n", "\n")
        return text if lines is None else "\n".join(text.splitlines()[-lines:])


def probe_acceleration(setting: str, *, uri: str, console_dir: Path) -> Accel:
    """``kvm`` or ``tcg`` for the ``[compute] accel`` setting (auto, kvm, tcg).

    ``auto`` boots a probe guest under KVM from a one-sector disk (PROBE_SECTOR_CODE)
    that prints "V86OK" from V86 mode. Where nested KVM fails, QEMU stops the guest
    ("KVM internal error"): the domain leaves the running state. The firmware alone
    proves nothing: SeaBIOS runs fine under a KVM that then fails in syslinux. The
    answer is whichever comes first (bounded by PROBE_TIMEOUT_SECONDS, then TCG).
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
    console_dir.mkdir(parents=True, exist_ok=True)
    log_file = console_dir / f"kvm-probe-{os.getpid()}.log"
    disk = console_dir / f"kvm-probe-{os.getpid()}.img"
    log_file.unlink(missing_ok=True)
    sector = PROBE_SECTOR_CODE.ljust(510, b"\0") + b"\x55\xaa"
    disk.write_bytes(sector.ljust(32 << 10, b"\0"))
    name = f"bootvol-kvm-probe-{os.getpid()}"
    xml = f"""<domain type='kvm'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
      <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
      <devices><disk type='file' device='disk'><driver name='qemu' type='raw'/>
      <source file='{disk}'/><target dev='hda' bus='ide'/></disk>
      <serial type='file'><source path='{log_file}'/><target port='0'/></serial>
      <memballoon model='none'/></devices></domain>"""
    try:
        try:
            domain = libvirt.open(uri).createXML(xml, 0)
        except libvirt.libvirtError:
            return Accel.TCG  # libvirt or QEMU refuses KVM here
        try:
            deadline = time.monotonic() + PROBE_TIMEOUT_SECONDS
            while time.monotonic() < deadline:
                if log_file.exists() and b"V86OK" in log_file.read_bytes():
                    return Accel.KVM
                if domain.state()[0] != libvirt.VIR_DOMAIN_RUNNING:
                    return Accel.TCG  # QEMU stopped it: KVM internal error
                time.sleep(0.05)
            return Accel.TCG
        finally:
            with contextlib.suppress(libvirt.libvirtError):
                domain.destroy()
    finally:
        log_file.unlink(missing_ok=True)
        disk.unlink(missing_ok=True)


def domain_xml(spec: DomainSpec, *, accel: Accel, console_log: Path) -> str:
    """The libvirt domain XML of a server (see the module's contract)."""
    domain = ET.Element("domain", type="kvm" if accel is Accel.KVM else "qemu")
    ET.SubElement(domain, "name").text = f"{DOMAIN_PREFIX}{spec.server_id}"
    ET.SubElement(domain, "uuid").text = str(uuid.UUID(spec.server_id))
    ET.SubElement(domain, "title").text = spec.name
    metadata = ET.SubElement(domain, "metadata")
    ET.SubElement(metadata, f"{{{METADATA_NS}}}server", id=spec.server_id)
    ET.SubElement(domain, "memory", unit="MiB").text = str(spec.ram_mib)
    ET.SubElement(domain, "vcpu").text = str(spec.vcpus)
    os_ = ET.SubElement(domain, "os")
    ET.SubElement(os_, "type", arch="x86_64", machine="pc").text = "hvm"
    ET.SubElement(os_, "boot", dev="hd")
    features = ET.SubElement(domain, "features")
    ET.SubElement(features, "acpi")
    ET.SubElement(features, "apic")
    ET.SubElement(domain, "on_poweroff").text = "destroy"
    ET.SubElement(domain, "on_reboot").text = "restart"
    ET.SubElement(domain, "on_crash").text = "destroy"
    devices = ET.SubElement(domain, "devices")
    devices.append(disk_element(spec.boot_disk, target="vda"))
    serial = ET.SubElement(devices, "serial", type="file")
    ET.SubElement(serial, "source", path=str(console_log), append="on")
    ET.SubElement(serial, "target", port="0")
    ET.SubElement(devices, "memballoon", model="none")
    ET.register_namespace("bootvol", METADATA_NS)
    return ET.tostring(domain, encoding="unicode")


def disk_element(disk: Disk, *, target: str) -> ET.Element:
    element = ET.Element("disk", type="file", device="disk")
    # cache=none: the volume file is on a FlexVol other hosts may read (NFS); no host cache.
    ET.SubElement(element, "driver", name="qemu", type=disk.file_format, cache="none")
    ET.SubElement(element, "source", file=str(disk.file))
    ET.SubElement(element, "target", dev=target, bus="virtio")
    ET.SubElement(element, "serial").text = disk.serial
    return element


def _error(what: str, exc: Any) -> HypervisorError:
    return HypervisorError(f"{what} failed: {exc.get_error_message()}")
