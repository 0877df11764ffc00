"""Error cases answer OpenStack's codes and bodies, and leave nothing behind.

Also: projects do not see each other's volumes or private images; microversions are
negotiated (echoed, 406 outside the range, 3.0 bodies without later fields); Glance's
JSON patch takes only its media type.
"""

from __future__ import annotations

import json
from pathlib import Path

import openstack.exceptions
import pytest

from bootvol.images.service import ImageCreate
from bootvol.storage import qemu_img

from .conftest import Service

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:openstack")

# Cinder 3.0's volume detail (api-ref samples/volumes/volume-show-response.json), for an
# admin: no field of a later microversion.
V3_0_ADMIN_SHOW = {
    "attachments", "availability_zone", "bootable", "consistencygroup_id", "created_at",
    "description", "encrypted", "id", "links", "metadata", "migration_status",
    "multiattach", "name", "os-vol-host-attr:host", "os-vol-mig-status-attr:migstat",
    "os-vol-mig-status-attr:name_id", "os-vol-tenant-attr:tenant_id", "replication_status",
    "size", "snapshot_id", "source_volid", "status", "updated_at", "user_id", "volume_type",
}  # fmt: skip


def _volume_files(service: Service) -> list[Path]:
    return [f for folder in service.estate.flexvols.values() for f in folder.glob("volume-*")]


def _headers(token: str, **extra: str) -> dict[str, str]:
    return {"X-Auth-Token": token, **extra}


def test_refused_creations_answer_cinder_errors_and_leave_nothing(service: Service) -> None:
    password = service.add_member("small", volumes=1, gigabytes=2)
    raw = service.estate.sample("d.raw", size_mib=4)
    image = service.estate.app.images.create_from_file(
        ImageCreate(name="d", disk_format="raw"), raw
    )
    big_file = service.estate.workdir / "big.qcow2"
    qemu_img.run(["create", "-q", "-f", "qcow2", str(big_file), "2G"], limits=qemu_img.INFO_LIMITS)
    big = service.estate.app.images.create_from_file(  # the operator's images are public
        ImageCreate(name="big", disk_format="qcow2"), big_file
    )
    token, body = service.token("small-user", password, "small")
    project = body["project"]["id"]
    url = f"/volume/v3/{project}/volumes"

    def create(http, volume: dict) -> object:  # type: ignore[no-untyped-def]
        return http.post(url, json={"volume": volume}, headers=_headers(token))

    with service.http() as http:
        unknown = create(http, {"size": 1, "imageRef": "5e1d1f0e-0000-4000-8000-000000000000"})
        assert unknown.status_code == 400
        assert "Invalid image identifier" in unknown.json()["badRequest"]["message"]

        too_small = create(http, {"size": 1, "imageRef": big.id})
        assert too_small.status_code == 400, too_small.text
        assert "smaller than" in too_small.json()["badRequest"]["message"]

        over_gigabytes = create(http, {"size": 3, "imageRef": image.id})
        assert over_gigabytes.status_code == 413
        assert "gigabytes quota" in over_gigabytes.json()["overLimit"]["message"]

        malformed = http.post(
            url,
            content=b'{"volume": {"size": 1,',
            headers=_headers(token, **{"Content-Type": "application/json"}),
        )
        assert malformed.status_code == 400 and "badRequest" in malformed.json()
        no_size = create(http, {"size": "ten"})
        assert no_size.status_code == 400
        snapshot = create(http, {"size": 1, "snapshot_id": "x"})
        assert snapshot.status_code == 404 and "itemNotFound" in snapshot.json()

        assert service.estate.app.volumes.usage(project).volumes == 0
        assert _volume_files(service) == []

        ok = create(http, {"size": 1, "imageRef": image.id, "name": "only"})
        assert ok.status_code == 202, ok.text
        assert ok.json()["volume"]["status"] == "creating"
        over_count = create(http, {"size": 1})
        assert over_count.status_code == 413
        assert "VolumeLimitExceeded" in over_count.json()["overLimit"]["message"]
        service.wait_for(ok.json()["volume"]["id"])
        assert service.estate.app.volumes.usage(project).volumes == 1
        assert len(_volume_files(service)) == 1

        wrong_url = http.get(
            f"/volume/v3/{'0' * 32}/volumes", headers=_headers(token)
        )  # another project's URL with this project's token
        assert wrong_url.status_code == 400
        assert wrong_url.json()["badRequest"]["message"] == "Malformed request url"


