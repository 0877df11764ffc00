"""Cinder's attachments API (microversion 3.27+) under /volume: list, show, create,
update (connect), complete (3.44) and delete.

This is how a compute service of the operator's own attaches a bootvol volume: create
reserves it for an instance (``reserved``; with a connector, ``attaching``), update gives
the connector and gets the connection info, ``os-complete`` marks it ``attached`` (the
volume ``in-use``), delete ends it (``available``). bootvol's own compute host shows its
attachments here too (a boot volume as ``/dev/vda``, data volumes as it plugged them).
A volume file is reached by its path on the host (``driver_volume_type`` ``local``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict

from bootvol.api.deps import AppDep, Microversion, ProjectCaller
from bootvol.api.formats import cinder_time
from bootvol.caller import Caller
from bootvol.db.models import AttachStatus, VolumeAttachmentRecord
from bootvol.errors import NotFound
from bootvol.runtime import Bootvol

router = APIRouter(prefix="/volume/v3/{project_id}/attachments", tags=["volume"])

_FIRST = "3.27"
_COMPLETE = "3.44"


class AttachmentFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    volume_uuid: str
    instance_uuid: str | None = None
    connector: dict[str, Any] | None = None
    mode: str = "rw"


class AttachmentCreateBody(BaseModel):
    attachment: AttachmentFields


class ConnectorFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    connector: dict[str, Any]


class AttachmentUpdateBody(BaseModel):
    attachment: ConnectorFields


def _require(version: Microversion, minimum: str = _FIRST) -> None:
    # Below its microversion the resource does not exist, as in Cinder.
    if not version.at_least(minimum):
        raise NotFound(f"The resource could not be found (attachments need {minimum}).")


def _visible(bootvol: Bootvol, attachment_id: str, caller: Caller) -> VolumeAttachmentRecord:
    attachment = bootvol.volumes.attachments.get(attachment_id)
    try:
        bootvol.volumes.get(attachment.volume_id, caller=caller)
    except NotFound:
        raise NotFound(f"Attachment {attachment_id} could not be found.") from None
    return attachment


def _summary(attachment: VolumeAttachmentRecord) -> dict[str, Any]:
    return {
        "id": attachment.id,
        "status": str(attachment.status),
        "instance": attachment.server_id,
        "volume_id": attachment.volume_id,
    }


def _detail(bootvol: Bootvol, attachment: VolumeAttachmentRecord) -> dict[str, Any]:
    connection_info: dict[str, Any] = {}
    if attachment.status != AttachStatus.RESERVED:
        volume = bootvol.volumes.get(attachment.volume_id)
        connection_info = {
            "driver_volume_type": "local",
            "device_path": volume.file,
            "format": str(volume.file_format),
            "serial": volume.id,
            "access_mode": attachment.mode,
        }
    return {
        **_summary(attachment),
        "attached_at": cinder_time(attachment.attached_at) if attachment.attached_at else None,
        "detached_at": None,
        "attach_mode": attachment.mode,
        "connection_info": connection_info,
    }


def _listed(bootvol: Bootvol, caller: Caller) -> list[VolumeAttachmentRecord]:
    project = None if caller.sees_everything else caller.project_id
    return bootvol.volumes.attachments.of_project(project)


@router.get("")
def list_attachments(
    bootvol: AppDep, caller: ProjectCaller, version: Microversion
) -> dict[str, Any]:
    _require(version)
    return {"attachments": [_summary(a) for a in _listed(bootvol, caller)]}


@router.get("/detail")
def list_attachments_detail(
    bootvol: AppDep, caller: ProjectCaller, version: Microversion
) -> dict[str, Any]:
    _require(version)
    return {"attachments": [_detail(bootvol, a) for a in _listed(bootvol, caller)]}


@router.get("/{attachment_id}")
def show_attachment(
    attachment_id: str, bootvol: AppDep, caller: ProjectCaller, version: Microversion
) -> dict[str, Any]:
    _require(version)
    return {"attachment": _detail(bootvol, _visible(bootvol, attachment_id, caller))}


@router.post("")
def create_attachment(
    body: AttachmentCreateBody, bootvol: AppDep, caller: ProjectCaller, version: Microversion
) -> dict[str, Any]:
    _require(version)
    fields = body.attachment
    volume = bootvol.volumes.get(fields.volume_uuid, caller=caller)
    attachment = bootvol.volumes.attachments.reserve(
        volume.id,
        server_id=fields.instance_uuid,
        status=AttachStatus.RESERVED if fields.connector is None else AttachStatus.ATTACHING,
        host=(fields.connector or {}).get("host"),
    )
    return {"attachment": _detail(bootvol, attachment)}


@router.put("/{attachment_id}")
def update_attachment(
    attachment_id: str,
    body: AttachmentUpdateBody,
    bootvol: AppDep,
    caller: ProjectCaller,
    version: Microversion,
) -> dict[str, Any]:
    """The connector arrives: the attachment is connecting (``attaching``) and its answer
    holds the connection info."""
    _require(version)
    attachment = _visible(bootvol, attachment_id, caller)
    updated = bootvol.volumes.attachments.connect(
        attachment.id, host=body.attachment.connector.get("host")
    )
    return {"attachment": _detail(bootvol, updated)}


@router.post("/{attachment_id}/action", status_code=204)
def attachment_action(
    attachment_id: str,
    body: dict[str, Any],
    bootvol: AppDep,
    caller: ProjectCaller,
    version: Microversion,
) -> Response:
    """``os-complete`` (3.44): the volume is attached (``in-use``)."""
    _require(version, _COMPLETE)
    if set(body) != {"os-complete"}:
        raise NotFound(f"There is no such action: {', '.join(body) or '(none)'}")
    attachment = _visible(bootvol, attachment_id, caller)
    bootvol.volumes.attachments.complete(attachment.id)
    return Response(status_code=204)


@router.delete("/{attachment_id}")
def delete_attachment(
    attachment_id: str, bootvol: AppDep, caller: ProjectCaller, version: Microversion
) -> dict[str, Any]:
    _require(version)
    attachment = _visible(bootvol, attachment_id, caller)
    bootvol.volumes.attachments.remove(attachment.id)
    return {"attachments": []}
