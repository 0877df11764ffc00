"""The service catalog a token carries: this server's identity, image and volume endpoints.

Entries follow the Identity API v3 token reference. The image URL has no version (clients
discover v2 there); the block-storage URL is Cinder's ``…/volume/v3/{project_id}``, listed as
both ``block-storage`` (the official service type) and ``volumev3`` (what older clients look
for). Ids are stable: derived from the service type and interface.

With ``[catalog] block_storage`` set, both block-storage entries name that URL instead (a real
Cinder that uses bootvol's engine), its ``{project_id}`` replaced by the token's project.
"""

from __future__ import annotations

import uuid

from bootvol.api.schemas.identity import CatalogEntry, EndpointPublic

REGION = "RegionOne"
INTERFACES = ("public", "internal")


def identity_url(base: str) -> str:
    return f"{base}/identity"


def image_url(base: str) -> str:
    return f"{base}/image"


def volume_url(base: str, project_id: str) -> str:
    return f"{base}/volume/v3/{project_id}"


def compute_url(base: str) -> str:
    return f"{base}/compute/v2.1"


def catalog(base: str, project_id: str, *, block_storage: str | None = None) -> list[CatalogEntry]:
    """The catalog of a token scoped to ``project_id``; ``block_storage``: an external
    Cinder's URL template (``[catalog] block_storage``), else bootvol's volume API."""
    volumes = (
        block_storage.format(project_id=project_id)
        if block_storage
        else volume_url(base, project_id)
    )
    services = (
        ("compute", "nova", compute_url(base)),
        ("identity", "keystone", identity_url(base)),
        ("image", "glance", image_url(base)),
        ("block-storage", "cinder", volumes),
        ("volumev3", "cinderv3", volumes),
    )
    return [
        CatalogEntry(
            id=_id("service", kind),
            type=kind,
            name=name,
            endpoints=[
                EndpointPublic(
                    id=_id("endpoint", kind, interface),
                    interface=interface,  # type: ignore[arg-type]
                    region=REGION,
                    region_id=REGION,
                    url=url,
                )
                for interface in INTERFACES
            ],
        )
        for kind, name, url in services
    ]


def _id(*parts: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, "bootvol:" + ":".join(parts)).hex
