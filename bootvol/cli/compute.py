"""`bootvol flavor …` and `bootvol host list`: what servers get, and who runs them."""

from __future__ import annotations

import typer

from bootvol.caller import OPERATOR
from bootvol.cli import output
from bootvol.cli.context import bootvol
from bootvol.compute.flavors import FlavorCreate
from bootvol.db.models import FlavorRecord

flavor_app = typer.Typer(help="Flavors: vCPUs, RAM and disk a server gets.", no_args_is_help=True)
host_app = typer.Typer(help="Compute hosts: processes that run servers.", no_args_is_help=True)


def _flavor_view(flavor: FlavorRecord) -> dict[str, object]:
    return {
        "id": flavor.id,
        "name": flavor.name,
        "vcpus": flavor.vcpus,
        "ram_mib": flavor.ram_mib,
        "disk_gib": flavor.disk_gib,
        "is_public": flavor.is_public,
    }


@flavor_app.command("list")
def flavor_list(ctx: typer.Context, json_: bool = output.JsonOption) -> None:
    """Every flavor, smallest RAM first."""
    rows = [_flavor_view(f) for f in bootvol(ctx).flavors.list(caller=OPERATOR)]
    if json_:
        output.emit_json(rows)
        return
    output.table(
        "flavors",
        ["id", "name", "vCPUs", "RAM MiB", "disk GiB", "public"],
        [
            (r["id"], r["name"], r["vcpus"], r["ram_mib"], r["disk_gib"], r["is_public"])
            for r in rows
        ],
    )


@flavor_app.command("create")
def flavor_create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Flavor name (unique)."),
    vcpus: int = typer.Option(..., "--vcpus", min=1, help="Virtual CPUs."),
    ram: int = typer.Option(..., "--ram", min=1, help="RAM in MiB."),
    disk: int = typer.Option(0, "--disk", min=0, help="Root disk in GiB (0: the image's size)."),
    flavor_id: str | None = typer.Option(None, "--id", help="Flavor id (default: a UUID)."),
    json_: bool = output.JsonOption,
) -> None:
    """Add a flavor."""
    request = FlavorCreate(name=name, vcpus=vcpus, ram_mib=ram, disk_gib=disk, id=flavor_id)
    flavor = bootvol(ctx).flavors.create(request, caller=OPERATOR)
    if json_:
        output.emit_json(_flavor_view(flavor))
    else:
        output.print_fields(f"flavor {flavor.name}", _flavor_view(flavor))


@flavor_app.command("delete")
def flavor_delete(
    ctx: typer.Context, flavor: str = typer.Argument(..., help="Flavor id or name.")
) -> None:
    """Remove a flavor (servers made with it keep what it gave them)."""
    app = bootvol(ctx)
    app.flavors.delete(app.flavors.get(flavor).id, caller=OPERATOR)


@host_app.command("list")
def host_list(ctx: typer.Context, json_: bool = output.JsonOption) -> None:
    """Every compute host: up or down, what it has, what its servers take."""
    rows = [
        {
            "name": h.name,
            "state": "up" if h.up else "down",
            "accel": h.accel,
            "vcpus": h.vcpus,
            "ram_mib": h.ram_mib,
            "used_vcpus": h.used_vcpus,
            "used_ram_mib": h.used_ram_mib,
            "servers": h.servers,
            "heartbeat_at": h.heartbeat_at,
        }
        for h in bootvol(ctx).hosts.list()
    ]
    if json_:
        output.emit_json(rows)
        return
    output.table(
        "compute hosts",
        ["name", "state", "accel", "vCPUs used/total", "RAM MiB used/total", "servers"],
        [
            (
                r["name"],
                r["state"],
                r["accel"],
                f"{r['used_vcpus']}/{r['vcpus']}",
                f"{r['used_ram_mib']}/{r['ram_mib']}",
                r["servers"],
            )
            for r in rows
        ],
    )
