"""Keystone v3's management routes: projects, users and role assignments (admins), and the
read-only ones tools call first (domains, roles, services, endpoints, a user's projects).

Keystone's default policies: admins create, delete and grant; a user lists its own projects
(``/v3/users/{own id}/projects``); domains, roles, services and endpoints are readable by any
token. bootvol has one domain, ``Default``, and the roles it enforces (``admin``, ``member``,
``reader`` implied by both, ``service``). The ``admin`` user and project, bootvol's way in,
cannot be deleted.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict

from bootvol.api import catalog
from bootvol.api.deps import AppDep, BaseUrl, CurrentAuth
from bootvol.api.identity import project_list, project_view, user_view
from bootvol.api.schemas.identity import ProjectList, ProjectResponse, UserResponse
from bootvol.db.models import DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME, Role
from bootvol.errors import Conflict, Forbidden, InvalidRequest, NotFound
from bootvol.identity.service import Scope, role_id

router = APIRouter(prefix="/identity", tags=["identity"])

_ASSIGNABLE = (Role.ADMIN, Role.MEMBER, Role.SERVICE)
_READER = "reader"  # implied by admin and member; not granted by itself here


class ProjectFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    description: str | None = None
    domain_id: str | None = None
    enabled: bool = True


class ProjectCreateBody(BaseModel):
    project: ProjectFields


class UserFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    password: str | None = None
    default_project_id: str | None = None
    domain_id: str | None = None
    enabled: bool = True


class UserCreateBody(BaseModel):
    user: UserFields


def _require_admin(auth: Scope, action: str) -> None:
    if not auth.is_admin:
        raise Forbidden(f"You are not authorized to perform the requested action: {action}")


def _check_domain(domain_id: str | None) -> None:
    if domain_id not in (None, DEFAULT_DOMAIN_ID):
        raise InvalidRequest(f"bootvol has one domain, {DEFAULT_DOMAIN_ID!r}: not {domain_id!r}")


# projects --------------------------------------------------------------------------------
@router.post("/v3/projects", status_code=201, response_model=ProjectResponse)
def create_project(
    body: ProjectCreateBody, bootvol: AppDep, auth: CurrentAuth, base: BaseUrl
) -> ProjectResponse:
    _require_admin(auth, "create project")
    _check_domain(body.project.domain_id)
    project = bootvol.identity.create_project(
        body.project.name, description=body.project.description
    )
    return ProjectResponse(project=project_view(project, base))


@router.delete("/v3/projects/{project_id}", status_code=204)
def delete_project(project_id: str, bootvol: AppDep, auth: CurrentAuth) -> Response:
    _require_admin(auth, "delete project")
    project = bootvol.identity.get_project(project_id, by_name=False)
    if bootvol.volumes.usage(project.id).volumes or bootvol.servers.usage(project.id).instances:
        raise Conflict(f"project {project.name} still has volumes or servers: delete them first")
    bootvol.identity.delete_project(project.id)
    return Response(status_code=204)


# users -----------------------------------------------------------------------------------
@router.get("/v3/users")
def list_users(
    bootvol: AppDep, auth: CurrentAuth, base: BaseUrl, name: str | None = None
) -> dict[str, Any]:
    _require_admin(auth, "list users")
    users = [u for u in bootvol.identity.list_users() if name in (None, u.name)]
    return {
        "users": [user_view(u, base).model_dump() for u in users],
        "links": {"self": f"{catalog.identity_url(base)}/v3/users", "previous": None, "next": None},
    }


@router.post("/v3/users", status_code=201, response_model=UserResponse)
def create_user(
    body: UserCreateBody, bootvol: AppDep, auth: CurrentAuth, base: BaseUrl
) -> UserResponse:
    _require_admin(auth, "create user")
    fields = body.user
    _check_domain(fields.domain_id)
    if not fields.password:
        raise InvalidRequest("bootvol users sign in with a password: give one")
    user = bootvol.identity.create_user(
        fields.name,
        password=fields.password,
        project=fields.default_project_id,
        role=None,  # Keystone grants nothing with a user: `openstack role add` does
        enabled=fields.enabled,
    )
    return UserResponse(user=user_view(user, base))


@router.delete("/v3/users/{user_id}", status_code=204)
def delete_user(user_id: str, bootvol: AppDep, auth: CurrentAuth) -> Response:
    _require_admin(auth, "delete user")
    bootvol.identity.delete_user(user_id)
    return Response(status_code=204)


@router.get("/v3/users/{user_id}/projects", response_model=ProjectList)
def user_projects(user_id: str, bootvol: AppDep, auth: CurrentAuth, base: BaseUrl) -> ProjectList:
    """The projects a user holds a role on: its own, or any user's for admins."""
    if user_id != auth.user_id:
        _require_admin(auth, "list another user's projects")
    user = bootvol.identity.get_user(user_id, by_name=False)
    held = {a.project_id for a in bootvol.identity.assignments(user_id=user.id)}
    projects = [p for p in bootvol.identity.list_projects() if p.id in held]
    return project_list(projects, base, f"users/{user.id}/projects")


