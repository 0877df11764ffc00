"""Glance v2 interoperable image import under /image: discovery, stage, import."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from bootvol.api.deps import AppDep, CallerDep
from bootvol.api.schemas.common import GLANCE_ERRORS, ErrorBody
from bootvol.api.schemas.image_import import ImportBody, ImportInfo, ImportMethods
from bootvol.api.streaming import OCTET_STREAM_BODY, octet_stream
from bootvol.errors import NotFound
from bootvol.images.imports import ImportMethod, ImportRequest

router = APIRouter(
    prefix="/image/v2",
    tags=["image"],
    responses={**GLANCE_ERRORS, 409: {"model": ErrorBody}},
)

# Glance answers its image create with this header; openstacksdk imports only when the
# method it wants is listed there.
IMPORT_METHODS_HEADER = "OpenStack-image-import-methods"
IMPORT_METHODS = ",".join(ImportMethod)


@router.get("/info/import", response_model=ImportInfo, response_model_by_alias=True)
def import_info(caller: CallerDep) -> ImportInfo:
    return ImportInfo(import_methods=ImportMethods(value=list(ImportMethod)))


@router.get("/info/stores")
def stores_info(caller: CallerDep) -> Response:
    """Glance without multiple stores (enabled_backends) answers 404, as bootvol has one."""
    raise NotFound("Multi backend is not supported at this site.")


@router.put(
    "/images/{image_id}/stage",
    status_code=204,
    responses={415: {"model": ErrorBody}},
    openapi_extra=OCTET_STREAM_BODY,
)
async def stage_image(
    image_id: str, request: Request, bootvol: AppDep, caller: CallerDep
) -> Response:
    """Stage the image's bytes for a glance-direct import (the image becomes uploading)."""
    body = octet_stream(request)
    await run_in_threadpool(
        bootvol.images.imports.stage,
        image_id,
        body.chunks,
        expected_size=body.expected_size,
        caller=caller,
    )
    return Response(status_code=204)


@router.post("/images/{image_id}/import", status_code=202)
def import_image(image_id: str, body: ImportBody, bootvol: AppDep, caller: CallerDep) -> Response:
    """Start the import; the image is importing, then active (or queued, saying why)."""
    request = ImportRequest.parse(method=body.method.name, uri=body.method.uri)
    bootvol.images.imports.start(image_id, request, caller=caller)
    return Response(status_code=202)
