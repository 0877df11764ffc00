"""`bootvol demo`: every path of the flowchart on the embedded default, in one table; then,
where libvirt is usable, one server booted from a bootvol volume, and its console line.

The server is the operator's to see, not to keep: the demo runs its own compute host only
while it runs, so a server left behind would have no host to stop or delete it. It is
deleted at the end, with its boot volume (``--keep`` keeps the volume, released, and the
images). The guest image is built once by scripts/guest-image and kept in
``<data dir>/guest``.
"""

from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from bootvol.bench.content import file_sha256, volume_sha256
from bootvol.bench.guest import cached_guest_image, libvirt_unavailable, reachable_by_qemu
from bootvol.bench.host import LocalComputeHost
from bootvol.bench.local_server import LocalFileServer
from bootvol.bench.samples import make_qcow2, make_raw
from bootvol.cli import output
from bootvol.cli.context import bootvol
from bootvol.compute.records import BuildRecord
from bootvol.errors import BootvolError
from bootvol.images.service import ImageCreate
from bootvol.runtime import Bootvol
from bootvol.units import MiB
from bootvol.volumes.service import VolumeCreate

SERVER_FLAVOR = "m1.tiny"
# Bounds for hangs: under TCG the guest prints its line within seconds.
SERVER_LINE_TIMEOUT_SECONDS = 300.0
SERVER_DELETE_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class DemoStep:
    title: str
    image: str  # key into the demo's images
    flexvol: str


def demo(
    ctx: typer.Context,
    size_mib: int = typer.Option(64, "--size-mib", help="Virtual size of the sample image."),
    keep: bool = typer.Option(False, "--keep", help="Keep the demo's images and volumes."),
    json_: bool = output.JsonOption,
) -> None:
    """Make a sample image, create volumes by every provisioning path and compare; then
    boot a server from a volume of the guest image and print its console line (where
    libvirt runs; the server is deleted afterwards)."""
    app = bootvol(ctx)
    store = app.settings.image_store
    others = [f.name for f in app.topology.volume_flexvols() if f.name != store]
    if len(others) < 2:
        raise typer.BadParameter("the demo needs two volume FlexVols besides the image store")
    near, far = others[0], others[1]
    with tempfile.TemporaryDirectory(prefix="bootvol-demo-") as folder:
        work = Path(folder)
        raw = make_raw(work / "sample.raw", size_bytes=size_mib * MiB)
        make_qcow2(raw, work / "sample.qcow2")
        with LocalFileServer(work) as server:
            images = _register_images(app, work, server)
            steps = [
                DemoStep("download (remote qcow2, converted)", "remote", near),
                DemoStep("cache-clone (same image again)", "remote", near),
                DemoStep("copy offload from another FlexVol's cache", "remote", far),
                DemoStep("direct-clone (raw image in the same FlexVol)", "raw", store),
                DemoStep("copy offload (raw image in another FlexVol)", "raw", near),
                DemoStep("copy offload (qcow2: converted after the copy)", "qcow2", far),
            ]
            raw_size = raw.stat().st_size
            expected = file_sha256(raw)
            rows, created = [], []
            for step in steps:
                volume = app.volumes.create(
                    VolumeCreate(
                        image=images[step.image],
                        size_gib=1,
                        flexvol=step.flexvol,
                        name=f"demo-{len(created)}",
                    )
                )
                created.append(volume)
                provisioning = volume.provisioning
                rows.append(
                    {
                        "step": step.title,
                        "flexvol": step.flexvol,
                        "status": str(volume.status),
                        "path": str(provisioning.path) if provisioning else None,
                        "clone": str(provisioning.clone_method) if provisioning else None,
                        "seconds": provisioning.seconds if provisioning else None,
                        "host_bytes": provisioning.host_bytes if provisioning else None,
                        "content_ok": volume.file is not None
                        and volume_sha256(
                            Path(volume.file), file_format=volume.file_format, length=raw_size
                        )
                        == expected,
                        "message": volume.message,
                    }
                )
        if not keep:
            for volume in created:
                app.volumes.delete(volume.id)
            for image_id in images.values():
                app.images.delete(image_id)
    if json_:
        output.emit_json({"volumes": rows, "server": _boot_a_server(app, keep=keep)})
        return
    output.table(
        f"bootvol demo: {size_mib} MiB image, data folder {app.settings.data_dir}",
        ["what", "flexvol", "path taken", "clone", "seconds", "host bytes", "content"],
        [
            (
                r["step"],
                r["flexvol"],
                r["path"] or f"error: {r['message']}",
                r["clone"],
                f"{r['seconds']:.3f}" if r["seconds"] is not None else "-",
                output.human_bytes(r["host_bytes"]),
                "identical" if r["content_ok"] else "DIFFERS",
            )
            for r in rows
        ],
    )
    if not keep:
        output.console.print("demo volumes and images removed (use --keep to inspect them)")
    _print_server(_boot_a_server(app, keep=keep), keep=keep)


