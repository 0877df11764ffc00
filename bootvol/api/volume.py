"""Cinder v3 routes under /volume: discovery, volumes, the extend action, quota sets."""

from __future__ import annotations

import ast
import dataclasses
import json
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from bootvol.api import catalog
from bootvol.api.deps import AppDep, BaseUrl, Microversion, ProjectCaller
from bootvol.api.formats import cinder_time
from bootvol.api.microversion import MAX, MIN, APIVersion
from bootvol.api.quota_sets import check_may_change, check_may_read
from bootvol.api.schemas.common import ErrorBody, Link, MediaType, VersionEntry
from bootvol.api.schemas.volume import (
    MetaBody,
    MetadataBody,
    QuotaSet,
    QuotaSetResponse,
    QuotaSetUpdateBody,
    QuotaUsage,
    UploadImageAction,
    VolumeActionBody,
    VolumeCreateBody,
    VolumeCreateFields,
    VolumeDetailList,
    VolumeListParams,
    VolumePublic,
    VolumeResponse,
    VolumeSummary,
    VolumeSummaryList,
    VolumeUpdateBody,
)
from bootvol.caller import Caller
from bootvol.db.models import (
    DEFAULT_AVAILABILITY_ZONE,
    DEFAULT_QUOTA_GIGABYTES,
    DEFAULT_QUOTA_SNAPSHOTS,
    DEFAULT_QUOTA_VOLUMES,
    DEFAULT_VOLUME_TYPE,
    DEFAULT_VOLUME_TYPE_ID,
    Visibility,
    VolumeRecord,
    VolumeStatus,
    utcnow,
)
from bootvol.errors import BootvolError, InvalidRequest, NotFound
from bootvol.images.service import ImageCreate
from bootvol.runtime import Bootvol
from bootvol.storage.flexvol import FlexVol
from bootvol.volumes.quota import Usage
from bootvol.volumes.service import VolumeCreate, VolumeQuery

router = APIRouter(
    prefix="/volume",
    tags=["volume"],
    responses={
        400: {"model": ErrorBody},
        401: {"description": "No valid token"},
        404: {"model": ErrorBody},
        406: {"model": ErrorBody, "description": "Unsupported microversion"},
    },
)

_MAX_LIMIT = 1000  # Cinder's osapi_max_limit
_HOST = socket.gethostname()
_UPDATED = "2024-03-01T00:00:00Z"  # the "updated" of the version document: v3 as served here


def _versions(base: str) -> dict[str, Any]:
    entry = VersionEntry(
        id="v3.0",
        status="CURRENT",
        version=str(MAX),
        min_version=str(MIN),
        updated=_UPDATED,
        links=[
            Link(href="https://docs.openstack.org/", type="text/html", rel="describedby"),
            Link(href=f"{base}/volume/v3/", rel="self"),
        ],
        media_types=[
            MediaType(
                base="application/json", type="application/vnd.openstack.volume+json;version=3"
            )
        ],
    )
    return {"versions": [entry.model_dump(by_alias=True, exclude_none=True)]}


@router.get("", status_code=300, include_in_schema=False)
@router.get("/", status_code=300)
def versions(base: BaseUrl) -> JSONResponse:
    """Version discovery: v3 with its microversion range (300 Multiple Choices, as Cinder)."""
    return JSONResponse(_versions(base), status_code=300)


@router.get("/v3", include_in_schema=False)
@router.get("/v3/")
def version_v3(base: BaseUrl) -> dict[str, Any]:
    return _versions(base)


