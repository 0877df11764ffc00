"""Projects, users, role assignments, and the tokens that carry them (Keystone v3 subset).

One domain, ``default`` ("Default"), as in a fresh Keystone. A user holds roles on projects
(``admin``, ``member`` or ``service``; admin implies member, and both imply ``reader``, as
Keystone's default implied roles do; ``service`` implies nothing). A token is scoped to one
project.

Token invariants: a token is 32 random bytes (URL-safe base64), handed out once; the
database keeps only its SHA-256, with the user, project, methods and expiry. Validation
reads the user's *current* roles on the project, so a revoked role or a disabled user or
project ends every token at once; an expired token is refused and swept on the next issue.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bootvol.caller import Caller
from bootvol.db.models import (
    DEFAULT_DOMAIN_ID,
    DEFAULT_DOMAIN_NAME,
    ProjectRecord,
    Role,
    RoleAssignmentRecord,
    TokenRecord,
    UserRecord,
    as_utc,
    utcnow,
)
from bootvol.db.session import SessionFactory
from bootvol.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized
from bootvol.identity.passwords import hash_password, verify_password

log = logging.getLogger(__name__)

ADMIN_NAME = "admin"  # the user and project made on first start
TOKEN_LIFETIME = dt.timedelta(hours=1)  # Keystone's default [token] expiration = 3600
_IMPLIED = {
    Role.ADMIN: ("admin", "member", "reader"),
    Role.MEMBER: ("member", "reader"),
    Role.SERVICE: ("service",),
}


@dataclass(frozen=True)
class Ref:
    """A user, project or domain as a request names it: by id, or by name in a domain."""

    id: str | None = None
    name: str | None = None
    domain_id: str | None = None
    domain_name: str | None = None


@dataclass(frozen=True)
class Scope:
    """What a valid token stands for."""

    user_id: str
    user_name: str
    project_id: str
    project_name: str
    roles: tuple[str, ...]  # role names, implied ones included
    methods: tuple[str, ...]
    audit_id: str
    issued_at: dt.datetime
    expires_at: dt.datetime

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    @property
    def is_service(self) -> bool:
        return Role.SERVICE in self.roles

    @property
    def caller(self) -> Caller:
        return Caller(
            project_id=self.project_id,
            user_id=self.user_id,
            is_admin=self.is_admin,
            is_service=self.is_service,
        )


@dataclass(frozen=True)
class IssuedToken:
    token: str  # the secret: shown once, never stored
    scope: Scope


def role_id(name: str) -> str:
    """A stable id per role name (Keystone ids are opaque hex strings)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"bootvol:role:{name}").hex


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class IdentityService:
    def __init__(
        self, *, sessions: SessionFactory, token_lifetime: dt.timedelta = TOKEN_LIFETIME
    ) -> None:
        self._sessions = sessions
        self.token_lifetime = token_lifetime

    # projects ------------------------------------------------------------------------------
    def create_project(
        self,
        name: str,
        *,
        description: str | None = None,
        quota_volumes: int | None = None,
        quota_gigabytes: int | None = None,
    ) -> ProjectRecord:
        _check_name("project", name, limit=64)
        project = ProjectRecord(
            id=uuid.uuid4().hex,
            name=name,
            domain_id=DEFAULT_DOMAIN_ID,
            description=description,
            enabled=True,
        )
        if quota_volumes is not None:
            project.quota_volumes = _quota("volumes", quota_volumes)
        if quota_gigabytes is not None:
            project.quota_gigabytes = _quota("gigabytes", quota_gigabytes)
        try:
            with self._sessions.begin() as session:
                session.add(project)
        except IntegrityError as exc:
            raise Conflict(f"a project named {name!r} already exists") from exc
        log.info("project %s (%s) created", project.id, name)
        return project

    def delete_project(self, ref: str) -> None:
        """Delete a project with its role assignments and tokens (not ``admin``'s); the
        caller checks that nothing (volumes, servers) still belongs to it."""
        project = self.get_project(ref, by_name=False)
        if project.name == ADMIN_NAME:
            raise Forbidden("the admin project is bootvol's own: it cannot be deleted")
        with self._sessions.begin() as session:
            session.execute(delete(TokenRecord).where(TokenRecord.project_id == project.id))
            session.execute(
                delete(RoleAssignmentRecord).where(RoleAssignmentRecord.project_id == project.id)
            )
            session.execute(delete(ProjectRecord).where(ProjectRecord.id == project.id))
        log.info("project %s (%s) deleted", project.id, project.name)

    def list_projects(self) -> list[ProjectRecord]:
        with self._sessions() as session:
            return list(session.scalars(select(ProjectRecord).order_by(ProjectRecord.name)))

    def get_project(self, ref: str, *, by_name: bool = True) -> ProjectRecord:
        """A project by id, or by name too (the operator's CLI; the APIs take ids only)."""
        with self._sessions() as session:
            project = _find_project(session, Ref(id=ref))
            if project is None and by_name:
                project = _find_project(session, Ref(name=ref, domain_id=DEFAULT_DOMAIN_ID))
        if project is None:
            raise NotFound(f"Could not find project: {ref}.")
        return project

    def set_quotas(
        self,
        ref: str,
        *,
        volumes: int | None = None,
        gigabytes: int | None = None,
        snapshots: int | None = None,
        instances: int | None = None,
        cores: int | None = None,
        ram_mib: int | None = None,
    ) -> ProjectRecord:
        """Set the project's Cinder (volumes, gigabytes) and Nova (instances, cores, ram)
        quotas; a value left None is kept, -1 is unlimited."""
        project = self.get_project(ref)
        with self._sessions.begin() as session:
            record = session.get(ProjectRecord, project.id)
            if record is None:
                raise NotFound(f"project {project.id} disappeared during the operation")
            for name, column, value in (
                ("volumes", "quota_volumes", volumes),
                ("gigabytes", "quota_gigabytes", gigabytes),
                ("snapshots", "quota_snapshots", snapshots),
                ("instances", "quota_instances", instances),
                ("cores", "quota_cores", cores),
                ("ram", "quota_ram_mib", ram_mib),
            ):
                if value is not None:
                    setattr(record, column, _quota(name, value))
            return record

    # users ---------------------------------------------------------------------------------
    def create_user(
        self,
        name: str,
        *,
        password: str,
        project: str | None,
        role: Role | None = Role.MEMBER,
        enabled: bool = True,
    ) -> UserRecord:
        """A user whose default project is ``project`` (id or name), with ``role`` on it
        (bootvol's CLI); Keystone's API grants no role with the user (``role=None``)."""
        _check_name("user", name, limit=255)
        if not password:
            raise InvalidRequest("the password must not be empty")
        target = self.get_project(project) if project is not None else None
        user = UserRecord(
            id=uuid.uuid4().hex,
            name=name,
            domain_id=DEFAULT_DOMAIN_ID,
            password_hash=hash_password(password),
            enabled=enabled,
            default_project_id=target.id if target else None,
        )
        try:
            with self._sessions.begin() as session:
                session.add(user)
                session.flush()
                if target is not None and role is not None:
                    session.add(
                        RoleAssignmentRecord(user_id=user.id, project_id=target.id, role=role)
                    )
        except IntegrityError as exc:
            raise Conflict(f"a user named {name!r} already exists") from exc
        log.info("user %s (%s) created, role %s on %s", user.id, name, role, project)
        return user

    def delete_user(self, ref: str) -> None:
        """Delete a user, its role assignments and its tokens (not ``admin``: the one way in)."""
        user = self.get_user(ref, by_name=False)
        if user.name == ADMIN_NAME:
            raise Forbidden("the admin user is bootvol's own: it cannot be deleted")
        with self._sessions.begin() as session:
            session.execute(delete(TokenRecord).where(TokenRecord.user_id == user.id))
            session.execute(
                delete(RoleAssignmentRecord).where(RoleAssignmentRecord.user_id == user.id)
            )
            session.execute(delete(UserRecord).where(UserRecord.id == user.id))
        log.info("user %s (%s) deleted", user.id, user.name)

    def set_password(self, ref: str, password: str) -> UserRecord:
        if not password:
            raise InvalidRequest("the password must not be empty")
        user = self.get_user(ref)
        with self._sessions.begin() as session:
            record = session.get(UserRecord, user.id)
            if record is None:
                raise NotFound(f"user {user.id} disappeared during the operation")
            record.password_hash = hash_password(password)
            # A new password ends the sessions opened with the old one.
            session.execute(delete(TokenRecord).where(TokenRecord.user_id == user.id))
            return record

    def list_users(self) -> list[UserRecord]:
        with self._sessions() as session:
            return list(session.scalars(select(UserRecord).order_by(UserRecord.name)))

    def get_user(self, ref: str, *, by_name: bool = True) -> UserRecord:
        """A user by id, or by name too (the operator's CLI; the APIs take ids only)."""
        with self._sessions() as session:
            user = _find_user(session, Ref(id=ref))
            if user is None and by_name:
                user = _find_user(session, Ref(name=ref, domain_id=DEFAULT_DOMAIN_ID))
        if user is None:
            raise NotFound(f"Could not find user: {ref}.")
        return user

    def grant(self, *, user: str, project: str, role: Role) -> None:
        target_user, target_project = self.get_user(user), self.get_project(project)
        with self._sessions.begin() as session:
            if session.get(RoleAssignmentRecord, (target_user.id, target_project.id, role)):
                return
            session.add(
                RoleAssignmentRecord(
                    user_id=target_user.id, project_id=target_project.id, role=role
                )
            )

    def revoke_role(self, *, user: str, project: str, role: Role) -> None:
        """Take ``role`` on ``project`` from ``user`` (ids); NotFound when it was not held."""
        with self._sessions.begin() as session:
            held = session.get(RoleAssignmentRecord, (user, project, role))
            if held is None:
                raise NotFound(f"Could not find role assignment: {role} of {user} on {project}.")
            session.delete(held)

    def assignments(
        self, *, user_id: str | None = None, project_id: str | None = None
    ) -> list[RoleAssignmentRecord]:
        """Role assignments, optionally of one user and/or on one project."""
        statement = select(RoleAssignmentRecord)
        if user_id is not None:
            statement = statement.where(RoleAssignmentRecord.user_id == user_id)
        if project_id is not None:
            statement = statement.where(RoleAssignmentRecord.project_id == project_id)
        with self._sessions() as session:
            return list(session.scalars(statement))

    def roles_of(self, *, user_id: str, project_id: str) -> tuple[str, ...]:
        with self._sessions() as session:
            return _roles(session, user_id, project_id)

    def ensure_admin(self) -> str | None:
        """Make the ``admin`` user and project on first start; return the new password.

        Returns None when the admin user already exists (its password is not known here).
        """
        with self._sessions() as session:
            if _find_user(session, Ref(name=ADMIN_NAME, domain_id=DEFAULT_DOMAIN_ID)):
                return None
            has_project = _find_project(session, Ref(name=ADMIN_NAME, domain_id=DEFAULT_DOMAIN_ID))
        if not has_project:
            self.create_project(ADMIN_NAME, description="bootvol's administrators")
        password = secrets.token_urlsafe(18)
        self.create_user(ADMIN_NAME, password=password, project=ADMIN_NAME, role=Role.ADMIN)
        return password

    # tokens --------------------------------------------------------------------------------
    def authenticate_password(
        self, *, user: Ref, password: str, project: Ref | None
    ) -> IssuedToken:
        with self._sessions() as session:
            found = _find_user(session, user)
            # Verify even for an unknown user: the same cost either way (see passwords).
            valid = verify_password(found.password_hash if found else None, password)
            if found is None or not valid or not found.enabled:
                raise Unauthorized("The request you have made requires authentication.")
            target = self._scope_project(session, found, project)
        return self._issue(found, target, methods=("password",))

    def authenticate_token(self, *, token: str, project: Ref | None) -> IssuedToken:
        """Exchange a valid token for one scoped to ``project`` (Keystone's token method)."""
        scope = self.validate(token)
        with self._sessions() as session:
            user = session.get(UserRecord, scope.user_id)
            if user is None:
                raise Unauthorized("The request you have made requires authentication.")
            target = self._scope_project(session, user, project or Ref(id=scope.project_id))
        return self._issue(user, target, methods=("token",))

    def validate(self, token: str) -> Scope:
        """The scope of a valid token; Unauthorized for an unknown, expired or orphaned one."""
        refused = Unauthorized("The request you have made requires authentication.")
        if not token:
            raise refused
        with self._sessions() as session:
            # One query for the token, its user and its project: every request runs it.
            found = session.execute(
                select(TokenRecord, UserRecord, ProjectRecord)
                .join(UserRecord, UserRecord.id == TokenRecord.user_id)
                .join(ProjectRecord, ProjectRecord.id == TokenRecord.project_id)
                .where(TokenRecord.id_hash == _hash_token(token))
            ).first()
            if found is None:
                raise refused
            record, user, project = found
            if as_utc(record.expires_at) <= utcnow() or not user.enabled or not project.enabled:
                raise refused
            roles = _roles(session, user.id, project.id)
        if not roles:
            raise refused
        return Scope(
            user_id=user.id,
            user_name=user.name,
            project_id=project.id,
            project_name=project.name,
            roles=roles,
            methods=tuple(record.methods),
            audit_id=record.audit_id,
            issued_at=as_utc(record.issued_at),
            expires_at=as_utc(record.expires_at),
        )

    def revoke(self, token: str) -> None:
        with self._sessions.begin() as session:
            record = session.get(TokenRecord, _hash_token(token))
            if record is None:
                raise NotFound("Could not find token.")
            session.delete(record)

    def _scope_project(
        self, session: Session, user: UserRecord, project: Ref | None
    ) -> ProjectRecord:
        if project is None:
            # An unscoped request: Keystone scopes to the user's default project.
            target = session.get(ProjectRecord, user.default_project_id or "")
        else:
            target = _find_project(session, project)
        if target is None or not target.enabled or not _roles(session, user.id, target.id):
            raise Unauthorized(
                "The request you have made requires authentication "
                "(no role on the requested project)."
            )
        return target

    def _issue(
        self, user: UserRecord, project: ProjectRecord, *, methods: Sequence[str]
    ) -> IssuedToken:
        token = secrets.token_urlsafe(32)
        now = utcnow()
        record = TokenRecord(
            id_hash=_hash_token(token),
            user_id=user.id,
            project_id=project.id,
            methods=list(methods),
            audit_id=secrets.token_urlsafe(16)[:22],  # Keystone's audit ids: 22 characters
            issued_at=now,
            expires_at=now + self.token_lifetime,
        )
        with self._sessions.begin() as session:
            session.execute(delete(TokenRecord).where(TokenRecord.expires_at <= now))
            session.add(record)
            roles = _roles(session, user.id, project.id)
        scope = Scope(
            user_id=user.id,
            user_name=user.name,
            project_id=project.id,
            project_name=project.name,
            roles=roles,
            methods=tuple(methods),
            audit_id=record.audit_id,
            issued_at=now,
            expires_at=record.expires_at,
        )
        return IssuedToken(token=token, scope=scope)


