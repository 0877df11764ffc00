"""Server records and their lifecycle: accept, build, list, show, power actions, delete.

A creation has two halves, as a volume's. ``accept`` validates the request (flavor, boot
source, sizes), checks the project's compute quota, picks a compute host (the scheduler)
and records the server ``BUILD``/``block_device_mapping``, at once; the chosen host's
host (bootvol.compute.host) then makes the boot volume through the volume service's
flowchart, defines and starts the libvirt domain (``spawning``) and ends the server
``ACTIVE``, or ``ERROR`` with a fault. A request no host has room for is recorded ``ERROR``
with Nova's NoValidHost fault (the API still answers 202, as Nova does).

Boot sources (Nova's ``block_device_mapping_v2`` with boot_index 0, or ``imageRef``):

* image → volume: a new volume of ``volume_size`` GiB from the image (what ``openstack server
  create --image IMG --boot-from-volume N`` sends), deleted with the server when
  ``delete_on_termination``;
* volume: an existing available volume (``--volume V``), kept when the server goes unless
  ``delete_on_termination``;
* ``imageRef`` alone: a root volume of the flavor's disk size (or the image's own size when
  the flavor says 0), always deleted with the server.

Who sees what: a project sees its own servers; admins any by id, and every project's in
lists with ``all_projects``.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import case, select, update

from bootvol.caller import OPERATOR, Caller
from bootvol.compute import root_disk
from bootvol.compute.domain import console_log, read_console
from bootvol.compute.flavors import FlavorService
from bootvol.compute.hosts import HostRegistry
from bootvol.compute.quota import ComputeQuota, ComputeUsage
from bootvol.compute.records import BuildRecord
from bootvol.compute.scheduler import Request, choose_host
from bootvol.config import Settings
from bootvol.db.models import (
    FlavorRecord,
    ImageStatus,
    ServerRecord,
    ServerStatus,
    TaskState,
    VolumeStatus,
    utcnow,
)
from bootvol.db.records import Records
from bootvol.db.session import SessionFactory
from bootvol.errors import (
    BootvolError,
    Conflict,
    ImageNotFound,
    InvalidRequest,
    NotFound,
    NoValidHost,
)
from bootvol.images.service import ImageService
from bootvol.volumes.service import VolumeService

log = logging.getLogger(__name__)


class BootSource(enum.StrEnum):
    IMAGE = "image"  # a new volume from the image
    VOLUME = "volume"  # an existing volume


@dataclass(frozen=True)
class BootVolume:
    """The boot entry (boot_index 0) of Nova's ``block_device_mapping_v2``."""

    source: BootSource
    uuid: str
    volume_size_gib: int | None = None
    delete_on_termination: bool = False


@dataclass(frozen=True)
class ServerCreate:
    name: str
    flavor: str  # id, or a unique name
    image: str | None = None  # imageRef: a root volume made from it, deleted with the server
    boot_volume: BootVolume | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ServerQuery:
    """Nova's list filters that bootvol honours, and one page."""

    name: str | None = None  # a regular expression in Nova; a substring here
    status: ServerStatus | None = None
    host: str | None = None
    all_projects: bool = False
    project_id: str | None = None
    limit: int | None = None
    marker: str | None = None


@dataclass(frozen=True)
class Fault:
    code: int
    message: str


