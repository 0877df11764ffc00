"""`bootvol bench-load`: many creations at once against a running service (bootvol.bench.load)."""

from __future__ import annotations

from pathlib import Path

import typer

from bootvol.bench.load import LoadOptions, run_load
from bootvol.cli import output


def bench_load(
    volumes: int = typer.Option(200, "--volumes", min=2, help="Creations sent at once."),
    projects: int = typer.Option(10, "--projects", min=1, help="Projects they come from."),
    workers: int = typer.Option(2, "--workers", min=1, help="The service's worker threads."),
    image_mib: int = typer.Option(64, "--image-mib", min=1, help="Size of both images."),
    folder: Path | None = typer.Option(
        None, "--dir", help="Folder FlexVols under PATH instead of XFS loopback ones (root)."
    ),
    as_json: bool = output.JsonOption,
) -> None:
    """Send VOLUMES creations at once (half from an uncached image) and check none is lost."""
    result = run_load(
        LoadOptions(
            volumes=volumes, projects=projects, workers=workers, image_mib=image_mib, folder=folder
        )
    )
    if as_json:
        output.emit_json(result.to_dict())
    else:
        data = result.to_dict()
        typer.echo(
            f"{data['volumes']} volumes from {data['projects']} projects, {data['workers']} "
            f"workers, {data['flexvols']}\n"
            f"{data['volumes_per_s']} volumes/s ({data['seconds']} s in all); time to "
            f"available p50 {data['p50_seconds']} s, p99 {data['p99_seconds']} s\n"
            f"uncached image copied into each FlexVol: {data['uncached_fills']}\n"
            f"failed requests: {len(result.failed_requests)}, failed volumes: "
            f"{len(result.failed_volumes)}, wrong content: {len(result.wrong_content)}"
        )
        output.print_targets(output.console, result.targets())
    if not result.passed:
        output.errors.print("[bold red]load check failed[/bold red]", highlight=False)
        for line in result.failed_requests + result.failed_volumes + result.wrong_content:
            output.errors.print(line, highlight=False)
        raise typer.Exit(1)
