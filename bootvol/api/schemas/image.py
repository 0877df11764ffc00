"""Glance v2 bodies: image create, the image itself, lists, JSON-patch operations.

An image carries its additional properties flat beside the core attributes (Glance's
schema: ``additionalProperties: {"type": "string"}``), so both models allow extra keys.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ImageCreateBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = Field(
        None,
        pattern=r"^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}"
        r"-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$",
    )
    name: str | None = Field(None, max_length=255)
    disk_format: str | None = None
    container_format: str | None = None
    visibility: Literal["public", "private", "shared", "community"] | None = None
    protected: bool = False
    os_hidden: bool = False
    min_disk: int = Field(0, ge=0)
    min_ram: int = Field(0, ge=0)
    tags: list[str] = Field(default_factory=list)
    owner: str | None = None

    @model_validator(mode="after")
    def _properties_are_strings(self) -> ImageCreateBody:
        for key, value in (self.model_extra or {}).items():
            if not isinstance(value, str):
                raise ValueError(f"property {key!r} must be a string (Glance's schema)")
        return self

    @property
    def properties(self) -> dict[str, str]:
        return dict(self.model_extra or {})


class LocationPublic(BaseModel):
    url: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class ImagePublic(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str
    name: str | None
    status: str
    visibility: str
    protected: bool
    os_hidden: bool
    checksum: str | None
    os_hash_algo: str | None
    os_hash_value: str | None
    owner: str | None
    size: int | None
    virtual_size: int | None
    min_ram: int
    min_disk: int
    disk_format: str | None
    container_format: str | None
    created_at: str | None
    updated_at: str | None
    tags: list[str]
    self_link: str = Field(alias="self")
    file: str
    schema_link: str = Field(alias="schema")
    direct_url: str | None = Field(None, description="Admins only")
    locations: list[LocationPublic] | None = Field(None, description="Admins only")


class ImageListParams(BaseModel):
    """Query parameters of the image list (api-ref "List images")."""

    limit: int = Field(25, ge=0, description="Glance's limit_param_default is 25")
    marker: str | None = None
    name: str | None = None
    status: str | None = None
    visibility: str | None = Field(None, description="public, private, shared, community, all")
    owner: str | None = None
    protected: bool | None = None
    os_hidden: bool = False
    tag: list[str] = Field(default_factory=list, description="Images with every tag given")
    disk_format: str | None = Field(None, description="A format, or in:raw,qcow2")
    container_format: str | None = Field(None, description="A format, or in:bare,ovf")
    size_min: int | None = Field(None, ge=0, description="Bytes")
    size_max: int | None = Field(None, ge=0, description="Bytes")
    member_status: str | None = Field(
        None, description="accepted (the default), pending, rejected or all"
    )
    sort_key: list[str] = Field(default_factory=list)
    sort_dir: list[str] = Field(default_factory=list)
    sort: str | None = Field(None, description="key[:asc|desc],… (not with sort_key)")


class ImageList(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    images: list[ImagePublic]
    first: str
    schema_link: str = Field(alias="schema")
    next: str | None = Field(None, description="Absent on the last page")


class PatchOperationBody(BaseModel):
    op: Literal["add", "replace", "remove"]
    path: str
    value: Any = None


class ImageSchema(BaseModel):
    """Glance's JSON Schema documents (GET /v2/schemas/image[s])."""

    model_config = ConfigDict(extra="allow")

    name: str
    properties: dict[str, Any]


class MemberCreateBody(BaseModel):
    member: str = Field(max_length=255, description="The project id to share the image with")


class MemberUpdateBody(BaseModel):
    status: str = Field(description="pending, accepted or rejected")


class MemberPublic(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    image_id: str
    member_id: str
    status: str
    created_at: str
    updated_at: str
    schema_link: str = Field("/v2/schemas/member", alias="schema")


class MemberList(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    members: list[MemberPublic]
    schema_link: str = Field("/v2/schemas/members", alias="schema")
