"""Bodies shared by the three services: links, version documents, error bodies."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Link(BaseModel):
    href: str
    rel: str
    type: str | None = None


class MediaType(BaseModel):
    base: str
    type: str


class Fault(BaseModel):
    code: int
    message: str


class ErrorBody(BaseModel):
    """Cinder's (and Nova's) fault body: one key naming the fault, e.g. ``itemNotFound``."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "example": {"itemNotFound": {"code": 404, "message": "Volume x could not be found."}}
        },
    )


class KeystoneError(BaseModel):
    code: int
    title: str
    message: str


class KeystoneErrorBody(BaseModel):
    """Keystone's error body, also what keystonemiddleware answers a missing token with."""

    error: KeystoneError


class VersionEntry(BaseModel):
    """One API version in a discovery document (Keystone, Glance and Cinder shapes)."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    status: str
    links: list[Link]
    updated: str | None = None
    version: str | None = Field(None, description="Cinder: the maximum microversion")
    min_version: str | None = Field(None, description="Cinder: the minimum microversion")
    media_types: list[MediaType] | None = Field(None, alias="media-types")


# The refusals every Glance route may answer, for the OpenAPI document.
GLANCE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody},
    401: {"description": "No valid token"},
    403: {"model": ErrorBody},
    404: {"model": ErrorBody},
}
