"""Keystone v3 bodies: the token request and response, projects and users.

Request shapes follow the Identity API v3 reference ("Password authentication with scoped
authorization"): users, projects and domains are named by id, or by name with a domain.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bootvol.api.schemas.common import VersionEntry


class DomainRef(BaseModel):
    id: str | None = None
    name: str | None = None


class UserRef(BaseModel):
    id: str | None = None
    name: str | None = None
    domain: DomainRef | None = None
    password: str = ""


class PasswordMethod(BaseModel):
    user: UserRef


class TokenMethod(BaseModel):
    id: str


class IdentityRequest(BaseModel):
    methods: list[Literal["password", "token"]] = Field(min_length=1)
    password: PasswordMethod | None = None
    token: TokenMethod | None = None


class ProjectRef(BaseModel):
    id: str | None = None
    name: str | None = None
    domain: DomainRef | None = None


class ScopeRequest(BaseModel):
    project: ProjectRef | None = None


class AuthRequest(BaseModel):
    identity: IdentityRequest
    scope: ScopeRequest | Literal["unscoped"] | None = None


class TokenRequest(BaseModel):
    auth: AuthRequest


class DomainPublic(BaseModel):
    id: str
    name: str


class UserPublic(BaseModel):
    id: str
    name: str
    domain: DomainPublic
    password_expires_at: str | None = None


class ProjectInToken(BaseModel):
    id: str
    name: str
    domain: DomainPublic


class RolePublic(BaseModel):
    id: str
    name: str


class EndpointPublic(BaseModel):
    id: str
    interface: Literal["public", "internal", "admin"]
    region: str
    region_id: str
    url: str


class CatalogEntry(BaseModel):
    id: str
    type: str
    name: str
    endpoints: list[EndpointPublic]


class TokenPublic(BaseModel):
    methods: list[str]
    user: UserPublic
    audit_ids: list[str]
    expires_at: str = Field(description="%Y-%m-%dT%H:%M:%S.%fZ")
    issued_at: str
    project: ProjectInToken
    is_domain: bool = False
    roles: list[RolePublic]
    catalog: list[CatalogEntry]


class TokenResponse(BaseModel):
    token: TokenPublic


class CatalogResponse(BaseModel):
    catalog: list[CatalogEntry]


class ProjectPublic(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    name: str
    domain_id: str
    description: str
    enabled: bool
    is_domain: bool = False
    parent_id: str
    tags: list[str] = []
    links: dict[str, str]


class ProjectResponse(BaseModel):
    project: ProjectPublic


class ProjectList(BaseModel):
    projects: list[ProjectPublic]
    links: dict[str, str | None]


class UserDetail(BaseModel):
    id: str
    name: str
    domain_id: str
    enabled: bool
    default_project_id: str | None
    password_expires_at: str | None = None
    links: dict[str, str]


class UserResponse(BaseModel):
    user: UserDetail


class VersionResponse(BaseModel):
    version: VersionEntry


class VersionValues(BaseModel):
    values: list[VersionEntry]


class VersionsResponse(BaseModel):
    versions: VersionValues
