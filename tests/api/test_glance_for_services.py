"""What a real Cinder asks bootvol's Glance: version discovery as glanceclient does it, and
image locations (Glance v2.17, for the service role only)."""

from __future__ import annotations

import os
from collections.abc import Callable
from urllib.parse import urlparse

import httpx

from bootvol.cinder import images as cinder_images
from bootvol.db.models import Role
from bootvol.images.service import ImageCreate

from .conftest import Service


def test_versions_as_glanceclient_asks_them(service: Service) -> None:
    with service.http() as http:
        explicit = http.get("/image/versions")
        root = http.get("/image/")
    assert explicit.status_code == 200 and root.status_code == 300
    assert explicit.json() == root.json()
    versions = {entry["id"]: entry for entry in explicit.json()["versions"]}
    # glanceclient's has_version(client, "v2.17"): that id, in one of these statuses.
    assert versions["v2.17"]["status"] == "CURRENT"
    assert {v["status"] for k, v in versions.items() if k != "v2.17"} == {"SUPPORTED"}
    assert "v2.0" in versions
    for entry in versions.values():
        assert entry["links"] == [{"rel": "self", "href": f"{service.base_url}/image/v2/"}]


def _service_user(service: Service) -> str:
    """A token of a user holding only the service role (Cinder's [glance] user)."""
    identity = service.estate.app.identity
    identity.create_project("service")
    identity.create_user("cinder", password="cinder-pw", project="service", role=Role.SERVICE)
    token, _ = service.token("cinder", "cinder-pw", "service")
    return token


def test_locations_of_a_stored_image_in_an_exported_flexvol(
    make_service: Callable[..., Service],
) -> None:
    service = make_service(exports={"images": "fileserver:/exports/images"})
    estate = service.estate
    raw = estate.sample("disk.raw", size_mib=1)
    image = estate.app.images.create_from_file(ImageCreate(name="stored", disk_format="raw"), raw)
    assert image.location is not None and image.location.file is not None
    file = image.location.file
    folder = estate.flexvols["images"]
    cinder = _service_user(service)
    with service.http() as http:
        response = http.get(
            f"/image/v2/images/{image.id}/locations", headers={"X-Auth-Token": cinder}
        )
    assert response.status_code == 200, response.text
    assert response.json() == [
        {"url": f"file://{file}", "metadata": {"store": "file"}},
        {
            "url": f"nfs://fileserver/exports/images/{file.relative_to(folder).as_posix()}",
            "metadata": {
                "type": "nfs",
                "share_location": "nfs://fileserver/exports/images",
                "mountpoint": "/exports/images",
            },
        },
    ]
    # What Cinder's NetApp NFS driver builds from it (_construct_image_nfs_url in
    # cinder/volume/drivers/netapp/dataontap/nfs_base.py), then matches to its shares.
    nfs = response.json()[1]
    parsed = urlparse(nfs["url"])
    relative = os.path.relpath(
        os.path.join(parsed.netloc, parsed.path), nfs["metadata"]["mountpoint"]
    )
    assert f"{nfs['metadata']['share_location']}/{relative}" == (
        f"nfs://fileserver/exports/images/{file.relative_to(folder).as_posix()}"
    )
    # What bootvol's Cinder driver makes of it: the file, found under its FlexVol.
    both = (None, response.json())
    assert cinder_images.file_in_flexvol(estate.app.topology, both) == file
    nfs_only = (None, response.json()[1:])
    assert cinder_images.file_in_flexvol(estate.app.topology, nfs_only) == file


def test_locations_are_for_services_only(service: Service) -> None:
    image_id, _ = service.estate.remote_image(size_mib=1)
    member_password = service.add_member("team")
    member, _ = service.token("team-user", member_password, "team")
    admin, _ = service.token()
    cinder = _service_user(service)
    unknown = "5e1d1f0e-0000-4000-8000-000000000000"
    with service.http() as http:

        def get(image: str, token: str) -> httpx.Response:
            path = f"/image/v2/images/{image}/locations"
            return http.get(path, headers={"X-Auth-Token": token})

        remote = get(image_id, cinder)
        assert remote.status_code == 200
        assert remote.json() == [{"url": service.estate.url("disk.qcow2"), "metadata": {}}]
        # Glance's fetch_image_location (2026.1): role:service or role:admin.
        assert get(image_id, admin).json() == remote.json()
        refused = get(image_id, member)
        assert refused.status_code == 403
        assert "fetch_image_location" in refused.json()["forbidden"]["message"]
        assert get(unknown, member).status_code == 403  # no hint of which ids exist
        assert get(unknown, cinder).status_code == 404
        assert http.get(f"/image/v2/images/{image_id}/locations").status_code == 401
        queued = http.post(
            "/image/v2/images",
            json={"name": "empty", "disk_format": "raw", "container_format": "bare"},
            headers={"X-Auth-Token": member},
        ).json()
        assert get(queued["id"], cinder).json() == []

        def add(token: str) -> httpx.Response:
            return http.post(
                f"/image/v2/images/{queued['id']}/locations",
                json={"url": "http://elsewhere/disk", "validation_data": {}},
                headers={"X-Auth-Token": token},
            )

        assert add(member).status_code == 403
        for token in (cinder, admin):
            added = add(token)
            assert added.status_code == 400
            assert "does not add locations" in added.json()["badRequest"]["message"]
        shown = http.get(f"/image/v2/images/{queued['id']}", headers={"X-Auth-Token": member})
        assert shown.json()["status"] == "queued"
