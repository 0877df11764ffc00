"""Dependencies the routes declare: the Bootvol instance, the caller, the base URL, the
Cinder microversion. ``Annotated`` aliases keep route signatures short.

The ones that only read the request are ``async``: FastAPI runs a plain ``def`` dependency
in its thread pool, a hand-off per dependency per request that costs more than they do.
Only the token's validation reads the database, in the pool."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from bootvol.api.microversion import MIN, APIVersion
from bootvol.caller import Caller
from bootvol.errors import InvalidRequest
from bootvol.identity.service import Scope
from bootvol.runtime import Bootvol

_token = APIKeyHeader(
    name="X-Auth-Token",
    auto_error=False,
    description="A token from POST /identity/v3/auth/tokens (its X-Subject-Token header).",
)


async def get_bootvol(request: Request) -> Bootvol:
    return request.app.state.bootvol


AppDep = Annotated[Bootvol, Depends(get_bootvol)]


def current_auth(bootvol: AppDep, token: Annotated[str | None, Security(_token)]) -> Scope:
    """The validated token's scope; Unauthorized (401) without a valid token."""
    return bootvol.identity.validate(token or "")


CurrentAuth = Annotated[Scope, Depends(current_auth)]


async def current_caller(auth: CurrentAuth) -> Caller:
    return auth.caller


CallerDep = Annotated[Caller, Depends(current_caller)]


async def project_caller(project_id: str, auth: CurrentAuth) -> Caller:
    """Cinder's URLs carry the project id; it must be the token's (else 400, as Cinder)."""
    if project_id != auth.project_id:
        raise InvalidRequest("Malformed request url")
    return auth.caller


ProjectCaller = Annotated[Caller, Depends(project_caller)]


async def base_url(request: Request) -> str:
    """Where clients reach this server: the configured public URL, else the request's."""
    configured: str | None = request.app.state.public_url
    return (configured or str(request.base_url)).rstrip("/")


BaseUrl = Annotated[str, Depends(base_url)]


async def microversion(request: Request) -> APIVersion:
    return getattr(request.state, "microversion", MIN)


Microversion = Annotated[APIVersion, Depends(microversion)]
