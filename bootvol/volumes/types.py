"""Cinder volume types, and the extra specs that steer a type's volumes to FlexVols.

``__DEFAULT__`` is a real type (made by the migration), the one a volume gets when it names
none. Admins create and delete types and set their extra specs; every project sees the
public ones. Two extra specs steer placement (others are kept, as Cinder keeps the specs a
backend ignores):

* ``bootvol:flexvol`` — a FlexVol name, or several separated by commas: the volume goes
  to one of them;
* ``capabilities:reflink`` — ``<is> True`` (or ``<is> False``): only FlexVols that can
  (cannot) reflink, Cinder's capability-filter syntax.

A type whose specs no FlexVol meets refuses the volume at once, naming the specs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from bootvol.caller import OPERATOR, Caller
from bootvol.db.models import DEFAULT_VOLUME_TYPE_ID, VolumeRecord, VolumeTypeRecord
from bootvol.db.records import Records
from bootvol.db.session import SessionFactory
from bootvol.errors import Conflict, InvalidRequest, NotFound
from bootvol.storage.flexvol import FlexVol

FLEXVOL_SPEC = "bootvol:flexvol"
REFLINK_SPEC = "capabilities:reflink"


@dataclass(frozen=True)
class TypeCreate:
    name: str
    description: str | None = None
    is_public: bool = True
    extra_specs: Mapping[str, str] | None = None


def accepts(record: VolumeTypeRecord) -> Callable[[FlexVol], bool]:
    """Whether a FlexVol meets the type's extra specs."""
    specs = record.extra_specs or {}
    names = {n.strip() for n in specs.get(FLEXVOL_SPEC, "").split(",") if n.strip()}
    reflink = _boolean_spec(specs.get(REFLINK_SPEC))

    def meets(flexvol: FlexVol) -> bool:
        if names and flexvol.name not in names:
            return False
        return reflink is None or flexvol.capabilities.reflink == reflink

    return meets


def _boolean_spec(text: str | None) -> bool | None:
    """``<is> True`` (Cinder's capabilities filter) or a bare boolean; None when unset."""
    if text is None:
        return None
    value = text.removeprefix("<is>").strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise InvalidRequest(f"{REFLINK_SPEC} must be '<is> True' or '<is> False', not {text!r}")


class VolumeTypeService:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions
        self._records = Records(sessions, VolumeTypeRecord, kind="volume type")

    def list(self, *, caller: Caller = OPERATOR) -> list[VolumeTypeRecord]:
        statement = select(VolumeTypeRecord).order_by(VolumeTypeRecord.name)
        if not caller.sees_everything:
            statement = statement.where(VolumeTypeRecord.is_public)
        with self._sessions() as session:
            return list(session.scalars(statement))

    def get(self, ref: str | None, *, caller: Caller = OPERATOR) -> VolumeTypeRecord:
        """A type by id or name; the default one for None."""
        ref = ref or DEFAULT_VOLUME_TYPE_ID
        with self._sessions() as session:
            record = session.scalars(
                select(VolumeTypeRecord).where(
                    or_(VolumeTypeRecord.id == ref, VolumeTypeRecord.name == ref)
                )
            ).first()
        if record is None or not (record.is_public or caller.sees_everything):
            raise NotFound(f"Volume type {ref} could not be found.")
        return record

    def create(self, request: TypeCreate, *, caller: Caller = OPERATOR) -> VolumeTypeRecord:
        caller.require_admin("volume_extension:types_manage:create")
        if not request.name.strip() or len(request.name) > 255:
            raise InvalidRequest("a volume type needs a name of at most 255 characters")
        specs = dict(request.extra_specs or {})
        _boolean_spec(specs.get(REFLINK_SPEC))  # refuse a malformed spec now
        record = VolumeTypeRecord(
            id=str(uuid.uuid4()),
            name=request.name,
            description=request.description,
            is_public=request.is_public,
            extra_specs=specs,
        )
        try:
            self._records.add(record)
        except IntegrityError as exc:
            raise Conflict(f"Volume Type {request.name} already exists.") from exc
        return record

    def delete(self, ref: str, *, caller: Caller = OPERATOR) -> None:
        caller.require_admin("volume_extension:types_manage:delete")
        record = self.get(ref, caller=caller)
        if record.id == DEFAULT_VOLUME_TYPE_ID:
            raise InvalidRequest("Default volume type can not be deleted.")
        with self._sessions() as session:
            used = session.scalar(
                select(func.count(VolumeRecord.id)).where(VolumeRecord.volume_type_id == record.id)
            )
        if used:
            raise InvalidRequest(f"Target volume type is still in use: {used} volume(s).")
        self._records.delete(record.id)

    def set_extra_specs(
        self, ref: str, specs: Mapping[str, str], *, caller: Caller
    ) -> VolumeTypeRecord:
        caller.require_admin("volume_extension:types_manage:extra_specs:create")
        _boolean_spec(specs.get(REFLINK_SPEC))
        record = self.get(ref, caller=caller)
        merged = {**(record.extra_specs or {}), **specs}
        return self._records.update(record.id, extra_specs=merged)

    def delete_extra_spec(self, ref: str, key: str, *, caller: Caller) -> None:
        caller.require_admin("volume_extension:types_manage:extra_specs:delete")
        record = self.get(ref, caller=caller)
        specs = dict(record.extra_specs or {})
        if key not in specs:
            raise NotFound(f"Volume Type {record.id} has no extra specs with key {key}.")
        del specs[key]
        self._records.update(record.id, extra_specs=specs)
