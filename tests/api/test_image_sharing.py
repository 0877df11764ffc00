"""Glance's image sharing with the real `openstack` command and openstacksdk: an image is
shared by default, its owner adds a project as a member, the member sees it at once, lists
it once accepted, and makes a volume of it; the rules on who does what answer Glance's codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openstack.exceptions
import pytest
from sqlalchemy import func, select

from bootvol.db.models import ImageMemberRecord, VolumeStatus

from ..support import openstack_cli
from .conftest import Service


def _json(clouds: Path, *args: str) -> Any:
    return json.loads(openstack_cli(clouds, *args, "-f", "json").stdout)


def _listed(clouds: Path, *args: str) -> set[str]:
    return {image["ID"] for image in _json(clouds, "image", "list", *args)}


def test_a_shared_image_is_seen_accepted_and_booted_by_its_member(service: Service) -> None:
    owner = service.member_cloud("owner", service.add_member("owner"))
    guest = service.member_cloud("guest", service.add_member("guest"))
    other = service.member_cloud("other", service.add_member("other"))
    guest_id = service.openstack("project", "show", "guest", "-f", "value", "-c", "id").stdout
    guest_id = guest_id.strip()
    raw = service.estate.sample("shared.raw", size_mib=4)
    image = _json(owner, "image", "create", "--disk-format", "raw", "--file", str(raw), "gold")
    assert image["visibility"] == "shared"  # Glance's default
    image_id = image["id"]
    hidden = openstack_cli(guest, "image", "show", image_id, check=False)
    assert hidden.returncode != 0 and "No Image found" in hidden.stderr

    member = _json(owner, "image", "add", "project", image_id, guest_id)
    assert (member["member_id"], member["status"]) == (guest_id, "pending")
    again = openstack_cli(owner, "image", "add", "project", image_id, guest_id, check=False)
    assert again.returncode != 0 and "duplicated" in again.stderr

    # Pending: the member sees it by id, but lists it only when it asks for pending ones.
    assert _json(guest, "image", "show", image_id)["id"] == image_id
    assert image_id not in _listed(guest)
    assert image_id in _listed(guest, "--member-status", "pending")
    assert image_id not in _listed(other, "--member-status", "all")

    openstack_cli(guest, "image", "set", "--accept", image_id)
    assert image_id in _listed(guest)
    assert image_id in _listed(guest, "--shared")
    assert image_id not in _listed(guest, "--member-status", "rejected")
    listed = _json(owner, "image", "member", "list", image_id)
    assert [(m["Member ID"], m["Status"]) for m in listed] == [(guest_id, "accepted")]

    made = _json(guest, "volume", "create", "--image", image_id, "--size", "1", "booted")
    volume = service.wait_for(made["id"])
    assert volume.status == VolumeStatus.AVAILABLE
    with open(volume.file, "rb") as disk:
        assert disk.read(raw.stat().st_size) == raw.read_bytes()

    openstack_cli(guest, "image", "set", "--reject", image_id)
    assert image_id not in _listed(guest)
    assert image_id in _listed(guest, "--member-status", "rejected")
    assert _json(guest, "image", "show", image_id)["id"] == image_id  # still seen by id

    # Made private, the image keeps its members but they see nothing; shared again, they do.
    openstack_cli(owner, "image", "set", "--private", image_id)
    assert openstack_cli(guest, "image", "show", image_id, check=False).returncode != 0
    openstack_cli(owner, "image", "set", "--shared", image_id)
    assert _json(guest, "image", "show", image_id)["id"] == image_id

    openstack_cli(owner, "image", "remove", "project", image_id, guest_id)
    gone = openstack_cli(guest, "image", "show", image_id, check=False)
    assert gone.returncode != 0 and "No Image found" in gone.stderr


def test_who_may_do_what_with_members(service: Service) -> None:
    service.add_member("owner")
    service.add_member("guest")
    service.add_member("third")
    owner = service.connect("owner-user", "pw-owner", "owner")
    guest = service.connect("guest-user", "pw-guest", "guest")
    third = service.connect("third-user", "pw-third", "third")
    guest_id, third_id = guest.current_project_id, third.current_project_id
    image = owner.image.create_image(name="shared", disk_format="raw", container_format="bare")
    owner.image.add_member(image, member_id=guest_id)
    owner.image.add_member(image, member_id=third_id)

    # The owner lists every member; a member only itself; an outsider nothing at all.
    assert {m.member_id for m in owner.image.members(image)} == {guest_id, third_id}
    assert [m.member_id for m in guest.image.members(image)] == [guest_id]
    assert guest.image.get_member(guest_id, image).status == "pending"
    with pytest.raises(openstack.exceptions.NotFoundException):
        guest.image.get_member(third_id, image)

    # Only the member decides its status; only the owner adds and removes.
    with pytest.raises(openstack.exceptions.ForbiddenException, match="only the member"):
        owner.image.update_member(guest_id, image, status="accepted")
    with pytest.raises(openstack.exceptions.BadRequestException, match="Status must be"):
        guest.image.update_member(guest_id, image, status="maybe")
    with pytest.raises(openstack.exceptions.ForbiddenException, match="Not allowed to create"):
        guest.image.add_member(image, member_id="someone")
    with pytest.raises(openstack.exceptions.ForbiddenException, match="Not allowed to delete"):
        guest.image.remove_member(guest_id, image)
    assert guest.image.update_member(guest_id, image, status="accepted").status == "accepted"
    owner.image.remove_member(third_id, image)
    with pytest.raises(openstack.exceptions.NotFoundException):
        third.image.get_image(image.id)
    with pytest.raises(openstack.exceptions.NotFoundException, match="member list"):
        owner.image.get_member(third_id, image)

    # Only shared images have members.
    private = owner.image.create_image(
        name="mine", disk_format="raw", container_format="bare", visibility="private"
    )
    with pytest.raises(openstack.exceptions.ForbiddenException, match="Only shared images"):
        owner.image.add_member(private, member_id=guest_id)
    with pytest.raises(openstack.exceptions.ForbiddenException, match="Only shared images"):
        list(owner.image.members(private))

    # Deleting the image deletes its members with it.
    owner.image.delete_image(image)
    with service.estate.app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ImageMemberRecord)) == 0