def _register_images(app: Bootvol, work: Path, server: LocalFileServer) -> dict[str, str]:
    raw = app.images.create_from_file(
        ImageCreate(name="demo-raw", disk_format="raw"), work / "sample.raw"
    )
    qcow2 = app.images.create_from_file(
        ImageCreate(name="demo-qcow2", disk_format="qcow2"), work / "sample.qcow2"
    )
    remote = app.images.create(  # the same bytes, served over HTTP: same size and md5
        ImageCreate(
            name="demo-remote",
            disk_format="qcow2",
            url=server.url_for("sample.qcow2"),
            size=qcow2.size,
            checksum=qcow2.checksum,
        )
    )
    return {"raw": raw.id, "qcow2": qcow2.id, "remote": remote.id}


def _boot_a_server(app: Bootvol, *, keep: bool) -> dict[str, Any]:
    """Boot one server from a new volume of the guest image on a compute host of this
    process, read its console line, delete it; what happened, or why it was skipped."""
    compute = app.settings.compute
    reason = libvirt_unavailable(compute.libvirt_uri)
    if reason is not None:
        return {"skipped": f"no server booted: {reason}"}
    guest_folder = app.settings.data_dir / "guest"
    with output.errors.status(f"the guest image (built once, kept in {guest_folder})…"):
        try:
            guest = cached_guest_image(guest_folder)
        except BootvolError as exc:
            return {"skipped": f"no server booted: {exc.message}"}
    for flexvol in app.topology:
        for folder in reachable_by_qemu(flexvol.path):
            output.errors.print(f"[dim]{folder}: o+x, so that QEMU reaches its disks[/dim]")
    image = app.images.create_from_file(
        ImageCreate(name="demo-guest", disk_format="raw"), guest.path
    )
    view: dict[str, Any] = {"image": image.name}
    try:
        with (
            output.errors.status("booting a server from a volume of the guest image…"),
            LocalComputeHost(
                app,
                name=f"demo-{socket.gethostname()}-{os.getpid()}",
                accel=compute.accel,
                uri=compute.libvirt_uri,
            ) as host,
        ):
            server_id = host.ask(
                image.id, name="demo-server", flavor=SERVER_FLAVOR, delete_volume=not keep
            )
            (record,) = host.wait_for_lines([server_id], timeout=SERVER_LINE_TIMEOUT_SECONDS)
            volume = app.volumes.get(record.root_volume_id or "")
            build = record.build or BuildRecord()
            line = host.first_line(server_id)
            view |= {
                "id": record.id,
                "name": record.name,
                "flavor": record.flavor_name,
                "accel": str(host.hypervisor.accel),
                "volume_id": volume.id,
                "flexvol": volume.flexvol,
                "path": str(volume.provisioning.path) if volume.provisioning else None,
                "clone": str(volume.provisioning.clone_method) if volume.provisioning else None,
                "request_to_active_s": build.request_to_active_s,
                "guest_line_s": build.guest_line_s,
                "console_line": line,
                "line_ok": line == guest.expected_line(volume.id),
                "deleted": True,
                "kept_volume": volume.id if keep else None,
            }
            host.delete([server_id], timeout=SERVER_DELETE_TIMEOUT_SECONDS)
    except BootvolError as exc:
        # As a volume row in error: shown, and the demo goes on to `bootvol serve`.
        view["error"] = exc.message
    finally:
        if not keep:
            app.images.delete(image.id)
    return view


def _print_server(server: dict[str, Any], *, keep: bool) -> None:
    if "skipped" in server:
        output.console.print(f"[yellow]{server['skipped']}[/yellow]", highlight=False)
        return
    if "error" in server:
        output.console.print(
            f"[bold red]the demo server failed:[/bold red] {server['error']}", highlight=False
        )
        return
    output.table(
        f"bootvol demo: a server booted from a bootvol volume ({server['flavor']}, "
        f"{server['accel']})",
        ["server", "image", "boot volume", "→ ACTIVE s", "→ guest line s"],
        [
            (
                server["name"],
                server["image"],
                f"{server['path']} in {server['flexvol']} ({server['clone']} clone)",
                f"{server['request_to_active_s']:.3f}",
                f"{server['guest_line_s']:.3f}",
            )
        ],
    )
    verdict = (
        "its volume's id and the image's payload checksum"
        if server["line_ok"]
        else "[red]NOT its volume's id and payload checksum[/red]"
    )
    # On one line however narrow the terminal: an operator compares it with the volume id.
    output.console.print(f"console: {server['console_line']}", highlight=False, soft_wrap=True)
    output.console.print(f"  ({verdict})")
    kept = f"; its boot volume {server['kept_volume']} is kept" if keep else " with its boot volume"
    output.console.print(f"demo server deleted{kept}: nothing of it keeps running")
