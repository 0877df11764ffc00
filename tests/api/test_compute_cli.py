"""The real ``openstack`` command drives servers: create from an image with a boot volume,
show, list, console log, stop, start, reboot, delete; flavors and limits; Nova's errors.

The service runs its compute host in-process on real libvirt and QEMU (TCG).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from bootvol.images.service import ImageCreate

from ..support import reachable_by_qemu
from .conftest import Service

TIMEOUT = 180.0  # a bound for hangs, not a timing assertion


def compute_config() -> str:
    return (
        '[compute]\nenabled = true\naccel = "tcg"\nvcpus = 4\nram_mib = 4096\n'
        f'poll_seconds = 0.2\nhost_name = "node-{uuid.uuid4().hex[:8]}"\n'
    )


def wait_until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def show(service: Service, name: str) -> dict:  # type: ignore[type-arg]
    return json.loads(service.openstack("server", "show", name, "-f", "json").stdout)


def test_openstack_server_lifecycle(make_service, guest_image: tuple[Path, str]) -> None:
    service: Service = make_service(extra=compute_config())
    for flexvol in service.estate.flexvols.values():
        reachable_by_qemu(flexvol)
    raw, expected = guest_image
    service.estate.app.images.create_from_file(ImageCreate(name="guest", disk_format="raw"), raw)

    flavors = json.loads(service.openstack("flavor", "list", "-f", "json").stdout)
    assert "m1.tiny" in [f["Name"] for f in flavors]
    created = service.openstack(
        "server",
        "create",
        "--image",
        "guest",
        "--flavor",
        "m1.tiny",
        "--boot-from-volume",
        "1",
        "--nic",
        "none",
        "--wait",
        "-f",
        "json",
        "vm1",
    )
    server = json.loads(created.stdout)
    assert server["status"] == "ACTIVE"
    record = service.estate.app.servers.get(server["id"])
    volume_id = record.root_volume_id or ""
    line = f"bootvol-guest serial={volume_id[:20]} sha256={expected}"
    wait_until(
        lambda: line in service.openstack("console", "log", "show", "vm1").stdout,
        "the guest's console line",
    )
    volume = json.loads(service.openstack("volume", "show", volume_id, "-f", "json").stdout)
    assert volume["status"] == "in-use"
    (attachment,) = volume["attachments"]
    assert (attachment["server_id"], attachment["device"]) == (server["id"], "/dev/vda")
    listed = json.loads(service.openstack("server", "list", "-f", "json").stdout)
    assert [s["Name"] for s in listed] == ["vm1"]

    service.openstack("server", "stop", "vm1")
    wait_until(lambda: show(service, "vm1")["status"] == "SHUTOFF", "SHUTOFF")
    service.openstack("server", "start", "vm1")
    wait_until(lambda: show(service, "vm1")["status"] == "ACTIVE", "ACTIVE again")
    wait_until(
        lambda: service.openstack("console", "log", "show", "vm1").stdout.count(line) >= 2,
        "the second boot",
    )
    service.openstack("server", "reboot", "--hard", "vm1")
    wait_until(
        lambda: service.openstack("console", "log", "show", "vm1").stdout.count(line) >= 3,
        "the reboot",
    )
    limits = json.loads(service.openstack("limits", "show", "--absolute", "-f", "json").stdout)
    used = {item["Name"]: item["Value"] for item in limits}
    assert used["instances_used"] == 1 and used["total_ram_used"] == 512  # openstacksdk names

    service.openstack("server", "delete", "--wait", "vm1")
    assert service.estate.app.servers.get_by_id(server["id"]) is None
    # OSC asks to keep the boot volume unless --delete-on-termination: it is released.
    gone = service.openstack("volume", "show", volume_id, "-f", "json", check=False)
    assert gone.returncode == 0 and json.loads(gone.stdout)["status"] == "available"

    # --image alone (imageRef, and the image→local mapping OSC adds): a root volume of the
    # flavor's disk, made for the server and deleted with it.
    plain = json.loads(
        service.openstack(
            "server",
            "create",
            "--image",
            "guest",
            "--flavor",
            "m1.tiny",
            "--nic",
            "none",
            "--wait",
            "-f",
            "json",
            "vm2",
        ).stdout
    )
    assert plain["status"] == "ACTIVE"
    root = service.estate.app.servers.get(plain["id"]).root_volume_id or ""
    assert service.estate.app.volumes.get(root).size_gib == 1
    service.openstack("server", "delete", "--wait", "vm2")
    assert service.openstack("volume", "show", root, check=False).returncode != 0


def test_openstack_server_errors(make_service, guest_image: tuple[Path, str]) -> None:
    service: Service = make_service(extra=compute_config())
    raw, _ = guest_image
    service.estate.app.images.create_from_file(ImageCreate(name="guest", disk_format="raw"), raw)
    unknown_flavor = service.openstack(
        "server",
        "create",
        "--image",
        "guest",
        "--flavor",
        "nope",
        "--boot-from-volume",
        "1",
        "--nic",
        "none",
        "vm",
        check=False,
    )
    assert unknown_flavor.returncode != 0 and "nope" in unknown_flavor.stderr
    missing = service.openstack("server", "show", "no-such-server", check=False)
    assert missing.returncode != 0 and "No Server found" in missing.stderr
