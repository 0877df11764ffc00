"""Volume actions as operators type them, with the real `openstack` command: bootable and
read-only flags, and the admins' status reset and force delete (a member is refused)."""

from __future__ import annotations

import json
from pathlib import Path

from bootvol.db.models import VolumeStatus

from .conftest import Service


def _show(service: Service, name: str, clouds: Path | None = None) -> dict:  # type: ignore[type-arg]
    args = ("volume", "show", name, "-f", "json")
    result = service.openstack(*args) if clouds is None else _as(clouds, *args)
    return json.loads(result.stdout)


def _as(clouds: Path, *args: str, check: bool = True):  # type: ignore[no-untyped-def]
    from ..support import openstack_cli

    return openstack_cli(clouds, *args, check=check)


def test_create_bootable_and_read_only_flags(service: Service) -> None:
    # --bootable is sent right after the request, while the volume is being made: the
    # outcome must not clear it (an empty volume is not bootable of itself).
    created = json.loads(
        service.openstack("volume", "create", "--size", "1", "--bootable", "b", "-f", "json").stdout
    )
    service.wait_for(created["id"])
    shown = _show(service, "b")
    assert shown["status"] == "available" and shown["bootable"] in (True, "true")
    service.openstack("volume", "set", "--non-bootable", "b")
    assert _show(service, "b")["bootable"] in (False, "false")

    service.openstack("volume", "set", "--read-only", "b")
    assert _show(service, "b")["properties"]["readonly"] == "True"
    assert service.estate.app.volumes.get(created["id"]).readonly
    service.openstack("volume", "set", "--read-write", "b")
    assert "readonly" not in _show(service, "b")["properties"]


def test_reset_status_and_force_delete_are_for_admins(service: Service) -> None:
    member = service.member_cloud("team", service.add_member("team"))
    made = json.loads(_as(member, "volume", "create", "--size", "1", "v", "-f", "json").stdout)
    record = service.wait_for(made["id"])
    volume_file = Path(record.file)
    assert volume_file.exists()

    refused = _as(member, "volume", "set", "--state", "error", made["id"], check=False)
    assert refused.returncode != 0 and "reset_status" in refused.stderr
    refused = _as(member, "volume", "delete", "--force", made["id"], check=False)
    assert refused.returncode != 0 and "force_delete" in refused.stderr
    assert service.estate.app.volumes.get(made["id"]).status == VolumeStatus.AVAILABLE

    # The admin marks it as stuck in an odd state; a plain delete refuses it, --force not.
    service.openstack("volume", "set", "--state", "maintenance", made["id"])
    assert _show(service, made["id"])["status"] == "maintenance"
    with service.http() as http:
        token, body = service.token()
        bad = http.post(
            f"/volume/v3/{body['project']['id']}/volumes/{made['id']}/action",
            json={"os-reset_status": {"status": "sideways"}},
            headers={"X-Auth-Token": token},
        )
    assert bad.status_code == 400 and "Invalid volume status" in bad.text
    plain = _as(member, "volume", "delete", made["id"], check=False)
    assert plain.returncode != 0 and "must be available or error" in plain.stderr
    service.openstack("volume", "delete", "--force", made["id"])
    assert service.estate.app.volumes.list() == []
    assert not volume_file.exists()
