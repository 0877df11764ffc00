"""`bootvol serve`: the OpenStack-compatible service (Keystone, Glance, Cinder APIs)."""

from __future__ import annotations

import logging

import typer

from bootvol.api.requests import access_log
from bootvol.cli import output
from bootvol.cli.context import bootvol
from bootvol.identity import clouds
from bootvol.server import DEFAULT_HOST, DEFAULT_PORT, Server


def serve(
    ctx: typer.Context,
    host: str = typer.Option(DEFAULT_HOST, "--host", help="Address to listen on."),
    port: int = typer.Option(DEFAULT_PORT, "--port", help="Port for all three APIs."),
    public_url: str | None = typer.Option(
        None, "--public-url", help="Base URL clients use, if not http://HOST:PORT."
    ),
    workers: int = typer.Option(
        2,
        "--workers",
        min=1,
        help="Volume worker threads claiming pending volumes (add nodes with `bootvol worker`).",
    ),
) -> None:
    """Serve /identity/v3, /image/v2 and /volume/v3 (and /metrics) until interrupted."""
    access_log.setLevel(logging.INFO)  # one line per request, as a server's log has them
    server = Server(bootvol(ctx), host=host, port=port, public_url=public_url, workers=workers)
    prepared = server.prepare()
    if prepared.entry is None:
        output.errors.print(
            f"[yellow]warning:[/yellow] the admin password is not in {prepared.clouds_yaml}; "
            "set a new one with `bootvol user set-password admin --password …`"
        )
    else:
        if prepared.created_admin:
            output.errors.print(f"created user admin; its password is in {prepared.clouds_yaml}")
        typer.echo(f"# {prepared.clouds_yaml} (mode 0600) has this cloud; use it with:")
        typer.echo(f"#   export OS_CLIENT_CONFIG_FILE={prepared.clouds_yaml}")
        typer.echo(f"#   openstack --os-cloud {clouds.CLOUD_NAME} volume list")
        typer.echo("# (the admin's password is in that file only: it is never printed)")
        typer.echo(clouds.render(clouds.without_password(prepared.entry)), nl=False)
    typer.echo(f"# serving {server.base_url} (identity, image, volume APIs; /metrics)")
    server.run()
