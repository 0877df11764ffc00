"""The hypervisor: libvirt domains for servers, through the libvirt-python binding.

Contract (what a caller may rely on):

* One persistent domain per server, written by ``bootvol.compute.domain`` (its docstring
  says what the XML holds): named ``bootvol-<server id>``, the server id as its UUID and in
  its bootvol ``<metadata>``. Domains outlive the process; ``domains`` lists the ones that
  carry bootvol's metadata, so a restarted bootvol adopts exactly its own, and ``virsh
  list`` shows them to an operator.
* The boot volume is the virtio disk ``vda`` whose ``<serial>`` is the volume id;
  ``attach_disk`` hot-plugs a data volume the same way (``vdb``, ``vdc``…), live when the
  domain runs and persistently in its definition either way; ``detach_disk`` unplugs it
  and returns once the guest has let it go (bounded by ``timeout``).
* The serial console is logged to ``<console_dir>/<server id>.log`` (appended across
  boots, through virtlogd); ``console_output`` reads it while the guest runs.
* ``shutdown`` presses the ACPI power button, again every ``retry_seconds`` (a press the
  guest's firmware or early boot takes is lost, as Nova's libvirt driver knows), and waits
  for the domain to stop, bounded by ``timeout``; it returns whether it stopped.
  ``destroy`` pulls the plug. A domain whose QEMU died (killed, crashed) is ``SHUTOFF``.
* ``undefine`` removes the domain and its console log; nothing of the server is left.
* The acceleration (``kvm`` or TCG) is given: ``kvm_probe.probe_acceleration`` finds it.

Every call opens its libvirt connection lazily, one per thread (libvirt's advice).
Errors from libvirt become ``HypervisorError`` saying what failed and libvirt's reason;
an operation on a server that has no domain here is a ``HypervisorError`` too.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bootvol.errors import HypervisorError

try:
    import libvirt
except ImportError as exc:  # a volume-only install: the binding is the `compute` extra
    raise HypervisorError(
        "[compute] enabled = true needs the libvirt binding: pip install 'bootvol[compute]' "
        "(it builds against the system's libvirt: apt-get install libvirt-dev pkg-config)"
    ) from exc

from bootvol.compute.domain import (
    BOOT_TARGET,
    METADATA_NS,
    Accel,
    AttachedDisk,
    Disk,
    DomainSpec,
    attached_disks,
    console_log,
    disk_xml,
    domain_xml,
    next_target,
    read_console,
    read_mark,
)

# libvirt prints every error to stderr by default; ours are raised (and logged) instead.
libvirt.registerErrorHandler(lambda _context, _error: None, None)

POLL_SECONDS = 0.1  # how often a wait re-reads libvirt's state: waits end on a condition
# Nova's libvirt driver presses the power button again every 10 s while it waits.
SHUTDOWN_RETRY_SECONDS = 10.0
DETACH_TIMEOUT_SECONDS = 30.0


class PowerState(enum.StrEnum):
    """A domain's state as bootvol cares about it (Nova's power states)."""

    RUNNING = "running"
    SHUTOFF = "shutoff"  # defined, not running (shut down, crashed, killed)
    PAUSED = "paused"
    MISSING = "missing"  # no such domain


@dataclass(frozen=True)
class Domain:
    """One of bootvol's domains on this host, as ``domains`` finds it (for adoption)."""

    server_id: str
    host: str | None  # the compute host that defined it
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
        return console_log(self._console_dir, server_id)

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
        """Boot a shut-off domain; a running one is left as it is."""
        domain = self._existing(server_id)
        if _power_state(domain) is PowerState.RUNNING:
            return
        try:
            domain.create()
        except libvirt.libvirtError as exc:
            raise _error(f"starting server {server_id}", exc) from exc

    def shutdown(
        self, server_id: str, *, timeout: float, retry_seconds: float = SHUTDOWN_RETRY_SECONDS
    ) -> bool:
        """Press the power button until the guest stops; False if it did not within
        ``timeout`` (the caller may then ``destroy``). A stopped domain is left as it is."""
        domain = self._existing(server_id)
        deadline = time.monotonic() + timeout
        while True:
            if _power_state(domain) is not PowerState.RUNNING:
                return True
            try:
                domain.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
            except libvirt.libvirtError as exc:
                if _power_state(domain) is not PowerState.RUNNING:
                    return True  # it stopped between the two calls
                raise _error(f"shutting down server {server_id}", exc) from exc
            remaining = deadline - time.monotonic()
            if self.wait_for(server_id, PowerState.SHUTOFF, timeout=min(retry_seconds, remaining)):
                return True
            if time.monotonic() >= deadline:
                return False

    def destroy(self, server_id: str) -> None:
        """Stop the domain at once (it stays defined); nothing to do if it is not running."""
        domain = self._domain(server_id)
        if domain is None or _power_state(domain) in (PowerState.SHUTOFF, PowerState.MISSING):
            return
        try:
            domain.destroy()
        except libvirt.libvirtError as exc:
            if _power_state(domain) not in (PowerState.SHUTOFF, PowerState.MISSING):
                raise _error(f"stopping server {server_id}", exc) from exc

    def reboot(self, server_id: str, *, hard: bool) -> None:
        """Soft: an ACPI power-button press that libvirt turns into a reboot once the guest
        has shut down (it resets QEMU instead of letting it exit). Hard: a reset of the
        machine, or a boot when it is shut off (as Nova's hard reboot does)."""
        domain = self._existing(server_id)
        try:
            if hard:
                if _power_state(domain) is PowerState.RUNNING:
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

    # data disks ----------------------------------------------------------------------------
    def disks(self, server_id: str) -> list[AttachedDisk]:
        """The server's virtio disks as its definition holds them (``vda`` first)."""
        domain = self._existing(server_id)
        return attached_disks(_xml(domain, libvirt.VIR_DOMAIN_XML_INACTIVE, server_id))

    def attach_disk(self, server_id: str, disk: Disk, *, target: str | None = None) -> str:
        """Plug ``disk`` into the server: into its definition, and live when it runs (the
        guest sees it at once), as ``target`` or the first free device name. Returns the
        device name (``vdb``…) given to libvirt."""
        domain = self._existing(server_id)
        present = [
            *attached_disks(_xml(domain, 0, server_id)),
            *attached_disks(_xml(domain, libvirt.VIR_DOMAIN_XML_INACTIVE, server_id)),
        ]
        if any(attached.serial == disk.serial for attached in present):
            raise HypervisorError(f"volume {disk.serial} is already attached to {server_id}")
        taken = [attached.target for attached in present]
        if target is None:
            target = next_target(taken)
            if target is None:
                raise HypervisorError(f"server {server_id} has no free disk slot (vdb … vdz)")
        elif target in taken:
            raise HypervisorError(f"server {server_id} already has a disk {target}")
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
        if _is_active(domain):
            flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
        try:
            domain.attachDeviceFlags(disk_xml(disk, target=target), flags)
        except libvirt.libvirtError as exc:
            raise _error(f"attaching volume {disk.serial} to server {server_id}", exc) from exc
        return target

    def detach_disk(
        self, server_id: str, volume_id: str, *, timeout: float = DETACH_TIMEOUT_SECONDS
    ) -> None:
        """Unplug the disk whose serial is ``volume_id``: from the definition, and from the
        running guest, waiting (bounded by ``timeout``) until the guest has released it;
        the volume file may be used elsewhere once this returns. A guest that ignores the
        unplug request keeps the disk: HypervisorError, the definition no longer has it."""
        domain = self._existing(server_id)
        for flags, xml_flags in (
            (libvirt.VIR_DOMAIN_AFFECT_CONFIG, libvirt.VIR_DOMAIN_XML_INACTIVE),
            (libvirt.VIR_DOMAIN_AFFECT_LIVE, 0),
        ):
            if flags == libvirt.VIR_DOMAIN_AFFECT_LIVE and not _is_active(domain):
                continue
            found = _find_disk(_xml(domain, xml_flags, server_id), volume_id)
            if found is None:
                continue
            if found.target == BOOT_TARGET:
                raise HypervisorError(f"volume {volume_id} is server {server_id}'s boot disk")
            try:
                # QEMU asks the guest to release the device (ACPI PCI hot-unplug); libvirt
                # waits a few seconds for it, then returns and lets the unplug finish later.
                domain.detachDeviceFlags(disk_xml(found.as_disk(), target=found.target), flags)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_DEVICE_MISSING:
                    what = f"detaching volume {volume_id} from server {server_id}"
                    raise _error(what, exc) from exc
        if not self._wait(lambda: not self._has_live_disk(domain, volume_id), timeout=timeout):
            raise HypervisorError(
                f"server {server_id}'s guest did not release volume {volume_id} within "
                f"{timeout:g} s; it may not handle PCI hot-unplug (stop the server, then detach)"
            )

    def _has_live_disk(self, domain: libvirt.virDomain, volume_id: str) -> bool:
        if not _is_active(domain):
            return False
        return _find_disk(_xml(domain, 0, domain.UUIDString()), volume_id) is not None

    # reading -------------------------------------------------------------------------------
    def state(self, server_id: str) -> PowerState:
        domain = self._domain(server_id)
        return PowerState.MISSING if domain is None else _power_state(domain)

    def wait_for(self, server_id: str, state: PowerState, *, timeout: float) -> bool:
        """Wait until the domain is in ``state``; False when ``timeout`` passes first."""
        return self._wait(lambda: self.state(server_id) is state, timeout=timeout)

    def domains(self) -> list[Domain]:
        """bootvol's domains on this host: those with bootvol's metadata (for adoption)."""
        try:
            found = self._connection().listAllDomains()
        except libvirt.libvirtError as exc:
            raise _error("listing domains", exc) from exc
        ours = []
        for domain in found:
            try:
                metadata = domain.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS)
            except libvirt.libvirtError as exc:
                # Not ours (no such metadata), or gone since the listing (a transient one).
                if exc.get_error_code() in (
                    libvirt.VIR_ERR_NO_DOMAIN_METADATA,
                    libvirt.VIR_ERR_NO_DOMAIN,
                ):
                    continue
                raise _error(f"reading the metadata of domain {domain.name()}", exc) from exc
            mark = read_mark(metadata)
            state = _power_state(domain)
            if mark is not None and state is not PowerState.MISSING:
                ours.append(Domain(server_id=mark.server_id, host=mark.host, state=state))
        return ours

    def console_output(self, server_id: str, *, lines: int | None = None) -> str:
        """What the guest wrote on its serial console (all boots), ``lines`` last lines."""
        return read_console(self.console_log(server_id), lines=lines)

    @staticmethod
    def _wait(condition: Callable[[], bool], *, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)
        return True


def _power_state(domain: libvirt.virDomain) -> PowerState:
    try:
        state, _reason = domain.state()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return PowerState.MISSING
        raise _error(f"reading the state of domain {domain.name()}", exc) from exc
    if state in (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED):
        return PowerState.RUNNING
    if state in (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PMSUSPENDED):
        return PowerState.PAUSED
    return PowerState.SHUTOFF


def _xml(domain: libvirt.virDomain, flags: int, server_id: str) -> str:
    try:
        return domain.XMLDesc(flags)
    except libvirt.libvirtError as exc:
        raise _error(f"reading the definition of server {server_id}", exc) from exc


def _find_disk(xml: str, volume_id: str) -> AttachedDisk | None:
    return next((d for d in attached_disks(xml) if d.serial == volume_id), None)


def _is_active(domain: libvirt.virDomain) -> bool:
    """Whether the domain has a QEMU process (running or paused): live changes apply."""
    return _power_state(domain) in (PowerState.RUNNING, PowerState.PAUSED)


def _error(what: str, exc: libvirt.libvirtError) -> HypervisorError:
    return HypervisorError(f"{what} failed: {exc.get_error_message()}")