@router.post(
    "/v3/{project_id}/volumes",
    status_code=202,
    response_model=VolumeResponse,
    response_model_exclude_unset=True,
    responses={413: {"model": ErrorBody, "description": "Quota exceeded (overLimit)"}},
)
def create_volume(
    body: VolumeCreateBody,
    bootvol: AppDep,
    caller: ProjectCaller,
    base: BaseUrl,
    version: Microversion,
) -> VolumeResponse:
    """Accept a volume (``creating``); a background worker makes it."""
    fields = body.volume
    _refuse_unsupported(fields)
    record = bootvol.volumes.accept(
        VolumeCreate(
            size_gib=fields.size,
            image=fields.image_ref.rsplit("/", 1)[-1] if fields.image_ref else None,
            source_volid=fields.source_volid,
            snapshot_id=fields.snapshot_id,
            volume_type=fields.volume_type,
            name=fields.name,
            description=fields.description,
            metadata=fields.metadata or {},
            availability_zone=fields.availability_zone,
        ),
        caller=caller,
    )
    view = _View(bootvol, base=base, caller=caller, version=version)
    return VolumeResponse(volume=view.detail(record, extended=False))


@router.get(
    "/v3/{project_id}/volumes",
    response_model=VolumeSummaryList,
    response_model_exclude_unset=True,
)
def list_volumes(
    project_id: str,
    params: Annotated[VolumeListParams, Query()],
    request: Request,
    bootvol: AppDep,
    caller: ProjectCaller,
    base: BaseUrl,
    version: Microversion,
) -> dict[str, Any]:
    """Volumes of the project: id, name, links."""
    view = _View(bootvol, base=base, caller=caller, version=version)
    return _volume_page(
        bootvol,
        params=params,
        request=request,
        caller=caller,
        version=version,
        collection=f"{base}/volume/v3/{project_id}/volumes",
        render=view.summary,
    )


@router.get(
    "/v3/{project_id}/volumes/detail",
    response_model=VolumeDetailList,
    response_model_exclude_unset=True,
)
def list_volumes_detail(
    project_id: str,
    params: Annotated[VolumeListParams, Query()],
    request: Request,
    bootvol: AppDep,
    caller: ProjectCaller,
    base: BaseUrl,
    version: Microversion,
) -> dict[str, Any]:
    """Volumes of the project with every field."""
    view = _View(bootvol, base=base, caller=caller, version=version)
    return _volume_page(
        bootvol,
        params=params,
        request=request,
        caller=caller,
        version=version,
        collection=f"{base}/volume/v3/{project_id}/volumes/detail",
        render=lambda v: view.detail(v, extended=True),
    )


@router.get("/v3/{project_id}/volumes/summary")
def volume_summary(
    params: Annotated[VolumeListParams, Query()],
    bootvol: AppDep,
    caller: ProjectCaller,
    version: Microversion,
) -> dict[str, Any]:
    """3.12: how many volumes the caller sees and their total size (3.36: their metadata)."""
    if not version.at_least("3.12"):
        raise NotFound("volumes/summary is a route of microversion 3.12 and later")
    query = dataclasses.replace(_query(params), limit=None)
    volumes, _ = bootvol.volumes.query(query, caller=caller)
    summary: dict[str, Any] = {
        "total_size": sum(v.size_gib for v in volumes),
        "total_count": len(volumes),
    }
    if version.at_least("3.36"):
        keys: dict[str, set[str]] = {}
        for volume in volumes:
            for key, value in (volume.user_metadata or {}).items():
                keys.setdefault(key, set()).add(value)
        summary["metadata"] = {key: sorted(values) for key, values in keys.items()}
    return {"volume-summary": summary}


@router.get(
    "/v3/{project_id}/volumes/{volume_id}",
    response_model=VolumeResponse,
    response_model_exclude_unset=True,
)
def show_volume(
    volume_id: str, bootvol: AppDep, caller: ProjectCaller, base: BaseUrl, version: Microversion
) -> VolumeResponse:
    record = bootvol.volumes.get(volume_id, caller=caller)
    return VolumeResponse(
        volume=_View(bootvol, base=base, caller=caller, version=version).detail(
            record, extended=True
        )
    )


