"""`bootvol cache …`: what each FlexVol caches, and the threshold cleaner on demand."""

from __future__ import annotations

import datetime as dt

import typer

from bootvol.cli import output
from bootvol.cli.context import bootvol
from bootvol.volumes.cache import ImageCache
from bootvol.volumes.cleaner import clean_flexvol

app = typer.Typer(help="The per-FlexVol image cache.", no_args_is_help=True)


@app.command("list")
def list_(ctx: typer.Context, json_: bool = output.JsonOption) -> None:
    """Cache entries per FlexVol: image, size, space held, last use."""
    now = dt.datetime.now(dt.UTC)
    entries = [e for f in bootvol(ctx).topology for e in ImageCache(f).entries()]
    if json_:
        output.emit_json(
            [
                {
                    "flexvol": e.flexvol,
                    "image_id": e.image_id,
                    "file": str(e.path),
                    "size_bytes": e.size_bytes,
                    "allocated_bytes": e.allocated_bytes,
                    "last_used": e.last_used,
                    "links": e.links,
                }
                for e in entries
            ]
        )
        return
    output.table(
        "image cache",
        ["flexvol", "image", "size", "allocated", "last used", "idle min"],
        [
            (
                e.flexvol,
                e.image_id,
                output.human_bytes(e.size_bytes),
                output.human_bytes(e.allocated_bytes),
                e.last_used.strftime("%Y-%m-%d %H:%M:%S"),
                f"{e.idle_minutes(now):.0f}",
            )
            for e in entries
        ],
    )


@app.command("clean")
def clean(
    ctx: typer.Context,
    flexvol: str | None = typer.Option(None, "--flexvol", help="Only this FlexVol."),
    json_: bool = output.JsonOption,
) -> None:
    """Run the cleaner now (it acts only below thres_avl_size_perc_start)."""
    app_ = bootvol(ctx)
    flexvols = [app_.topology.get(flexvol)] if flexvol else list(app_.topology)
    reports = [clean_flexvol(f, app_.settings.cache) for f in flexvols]
    if json_:
        output.emit_json([r.__dict__ for r in reports])
        return
    output.table(
        "cache clean",
        ["flexvol", "ran", "available % before", "after", "evicted", "freed"],
        [
            (
                r.flexvol,
                "yes" if r.ran else "no (above start threshold)",
                f"{r.available_percent_before:.1f}",
                f"{r.available_percent_after:.1f}",
                len(r.evicted),
                output.human_bytes(r.freed_bytes),
            )
            for r in reports
        ],
    )
