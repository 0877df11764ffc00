"""Accepting a server: flavors, boot sources and sizes, quotas, and which host gets it.

Acceptance makes nothing on storage or in libvirt (the chosen host's builder does); what it
refuses, it refuses before any record, volume or domain exists.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from bootvol.caller import OPERATOR, Caller
from bootvol.compute.flavors import FlavorCreate
from bootvol.compute.service import BootSource, BootVolume, ServerCreate, ServerQuery
from bootvol.db.models import ComputeHostRecord, ImageRecord, ServerStatus, TaskState
from bootvol.errors import Forbidden, InvalidRequest, NotFound, QuotaExceeded
from bootvol.images.service import ImageCreate
from bootvol.units import GiB

from ..support import Estate


@pytest.fixture
def compute(estate: Estate) -> Estate:
    """The estate with one compute host up (2 vCPUs, 2 GiB) and a 16 MiB raw image."""
    estate.app.hosts.register("node-1", vcpus=2, ram_mib=2048, accel="tcg")
    return estate


def member(estate: Estate, **quotas: int) -> Caller:
    project = estate.app.identity.create_project(f"p-{uuid.uuid4().hex[:8]}")
    if quotas:
        estate.app.identity.set_quotas(project.id, **quotas)
    return Caller(project_id=project.id, user_id="u")


def image(estate: Estate) -> str:
    raw = estate.sample("guest.raw")
    return estate.app.images.create_from_file(ImageCreate(name="guest", disk_format="raw"), raw).id


def from_image(image_id: str, *, size: int | None = 1, name: str = "s") -> ServerCreate:
    boot = BootVolume(BootSource.IMAGE, image_id, volume_size_gib=size, delete_on_termination=True)
    return ServerCreate(name=name, flavor="m1.tiny", boot_volume=boot)


def test_default_flavors_and_admin_only_flavor_management(compute: Estate) -> None:
    flavors = compute.app.flavors
    caller = member(compute)
    names = [f.name for f in flavors.list(caller=caller)]
    assert names[:2] == ["m1.tiny", "m1.small"]
    tiny = flavors.get("m1.tiny")
    assert (tiny.id, tiny.vcpus, tiny.ram_mib) == ("1", 1, 512)
    with pytest.raises(Forbidden):
        flavors.create(FlavorCreate(name="big", vcpus=64, ram_mib=1), caller=caller)
    with pytest.raises(Forbidden):
        flavors.delete("1", caller=caller)
    admin = Caller(project_id=caller.project_id, is_admin=True)
    made = flavors.create(FlavorCreate(name="c1", vcpus=1, ram_mib=128), caller=admin)
    assert flavors.get("c1").id == made.id
    flavors.delete(made.id, caller=admin)
    with pytest.raises(NotFound):
        flavors.get("c1")


def test_a_server_is_accepted_on_a_host_without_making_anything(compute: Estate) -> None:
    caller = member(compute)
    server = compute.app.servers.accept(from_image(image(compute)), caller=caller)
    assert (server.status, server.task_state) == (
        ServerStatus.BUILD,
        TaskState.BLOCK_DEVICE_MAPPING,
    )
    assert server.host == "node-1" and server.root_volume_size_gib == 1
    assert server.delete_on_termination
    assert compute.app.volumes.list() == []  # the host's builder makes the volume


def test_no_host_with_room_ends_the_server_in_error_with_novalidhost(compute: Estate) -> None:
    caller = member(compute)
    big = FlavorCreate(name="big", vcpus=1, ram_mib=4096)
    compute.app.flavors.create(big, caller=Caller(project_id=None, is_admin=True))
    request = ServerCreate(
        name="s", flavor="big", boot_volume=BootVolume(BootSource.IMAGE, image(compute), 1)
    )
    server = compute.app.servers.accept(request, caller=caller)
    assert server.status == ServerStatus.ERROR and server.host is None
    assert server.fault_code == 500
    assert "No valid host was found" in (server.fault_message or "")
    assert "2048 MiB of RAM free" in (server.fault_message or "")
    assert compute.app.volumes.list() == []


def test_a_host_that_stopped_heartbeating_gets_no_server(compute: Estate) -> None:
    with compute.app.sessions.begin() as session:
        host = session.get(ComputeHostRecord, "node-1")
        assert host is not None
        host.heartbeat_at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    (state,) = compute.app.hosts.list()
    assert not state.up
    server = compute.app.servers.accept(from_image(image(compute)), caller=member(compute))
    assert server.status == ServerStatus.ERROR
    assert "node-1 is down" in (server.fault_message or "")


def test_overcommit_counts_what_servers_already_take(compute: Estate) -> None:
    caller = member(compute)
    image_id = image(compute)
    # 2 vCPUs × 4.0 and 2048 MiB × 1.0: four m1.tiny (512 MiB each) fit, the fifth does not.
    servers = [
        compute.app.servers.accept(from_image(image_id, name=f"s{n}"), caller=caller)
        for n in range(5)
    ]
    assert [s.status for s in servers] == [ServerStatus.BUILD] * 4 + [ServerStatus.ERROR]
    (state,) = compute.app.hosts.list()
    assert (state.used_vcpus, state.used_ram_mib) == (4, 2048)  # the refused one takes nothing


@pytest.mark.parametrize(
    ("quotas", "message"),
    [
        ({"instances": 1}, "Quota exceeded for instances: Requested 1, but already used 1 of 1"),
        ({"cores": 1}, "Quota exceeded for cores"),
        ({"ram_mib": 600}, "Quota exceeded for ram"),
    ],
)
def test_compute_quotas(compute: Estate, quotas: dict[str, int], message: str) -> None:
    caller = member(compute, **quotas)
    image_id = image(compute)
    compute.app.servers.accept(from_image(image_id, name="first"), caller=caller)
    with pytest.raises(QuotaExceeded, match=message):
        compute.app.servers.accept(from_image(image_id, name="second"), caller=caller)
    assert compute.app.servers.usage(caller.project_id or "").instances == 1


def test_refusals_before_anything_exists(compute: Estate) -> None:
    caller = member(compute)
    image_id = image(compute)  # 16 MiB: fits in 1 GiB
    servers = compute.app.servers
    with pytest.raises(InvalidRequest, match="Flavor nope could not be found"):
        servers.accept(ServerCreate(name="s", flavor="nope", image=image_id), caller=caller)
    with pytest.raises(InvalidRequest, match="Image no-such could not be found"):  # Nova's 400
        servers.accept(ServerCreate(name="s", flavor="m1.tiny", image="no-such"), caller=caller)
    with pytest.raises(InvalidRequest, match="boot from an image or a volume"):
        servers.accept(ServerCreate(name="s", flavor="m1.tiny"), caller=caller)
    big = compute.app.images.create_from_file(
        ImageCreate(name="big", disk_format="raw"), compute.sample("big.raw")
    ).id
    with compute.app.sessions.begin() as session:
        record = session.get(ImageRecord, big)
        assert record is not None
        record.min_disk = 5  # Glance's min_disk: the image needs 5 GiB
    with pytest.raises(InvalidRequest, match="Volume is smaller than the minimum size"):
        servers.accept(from_image(big, size=2), caller=caller)
    with pytest.raises(InvalidRequest, match="Flavor's disk is smaller than the minimum size"):
        servers.accept(ServerCreate(name="s", flavor="m1.tiny", image=big), caller=caller)
    with compute.app.sessions.begin() as session:
        record = session.get(ImageRecord, big)
        assert record is not None
        record.min_disk, record.virtual_size = 0, 3 * GiB  # now a 3 GiB disk
    with pytest.raises(InvalidRequest, match="virtual size is 3GB and doesn't fit in a volume"):
        servers.accept(from_image(big, size=2), caller=caller)
    with pytest.raises(InvalidRequest, match="Flavor's disk is too small for requested image"):
        servers.accept(ServerCreate(name="s", flavor="m1.tiny", image=big), caller=caller)
    assert servers.query(ServerQuery(all_projects=True), caller=OPERATOR) == []
    assert compute.app.volumes.list() == []


def test_cli_lists_flavors_and_hosts(compute: Estate) -> None:
    flavors = json.loads(compute.cli("flavor", "list", "--json").stdout)
    assert [f["name"] for f in flavors][:2] == ["m1.tiny", "m1.small"]
    compute.cli("flavor", "create", "c2", "--vcpus", "2", "--ram", "256", "--id", "c2")
    assert compute.app.flavors.get("c2").vcpus == 2
    compute.cli("flavor", "delete", "c2")
    (host,) = json.loads(compute.cli("host", "list", "--json").stdout)
    assert (host["name"], host["state"], host["vcpus"]) == ("node-1", "up", 2)