class ServerService:
    def __init__(
        self,
        *,
        sessions: SessionFactory,
        settings: Settings,
        images: ImageService,
        volumes: VolumeService,
        flavors: FlavorService,
        hosts: HostRegistry,
    ) -> None:
        self._sessions = sessions
        self._records = Records(sessions, ServerRecord, kind="server")
        self.quota = ComputeQuota(sessions)  # the API shows and sets limits through it
        self.settings = settings
        self.images = images
        self.volumes = volumes
        self.flavors = flavors
        self.hosts = hosts
        self._console_dir = settings.console_dir
        # Called with the host's name after each accepted server: that host's builder wakes.
        self.on_accept: list[Callable[[str], None]] = []

    # creation ------------------------------------------------------------------------------
    def accept(self, request: ServerCreate, *, caller: Caller) -> ServerRecord:
        """Validate, check quota, schedule and record the server ``BUILD``; return at once."""
        if not request.name or len(request.name) > 255:
            raise InvalidRequest("a server name is 1 to 255 characters")
        flavor = self._flavor(request.flavor)
        record = ServerRecord(
            id=str(uuid.uuid4()),
            name=request.name,
            project_id=caller.project_id,
            user_id=caller.user_id,
            status=ServerStatus.BUILD,
            task_state=TaskState.BLOCK_DEVICE_MAPPING,
            flavor_id=flavor.id,
            flavor_name=flavor.name,
            vcpus=flavor.vcpus,
            ram_mib=flavor.ram_mib,
            disk_gib=flavor.disk_gib,
            user_metadata=dict(request.metadata),
        )
        self._boot_source(request, flavor, record, caller=caller)
        try:
            host = choose_host(
                self.hosts.list(),
                Request(vcpus=flavor.vcpus, ram_mib=flavor.ram_mib),
                cpu_allocation_ratio=self.settings.compute.cpu_allocation_ratio,
                ram_allocation_ratio=self.settings.compute.ram_allocation_ratio,
            )
        except NoValidHost as exc:
            # Nova accepts the request and the server ends ERROR with the scheduler's fault.
            _set_fault(record, Fault(code=500, message=exc.message))
            record.status, record.task_state = ServerStatus.ERROR, None
        else:
            record.host = host.name
        with self.quota.room_for(
            record.project_id, cores=flavor.vcpus, ram_mib=flavor.ram_mib
        ) as session:
            session.add(record)
        log.info(
            "server %s accepted: flavor %s, %s, host %s",
            record.id,
            flavor.name,
            f"image {record.image_id}" if record.image_id else f"volume {record.root_volume_id}",
            record.host or f"none ({record.fault_message})",
        )
        if record.host is not None:
            for listener in self.on_accept:
                listener(record.host)
        return record

    def _flavor(self, ref: str) -> FlavorRecord:
        try:
            return self.flavors.get(ref)
        except NotFound:
            raise InvalidRequest(f"Flavor {ref} could not be found.") from None

    def _boot_source(
        self, request: ServerCreate, flavor: FlavorRecord, record: ServerRecord, *, caller: Caller
    ) -> None:
        """Check the boot source and record it (image and size, or the existing volume)."""
        boot = request.boot_volume
        if boot is None and request.image is None:
            raise InvalidRequest("Block Device Mapping is Invalid: boot from an image or a volume")
        if boot is not None and boot.source is BootSource.VOLUME:
            volume = self.volumes.get(boot.uuid, caller=caller)
            if volume.status != VolumeStatus.AVAILABLE:
                raise InvalidRequest(
                    f"Block Device Mapping is Invalid: volume {volume.id} is {volume.status}; "
                    "only an available volume boots a server"
                )
            record.root_volume_id = volume.id
            record.root_volume_size_gib = volume.size_gib
            record.image_id = None
            record.delete_on_termination = boot.delete_on_termination
            return
        image_ref = boot.uuid if boot is not None else request.image
        try:
            image = self.images.get(image_ref or "", caller=caller)
        except ImageNotFound:
            # Nova: an image the request names but nobody can see is a bad request (400).
            raise InvalidRequest(f"Image {image_ref} could not be found.") from None
        if image.status != ImageStatus.ACTIVE:
            raise InvalidRequest(f"Image {image.id} is not active.")
        if boot is not None:
            size_gib = boot.volume_size_gib or flavor.disk_gib or root_disk.needed_gib(image)
            record.delete_on_termination = boot.delete_on_termination
            root_disk.check_volume_holds(image, size_gib=size_gib)
        else:
            size_gib = flavor.disk_gib or root_disk.needed_gib(image)
            record.delete_on_termination = True  # a root disk made for the server goes with it
            if flavor.disk_gib:  # 0: the image's own size (Nova: "don't check")
                root_disk.check_flavor_holds(image, disk_gib=flavor.disk_gib)
        record.image_id = image.id
        record.root_volume_size_gib = max(size_gib, 1)

    # reading -------------------------------------------------------------------------------
    def get(self, ref: str, *, caller: Caller = OPERATOR) -> ServerRecord:
        """A server by id, or (for the operator) by name when the name is unique."""
        if caller.is_operator:
            return self._records.get(ref)
        record = self._records.get_by_id(ref)
        if record is None or not (caller.sees_everything or record.project_id == caller.project_id):
            raise NotFound(f"Instance {ref} could not be found.")
        return record

    def query(self, query: ServerQuery, *, caller: Caller) -> list[ServerRecord]:
        statement = select(ServerRecord).order_by(
            ServerRecord.created_at.desc(), ServerRecord.id.desc()
        )
        if not (caller.sees_everything and query.all_projects) and not caller.is_operator:
            statement = statement.where(ServerRecord.project_id == caller.project_id)
        elif query.project_id is not None:
            statement = statement.where(ServerRecord.project_id == query.project_id)
        if query.status is not None:
            statement = statement.where(ServerRecord.status == query.status)
        if query.host is not None:
            statement = statement.where(ServerRecord.host == query.host)
        if query.name is not None:
            statement = statement.where(ServerRecord.name.contains(query.name))
        with self._sessions() as session:
            servers = list(session.scalars(statement))
        if query.marker is not None:
            ids = [s.id for s in servers]
            if query.marker not in ids:
                raise InvalidRequest(f"marker [{query.marker}] not found")
            servers = servers[ids.index(query.marker) + 1 :]
        return servers if query.limit is None else servers[: query.limit]

    def usage(self, project_id: str) -> ComputeUsage:
        return self.quota.usage(project_id)

    # changes -------------------------------------------------------------------------------
    def set_state(
        self,
        server_id: str,
        *,
        status: ServerStatus,
        task_state: TaskState | None,
        fault: Fault | None = None,
        **fields: object,
    ) -> ServerRecord:
        """Record a step of the server's life (used by its host's builder and power sync)."""
        changes: dict[str, object] = {"status": status, "task_state": task_state, **fields}
        if fault is not None:
            changes.update(fault_code=fault.code, fault_message=fault.message, fault_at=utcnow())
        return self._records.update(server_id, **changes)

    def begin_task(
        self, ref: str, *, task: TaskState, allowed: tuple[ServerStatus, ...], caller: Caller
    ) -> ServerRecord:
        """Start a power action on a server in one of ``allowed`` (else 409, as Nova)."""
        record = self.get(ref, caller=caller)
        if record.status not in allowed or record.task_state is not None:
            raise Conflict(
                f"Cannot '{_ACTION_NAMES[task]}' instance {record.id} while it is in "
                f"vm_state {vm_state(record)}"
                + (f" and task_state {record.task_state}" if record.task_state else "")
            )
        # Nova shows a rebooting server as REBOOT or HARD_REBOOT at once (clients wait on it).
        status = {
            TaskState.REBOOTING: ServerStatus.REBOOT,
            TaskState.REBOOTING_HARD: ServerStatus.HARD_REBOOT,
        }.get(task, record.status)
        return self._records.update(record.id, task_state=task, status=status)

    def finish_build(self, server_id: str, *, build: BuildRecord) -> None:
        """``ACTIVE``, unless a task (a delete) arrived while the server was being built."""
        with self._sessions.begin() as session:
            session.execute(
                update(ServerRecord)
                .where(ServerRecord.id == server_id)
                .values(
                    status=ServerStatus.ACTIVE,
                    launched_at=utcnow(),
                    build=build,
                    task_state=case(
                        (ServerRecord.task_state == TaskState.SPAWNING, None),
                        else_=ServerRecord.task_state,
                    ),
                )
                .execution_options(synchronize_session=False)
            )

    def record_build(self, server_id: str, build: BuildRecord) -> None:
        self._records.update(server_id, build=build)

    def on_host(self, host: str) -> list[ServerRecord]:
        with self._sessions() as session:
            return list(session.scalars(select(ServerRecord).where(ServerRecord.host == host)))

    def get_by_id(self, server_id: str) -> ServerRecord | None:
        return self._records.get_by_id(server_id)

    def request_delete(self, ref: str, *, caller: Caller) -> ServerRecord:
        """Delete a server: through its host, whatever it is doing (Nova deletes building
        servers too); at once when no host runs it (it failed before one did) or its host
        is down (Nova's local delete: the host removes the domain when it is back)."""
        record = self.get(ref, caller=caller)
        if record.host is None:
            self.release_volumes(record)
            self._records.delete(record.id)
            return record
        if not self.hosts.is_up(record.host):
            # Its domain may still run on that host: the volumes stay attached (in-use)
            # until the host, back, removes the domain and lets them go (ComputeHost._reap).
            self._records.delete(record.id)
            log.info("server %s deleted here (host %s is not up)", record.id, record.host)
            return record
        updated = self._records.update(record.id, task_state=TaskState.DELETING)
        self.wake_host(updated)
        return updated

    def release_volumes(self, server: ServerRecord) -> None:
        """Detach every volume of the server; delete those it owns: the attachments marked
        ``delete_on_termination``, and a boot volume it made from its image even when the
        build failed before attaching it."""
        owned = []
        if server.image_id is not None and server.delete_on_termination:
            owned.extend(filter(None, [server.root_volume_id]))
        self.release_attachments(server.id, owned=owned)

    def release_attachments(self, server_id: str, *, owned: list[str] | None = None) -> None:
        """Detach every volume attached to the server; delete those in ``owned`` and those
        attached with ``delete_on_termination`` (all the record a deleted server leaves)."""
        attachments = self.volumes.attachments
        owned = list(owned or [])
        for attachment in attachments.of_server(server_id):
            attachments.remove(attachment.id)
            if attachment.delete_on_termination and attachment.volume_id not in owned:
                owned.append(attachment.volume_id)
        for volume_id in owned:
            try:
                self.volumes.delete(volume_id)
            except NotFound:
                pass
            except BootvolError as exc:
                log.warning("server %s: volume %s stays: %s", server_id, volume_id, exc.message)

    def wake_host(self, record: ServerRecord) -> None:
        """Tell the server's host (when it runs in this process) that it has work."""
        if record.host is not None:
            for listener in self.on_accept:
                listener(record.host)

    def console_output(self, ref: str, *, caller: Caller, lines: int | None = None) -> str:
        """The server's serial console so far (its last ``lines`` lines). The log is on the
        host that runs it, under ``[compute] console_dir``: read here, on one node."""
        record = self.get(ref, caller=caller)
        return read_console(console_log(self._console_dir, record.id), lines=lines)

    def forget(self, server_id: str) -> None:
        self._records.delete(server_id)


_ACTION_NAMES = {
    TaskState.POWERING_OFF: "stop",
    TaskState.POWERING_ON: "start",
    TaskState.REBOOTING: "reboot",
    TaskState.REBOOTING_HARD: "reboot",
    TaskState.DELETING: "delete",
}


def vm_state(record: ServerRecord) -> str:
    """Nova's ``OS-EXT-STS:vm_state`` for a status."""
    return {
        ServerStatus.BUILD: "building",
        ServerStatus.ACTIVE: "active",
        ServerStatus.SHUTOFF: "stopped",
        ServerStatus.REBOOT: "active",
        ServerStatus.HARD_REBOOT: "active",
        ServerStatus.ERROR: "error",
    }[record.status]


def _set_fault(record: ServerRecord, fault: Fault) -> None:
    record.fault_code, record.fault_message, record.fault_at = fault.code, fault.message, utcnow()