@router.put(
    "/v3/{project_id}/volumes/{volume_id}",
    response_model=VolumeResponse,
    response_model_exclude_unset=True,
)
def update_volume(
    volume_id: str,
    body: VolumeUpdateBody,
    bootvol: AppDep,
    caller: ProjectCaller,
    base: BaseUrl,
    version: Microversion,
) -> VolumeResponse:
    """Rename, describe, or replace the metadata of a volume."""
    fields = body.volume
    record = bootvol.volumes.update(
        volume_id,
        caller=caller,
        name=fields.name,
        description=fields.description,
        metadata=fields.metadata,
    )
    return VolumeResponse(
        volume=_View(bootvol, base=base, caller=caller, version=version).detail(
            record, extended=False
        )
    )


@router.delete("/v3/{project_id}/volumes/{volume_id}", status_code=202)
def delete_volume(
    volume_id: str,
    bootvol: AppDep,
    caller: ProjectCaller,
    version: Microversion,
    force: bool = Query(False, description="3.23: delete whatever the status (admins only)"),
    cascade: bool = Query(False, description="Its snapshots too"),
) -> Response:
    """Delete an available or errored volume; ``force`` (3.23, as ``os-force_delete``)
    whatever its status."""
    if force and not version.at_least("3.23"):
        raise InvalidRequest("force is a query parameter of microversion 3.23 and later")
    bootvol.volumes.delete(volume_id, caller=caller, force=force, cascade=cascade)
    return Response(status_code=202)


@router.get("/v3/{project_id}/volumes/{volume_id}/metadata", response_model=MetadataBody)
def show_metadata(volume_id: str, bootvol: AppDep, caller: ProjectCaller) -> MetadataBody:
    """The volume's metadata, with bootvol's provisioning record under ``bootvol:`` keys."""
    return MetadataBody(metadata=_metadata(bootvol.volumes.get(volume_id, caller=caller)))


@router.post("/v3/{project_id}/volumes/{volume_id}/metadata", response_model=MetadataBody)
def merge_metadata(
    volume_id: str, body: MetadataBody, bootvol: AppDep, caller: ProjectCaller
) -> MetadataBody:
    """Add or change metadata items; the others stay."""
    record = bootvol.volumes.set_metadata(volume_id, body.metadata, replace=False, caller=caller)
    return MetadataBody(metadata=_metadata(record))


@router.put("/v3/{project_id}/volumes/{volume_id}/metadata", response_model=MetadataBody)
def replace_metadata(
    volume_id: str, body: MetadataBody, bootvol: AppDep, caller: ProjectCaller
) -> MetadataBody:
    """Replace the volume's metadata (bootvol's own keys are not the user's to set)."""
    record = bootvol.volumes.set_metadata(volume_id, body.metadata, replace=True, caller=caller)
    return MetadataBody(metadata=_metadata(record))


@router.get("/v3/{project_id}/volumes/{volume_id}/metadata/{key}", response_model=MetaBody)
def show_metadata_item(
    volume_id: str, key: str, bootvol: AppDep, caller: ProjectCaller
) -> MetaBody:
    """One metadata item, bootvol's own keys included (Cinder: ``{"meta": {key: value}}``)."""
    metadata = _metadata(bootvol.volumes.get(volume_id, caller=caller))
    if key not in metadata:
        raise NotFound(f"Volume {volume_id} has no metadata with key {key}.")
    return MetaBody(meta={key: metadata[key]})


@router.put("/v3/{project_id}/volumes/{volume_id}/metadata/{key}", response_model=MetaBody)
def update_metadata_item(
    volume_id: str, key: str, body: MetaBody, bootvol: AppDep, caller: ProjectCaller
) -> MetaBody:
    """Set one item; the body names exactly that key, as Cinder requires."""
    if list(body.meta) != [key]:
        raise InvalidRequest("Request body and URI mismatch")
    bootvol.volumes.set_metadata(volume_id, body.meta, replace=False, caller=caller)
    return body


@router.delete("/v3/{project_id}/volumes/{volume_id}/metadata/{key}")
def delete_metadata(volume_id: str, key: str, bootvol: AppDep, caller: ProjectCaller) -> Response:
    bootvol.volumes.delete_metadata(volume_id, key, caller=caller)
    return Response(status_code=200)