# roles and their assignments -------------------------------------------------------------
def _role(name: str, base: str) -> dict[str, Any]:
    return {
        "id": role_id(name),
        "name": name,
        "domain_id": None,
        "description": None,
        "links": {"self": f"{catalog.identity_url(base)}/v3/roles/{role_id(name)}"},
    }


def _role_names() -> list[str]:
    return [str(role) for role in _ASSIGNABLE] + [_READER]


def _role_by_id(role: str) -> Role:
    for candidate in _ASSIGNABLE:
        if role_id(str(candidate)) == role:
            return candidate
    if role == role_id(_READER):
        raise InvalidRequest("bootvol grants reader only through admin or member")
    raise NotFound(f"Could not find role: {role}.")


@router.get("/v3/roles")
def list_roles(auth: CurrentAuth, base: BaseUrl, name: str | None = None) -> dict[str, Any]:
    roles = [_role(n, base) for n in _role_names() if name in (None, n)]
    return {"roles": roles, "links": {"self": f"{catalog.identity_url(base)}/v3/roles"}}


@router.get("/v3/roles/{role}")
def show_role(role: str, auth: CurrentAuth, base: BaseUrl) -> dict[str, Any]:
    for name in _role_names():
        if role_id(name) == role:
            return {"role": _role(name, base)}
    raise NotFound(f"Could not find role: {role}.")


@router.put("/v3/projects/{project_id}/users/{user_id}/roles/{role}", status_code=204)
def grant_role(
    project_id: str, user_id: str, role: str, bootvol: AppDep, auth: CurrentAuth
) -> Response:
    _require_admin(auth, "grant role")
    granted = _role_by_id(role)
    user = bootvol.identity.get_user(user_id, by_name=False)
    project = bootvol.identity.get_project(project_id, by_name=False)
    bootvol.identity.grant(user=user.id, project=project.id, role=granted)
    return Response(status_code=204)


@router.head("/v3/projects/{project_id}/users/{user_id}/roles/{role}", status_code=204)
def check_role(
    project_id: str, user_id: str, role: str, bootvol: AppDep, auth: CurrentAuth
) -> Response:
    _require_admin(auth, "check grant")
    wanted = _role_by_id(role)
    held = bootvol.identity.assignments(user_id=user_id, project_id=project_id)
    if not any(a.role == wanted for a in held):
        raise NotFound(f"Could not find role assignment: {role} of {user_id} on {project_id}.")
    return Response(status_code=204)


