"""Nova flavors: what a server gets of a host (vCPUs, RAM, a root disk size).

Every project sees the public flavors; only admins create and delete them (Nova's default
policy, ``os_compute_api:os-flavor-manage:create``/``delete`` is admin-only). A fresh
database gets Nova's classic defaults, ids "1" to "5".
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select

from bootvol.caller import Caller
from bootvol.db.models import FlavorRecord
from bootvol.db.records import Records
from bootvol.db.session import SessionFactory
from bootvol.errors import Conflict, InvalidRequest, NotFound

_INT32 = 2**31 - 1  # Nova's bounds: 32-bit integer columns


@dataclass(frozen=True)
class FlavorCreate:
    name: str
    vcpus: int
    ram_mib: int
    disk_gib: int = 0
    id: str | None = None  # Nova makes a UUID when none is given ("auto")
    is_public: bool = True
    description: str | None = None


# Nova's classic default flavors (id, name, vCPUs, RAM MiB, disk GiB).
DEFAULT_FLAVORS = (
    FlavorCreate(id="1", name="m1.tiny", vcpus=1, ram_mib=512, disk_gib=1),
    FlavorCreate(id="2", name="m1.small", vcpus=1, ram_mib=2048, disk_gib=20),
    FlavorCreate(id="3", name="m1.medium", vcpus=2, ram_mib=4096, disk_gib=40),
    FlavorCreate(id="4", name="m1.large", vcpus=4, ram_mib=8192, disk_gib=80),
    FlavorCreate(id="5", name="m1.xlarge", vcpus=8, ram_mib=16384, disk_gib=160),
)


class FlavorService:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions
        self._records = Records(sessions, FlavorRecord, kind="flavor")

    def ensure_defaults(self) -> None:
        """Add the default flavors to a database that has no flavor at all."""
        with self._sessions.begin() as session:
            if session.scalar(select(FlavorRecord.id).limit(1)) is not None:
                return
            for flavor in DEFAULT_FLAVORS:
                session.add(_record(flavor))

    def list(self, *, caller: Caller) -> list[FlavorRecord]:
        statement = select(FlavorRecord).order_by(FlavorRecord.ram_mib, FlavorRecord.id)
        if not caller.sees_everything:
            statement = statement.where(FlavorRecord.is_public.is_(True))
        with self._sessions() as session:
            return list(session.scalars(statement))

    def get(self, ref: str) -> FlavorRecord:
        """By id, or by name when one flavor has it (names are unique)."""
        try:
            return self._records.get(ref)
        except NotFound:
            raise NotFound(f"Flavor {ref} could not be found.") from None

    def get_by_id(self, flavor_id: str) -> FlavorRecord:
        """By id only (Nova's GET /flavors/{id}; clients then look names up in the list)."""
        record = self._records.get_by_id(flavor_id)
        if record is None:
            raise NotFound(f"Flavor {flavor_id} could not be found.")
        return record

    def create(self, request: FlavorCreate, *, caller: Caller) -> FlavorRecord:
        caller.require_admin("os_compute_api:os-flavor-manage:create")
        _validate(request)
        with self._sessions() as session:
            taken = session.scalar(
                select(FlavorRecord.id).where(
                    (FlavorRecord.name == request.name) | (FlavorRecord.id == (request.id or ""))
                )
            )
        if taken is not None:
            raise Conflict(f"Flavor with name {request.name} or id {request.id} already exists.")
        return self._records.add(_record(request))

    def delete(self, flavor_id: str, *, caller: Caller) -> None:
        caller.require_admin("os_compute_api:os-flavor-manage:delete")
        record = self._records.get_by_id(flavor_id)
        if record is None:
            raise NotFound(f"Flavor {flavor_id} could not be found.")
        self._records.delete(record.id)


def _validate(request: FlavorCreate) -> None:
    if not request.name or len(request.name) > 255:
        raise InvalidRequest("a flavor name is 1 to 255 characters")
    if request.vcpus < 1 or request.ram_mib < 1 or request.disk_gib < 0:
        raise InvalidRequest("a flavor needs at least 1 vCPU and 1 MiB of RAM, and disk ≥ 0")
    if max(request.vcpus, request.ram_mib, request.disk_gib) > _INT32:
        raise InvalidRequest(f"a flavor's vCPUs, RAM and disk are at most {_INT32}")


def _record(request: FlavorCreate) -> FlavorRecord:
    return FlavorRecord(
        id=request.id or str(uuid.uuid4()),
        name=request.name,
        vcpus=request.vcpus,
        ram_mib=request.ram_mib,
        disk_gib=request.disk_gib,
        is_public=request.is_public,
        description=request.description,
    )
