"""Which images a caller sees and lists (Glance's rules), and one page of a list.

An image is visible to its owner's project, to admins, to everyone when ``public`` or
``community``, and when ``shared`` to the projects it is shared with (bootvol.images.members),
whatever their member status. A list holds by default the public images, the caller's own and
those shared with it that it has accepted; community and hidden images only when asked for,
other member statuses with ``member_status``; admins list every project's images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, false, or_, select, true

from bootvol.caller import Caller
from bootvol.db.models import ImageMemberRecord, ImageRecord, MemberStatus, Visibility
from bootvol.db.paginate import fetch_page, sort_keys, sortable
from bootvol.db.session import SessionFactory
from bootvol.errors import InvalidRequest


@dataclass(frozen=True)
class ImageQuery:
    """A Glance list request: filters, sort order, and one page."""

    limit: int | None = None
    marker: str | None = None
    name: str | None = None
    status: str | None = None
    visibility: str | None = None  # a Visibility, or "all"; None: Glance's default set
    owner: str | None = None
    protected: bool | None = None
    hidden: bool = False
    tags: Sequence[str] = ()  # images with every one of them
    disk_formats: Sequence[str] | None = None  # any of them
    container_formats: Sequence[str] | None = None
    size_min: int | None = None
    size_max: int | None = None
    # Images shared with the caller's project are listed when its member status is one of
    # these (Glance's member_status filter: accepted by default, "all" for every status).
    member_statuses: Sequence[MemberStatus] = (MemberStatus.ACCEPTED,)
    sort: Sequence[tuple[str, bool]] = (("created_at", False),)  # (key, ascending)


# Glance's sortable keys (api-ref "List images", sort_key) and where they live.
_SORT_COLUMNS = {
    "name": sortable(ImageRecord.name),
    "status": sortable(ImageRecord.status),
    "container_format": sortable(ImageRecord.container_format),
    "disk_format": sortable(ImageRecord.disk_format, empty=""),
    "size": sortable(ImageRecord.size, empty=-1),
    "virtual_size": sortable(ImageRecord.virtual_size, empty=-1),
    "id": sortable(ImageRecord.id),
    "created_at": sortable(ImageRecord.created_at),
    "updated_at": sortable(ImageRecord.updated_at),
    "visibility": sortable(ImageRecord.visibility),
    "owner": sortable(ImageRecord.owner, empty=""),
    "min_disk": sortable(ImageRecord.min_disk),
    "min_ram": sortable(ImageRecord.min_ram),
}


class ImageListing:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    def query(self, query: ImageQuery, *, caller: Caller) -> tuple[list[ImageRecord], bool]:
        """One page of the images ``caller`` may list; and whether more pages follow."""
        keys = sort_keys(query.sort, _SORT_COLUMNS)
        statement = select(ImageRecord).where(_listable(query, caller))
        for column, value in (
            (ImageRecord.name, query.name),
            (ImageRecord.status, query.status),
            (ImageRecord.owner, query.owner),
            (ImageRecord.protected, query.protected),
        ):
            if value is not None:
                statement = statement.where(column == value)
        if query.disk_formats is not None:
            statement = statement.where(ImageRecord.disk_format.in_(query.disk_formats))
        if query.container_formats is not None:
            statement = statement.where(ImageRecord.container_format.in_(query.container_formats))
        if query.size_min is not None:
            statement = statement.where(ImageRecord.size >= query.size_min)
        if query.size_max is not None:
            statement = statement.where(ImageRecord.size <= query.size_max)
        wanted_tags = set(query.tags)

        def has_tags(image: ImageRecord) -> bool:  # tags are JSON: matched here, not in SQL
            return wanted_tags <= set(image.tags or ())

        with self._sessions() as session:
            if query.marker is not None:
                marker = self.visible(session.get(ImageRecord, query.marker), caller)
                if marker is None:
                    raise InvalidRequest(
                        f"Invalid marker. Image {query.marker} could not be found."
                    )
            return fetch_page(
                session,
                statement,
                id_column=ImageRecord.id,
                keys=keys,
                marker_id=query.marker,
                limit=query.limit,
                keep=has_tags if wanted_tags else None,
            )

    def visible(self, record: ImageRecord | None, caller: Caller) -> ImageRecord | None:
        if record is None or caller.sees_everything:
            return record
        if record.owner == caller.project_id:
            return record
        if record.visibility in (Visibility.PUBLIC, Visibility.COMMUNITY):
            return record
        if record.visibility == Visibility.SHARED and caller.project_id is not None:
            with self._sessions() as session:
                member = session.get(ImageMemberRecord, (record.id, caller.project_id))
            if member is not None:  # pending and rejected members see it too (Glance)
                return record
        return None


def _listable(query: ImageQuery, caller: Caller) -> Any:
    """Glance's list rules: by default public, and the caller's own; community and
    hidden images only when asked for; admins list every project's images."""
    conditions = [ImageRecord.hidden == (true() if query.hidden else false())]
    if query.visibility not in (None, "all"):
        try:
            conditions.append(ImageRecord.visibility == Visibility(query.visibility))
        except ValueError:
            raise InvalidRequest(f"Invalid visibility value: {query.visibility}") from None
    if not caller.sees_everything:
        mine = ImageRecord.owner == caller.project_id
        if query.visibility in (Visibility.COMMUNITY, "all"):
            others = ImageRecord.visibility.in_([Visibility.PUBLIC, Visibility.COMMUNITY])
        else:
            others = ImageRecord.visibility == Visibility.PUBLIC
        shared_with_me = and_(
            ImageRecord.visibility == Visibility.SHARED,
            ImageRecord.id.in_(
                select(ImageMemberRecord.image_id).where(
                    ImageMemberRecord.member_id == caller.project_id,
                    ImageMemberRecord.status.in_(query.member_statuses),
                )
            ),
        )
        conditions.append(or_(mine, others, shared_with_me))
    return and_(*conditions)
