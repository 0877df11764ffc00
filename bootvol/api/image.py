"""Glance v2 routes under /image: discovery, images, upload and download of their bytes."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import TypeAdapter, ValidationError

from bootvol.api.deps import AppDep, BaseUrl, CallerDep
from bootvol.api.formats import glance_time
from bootvol.api.image_import import IMPORT_METHODS, IMPORT_METHODS_HEADER
from bootvol.api.schemas.common import GLANCE_ERRORS, ErrorBody, Link, VersionEntry
from bootvol.api.schemas.image import (
    ImageCreateBody,
    ImageList,
    ImageListParams,
    ImagePublic,
    ImageSchema,
    LocationPublic,
    PatchOperationBody,
)
from bootvol.api.streaming import OCTET_STREAM_BODY, octet_stream
from bootvol.caller import Caller
from bootvol.db.models import ImageRecord, MemberStatus, Visibility
from bootvol.errors import ImageNotFound, InvalidRequest, UnsupportedMediaType
from bootvol.images.listing import ImageQuery
from bootvol.images.patch import PatchOperation
from bootvol.images.published import published_locations
from bootvol.images.service import ImageCreate

router = APIRouter(
    prefix="/image",
    tags=["image"],
    responses=GLANCE_ERRORS,
)

PATCH_MEDIA_TYPE = "application/openstack-images-v2.1-json-patch"
# Glance takes its older patch dialect's type as well (the operations bootvol serves are
# written the same in both).
PATCH_MEDIA_TYPES = (PATCH_MEDIA_TYPE, "application/openstack-images-v2.0-json-patch")
_MAX_LIMIT = 1000  # Glance's api_limit_max
_patch_body = TypeAdapter(list[PatchOperationBody])
_EVERY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE"]


# The versions Glance (2024.2 on) lists without an image cache and without multiple
# stores (glance/api/versions.py): v2.17 added the service-only locations API, which
# glanceclient's has_version(client, "v2.17") looks for before Cinder asks for locations.
_CURRENT_VERSION = "2.17"
_SUPPORTED_VERSIONS = ("2.15", "2.9", "2.7", "2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0")


def _versions(base: str) -> dict[str, Any]:
    links = [Link(rel="self", href=f"{base}/image/v2/")]
    entries = [VersionEntry(id=f"v{_CURRENT_VERSION}", status="CURRENT", links=links)]
    entries += [
        VersionEntry(id=f"v{version}", status="SUPPORTED", links=links)
        for version in _SUPPORTED_VERSIONS
    ]
    return {"versions": [e.model_dump(by_alias=True, exclude_none=True) for e in entries]}


@router.get("", status_code=300, include_in_schema=False)
@router.get("/", status_code=300)
def versions(base: BaseUrl) -> JSONResponse:
    """Version discovery: Glance answers 300 Multiple Choices."""
    return JSONResponse(_versions(base), status_code=300)


@router.get("/versions")
def explicit_versions(base: BaseUrl) -> dict[str, Any]:
    """The same list asked for explicitly: Glance answers 200 (glanceclient's has_version)."""
    return _versions(base)


@router.get("/v2", include_in_schema=False)
@router.get("/v2/")
def version_v2(base: BaseUrl) -> dict[str, Any]:
    return _versions(base)


@router.get("/v2/schemas/image", response_model=ImageSchema)
def image_schema() -> dict[str, Any]:
    return _IMAGE_SCHEMA


@router.get("/v2/schemas/images", response_model=ImageSchema)
def images_schema() -> dict[str, Any]:
    return {
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": _IMAGE_SCHEMA},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


@router.post(
    "/v2/images",
    status_code=201,
    response_model=ImagePublic,
    response_model_exclude_unset=True,
    responses={409: {"model": ErrorBody}},
)
def create_image(
    body: ImageCreateBody, response: Response, bootvol: AppDep, caller: CallerDep
) -> ImagePublic:
    """Create an image record (queued); upload its bytes with PUT …/file, or import them."""
    response.headers[IMPORT_METHODS_HEADER] = IMPORT_METHODS
    record = bootvol.images.create(
        ImageCreate(
            id=body.id,
            name=body.name or "",
            disk_format=body.disk_format,
            container_format=body.container_format or "bare",
            owner=body.owner,
            visibility=Visibility(body.visibility) if body.visibility else None,
            protected=body.protected,
            hidden=body.os_hidden,
            min_disk=body.min_disk,
            min_ram=body.min_ram,
            tags=body.tags,
            properties=body.properties,
        ),
        caller=caller,
    )
    return image_view(record, caller)


@router.get("/v2/images", response_model=ImageList, response_model_exclude_unset=True)
def list_images(
    params: Annotated[ImageListParams, Query()],
    request: Request,
    bootvol: AppDep,
    caller: CallerDep,
) -> ImageList:
    images, more = bootvol.images.query(
        ImageQuery(
            limit=min(params.limit, _MAX_LIMIT),
            marker=params.marker,
            name=params.name,
            status=params.status,
            visibility=params.visibility,
            owner=params.owner,
            protected=params.protected,
            hidden=params.os_hidden,
            tags=params.tag,
            disk_formats=_any_of(params.disk_format),
            container_formats=_any_of(params.container_format),
            size_min=params.size_min,
            size_max=params.size_max,
            member_statuses=_member_statuses(params.member_status),
            sort=_sort_order(keys=params.sort_key, dirs=params.sort_dir, sort=params.sort),
        ),
        caller=caller,
    )
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"]
    page: dict[str, Any] = {
        "images": [image_view(image, caller) for image in images],
        "first": "/v2/images" + (f"?{urlencode(query)}" if query else ""),
        "schema": "/v2/schemas/images",
    }
    if more and images:
        page["next"] = "/v2/images?" + urlencode([*query, ("marker", images[-1].id)])
    return ImageList.model_validate(page)


@router.api_route("/v2/images/", methods=_EVERY_METHOD, include_in_schema=False)
@router.api_route("/v2/images//{rest:path}", methods=_EVERY_METHOD, include_in_schema=False)
def empty_image_id() -> Response:
    """An empty image id (``/v2/images/``, ``/v2/images//file``): Glance's 404, rather than
    the list that a redirect to /v2/images would give or a route said not to exist."""
    raise ImageNotFound("No image found with an empty ID: the path needs /v2/images/{image_id}")


@router.get("/v2/images/{image_id}", response_model=ImagePublic, response_model_exclude_unset=True)
def show_image(image_id: str, bootvol: AppDep, caller: CallerDep) -> ImagePublic:
    return image_view(bootvol.images.get(image_id, caller=caller), caller)


@router.get("/v2/images/{image_id}/locations", response_model=list[LocationPublic])
def image_locations(image_id: str, bootvol: AppDep, caller: CallerDep) -> list[LocationPublic]:
    """Glance v2.17: where the image's bytes are, for the service role only (OSSN-0065)."""
    record = bootvol.images.get_for_service(image_id, caller=caller)
    return [
        LocationPublic(url=location.url, metadata=dict(location.metadata))
        for location in published_locations(record.location, bootvol.topology)
    ]


@router.post("/v2/images/{image_id}/locations", status_code=202)
def add_image_location(image_id: str, bootvol: AppDep, caller: CallerDep) -> Response:
    """Glance v2.17's add-location: refused (403 but to services, then 400)."""
    bootvol.images.add_location(image_id, caller=caller)


@router.patch(
    "/v2/images/{image_id}",
    response_model=ImagePublic,
    response_model_exclude_unset=True,
    responses={409: {"model": ErrorBody}, 415: {"model": ErrorBody}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                PATCH_MEDIA_TYPE: {
                    "schema": {
                        "type": "array",
                        "items": PatchOperationBody.model_json_schema(),
                    }
                }
            },
        }
    },
)
async def update_image(
    image_id: str, request: Request, bootvol: AppDep, caller: CallerDep
) -> ImagePublic:
    """Glance's JSON patch (application/openstack-images-v2.1-json-patch, or v2.0's)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip()
    if media_type not in PATCH_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"Unsupported Content-Type {media_type or '(none)'!r}: use {PATCH_MEDIA_TYPE}"
        )
    try:
        operations = _patch_body.validate_json(await request.body())
    except ValidationError as exc:
        raise InvalidRequest(f"Invalid JSON patch: {exc.errors()[0]['msg']}") from exc
    record = await run_in_threadpool(
        bootvol.images.update,
        image_id,
        [PatchOperation(op=o.op, path=o.path, value=o.value) for o in operations],
        caller=caller,
    )
    return image_view(record, caller)


@router.post("/v2/images/{image_id}/actions/deactivate", status_code=204)
def deactivate_image(image_id: str, bootvol: AppDep, caller: CallerDep) -> Response:
    bootvol.images.deactivate(image_id, caller=caller)
    return Response(status_code=204)


@router.post("/v2/images/{image_id}/actions/reactivate", status_code=204)
def reactivate_image(image_id: str, bootvol: AppDep, caller: CallerDep) -> Response:
    bootvol.images.reactivate(image_id, caller=caller)
    return Response(status_code=204)


@router.delete("/v2/images/{image_id}", status_code=204)
def delete_image(image_id: str, bootvol: AppDep, caller: CallerDep) -> Response:
    bootvol.images.delete(image_id, caller=caller)
    return Response(status_code=204)


@router.put("/v2/images/{image_id}/tags/{tag}", status_code=204)
def add_tag(image_id: str, tag: str, bootvol: AppDep, caller: CallerDep) -> Response:
    bootvol.images.add_tag(image_id, tag, caller=caller)
    return Response(status_code=204)


@router.delete("/v2/images/{image_id}/tags/{tag}", status_code=204)
def remove_tag(image_id: str, tag: str, bootvol: AppDep, caller: CallerDep) -> Response:
    bootvol.images.remove_tag(image_id, tag, caller=caller)
    return Response(status_code=204)


@router.put(
    "/v2/images/{image_id}/file",
    status_code=204,
    responses={409: {"model": ErrorBody}, 413: {"model": ErrorBody}, 415: {"model": ErrorBody}},
    openapi_extra=OCTET_STREAM_BODY,
)
async def upload_image(
    image_id: str, request: Request, bootvol: AppDep, caller: CallerDep
) -> Response:
    """Upload the image's bytes, streamed into the image store and checked there."""
    body = octet_stream(request)
    await run_in_threadpool(
        bootvol.images.upload,
        image_id,
        body.chunks,
        expected_size=body.expected_size,
        caller=caller,
    )
    return Response(status_code=204)


