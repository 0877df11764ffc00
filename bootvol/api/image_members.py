"""Glance v2 image sharing under /image: the members of a shared image (bootvol.images.members
has the rules)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from bootvol.api.deps import AppDep, CallerDep
from bootvol.api.formats import glance_time
from bootvol.api.schemas.common import GLANCE_ERRORS, ErrorBody
from bootvol.api.schemas.image import MemberCreateBody, MemberList, MemberPublic, MemberUpdateBody
from bootvol.db.models import ImageMemberRecord

router = APIRouter(
    prefix="/image/v2",
    tags=["image"],
    responses=GLANCE_ERRORS,
)


@router.post(
    "/images/{image_id}/members",
    response_model=MemberPublic,
    responses={409: {"model": ErrorBody}, 413: {"model": ErrorBody}},
)
def add_member(
    image_id: str, body: MemberCreateBody, bootvol: AppDep, caller: CallerDep
) -> MemberPublic:
    """Share the image with a project (its owner only; the member starts ``pending``)."""
    return member_view(bootvol.image_members.add(image_id, body.member, caller=caller))


@router.get("/images/{image_id}/members", response_model=MemberList)
def list_members(image_id: str, bootvol: AppDep, caller: CallerDep) -> MemberList:
    members = bootvol.image_members.list(image_id, caller=caller)
    return MemberList(members=[member_view(m) for m in members])


@router.get("/images/{image_id}/members/{member_id}", response_model=MemberPublic)
def show_member(image_id: str, member_id: str, bootvol: AppDep, caller: CallerDep) -> MemberPublic:
    return member_view(bootvol.image_members.get(image_id, member_id, caller=caller))


@router.put("/images/{image_id}/members/{member_id}", response_model=MemberPublic)
def update_member(
    image_id: str, member_id: str, body: MemberUpdateBody, bootvol: AppDep, caller: CallerDep
) -> MemberPublic:
    """Accept or reject an image shared with the caller's project (the member only)."""
    member = bootvol.image_members.set_status(image_id, member_id, body.status, caller=caller)
    return member_view(member)


@router.delete("/images/{image_id}/members/{member_id}", status_code=204)
def remove_member(image_id: str, member_id: str, bootvol: AppDep, caller: CallerDep) -> Response:
    bootvol.image_members.remove(image_id, member_id, caller=caller)
    return Response(status_code=204)


@router.get("/schemas/member")
def member_schema() -> dict[str, Any]:
    return _MEMBER_SCHEMA


@router.get("/schemas/members")
def members_schema() -> dict[str, Any]:
    return {
        "name": "members",
        "properties": {
            "members": {"type": "array", "items": _MEMBER_SCHEMA},
            "schema": {"type": "string"},
        },
        "links": [{"rel": "describedby", "href": "{schema}"}],
    }


def member_view(member: ImageMemberRecord) -> MemberPublic:
    return MemberPublic(
        image_id=member.image_id,
        member_id=member.member_id,
        status=str(member.status),
        created_at=glance_time(member.created_at) or "",
        updated_at=glance_time(member.updated_at) or "",
    )


_MEMBER_SCHEMA: dict[str, Any] = {
    "name": "member",
    "properties": {
        "member_id": {"type": "string", "description": "The project the image is shared with"},
        "image_id": {"type": "string"},
        "created_at": {"type": "string"},
        "updated_at": {"type": "string"},
        "status": {"type": "string", "enum": ["pending", "accepted", "rejected"]},
        "schema": {"type": "string", "readOnly": True},
    },
}
