"""The FastAPI application: the three OpenStack APIs, /metrics, and the error handler."""

from __future__ import annotations

from fastapi import FastAPI, Response
from fastapi.responses import PlainTextResponse

from bootvol.api import (
    compute,
    errors,
    identity,
    identity_admin,
    image,
    image_import,
    image_members,
    server_volumes,
    snapshots,
    volume,
    volume_attachments,
    volume_types,
)
from bootvol.api.requests import OpenStackRequests
from bootvol.metrics import CONTENT_TYPE
from bootvol.runtime import Bootvol


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
    app.include_router(identity_admin.router)
    app.include_router(image.router)
    app.include_router(image_import.router)
    app.include_router(image_members.router)
    app.include_router(volume.router)
    app.include_router(snapshots.router)
    app.include_router(volume_types.router)
    app.include_router(compute.router)
    app.include_router(server_volumes.router)
    app.include_router(volume_attachments.router)

    @app.get("/metrics", response_class=PlainTextResponse, tags=["metrics"])
    def metrics() -> Response:
        """Prometheus text format: volumes per path, creation seconds, cache, bytes."""
        return Response(bootvol.metrics.exposition(), media_type=CONTENT_TYPE)

    app.add_middleware(OpenStackRequests)
    return app
