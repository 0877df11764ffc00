"""What every request gets, as one ASGI middleware: OpenStack's headers and an access log line.

Keystone, Glance and Cinder give each response an ``x-openstack-request-id``; Cinder
negotiates a microversion on every ``/volume/v3`` request (refusing one it does not serve
before any route runs) and echoes it; Nova echoes the compute microversion asked for (2.1
when none) in both of its headers. A plain ASGI middleware rather than Starlette's
``BaseHTTPMiddleware``: that one runs each response through a task and a memory stream,
which cost more than the routes of a fast request.

Each request is logged once it is answered, on the ``bootvol.access`` logger (``bootvol
serve`` shows it): ``req-… POST /volume/v3/…/volumes 202 8.1 ms``, the request id being the
one the client got, to find the request in the other logs.
"""

from __future__ import annotations

import logging
import time
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bootvol.api import compute, errors, microversion
from bootvol.errors import BootvolError

access_log = logging.getLogger("bootvol.access")

_VOLUME_PREFIX = "/volume/v3"
_COMPUTE_PREFIX = "/compute/v2.1"


class OpenStackRequests:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope["path"]
        request_id = f"req-{uuid.uuid4()}"
        request_headers = Headers(scope=scope)
        response_headers = {"x-openstack-request-id": request_id}
        status = 500  # what the client gets if the app fails before it answers
        if path.startswith(_VOLUME_PREFIX):
            try:
                version = microversion.requested(request_headers.get(microversion.HEADER))
            except BootvolError as exc:
                response = errors.error_response(
                    errors.status_for(exc, path), exc.message, path=path
                )
                response.headers.update(response_headers)
                await response(scope, receive, send)
                _log(request_id, scope, response.status_code, started)
                return
            # Request.state reads scope["state"]: the routes' Microversion dependency.
            scope.setdefault("state", {})["microversion"] = version
            response_headers[microversion.HEADER] = f"{microversion.SERVICE} {version}"
            response_headers["Vary"] = microversion.HEADER
        elif path.startswith(_COMPUTE_PREFIX):
            asked = compute.requested_version(request_headers)
            response_headers["OpenStack-API-Version"] = f"compute {asked}"
            response_headers["X-OpenStack-Nova-API-Version"] = asked
            response_headers["Vary"] = "OpenStack-API-Version, X-OpenStack-Nova-API-Version"

        status_sent = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, status_sent
            if message["type"] == "http.response.start":
                status, status_sent = message["status"], True
                headers = MutableHeaders(scope=message)
                for name, value in response_headers.items():
                    headers[name] = value
            await send(message)

        try:
            await self._app(scope, receive, send_with_headers)
        except Exception as exc:
            # Starlette's last-resort handler sits outside this middleware, so its 500 would
            # leave without the request id the log line names: answer it here.
            if status_sent:
                raise
            errors.log.exception("%s %s failed unexpectedly", scope["method"], path)
            response = errors.error_response(500, f"Unexpected error: {exc!r}", path=path)
            response.headers.update(response_headers)
            await response(scope, receive, send)
            status = 500
        finally:
            _log(request_id, scope, status, started)


def _log(request_id: str, scope: Scope, status: int, started: float) -> None:
    if access_log.isEnabledFor(logging.INFO):
        query = scope.get("query_string", b"").decode("latin-1")
        target = scope["path"] + (f"?{query}" if query else "")
        milliseconds = (time.perf_counter() - started) * 1000
        access_log.info(
            "%s %s %s %d %.1f ms", request_id, scope["method"], target, status, milliseconds
        )
