"""Data volumes on servers: Nova's ``os-volume_attachments`` (list, show, attach, detach).

An attach reserves the volume for the server at once (the volume ``attaching``, its device
name chosen here: the first free ``/dev/vdb`` … ``/dev/vdz``, which the guest sees in the
same order) and returns; the server's compute host then hot-plugs it and completes the
attachment (``in-use``), or gives it back (``available``) when libvirt refuses it. A
detach marks the attachment ``detaching``; the host unplugs the disk, waits until the
guest has let it go, and the volume is ``available``. As in Nova, neither changes the
server's status, both need a server without a task, and the boot volume stays.
"""

from __future__ import annotations

from bootvol.caller import Caller
from bootvol.compute.domain import BOOT_TARGET, next_target
from bootvol.compute.service import ServerService, vm_state
from bootvol.db.models import (
    AttachStatus,
    ServerRecord,
    ServerStatus,
    VolumeAttachmentRecord,
    VolumeStatus,
)
from bootvol.errors import Conflict, InvalidRequest, NotFound

# Nova attaches and detaches volumes on servers in these states (and no task under way).
_PLUGGABLE = (ServerStatus.ACTIVE, ServerStatus.SHUTOFF)


class ServerVolumes:
    def __init__(self, servers: ServerService) -> None:
        self._servers = servers
        self._volumes = servers.volumes
        self._attachments = servers.volumes.attachments

    def list(self, server_ref: str, *, caller: Caller) -> list[VolumeAttachmentRecord]:
        server = self._servers.get(server_ref, caller=caller)
        return self._attachments.of_server(server.id)

    def get(self, server_ref: str, volume_id: str, *, caller: Caller) -> VolumeAttachmentRecord:
        server = self._servers.get(server_ref, caller=caller)
        return self._find(server, volume_id)

    def attach(
        self,
        server_ref: str,
        volume_ref: str,
        *,
        caller: Caller,
        delete_on_termination: bool = False,
    ) -> VolumeAttachmentRecord:
        server = self._servers.get(server_ref, caller=caller)
        self._check_idle(server, "attach_volume")
        volume = self._volumes.get(volume_ref, caller=caller)
        if volume.status != VolumeStatus.AVAILABLE:
            raise InvalidRequest(
                f"Invalid volume: volume {volume.id} is {volume.status}; only an available "
                "volume can be attached"
            )
        taken = [
            (attachment.device or "").removeprefix("/dev/")
            for attachment in self._attachments.of_server(server.id)
        ]
        target = next_target([BOOT_TARGET, *taken])
        if target is None:
            raise InvalidRequest(f"server {server.id} has no free device name (vdb … vdz)")
        attachment = self._attachments.reserve(
            volume.id,
            server_id=server.id,
            status=AttachStatus.ATTACHING,
            device=f"/dev/{target}",
            host=server.host,
            delete_on_termination=delete_on_termination,
        )
        self._servers.wake_host(server)
        return attachment

    def detach(self, server_ref: str, volume_id: str, *, caller: Caller) -> None:
        server = self._servers.get(server_ref, caller=caller)
        self._check_idle(server, "detach_volume")
        attachment = self._find(server, volume_id)
        if attachment.device == f"/dev/{BOOT_TARGET}" or volume_id == server.root_volume_id:
            raise InvalidRequest("Can't detach root device volume")
        if attachment.status != AttachStatus.ATTACHED:
            raise InvalidRequest(
                f"Invalid volume: volume {volume_id} is {attachment.status} on server "
                f"{server.id}; wait until it is attached"
            )
        self._attachments.begin_detaching(attachment.id)
        self._servers.wake_host(server)

    def _find(self, server: ServerRecord, volume_id: str) -> VolumeAttachmentRecord:
        for attachment in self._attachments.of_server(server.id):
            if attachment.volume_id == volume_id:
                return attachment
        raise NotFound(f"volume_id not found: {volume_id}")

    @staticmethod
    def _check_idle(server: ServerRecord, action: str) -> None:
        if server.status not in _PLUGGABLE or server.task_state is not None:
            task = f" and task_state {server.task_state}" if server.task_state else ""
            raise Conflict(
                f"Cannot '{action}' instance {server.id} while it is in vm_state "
                f"{vm_state(server)}{task}"
            )