@router.delete("/v3/projects/{project_id}/users/{user_id}/roles/{role}", status_code=204)
def revoke_role(
    project_id: str, user_id: str, role: str, bootvol: AppDep, auth: CurrentAuth
) -> Response:
    _require_admin(auth, "revoke grant")
    bootvol.identity.revoke_role(user=user_id, project=project_id, role=_role_by_id(role))
    return Response(status_code=204)


@router.get("/v3/role_assignments")
def role_assignments(
    bootvol: AppDep,
    auth: CurrentAuth,
    base: BaseUrl,
    user_id: Annotated[str | None, Query(alias="user.id")] = None,
    project_id: Annotated[str | None, Query(alias="scope.project.id")] = None,
    include_names: bool = False,
) -> dict[str, Any]:
    """Keystone's ``user.id`` and ``scope.project.id`` filters (query keys with dots)."""
    _require_admin(auth, "list role assignments")
    identity = bootvol.identity
    names = {}
    if include_names:
        names = {u.id: u.name for u in identity.list_users()}
        names |= {p.id: p.name for p in identity.list_projects()}
    rows = []
    for held in identity.assignments(user_id=user_id, project_id=project_id):
        user: dict[str, Any] = {"id": held.user_id}
        project: dict[str, Any] = {"id": held.project_id}
        role: dict[str, Any] = {"id": role_id(str(held.role))}
        if include_names:
            domain = {"id": DEFAULT_DOMAIN_ID, "name": DEFAULT_DOMAIN_NAME}
            user |= {"name": names.get(held.user_id), "domain": domain}
            project |= {"name": names.get(held.project_id), "domain": domain}
            role["name"] = str(held.role)
        rows.append({"user": user, "scope": {"project": project}, "role": role, "links": {}})
    return {
        "role_assignments": rows,
        "links": {"self": f"{catalog.identity_url(base)}/v3/role_assignments"},
    }


# domains, services, endpoints ------------------------------------------------------------
def _domain(base: str) -> dict[str, Any]:
    return {
        "id": DEFAULT_DOMAIN_ID,
        "name": DEFAULT_DOMAIN_NAME,
        "description": "The default domain",
        "enabled": True,
        "links": {"self": f"{catalog.identity_url(base)}/v3/domains/{DEFAULT_DOMAIN_ID}"},
    }


@router.get("/v3/domains")
def list_domains(auth: CurrentAuth, base: BaseUrl, name: str | None = None) -> dict[str, Any]:
    domains = [_domain(base)] if name in (None, DEFAULT_DOMAIN_NAME) else []
    return {"domains": domains, "links": {"self": f"{catalog.identity_url(base)}/v3/domains"}}


@router.get("/v3/domains/{domain_id}")
def show_domain(domain_id: str, auth: CurrentAuth, base: BaseUrl) -> dict[str, Any]:
    if domain_id != DEFAULT_DOMAIN_ID:
        raise NotFound(f"Could not find domain: {domain_id}.")
    return {"domain": _domain(base)}


@router.get("/v3/services")
def list_services(bootvol: AppDep, auth: CurrentAuth, base: BaseUrl) -> dict[str, Any]:
    entries = catalog.catalog(
        base, auth.project_id, block_storage=bootvol.settings.catalog.block_storage
    )
    services = [
        {"id": e.id, "type": e.type, "name": e.name, "enabled": True, "description": None}
        for e in entries
    ]
    return {"services": services, "links": {"self": f"{catalog.identity_url(base)}/v3/services"}}


@router.get("/v3/endpoints")
def list_endpoints(bootvol: AppDep, auth: CurrentAuth, base: BaseUrl) -> dict[str, Any]:
    entries = catalog.catalog(
        base, auth.project_id, block_storage=bootvol.settings.catalog.block_storage
    )
    endpoints = [
        {**endpoint.model_dump(), "service_id": entry.id, "enabled": True}
        for entry in entries
        for endpoint in entry.endpoints
    ]
    return {
        "endpoints": endpoints,
        "links": {"self": f"{catalog.identity_url(base)}/v3/endpoints"},
    }
