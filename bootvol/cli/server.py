"""`bootvol server …`: servers as the operator sees them (every project's).

The commands record what is asked (a new server, a power task, a delete); the compute host
that runs the server (`bootvol serve` or `bootvol worker` with `[compute] enabled = true`)
carries it out within its `poll_seconds`. `--wait` follows the server until it is done.
"""

from __future__ import annotations

import time

import typer

from bootvol.caller import OPERATOR
from bootvol.cli import output
from bootvol.cli.context import bootvol
from bootvol.compute.service import BootSource, BootVolume, ServerCreate, ServerQuery
from bootvol.db.models import ServerRecord, ServerStatus, TaskState
from bootvol.errors import BootvolError, NotFound

app = typer.Typer(help="Servers: instances booted from bootvol volumes.", no_args_is_help=True)

WaitOption = typer.Option(False, "--wait", help="Wait until the host has done it.")


def _view(server: ServerRecord) -> dict[str, object]:
    return {
        "id": server.id,
        "name": server.name,
        "status": str(server.status),
        "task_state": str(server.task_state) if server.task_state else None,
        "flavor": server.flavor_name,
        "host": server.host,
        "image_id": server.image_id,
        "volume_id": server.root_volume_id,
        "fault": server.fault_message,
        "build": server.build.to_json() if server.build else None,
        "created_at": server.created_at,
    }


def _wait(ctx: typer.Context, server_id: str, *, gone: bool = False) -> ServerRecord | None:
    servers = bootvol(ctx).servers
    with output.errors.status("waiting for the compute host…"):
        while True:
            record = servers.get_by_id(server_id)
            if record is None:
                if gone:
                    return None
                raise NotFound(f"server {server_id} disappeared")
            if not gone and record.task_state is None and record.status != ServerStatus.BUILD:
                return record
            time.sleep(0.2)


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Server name."),
    flavor: str = typer.Option(..., "--flavor", help="Flavor id or name."),
    image: str | None = typer.Option(None, "--image", help="Image id: a new boot volume."),
    volume: str | None = typer.Option(None, "--volume", help="Boot from this volume."),
    size: int | None = typer.Option(None, "--size", min=1, help="Boot volume GiB (--image)."),
    keep_volume: bool = typer.Option(False, "--keep-volume", help="Keep it when deleted."),
    wait: bool = WaitOption,
    json_: bool = output.JsonOption,
) -> None:
    """Create a server from an image (a new boot volume) or an existing volume."""
    if (image is None) == (volume is None):
        raise typer.BadParameter("give one of --image or --volume")
    if volume is not None:
        boot = BootVolume(BootSource.VOLUME, volume, delete_on_termination=False)
    else:
        boot = BootVolume(BootSource.IMAGE, image or "", size, not keep_volume)
    request = ServerCreate(name=name, flavor=flavor, boot_volume=boot)
    record: ServerRecord | None = bootvol(ctx).servers.accept(request, caller=OPERATOR)
    if wait and record is not None:
        record = _wait(ctx, record.id)
    assert record is not None
    _print(record, json_)
    if record.status == ServerStatus.ERROR:
        raise BootvolError(f"server {record.id} is in error: {record.fault_message}")


@app.command("list")
def list_(ctx: typer.Context, json_: bool = output.JsonOption) -> None:
    """Every server, newest first."""
    servers = bootvol(ctx).servers.query(ServerQuery(all_projects=True), caller=OPERATOR)
    if json_:
        output.emit_json([_view(s) for s in servers])
        return
    output.table(
        "servers",
        ["id", "name", "status", "task", "flavor", "host", "volume"],
        [
            (s.id, s.name, s.status, s.task_state or "", s.flavor_name, s.host, s.root_volume_id)
            for s in servers
        ],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    server: str = typer.Argument(..., help="Server id or name."),
    json_: bool = output.JsonOption,
) -> None:
    """One server and its build record."""
    _print(bootvol(ctx).servers.get(server), json_)


@app.command("console")
def console(
    ctx: typer.Context,
    server: str = typer.Argument(..., help="Server id or name."),
    lines: int | None = typer.Option(None, "--lines", min=1, help="Only the last lines."),
) -> None:
    """The server's serial console so far."""
    typer.echo(bootvol(ctx).servers.console_output(server, caller=OPERATOR, lines=lines))


def _task(
    ctx: typer.Context, server: str, task: TaskState, allowed: tuple[ServerStatus, ...], wait: bool
) -> None:
    servers = bootvol(ctx).servers
    record = servers.begin_task(server, task=task, allowed=allowed, caller=OPERATOR)
    if wait:
        _wait(ctx, record.id)


@app.command("stop")
def stop(ctx: typer.Context, server: str = typer.Argument(...), wait: bool = WaitOption) -> None:
    """ACPI shutdown (the plug is pulled after `[compute] shutdown_timeout_seconds`)."""
    _task(ctx, server, TaskState.POWERING_OFF, (ServerStatus.ACTIVE,), wait)


@app.command("start")
def start(ctx: typer.Context, server: str = typer.Argument(...), wait: bool = WaitOption) -> None:
    """Boot a SHUTOFF server again."""
    _task(ctx, server, TaskState.POWERING_ON, (ServerStatus.SHUTOFF,), wait)


@app.command("reboot")
def reboot(
    ctx: typer.Context,
    server: str = typer.Argument(...),
    hard: bool = typer.Option(False, "--hard", help="Reset instead of an ACPI reboot."),
    wait: bool = WaitOption,
) -> None:
    """Reboot a server."""
    if hard:
        allowed = (ServerStatus.ACTIVE, ServerStatus.SHUTOFF)
        _task(ctx, server, TaskState.REBOOTING_HARD, allowed, wait)
    else:
        _task(ctx, server, TaskState.REBOOTING, (ServerStatus.ACTIVE,), wait)


@app.command("delete")
def delete(ctx: typer.Context, server: str = typer.Argument(...), wait: bool = WaitOption) -> None:
    """Delete a server (and its boot volume when it was made for it)."""
    record = bootvol(ctx).servers.request_delete(server, caller=OPERATOR)
    if wait:
        _wait(ctx, record.id, gone=True)


def _print(record: ServerRecord, json_: bool) -> None:
    if json_:
        output.emit_json(_view(record))
    else:
        output.print_fields(f"server {record.name}", _view(record))
