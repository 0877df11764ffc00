"""Servers on real libvirt and QEMU (TCG): built from volumes bootvol makes, powered, killed,
adopted after a restart, and removed without leaving a domain or a volume file behind.

The guest (scripts/guest-image) prints ``bootvol-guest serial=<volume id> sha256=<…>`` on
its serial console at every boot; the tests wait for that line, never for a time.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bootvol.bench.guest import guest_lines
from bootvol.caller import Caller
from bootvol.compute.domain import Accel
from bootvol.compute.flavors import FlavorCreate
from bootvol.compute.host import ComputeHost
from bootvol.compute.hypervisor import Hypervisor, PowerState
from bootvol.compute.service import BootSource, BootVolume, ServerCreate
from bootvol.config import ComputeSettings
from bootvol.db.models import (
    ComputeHostRecord,
    ServerRecord,
    ServerStatus,
    TaskState,
    VolumeStatus,
    utcnow,
)
from bootvol.errors import Conflict, InvalidRequest
from bootvol.images.service import ImageCreate
from bootvol.volumes.claims import this_process
from bootvol.volumes.records import ProvisioningPath
from bootvol.volumes.service import VolumeCreate

from ..support import Estate, reachable_by_qemu

TIMEOUT = 180.0  # a bound for hangs, not a timing assertion: TCG boots in seconds


class Cloud:
    def __init__(self, estate: Estate, image: str, expected: str, console_dir: Path) -> None:
        self.estate = estate
        self.app = estate.app
        self.image = image
        self.expected = expected
        self.hypervisor = Hypervisor(uri="qemu:///system", console_dir=console_dir, accel=Accel.TCG)
        self.settings = ComputeSettings(
            enabled=True,
            host_name=f"test-{uuid.uuid4().hex[:8]}",
            vcpus=100,  # room for the 300-vCPU flavor below (× 4.0 overcommit)
            ram_mib=8192,
            poll_seconds=0.2,
        )
        self.caller = Caller(project_id=self.app.identity.create_project("p").id, user_id="u")
        self.host = self.start_host()

    def start_host(self) -> ComputeHost:
        host = ComputeHost(
            servers=self.app.servers, hypervisor=self.hypervisor, settings=self.settings
        )
        host.start()
        return host

    def create(self, *, image: str | None = None, volume: str | None = None, **kw: object) -> str:
        if volume is not None:
            boot = BootVolume(BootSource.VOLUME, volume, delete_on_termination=False)
        else:
            boot = BootVolume(BootSource.IMAGE, image or self.image, 1, delete_on_termination=True)
        request = ServerCreate(name="vm", flavor=str(kw.get("flavor", "m1.tiny")), boot_volume=boot)
        return self.app.servers.accept(request, caller=self.caller).id

    def server(self, server_id: str) -> ServerRecord:
        return self.app.servers.get(server_id)

    def wait(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.1)

    def wait_status(self, server_id: str, status: ServerStatus) -> ServerRecord:
        self.wait(
            lambda: (
                self.server(server_id).status == status
                and self.server(server_id).task_state is None
            ),
            f"server {server_id} {status}",
        )
        return self.server(server_id)

    def guest_lines(self, server_id: str) -> list[str]:
        return guest_lines(self.hypervisor.console_output(server_id))

    def wait_boots(self, server_id: str, count: int) -> list[str]:
        self.wait(lambda: len(self.guest_lines(server_id)) >= count, f"boot {count}")
        return self.guest_lines(server_id)


@pytest.fixture
def cloud(estate: Estate, guest_image: tuple[Path, str], tmp_path: Path) -> Iterator[Cloud]:
    raw, expected = guest_image
    for flexvol in estate.flexvols.values():
        reachable_by_qemu(flexvol)
    image = estate.app.images.create_from_file(ImageCreate(name="guest", disk_format="raw"), raw)
    made = Cloud(estate, image.id, expected, estate.app.settings.data_dir / "consoles")
    yield made
    made.host.stop()
    for domain in made.hypervisor.domains():
        if made.app.servers.get_by_id(domain.server_id) is not None:
            made.hypervisor.undefine(domain.server_id)


def test_servers_boot_from_volumes_cut_from_their_image(cloud: Cloud) -> None:
    first = cloud.create()
    server = cloud.wait_status(first, ServerStatus.ACTIVE)
    assert server.root_volume_id is not None
    (line,) = cloud.wait_boots(first, 1)
    # virtio-blk carries 20 bytes of serial (VIRTIO_BLK_ID_BYTES): the volume id's first 20.
    serial = server.root_volume_id[:20]
    assert line.strip() == f"bootvol-guest serial={serial} sha256={cloud.expected}"
    assert server.build is not None and server.build.volume is not None
    assert server.build.volume.path == ProvisioningPath.DIRECT_CLONE
    assert server.build.domain_start_s and server.build.request_to_active_s

    def guest_line_recorded() -> bool:
        build = cloud.server(first).build
        return build is not None and build.guest_line_s is not None

    cloud.wait(guest_line_recorded, "the guest line in the build record")
    # The raw image lives on the image store, which also holds volumes: the first boot volume
    # is a clone of the image file there. That FlexVol is now half provisioned (1 GiB of 2),
    # past placement's margin: the second goes to an emptier FlexVol, which gets the image.
    second = cloud.app.servers.accept(
        ServerCreate(
            name="vm2",
            flavor="m1.tiny",
            boot_volume=BootVolume(BootSource.IMAGE, cloud.image, 1, delete_on_termination=True),
        ),
        caller=cloud.caller,
    )
    built = cloud.wait_status(second.id, ServerStatus.ACTIVE)
    assert built.build is not None and built.build.volume is not None
    assert built.build.volume.path != ProvisioningPath.DIRECT_CLONE
    assert built.build.volume.filled_cache
    assert built.root_volume_id and built.root_volume_id != server.root_volume_id
    volume = cloud.app.volumes.get(built.root_volume_id)
    assert volume.status == VolumeStatus.IN_USE  # the server boots from it
    assert volume.flexvol != cloud.app.volumes.get(server.root_volume_id).flexvol
    (line,) = cloud.wait_boots(second.id, 1)
    assert line.strip() == f"bootvol-guest serial={volume.id[:20]} sha256={cloud.expected}"


def test_stop_start_and_reboot_keep_the_disk(cloud: Cloud) -> None:
    server_id = cloud.create()
    cloud.wait_status(server_id, ServerStatus.ACTIVE)
    cloud.wait_boots(server_id, 1)
    servers = cloud.app.servers
    servers.begin_task(
        server_id, task=TaskState.POWERING_OFF, allowed=(ServerStatus.ACTIVE,), caller=cloud.caller
    )
    cloud.wait_status(server_id, ServerStatus.SHUTOFF)
    assert cloud.hypervisor.state(server_id) is PowerState.SHUTOFF
    servers.begin_task(
        server_id, task=TaskState.POWERING_ON, allowed=(ServerStatus.SHUTOFF,), caller=cloud.caller
    )
    cloud.wait_status(server_id, ServerStatus.ACTIVE)
    cloud.wait_boots(server_id, 2)
    servers.begin_task(
        server_id,
        task=TaskState.REBOOTING_HARD,
        allowed=(ServerStatus.ACTIVE,),
        caller=cloud.caller,
    )
    lines = cloud.wait_boots(server_id, 3)
    assert len(set(line.strip() for line in lines)) == 1  # same volume, same content


def test_a_killed_qemu_shows_shutoff_and_a_restart_adopts_running_servers(cloud: Cloud) -> None:
    killed, kept = cloud.create(), cloud.create()
    for server_id in (killed, kept):
        cloud.wait_status(server_id, ServerStatus.ACTIVE)
        cloud.wait_boots(server_id, 1)
    pid_file = Path(f"/run/libvirt/qemu/bootvol-{killed}.pid")
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    cloud.wait_status(killed, ServerStatus.SHUTOFF)
    # bootvol stops; its domains do not. A new process adopts them.
    cloud.host.stop()
    assert cloud.hypervisor.state(kept) is PowerState.RUNNING
    cloud.host = cloud.start_host()
    assert cloud.server(kept).status == ServerStatus.ACTIVE
    assert cloud.server(killed).status == ServerStatus.SHUTOFF


def test_a_server_deleted_while_its_host_is_down_is_reaped_when_it_is_back(
    cloud: Cloud,
) -> None:
    server_id = cloud.create()
    cloud.wait_status(server_id, ServerStatus.ACTIVE)
    root = cloud.server(server_id).root_volume_id
    cloud.host.stop()
    # The host's last heartbeat is older than down_after_seconds: it is down.
    with cloud.app.sessions.begin() as session:
        record = session.get(ComputeHostRecord, cloud.host.name)
        record.heartbeat_at = utcnow() - dt.timedelta(hours=1)
    cloud.app.servers.request_delete(server_id, caller=cloud.caller)
    assert cloud.app.servers.get_by_id(server_id) is None  # deleted at once, by the API
    assert cloud.hypervisor.state(server_id) is PowerState.RUNNING  # on the host that is down
    # Its guest may still write to the boot volume: in use until the domain is gone.
    assert cloud.app.volumes.get(root or "").status == VolumeStatus.IN_USE
    cloud.host = cloud.start_host()
    assert cloud.hypervisor.state(server_id) is PowerState.MISSING
    assert root not in [v.id for v in cloud.app.volumes.list()]


def test_delete_with_and_without_delete_on_termination(cloud: Cloud) -> None:
    owned = cloud.create()
    request = VolumeCreate(image=cloud.image, size_gib=1, name="keep")
    accepted = cloud.app.volumes.accept(request, caller=cloud.caller, claimant=this_process())
    volume = cloud.app.volumes.provisioner.provision(accepted.id)
    borrowed = cloud.create(volume=volume.id)
    for server_id in (owned, borrowed):
        cloud.wait_status(server_id, ServerStatus.ACTIVE)
    owned_volume = cloud.app.volumes.get(cloud.server(owned).root_volume_id or "")
    # A volume a server boots from is in use: it is neither deleted nor given to another.
    assert cloud.app.volumes.get(volume.id).status == VolumeStatus.IN_USE
    with pytest.raises(Conflict, match="must be available or error"):
        cloud.app.volumes.delete(volume.id)
    with pytest.raises(InvalidRequest, match="only an available volume boots"):
        cloud.create(volume=volume.id)
    for server_id in (owned, borrowed):
        cloud.app.servers.request_delete(server_id, caller=cloud.caller)
    cloud.wait(
        lambda: (
            cloud.app.servers.get_by_id(owned) is None
            and cloud.app.servers.get_by_id(borrowed) is None
        ),
        "the deletes",
    )
    for server_id in (owned, borrowed):
        assert cloud.hypervisor.state(server_id) is PowerState.MISSING
        assert not cloud.hypervisor.console_log(server_id).exists()
    assert not Path(owned_volume.file or "").exists()
    assert cloud.app.volumes.get(volume.id).status == VolumeStatus.AVAILABLE


def data_volume(cloud: Cloud, name: str) -> str:
    accepted = cloud.app.volumes.accept(
        VolumeCreate(size_gib=1, name=name), caller=cloud.caller, claimant=this_process()
    )
    return cloud.app.volumes.provisioner.provision(accepted.id).id


def test_a_data_volume_hot_plugs_into_a_running_server_and_goes(cloud: Cloud) -> None:
    server_id = cloud.create()
    cloud.wait_status(server_id, ServerStatus.ACTIVE)
    cloud.wait_boots(server_id, 1)
    volume_id = data_volume(cloud, "data")
    volumes = cloud.app.server_volumes
    attachment = volumes.attach(server_id, volume_id, caller=cloud.caller)
    assert attachment.device == "/dev/vdb"
    cloud.wait(lambda: cloud.app.volumes.get(volume_id).status == VolumeStatus.IN_USE, "the attach")
    seen = f"bootvol-guest disk=vdb serial={volume_id[:20]}"
    cloud.wait(lambda: seen in cloud.hypervisor.console_output(server_id), "the guest's disk line")
    attached = [a.volume_id for a in volumes.list(server_id, caller=cloud.caller)]
    assert attached == [cloud.server(server_id).root_volume_id, volume_id]
    # In use: not deleted, not attached twice, the boot volume stays.
    with pytest.raises(Conflict, match=f"in-use \\(attached to server {server_id}\\)"):
        cloud.app.volumes.delete(volume_id)
    with pytest.raises(InvalidRequest, match="only an available volume can be attached"):
        volumes.attach(server_id, volume_id, caller=cloud.caller)
    with pytest.raises(InvalidRequest, match="root device"):
        volumes.detach(server_id, cloud.server(server_id).root_volume_id or "", caller=cloud.caller)

    volumes.detach(server_id, volume_id, caller=cloud.caller)
    cloud.wait(
        lambda: cloud.app.volumes.get(volume_id).status == VolumeStatus.AVAILABLE, "the detach"
    )
    # The guest looks at its disks once a second: its line follows the unplug.
    gone = "bootvol-guest gone=vdb"
    cloud.wait(lambda: gone in cloud.hypervisor.console_output(server_id), "the guest's gone line")
    assert [d.target for d in cloud.hypervisor.disks(server_id)] == ["vda"]

    # Attached to a stopped server, it is there at the next boot; the server's delete
    # deletes a volume attached with delete_on_termination and keeps the other.
    cloud.app.servers.begin_task(
        server_id, task=TaskState.POWERING_OFF, allowed=(ServerStatus.ACTIVE,), caller=cloud.caller
    )
    cloud.app.servers.wake_host(cloud.server(server_id))
    cloud.wait_status(server_id, ServerStatus.SHUTOFF)
    owned = data_volume(cloud, "owned")
    # Asked while no host runs: recorded, and carried out when the host is back.
    cloud.host.stop()
    volumes.attach(server_id, volume_id, caller=cloud.caller)
    volumes.attach(server_id, owned, caller=cloud.caller, delete_on_termination=True)
    assert cloud.app.volumes.get(owned).status == VolumeStatus.ATTACHING
    cloud.host = cloud.start_host()
    cloud.wait(lambda: cloud.app.volumes.get(owned).status == VolumeStatus.IN_USE, "the attaches")
    assert [d.serial for d in cloud.hypervisor.disks(server_id)][1:] == [volume_id, owned]
    owned_file = Path(cloud.app.volumes.get(owned).file or "")
    cloud.app.servers.request_delete(server_id, caller=cloud.caller)
    cloud.wait(lambda: cloud.app.servers.get_by_id(server_id) is None, "the delete")
    assert cloud.app.volumes.get(volume_id).status == VolumeStatus.AVAILABLE
    assert owned not in [v.id for v in cloud.app.volumes.list()] and not owned_file.exists()


def test_a_guest_that_fails_to_start_leaves_no_domain_and_no_volume(cloud: Cloud) -> None:
    admin = Caller(project_id=None, is_admin=True)
    # The pc machine takes at most 255 vCPUs: libvirt refuses the domain.
    cloud.app.flavors.create(FlavorCreate(name="huge", vcpus=300, ram_mib=128), caller=admin)
    cloud.app.identity.set_quotas(cloud.caller.project_id or "", cores=-1)
    server_id = cloud.create(flavor="huge")
    server = cloud.wait_status(server_id, ServerStatus.ERROR)
    assert server.fault_code == 500 and "limit 255" in (server.fault_message or "")
    assert cloud.hypervisor.state(server_id) is PowerState.MISSING
    assert server.root_volume_id is not None
    assert cloud.app.volumes.list() == []  # the volume made for it went with it


def test_the_operators_server_commands(cloud: Cloud) -> None:
    server_id = cloud.create()
    cloud.wait_status(server_id, ServerStatus.ACTIVE)
    cloud.wait_boots(server_id, 1)
    cli = cloud.estate.cli
    listed = json.loads(cli("server", "list", "--json").stdout)
    assert [s["id"] for s in listed] == [server_id]
    shown = json.loads(cli("server", "show", server_id, "--json").stdout)
    assert (
        shown["status"] == "ACTIVE" and shown["volume_id"] == cloud.server(server_id).root_volume_id
    )
    assert "bootvol-guest serial=" in cli("server", "console", server_id).stdout
    cli("server", "stop", server_id, "--wait")  # the in-process host carries it out
    assert cloud.server(server_id).status == ServerStatus.SHUTOFF
    cli("server", "delete", server_id, "--wait")
    assert cloud.app.servers.get_by_id(server_id) is None
