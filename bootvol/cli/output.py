"""How CLI commands print: a Rich table for people, or one JSON document with --json."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from bootvol.db.models import ImageRecord, VolumeRecord
from bootvol.volumes.records import ProvisioningRecord

if TYPE_CHECKING:  # the benchmarks' own records: not loaded for every command
    from bootvol.bench.results import Target

console = Console()
errors = Console(stderr=True)

JsonOption = typer.Option(False, "--json", help="Print one JSON document instead of a table.")


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=_default))


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


def table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    to: Console | None = None,
) -> None:
    view = Table(title=title)
    for column in columns:
        view.add_column(column)
    for row in rows:
        view.add_row(*("" if cell is None else str(cell) for cell in row))
    (to or console).print(view)


def human_bytes(count: int | None) -> str:
    if count is None:
        return "-"
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{size:.1f} TiB"


def image_view(image: ImageRecord) -> dict[str, Any]:
    return {
        "id": image.id,
        "name": image.name,
        "status": str(image.status),
        "disk_format": image.disk_format,
        "container_format": image.container_format,
        "size": image.size,
        "virtual_size": image.virtual_size,
        "checksum": image.checksum,
        "os_hash_algo": image.os_hash_algo,
        "os_hash_value": image.os_hash_value,
        "location": str(image.location) if image.location else None,
        "message": image.message,
        "created_at": image.created_at,
    }


def volume_view(volume: VolumeRecord) -> dict[str, Any]:
    return {
        "id": volume.id,
        "name": volume.name,
        "status": str(volume.status),
        "size_gib": volume.size_gib,
        "image_id": volume.image_id,
        "flexvol": volume.flexvol,
        "file": volume.file,
        "file_format": str(volume.file_format),
        "provisioning": volume.provisioning.to_json() if volume.provisioning else None,
        "message": volume.message,
        "created_at": volume.created_at,
    }


def print_fields(title: str, fields: dict[str, Any]) -> None:
    view = Table(title=title, show_header=False)
    view.add_column("field", style="bold")
    view.add_column("value")
    for key, value in fields.items():
        if key == "provisioning":
            continue
        view.add_row(key, "" if value is None else str(value))
    console.print(view)


def print_provisioning(provisioning: ProvisioningRecord | None) -> None:
    if not provisioning:
        return
    console.print(
        f"[bold]path[/bold] {provisioning.path}  from {provisioning.source}  "
        f"clone {provisioning.clone_method}  "
        f"host bytes {human_bytes(provisioning.host_bytes)}  "
        f"total {provisioning.seconds:.3f} s"
    )
    table(
        "steps",
        ["step", "seconds", "detail"],
        [(str(s.name), f"{s.seconds:.4f}", s.detail) for s in provisioning.steps],
    )
    if provisioning.skipped:
        table("not taken", ["path", "why"], [(str(k), v) for k, v in provisioning.skipped.items()])


def print_targets(console: Console, targets: Sequence[Target]) -> None:
    """The issue's targets, pass or FAIL with what was measured (bench and bench --boot)."""
    verdicts = {True: "[green]pass[/green]", False: "[red]FAIL[/red]", None: "n/a"}
    table(
        "targets",
        ["target", "result", "measured"],
        [(t.name, verdicts[t.passed], t.detail) for t in targets],
        to=console,
    )
