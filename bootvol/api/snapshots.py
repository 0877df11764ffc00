"""Cinder v3 snapshot routes under /volume: create, list, detail, show, update, delete,
metadata (bootvol.volumes.snapshots makes them: reflinks beside their volume)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bootvol.api.deps import AppDep, Microversion, ProjectCaller
from bootvol.api.formats import cinder_time
from bootvol.api.microversion import APIVersion
from bootvol.api.schemas.common import ErrorBody
from bootvol.api.schemas.volume import MetadataBody
from bootvol.caller import Caller
from bootvol.db.models import SnapshotRecord
from bootvol.runtime import Bootvol
from bootvol.volumes.snapshots import SnapshotCreate

router = APIRouter(prefix="/volume", tags=["volume"])


class SnapshotFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    volume_id: str
    name: str | None = Field(None, max_length=255)
    display_name: str | None = Field(None, max_length=255)  # Cinder's older name for it
    description: str | None = None
    force: bool = False
    metadata: dict[str, str] | None = None

    @field_validator("force", mode="before")
    @classmethod
    def _cinder_boolean(cls, value: Any) -> Any:
        """Cinder takes "True", "false", "1"…, as strings too."""
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in ("1", "t", "true", "on", "y", "yes"):
                return True
            if lowered in ("0", "f", "false", "off", "n", "no"):
                return False
        return value


class SnapshotCreateBody(BaseModel):
    snapshot: SnapshotFields


class SnapshotUpdateFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(None, max_length=255)
    description: str | None = None


class SnapshotUpdateBody(BaseModel):
    snapshot: SnapshotUpdateFields


def snapshot_view(record: SnapshotRecord, version: APIVersion, *, detail: bool) -> dict[str, Any]:
    """Cinder's snapshot (api-ref samples/snapshots), for this microversion."""
    view: dict[str, Any] = {
        "id": record.id,
        "name": record.name,
        "description": record.description,
        "status": str(record.status),
        "size": record.size_gib,
        "volume_id": record.volume_id,
        "created_at": cinder_time(record.created_at),
        "updated_at": cinder_time(record.updated_at),
        "metadata": dict(record.user_metadata or {}),
    }
    if detail:
        view["os-extended-snapshot-attributes:progress"] = (
            "100%" if record.status == "available" else "0%"
        )
        view["os-extended-snapshot-attributes:project_id"] = record.project_id
    if version.at_least("3.41"):
        view["user_id"] = record.user_id
    return view


@router.post(
    "/v3/{project_id}/snapshots",
    status_code=202,
    responses={413: {"model": ErrorBody, "description": "Quota exceeded (overLimit)"}},
)
def create_snapshot(
    body: SnapshotCreateBody, bootvol: AppDep, caller: ProjectCaller, version: Microversion
) -> dict[str, Any]:
    """A reflink of the volume's file, made within the request (``available`` at once)."""
    fields = body.snapshot
    record = bootvol.volumes.snapshots.create(
        SnapshotCreate(
            volume_id=fields.volume_id,
            name=fields.name or fields.display_name,
            description=fields.description,
            force=fields.force,
            metadata=fields.metadata or {},
        ),
        caller=caller,
    )
    return {"snapshot": snapshot_view(record, version, detail=True)}


class SnapshotListParams(BaseModel):
    all_tenants: bool = Field(False, description="Admins: every project's snapshots")
    volume_id: str | None = None


@router.get("/v3/{project_id}/snapshots")
def list_snapshots(
    params: Annotated[SnapshotListParams, Query()],
    bootvol: AppDep,
    caller: ProjectCaller,
    version: Microversion,
) -> dict[str, Any]:
    return _snapshot_list(bootvol, params, caller, version, detail=False)


@router.get("/v3/{project_id}/snapshots/detail")
def list_snapshots_detail(
    params: Annotated[SnapshotListParams, Query()],
    bootvol: AppDep,
    caller: ProjectCaller,
    version: Microversion,
) -> dict[str, Any]:
    return _snapshot_list(bootvol, params, caller, version, detail=True)


def _snapshot_list(
    bootvol: Bootvol,
    params: SnapshotListParams,
    caller: Caller,
    version: APIVersion,
    *,
    detail: bool,
) -> dict[str, Any]:
    records = bootvol.volumes.snapshots.list(
        caller=caller, all_projects=params.all_tenants, volume_id=params.volume_id
    )
    return {"snapshots": [snapshot_view(r, version, detail=detail) for r in records]}


@router.get("/v3/{project_id}/snapshots/{snapshot_id}")
def show_snapshot(
    snapshot_id: str, bootvol: AppDep, caller: ProjectCaller, version: Microversion
) -> dict[str, Any]:
    record = bootvol.volumes.snapshots.get(snapshot_id, caller=caller)
    return {"snapshot": snapshot_view(record, version, detail=True)}


@router.put("/v3/{project_id}/snapshots/{snapshot_id}")
def update_snapshot(
    snapshot_id: str,
    body: SnapshotUpdateBody,
    bootvol: AppDep,
    caller: ProjectCaller,
    version: Microversion,
) -> dict[str, Any]:
    record = bootvol.volumes.snapshots.update(
        snapshot_id, caller=caller, name=body.snapshot.name, description=body.snapshot.description
    )
    return {"snapshot": snapshot_view(record, version, detail=True)}


@router.delete("/v3/{project_id}/snapshots/{snapshot_id}", status_code=202)
def delete_snapshot(snapshot_id: str, bootvol: AppDep, caller: ProjectCaller) -> Response:
    bootvol.volumes.snapshots.delete(snapshot_id, caller=caller)
    return Response(status_code=202)


@router.get("/v3/{project_id}/snapshots/{snapshot_id}/metadata", response_model=MetadataBody)
def show_snapshot_metadata(
    snapshot_id: str, bootvol: AppDep, caller: ProjectCaller
) -> MetadataBody:
    record = bootvol.volumes.snapshots.get(snapshot_id, caller=caller)
    return MetadataBody(metadata=dict(record.user_metadata or {}))


@router.post("/v3/{project_id}/snapshots/{snapshot_id}/metadata", response_model=MetadataBody)
def merge_snapshot_metadata(
    snapshot_id: str, body: MetadataBody, bootvol: AppDep, caller: ProjectCaller
) -> MetadataBody:
    record = bootvol.volumes.snapshots.set_metadata(
        snapshot_id, body.metadata, replace=False, caller=caller
    )
    return MetadataBody(metadata=dict(record.user_metadata or {}))


@router.put("/v3/{project_id}/snapshots/{snapshot_id}/metadata", response_model=MetadataBody)
def replace_snapshot_metadata(
    snapshot_id: str, body: MetadataBody, bootvol: AppDep, caller: ProjectCaller
) -> MetadataBody:
    record = bootvol.volumes.snapshots.set_metadata(
        snapshot_id, body.metadata, replace=True, caller=caller
    )
    return MetadataBody(metadata=dict(record.user_metadata or {}))


@router.delete("/v3/{project_id}/snapshots/{snapshot_id}/metadata/{key}")
def delete_snapshot_metadata(
    snapshot_id: str, key: str, bootvol: AppDep, caller: ProjectCaller
) -> Response:
    bootvol.volumes.snapshots.delete_metadata(snapshot_id, key, caller=caller)
    return Response(status_code=200)
