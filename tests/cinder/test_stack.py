"""Smoke test of the real Cinder stack: every backend up, an empty volume made and deleted
through the real ``openstack`` command, its file on the backend's FlexVol."""

from __future__ import annotations

from bootvol.bench.cinder_layout import BACKEND_POOLS
from bootvol.bench.cinder_stack import CINDER_HOST, CinderStack


def test_every_backend_is_up(cinder_stack: CinderStack) -> None:
    services = cinder_stack.openstack_json("volume", "service", "list")
    states = {(s["Binary"], s["Host"]): s["State"] for s in services}
    for backend in BACKEND_POOLS:
        assert states.get(("cinder-volume", f"{CINDER_HOST}@{backend}")) == "up", states
    assert states.get(("cinder-scheduler", CINDER_HOST)) == "up", states


def test_empty_volume_becomes_available_and_deletes(cinder_stack: CinderStack) -> None:
    created = cinder_stack.openstack_json(
        "volume", "create", "--size", "1", "--type", "bv_a", "smoke", cloud="member"
    )
    volume = cinder_stack.wait_for_volume(created["id"], cloud="member")
    assert volume["size"] == 1 and volume["volume_type"] == "bv_a"
    file = cinder_stack.storage.flexvol(BACKEND_POOLS["bv_a"]).path / f"volume-{volume['id']}"
    assert file.stat().st_size == 1 << 30

    cinder_stack.openstack("volume", "delete", volume["id"], cloud="member")
    cinder_stack.wait_for_volume(volume["id"], ("deleted",), cloud="member")
    assert not file.exists()
