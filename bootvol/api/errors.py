"""The one place where errors become HTTP: bootvol.errors → OpenStack status and body.

Bodies: Cinder's fault shape (``{"itemNotFound": {"code": 404, "message": …}}``) for the
image and volume APIs, Keystone's (``{"error": {"code", "title", "message"}}``) for the
identity API and for every 401, which in OpenStack comes from keystonemiddleware.

Status codes, where the services differ, follow each one's reference:

    NotFound                404 itemNotFound
      ImageNotFound         400 badRequest in a volume request (Cinder: "Invalid image
                            identifier or unable to access requested image.")
    InvalidRequest          400 badRequest (and a body that fails validation)
      UnsupportedVersion    406 (Cinder: an unserved microversion)
      UnsupportedMediaType  415 badMediaType
    Conflict                409 conflictingRequest; 400 badRequest in the volume API, where
                            Cinder reports a state that forbids an action as invalid input
    QuotaExceeded           413 overLimit; 403 forbidden in the compute API (as Nova)
    InsufficientSpace       413 in the image API (Glance: storage full), else 400
    Forbidden               403 forbidden
    Unauthorized            401 (with WWW-Authenticate)
    StorageError, others    500 computeFault
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from bootvol.errors import (
    BootvolError,
    Conflict,
    Forbidden,
    ImageNotFound,
    InsufficientSpace,
    InvalidRequest,
    NotFound,
    QuotaExceeded,
    Unauthorized,
    UnsupportedMediaType,
    UnsupportedVersion,
)

log = logging.getLogger(__name__)

# Cinder's fault names by status (cinder.api.openstack.wsgi.Fault); others: computeFault.
_FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    501: "notImplemented",
    503: "serviceUnavailable",
}
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
}


def status_for(exc: BootvolError, path: str) -> int:
    volume_api = path.startswith("/volume")
    if isinstance(exc, Unauthorized):
        return 401
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, ImageNotFound) and volume_api:
        return 400
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, UnsupportedVersion):
        return 406
    if isinstance(exc, UnsupportedMediaType):
        return 415
    if isinstance(exc, InvalidRequest):
        return 400
    if isinstance(exc, Conflict):
        return 400 if volume_api else 409
    if isinstance(exc, QuotaExceeded):
        return 403 if path.startswith("/compute") else 413  # Nova: 403 "Quota exceeded for …"
    if isinstance(exc, InsufficientSpace):
        return 413 if path.startswith("/image") else 400
    return 500


def error_response(
    status: int, message: str, *, path: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    headers = dict(headers or {})
    if status == 401 or path.startswith("/identity"):
        body: dict[str, object] = {
            "error": {"code": status, "title": _TITLES.get(status, "Error"), "message": message}
        }
        if status == 401:
            headers["WWW-Authenticate"] = 'Keystone uri="/identity"'
    else:
        fault = {"code": status, "message": message}
        if status == 413:
            fault["retryAfter"] = "0"
        body = {_FAULT_NAMES.get(status, "computeFault"): fault}
    return JSONResponse(body, status_code=status, headers=headers)


async def _bootvol_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BootvolError)
    path = request.url.path
    status = status_for(exc, path)
    message = exc.message
    if isinstance(exc, ImageNotFound) and status == 400:
        message = f"Invalid image identifier or unable to access requested image. ({message})"
    if status >= 500:
        log.error("%s %s failed: %s", request.method, path, message)
    return error_response(status, message, path=path)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        if error.get("type") == "json_invalid":
            problems.append("the body is not valid JSON")
        else:
            problems.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    message = "Invalid input received: " + "; ".join(problems)
    return error_response(400, message, path=request.url.path)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    # The routes raise NotFound for a missing object; Starlette's own 404 and 405 mean that
    # no route matched. Say so, lest a client look for an object that was never the problem.
    if exc.status_code == 404:
        message = (
            f"bootvol does not provide {request.method} {request.url.path}: this OpenStack "
            "API call is not implemented here (the README lists what bootvol serves)"
        )
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"bootvol does not provide {request.method} on {request.url.path}" + (
            f"; it answers {allowed} there" if allowed else ""
        )
    return error_response(exc.status_code, message, path=request.url.path, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s failed unexpectedly", request.method, request.url.path)
    return error_response(500, f"Unexpected error: {exc!r}", path=request.url.path)


def install(app: FastAPI) -> None:
    app.add_exception_handler(BootvolError, _bootvol_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