@router.get(
    "/v2/images/{image_id}/file",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        204: {"description": "The image has no data yet"},
    },
)
def download_image(image_id: str, bootvol: AppDep, caller: CallerDep) -> Response:
    data = bootvol.images.read(image_id, caller=caller)
    if data is None:
        return Response(status_code=204)
    headers = {}
    if data.size is not None:
        headers["Content-Length"] = str(data.size)
    if data.checksum:
        headers["Content-MD5"] = data.checksum
    return StreamingResponse(data.chunks, media_type="application/octet-stream", headers=headers)


def image_view(record: ImageRecord, caller: Caller) -> ImagePublic:
    body: dict[str, Any] = {
        **(record.properties or {}),
        "id": record.id,
        "name": record.name,
        "status": str(record.status),
        "visibility": str(record.visibility),
        "protected": record.protected,
        "os_hidden": record.hidden,
        "checksum": record.checksum,
        "os_hash_algo": record.os_hash_algo,
        "os_hash_value": record.os_hash_value,
        "owner": record.owner,
        "size": record.size,
        "virtual_size": record.virtual_size,
        "min_ram": record.min_ram,
        "min_disk": record.min_disk,
        "disk_format": record.disk_format,
        "container_format": record.container_format,
        "created_at": glance_time(record.created_at),
        "updated_at": glance_time(record.updated_at),
        "tags": record.tags or [],
        "self": f"/v2/images/{record.id}",
        "file": f"/v2/images/{record.id}/file",
        "schema": "/v2/schemas/image",
    }
    if caller.sees_everything and record.location:
        # Glance's show_image_direct_url / show_multiple_locations, for admins only: where
        # the bytes are (a file on the image-store FlexVol, or a remote URL).
        url = record.location.url
        body["direct_url"] = url
        body["locations"] = [LocationPublic(url=url)]
    return ImagePublic.model_validate(body)


