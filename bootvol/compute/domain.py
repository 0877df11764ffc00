"""A server's libvirt domain, as XML: what bootvol asks libvirt for, and how it finds it again.

Contract (what ``domain_xml`` writes, and what the rest of bootvol may rely on):

* name ``bootvol-<server id>``, ``<uuid>`` = the server id, ``<title>`` = the server's name
  (what ``virsh list --title`` shows an operator);
* ``<metadata>`` holds ``<bootvol:server id="…" host="…"/>`` in the ``METADATA_NS``
  namespace: that element, not the name, marks a domain as bootvol's (``read_mark``), so
  that a restarted bootvol adopts exactly its own domains, and reaps those of its servers
  deleted while it was down (``host`` is the compute host's name);
* the boot volume is the virtio disk ``vda`` whose ``<serial>`` is the volume id, as Nova's
  libvirt driver sets it (the guest reads it in ``/sys/block/vda/serial``; virtio-blk carries
  its first 20 bytes); data volumes hot-plug as ``vdb``, ``vdc``… the same way;
* the serial console (COM1, the guest's ``ttyS0``) is a ``file`` chardev appended to across
  boots; libvirt hands it to virtlogd, so it is readable while the guest runs;
* ACPI on (a shutdown is a power-button press), no network, ``<on_poweroff>destroy``:
  a guest that powers off leaves a defined, shut-off domain;
* domain type ``kvm`` or ``qemu`` (TCG) by the host's acceleration.

This module only writes and reads XML: it imports no libvirt, so it is tested without one.
"""

from __future__ import annotations

import enum
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

METADATA_NS = "https://bootvol.dev/xmlns/server/1"
DOMAIN_PREFIX = "bootvol-"
BOOT_TARGET = "vda"  # the boot volume's device; data volumes come after it
DATA_TARGETS = tuple(f"vd{letter}" for letter in "bcdefghijklmnopqrstuvwxyz")
ET.register_namespace("bootvol", METADATA_NS)


class Accel(enum.StrEnum):
    """How QEMU runs the guest: KVM (hardware) or TCG (QEMU's emulator)."""

    KVM = "kvm"
    TCG = "tcg"


class DiskFormat(enum.StrEnum):
    """The formats a bootvol volume file has (a raw clone or copy, or a qcow2 overlay)."""

    RAW = "raw"
    QCOW2 = "qcow2"


@dataclass(frozen=True)
class Disk:
    """A volume file given to a guest as a virtio disk."""

    file: Path
    file_format: DiskFormat | str  # raw or qcow2 (what the volume record says)
    serial: str  # the volume id


@dataclass(frozen=True)
class AttachedDisk:
    """A disk a domain has: its device name in the guest (``vda``…) and its volume."""

    target: str
    serial: str
    file: Path
    file_format: str

    def as_disk(self) -> Disk:
        return Disk(file=self.file, file_format=self.file_format, serial=self.serial)


@dataclass(frozen=True)
class DomainSpec:
    server_id: str
    name: str  # the server's name, for operators reading virsh
    vcpus: int
    ram_mib: int
    boot_disk: Disk
    host: str = ""  # the compute host that runs it


@dataclass(frozen=True)
class DomainMark:
    """What a domain's bootvol metadata says: whose server it is, on which compute host."""

    server_id: str
    host: str | None


def console_log(console_dir: Path, server_id: str) -> Path:
    """The file a server's serial console is logged to (appended across boots)."""
    return console_dir / f"{server_id}.log"


def read_console(path: Path, *, lines: int | None = None) -> str:
    """A console log as text (its last ``lines`` lines), empty when there is none yet."""
    try:
        text = path.read_bytes().decode(errors="replace").replace("\r\n", "\n")
    except FileNotFoundError:
        return ""
    return text if lines is None else "\n".join(text.splitlines()[-lines:])


def domain_name(server_id: str) -> str:
    return f"{DOMAIN_PREFIX}{server_id}"


def domain_xml(spec: DomainSpec, *, accel: Accel, console_log: Path) -> str:
    """The libvirt domain XML of a server (see the module's contract)."""
    domain = ET.Element("domain", type="kvm" if accel is Accel.KVM else "qemu")
    ET.SubElement(domain, "name").text = domain_name(spec.server_id)
    ET.SubElement(domain, "uuid").text = str(uuid.UUID(spec.server_id))
    ET.SubElement(domain, "title").text = spec.name
    metadata = ET.SubElement(domain, "metadata")
    ET.SubElement(metadata, f"{{{METADATA_NS}}}server", id=spec.server_id, host=spec.host)
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
    devices.append(disk_element(spec.boot_disk, target=BOOT_TARGET))
    serial = ET.SubElement(devices, "serial", type="file")
    ET.SubElement(serial, "source", path=str(console_log), append="on")
    ET.SubElement(serial, "target", port="0")
    ET.SubElement(devices, "memballoon", model="none")
    return ET.tostring(domain, encoding="unicode")


def disk_element(disk: Disk, *, target: str) -> ET.Element:
    element = ET.Element("disk", type="file", device="disk")
    # cache=none: the volume file is on a FlexVol other hosts may read (NFS); no host cache.
    ET.SubElement(element, "driver", name="qemu", type=str(disk.file_format), cache="none")
    ET.SubElement(element, "source", file=str(disk.file))
    ET.SubElement(element, "target", dev=target, bus="virtio")
    ET.SubElement(element, "serial").text = disk.serial
    return element


def disk_xml(disk: Disk, *, target: str) -> str:
    """One ``<disk>`` element, as libvirt's attach and detach calls take it."""
    return ET.tostring(disk_element(disk, target=target), encoding="unicode")


def read_mark(metadata_xml: str) -> DomainMark | None:
    """The server id and host in a domain's bootvol metadata element (libvirt returns the
    element alone, without its namespace), or None when it names no server."""
    element = ET.fromstring(metadata_xml)
    server_id = element.get("id")
    return DomainMark(server_id, element.get("host") or None) if server_id else None


def attached_disks(xml: str) -> list[AttachedDisk]:
    """The virtio disks in a domain's XML, in device order (``vda`` first)."""
    disks = []
    for element in ET.fromstring(xml).iterfind("devices/disk[@device='disk']"):
        target = element.find("target")
        source = element.find("source")
        driver = element.find("driver")
        if target is None or target.get("bus") != "virtio":
            continue
        disks.append(
            AttachedDisk(
                target=target.get("dev", ""),
                serial=element.findtext("serial", default=""),
                file=Path(source.get("file", "")) if source is not None else Path(),
                file_format=driver.get("type", "raw") if driver is not None else "raw",
            )
        )
    return sorted(disks, key=lambda disk: (len(disk.target), disk.target))


def next_target(taken: list[str]) -> str | None:
    """The first free virtio device name after ``vda`` (vdb … vdz), or None when all are
    taken: the ``pc`` machine's PCI bus has about 30 slots, so more could not plug anyway.
    The name is libvirt's; the guest names disks in the order it finds them (as Nova says
    of its device names, a hint), which for bootvol's guest is the same order."""
    return next((target for target in DATA_TARGETS if target not in taken), None)
