"""`bootvol image …`: create (upload a file or register a URL), list, show, delete."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from bootvol.cli import output
from bootvol.cli.context import bootvol
from bootvol.errors import InvalidRequest
from bootvol.images.service import ImageCreate

app = typer.Typer(help="Images: upload files or register http(s) URLs.", no_args_is_help=True)


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Image name."),
    file: Path | None = typer.Option(
        None, "--file", help="Upload this file.", exists=True, dir_okay=False, readable=True
    ),
    url: str | None = typer.Option(None, "--url", help="Register a remote http(s) image."),
    disk_format: str = typer.Option(
        ..., "--disk-format", help="raw, qcow2, vmdk, vhd, vhdx or vdi."
    ),
    container_format: str = typer.Option("bare", "--container-format"),
    size: int | None = typer.Option(
        None, "--size", min=0, help="--url: the image's size in bytes, checked on download."
    ),
    checksum: str | None = typer.Option(
        None,
        "--checksum",
        help="--url: its md5 (Glance's checksum), checked on download unless --sha512 is "
        "given (the strongest hash is checked, as python-glanceclient does).",
    ),
    sha512: str | None = typer.Option(
        None,
        "--sha512",
        help="--url: its sha512 (Glance's os_hash_value), checked on download instead of "
        "the md5 (faster and stronger).",
    ),
    json_: bool = output.JsonOption,
) -> None:
    """Create an image from a local file (uploaded, checked) or a URL (downloaded on use)."""
    if (file is None) == (url is None):
        raise InvalidRequest("give exactly one of --file or --url")
    service = bootvol(ctx).images
    request = ImageCreate(
        name=name,
        disk_format=disk_format,
        container_format=container_format,
        url=url,
        size=size,
        checksum=checksum,
        os_hash_value=sha512,
    )
    if url is not None:
        record = service.create(request)
    else:
        assert file is not None
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=output.errors,
            transient=True,
            disable=json_,
        ) as progress:
            task = progress.add_task(f"uploading {file.name}", total=file.stat().st_size)
            record = service.create_from_file(
                request, file, progress=lambda n: progress.advance(task, n)
            )
    if json_:
        output.emit_json(output.image_view(record))
    else:
        output.print_fields(f"image {record.name}", output.image_view(record))


@app.command("list")
def list_(ctx: typer.Context, json_: bool = output.JsonOption) -> None:
    """List images."""
    images = bootvol(ctx).images.list()
    if json_:
        output.emit_json([output.image_view(i) for i in images])
        return
    output.table(
        "images",
        ["id", "name", "status", "format", "size", "virtual size"],
        [
            (
                i.id,
                i.name,
                i.status,
                i.disk_format,
                output.human_bytes(i.size),
                output.human_bytes(i.virtual_size),
            )
            for i in images
        ],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    image: str = typer.Argument(..., help="Image id or name."),
    json_: bool = output.JsonOption,
) -> None:
    """Show one image."""
    record = bootvol(ctx).images.get(image)
    if json_:
        output.emit_json(output.image_view(record))
    else:
        output.print_fields(f"image {record.name}", output.image_view(record))


@app.command("delete")
def delete(
    ctx: typer.Context,
    image: str = typer.Argument(..., help="Image id or name."),
    json_: bool = output.JsonOption,
) -> None:
    """Delete an image and its stored bytes (volumes and cache entries stay)."""
    record = bootvol(ctx).images.delete(image)
    if json_:
        output.emit_json({"deleted": record.id})
    else:
        output.console.print(f"deleted image {record.id} ({record.name})")