def _sort_order(
    *, keys: list[str] | None, dirs: list[str] | None, sort: str | None
) -> list[tuple[str, bool]]:
    """Glance's two spellings: ``sort=name:asc,size`` or ``sort_key=…&sort_dir=…``."""
    order: list[tuple[str, bool]] = []
    if sort:
        if keys or dirs:
            raise InvalidRequest("give sort, or sort_key and sort_dir, not both")
        for part in sort.split(","):
            key, _, direction = part.strip().partition(":")
            order.append((key, _ascending(direction or "desc")))
        return order
    keys = keys or ["created_at"]
    dirs = dirs or []
    if len(dirs) > len(keys):
        raise InvalidRequest("more sort_dir than sort_key values")
    for index, key in enumerate(keys):
        order.append((key, _ascending(dirs[index] if index < len(dirs) else "desc")))
    return order


def _ascending(direction: str) -> bool:
    if direction not in ("asc", "desc"):
        raise InvalidRequest(f"Invalid sort direction {direction!r} (asc or desc)")
    return direction == "asc"


_IMAGE_SCHEMA: dict[str, Any] = {
    "name": "image",
    "additionalProperties": {"type": "string"},
    "properties": {
        "id": {
            "type": "string",
            "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-"
            "([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$",
            "description": "An identifier for the image",
        },
        "name": {"type": ["null", "string"], "maxLength": 255},
        "status": {
            "type": "string",
            "readOnly": True,
            "enum": [
                "queued",
                "saving",
                "active",
                "killed",
                "deleted",
                "uploading",
                "importing",
                "pending_delete",
                "deactivated",
            ],
        },
        "visibility": {"type": "string", "enum": ["community", "public", "private", "shared"]},
        "protected": {"type": "boolean"},
        "os_hidden": {"type": "boolean"},
        "checksum": {"type": ["null", "string"], "readOnly": True, "maxLength": 32},
        "os_hash_algo": {"type": ["null", "string"], "readOnly": True, "maxLength": 64},
        "os_hash_value": {"type": ["null", "string"], "readOnly": True, "maxLength": 128},
        "owner": {"type": ["null", "string"], "maxLength": 255},
        "size": {"type": ["null", "integer"], "readOnly": True},
        "virtual_size": {"type": ["null", "integer"], "readOnly": True},
        "container_format": {"type": ["null", "string"], "enum": [None, "bare"]},
        "disk_format": {
            "type": ["null", "string"],
            "enum": [None, "raw", "qcow2", "vmdk", "vhd", "vhdx", "vdi"],
        },
        "created_at": {"type": "string", "readOnly": True},
        "updated_at": {"type": "string", "readOnly": True},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 255}},
        "direct_url": {"type": "string", "readOnly": True},
        "min_ram": {"type": "integer"},
        "min_disk": {"type": "integer"},
        "self": {"type": "string", "readOnly": True},
        "file": {"type": "string", "readOnly": True},
        "schema": {"type": "string", "readOnly": True},
        "locations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"url": {"type": "string"}, "metadata": {"type": "object"}},
            },
        },
    },
    "links": [
        {"rel": "self", "href": "{self}"},
        {"rel": "enclosure", "href": "{file}"},
        {"rel": "describedby", "href": "{schema}"},
    ],
}


def _member_statuses(value: str | None) -> list[MemberStatus]:
    """Glance's member_status filter: accepted by default, or one status, or all."""
    if value is None:
        return [MemberStatus.ACCEPTED]
    if value == "all":
        return list(MemberStatus)
    try:
        return [MemberStatus(value)]
    except ValueError:
        choices = ", ".join([*MemberStatus, "all"])
        raise InvalidRequest(f"Invalid status value: {value} (one of {choices})") from None


def _any_of(value: str | None) -> list[str] | None:
    """Glance's ``in:`` operator (``disk_format=in:raw,qcow2``), or one value."""
    if value is None:
        return None
    if value.startswith("in:"):
        return [part for part in value[3:].split(",") if part]
    return [value]
