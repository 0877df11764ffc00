"""Image members: the projects a ``shared`` image is shared with (Glance's image sharing).

The owner adds a project as a member (``pending``); the member sees the image at once (by
id, and can make volumes of it) and lists it among its images once it has ``accepted`` it
(bootvol.images.service applies both rules). Who may do what, as Glance's default policies
have it:

- add and remove members: the image's owner (or an admin);
- change a member's status: that member (or an admin), never the owner;
- list members: the owner sees them all, a member its own entry only;
- any member operation on an image that is not ``shared``: Forbidden, "Only shared images
  have members." (members of an image made private again are kept, inert, as Glance keeps
  them).

Members are rows of ``image_members``; removing the image removes them (foreign key).
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bootvol.caller import Caller
from bootvol.db.models import ImageMemberRecord, ImageRecord, MemberStatus, Visibility, utcnow
from bootvol.db.session import SessionFactory
from bootvol.errors import Conflict, Forbidden, InvalidRequest, NotFound, QuotaExceeded
from bootvol.images.service import ImageService

log = logging.getLogger(__name__)

MAX_MEMBERS = 128  # Glance's image_member_quota


class ImageMembers:
    def __init__(self, *, sessions: SessionFactory, images: ImageService) -> None:
        self._sessions = sessions
        self._images = images

    def add(self, image_id: str, member_id: str, *, caller: Caller) -> ImageMemberRecord:
        image = self._shared(image_id, caller)
        if not member_id:
            raise InvalidRequest("Member can't be empty")
        if not self._owns(image, caller):
            raise Forbidden(f"Not allowed to create members for image {image.id}.")
        member = ImageMemberRecord(
            image_id=image.id, member_id=member_id, status=MemberStatus.PENDING
        )
        try:
            with self._sessions.begin() as session:
                count = session.scalar(
                    select(func.count()).where(ImageMemberRecord.image_id == image.id)
                )
                if (count or 0) >= MAX_MEMBERS:
                    raise QuotaExceeded(
                        f"Image member limit exceeded for image {image.id}: attempted: "
                        f"{(count or 0) + 1}, maximum: {MAX_MEMBERS}"
                    )
                session.add(member)
        except IntegrityError as exc:
            raise Conflict(f"Member {member_id} is duplicated for image {image.id}") from exc
        log.info("image %s shared with project %s (pending)", image.id, member_id)
        return member

    def list(self, image_id: str, *, caller: Caller) -> list[ImageMemberRecord]:
        image = self._shared(image_id, caller)
        statement = select(ImageMemberRecord).where(ImageMemberRecord.image_id == image.id)
        if not self._owns(image, caller):
            statement = statement.where(ImageMemberRecord.member_id == caller.project_id)
        with self._sessions() as session:
            return list(session.scalars(statement.order_by(ImageMemberRecord.created_at)))

    def get(self, image_id: str, member_id: str, *, caller: Caller) -> ImageMemberRecord:
        image = self._shared(image_id, caller)
        if not self._owns(image, caller) and member_id != caller.project_id:
            # Glance answers as if there were none, so that members learn nothing of others.
            raise NotFound(_not_a_member(member_id, image.id))
        return self._member(image.id, member_id)

    def set_status(
        self, image_id: str, member_id: str, status: str, *, caller: Caller
    ) -> ImageMemberRecord:
        image = self._shared(image_id, caller)
        try:
            chosen = MemberStatus(status)
        except ValueError:
            raise InvalidRequest(
                'Incorrect request: Status must be "pending", "accepted" or "rejected".'
            ) from None
        if member_id != caller.project_id and not caller.sees_everything:
            if not self._owns(image, caller):
                raise NotFound(_not_a_member(member_id, image.id))
            raise Forbidden(
                f"Not allowed to update members for image {image.id}: only the member "
                "itself accepts or rejects an image shared with it."
            )
        with self._sessions.begin() as session:
            member = session.get(ImageMemberRecord, (image.id, member_id))
            if member is None:
                raise NotFound(_not_a_member(member_id, image.id))
            member.status = chosen
            member.updated_at = utcnow()
        log.info("project %s %s image %s", member_id, chosen, image.id)
        return member

    def remove(self, image_id: str, member_id: str, *, caller: Caller) -> None:
        image = self._shared(image_id, caller)
        if not self._owns(image, caller):
            if member_id != caller.project_id:
                raise NotFound(_not_a_member(member_id, image.id))
            raise Forbidden(f"Not allowed to delete members for image {image.id}.")
        with self._sessions.begin() as session:
            member = session.get(ImageMemberRecord, (image.id, member_id))
            if member is None:
                raise NotFound(_not_a_member(member_id, image.id))
            session.delete(member)
        log.info("image %s no longer shared with project %s", image.id, member_id)

    def _shared(self, image_id: str, caller: Caller) -> ImageRecord:
        image = self._images.get(image_id, caller=caller)
        if image.visibility != Visibility.SHARED:
            raise Forbidden("Only shared images have members.")
        return image

    def _member(self, image_id: str, member_id: str) -> ImageMemberRecord:
        with self._sessions() as session:
            member = session.get(ImageMemberRecord, (image_id, member_id))
        if member is None:
            raise NotFound(_not_a_member(member_id, image_id))
        return member

    @staticmethod
    def _owns(image: ImageRecord, caller: Caller) -> bool:
        return caller.sees_everything or image.owner == caller.project_id


def _not_a_member(member_id: str, image_id: str) -> str:
    return f"{member_id} not found in the member list of the image {image_id}."