@router.post(
    "/v3/{project_id}/volumes/{volume_id}/action",
    status_code=202,
    responses={413: {"model": ErrorBody, "description": "Quota exceeded (overLimit)"}},
)
def volume_action(
    volume_id: str, body: VolumeActionBody, bootvol: AppDep, caller: ProjectCaller
) -> Response:
    """The volume actions bootvol serves: ``os-extend``, ``os-set_bootable``,
    ``os-update_readonly_flag``, those a compute service calls around an attachment
    (``os-reserve`` … ``os-detach``), and the admins' ``os-reset_status`` and
    ``os-force_delete``."""
    asked = body.model_fields_set
    if len(asked) != 1 or body.model_extra:
        others = ", ".join([*(body.model_extra or {}), *sorted(asked)]) or "(none)"
        raise InvalidRequest(f"There is no such action: {others} (one action per request)")
    volume = bootvol.volumes.get(volume_id, caller=caller)
    attachments = bootvol.volumes.attachments
    if body.os_extend is not None:
        bootvol.volumes.extend(volume.id, body.os_extend.new_size, caller=caller)
    elif "os_reserve" in asked:
        attachments.reserve(volume.id, server_id=None)
    elif "os_unreserve" in asked:
        attachments.unreserve(volume.id)
    elif body.os_attach is not None:
        attach = body.os_attach
        attachments.attach(
            volume.id,
            server_id=attach.instance_uuid,
            device=attach.mountpoint,
            host=attach.host_name,
            mode=attach.mode,
        )
    elif "os_begin_detaching" in asked:
        attachments.begin_detaching_volume(volume.id)
    elif "os_roll_detaching" in asked:
        attachments.roll_detaching_volume(volume.id)
    elif "os_detach" in asked:
        attachments.detach(volume.id, body.os_detach.attachment_id if body.os_detach else None)
    elif body.os_set_bootable is not None:
        bootvol.volumes.update(volume.id, caller=caller, bootable=body.os_set_bootable.bootable)
        return Response(status_code=200)  # Cinder answers this one 200
    elif body.os_update_readonly_flag is not None:
        bootvol.volumes.set_readonly(
            volume.id, body.os_update_readonly_flag.readonly, caller=caller
        )
    elif body.os_reset_status is not None:
        bootvol.volumes.reset_status(volume.id, _status(body.os_reset_status.status), caller=caller)
    elif "os_force_delete" in asked:
        bootvol.volumes.delete(volume.id, caller=caller, force=True)
    elif body.os_volume_upload_image is not None:
        return _upload_to_image(bootvol, volume, body.os_volume_upload_image, caller)
    else:
        raise InvalidRequest(f"{next(iter(asked)).replace('_', '-', 1)} needs its parameters")
    return Response(status_code=202)


@router.get("/v3/{project_id}/os-availability-zone")
def availability_zones(caller: ProjectCaller) -> dict[str, Any]:
    """Cinder's zones: bootvol has one, every FlexVol in it."""
    zone = {"zoneName": DEFAULT_AVAILABILITY_ZONE, "zoneState": {"available": True}}
    return {"availabilityZoneInfo": [zone]}


@router.get("/v3/{project_id}/os-services")
def services(bootvol: AppDep, caller: ProjectCaller) -> dict[str, Any]:
    """Cinder's services (admins): a scheduler (placement), and a volume service per
    FlexVol, as ``host@backend#pool`` names them, up while its FlexVol answers."""
    caller.require_admin("volume_extension:services:index")
    now = cinder_time(utcnow())
    rows = [_service("cinder-scheduler", _HOST, up=True, updated_at=now)]
    for flexvol in bootvol.topology.volume_flexvols():
        try:
            flexvol.space()
            up = True
        except BootvolError:
            up = False
        rows.append(_service("cinder-volume", _pool(flexvol), up=up, updated_at=now))
    return {"services": rows}


