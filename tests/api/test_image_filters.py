"""Glance's list filters filter: tag (all of them), disk and container format (one, or
``in:``), size range, a bad member_status refused (the statuses themselves are in
test_image_sharing.py); through the `openstack` command and openstacksdk."""

from __future__ import annotations

import json

from ..support import Estate
from .conftest import Service


def _ids(images: object) -> set[str]:
    return {image.id for image in images}  # type: ignore[attr-defined]


def test_image_list_filters(service: Service) -> None:
    estate: Estate = service.estate
    conn = service.connect()
    small = estate.sample("small.raw", size_mib=1)
    large = estate.sample("large.raw", size_mib=3)
    qcow2 = estate.sample_qcow2(small, "small.qcow2")
    raw_small = conn.image.create_image("raw-small", filename=str(small), disk_format="raw")
    raw_large = conn.image.create_image("raw-large", filename=str(large), disk_format="raw")
    q = conn.image.create_image("q", filename=str(qcow2), disk_format="qcow2")
    conn.image.add_tag(raw_small, "gold")
    conn.image.add_tag(raw_small, "linux")
    conn.image.add_tag(q, "linux")

    listed = json.loads(service.openstack("image", "list", "--tag", "linux", "-f", "json").stdout)
    assert {i["Name"] for i in listed} == {"raw-small", "q"}
    assert _ids(conn.image.images(tag=["linux", "gold"])) == {raw_small.id}
    assert _ids(conn.image.images(disk_format="qcow2")) == {q.id}
    assert _ids(conn.image.images(container_format="ovf")) == set()
    size = conn.image.get_image(raw_large.id).size
    assert size == large.stat().st_size
    assert _ids(conn.image.images(size_min=size)) == {raw_large.id}
    assert raw_large.id not in _ids(conn.image.images(size_max=size - 1))
    token, _ = service.token()
    headers = {"X-Auth-Token": token}
    with service.http() as http:
        either = http.get(
            "/image/v2/images", params={"disk_format": "in:qcow2,vmdk"}, headers=headers
        )
        assert {i["id"] for i in either.json()["images"]} == {q.id}
        bad = http.get("/image/v2/images", params={"member_status": "maybe"}, headers=headers)
        assert bad.status_code == 400