def test_projects_do_not_see_each_other(service: Service) -> None:
    a_password = service.add_member("a")
    b_password = service.add_member("b")
    raw = service.estate.sample("d.raw", size_mib=2)
    alice = service.connect("a-user", a_password, "a")
    bob = service.connect("b-user", b_password, "b")
    private = alice.image.create_image("mine", filename=str(raw), disk_format="raw")
    volume = alice.block_storage.create_volume(size=1, image_id=private.id, name="secret")
    service.wait_for(volume.id)

    assert [i.name for i in bob.image.images()] == []
    with pytest.raises(openstack.exceptions.NotFoundException):
        bob.image.get_image(private.id)
    assert list(bob.block_storage.volumes()) == []
    with pytest.raises(openstack.exceptions.NotFoundException):
        bob.block_storage.get_volume(volume.id)
    with pytest.raises(openstack.exceptions.NotFoundException):
        bob.block_storage.delete_volume(volume.id, ignore_missing=False)
    with pytest.raises(openstack.exceptions.BadRequestException):
        bob.block_storage.create_volume(size=1, image_id=private.id)
    with pytest.raises(openstack.exceptions.NotFoundException):
        bob.block_storage.create_volume(source_volume_id=volume.id)
    with pytest.raises(openstack.exceptions.ForbiddenException):  # Glance: admins publicize
        bob.image.create_image("pub", disk_format="raw", visibility="public")
    # The admin sees every project's volumes when asking for all of them.
    admin = service.connect()
    assert [v.id for v in admin.block_storage.volumes(all_projects=True)] == [volume.id]
    assert list(admin.block_storage.volumes()) == []
    assert alice.block_storage.get_volume(volume.id).status == "available"


def test_microversions(service: Service) -> None:
    token, body = service.token()
    project = body["project"]["id"]
    with service.http() as http:
        made = http.post(
            f"/volume/v3/{project}/volumes",
            json={"volume": {"size": 1, "name": "mv"}},
            headers=_headers(token),
        )
        volume_id = made.json()["volume"]["id"]
        service.wait_for(volume_id)
        url = f"/volume/v3/{project}/volumes/{volume_id}"
        plain = http.get(url, headers=_headers(token))
        assert plain.headers["OpenStack-API-Version"] == "volume 3.0"
        assert plain.headers["Vary"] == "OpenStack-API-Version"
        shown = plain.json()["volume"]
        assert set(shown) == V3_0_ADMIN_SHOW
        assert shown["bootable"] == "false" and shown["status"] == "available"
        assert shown["metadata"]["bootvol:path"] == "empty"
        later = http.get(url, headers=_headers(token, **{"OpenStack-API-Version": "volume 3.48"}))
        assert later.headers["OpenStack-API-Version"] == "volume 3.48"
        assert set(later.json()["volume"]) - V3_0_ADMIN_SHOW == {
            "group_id", "provider_id", "service_uuid", "shared_targets"
        }  # fmt: skip
        latest = http.get(
            url, headers=_headers(token, **{"OpenStack-API-Version": "volume latest"})
        )
        assert latest.headers["OpenStack-API-Version"] == "volume 3.48"
        refused = http.get(url, headers=_headers(token, **{"OpenStack-API-Version": "volume 3.99"}))
        assert refused.status_code == 406
        assert "maximum is 3.48" in json.dumps(refused.json())
        by_name = http.get(f"/volume/v3/{project}/volumes/mv", headers=_headers(token))
        assert by_name.status_code == 404 and "itemNotFound" in by_name.json()
        named = http.get(
            f"/volume/v3/{project}/volumes", params={"name": "mv"}, headers=_headers(token)
        )
        assert [v["id"] for v in named.json()["volumes"]] == [volume_id]
        assert set(named.json()["volumes"][0]) == {"id", "name", "links"}
        # Cinder's boolean query flags: 1/true/yes/…, anything else is a badRequest.
        listing = f"/volume/v3/{project}/volumes"
        v345 = _headers(token, **{"OpenStack-API-Version": "volume 3.45"})
        counted = http.get(listing, params={"with_count": "True"}, headers=v345).json()
        assert counted["count"] == 1
        assert (
            "count"
            not in http.get(listing, params={"with_count": "1"}, headers=_headers(token)).json()
        )
        for flag, ids in (("false", [volume_id]), ("1", [])):
            found = http.get(listing, params={"bootable": flag}, headers=_headers(token))
            assert [v["id"] for v in found.json()["volumes"]] == ids, flag
        bad = http.get(listing, params={"all_tenants": "maybe"}, headers=_headers(token))
        assert bad.status_code == 400 and "all_tenants" in bad.json()["badRequest"]["message"]


