"""Keystone v3 routes under /identity: version discovery, tokens, the catalog, projects."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response
from fastapi.responses import JSONResponse

from bootvol.api import catalog
from bootvol.api.deps import AppDep, BaseUrl, CurrentAuth
from bootvol.api.formats import keystone_time
from bootvol.api.schemas.common import KeystoneErrorBody, Link, MediaType, VersionEntry
from bootvol.api.schemas.identity import (
    AuthRequest,
    CatalogEntry,
    CatalogResponse,
    DomainPublic,
    DomainRef,
    ProjectInToken,
    ProjectList,
    ProjectPublic,
    ProjectResponse,
    RolePublic,
    TokenPublic,
    TokenRequest,
    TokenResponse,
    UserDetail,
    UserPublic,
    UserResponse,
    VersionResponse,
    VersionsResponse,
    VersionValues,
)
from bootvol.db.models import DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME, ProjectRecord, UserRecord
from bootvol.errors import Forbidden, InvalidRequest, NotFound, Unauthorized
from bootvol.identity.service import IssuedToken, Ref, Scope, role_id
from bootvol.runtime import Bootvol

router = APIRouter(
    prefix="/identity",
    tags=["identity"],
    responses={401: {"model": KeystoneErrorBody, "description": "No valid token"}},
)

_DOMAIN = DomainPublic(id=DEFAULT_DOMAIN_ID, name=DEFAULT_DOMAIN_NAME)
# Keystone's current v3 minor version and its release date, as it publishes them.
_VERSION_ID, _UPDATED = "v3.14", "2020-04-07T00:00:00Z"


def _version(base: str) -> VersionEntry:
    return VersionEntry(
        id=_VERSION_ID,
        status="stable",
        updated=_UPDATED,
        links=[Link(rel="self", href=f"{catalog.identity_url(base)}/v3/")],
        media_types=[
            MediaType(base="application/json", type="application/vnd.openstack.identity-v3+json")
        ],
    )


@router.get("", response_model=VersionsResponse, status_code=300, include_in_schema=False)
@router.get("/", response_model=VersionsResponse, status_code=300)
def versions(base: BaseUrl) -> JSONResponse:
    """Version discovery: Keystone answers 300 Multiple Choices with every version."""
    body = VersionsResponse(versions=VersionValues(values=[_version(base)]))
    return JSONResponse(body.model_dump(by_alias=True, exclude_none=True), status_code=300)


@router.get(
    "/v3", response_model=VersionResponse, response_model_exclude_none=True, include_in_schema=False
)
@router.get("/v3/", response_model=VersionResponse, response_model_exclude_none=True)
def version(base: BaseUrl) -> VersionResponse:
    return VersionResponse(version=_version(base))


@router.post(
    "/v3/auth/tokens",
    status_code=201,
    response_model=TokenResponse,
    responses={201: {"headers": {"X-Subject-Token": {"description": "The new token"}}}},
)
def issue_token(
    body: TokenRequest,
    bootvol: AppDep,
    base: BaseUrl,
    response: Response,
    nocatalog: bool = False,
) -> TokenResponse:
    """Password (or token) authentication, scoped to a project."""
    issued = _authenticate(bootvol, body.auth)
    response.headers["X-Subject-Token"] = issued.token
    return TokenResponse(token=_token_body(issued.scope, base, bootvol, with_catalog=not nocatalog))


@router.get("/v3/auth/tokens", response_model=TokenResponse)
def validate_token(
    bootvol: AppDep,
    auth: CurrentAuth,
    base: BaseUrl,
    response: Response,
    subject: Annotated[str, Header(alias="X-Subject-Token")],
    nocatalog: bool = False,
) -> TokenResponse:
    """Validate another token (the one in X-Subject-Token)."""
    scope = _validate_subject(bootvol, auth, subject)
    response.headers["X-Subject-Token"] = subject
    return TokenResponse(token=_token_body(scope, base, bootvol, with_catalog=not nocatalog))


@router.delete("/v3/auth/tokens", status_code=204)
def revoke_token(
    bootvol: AppDep, auth: CurrentAuth, subject: Annotated[str, Header(alias="X-Subject-Token")]
) -> Response:
    _validate_subject(bootvol, auth, subject, services_may=False)
    bootvol.identity.revoke(subject)
    return Response(status_code=204)


@router.get("/v3/auth/catalog", response_model=CatalogResponse)
def token_catalog(bootvol: AppDep, auth: CurrentAuth, base: BaseUrl) -> CatalogResponse:
    return CatalogResponse(catalog=_catalog(auth, base, bootvol))


@router.get("/v3/auth/projects", response_model=ProjectList)
def token_projects(bootvol: AppDep, auth: CurrentAuth, base: BaseUrl) -> ProjectList:
    """The projects the token's user holds a role on."""
    projects = [
        p
        for p in bootvol.identity.list_projects()
        if bootvol.identity.roles_of(user_id=auth.user_id, project_id=p.id)
    ]
    return project_list(projects, base, "auth/projects")