def _in_domain(ref: Ref) -> bool:
    """Only the default domain exists; a name in another domain names nothing."""
    if ref.domain_id is not None:
        return ref.domain_id == DEFAULT_DOMAIN_ID
    if ref.domain_name is not None:
        return ref.domain_name == DEFAULT_DOMAIN_NAME
    return True


def _find_user(session: Session, ref: Ref) -> UserRecord | None:
    if ref.id is not None:
        return session.get(UserRecord, ref.id)
    if ref.name is None or not _in_domain(ref):
        return None
    return session.scalars(
        select(UserRecord).where(
            UserRecord.name == ref.name, UserRecord.domain_id == DEFAULT_DOMAIN_ID
        )
    ).first()


def _find_project(session: Session, ref: Ref) -> ProjectRecord | None:
    if ref.id is not None:
        return session.get(ProjectRecord, ref.id)
    if ref.name is None or not _in_domain(ref):
        return None
    return session.scalars(
        select(ProjectRecord).where(
            ProjectRecord.name == ref.name, ProjectRecord.domain_id == DEFAULT_DOMAIN_ID
        )
    ).first()


def _roles(session: Session, user_id: str, project_id: str) -> tuple[str, ...]:
    held = session.scalars(
        select(RoleAssignmentRecord.role).where(
            RoleAssignmentRecord.user_id == user_id,
            RoleAssignmentRecord.project_id == project_id,
        )
    )
    names: dict[str, None] = {}
    for role in held:
        names.update(dict.fromkeys(_IMPLIED[Role(role)]))
    return tuple(names)


def _check_name(kind: str, name: str, *, limit: int) -> None:
    if not name or len(name) > limit or name.strip() != name:
        raise InvalidRequest(
            f"a {kind} name must be 1 to {limit} characters without surrounding spaces"
        )


def _quota(name: str, value: int) -> int:
    if value < -1:
        raise InvalidRequest(f"quota {name} must be -1 (unlimited) or a count ≥ 0")
    return value