def test_a_route_bootvol_lacks_is_not_a_missing_object(service: Service) -> None:
    token, body = service.token()
    project = body["project"]["id"]
    with service.http() as http:
        missing_route = http.get(f"/volume/v3/{project}/qos-specs", headers=_headers(token))
        assert missing_route.status_code == 404
        message = missing_route.json()["itemNotFound"]["message"]
        assert f"does not provide GET /volume/v3/{project}/qos-specs" in message
        missing_object = http.get(
            f"/volume/v3/{project}/volumes/00000000-0000-0000-0000-000000000000",
            headers=_headers(token),
        )
        assert missing_object.status_code == 404
        assert "does not provide" not in missing_object.json()["itemNotFound"]["message"]
        wrong_method = http.put(f"/volume/v3/{project}/volumes", headers=_headers(token))
        assert wrong_method.status_code == 405
        assert "does not provide PUT" in json.dumps(wrong_method.json())
        assert wrong_method.headers["Allow"]  # a method it answers there
        # Every answer carries its request id, the refusals of the middleware included.
        refused = http.get(
            f"/volume/v3/{project}/volumes",
            headers=_headers(token, **{"OpenStack-API-Version": "volume 3.99"}),
        )
        for response in (missing_route, missing_object, wrong_method, refused):
            assert response.headers["x-openstack-request-id"].startswith("req-")


def test_an_unexpected_failure_answers_500_with_its_request_id(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    token, body = service.token()

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr(service.estate.app.volumes, "query", broken)
    with service.http() as http:
        failed = http.get(f"/volume/v3/{body['project']['id']}/volumes", headers=_headers(token))
    assert failed.status_code == 500
    assert "the disk caught fire" in failed.json()["computeFault"]["message"]
    assert failed.headers["x-openstack-request-id"].startswith("req-")


def test_glance_patch_and_protection(service: Service) -> None:
    token, _ = service.token()
    patch_type = "application/openstack-images-v2.1-json-patch"
    with service.http() as http:
        created = http.post(
            "/image/v2/images",
            json={"name": "p", "disk_format": "raw", "container_format": "bare", "hw": "virtio"},
            headers=_headers(token),
        )
        assert created.status_code == 201
        # Glance names its import methods here; openstacksdk imports only when it finds them.
        assert created.headers["OpenStack-image-import-methods"] == "glance-direct,web-download"
        image = created.json()
        assert image["status"] == "queued" and image["hw"] == "virtio"
        url = f"/image/v2/images/{image['id']}"
        ops = [
            {"op": "replace", "path": "/name", "value": "renamed"},
            {"op": "add", "path": "/protected", "value": True},
            {"op": "remove", "path": "/hw"},
        ]
        wrong_type = http.patch(url, json=ops, headers=_headers(token))
        assert wrong_type.status_code == 415 and "badMediaType" in wrong_type.json()
        patched = http.patch(
            url,
            content=json.dumps(ops),
            headers=_headers(token, **{"Content-Type": patch_type}),
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["name"] == "renamed" and patched.json()["protected"] is True
        assert "hw" not in patched.json()
        read_only = http.patch(
            url,
            content=json.dumps([{"op": "replace", "path": "/size", "value": 1}]),
            headers=_headers(token, **{"Content-Type": patch_type}),
        )
        assert read_only.status_code == 403
        protected = http.delete(url, headers=_headers(token))
        assert protected.status_code == 403
        no_data = http.get(f"{url}/file", headers=_headers(token))
        assert no_data.status_code == 204
        refused = http.put(
            f"{url}/file",
            content=b"\x00" * 4096,
            headers=_headers(token, **{"Content-Type": "text/plain"}),
        )
        assert refused.status_code == 415
        assert http.get("/image/v2/schemas/image").json()["name"] == "image"
        unprotect = http.patch(
            url,
            content=json.dumps([{"op": "replace", "path": "/protected", "value": False}]),
            headers=_headers(token, **{"Content-Type": patch_type}),
        )
        assert unprotect.status_code == 200
        assert http.delete(url, headers=_headers(token)).status_code == 204
        assert http.get(url, headers=_headers(token)).status_code == 404


def test_openapi_schema_describes_the_routes(service: Service) -> None:
    with service.http() as http:
        schema = http.get("/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/identity/v3/auth/tokens",
        "/image/v2/images",
        "/image/v2/images/{image_id}/file",
        "/volume/v3/{project_id}/volumes",
        "/volume/v3/{project_id}/volumes/detail",
        "/volume/v3/{project_id}/volumes/{volume_id}/action",
        "/metrics",
    ):
        assert path in paths, path
    assert "202" in paths["/volume/v3/{project_id}/volumes"]["post"]["responses"]
    volume = schema["components"]["schemas"]["VolumePublic"]["properties"]
    assert "os-vol-host-attr:host" in volume and "bootable" in volume
    patch = paths["/image/v2/images/{image_id}"]["patch"]["requestBody"]["content"]
    assert list(patch) == ["application/openstack-images-v2.1-json-patch"]
