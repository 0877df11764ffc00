"""A compute host: the process that builds, powers and removes the servers placed on it.

Requests reach the host through the database, as Nova's reach a compute service through
its queue: the API records a server ``BUILD`` on a host, or sets a task (``powering-off``,
``powering-on``, ``rebooting``, ``rebooting_hard``, ``deleting``) on one; the host's loop
finds them (woken at once by an acceptance in the same process, else within
``poll_seconds``), carries them out with the hypervisor and records the outcome.

Building a server (Nova's ``block_device_mapping`` then ``spawning``):

1. the boot volume: made from the image by the volume service's flowchart (claimed by this
   process, so no volume worker takes it), or the existing volume named by the request;
2. the domain: defined and started with the volume as its virtio disk ``vda``;
3. ``ACTIVE``; the time to the guest's first console line is added to the build record when
   it appears.

Reversion strategy: a build that fails ends the server ``ERROR`` with a fault and leaves no
domain; a volume it made is deleted when the server would delete it (``delete_on_termination``),
else left ``available`` for the user.

A server deleted while its host was down is deleted by the API alone (Nova's local delete);
the host removes its domain when it starts again.

Restarts: domains outlive the process. On start the host registers itself, adopts the
domains of its servers and syncs their power states (a domain that died meanwhile is
``SHUTOFF``); a server this host was building when it died ends ``ERROR`` (Nova does the
same with instances left ``BUILD`` by a compute service that restarts). Power states are
synced again every ``poll_seconds``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bootvol.caller import Caller
from bootvol.compute.domain import BOOT_TARGET, Disk, DomainSpec
from bootvol.compute.hypervisor import Hypervisor, PowerState
from bootvol.compute.kvm_probe import probe_acceleration
from bootvol.compute.records import BuildRecord
from bootvol.compute.service import Fault, ServerService
from bootvol.config import ComputeSettings
from bootvol.db.models import (
    AttachStatus,
    ServerRecord,
    ServerStatus,
    TaskState,
    VolumeAttachmentRecord,
    VolumeRecord,
    VolumeStatus,
    as_utc,
    utcnow,
)
from bootvol.errors import BootvolError
from bootvol.volumes.claims import this_process
from bootvol.volumes.records import ProvisioningRecord
from bootvol.volumes.service import VolumeCreate

log = logging.getLogger(__name__)

GUEST_LINE_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class Resources:
    vcpus: int
    ram_mib: int


def machine_resources() -> Resources:
    ram_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return Resources(vcpus=os.cpu_count() or 1, ram_mib=ram_kib // 1024)


class ComputeHost:
    def __init__(
        self,
        *,
        servers: ServerService,
        hypervisor: Hypervisor,
        settings: ComputeSettings,
    ) -> None:
        self._servers = servers
        self._volumes = servers.volumes
        self._attachments = servers.volumes.attachments
        self._hypervisor = hypervisor
        self._settings = settings
        self.name = settings.host_name or socket.gethostname()
        self._stop = threading.Event()
        self._wakeup = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="compute-host", daemon=True)
        self._heartbeat = threading.Thread(target=self._beat, name="compute-beat", daemon=True)

    @property
    def hypervisor(self) -> Hypervisor:
        return self._hypervisor

    # process lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        machine = machine_resources()
        self._servers.hosts.register(
            self.name,
            vcpus=self._settings.vcpus or machine.vcpus,
            ram_mib=self._settings.ram_mib or machine.ram_mib,
            accel=str(self._hypervisor.accel),
        )
        self._recover()
        self._servers.on_accept.append(self._accepted)
        self._thread.start()
        self._heartbeat.start()
        log.info("compute host %s: running servers (%s)", self.name, self._hypervisor.accel)

    def stop(self) -> None:
        """Stop taking work; the domains keep running (they are adopted at the next start)."""
        self._stop.set()
        self._wakeup.set()
        if self._accepted in self._servers.on_accept:
            self._servers.on_accept.remove(self._accepted)
        self._thread.join(60)
        self._heartbeat.join(60)

    def _accepted(self, host: str) -> None:
        if host == self.name:
            self._wakeup.set()

    def _recover(self) -> None:
        for server in self._mine():
            if server.status == ServerStatus.BUILD:
                self._fail(
                    server,
                    "the compute host restarted while building this server; delete it and "
                    "create it again",
                )
        self._reap()
        self.sync_power_states()

    def _reap(self) -> None:
        """Remove this host's domains whose servers were deleted while it was down or slow
        (Nova's local delete leaves them; its ``running_deleted_instance_action = reap``),
        then let go of their volumes: only now does no guest use them."""
        for domain in self._hypervisor.domains():
            if domain.host == self.name and self._servers.get_by_id(domain.server_id) is None:
                log.warning("domain of deleted server %s: removed", domain.server_id)
                self._hypervisor.undefine(domain.server_id)
                self._servers.release_attachments(domain.server_id)

    # the loop ------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                servers = self._mine()
                for server in servers:
                    self._handle(server)
                self._plug_pending(servers)
                self._reap()
                self.sync_power_states()
            except Exception:  # the database or libvirt hiccuped: log, try again
                log.exception("compute host %s: a round of work failed", self.name)
            self._wakeup.wait(self._settings.poll_seconds)
            self._wakeup.clear()

    def _beat(self) -> None:
        # Its own thread: a long build (a large download) must not make the host look down.
        while not self._stop.wait(self._settings.heartbeat_seconds):
            try:
                self._servers.hosts.heartbeat(self.name)
            except Exception:
                log.exception("compute host %s: heartbeat failed", self.name)

    def _mine(self) -> list[ServerRecord]:
        return self._servers.on_host(self.name)

    def _handle(self, server: ServerRecord) -> None:
        if server.task_state == TaskState.DELETING:
            self.delete(server)
        elif server.status == ServerStatus.BUILD:
            self.build(server)
        elif server.task_state is not None:
            try:
                self._power(server)
            except BootvolError as exc:
                # Nova keeps the vm_state, clears the task and records a fault.
                log.error("server %s: %s failed: %s", server.id, server.task_state, exc.message)
                rebooting = server.status in (ServerStatus.REBOOT, ServerStatus.HARD_REBOOT)
                self._servers.set_state(
                    server.id,
                    status=ServerStatus.ACTIVE if rebooting else server.status,
                    task_state=None,
                    fault=Fault(code=500, message=exc.message),
                )

    def _power(self, server: ServerRecord) -> None:
        if server.task_state == TaskState.POWERING_OFF:
            timeout = self._settings.shutdown_timeout_seconds
            if not self._hypervisor.shutdown(server.id, timeout=timeout):
                self._hypervisor.destroy(server.id)  # Nova too pulls the plug after its wait
            self._servers.set_state(server.id, status=ServerStatus.SHUTOFF, task_state=None)
        elif server.task_state == TaskState.POWERING_ON:
            self._hypervisor.start(server.id)
            self._servers.set_state(server.id, status=ServerStatus.ACTIVE, task_state=None)
        elif server.task_state in (TaskState.REBOOTING, TaskState.REBOOTING_HARD):
            hard = server.task_state == TaskState.REBOOTING_HARD
            self._hypervisor.reboot(server.id, hard=hard)
            self._servers.set_state(server.id, status=ServerStatus.ACTIVE, task_state=None)

    # building ------------------------------------------------------------------------------
    def build(self, server: ServerRecord) -> None:
        try:
            volume_id, provisioning = self._boot_volume(server)
            self._attachments.reserve(
                volume_id,
                server_id=server.id,
                status=AttachStatus.ATTACHED,
                device=f"/dev/{BOOT_TARGET}",
                host=self.name,
                delete_on_termination=server.delete_on_termination,
            )
            volume = self._volumes.get(volume_id)
            self._servers.set_state(
                server.id, status=ServerStatus.BUILD, task_state=TaskState.SPAWNING
            )
            spawn_started = time.perf_counter()
            self._hypervisor.define_and_start(
                DomainSpec(
                    server_id=server.id,
                    name=server.name,
                    vcpus=server.vcpus,
                    ram_mib=server.ram_mib,
                    host=self.name,
                    boot_disk=_disk(volume),
                )
            )
            domain_start_s = round(time.perf_counter() - spawn_started, 6)
        except BootvolError as exc:
            self._fail(server, exc.message)
            return
        build = BuildRecord(
            volume=provisioning,
            domain_start_s=domain_start_s,
            request_to_active_s=_since(server.created_at),
        )
        self._servers.finish_build(server.id, build=build)
        log.info("server %s active on %s: %s", server.id, self.name, build)
        threading.Thread(
            target=self._await_guest_line,
            args=(server, build),
            name=f"guest-line-{server.id[:8]}",
            daemon=True,
        ).start()

    def _boot_volume(self, server: ServerRecord) -> tuple[str, ProvisioningRecord | None]:
        """The boot volume's id (made now from the image, or the one the request named), and
        its provisioning record when it was made now."""
        if server.root_volume_id is not None and server.image_id is None:
            return server.root_volume_id, None
        caller = Caller(project_id=server.project_id, user_id=server.user_id)
        accepted = self._volumes.accept(
            VolumeCreate(
                image=server.image_id,
                size_gib=server.root_volume_size_gib,
                name=f"{server.name}-boot",
            ),
            caller=caller,
            claimant=this_process(),
        )
        self._servers.set_state(
            server.id,
            status=ServerStatus.BUILD,
            task_state=TaskState.BLOCK_DEVICE_MAPPING,
            root_volume_id=accepted.id,
        )
        volume = self._volumes.provisioner.provision(accepted.id, accepted=accepted)
        if volume.status != VolumeStatus.AVAILABLE:
            raise BootvolError(
                f"Build of instance {server.id} aborted: volume {volume.id} did not finish "
                f"being created: {volume.message}"
            )
        return volume.id, volume.provisioning

    def _await_guest_line(self, server: ServerRecord, build: BuildRecord) -> None:
        """Add the time from the request to the guest's first console line to the build
        record (any line the guest prints; bootvol's guest image prints "bootvol-guest")."""
        deadline = time.monotonic() + GUEST_LINE_TIMEOUT_SECONDS
        while time.monotonic() < deadline and not self._stop.is_set():
            if "bootvol-guest" in self._hypervisor.console_output(server.id):
                done = dataclasses.replace(build, guest_line_s=_since(server.created_at))
                self._servers.record_build(server.id, done)
                return
            time.sleep(0.05)

    def _fail(self, server: ServerRecord, message: str) -> None:
        """End a build in ERROR: no domain; the volumes it took let go of (and deleted when
        the server would delete them)."""
        log.error("server %s failed: %s", server.id, message)
        self._hypervisor.undefine(server.id)
        current = self._servers.get_by_id(server.id)
        if current is None:
            return
        if current.task_state == TaskState.DELETING:
            self.delete(current)  # deleted while it was being built: nothing to show ERROR
            return
        self._servers.release_volumes(current)
        self._servers.set_state(
            server.id,
            status=ServerStatus.ERROR,
            task_state=None,
            fault=Fault(code=500, message=message),
        )

    # removing ------------------------------------------------------------------------------
    def delete(self, server: ServerRecord) -> None:
        self._hypervisor.undefine(server.id)
        self._servers.release_volumes(server)
        self._servers.forget(server.id)
        log.info("server %s deleted", server.id)

    # data volumes --------------------------------------------------------------------------
    def _plug_pending(self, servers: list[ServerRecord]) -> None:
        """Carry out the hot-plugs and unplugs the API asked for on these servers. Each is
        idempotent: one interrupted by a restart is finished by the next round."""
        by_id = {server.id: server for server in servers}
        for attachment in self._attachments.pending(by_id):
            server = by_id[attachment.server_id or ""]
            if server.status == ServerStatus.BUILD or server.task_state is not None:
                continue  # after the build or the power action
            if attachment.status == AttachStatus.ATTACHING:
                self._plug(server, attachment)
            else:
                self._unplug(server, attachment)

    def _plug(self, server: ServerRecord, attachment: VolumeAttachmentRecord) -> None:
        try:
            volume = self._volumes.get(attachment.volume_id)
            plugged = {disk.serial for disk in self._hypervisor.disks(server.id)}
            target = (attachment.device or "").removeprefix("/dev/") or None
            if volume.id not in plugged:
                self._hypervisor.attach_disk(server.id, _disk(volume), target=target)
            self._attachments.complete(attachment.id, host=self.name)
        except BootvolError as exc:
            # Nova too gives the volume back when the hypervisor refuses it.
            log.error(
                "server %s: attaching volume %s failed: %s",
                server.id,
                attachment.volume_id,
                exc.message,
            )
            self._attachments.remove(attachment.id)
            return
        log.info("server %s: volume %s attached as %s", server.id, volume.id, attachment.device)

    def _unplug(self, server: ServerRecord, attachment: VolumeAttachmentRecord) -> None:
        try:
            # A server whose domain vanished (SHUTOFF by the power sync) holds no disk.
            if self._hypervisor.state(server.id) is not PowerState.MISSING:
                self._hypervisor.detach_disk(server.id, attachment.volume_id)
        except BootvolError as exc:
            log.error(
                "server %s: detaching volume %s failed: %s",
                server.id,
                attachment.volume_id,
                exc.message,
            )
            self._attachments.roll_detaching(attachment.id)
            return
        self._attachments.remove(attachment.id)

    # power states --------------------------------------------------------------------------
    def sync_power_states(self) -> None:
        """A domain that stopped or vanished behind our back shows its server ``SHUTOFF``."""
        for server in self._mine():
            if server.status != ServerStatus.ACTIVE or server.task_state is not None:
                continue
            state = self._hypervisor.state(server.id)
            if state in (PowerState.SHUTOFF, PowerState.MISSING):
                log.warning("server %s: its domain is %s; now SHUTOFF", server.id, state)
                self._servers.set_state(server.id, status=ServerStatus.SHUTOFF, task_state=None)


def open_compute_host(
    servers: ServerService, *, compute: ComputeSettings, console_dir: Path
) -> ComputeHost:
    """A compute host on the acceleration ``compute.accel`` gives (probed for ``auto``)."""
    accel = probe_acceleration(compute.accel, uri=compute.libvirt_uri, console_dir=console_dir)
    hypervisor = Hypervisor(uri=compute.libvirt_uri, console_dir=console_dir, accel=accel)
    return ComputeHost(servers=servers, hypervisor=hypervisor, settings=compute)


def _disk(volume: VolumeRecord) -> Disk:
    """A volume's file as a guest disk whose serial is the volume id."""
    return Disk(file=Path(volume.file or ""), file_format=str(volume.file_format), serial=volume.id)


def _since(moment: dt.datetime) -> float:
    """Seconds from a stored time (the server's request) until now."""
    return round((utcnow() - as_utc(moment)).total_seconds(), 6)
