"""The real ``openstack`` command drives servers: create from an image with a boot volume,
show, list, console log, stop, start, reboot, delete; flavors, quotas and limits; Nova's
(and Cinder's) errors, each leaving no domain and no volume behind.

The service runs its compute host in-process on real libvirt and QEMU (TCG).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bootvol.images.service import ImageCreate

from ..support import openstack_cli, reachable_by_qemu
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


def resources(rows: list[dict]) -> dict:  # type: ignore[type-arg]
    """`openstack quota show -f json` rows as {resource: limit}."""
    return {row["Resource"]: row["Limit"] for row in rows}


def test_openstack_quotas_and_limits(make_service) -> None:
    # No compute host: a server ends ERROR (no valid host), and still counts, as in Nova.
    service: Service = make_service()
    service.estate.app.images.create_from_file(
        ImageCreate(name="img", disk_format="raw"), service.estate.sample("img.raw")
    )
    member = service.member_cloud("team", service.add_member("team"))

    shown = resources(json.loads(service.openstack("quota", "show", "team", "-f", "json").stdout))
    assert (shown["instances"], shown["cores"], shown["ram"]) == (10, 20, 51200)  # Nova's
    assert (shown["volumes"], shown["key-pairs"]) == (-1, 100)  # Cinder's beside Nova's
    defaults = resources(
        json.loads(service.openstack("quota", "show", "--default", "-f", "json").stdout)
    )
    assert (defaults["instances"], defaults["volumes"], defaults["gigabytes"]) == (10, 100, 1000)
    # Both services take their part of one command.
    service.openstack(*shlex.split("quota set --instances 3 --cores 5 --ram 2048 --volumes 7 team"))
    for command in (("--compute",), ()):
        shown = resources(
            json.loads(service.openstack("quota", "show", *command, "team", "-f", "json").stdout)
        )
        assert (shown["instances"], shown["cores"], shown["ram"]) == (3, 5, 2048)
    assert shown["volumes"] == 7

    # A member sees its project's quotas, and may not change them (Nova's 403).
    own = resources(json.loads(openstack_cli(member, "quota", "show", "-f", "json").stdout))
    assert (own["instances"], own["cores"], own["ram"]) == (3, 5, 2048)
    refused = openstack_cli(member, "quota", "set", "--instances", "50", check=False)
    assert refused.returncode != 0
    assert "403" in refused.stderr and "os-quota-sets:update" in refused.stderr
    token, _ = service.token("team-user", "pw-team", "team")
    team = service.estate.app.identity.get_project("team").id
    admin_project = service.estate.app.identity.get_project("admin").id
    with service.http() as client:
        other = client.get(
            f"/compute/v2.1/os-quota-sets/{admin_project}", headers={"X-Auth-Token": token}
        )
        # Nova's fields at 2.57+ (file injection and the network proxies are gone).
        latest = client.get(
            f"/compute/v2.1/os-quota-sets/{team}",
            headers={"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.57"},
        )
    assert other.status_code == 403, other.text
    assert latest.json()["quota_set"] == {
        "id": team,
        "instances": 3,
        "cores": 5,
        "ram": 2048,
        "key_pairs": 100,
        "metadata_items": 128,
        "server_groups": 10,
        "server_group_members": 10,
    }
    assert service.estate.app.identity.get_project("team").quota_instances == 3

    def used() -> dict:  # type: ignore[type-arg]
        rows = json.loads(
            openstack_cli(member, "limits", "show", "--absolute", "-f", "json").stdout
        )
        return {row["Name"]: row["Value"] for row in rows}

    before = used()
    assert (before["total_instances_used"], before["max_total_instances"]) == (0, 3)
    openstack_cli(member, *shlex.split("server create --image img --flavor m1.tiny --nic none vm"))
    server = json.loads(openstack_cli(member, "server", "show", "vm", "-f", "json").stdout)
    assert server["status"] == "ERROR"
    totals = used()
    assert (totals["total_instances_used"], totals["total_cores_used"]) == (1, 1)
    assert (totals["total_ram_used"], totals["max_total_ram_size"]) == (512, 2048)
    assert totals["max_total_volumes"] == 7  # Cinder's limits beside Nova's
    detail = json.loads(openstack_cli(member, "quota", "show", "--usage", "-f", "json").stdout)
    in_use = {row["Resource"]: row["In Use"] for row in detail}
    assert (in_use["instances"], in_use["cores"], in_use["ram"]) == (1, 1, 512)
    # An admin sees another project's limits and usage.
    rows = json.loads(
        service.openstack("limits", "show", "--absolute", "--project", "team", "-f", "json").stdout
    )
    theirs = {row["Name"]: row["Value"] for row in rows}
    assert (theirs["total_instances_used"], theirs["max_total_cores"]) == (1, 5)

    # Below what is used only with --force, as Nova.
    below = service.openstack("quota", "set", "--ram", "256", "team", check=False)
    assert below.returncode != 0 and "already used and reserved 512" in below.stderr
    service.openstack("quota", "set", "--ram", "256", "--force", "team")
    assert service.estate.app.identity.get_project("team").quota_ram_mib == 256


@dataclass(frozen=True)
class Leftovers:
    """What servers can leave behind: libvirt domains (running or not) whose disks are files
    in this service's FlexVols, volume files there, and volume records. Other tests' domains
    come and go meanwhile and are not looked at."""

    domains: frozenset[str]
    files: frozenset[str]
    volumes: frozenset[str]

    @classmethod
    def of(cls, service: Service) -> Leftovers:
        virsh = ["virsh", "-c", "qemu:///system"]
        names = subprocess.run(
            [*virsh, "list", "--all", "--name"], capture_output=True, text=True, check=True
        ).stdout.split()
        folders = [str(folder) for folder in service.estate.flexvols.values()]
        ours = set()
        for name in names:
            xml = subprocess.run([*virsh, "dumpxml", name], capture_output=True, text=True)
            if any(folder in xml.stdout for folder in folders):  # gone meanwhile: empty
                ours.add(name)
        files = {
            path.name
            for folder in service.estate.flexvols.values()
            if folder.exists()
            for path in folder.glob("volume-*")
        }
        volumes = {volume.id for volume in service.estate.app.volumes.list()}
        return cls(domains=frozenset(ours), files=frozenset(files), volumes=frozenset(volumes))


NOTHING = Leftovers(domains=frozenset(), files=frozenset(), volumes=frozenset())


def test_openstack_server_errors(make_service, guest_image: tuple[Path, str], tmp_path) -> None:
    service: Service = make_service(extra=compute_config())
    for flexvol in service.estate.flexvols.values():
        reachable_by_qemu(flexvol)
    raw, _ = guest_image
    app = service.estate.app
    app.images.create_from_file(ImageCreate(name="guest", disk_format="raw"), raw)
    # An image that needs 2 GiB (Glance's min_disk), and one whose disk is 2 GiB (virtual).
    needs_2g = shlex.split("image create --public --disk-format raw --min-disk 2 needs-2g --file")
    service.openstack(*needs_2g, str(raw))
    wide = tmp_path / "wide.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(wide), "2G"], check=True)
    service.openstack(
        "image", "create", "--public", "--disk-format", "qcow2", "--file", str(wide), "wide"
    )
    service.openstack("flavor", "create", "--vcpus", "1", "--ram", "256", "--disk", "1", "disk1")
    service.openstack("flavor", "create", "--vcpus", "2", "--ram", "256", "c2")
    service.openstack("flavor", "create", "--vcpus", "1", "--ram", "8192", "huge")  # host: 4096
    member = service.member_cloud("team", service.add_member("team"))
    service.openstack("quota", "set", "--instances", "1", "--cores", "1", "team")

    def create(*args: str, cloud: Path = member) -> subprocess.CompletedProcess[str]:
        return openstack_cli(cloud, "server", "create", "--nic", "none", *args, check=False)

    def refused(
        result: subprocess.CompletedProcess[str], *messages: str, leaves: Leftovers = NOTHING
    ) -> None:
        """A refusal: the command failed saying so, and left nothing new behind."""
        assert result.returncode != 0, result.stdout
        for message in messages:
            assert message in result.stderr, result.stderr
        assert Leftovers.of(service) == leaves

    boot = ("--boot-from-volume", "1")
    refused(create("--image", "guest", "--flavor", "nope", *boot, "vm"), "nope")
    # The client looks the image up itself; Nova answers an unknown imageRef 400.
    refused(create("--image", "nope", "--flavor", "m1.tiny", *boot, "vm"), "No Image found")
    token, _ = service.token()
    with service.http() as client:
        unknown = client.post(
            "/compute/v2.1/servers",
            headers={"X-Auth-Token": token},
            json={"server": {"name": "vm", "flavorRef": "1", "imageRef": str(uuid.uuid4())}},
        )
    assert unknown.status_code == 400, unknown.text
    assert "could not be found" in unknown.json()["badRequest"]["message"]
    # A root disk of the flavor's size that the image does not fit (Nova's 400s).
    refused(
        create("--image", "needs-2g", "--flavor", "disk1", "vm"),
        "400: Client Error",
        "Flavor's disk is smaller than the minimum size specified in image metadata. "
        "Flavor disk is 1073741824 bytes, minimum size is 2147483648 bytes.",
    )
    refused(
        create("--image", "wide", "--flavor", "disk1", "vm"),
        "400: Client Error",
        "Flavor's disk is too small for requested image. Flavor disk is 1073741824 bytes, "
        "image is 2147483648 bytes.",
    )
    # A boot volume smaller than the image: Nova's answer for min_disk, Cinder's for the size.
    refused(
        create("--image", "needs-2g", "--flavor", "m1.tiny", *boot, "vm"),
        "400: Client Error",
        "Volume is smaller than the minimum size specified in image metadata. "
        "Volume size is 1073741824 bytes, minimum size is 2147483648 bytes.",
    )
    refused(
        create("--image", "wide", "--flavor", "m1.tiny", *boot, "vm"),
        "400: Client Error",
        "Image virtual size is 2GB and doesn't fit in a volume of size 1GB.",
    )
    # Quotas: Nova's 403 and message.
    refused(
        create("--image", "guest", "--flavor", "c2", *boot, "vm"),
        "403: Client Error",
        "Quota exceeded for cores: Requested 2, but already used 0 of 1 cores",
    )
    made = create("--image", "guest", "--flavor", "m1.tiny", *boot, "--wait", "-f", "json", "vm1")
    running = json.loads(made.stdout)
    assert running["status"] == "ACTIVE"
    vm1 = Leftovers.of(service)
    assert len(vm1.domains) == 1 and len(vm1.volumes) == 1
    refused(
        create("--image", "guest", "--flavor", "m1.tiny", *boot, "vm2"),
        "403: Client Error",
        "Quota exceeded for instances: Requested 1, but already used 1 of 1 instances",
        leaves=vm1,
    )
    # The volume the server boots from is in-use: Cinder refuses its deletion (400), saying why.
    (boot_volume,) = vm1.volumes
    in_use = openstack_cli(member, "volume", "delete", boot_volume, check=False)
    refused(in_use, "400: Client Error", "in-use", leaves=vm1)
    assert app.volumes.get(boot_volume).status == "in-use"

    # No host with room: accepted (202), then ERROR with Nova's NoValidHost fault.
    huge = create("--image", "guest", "--flavor", "huge", *boot, "vm3", cloud=service.clouds_yaml)
    assert huge.returncode == 0, huge.stderr
    shown = show(service, "vm3")
    assert shown["status"] == "ERROR"
    assert "No valid host was found" in shown["fault"]["message"], shown["fault"]
    assert shown["fault"]["code"] == 500
    assert Leftovers.of(service) == vm1
    service.openstack("server", "delete", "--wait", "vm3")

    # Once its server is gone the volume is available again (OSC kept it) and deletes.
    openstack_cli(member, "server", "delete", "--wait", "vm1")
    assert Leftovers.of(service).domains == frozenset()
    openstack_cli(member, "volume", "delete", boot_volume)
    assert Leftovers.of(service) == NOTHING

    missing = service.openstack("server", "show", "no-such-server", check=False)
    assert missing.returncode != 0 and "No Server found" in missing.stderr
