"""Glance's image lifecycle with the real `openstack` command: deactivate and reactivate (no
download for members, no new volume meanwhile), both JSON-patch media types, and the
reserved os_glance_* properties refused."""

from __future__ import annotations

import json

from ..support import openstack_cli
from .conftest import Service


def test_deactivate_and_reactivate(service: Service) -> None:
    member = service.member_cloud("team", service.add_member("team"))
    raw = service.estate.sample("d.raw", size_mib=2)
    image = json.loads(
        openstack_cli(
            member, "image", "create", "--disk-format", "raw", "--file", str(raw), "img",
            "-f", "json",
        ).stdout
    )  # fmt: skip
    openstack_cli(member, "image", "set", "--deactivate", "img")
    shown = json.loads(openstack_cli(member, "image", "show", "img", "-f", "json").stdout)
    assert shown["status"] == "deactivated"
    saved = service.estate.workdir / "saved.raw"
    refused = openstack_cli(member, "image", "save", "--file", str(saved), "img", check=False)
    assert refused.returncode != 0
    token, _ = service.token("team-user", "pw-team", "team")
    with service.http() as http:
        download = http.get(f"/image/v2/images/{image['id']}/file", headers={"X-Auth-Token": token})
    assert download.status_code == 403 and "deactivated" in download.text
    service.openstack("image", "save", "--file", str(saved), image["id"])  # admins still may
    assert saved.read_bytes() == raw.read_bytes()
    no_volume = openstack_cli(
        member, "volume", "create", "--image", image["id"], "--size", "1", "v", check=False
    )
    assert no_volume.returncode != 0 and "deactivated" in no_volume.stderr

    openstack_cli(member, "image", "set", "--activate", "img")
    made = json.loads(
        openstack_cli(
            member, "volume", "create", "--image", image["id"], "--size", "1", "v", "-f", "json"
        ).stdout
    )
    assert service.wait_for(made["id"]).status == "available"
    with service.http() as http:  # an image without bytes yet (queued) has nothing to keep
        queued = http.post(
            "/image/v2/images",
            json={"name": "empty", "disk_format": "raw", "container_format": "bare"},
            headers={"X-Auth-Token": token},
        ).json()
        refused = http.post(
            f"/image/v2/images/{queued['id']}/actions/deactivate", headers={"X-Auth-Token": token}
        )
    assert refused.status_code == 403 and "status 'queued'" in refused.text


def test_patch_media_types_and_reserved_properties(service: Service) -> None:
    token, _ = service.token()
    with service.http() as http:
        created = http.post(
            "/image/v2/images",
            json={"name": "p", "disk_format": "raw", "container_format": "bare"},
            headers={"X-Auth-Token": token},
        ).json()
        url = f"/image/v2/images/{created['id']}"
        for version in ("2.1", "2.0"):
            patched = http.patch(
                url,
                content=json.dumps([{"op": "add", "path": "/os_distro", "value": version}]),
                headers={
                    "X-Auth-Token": token,
                    "Content-Type": f"application/openstack-images-v{version}-json-patch",
                },
            )
            assert patched.status_code == 200, patched.text
            assert patched.json()["os_distro"] == version
    reserved = service.openstack(
        "image", "set", "--property", "os_glance_import_task=x", "p", check=False
    )
    assert reserved.returncode != 0 and "reserved" in reserved.stderr


def test_an_image_without_disk_format_stays_queued_until_one_is_set(service: Service) -> None:
    token, _ = service.token()
    headers = {"X-Auth-Token": token}
    raw = service.estate.sample("q.raw", size_mib=1)
    with service.http() as http:
        created = http.post("/image/v2/images", json={"name": "later"}, headers=headers)
        assert created.status_code == 201, created.text
        image = created.json()
        assert image["status"] == "queued" and image["disk_format"] is None
        url = f"/image/v2/images/{image['id']}"
        early = http.put(
            f"{url}/file",
            content=raw.read_bytes(),
            headers={**headers, "Content-Type": "application/octet-stream"},
        )
        assert early.status_code == 400 and "must be set prior to saving data" in early.text
        assert http.get(url, headers=headers).json()["status"] == "queued"
        patched = http.patch(
            url,
            content=json.dumps([{"op": "add", "path": "/disk_format", "value": "raw"}]),
            headers={**headers, "Content-Type": "application/openstack-images-v2.1-json-patch"},
        )
        assert patched.status_code == 200 and patched.json()["disk_format"] == "raw"
        uploaded = http.put(
            f"{url}/file",
            content=raw.read_bytes(),
            headers={**headers, "Content-Type": "application/octet-stream"},
        )
        assert uploaded.status_code == 204, uploaded.text
        assert http.get(url, headers=headers).json()["status"] == "active"


def test_an_empty_image_id_is_a_missing_image(service: Service) -> None:
    """As Tempest's test_get_image_null_id and test_delete_image_null_id expect of Glance."""
    token, _ = service.token()
    headers = {"X-Auth-Token": token}
    with service.http() as http:
        assert http.get("/image/v2/images", headers=headers).status_code == 200
        for method, path in (
            ("GET", "/image/v2/images/"),
            ("DELETE", "/image/v2/images/"),
            ("POST", "/image/v2/images/"),
            ("GET", "/image/v2/images//file"),
            ("PUT", "/image/v2/images//tags/gold"),
            ("GET", "/image/v2/images//members"),
            ("POST", "/image/v2/images//actions/deactivate"),
        ):
            answer = http.request(method, path, headers=headers)
            assert answer.status_code == 404, (method, path, answer.text)
            assert "empty ID" in answer.json()["itemNotFound"]["message"], answer.text