@router.get("/v3/projects", response_model=ProjectList)
def list_projects(
    bootvol: AppDep, auth: CurrentAuth, base: BaseUrl, name: str | None = None
) -> ProjectList:
    """Every project (admins); others list theirs through /v3/auth/projects."""
    if not auth.is_admin:
        raise Forbidden("You are not authorized to perform the requested action: list projects")
    projects = [p for p in bootvol.identity.list_projects() if name in (None, p.name)]
    return project_list(projects, base, "projects")


@router.get("/v3/projects/{project_id}", response_model=ProjectResponse)
def show_project(
    project_id: str, bootvol: AppDep, auth: CurrentAuth, base: BaseUrl
) -> ProjectResponse:
    if not auth.is_admin and project_id != auth.project_id:
        raise Forbidden("You are not authorized to perform the requested action: get project")
    project = bootvol.identity.get_project(project_id, by_name=False)
    return ProjectResponse(project=project_view(project, base))


@router.get("/v3/users/{user_id}", response_model=UserResponse)
def show_user(user_id: str, bootvol: AppDep, auth: CurrentAuth, base: BaseUrl) -> UserResponse:
    if not auth.is_admin and user_id != auth.user_id:
        raise Forbidden("You are not authorized to perform the requested action: get user")
    user = bootvol.identity.get_user(user_id, by_name=False)
    return UserResponse(user=user_view(user, base))


def _authenticate(bootvol: Bootvol, auth: AuthRequest) -> IssuedToken:
    project = None
    if auth.scope not in (None, "unscoped"):
        assert not isinstance(auth.scope, str)
        if auth.scope.project is None:
            raise InvalidRequest("bootvol issues project-scoped tokens only: scope a project")
        wanted = auth.scope.project
        project = Ref(id=wanted.id, name=wanted.name, **_domain(wanted.domain))
    identity = auth.identity
    if "password" in identity.methods:
        if identity.password is None:
            raise InvalidRequest("the password method needs identity.password")
        user = identity.password.user
        return bootvol.identity.authenticate_password(
            user=Ref(id=user.id, name=user.name, **_domain(user.domain)),
            password=user.password,
            project=project,
        )
    if identity.token is None:
        raise InvalidRequest("the token method needs identity.token.id")
    return bootvol.identity.authenticate_token(token=identity.token.id, project=project)


def _domain(domain: DomainRef | None) -> dict[str, str | None]:
    return {"domain_id": domain.id, "domain_name": domain.name} if domain else {}


def _validate_subject(
    bootvol: Bootvol, auth: Scope, subject: str, *, services_may: bool = True
) -> Scope:
    if subject == "":
        raise NotFound("Could not find token.")
    try:
        scope = bootvol.identity.validate(subject)
    except Unauthorized as exc:  # an invalid subject is "not found": the caller is valid
        raise NotFound("Could not find token.") from exc
    # Keystone's defaults: identity:validate_token allows admins, service users
    # (keystonemiddleware in a Cinder validates its users' tokens so) and the token's own
    # user; identity:revoke_token only admins and the token's own user.
    privileged = auth.is_admin or (services_may and auth.is_service)
    if not privileged and scope.user_id != auth.user_id:
        action = "validate" if services_may else "revoke"
        raise Forbidden(f"You are not authorized to {action} another user's token")
    return scope


def _catalog(scope: Scope, base: str, bootvol: Bootvol) -> list[CatalogEntry]:
    block_storage = bootvol.settings.catalog.block_storage
    return catalog.catalog(base, scope.project_id, block_storage=block_storage)


def _token_body(scope: Scope, base: str, bootvol: Bootvol, *, with_catalog: bool) -> TokenPublic:
    return TokenPublic(
        methods=list(scope.methods),
        user=UserPublic(id=scope.user_id, name=scope.user_name, domain=_DOMAIN),
        audit_ids=[scope.audit_id],
        expires_at=keystone_time(scope.expires_at),
        issued_at=keystone_time(scope.issued_at),
        project=ProjectInToken(id=scope.project_id, name=scope.project_name, domain=_DOMAIN),
        roles=[RolePublic(id=role_id(name), name=name) for name in scope.roles],
        catalog=_catalog(scope, base, bootvol) if with_catalog else [],
    )


def user_view(user: UserRecord, base: str) -> UserDetail:
    return UserDetail(
        id=user.id,
        name=user.name,
        domain_id=user.domain_id,
        enabled=user.enabled,
        default_project_id=user.default_project_id,
        links={"self": f"{catalog.identity_url(base)}/v3/users/{user.id}"},
    )


def project_view(project: ProjectRecord, base: str) -> ProjectPublic:
    return ProjectPublic(
        id=project.id,
        name=project.name,
        domain_id=project.domain_id,
        description=project.description or "",
        enabled=project.enabled,
        parent_id=project.domain_id,  # Keystone: a top-level project's parent is its domain
        links={"self": f"{catalog.identity_url(base)}/v3/projects/{project.id}"},
    )


def project_list(projects: list[ProjectRecord], base: str, path: str) -> ProjectList:
    return ProjectList(
        projects=[project_view(p, base) for p in projects],
        links={"self": f"{catalog.identity_url(base)}/v3/{path}", "previous": None, "next": None},
    )
