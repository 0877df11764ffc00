"""The hypervisor layer alone, on the real libvirt and QEMU (TCG): no database, no service.

Each test boots the guest that scripts/guest-image builds from a volume file of its own,
with a fresh volume id as the disk's serial. The guest's console protocol (the script's
header documents it) is what the tests read:

    bootvol-guest serial=<vda's serial> sha256=<of /etc/guest-payload>   at every boot,
                                                   once it listens for the power button
    bootvol-guest disk=<name> serial=<serial>      a disk appeared (hot-plugged)
    bootvol-guest gone=<name>                      a disk went away

Every wait ends on a condition (a console line, a libvirt state), bounded by TIMEOUT.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bootvol.bench.guest import complete_lines
from bootvol.compute import kvm_probe
from bootvol.compute.domain import (
    METADATA_NS,
    Accel,
    Disk,
    DiskFormat,
    DomainMark,
    DomainSpec,
    attached_disks,
    domain_xml,
    next_target,
    read_mark,
)
from bootvol.compute.hypervisor import Hypervisor, PowerState
from bootvol.errors import HypervisorError
from bootvol.storage import qemu_img

from ..support import reachable_by_qemu, require_libvirt

TIMEOUT = 120.0  # a bound for hangs, not a timing assertion: the guest boots in seconds
# virtio-blk carries 20 bytes of serial (VIRTIO_BLK_ID_BYTES): the guest sees the id's first 20.
SERIAL_BYTES = 20


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {TIMEOUT:g} s waiting for {what}"
        time.sleep(0.1)


@dataclass
class Host:
    """A Hypervisor on a test folder, and the volumes and servers a test made on it."""

    hypervisor: Hypervisor
    folder: Path
    image: Path
    checksum: str
    servers: list[str] = field(default_factory=list)

    def volume(self, *, file_format: DiskFormat = DiskFormat.RAW) -> Disk:
        """A new boot volume: a copy of the guest image, or a qcow2 overlay on a cached
        copy in the same folder (as bootvol makes one where the filesystem cannot clone)."""
        volume_id = str(uuid.uuid4())
        path = self.folder / f"volume-{volume_id}"
        if file_format is DiskFormat.RAW:
            shutil.copyfile(self.image, path)
            return Disk(file=path, file_format=file_format, serial=volume_id)
        cached = self.folder / "img-cache-guest"
        if not cached.exists():
            shutil.copyfile(self.image, cached)
        backing = ["-b", str(cached), "-F", "raw"]
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", *backing, str(path)], check=True)
        return Disk(file=path, file_format=file_format, serial=volume_id)

    def data_volume(self) -> Disk:
        volume_id = str(uuid.uuid4())
        path = self.folder / f"volume-{volume_id}"
        with path.open("wb") as f:
            f.truncate(8 << 20)
        return Disk(file=path, file_format=DiskFormat.RAW, serial=volume_id)

    def boot(self, disk: Disk | None = None) -> tuple[str, Disk]:
        server_id = str(uuid.uuid4())
        disk = disk or self.volume()
        self.servers.append(server_id)
        self.hypervisor.define_and_start(
            DomainSpec(server_id=server_id, name="test", vcpus=1, ram_mib=256, boot_disk=disk)
        )
        return server_id, disk

    def lines(self, server_id: str, marker: str) -> list[str]:
        console = self.hypervisor.console_output(server_id)
        return [line for line in complete_lines(console) if line.startswith(marker)]

    def boot_lines(self, server_id: str, count: int) -> list[str]:
        """Wait until the guest printed its line ``count`` times (once per boot)."""
        marker = "bootvol-guest serial="
        wait_until(lambda: len(self.lines(server_id, marker)) >= count, f"boot {count}")
        return self.lines(server_id, marker)

    def expected_line(self, disk: Disk) -> str:
        return f"bootvol-guest serial={disk.serial[:SERIAL_BYTES]} sha256={self.checksum}"


@pytest.fixture
def host(guest_image: tuple[Path, str], tmp_path: Path) -> Iterator[Host]:
    require_libvirt()
    image, checksum = guest_image
    folder = tmp_path / "flexvol"
    reachable_by_qemu(folder)  # QEMU runs as libvirt's user
    made = Host(
        hypervisor=Hypervisor(
            uri="qemu:///system", console_dir=tmp_path / "consoles", accel=Accel.TCG
        ),
        folder=folder,
        image=image,
        checksum=checksum,
    )
    yield made
    for server_id in made.servers:
        made.hypervisor.undefine(server_id)


# The domain XML, without libvirt -------------------------------------------------------------
def test_the_domain_xml_holds_the_contract(tmp_path: Path) -> None:
    server_id, volume_id = str(uuid.uuid4()), str(uuid.uuid4())
    disk = Disk(file=tmp_path / "v.qcow2", file_format=DiskFormat.QCOW2, serial=volume_id)
    spec = DomainSpec(server_id=server_id, name="web-1", vcpus=2, ram_mib=512, boot_disk=disk)
    log = tmp_path / "console.log"
    root = ET.fromstring(domain_xml(spec, accel=Accel.TCG, console_log=log))
    assert root.get("type") == "qemu"
    assert root.findtext("name") == f"bootvol-{server_id}"
    assert (root.findtext("uuid"), root.findtext("title")) == (server_id, "web-1")
    assert (root.findtext("vcpu"), root.findtext("memory")) == ("2", "512")
    assert root.find(f"metadata/{{{METADATA_NS}}}server").get("id") == server_id
    assert root.find("features/acpi") is not None
    assert root.findtext("on_poweroff") == "destroy"
    assert root.find("devices/interface") is None  # no network
    (vda,) = root.iterfind("devices/disk")
    assert vda.find("driver").get("type") == "qcow2"
    assert vda.find("source").get("file") == str(disk.file)
    assert (vda.find("target").get("dev"), vda.find("target").get("bus")) == ("vda", "virtio")
    assert vda.findtext("serial") == volume_id
    console = root.find("devices/serial")
    assert console.get("type") == "file"
    assert console.find("source").attrib == {"path": str(log), "append": "on"}
    kvm = ET.fromstring(domain_xml(spec, accel=Accel.KVM, console_log=log))
    assert kvm.get("type") == "kvm"
    # What libvirt returns for the metadata element, and the disks read back.
    mark = read_mark(f'<server xmlns="{METADATA_NS}" id="{server_id}" host="node-1"/>')
    assert mark == DomainMark(server_id=server_id, host="node-1")
    (attached,) = attached_disks(domain_xml(spec, accel=Accel.TCG, console_log=log))
    assert (attached.target, attached.serial, attached.file_format) == ("vda", volume_id, "qcow2")
    assert next_target(["vda"]) == "vdb"
    assert next_target(["vda", "vdb", "vdd"]) == "vdc"
    assert next_target([f"vd{c}" for c in "abcdefghijklmnopqrstuvwxyz"]) is None


# Booting and power -------------------------------------------------------------------------
def test_a_guest_boots_from_its_volume_and_prints_its_serial_and_checksum(host: Host) -> None:
    started = time.perf_counter()
    server_id, disk = host.boot()
    define_and_start = time.perf_counter() - started
    (line,) = host.boot_lines(server_id, 1)
    print(
        f"define+start {define_and_start:.2f} s, console line {time.perf_counter() - started:.1f} s"
    )
    assert line == host.expected_line(disk)
    assert host.hypervisor.state(server_id) is PowerState.RUNNING
    ours = {d.server_id: d.state for d in host.hypervisor.domains()}
    assert ours[server_id] is PowerState.RUNNING
    assert [d.serial for d in host.hypervisor.disks(server_id)] == [disk.serial]


def test_a_qcow2_overlay_volume_boots(host: Host) -> None:
    disk = host.volume(file_format=DiskFormat.QCOW2)
    server_id, _ = host.boot(disk)
    (line,) = host.boot_lines(server_id, 1)
    assert line == host.expected_line(disk)


def test_shutdown_start_and_reboots(host: Host) -> None:
    hypervisor = host.hypervisor
    server_id, disk = host.boot()
    host.boot_lines(server_id, 1)
    assert hypervisor.shutdown(server_id, timeout=TIMEOUT)  # the guest powers off on ACPI
    assert hypervisor.state(server_id) is PowerState.SHUTOFF
    assert hypervisor.shutdown(server_id, timeout=TIMEOUT)  # already off: nothing to do
    hypervisor.start(server_id)
    host.boot_lines(server_id, 2)
    hypervisor.start(server_id)  # already running: left as it is
    hypervisor.reboot(server_id, hard=True)
    host.boot_lines(server_id, 3)
    hypervisor.reboot(server_id, hard=False)  # ACPI: the guest powers off, libvirt resets it
    lines = host.boot_lines(server_id, 4)
    assert set(lines) == {host.expected_line(disk)}  # same volume, same content
    assert hypervisor.state(server_id) is PowerState.RUNNING
    hypervisor.destroy(server_id)
    assert hypervisor.state(server_id) is PowerState.SHUTOFF
    hypervisor.reboot(server_id, hard=True)  # a hard reboot boots a stopped server (Nova)
    host.boot_lines(server_id, 5)


def test_shutdown_presses_again_until_the_guest_hears_it(host: Host) -> None:
    server_id, _ = host.boot()
    # Pressed at once, the first press lands in the firmware or the early kernel, where
    # nothing listens; one of the presses repeated while shutdown waits is heard.
    assert host.hypervisor.shutdown(server_id, timeout=TIMEOUT, retry_seconds=1.0)
    assert host.hypervisor.state(server_id) is PowerState.SHUTOFF


def test_a_guest_that_ignores_the_power_button_is_reported(host: Host) -> None:
    # A boot sector that spins (jmp $): no operating system ever hears the power button.
    spinner = host.folder / "spinner.raw"
    spinner.write_bytes(b"\xeb\xfe".ljust(510, b"\0") + b"\x55\xaa")
    server_id, _ = host.boot(Disk(file=spinner, file_format=DiskFormat.RAW, serial="spin"))
    assert not host.hypervisor.shutdown(server_id, timeout=1.0, retry_seconds=0.3)
    assert host.hypervisor.state(server_id) is PowerState.RUNNING  # the caller may destroy
    host.hypervisor.destroy(server_id)
    assert host.hypervisor.state(server_id) is PowerState.SHUTOFF


def test_a_qemu_killed_from_outside_is_shutoff(host: Host) -> None:
    server_id, _ = host.boot()
    host.boot_lines(server_id, 1)
    pid = int(Path(f"/run/libvirt/qemu/bootvol-{server_id}.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: host.hypervisor.state(server_id) is PowerState.SHUTOFF, "shutoff")
    ours = {d.server_id: d.state for d in host.hypervisor.domains()}
    assert ours[server_id] is PowerState.SHUTOFF  # still defined: adopted as SHUTOFF
    host.hypervisor.start(server_id)
    host.boot_lines(server_id, 2)


def test_a_qemu_img_run_leaves_other_threads_libvirt_connections_working(host: Host) -> None:
    # A volume worker converts images while the compute host's thread holds its libvirt
    # connection; the qemu-img child must not close that connection (a preexec_fn did).
    host.hypervisor.domains()  # this thread's connection, now open
    convert = threading.Thread(
        target=qemu_img.run, args=(["--version"],), kwargs={"limits": qemu_img.INFO_LIMITS}
    )
    convert.start()
    convert.join()
    host.hypervisor.domains()  # the same connection, still working


def test_undefine_leaves_no_domain_and_no_console_log(host: Host) -> None:
    hypervisor = host.hypervisor
    server_id, _ = host.boot()
    host.boot_lines(server_id, 1)
    assert hypervisor.console_log(server_id).exists()
    hypervisor.destroy(server_id)
    hypervisor.undefine(server_id)
    assert hypervisor.state(server_id) is PowerState.MISSING
    assert not hypervisor.console_log(server_id).exists()
    assert server_id not in {d.server_id for d in hypervisor.domains()}
    hypervisor.undefine(server_id)  # nothing left to remove: no error
    hypervisor.destroy(server_id)


# Data disks --------------------------------------------------------------------------------
def test_a_hot_plugged_disk_appears_in_the_guest_and_goes(host: Host) -> None:
    hypervisor = host.hypervisor
    server_id, boot = host.boot()
    host.boot_lines(server_id, 1)
    data = host.data_volume()
    assert hypervisor.attach_disk(server_id, data) == "vdb"
    seen = f"bootvol-guest disk=vdb serial={data.serial[:SERIAL_BYTES]}"
    wait_until(lambda: host.lines(server_id, seen) != [], "the guest to see vdb")
    assert [d.serial for d in hypervisor.disks(server_id)] == [boot.serial, data.serial]
    with pytest.raises(HypervisorError, match="already attached"):
        hypervisor.attach_disk(server_id, data)
    with pytest.raises(HypervisorError, match="boot disk"):
        hypervisor.detach_disk(server_id, boot.serial)
    hypervisor.detach_disk(server_id, data.serial)  # returns once the guest let it go
    wait_until(lambda: host.lines(server_id, "bootvol-guest gone=vdb") != [], "vdb gone")
    assert [d.serial for d in hypervisor.disks(server_id)] == [boot.serial]


def test_a_disk_attached_while_shut_off_is_there_at_the_next_boot(host: Host) -> None:
    hypervisor = host.hypervisor
    server_id, _ = host.boot()
    host.boot_lines(server_id, 1)
    assert hypervisor.shutdown(server_id, timeout=TIMEOUT)
    data = host.data_volume()
    assert hypervisor.attach_disk(server_id, data) == "vdb"  # into the definition only
    hypervisor.start(server_id)
    seen = f"bootvol-guest disk=vdb serial={data.serial[:SERIAL_BYTES]}"
    wait_until(lambda: host.lines(server_id, seen) != [], "the guest to find vdb")
    assert hypervisor.shutdown(server_id, timeout=TIMEOUT)
    hypervisor.detach_disk(server_id, data.serial)
    assert len(hypervisor.disks(server_id)) == 1


# Refusals ----------------------------------------------------------------------------------
def test_a_domain_that_cannot_start_leaves_nothing(host: Host) -> None:
    missing = Disk(file=host.folder / "no-such-volume", file_format="raw", serial="v")
    server_id = str(uuid.uuid4())
    spec = DomainSpec(server_id=server_id, name="t", vcpus=1, ram_mib=256, boot_disk=missing)
    with pytest.raises(HypervisorError, match=f"starting server {server_id} failed: .*no-such"):
        host.hypervisor.define_and_start(spec)
    assert host.hypervisor.state(server_id) is PowerState.MISSING
    assert not host.hypervisor.console_log(server_id).exists()
    for operation in (
        lambda: host.hypervisor.start(server_id),
        lambda: host.hypervisor.reboot(server_id, hard=True),
        lambda: host.hypervisor.attach_disk(server_id, host.data_volume()),
    ):
        with pytest.raises(HypervisorError, match="has no domain on this host"):
            operation()


# Acceleration ------------------------------------------------------------------------------
def test_the_acceleration_probe_answers_once_and_leaves_nothing(tmp_path: Path) -> None:
    require_libvirt()
    uri = "qemu:///system"
    assert kvm_probe.probe_acceleration("tcg", uri=uri, console_dir=tmp_path) is Accel.TCG
    first = kvm_probe.probe_acceleration("auto", uri=uri, console_dir=tmp_path)
    assert first in (Accel.KVM, Accel.TCG)
    if os.access("/dev/kvm", os.R_OK | os.W_OK):
        assert kvm_probe._probed[uri] is first  # kept: the next server does not wait for it
    assert kvm_probe.probe_acceleration("auto", uri=uri, console_dir=tmp_path) is first
    assert list(tmp_path.iterdir()) == []  # the probe's disk and log are gone
    listed = subprocess.run(
        ["virsh", "-c", uri, "list", "--all", "--name"], capture_output=True, text=True, check=True
    )
    assert f"bootvol-kvm-probe-{os.getpid()}" not in listed.stdout