def _service(binary: str, host: str, *, up: bool, updated_at: str | None) -> dict[str, Any]:
    return {
        "binary": binary,
        "host": host,
        "zone": DEFAULT_AVAILABILITY_ZONE,
        "status": "enabled",
        "state": "up" if up else "down",
        "updated_at": updated_at,
        "disabled_reason": None,
    }


@router.get("/v3/{project_id}/limits")
def limits(bootvol: AppDep, caller: ProjectCaller) -> dict[str, Any]:
    """Cinder's absolute limits: the project's quotas and what it uses of them."""
    project = bootvol.identity.get_project(caller.project_id or "")
    usage = bootvol.volumes.usage(project.id)
    absolute = {
        "maxTotalVolumes": project.quota_volumes,
        "maxTotalVolumeGigabytes": project.quota_gigabytes,
        "totalVolumesUsed": usage.volumes,
        "totalGigabytesUsed": usage.gigabytes,
        "maxTotalSnapshots": project.quota_snapshots,
        "totalSnapshotsUsed": usage.snapshots,
        # No backups in bootvol: none allowed, none used.
        "maxTotalBackups": 0,
        "totalBackupsUsed": 0,
        "maxTotalBackupGigabytes": 0,
        "totalBackupGigabytesUsed": 0,
    }
    return {"limits": {"rate": [], "absolute": absolute}}


@router.get("/v3/{project_id}/os-quota-sets/{target_project_id}", response_model=QuotaSetResponse)
def show_quotas(
    target_project_id: str,
    bootvol: AppDep,
    caller: ProjectCaller,
    usage: bool = False,
) -> QuotaSetResponse:
    check_may_read(caller, target_project_id, rule="volume_extension:quotas:show")
    return QuotaSetResponse(quota_set=_quota_set(bootvol, target_project_id, usage=usage))


@router.get(
    "/v3/{project_id}/os-quota-sets/{target_project_id}/defaults",
    response_model=QuotaSetResponse,
)
def show_default_quotas(target_project_id: str, caller: ProjectCaller) -> QuotaSetResponse:
    """The quotas a new project gets (``openstack quota show --default``)."""
    check_may_read(caller, target_project_id, rule="volume_extension:quotas:show")
    return QuotaSetResponse(
        quota_set=_quota_values(
            target_project_id,
            volumes=DEFAULT_QUOTA_VOLUMES,
            gigabytes=DEFAULT_QUOTA_GIGABYTES,
            snapshots=DEFAULT_QUOTA_SNAPSHOTS,
        )
    )


@router.put("/v3/{project_id}/os-quota-sets/{target_project_id}", response_model=QuotaSetResponse)
def update_quotas(
    target_project_id: str, body: QuotaSetUpdateBody, bootvol: AppDep, caller: ProjectCaller
) -> QuotaSetResponse:
    """Set a project's volumes and gigabytes quotas (admins)."""
    check_may_change(caller, rule="volume_extension:quotas:update")
    # Keys bootvol does not enforce are refused, as Cinder refuses keys it does not know:
    # a 200 that changed nothing would let an operator believe in a limit that is not there.
    bad = sorted(set(body.quota_set.model_extra or {}) - _QUOTA_FLAGS)
    if bad:
        raise InvalidRequest(
            f"Bad key(s) in quota set: {', '.join(bad)} (bootvol enforces volumes, "
            "snapshots and gigabytes)"
        )
    bootvol.identity.set_quotas(
        target_project_id,
        volumes=body.quota_set.volumes,
        gigabytes=body.quota_set.gigabytes,
        snapshots=body.quota_set.snapshots,
    )
    return QuotaSetResponse(quota_set=_quota_set(bootvol, target_project_id, usage=False))


_QUOTA_FLAGS = {"skip_validation"}  # a flag of Cinder's update, not a quota


def _quota_set(bootvol: Bootvol, project_id: str, *, usage: bool) -> QuotaSet:
    project = bootvol.identity.get_project(project_id, by_name=False)
    used = bootvol.volumes.usage(project.id) if usage else None
    return _quota_values(
        project.id,
        volumes=project.quota_volumes,
        gigabytes=project.quota_gigabytes,
        snapshots=project.quota_snapshots,
        used=used,
    )


