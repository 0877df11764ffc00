"""`bootvol flexvol list`: capacity, free space and capabilities of every FlexVol."""

from __future__ import annotations

import typer

from bootvol.cli import output
from bootvol.cli.context import bootvol

app = typer.Typer(
    help="FlexVols (filesystems holding images, cache and volumes).", no_args_is_help=True
)


@app.command("list")
def list_(ctx: typer.Context, json_: bool = output.JsonOption) -> None:
    """Every FlexVol with capacity, available space and what it can do."""
    rows = []
    for flexvol in bootvol(ctx).topology:
        space = flexvol.space()
        capabilities = flexvol.capabilities
        rows.append(
            {
                "name": flexvol.name,
                "path": str(flexvol.path),
                "svm": flexvol.svm.name,
                "cluster": flexvol.cluster_name,
                "cluster_version": flexvol.svm.cluster.version,
                "vstorage": flexvol.svm.vstorage,
                "holds_volumes": flexvol.holds_volumes,
                "filesystem": capabilities.filesystem,
                "reflink": capabilities.reflink,
                "total_bytes": space.total_bytes,
                "available_bytes": space.available_bytes,
                "available_percent": round(space.available_percent, 2),
            }
        )
    if json_:
        output.emit_json(rows)
        return
    output.table(
        "flexvols",
        ["name", "cluster", "svm", "vstorage", "fs", "reflink", "capacity", "available", "volumes"],
        [
            (
                r["name"],
                r["cluster"],
                r["svm"],
                "on" if r["vstorage"] else "off",
                r["filesystem"],
                "yes" if r["reflink"] else "no",
                output.human_bytes(r["total_bytes"]),
                f"{output.human_bytes(r['available_bytes'])} ({r['available_percent']:.0f}%)",
                "yes" if r["holds_volumes"] else "no",
            )
            for r in rows
        ],
    )
