"""The FastAPI application: the three OpenStack APIs, /metrics, and the error handler."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse

from bootvol.api import (
    compute,
    errors,
    identity,
    image,
    microversion,
    server_volumes,
    volume,
    volume_attachments,
)
from bootvol.errors import BootvolError
from bootvol.metrics import CONTENT_TYPE
from bootvol.runtime import Bootvol

Handler = Callable[[Request], Awaitable[Response]]


def create_app(bootvol: Bootvol, *, public_url: str | None = None) -> FastAPI:
    """The API of one Bootvol; ``public_url`` overrides the request's own base URL in
    catalogs and links (for a server behind a proxy)."""
    app = FastAPI(
        title="bootvol",
        version="0.1.0",
        description=(
            "Keystone v3, Glance v2 and Cinder v3 compatible APIs over bootvol's image cache, "
            "file clones and copy offload. Drive it with `openstack` or openstacksdk."
        ),
    )
    app.state.bootvol = bootvol
    app.state.public_url = public_url.rstrip("/") if public_url else None
    errors.install(app)
    app.include_router(identity.router)
    app.include_router(image.router)
    app.include_router(volume.router)
    app.include_router(compute.router)
    app.include_router(server_volumes.router)
    app.include_router(volume_attachments.router)

    @app.get("/metrics", response_class=PlainTextResponse, tags=["metrics"])
    def metrics() -> Response:
        """Prometheus text format: volumes per path, creation seconds, cache, bytes."""
        return Response(bootvol.metrics.exposition(), media_type=CONTENT_TYPE)

    @app.middleware("http")
    async def request_id(request: Request, call_next: Handler) -> Response:
        response = await call_next(request)
        response.headers["x-openstack-request-id"] = f"req-{uuid.uuid4()}"
        return response

    @app.middleware("http")
    async def compute_microversion(request: Request, call_next: Handler) -> Response:
        # Nova echoes the microversion a request asked for (2.1 when none) in both headers.
        response = await call_next(request)
        if request.url.path.startswith("/compute/v2.1"):
            asked = compute.requested_version(request.headers)
            response.headers["OpenStack-API-Version"] = f"compute {asked}"
            response.headers["X-OpenStack-Nova-API-Version"] = asked
            response.headers["Vary"] = "OpenStack-API-Version, X-OpenStack-Nova-API-Version"
        return response

    @app.middleware("http")
    async def volume_microversion(request: Request, call_next: Handler) -> Response:
        # Cinder negotiates a microversion on every /v3 request, echoes it, and refuses
        # one it does not serve before any route runs.
        if not request.url.path.startswith("/volume/v3"):
            return await call_next(request)
        try:
            request.state.microversion = microversion.requested(
                request.headers.get(microversion.HEADER)
            )
        except BootvolError as exc:
            status = errors.status_for(exc, request.url.path)
            return errors.error_response(status, exc.message, path=request.url.path)
        response = await call_next(request)
        response.headers[microversion.HEADER] = (
            f"{microversion.SERVICE} {request.state.microversion}"
        )
        response.headers["Vary"] = microversion.HEADER
        return response

    return app