def _quota_values(
    project_id: str, *, volumes: int, gigabytes: int, snapshots: int, used: Usage | None = None
) -> QuotaSet:
    def value(limit: int, in_use: int = 0) -> int | QuotaUsage:
        return limit if used is None else QuotaUsage(limit=limit, in_use=in_use)

    # bootvol has no backups or groups: their quotas are 0.
    return QuotaSet(
        id=project_id,
        volumes=value(volumes, used.volumes if used else 0),
        gigabytes=value(gigabytes, used.gigabytes if used else 0),
        per_volume_gigabytes=value(-1),
        snapshots=value(snapshots, used.snapshots if used else 0),
        backups=value(0),
        backup_gigabytes=value(0),
        groups=value(0),
    )


class _View:
    """A volume as Cinder's view builders draw it for this caller and microversion."""

    def __init__(self, bootvol: Bootvol, *, base: str, caller: Caller, version: APIVersion) -> None:
        self._bootvol = bootvol
        self._base = base
        self._caller = caller
        self._version = version
        self._type_names: dict[str, str] | None = None

    def links(self, record: VolumeRecord) -> list[Link]:
        project = record.project_id or self._caller.project_id or ""
        return [
            Link(href=f"{catalog.volume_url(self._base, project)}/volumes/{record.id}", rel="self"),
            Link(href=f"{self._base}/volume/{project}/volumes/{record.id}", rel="bookmark"),
        ]

    def _type_name(self, type_id: str | None) -> str:
        """Cinder shows the type's name; the types are read once per view (lists)."""
        if self._type_names is None:
            self._type_names = {t.id: t.name for t in self._bootvol.volumes.types.list()}
        return self._type_names.get(type_id or DEFAULT_VOLUME_TYPE_ID, DEFAULT_VOLUME_TYPE)

    def _attachments(self, record: VolumeRecord) -> list[dict[str, Any]]:
        """The volume's attachment as Cinder shows it once connected (attached or
        detaching); a boot volume is attached to its server as ``/dev/vda``."""
        if record.status not in (VolumeStatus.IN_USE, VolumeStatus.DETACHING):
            return []
        return [
            {
                "id": record.id,
                "volume_id": record.id,
                "server_id": attachment.server_id,
                "attachment_id": attachment.id,
                "attached_at": cinder_time(attachment.attached_at or attachment.created_at),
                "host_name": attachment.host,
                "device": attachment.device,
            }
            for attachment in self._bootvol.volumes.attachments.of_volume(record.id)
        ]

    def summary(self, record: VolumeRecord) -> VolumeSummary:
        return VolumeSummary(id=record.id, name=record.name, links=self.links(record))

    def detail(self, record: VolumeRecord, *, extended: bool) -> VolumePublic:
        admin = self._caller.sees_everything
        fields: dict[str, Any] = {
            "id": record.id,
            "status": str(record.status),
            "size": record.size_gib,
            "availability_zone": record.availability_zone or DEFAULT_AVAILABILITY_ZONE,
            "created_at": cinder_time(record.created_at),
            "updated_at": cinder_time(record.updated_at),
            "name": record.name,
            "description": record.description,
            "volume_type": self._type_name(record.volume_type_id),
            "snapshot_id": record.snapshot_id,
            "source_volid": record.source_volid,
            "metadata": _metadata(record),
            "links": self.links(record),
            "user_id": record.user_id,
            "bootable": "true" if record.bootable else "false",
            "encrypted": False,
            "replication_status": None,
            "consistencygroup_id": None,
            "multiattach": False,
            "attachments": self._attachments(record),
        }
        if admin:
            fields["migration_status"] = None
        if extended:
            fields["os-vol-tenant-attr:tenant_id"] = record.project_id
            if admin:
                fields["os-vol-host-attr:host"] = self._host(record)
                fields["os-vol-mig-status-attr:migstat"] = None
                fields["os-vol-mig-status-attr:name_id"] = None
            if record.image_metadata:
                fields["volume_image_metadata"] = record.image_metadata
        if self._version.at_least("3.13"):
            fields["group_id"] = None
        if admin and self._version.at_least("3.21"):
            fields["provider_id"] = None
        if self._version.at_least("3.48"):
            fields["service_uuid"] = uuid.uuid5(uuid.NAMESPACE_URL, self._backend(record)).hex
            fields["shared_targets"] = False  # NFS-style files: no shared iSCSI targets
        return VolumePublic.model_validate(fields)

    def _backend(self, record: VolumeRecord) -> str:
        if not record.flexvol:
            return f"{_HOST}@bootvol"
        return _pool(self._bootvol.topology.get(record.flexvol)).partition("#")[0]

    def _host(self, record: VolumeRecord) -> str | None:
        if not record.flexvol:
            return None
        return _pool(self._bootvol.topology.get(record.flexvol))


