"""Nova's ``os-volume_attachments`` under /compute: data volumes on a server.

Bodies as Nova answers them up to microversion 2.79 (the most bootvol serves): ``id`` and
``volumeId`` are the volume's id, ``device`` the guest device (``/dev/vdb``…), ``tag`` and
``delete_on_termination`` (2.70, 2.79). An attach answers at once with the device chosen;
the volume is ``attaching`` until the server's host has plugged it (then ``in-use``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from bootvol.api.deps import AppDep, CallerDep
from bootvol.db.models import VolumeAttachmentRecord

router = APIRouter(prefix="/compute/v2.1/servers/{server_id}", tags=["compute"])


class AttachFields(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    volume_id: str = Field(alias="volumeId", min_length=1)
    # Nova's libvirt driver ignores a requested device name too: the guest names its disks.
    device: str | None = None
    tag: str | None = None
    delete_on_termination: bool = False


class AttachBody(BaseModel):
    volume_attachment: AttachFields = Field(alias="volumeAttachment")


def _view(attachment: VolumeAttachmentRecord) -> dict[str, Any]:
    return {
        "id": attachment.volume_id,
        "serverId": attachment.server_id,
        "volumeId": attachment.volume_id,
        "device": attachment.device,
        "tag": None,
        "delete_on_termination": attachment.delete_on_termination,
    }


@router.get("/os-volume_attachments")
def list_attachments(server_id: str, bootvol: AppDep, caller: CallerDep) -> dict[str, Any]:
    attachments = bootvol.server_volumes.list(server_id, caller=caller)
    return {"volumeAttachments": [_view(a) for a in attachments]}


@router.get("/os-volume_attachments/{volume_id}")
def show_attachment(
    server_id: str, volume_id: str, bootvol: AppDep, caller: CallerDep
) -> dict[str, Any]:
    attachment = bootvol.server_volumes.get(server_id, volume_id, caller=caller)
    return {"volumeAttachment": _view(attachment)}


@router.post("/os-volume_attachments")
def attach_volume(
    server_id: str, body: AttachBody, bootvol: AppDep, caller: CallerDep
) -> dict[str, Any]:
    fields = body.volume_attachment
    attachment = bootvol.server_volumes.attach(
        server_id,
        fields.volume_id,
        caller=caller,
        delete_on_termination=fields.delete_on_termination,
    )
    return {"volumeAttachment": _view(attachment)}


@router.delete("/os-volume_attachments/{volume_id}", status_code=202)
def detach_volume(server_id: str, volume_id: str, bootvol: AppDep, caller: CallerDep) -> Response:
    bootvol.server_volumes.detach(server_id, volume_id, caller=caller)
    return Response(status_code=202)
