"""End to end with the real openstacksdk: images up and down, a volume by every path.

The estate's image store is the ``images`` FlexVol (XFS, reflink), so for a qcow2 image the
first volume lands there by copy offload (converted into the cache), the next one is a cache
clone; a raw image clones directly; an image registered by URL is downloaded; a volume from
a volume is a reflink of it; an empty volume is a sparse file. Each volume's guest-visible
content is compared with the image's raw bytes.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bootvol.bench.content import file_sha256, volume_sha256
from bootvol.images.service import ImageCreate
from bootvol.units import GiB, MiB

from ..faulty_http import FaultyServer, remote_image
from ..support import BOTH_DATABASES
from .conftest import Service

pytestmark = [
    # openstacksdk warns about its own future API changes; they say nothing about the server.
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:openstack"),
    BOTH_DATABASES,
]


def _available(conn, volume):  # type: ignore[no-untyped-def]
    return conn.block_storage.wait_for_status(
        volume, status="available", failures=["error"], interval=0.1, wait=60
    )


def _content(service: Service, volume_id: str, length: int) -> str:
    record = service.estate.app.volumes.get(volume_id)
    return volume_sha256(Path(record.file), file_format=record.file_format, length=length)


def test_every_provisioning_path_through_openstacksdk(
    make_service: Callable[..., Service], tmp_path: Path
) -> None:
    # These FlexVols are 2 GiB: a margin of 1000 points keeps a FlexVol that caches the
    # image winning, so that each path shows (tests/api/test_placement_spread.py: the spread).
    service = make_service(extra="[placement]\nspread_margin_percent = 1000")
    raw = service.estate.sample("disk.raw", size_mib=24)
    qcow2 = service.estate.sample_qcow2(raw, "disk.qcow2")
    expected = file_sha256(raw)
    conn = service.connect()

    image = conn.image.create_image(
        "cirros-qcow2", filename=str(qcow2), disk_format="qcow2", container_format="bare"
    )
    image = conn.image.get_image(image.id)
    assert image.status == "active" and image.visibility == "shared"  # Glance's default
    assert image.size == qcow2.stat().st_size and image.virtual_size == raw.stat().st_size
    assert image.checksum == hashlib.md5(qcow2.read_bytes()).hexdigest()
    assert image.hash_algo == "sha512"
    assert image.hash_value == hashlib.sha512(qcow2.read_bytes()).hexdigest()
    assert image.properties["owner_specified.openstack.object"] == "images/cirros-qcow2"
    downloaded = tmp_path / "down.qcow2"
    conn.image.download_image(image, output=str(downloaded))
    assert file_sha256(downloaded) == file_sha256(qcow2)

    raw_image = conn.image.create_image(
        "cirros-raw", filename=str(raw), disk_format="raw", container_format="bare"
    )
    remote = service.estate.app.images.create(
        ImageCreate(name="remote", disk_format="qcow2", url=service.estate.url("disk.qcow2"))
    )
    assert conn.image.find_image("remote").visibility == "public"  # operator's: everyone's
    proxied = tmp_path / "remote.qcow2"  # Glance proxies a remote image's bytes: so do we
    conn.image.download_image(conn.image.find_image("remote"), output=str(proxied))
    assert file_sha256(proxied) == file_sha256(qcow2)

    made = {
        "first": conn.block_storage.create_volume(size=1, image_id=image.id, name="first"),
    }
    first = _available(conn, made["first"])
    made["again"] = conn.block_storage.create_volume(size=1, image_id=image.id, name="again")
    made["raw"] = conn.block_storage.create_volume(size=1, image_id=raw_image.id, name="raw")
    made["remote"] = conn.block_storage.create_volume(size=1, image_id=remote.id, name="remote")
    made["clone"] = conn.block_storage.create_volume(source_volume_id=first.id, name="clone")
    made["empty"] = conn.block_storage.create_volume(size=1, name="empty")
    volumes = {name: _available(conn, volume) for name, volume in made.items()}

    paths = {name: v.metadata["bootvol:path"] for name, v in volumes.items()}
    assert paths == {
        "first": "copy-offload",
        "again": "cache-clone",
        "raw": "direct-clone",
        "remote": "download",
        "clone": "volume-clone",
        "empty": "empty",
    }
    for name in ("first", "again", "raw", "remote", "clone"):
        assert _content(service, volumes[name].id, raw.stat().st_size) == expected, name
        metadata = volumes[name].metadata
        assert int(metadata["bootvol:host_bytes"]) >= 0 and float(metadata["bootvol:seconds"]) >= 0
        assert json.loads(metadata["bootvol:steps"])
    assert volumes["again"].metadata["bootvol:host_bytes"] == "0"  # a reflink moves nothing
    zeros = hashlib.sha256(bytes(MiB)).hexdigest()
    assert _content(service, volumes["empty"].id, MiB) == zeros
    assert json.loads(volumes["first"].metadata["bootvol:skipped"])["cache-clone"]

    assert volumes["first"].is_bootable and not volumes["empty"].is_bootable
    assert volumes["first"].volume_image_metadata["image_id"] == image.id
    assert volumes["first"].volume_image_metadata["disk_format"] == "qcow2"
    assert volumes["clone"].source_volume_id == first.id and volumes["clone"].size == 1
    assert volumes["first"].host.endswith("#images")  # host@backend#pool, pool = FlexVol

    conn.block_storage.set_volume_metadata(volumes["raw"], purpose="web")
    conn.block_storage.delete_volume_metadata(volumes["raw"], keys=["purpose"])
    conn.block_storage.set_volume_metadata(volumes["raw"], tier="gold")
    conn.image.add_tag(raw_image, "golden")
    assert conn.image.get_image(raw_image.id).tags == ["golden"]

    conn.block_storage.extend_volume(volumes["raw"], 2)
    extended = conn.block_storage.get_volume(volumes["raw"].id)
    assert extended.size == 2 and extended.status == "available"
    assert extended.metadata["tier"] == "gold" and "purpose" not in extended.metadata
    assert extended.metadata["bootvol:path"] == "direct-clone"
    assert Path(service.estate.app.volumes.get(extended.id).file).stat().st_size == 2 * GiB

    listed = {v.name for v in conn.block_storage.volumes()}
    assert listed == set(made)
    assert conn.block_storage.find_volume("clone").id == volumes["clone"].id

    files = [Path(service.estate.app.volumes.get(v.id).file) for v in volumes.values()]
    for volume in volumes.values():
        conn.block_storage.delete_volume(volume)
    for item in (image, raw_image):
        conn.image.delete_image(item)
    assert not [f for f in files if f.exists()]
    assert list(conn.block_storage.volumes()) == []
    assert [i.name for i in conn.image.images()] == ["remote"]

    with service.http() as http:
        metrics = http.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    for path in ("copy-offload", "cache-clone", "direct-clone", "download", "volume-clone"):
        assert f'bootvol_volumes_created_total{{path="{path}"}} 1.0' in text, path
    assert 'bootvol_volume_creation_seconds_count{path="cache-clone"} 1.0' in text
    assert "bootvol_image_cache_hits_total 1.0" in text
    assert "bootvol_image_cache_misses_total 3.0" in text
    assert 'bootvol_bytes_copied_total{path="download"}' in text
    assert "bootvol_cache_evictions_total" in text or "# TYPE bootvol_cache_evictions" in text


def test_a_downloading_volume_reports_it_through_the_api(service: Service) -> None:
    """Cinder's statuses as a client polls them: creating, downloading, available."""
    conn = service.connect()
    with FaultyServer(service.estate.workdir) as source:
        image, expected = remote_image(service.estate, source)
        source.mode = "hold"  # the download cannot end until the client has seen it
        volume = conn.block_storage.create_volume(size=1, image_id=image, name="slow")
        seen = [volume.status]
        deadline = time.monotonic() + 30
        while seen[-1] != "downloading":
            assert seen[-1] == "creating" and time.monotonic() < deadline, seen
            seen.append(conn.block_storage.get_volume(volume.id).status)
        source.resume()
        done = _available(conn, volume)
    assert seen[0] == "creating" and seen[-1] == "downloading"
    assert done.metadata["bootvol:path"] == "download"
    assert _content(service, volume.id, 16 * MiB) == expected