def _pool(flexvol: FlexVol) -> str:
    """Cinder's host@backend#pool: one backend per SVM, one pool per FlexVol."""
    return f"{_HOST}@{flexvol.svm.name}#{flexvol.name}"


def _upload_to_image(
    bootvol: Bootvol, volume: VolumeRecord, upload: UploadImageAction, caller: Caller
) -> JSONResponse:
    """A new image of the volume (Cinder answers 202 with what it will upload)."""
    volume = bootvol.volumes.copyable(
        volume.id, force=upload.force, caller=caller, purpose="uploaded"
    )
    image = bootvol.images.create_from_volume(
        ImageCreate(
            name=upload.image_name,
            disk_format=upload.disk_format,
            container_format=upload.container_format,
            visibility=Visibility(upload.visibility) if upload.visibility else None,
            protected=upload.protected,
        ),
        Path(volume.file or ""),
        source_format=str(volume.file_format),
        caller=caller,
    )
    body = {
        "id": volume.id,
        "updated_at": cinder_time(volume.updated_at),
        "status": str(volume.status),
        "display_description": volume.description,
        "size": volume.size_gib,
        "volume_type": {"name": bootvol.volumes.types.get(volume.volume_type_id).name},
        "image_id": image.id,
        "container_format": image.container_format,
        "disk_format": image.disk_format,
        "image_name": image.name,
        "visibility": str(image.visibility),
        "protected": image.protected,
    }
    return JSONResponse({"os-volume_upload_image": body}, status_code=202)


def _status(text: str | None) -> VolumeStatus:
    try:
        return VolumeStatus(text or "")
    except ValueError:
        known = ", ".join(status.value for status in VolumeStatus)
        raise InvalidRequest(f"Invalid volume status: {text!r} (one of {known})") from None


def _metadata(record: VolumeRecord) -> dict[str, str]:
    """The user's metadata, Cinder's visible admin metadata (``readonly``), then bootvol's
    provisioning record under ``bootvol:`` keys."""
    metadata = dict(record.user_metadata or {})
    if record.readonly:
        metadata["readonly"] = "True"
    provisioning = record.provisioning
    if provisioning:
        metadata["bootvol:path"] = str(provisioning.path)
        metadata["bootvol:source"] = provisioning.source
        metadata["bootvol:host_bytes"] = str(provisioning.host_bytes)
        metadata["bootvol:seconds"] = str(provisioning.seconds)
        if provisioning.clone_method:
            metadata["bootvol:clone_method"] = str(provisioning.clone_method)
        if provisioning.copy_method:
            metadata["bootvol:copy_method"] = provisioning.copy_method
        metadata["bootvol:steps"] = json.dumps(
            [[str(step.name), step.seconds] for step in provisioning.steps]
        )
        if provisioning.skipped:
            metadata["bootvol:skipped"] = json.dumps(provisioning.to_json()["skipped"])
    if record.message:
        metadata["bootvol:error"] = record.message
    return metadata


