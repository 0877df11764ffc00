"""A compute host inside this process, for ``bootvol bench --boot`` and ``bootvol demo``.

It is the product's own host (bootvol.compute.host.ComputeHost) on the real libvirt,
registered under its own name; servers are asked for through the server service, as the
API does, and built by it. What it adds is what a short-lived caller needs:

* ``ask`` a server booted from a new volume of an image, on this host;
* ``wait_for_lines``: every guest's first console line is in its server's build record
  (the host adds ``guest_line_s`` when it sees it), bounded by a timeout;
* ``delete`` servers through the host, and wait until they are gone.

On leaving the ``with`` block, whatever ended it (an error, Ctrl-C): the host stops, each
server asked for here that still exists is deleted as its host would delete it (domain,
console log, the boot volume it owns), every such domain is undefined even without a
record, and the host's registration is removed so that the scheduler gives it no more
servers. Nothing of it keeps running.

The libvirt binding is imported on entering, not with this module: a volume-only install
still runs ``bootvol bench`` and ``bootvol demo`` without it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

from bootvol.bench.guest import guest_lines
from bootvol.caller import OPERATOR
from bootvol.compute.service import BootSource, BootVolume, ServerCreate
from bootvol.config import Acceleration, ComputeSettings
from bootvol.db.models import ServerRecord, ServerStatus
from bootvol.errors import BootvolError
from bootvol.runtime import Bootvol

if TYPE_CHECKING:
    from bootvol.compute.host import ComputeHost
    from bootvol.compute.hypervisor import Hypervisor

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1  # how often a wait re-reads the server records


class ServerFailed(BootvolError):
    """A server asked for here ended ``ERROR``, printed no line in time, or was placed on
    another host."""


class LocalComputeHost:
    """``with LocalComputeHost(app, name=…) as host: host.ask(image_id, …)``."""

    def __init__(
        self,
        app: Bootvol,
        *,
        name: str,
        accel: Acceleration,
        uri: str = "qemu:///system",
        vcpus: int | None = None,  # None: the machine's
        ram_mib: int | None = None,  # None: the machine's
    ) -> None:
        self.app = app
        self.name = name
        self._settings = ComputeSettings(
            enabled=True,
            accel=accel,
            libvirt_uri=uri,
            host_name=name,
            vcpus=vcpus,
            ram_mib=ram_mib,
            poll_seconds=POLL_SECONDS,
        )
        self._made: list[str] = []  # every server asked for here
        self._host: ComputeHost | None = None

    @property
    def hypervisor(self) -> Hypervisor:
        assert self._host is not None, "enter the host first"
        return self._host.hypervisor

    # lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> LocalComputeHost:
        from bootvol.compute.host import open_compute_host

        self._host = open_compute_host(
            self.app.servers, compute=self._settings, console_dir=self.app.settings.console_dir
        )
        self._host.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._host is None:
            return
        host = self._host
        host.stop()  # its loop is done: nothing builds behind the cleanup's back
        for server_id in self._made:
            # The domain first (QEMU must not outlive the run), then the record and the
            # volume the server owns (ComputeHost.delete: the same steps as a delete).
            _attempt(
                f"removing the domain of server {server_id}", self.hypervisor.undefine, server_id
            )
            _attempt(f"deleting server {server_id}", self._forget, host, server_id)
        self.app.hosts.remove(self.name)

    def _forget(self, host: ComputeHost, server_id: str) -> None:
        record = self.app.servers.get_by_id(server_id)
        if record is not None:
            host.delete(record)

    # servers -------------------------------------------------------------------------------
    def ask(self, image_id: str, *, name: str, flavor: str, delete_volume: bool = True) -> str:
        """A server booted from a new volume of the image (what ``openstack server create
        --image IMG --boot-from-volume N`` asks for), on this host; returns its id."""
        record = self.app.servers.accept(
            ServerCreate(
                name=name,
                flavor=flavor,
                boot_volume=BootVolume(
                    BootSource.IMAGE, image_id, delete_on_termination=delete_volume
                ),
            ),
            caller=OPERATOR,
        )
        self._made.append(record.id)
        if record.status == ServerStatus.ERROR:
            raise ServerFailed(f"server {name} was refused: {record.fault_message}")
        if record.host != self.name:
            # Another compute host shares this database and had more room.
            raise ServerFailed(f"the scheduler placed server {name} on host {record.host}")
        return record.id

    def wait_for_lines(self, server_ids: list[str], *, timeout: float) -> list[ServerRecord]:
        """The servers' records, in ``server_ids`` order, once every guest's first console
        line is in its build record and whole in its console log; ServerFailed if one ends
        ``ERROR`` or ``timeout`` ends first."""
        deadline = time.monotonic() + timeout
        while True:
            records = {r.id: r for r in self.app.servers.on_host(self.name)}
            for record in records.values():
                if record.id in server_ids and record.status == ServerStatus.ERROR:
                    raise ServerFailed(f"server {record.name} failed: {record.fault_message}")
            # The host times the line as it starts to appear; a caller reads it whole.
            lined = {
                r.id
                for r in records.values()
                if r.build is not None
                and r.build.guest_line_s is not None
                and self.first_line(r.id) is not None
            }
            waiting = [server_id for server_id in server_ids if server_id not in lined]
            if not waiting:
                return [records[server_id] for server_id in server_ids]
            if time.monotonic() > deadline:
                tail = self.hypervisor.console_output(waiting[0], lines=3)
                raise ServerFailed(
                    f"{len(waiting)} of {len(server_ids)} servers printed no guest line within "
                    f"{timeout:.0f} s; the console of {waiting[0]} ends: {tail!r}"
                )
            time.sleep(POLL_SECONDS)

    def first_line(self, server_id: str) -> str | None:
        """The guest's line of its first boot on its console, if it printed one."""
        return next(iter(guest_lines(self.hypervisor.console_output(server_id))), None)

    def delete(self, server_ids: list[str], *, timeout: float) -> None:
        """Delete the servers through the host (domain, console log, the boot volume they
        own) and wait until they are gone."""
        for server_id in server_ids:
            self.app.servers.request_delete(server_id, caller=OPERATOR)
        deadline = time.monotonic() + timeout
        while any(self.app.servers.get_by_id(server_id) for server_id in server_ids):
            if time.monotonic() > deadline:
                raise ServerFailed(f"deleting {len(server_ids)} servers took over {timeout:.0f} s")
            time.sleep(POLL_SECONDS)


def _attempt(what: str, action: Callable[..., None], *args: object) -> None:
    """Run a cleanup step; log and go on when it fails (the next server's cleanup must
    still run)."""
    try:
        action(*args)
    except Exception as exc:  # a cleanup step: whatever failed, the others still run
        log.warning("%s failed: %s", what, getattr(exc, "message", exc))
