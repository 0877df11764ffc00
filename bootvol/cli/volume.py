"""`bootvol volume …`: create from an image, list, show, extend, delete."""

from __future__ import annotations

from contextlib import nullcontext

import typer

from bootvol.cli import output
from bootvol.cli.context import bootvol
from bootvol.db.models import VolumeStatus
from bootvol.errors import BootvolError
from bootvol.volumes.service import VolumeCreate

app = typer.Typer(help="Volumes: create from images by the cheapest path.", no_args_is_help=True)


class VolumeFailed(BootvolError):
    exit_code = 8


@app.command("create")
def create(
    ctx: typer.Context,
    image: str = typer.Option(..., "--image", help="Image id or name."),
    size: int = typer.Option(..., "--size", help="Size in GiB.", min=1),
    name: str | None = typer.Option(None, "--name", help="Volume name."),
    flexvol: str | None = typer.Option(
        None, "--flexvol", help="Put it on this FlexVol (default: placement)."
    ),
    json_: bool = output.JsonOption,
) -> None:
    """Create a volume from an image; wait and print the path taken and step timings."""
    spinner = output.errors.status("creating volume…") if not json_ else nullcontext()
    with spinner:
        record = bootvol(ctx).volumes.create(
            VolumeCreate(image=image, size_gib=size, name=name, flexvol=flexvol)
        )
    if json_:
        output.emit_json(output.volume_view(record))
    else:
        output.print_fields(f"volume {record.name or record.id}", output.volume_view(record))
        output.print_provisioning(record.provisioning)
    if record.status == VolumeStatus.ERROR:
        raise VolumeFailed(f"volume {record.id} is in error: {record.message}")


@app.command("list")
def list_(ctx: typer.Context, json_: bool = output.JsonOption) -> None:
    """List volumes with the path each took."""
    volumes = bootvol(ctx).volumes.list()
    if json_:
        output.emit_json([output.volume_view(v) for v in volumes])
        return
    output.table(
        "volumes",
        ["id", "name", "status", "size GiB", "flexvol", "path", "seconds"],
        [
            (
                v.id,
                v.name,
                v.status,
                v.size_gib,
                v.flexvol,
                v.provisioning.path if v.provisioning else None,
                v.provisioning.seconds if v.provisioning else None,
            )
            for v in volumes
        ],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    volume: str = typer.Argument(..., help="Volume id or name."),
    json_: bool = output.JsonOption,
) -> None:
    """Show one volume and its provisioning record."""
    record = bootvol(ctx).volumes.get(volume)
    if json_:
        output.emit_json(output.volume_view(record))
    else:
        output.print_fields(f"volume {record.name or record.id}", output.volume_view(record))
        output.print_provisioning(record.provisioning)


@app.command("extend")
def extend(
    ctx: typer.Context,
    volume: str = typer.Argument(..., help="Volume id or name."),
    size: int = typer.Option(..., "--size", help="New size in GiB."),
    json_: bool = output.JsonOption,
) -> None:
    """Grow a volume (sparse; never shrinks)."""
    record = bootvol(ctx).volumes.extend(volume, size)
    if json_:
        output.emit_json(output.volume_view(record))
    else:
        output.console.print(f"volume {record.id} is now {record.size_gib} GiB")


@app.command("delete")
def delete(
    ctx: typer.Context,
    volume: str = typer.Argument(..., help="Volume id or name."),
    json_: bool = output.JsonOption,
) -> None:
    """Delete a volume and its file."""
    record = bootvol(ctx).volumes.delete(volume)
    if json_:
        output.emit_json({"deleted": record.id})
    else:
        output.console.print(f"deleted volume {record.id}")