def _refuse_unsupported(fields: VolumeCreateFields) -> None:
    """Sources and options bootvol does not have answer as Cinder does for unknown ones."""
    if fields.backup_id:
        raise NotFound(f"Backup {fields.backup_id} could not be found.")
    if fields.consistencygroup_id or fields.group_id:
        group = fields.consistencygroup_id or fields.group_id
        raise NotFound(f"Group {group} could not be found.")
    if fields.multiattach:
        raise InvalidRequest("multiattach volumes are not supported by bootvol")


def _query(params: VolumeListParams) -> VolumeQuery:
    limit = params.limit if params.limit is not None else _MAX_LIMIT
    return VolumeQuery(
        limit=min(limit, _MAX_LIMIT),
        marker=params.marker,
        name=params.name,
        status=params.status,
        metadata=_metadata_filter(params.metadata),
        bootable=params.bootable,
        all_projects=params.all_tenants,
        project_id=params.project_id,
        sort=_sort_order(sort=params.sort, sort_key=params.sort_key, sort_dir=params.sort_dir),
    )


def _volume_page(
    bootvol: Bootvol,
    *,
    params: VolumeListParams,
    request: Request,
    caller: Caller,
    version: APIVersion,
    collection: str,
    render: Callable[[VolumeRecord], Any],
) -> dict[str, Any]:
    """One page of a volume list, rendered, with its links and (3.45+) count."""
    query = _query(params)
    volumes, more = bootvol.volumes.query(query, caller=caller)
    count = params.with_count and version.at_least("3.45")
    return {
        "volumes": [render(v) for v in volumes],
        **_page_extras(
            bootvol,
            request=request,
            query=query,
            page=(volumes, more),
            caller=caller,
            count=count,
            collection=collection,
        ),
    }


def _page_extras(
    bootvol: Bootvol,
    *,
    request: Request,
    query: VolumeQuery,
    page: tuple[list[VolumeRecord], bool],
    caller: Caller,
    count: bool,
    collection: str,
) -> dict[str, Any]:
    """Cinder's ``volumes_links`` and 3.45's ``count``. As Cinder's view builder, the next
    link is there whenever the page is full (the limit reached), whether or not more follow:
    a client learns the end from an empty page, not from a missing link."""
    volumes, more = page
    extras: dict[str, Any] = {}
    full = query.limit is not None and len(volumes) >= query.limit
    if volumes and (more or full):
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"]
        if not any(k == "limit" for k, _ in params):
            params.append(("limit", str(query.limit)))
        href = f"{collection}?{urlencode([*params, ('marker', volumes[-1].id)])}"
        extras["volumes_links"] = [Link(href=href, rel="next")]
    if count:
        extras["count"] = bootvol.volumes.count(query, caller=caller)
    return extras


def _metadata_filter(text: str | None) -> dict[str, str]:
    """Cinder takes ``metadata={'k': 'v'}`` (a Python or JSON literal)."""
    if not text:
        return {}
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = None
    if not isinstance(value, dict):
        raise InvalidRequest(f"Invalid input received: metadata={text}")
    return {str(k): str(v) for k, v in value.items()}


def _sort_order(
    *, sort: str | None, sort_key: str | None, sort_dir: str | None
) -> list[tuple[str, bool]]:
    """Cinder's two spellings: ``sort=name:asc,size`` or ``sort_key``/``sort_dir``."""
    if sort and (sort_key or sort_dir):
        raise InvalidRequest("The sort and sort_key/sort_dir parameters cannot be combined")
    order = []
    if sort:
        for part in sort.split(","):
            key, _, direction = part.strip().partition(":")
            order.append((key, _ascending(direction or "desc")))
        return order
    return [(sort_key or "created_at", _ascending(sort_dir or "desc"))]


def _ascending(direction: str) -> bool:
    if direction.lower() not in ("asc", "desc"):
        raise InvalidRequest(f"Invalid sort direction {direction!r} (asc or desc)")
    return direction.lower() == "asc"
