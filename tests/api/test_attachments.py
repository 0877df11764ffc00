"""Volume attachments through the real clients.

- the ``openstack`` command hot-plugs a data volume into a running server that boots from
  an existing volume (``--volume``), and unplugs it; the guest sees the disk come and go;
- openstacksdk drives Cinder's volume actions and attachments API as a compute service of
  the operator's own would (no bootvol server involved), and the volume's status follows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openstack import exceptions

from bootvol.images.service import ImageCreate

from ..support import reachable_by_qemu
from .conftest import Service
from .test_compute_cli import compute_config, show, wait_until

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:openstack")


def volume(service: Service, ref: str) -> dict:  # type: ignore[type-arg]
    return json.loads(service.openstack("volume", "show", ref, "-f", "json").stdout)


def test_openstack_server_add_and_remove_volume(
    make_service, guest_image: tuple[Path, str]
) -> None:
    service: Service = make_service(extra=compute_config())
    for flexvol in service.estate.flexvols.values():
        reachable_by_qemu(flexvol)
    raw, expected = guest_image
    service.estate.app.images.create_from_file(ImageCreate(name="guest", disk_format="raw"), raw)
    service.openstack("volume", "create", "--image", "guest", "--size", "1", "boot")
    service.openstack("volume", "create", "--size", "1", "data")
    for name in ("boot", "data"):
        wait_until(lambda name=name: volume(service, name)["status"] == "available", name)
    boot, data = volume(service, "boot")["id"], volume(service, "data")["id"]

    # A server from an existing volume: kept when the server goes.
    server = json.loads(
        service.openstack(
            "server",
            "create",
            "--volume",
            "boot",
            "--flavor",
            "m1.tiny",
            "--nic",
            "none",
            "--wait",
            "-f",
            "json",
            "vm",
        ).stdout
    )
    assert server["status"] == "ACTIVE"
    line = f"bootvol-guest serial={boot[:20]} sha256={expected}"
    wait_until(lambda: line in service.openstack("console", "log", "show", "vm").stdout, "boot")

    # Where the time went, in the server's properties (the volume existed: no volume path).
    wait_until(
        lambda: "bootvol:guest_line_s" in show(service, "vm")["properties"], "the build record"
    )
    properties = show(service, "vm")["properties"]
    assert float(properties["bootvol:domain_start_s"]) > 0
    assert float(properties["bootvol:request_to_active_s"]) > 0
    assert "bootvol:volume_path" not in properties

    service.openstack("server", "add", "volume", "vm", "data")
    wait_until(lambda: volume(service, "data")["status"] == "in-use", "data in-use")
    disk = f"bootvol-guest disk=vdb serial={data[:20]}"
    wait_until(lambda: disk in service.openstack("console", "log", "show", "vm").stdout, "vdb")
    listed = json.loads(service.openstack("server", "volume", "list", "vm", "-f", "json").stdout)
    assert {(a["Volume ID"], a["Device"]) for a in listed} == {
        (boot, "/dev/vda"),
        (data, "/dev/vdb"),
    }
    (attachment,) = volume(service, "data")["attachments"]
    assert (attachment["server_id"], attachment["device"]) == (server["id"], "/dev/vdb")
    attachments = json.loads(
        service.openstack(
            "--os-volume-api-version", "3.27", "volume", "attachment", "list", "-f", "json"
        ).stdout
    )
    assert {(a["Volume ID"], a["Server ID"], a["Status"]) for a in attachments} == {
        (boot, server["id"], "attached"),
        (data, server["id"], "attached"),
    }
    refused = service.openstack("volume", "delete", "data", check=False)
    assert refused.returncode != 0
    assert f"in-use (attached to server {server['id']})" in refused.stderr
    assert "BadRequestException: 400" in refused.stderr
    root = service.openstack("server", "remove", "volume", "vm", "boot", check=False)
    assert root.returncode != 0 and "root device" in root.stderr

    service.openstack("server", "remove", "volume", "vm", "data")
    wait_until(lambda: volume(service, "data")["status"] == "available", "data available")
    gone = "bootvol-guest gone=vdb"
    wait_until(lambda: gone in service.openstack("console", "log", "show", "vm").stdout, "gone")
    assert volume(service, "data")["attachments"] == []

    service.openstack("server", "delete", "--wait", "vm")
    assert volume(service, "boot")["status"] == "available"
    service.openstack("volume", "delete", "boot", "data")


def test_cinder_attach_actions_and_attachments_api(service: Service) -> None:
    conn = service.connect()
    made = conn.block_storage.create_volume(size=1, name="v")
    service.wait_for(made.id)
    storage = conn.block_storage

    def status() -> str:
        return storage.get_volume(made.id).status

    # The volume actions a compute service calls (Cinder's attach API before 3.27).
    storage.reserve_volume(made.id)
    assert status() == "attaching"
    with pytest.raises(exceptions.BadRequestException, match="attaching"):
        storage.reserve_volume(made.id)
    storage.unreserve_volume(made.id)
    assert status() == "available"
    storage.reserve_volume(made.id)
    instance = "0b1f58f0-4c1e-4a57-9d0b-8c6a3c8d2a11"
    # openstacksdk sends the instance or the host, not both.
    storage.attach_volume(made.id, "/dev/vdc", instance=instance)
    shown = storage.get_volume(made.id)
    assert shown.status == "in-use"
    (attached,) = shown.attachments
    assert (attached["server_id"], attached["device"]) == (instance, "/dev/vdc")
    with pytest.raises(exceptions.BadRequestException, match="in-use"):
        storage.delete_volume(made.id)
    storage.begin_volume_detaching(made.id)
    assert status() == "detaching"
    storage.abort_volume_detaching(made.id)
    assert status() == "in-use"
    storage.detach_volume(made.id, attached["attachment_id"])
    assert status() == "available" and storage.get_volume(made.id).attachments == []
    storage.set_volume_bootable_status(made.id, True)
    assert storage.get_volume(made.id).is_bootable

    # The attachments API (3.27+): reserve, connect, complete, list, show, delete.
    attachment = storage.create_attachment(made.id, instance=instance)
    assert attachment.status == "reserved" and status() == "reserved"
    connector = {"host": "compute-2", "initiator": "iqn.example"}
    updated = storage.update_attachment(attachment.id, connector=connector)
    assert updated.status == "attaching" and status() == "attaching"
    # Not a hot-plug for the instance's compute host: only the compute API reserves those.
    assert service.estate.app.volumes.attachments.pending([instance]) == []
    assert updated.connection_info["driver_volume_type"] == "local"
    assert updated.connection_info["device_path"] == service.estate.app.volumes.get(made.id).file
    storage.complete_attachment(attachment.id)
    assert status() == "in-use"
    assert [a.id for a in storage.attachments()] == [attachment.id]
    assert storage.get_attachment(attachment.id).status == "attached"
    storage.delete_attachment(attachment.id, ignore_missing=False)
    assert status() == "available"
    assert list(storage.attachments()) == []

    # A read-only volume: a read-write os-attach is refused; an attachment is read-only.
    storage.set_volume_readonly(made.id, True)
    storage.reserve_volume(made.id)
    with pytest.raises(exceptions.BadRequestException, match="read-only"):
        storage.attach_volume(made.id, "/dev/vdc", instance=instance)
    storage.unreserve_volume(made.id)
    readonly = storage.create_attachment(made.id, instance=instance)
    connected = storage.update_attachment(readonly.id, connector=connector)
    assert connected.connection_info["access_mode"] == "ro"
    storage.delete_attachment(readonly.id, ignore_missing=False)
    storage.delete_volume(made.id)