@pytest.mark.parametrize("page_size", [1, 2])
def test_pagination_of_images_and_volumes(service: Service, page_size: int) -> None:
    conn = service.connect()
    raw = service.estate.sample("d.raw", size_mib=2)
    images = [
        conn.image.create_image(f"img{n}", filename=str(raw), disk_format="raw").id
        for n in range(3)
    ]
    volumes = [conn.block_storage.create_volume(size=1, name=f"vol{n}").id for n in range(3)]
    for volume in volumes:
        service.wait_for(volume)
    # The SDK follows Glance's "next" and Cinder's volumes_links page after page.
    assert sorted(i.id for i in conn.image.images(limit=page_size)) == sorted(images)
    assert sorted(v.id for v in conn.block_storage.volumes(limit=page_size)) == sorted(volumes)
    token, _ = service.token()
    headers = {"X-Auth-Token": token}
    with service.http() as http:
        first = http.get("/image/v2/images", params={"limit": 2}, headers=headers).json()
        assert len(first["images"]) == 2 and first["first"] == "/v2/images?limit=2"
        assert first["schema"] == "/v2/schemas/images"
        last = http.get("/image" + first["next"], headers=headers).json()
        assert len(last["images"]) == 1 and "next" not in last
        # Cinder's volumes_links: a next link on every full page, the last full one included.
        project = service.estate.app.identity.get_project("admin").id
        full = http.get(
            f"/volume/v3/{project}/volumes", params={"limit": 3}, headers=headers
        ).json()
        assert len(full["volumes"]) == 3 and full["volumes_links"][0]["rel"] == "next"
        after = http.get(full["volumes_links"][0]["href"], headers=headers).json()
        assert after["volumes"] == [] and "volumes_links" not in after
        ordered = http.get("/image/v2/images", params={"sort": "name:asc"}, headers=headers).json()
        assert [i["name"] for i in ordered["images"]] == ["img0", "img1", "img2"]
