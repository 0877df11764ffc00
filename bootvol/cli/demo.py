"""`bootvol demo`: every path of the flowchart on the embedded default, in one table."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import typer

from bootvol.bench.content import file_sha256, volume_sha256
from bootvol.bench.local_server import LocalFileServer
from bootvol.bench.samples import make_qcow2, make_raw
from bootvol.cli import output
from bootvol.cli.context import bootvol
from bootvol.images.service import ImageCreate
from bootvol.runtime import Bootvol
from bootvol.units import MiB
from bootvol.volumes.service import VolumeCreate


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
    """Make a sample image, then create volumes by every provisioning path and compare."""
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
        output.emit_json(rows)
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
