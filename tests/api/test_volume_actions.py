"""Volume actions as operators type them, with the real `openstack` command: bootable and
read-only flags, and the admins' status reset and force delete (a member is refused)."""

from __future__ import annotations

import json
from pathlib import Path

from bootvol.bench.content import file_sha256, volume_sha256
from bootvol.db.models import VolumeStatus
from bootvol.units import GiB, MiB

from ..support import openstack_cli
from .conftest import Service


def _show(service: Service, name: str, clouds: Path | None = None) -> dict:  # type: ignore[type-arg]
    args = ("volume", "show", name, "-f", "json")
    result = service.openstack(*args) if clouds is None else openstack_cli(clouds, *args)
    return json.loads(result.stdout)


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
    made = json.loads(
        openstack_cli(member, "volume", "create", "--size", "1", "v", "-f", "json").stdout
    )
    record = service.wait_for(made["id"])
    volume_file = Path(record.file)
    assert volume_file.exists()

    refused = openstack_cli(member, "volume", "set", "--state", "error", made["id"], check=False)
    assert refused.returncode != 0 and "reset_status" in refused.stderr
    refused = openstack_cli(member, "volume", "delete", "--force", made["id"], check=False)
    assert refused.returncode != 0 and "force_delete" in refused.stderr
    assert service.estate.app.volumes.get(made["id"]).status == VolumeStatus.AVAILABLE

    # Not to creating: a worker would make the volume again from the start, wiping it.
    wipe = service.openstack("volume", "set", "--state", "creating", made["id"], check=False)
    assert wipe.returncode != 0 and "made again from the start" in wipe.stderr
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
    plain = openstack_cli(member, "volume", "delete", made["id"], check=False)
    assert plain.returncode != 0 and "must be available or error" in plain.stderr
    service.openstack("volume", "delete", "--force", made["id"])
    assert service.estate.app.volumes.list() == []
    assert not volume_file.exists()


def test_discovery_routes_answer_as_cinder_does(service: Service) -> None:
    zones = json.loads(
        service.openstack("availability", "zone", "list", "--volume", "-f", "json").stdout
    )
    assert [(z["Zone Name"], z["Zone Status"]) for z in zones] == [("nova", "available")]
    rows = json.loads(service.openstack("volume", "service", "list", "-f", "json").stdout)
    binaries = sorted(row["Binary"] for row in rows)
    assert binaries.count("cinder-scheduler") == 1 and binaries.count("cinder-volume") >= 2
    assert {row["State"] for row in rows} == {"up"}
    member = service.member_cloud("team", service.add_member("team"))
    refused = openstack_cli(member, "volume", "service", "list", check=False)
    assert refused.returncode != 0 and "services:index" in refused.stderr

    # A quota bootvol does not enforce is refused by name, not accepted and ignored.
    bad = service.openstack("quota", "set", "--backups", "5", "team", check=False)
    assert bad.returncode != 0 and "Bad key(s) in quota set: backups" in bad.stderr
    service.openstack("quota", "set", "--volumes", "7", "team")
    assert service.estate.app.identity.get_project("team").quota_volumes == 7


def test_volume_summary_and_metadata_items(service: Service) -> None:
    for name, size in (("a", 1), ("b", 2)):
        made = json.loads(
            service.openstack(
                "volume", "create", "--size", str(size), "--property", f"tier={name}", name,
                "-f", "json",
            ).stdout
        )  # fmt: skip
        service.wait_for(made["id"])
    summary = json.loads(
        service.openstack(
            "--os-volume-api-version", "3.36", "volume", "summary", "-f", "json"
        ).stdout
    )
    assert (summary["Total Count"], summary["Total Size"]) == (2, 3)
    token, body = service.token()
    base = f"/volume/v3/{body['project']['id']}/volumes/{made['id']}/metadata"
    headers = {"X-Auth-Token": token}
    with service.http() as http:
        assert http.get(f"{base}/tier", headers=headers).json() == {"meta": {"tier": "b"}}
        changed = http.put(f"{base}/tier", json={"meta": {"tier": "gold"}}, headers=headers)
        assert changed.status_code == 200 and changed.json() == {"meta": {"tier": "gold"}}
        mismatch = http.put(f"{base}/tier", json={"meta": {"other": "x"}}, headers=headers)
        assert mismatch.status_code == 400 and "mismatch" in mismatch.text
        assert http.get(f"{base}/bootvol:path", headers=headers).json()["meta"] == {
            "bootvol:path": "empty"
        }
        # bootvol's own keys refuse being unset with the same 400 as being set.
        unset = http.delete(f"{base}/bootvol:path", headers=headers)
        assert unset.status_code == 400 and "bootvol" in unset.text
        assert http.delete(f"{base}/tier", headers=headers).status_code == 200
        assert http.get(f"{base}/tier", headers=headers).status_code == 404


def test_image_create_from_a_volume(service: Service) -> None:
    # `openstack image create --volume`: a raw image of the volume, with Glance's hashes, that
    # makes volumes again.
    raw = service.estate.sample("d.raw", size_mib=4)
    service.openstack("image", "create", "--disk-format", "raw", "--file", str(raw), "src")
    made = json.loads(
        service.openstack(
            "volume", "create", "--image", "src", "--size", "1", "v", "-f", "json"
        ).stdout
    )
    volume = service.wait_for(made["id"])
    service.openstack("image", "create", "--volume", "v", "snap-img")
    image = json.loads(service.openstack("image", "show", "snap-img", "-f", "json").stdout)
    assert image["status"] == "active" and image["disk_format"] == "raw"
    assert image["size"] == GiB and image["checksum"]
    stored = service.estate.app.images.get(image["id"])
    assert stored.location is not None and stored.location.file is not None
    length = 4 * MiB
    assert volume_sha256(stored.location.file, file_format="raw", length=length) == file_sha256(raw)
    assert volume_sha256(Path(volume.file), file_format=volume.file_format, length=length) == (
        file_sha256(raw)
    )
    again = json.loads(
        service.openstack(
            "volume", "create", "--image", "snap-img", "--size", "1", "w", "-f", "json"
        ).stdout
    )
    assert service.wait_for(again["id"]).status == "available"
    qcow2 = service.openstack(
        "image", "create", "--volume", "v", "--disk-format", "qcow2", "q", check=False
    )
    assert qcow2.returncode != 0 and "raw images" in qcow2.stderr
