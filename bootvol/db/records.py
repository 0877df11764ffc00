"""Record access the services share: add, list, get by id or unique name, update, delete."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from sqlalchemy import select, update

from bootvol.db.models import FlavorRecord, ImageRecord, ServerRecord, VolumeRecord, utcnow
from bootvol.db.session import SessionFactory
from bootvol.errors import Conflict, NotFound

Record = TypeVar("Record", ImageRecord, VolumeRecord, ServerRecord, FlavorRecord)


class Records(Generic[Record]):
    """One table's records; each call is its own short transaction."""

    def __init__(
        self,
        sessions: SessionFactory,
        model: type[Record],
        *,
        kind: str,
        not_found: type[NotFound] = NotFound,
    ) -> None:
        self._sessions = sessions
        self._model = model
        self._kind = kind  # "image", "volume": for messages
        self._not_found = not_found

    def add(self, record: Record) -> Record:
        with self._sessions.begin() as session:
            session.add(record)
        return record

    def list(self) -> list[Record]:
        with self._sessions() as session:
            return list(session.scalars(select(self._model).order_by(self._model.created_at)))

    def get_by_id(self, record_id: str) -> Record | None:
        with self._sessions() as session:
            return session.get(self._model, record_id)

    def get(self, ref: str) -> Record:
        """By id, or by name when exactly one record has that name."""
        with self._sessions() as session:
            record = session.get(self._model, ref)
            if record is not None:
                return record
            matches = list(session.scalars(select(self._model).where(self._model.name == ref)))
        if not matches:
            raise self._not_found(f"no {self._kind} with id or name {ref!r}")
        if len(matches) > 1:
            ids = ", ".join(m.id for m in matches)
            raise Conflict(f"several {self._kind}s are named {ref!r} ({ids}); use the id")
        return matches[0]

    def update(self, record_id: str, *, expect_status: object = None, **fields: object) -> Record:
        """Set ``fields``; NotFound if the record is gone, or (with ``expect_status``) if its
        status is another: then it is not the record the caller worked for."""
        with self._sessions.begin() as session:
            record = session.get(self._model, record_id)
            if record is None or (
                expect_status is not None and getattr(record, "status", None) != expect_status
            ):
                raise NotFound(f"{self._kind} {record_id} disappeared during the operation")
            for name, value in fields.items():
                setattr(record, name, value)
            return record

    def delete(self, record_id: str) -> None:
        with self._sessions.begin() as session:
            record = session.get(self._model, record_id)
            if record is not None:
                session.delete(record)

    def move_status(self, record_id: str, *, expect: object, to: object) -> bool:
        """Set the status to ``to`` if it is ``expect``, in one conditional UPDATE: of
        concurrent movers exactly one succeeds. False when the status was another."""
        model: Any = self._model  # every record that has a status moves this way
        with self._sessions.begin() as session:
            moved = session.execute(
                update(model)
                .where(model.id == record_id, model.status == expect)
                .values(status=to, updated_at=utcnow())
            ).rowcount
        return bool(moved == 1)
