"""Cinder v3 volume type routes under /volume: list, show (by id, ``default``), create and
delete (admins), extra specs (bootvol.volumes.types says which ones steer placement)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from bootvol.api.deps import AppDep, ProjectCaller
from bootvol.caller import Caller
from bootvol.db.models import VolumeTypeRecord
from bootvol.errors import InvalidRequest, NotFound
from bootvol.volumes.types import TypeCreate

router = APIRouter(prefix="/volume", tags=["volume"])


class TypeFields(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    name: str
    description: str | None = None
    is_public: bool = Field(True, alias="os-volume-type-access:is_public")
    extra_specs: dict[str, str] | None = None


class TypeCreateBody(BaseModel):
    volume_type: TypeFields


class ExtraSpecsBody(BaseModel):
    extra_specs: dict[str, str]


def type_view(record: VolumeTypeRecord, caller: Caller) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": record.id,
        "name": record.name,
        "description": record.description,
        "is_public": record.is_public,
        "os-volume-type-access:is_public": record.is_public,
        "extra_specs": dict(record.extra_specs or {}),
    }
    if caller.sees_everything:
        view["qos_specs_id"] = None
    return view


@router.get("/v3/{project_id}/types")
def list_types(bootvol: AppDep, caller: ProjectCaller) -> dict[str, Any]:
    return {
        "volume_types": [type_view(t, caller) for t in bootvol.volumes.types.list(caller=caller)]
    }


@router.get("/v3/{project_id}/types/default")
def default_type(bootvol: AppDep, caller: ProjectCaller) -> dict[str, Any]:
    return {"volume_type": type_view(bootvol.volumes.types.get(None, caller=caller), caller)}


@router.get("/v3/{project_id}/types/{type_id}")
def show_type(type_id: str, bootvol: AppDep, caller: ProjectCaller) -> dict[str, Any]:
    return {"volume_type": type_view(bootvol.volumes.types.get(type_id, caller=caller), caller)}


@router.post("/v3/{project_id}/types")
def create_type(body: TypeCreateBody, bootvol: AppDep, caller: ProjectCaller) -> dict[str, Any]:
    fields = body.volume_type
    record = bootvol.volumes.types.create(
        TypeCreate(
            name=fields.name,
            description=fields.description,
            is_public=fields.is_public,
            extra_specs=fields.extra_specs,
        ),
        caller=caller,
    )
    return {"volume_type": type_view(record, caller)}


@router.delete("/v3/{project_id}/types/{type_id}", status_code=202)
def delete_type(type_id: str, bootvol: AppDep, caller: ProjectCaller) -> Response:
    bootvol.volumes.types.delete(type_id, caller=caller)
    return Response(status_code=202)


@router.get("/v3/{project_id}/types/{type_id}/extra_specs")
def show_extra_specs(type_id: str, bootvol: AppDep, caller: ProjectCaller) -> dict[str, Any]:
    record = bootvol.volumes.types.get(type_id, caller=caller)
    return {"extra_specs": dict(record.extra_specs or {})}


@router.post("/v3/{project_id}/types/{type_id}/extra_specs")
def set_extra_specs(
    type_id: str, body: ExtraSpecsBody, bootvol: AppDep, caller: ProjectCaller
) -> dict[str, Any]:
    bootvol.volumes.types.set_extra_specs(type_id, body.extra_specs, caller=caller)
    return {"extra_specs": body.extra_specs}


@router.get("/v3/{project_id}/types/{type_id}/extra_specs/{key}")
def show_extra_spec(
    type_id: str, key: str, bootvol: AppDep, caller: ProjectCaller
) -> dict[str, str]:
    specs = bootvol.volumes.types.get(type_id, caller=caller).extra_specs or {}
    if key not in specs:
        raise NotFound(f"Volume Type {type_id} has no extra specs with key {key}.")
    return {key: specs[key]}


@router.put("/v3/{project_id}/types/{type_id}/extra_specs/{key}")
def update_extra_spec(
    type_id: str, key: str, body: dict[str, str], bootvol: AppDep, caller: ProjectCaller
) -> dict[str, str]:
    if list(body) != [key]:
        raise InvalidRequest("Request body and URI mismatch")
    bootvol.volumes.types.set_extra_specs(type_id, body, caller=caller)
    return body


@router.delete("/v3/{project_id}/types/{type_id}/extra_specs/{key}", status_code=202)
def delete_extra_spec(type_id: str, key: str, bootvol: AppDep, caller: ProjectCaller) -> Response:
    bootvol.volumes.types.delete_extra_spec(type_id, key, caller=caller)
    return Response(status_code=202)
