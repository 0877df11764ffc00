"""The headers every OpenStack API answers with, as one ASGI middleware.

Keystone, Glance and Cinder give each response an ``x-openstack-request-id``; Cinder
negotiates a microversion on every ``/volume/v3`` request (refusing one it does not serve
before any route runs) and echoes it; Nova echoes the compute microversion asked for (2.1
when none) in both of its headers. A plain ASGI middleware rather than Starlette's
``BaseHTTPMiddleware``: that one runs each response through a task and a memory stream,
which cost more than the routes of a fast request.
"""

from __future__ import annotations

import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bootvol.api import compute, errors, microversion
from bootvol.errors import BootvolError

_VOLUME_PREFIX = "/volume/v3"
_COMPUTE_PREFIX = "/compute/v2.1"


class OpenStackHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        path: str = scope["path"]
        request_headers = Headers(scope=scope)
        extra = {"x-openstack-request-id": f"req-{uuid.uuid4()}"}
        if path.startswith(_VOLUME_PREFIX):
            try:
                version = microversion.requested(request_headers.get(microversion.HEADER))
            except BootvolError as exc:
                response = errors.error_response(
                    errors.status_for(exc, path), exc.message, path=path
                )
                response.headers.update(extra)
                await response(scope, receive, send)
                return
            # Request.state reads scope["state"]: the routes' Microversion dependency.
            scope.setdefault("state", {})["microversion"] = version
            extra[microversion.HEADER] = f"{microversion.SERVICE} {version}"
            extra["Vary"] = microversion.HEADER
        elif path.startswith(_COMPUTE_PREFIX):
            asked = compute.requested_version(request_headers)
            extra["OpenStack-API-Version"] = f"compute {asked}"
            extra["X-OpenStack-Nova-API-Version"] = asked
            extra["Vary"] = "OpenStack-API-Version, X-OpenStack-Nova-API-Version"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers[name] = value
            await send(message)

        await self._app(scope, receive, send_with_headers)
