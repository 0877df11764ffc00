"""Marker pagination over any sort order, as OpenStack lists page (``limit`` + ``marker``).

A page is the rows strictly after the marker row in the sort order. The order always ends
with ``id``, so it is total and a marker names one position even among equal keys; nullable
keys sort through a coalesced value, because ``NULL > x`` is neither true nor false and
would drop rows from every page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from bootvol.errors import InvalidRequest

Row = TypeVar("Row")


@dataclass(frozen=True)
class SortKey:
    expression: ColumnElement[Any]
    ascending: bool


def sortable(column: Any, *, empty: object | None = None) -> ColumnElement[Any]:
    """A column to sort on; ``empty`` stands in for NULL in a nullable one."""
    return column if empty is None else func.coalesce(column, empty)


def values_at(
    session: Session, id_column: Any, keys: Sequence[SortKey], record_id: str
) -> list[Any] | None:
    """The marker row's values of ``keys``; None when no row has that id."""
    row = session.execute(
        select(*(k.expression for k in keys)).where(id_column == record_id)
    ).first()
    return None if row is None else list(row)


def page(
    statement: Select[Any],
    *,
    keys: Sequence[SortKey],
    marker_values: Sequence[Any] | None,
    limit: int | None,
) -> Select[Any]:
    """Order ``statement`` by ``keys`` and keep the rows after the marker, at most ``limit``.

    ``marker_values`` are the marker row's values of the same ``keys``, in order.
    """
    statement = statement.order_by(
        *(k.expression.asc() if k.ascending else k.expression.desc() for k in keys)
    )
    if marker_values is not None:
        after = []
        for index, key in enumerate(keys):
            equal_before = [keys[j].expression == marker_values[j] for j in range(index)]
            beyond = (
                key.expression > marker_values[index]
                if key.ascending
                else key.expression < marker_values[index]
            )
            after.append(and_(*equal_before, beyond))
        statement = statement.where(or_(*after))
    if limit is not None:
        statement = statement.limit(limit)
    return statement


def sort_keys(
    sort: Sequence[tuple[str, bool]], columns: Mapping[str, ColumnElement[Any]]
) -> list[SortKey]:
    """The keys of a list request's ``sort`` ((key, ascending) pairs, by the names in
    ``columns``), ending with ``id`` so that the order is total."""
    keys = []
    for key, ascending in sort:
        if key not in columns:
            known = ", ".join(sorted(columns))
            raise InvalidRequest(f"Invalid sort key {key!r} (one of {known})")
        keys.append(SortKey(columns[key], ascending))
    if not any(key == "id" for key, _ in sort):
        keys.append(SortKey(columns["id"], keys[-1].ascending if keys else False))
    return keys


def fetch_page(
    session: Session,
    statement: Select[tuple[Row]],
    *,
    id_column: Any,
    keys: Sequence[SortKey],
    marker_id: str | None,
    limit: int | None,
    keep: Callable[[Row], bool] | None = None,
) -> tuple[list[Row], bool]:
    """One page of ``statement``'s rows after the row ``marker_id`` (visible to the caller:
    checked by the caller), and whether more follow. ``keep`` filters rows in Python where
    SQL cannot (JSON fields differ per database); the page is cut after it."""
    marker_values = None if marker_id is None else values_at(session, id_column, keys, marker_id)
    fetch = None if limit is None or keep is not None else limit + 1
    statement = page(statement, keys=keys, marker_values=marker_values, limit=fetch)
    rows = [row for row in session.scalars(statement) if keep is None or keep(row)]
    if limit is not None and len(rows) > limit:
        return rows[:limit], True
    return rows, False
